//! Free-text names (accounts, agents, legal and representative names): what a person reads
//! back must be what was stored, so characters that reorder or hide text are refused.

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    /// C0/C1 controls, or a line or paragraph separator: a name is one line.
    #[error("contains control characters")]
    Control,
    /// Bidirectional overrides, embeddings, isolates or marks: they make the displayed
    /// order differ from the stored one.
    #[error("contains bidirectional control characters")]
    Bidi,
    /// Only whitespace and characters that render as nothing.
    #[error("has no visible character")]
    Invisible,
}

/// Checks one name. Invisible characters are allowed beside visible ones (a zero-width
/// joiner belongs in some scripts and emoji); a name made only of them is not.
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    let mut visible = false;
    for c in name.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            return Err(NameProblem::Control);
        }
        if is_bidi_control(c) {
            return Err(NameProblem::Bidi);
        }
        visible |= !(c.is_whitespace() || is_invisible(c));
    }
    if visible {
        Ok(())
    } else {
        Err(NameProblem::Invisible)
    }
}

/// LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI; LRM, RLM; the Arabic letter mark.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Characters that render as nothing, or as blank space without being Unicode whitespace:
/// the default-ignorable code points and the blank fillers.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}'                   // soft hyphen
        | '\u{034f}'                 // combining grapheme joiner
        | '\u{115f}' | '\u{1160}'    // Hangul choseong and jungseong fillers
        | '\u{17b4}' | '\u{17b5}'    // Khmer inherent vowels
        | '\u{180b}'..='\u{180f}'    // Mongolian variation selectors and vowel separator
        | '\u{200b}'..='\u{200d}'    // zero-width space, non-joiner, joiner
        | '\u{2060}'..='\u{2064}'    // word joiner, invisible operators
        | '\u{206a}'..='\u{206f}'    // deprecated format characters
        | '\u{2800}'                 // Braille blank
        | '\u{3164}'                 // Hangul filler
        | '\u{fe00}'..='\u{fe0f}'    // variation selectors
        | '\u{feff}'                 // zero-width no-break space (BOM)
        | '\u{ffa0}'                 // halfwidth Hangul filler
        | '\u{fff0}'..='\u{fff8}'    // unassigned specials
        | '\u{1bca0}'..='\u{1bca3}'  // shorthand format controls
        | '\u{1d173}'..='\u{1d17a}'  // musical symbol format controls
        | '\u{e0000}'..='\u{e0fff}'  // tags and variation selectors supplement
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        use NameProblem::*;
        let table: &[(&str, Result<(), NameProblem>)] = &[
            ("Acme", Ok(())),
            ("Acme S.L.", Ok(())),
            ("José Ñúñez", Ok(())),
            ("株式会社", Ok(())),
            ("شركة", Ok(())),
            ("שלום", Ok(())),
            ("x", Ok(())),
            // Joiners inside visible text are legitimate.
            ("👩\u{200d}💻 Labs", Ok(())),
            ("می\u{200c}خواهم", Ok(())),
            ("Acme\u{00a0}Corp", Ok(())),
            ("a\tb", Err(Control)),
            ("a\nb", Err(Control)),
            ("a\rb", Err(Control)),
            ("a\u{0}b", Err(Control)),
            ("a\u{7f}", Err(Control)),
            ("a\u{85}b", Err(Control)),
            ("a\u{2028}b", Err(Control)),
            ("a\u{2029}b", Err(Control)),
            ("\u{202e}gpj.exe", Err(Bidi)),
            ("a\u{202a}b", Err(Bidi)),
            ("a\u{202b}b", Err(Bidi)),
            ("a\u{202c}b", Err(Bidi)),
            ("a\u{202d}b", Err(Bidi)),
            ("a\u{2066}b", Err(Bidi)),
            ("a\u{2067}b", Err(Bidi)),
            ("a\u{2068}b", Err(Bidi)),
            ("a\u{2069}b", Err(Bidi)),
            ("a\u{200e}", Err(Bidi)),
            ("a\u{200f}", Err(Bidi)),
            ("a\u{061c}", Err(Bidi)),
            ("", Err(Invisible)),
            (" ", Err(Invisible)),
            ("\u{3000}", Err(Invisible)),
            ("\u{200b}", Err(Invisible)),
            ("\u{200b}\u{200c}\u{200d}", Err(Invisible)),
            ("\u{2060}", Err(Invisible)),
            ("\u{feff}", Err(Invisible)),
            ("\u{180e}", Err(Invisible)),
            ("\u{00ad}", Err(Invisible)),
            ("\u{3164}\u{ffa0}", Err(Invisible)),
            ("\u{2800}", Err(Invisible)),
            ("\u{fe0f}", Err(Invisible)),
            ("\u{e0041}\u{e0042}", Err(Invisible)),
            (" \u{200b} \u{feff} ", Err(Invisible)),
        ];
        for (name, expected) in table {
            assert_eq!(check_name(name), *expected, "{name:?}");
        }
    }

    #[test]
    fn a_control_anywhere_wins_over_invisibility() {
        assert_eq!(check_name("\u{200b}\n"), Err(NameProblem::Control));
        assert_eq!(check_name("\u{200b}\u{202e}"), Err(NameProblem::Bidi));
    }
}
