//! Outbound SMS bodies (PROTOCOL §3.5): validation and segment counting. The segment count
//! is what the customer pays for, so it follows GSM 03.38 and the UCS-2 rules exactly.

/// The largest accepted body, in Unicode scalar values (`body_too_long {max, got}`).
pub const MAX_BODY_CHARS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    Empty,
    TooLong { max: usize, got: usize },
    ControlCharacters,
}

/// Validates an outbound body: empty (after trim) → Empty; more than 1000 Unicode scalar
/// values → TooLong{max:1000, got}; any control character other than \n, \r, \t →
/// ControlCharacters. Control characters are refused because handsets render them
/// unpredictably and some carriers treat them as protocol bytes.
pub fn validate_body(body: &str) -> Result<(), BodyError> {
    if body.trim().is_empty() {
        return Err(BodyError::Empty);
    }
    let got = body.chars().count();
    if got > MAX_BODY_CHARS {
        return Err(BodyError::TooLong {
            max: MAX_BODY_CHARS,
            got,
        });
    }
    if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(BodyError::ControlCharacters);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segmentation {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    pub segments: u32,
}

/// Septets of a GSM-7 body sent as one message.
pub const GSM7_SINGLE: usize = 160;
/// Septets per part of a concatenated GSM-7 body (the rest carries the concatenation header).
pub const GSM7_PART: usize = 153;
/// UTF-16 code units of a UCS-2 body sent as one message.
pub const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per part of a concatenated UCS-2 body.
pub const UCS2_PART: usize = 67;

/// The GSM 03.38 default alphabet, in code order (0x1B, the escape, is left out): the
/// character at index `i` has code `i` below 0x1B and `i + 1` from there on.
pub const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// Characters reachable only through the escape of the extension table: two septets each.
pub const GSM7_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// The code following the escape 0x1B for each character of [`GSM7_EXTENSION`], in order.
pub const GSM7_EXTENSION_CODES: [u8; 10] =
    [0x0A, 0x14, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40, 0x65];

/// Septets for one character in GSM-7, or None when GSM-7 cannot carry it.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Parts needed when items of the given widths are packed greedily, `per_part` units each,
/// an item never split across two parts (escape pairs and surrogate pairs stay whole).
fn pack(widths: impl Iterator<Item = usize>, per_part: usize) -> u32 {
    let mut parts: u32 = 1;
    let mut used = 0;
    for w in widths {
        if used + w > per_part {
            parts = parts.saturating_add(1);
            used = 0;
        }
        used += w;
    }
    parts
}

/// GSM-7 when every char is in the GSM 03.38 default alphabet or its extension table
/// (extension chars `^{}\[~]|€` and form feed count 2 septets); otherwise UCS-2 counted in
/// UTF-16 code units (an emoji is 2). GSM-7: ≤160 septets → 1 segment, else parts of 153
/// septets packed greedily so an escape pair is never split. UCS-2: ≤70 units → 1 segment,
/// else parts of 67 units, never splitting a surrogate pair. An empty body is 1 segment.
pub fn segment(body: &str) -> Segmentation {
    let septets: Option<Vec<usize>> = body.chars().map(gsm7_septets).collect();
    let (encoding, widths, single, part) = match septets {
        Some(w) => (Encoding::Gsm7, w, GSM7_SINGLE, GSM7_PART),
        None => (
            Encoding::Ucs2,
            body.chars().map(char::len_utf16).collect(),
            UCS2_SINGLE,
            UCS2_PART,
        ),
    };
    let units = widths.iter().sum();
    let segments = if units <= single {
        1
    } else {
        pack(widths.into_iter(), part)
    };
    Segmentation {
        encoding,
        units,
        segments,
    }
}

/// The characters of `body` GSM-7 cannot carry (each once, in order of first use): the
/// ones that make the whole body UCS-2.
pub fn ucs2_characters(body: &str) -> Vec<char> {
    let mut found: Vec<char> = Vec::new();
    for c in body.chars() {
        if gsm7_septets(c).is_none() && !found.contains(&c) {
            found.push(c);
        }
    }
    found
}

/// The GSM-7 look-alike of a typographic character: curly quotes, primes and accents
/// used as apostrophes, dashes, the ellipsis, and the spaces GSM-7 lacks.
fn gsm7_look_alike(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2032}' | '\u{00b4}' | '`' => "'",
        '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' | '\u{2033}' | '\u{00ab}'
        | '\u{00bb}' => "\"",
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        | '\u{2212}' => "-",
        '\u{2026}' => "...",
        '\u{00a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\t' => " ",
        _ => return None,
    })
}

/// The body with its typographic characters replaced by their GSM-7 look-alikes, when that
/// makes it GSM-7 (and so cheaper or as cheap); None when the body is GSM-7 already or some
/// character has no look-alike (an accent GSM-7 lacks, an emoji).
pub fn gsm7_alternative(body: &str) -> Option<String> {
    if gsm7_septets_all(body) {
        return None;
    }
    let mut out = String::with_capacity(body.len());
    for c in body.chars() {
        match gsm7_look_alike(c) {
            Some(s) => out.push_str(s),
            None if gsm7_septets(c).is_some() => out.push(c),
            None => return None,
        }
    }
    Some(out)
}

fn gsm7_septets_all(body: &str) -> bool {
    body.chars().all(|c| gsm7_septets(c).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(body: &str) -> (Encoding, usize, u32) {
        let s = segment(body);
        (s.encoding, s.units, s.segments)
    }

    #[test]
    fn validation() {
        assert_eq!(validate_body(""), Err(BodyError::Empty));
        assert_eq!(validate_body(" \n\t "), Err(BodyError::Empty));
        assert_eq!(validate_body("hola\r\n\tadiós"), Ok(()));
        assert_eq!(validate_body(&"é".repeat(1000)), Ok(()));
        assert_eq!(
            validate_body(&"😀".repeat(1001)),
            Err(BodyError::TooLong {
                max: 1000,
                got: 1001
            })
        );
        for bad in [
            "a\u{0}b", "a\u{7}", "a\u{1B}b", "a\u{0C}", "a\u{7F}", "a\u{85}",
        ] {
            assert_eq!(
                validate_body(bad),
                Err(BodyError::ControlCharacters),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn whole_basic_alphabet_is_single_septets() {
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        let s = segment(GSM7_BASIC);
        assert_eq!((s.encoding, s.units), (Encoding::Gsm7, 127));
        for c in GSM7_EXTENSION.chars() {
            assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
        }
        assert_eq!(GSM7_EXTENSION.chars().count(), GSM7_EXTENSION_CODES.len());
        for c in ['`', 'á', 'í', 'ó', 'ú', 'Á', 'ç', '\t', 'ê', '\u{1B}'] {
            assert_eq!(gsm7_septets(c), None, "{c:?}");
        }
    }

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(seg(""), (Encoding::Gsm7, 0, 1));
        assert_eq!(seg(&"a".repeat(160)), (Encoding::Gsm7, 160, 1));
        assert_eq!(seg(&"a".repeat(161)), (Encoding::Gsm7, 161, 2));
        assert_eq!(seg(&"a".repeat(306)), (Encoding::Gsm7, 306, 2));
        assert_eq!(seg(&"a".repeat(307)), (Encoding::Gsm7, 307, 3));
        assert_eq!(seg("€"), (Encoding::Gsm7, 2, 1));
        assert_eq!(
            seg(&format!("{}€", "a".repeat(158))),
            (Encoding::Gsm7, 160, 1)
        );
        assert_eq!(
            seg(&format!("{}€", "a".repeat(159))),
            (Encoding::Gsm7, 161, 2)
        );
    }

    #[test]
    fn gsm7_escape_pair_is_not_split() {
        // 152 + 2 would straddle the first part: the pair moves whole to part 2.
        let body = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(seg(&body), (Encoding::Gsm7, 306, 3));
        // Naively 306 septets would be 2 parts; 153 + 153 only if the pair sits inside.
        let body = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        assert_eq!(seg(&body), (Encoding::Gsm7, 306, 2));
    }

    #[test]
    fn ucs2_boundaries() {
        assert_eq!(seg(&"á".repeat(70)), (Encoding::Ucs2, 70, 1));
        assert_eq!(seg(&"á".repeat(71)), (Encoding::Ucs2, 71, 2));
        assert_eq!(seg(&"á".repeat(134)), (Encoding::Ucs2, 134, 2));
        assert_eq!(seg(&"á".repeat(135)), (Encoding::Ucs2, 135, 3));
        assert_eq!(seg("😀"), (Encoding::Ucs2, 2, 1));
        assert_eq!(seg(&"😀".repeat(35)), (Encoding::Ucs2, 70, 1));
        // One non-GSM character turns the whole body into UCS-2.
        assert_eq!(
            seg(&format!("{}á", "a".repeat(69))),
            (Encoding::Ucs2, 70, 1)
        );
        assert_eq!(seg("a\tb"), (Encoding::Ucs2, 3, 1));
    }

    #[test]
    fn ucs2_surrogate_pair_is_not_split() {
        // 66 units then an emoji: the pair cannot straddle the first part's last unit.
        let body = format!("{}😀{}", "á".repeat(66), "á".repeat(66));
        assert_eq!(seg(&body), (Encoding::Ucs2, 134, 3));
        let body = format!("{}😀{}", "á".repeat(65), "á".repeat(67));
        assert_eq!(seg(&body), (Encoding::Ucs2, 134, 2));
    }

    #[test]
    fn ucs2_characters_and_alternatives() {
        assert_eq!(ucs2_characters("Hola, ¿qué tal?"), Vec::<char>::new());
        assert_eq!(ucs2_characters("Adiós, Ágata 😀 ó"), vec!['ó', 'Á', '😀']);
        assert_eq!(
            gsm7_alternative("It\u{2019}s \u{201c}done\u{201d} \u{2013} ok\u{2026}"),
            Some("It's \"done\" - ok...".to_owned())
        );
        assert_eq!(gsm7_alternative("plain"), None);
        assert_eq!(gsm7_alternative("\u{2019}Adiós\u{2019}"), None);
        assert_eq!(gsm7_alternative("ok 😀"), None);
        assert_eq!(gsm7_alternative("a\tb"), Some("a b".to_owned()));
        // Every look-alike is GSM-7 itself.
        for c in [
            '\u{2018}', '\u{201c}', '\u{2014}', '\u{2026}', '\u{00a0}', '\u{00ab}',
        ] {
            let alt = gsm7_alternative(&c.to_string()).unwrap();
            assert_eq!(segment(&alt).encoding, Encoding::Gsm7, "{c:?}");
        }
    }

    #[test]
    fn encoding_names() {
        assert_eq!(Encoding::Gsm7.as_str(), "GSM-7");
        assert_eq!(Encoding::Ucs2.as_str(), "UCS-2");
    }
}
