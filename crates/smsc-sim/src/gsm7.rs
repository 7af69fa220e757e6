//! The GSM 03.38 default alphabet and its extension table, as unpacked septets.

/// The default alphabet; the index is the septet.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// Characters reached through the escape septet 0x1B.
const EXTENSION: [(char, u8); 10] = [
    ('\u{0c}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

pub(crate) const ESCAPE: u8 = 0x1B;

/// The septets of `text`, one per byte, or the first character the alphabet lacks.
pub(crate) fn encode(text: &str) -> Result<Vec<u8>, char> {
    let mut septets = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c != '\u{1b}'
            && let Some(index) = BASIC.iter().position(|&basic| basic == c)
        {
            septets.push(index as u8);
            continue;
        }
        match EXTENSION.iter().find(|(extended, _)| *extended == c) {
            Some((_, code)) => septets.extend_from_slice(&[ESCAPE, *code]),
            None => return Err(c),
        }
    }
    Ok(septets)
}

/// Text from unpacked septets; unknown escapes decode as a space.
pub fn decode(septets: &[u8]) -> String {
    let mut text = String::with_capacity(septets.len());
    let mut bytes = septets.iter();
    while let Some(&septet) = bytes.next() {
        if septet == ESCAPE {
            let code = bytes.next().copied().unwrap_or(0);
            let c = EXTENSION
                .iter()
                .find(|(_, extended)| *extended == code)
                .map_or(' ', |(c, _)| *c);
            text.push(c);
        } else {
            text.push(BASIC[usize::from(septet & 0x7F)]);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn round_trips_basic_and_extended_characters() {
        let text = "Hello @ £5 {x} €1 Ü";
        let septets = encode(text).unwrap();
        assert_eq!(septets[6], 0x00);
        assert!(septets.windows(2).any(|pair| pair == [ESCAPE, 0x65]));
        assert_eq!(decode(&septets), text);
    }

    #[test]
    fn refuses_characters_outside_the_alphabet() {
        assert_eq!(encode("ok 🙂"), Err('🙂'));
    }
}
