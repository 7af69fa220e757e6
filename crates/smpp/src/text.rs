//! Message text in SMPP: outbound bodies cut into `submit_sm` parts, inbound
//! `short_message` bytes decoded by their `data_coding`.
//!
//! Outbound, the number of parts always equals [`ami_core::sms::segment`]'s count, which is
//! what the customer was charged: the same alphabet decision, the same part sizes and the
//! same rule that an escape pair (GSM-7) or a surrogate pair (UCS-2) is never split.

use std::sync::LazyLock;

use ami_core::sms::{
    GSM7_BASIC, GSM7_EXTENSION, GSM7_EXTENSION_CODES, GSM7_PART, GSM7_SINGLE, UCS2_PART,
    UCS2_SINGLE,
};
use serde::Deserialize;

/// `data_coding` of GSM 03.38 text (the SMSC default alphabet).
pub const DATA_CODING_GSM7: u8 = 0x00;
/// `data_coding` of UCS-2 (UTF-16BE) text.
pub const DATA_CODING_UCS2: u8 = 0x08;

/// The escape of the GSM 03.38 extension table.
const ESCAPE: u8 = 0x1B;
/// Bytes of the concatenation header with an 8-bit reference: 05 00 03 ref total seq.
const UDH_LEN: usize = 6;

/// How a body longer than one message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LongMessages {
    /// One `submit_sm` per part, each starting with a concatenation header (UDHI set).
    Udh,
    /// One `submit_sm` per part, concatenation in the `sar_*` TLVs.
    Sar,
    /// One `submit_sm` with the whole body in the `message_payload` TLV.
    Payload,
}

/// Values of the `sar_msg_ref_num`, `sar_total_segments` and `sar_segment_seqnum` TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sar {
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
}

/// The content of one `submit_sm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub data_coding: u8,
    /// Set the UDHI bit (0x40) of `esm_class`: `short_message` starts with a header.
    pub udhi: bool,
    /// Empty when `message_payload` is set.
    pub short_message: Vec<u8>,
    pub sar: Option<Sar>,
    pub message_payload: Option<Vec<u8>>,
}

/// A body encoded for the wire, with the byte length of each character so that parts are
/// cut between characters only.
struct Encoded {
    data_coding: u8,
    bytes: Vec<u8>,
    char_lengths: Vec<usize>,
    /// Bytes of a body sent as one message, and of one part of a longer one.
    single: usize,
    part: usize,
}

/// The parts of `body` sent with `method`. `reference` identifies the concatenated message:
/// its low byte goes in the header (8-bit reference), the whole of it in `sar_msg_ref_num`.
///
/// Bodies are at most [`ami_core::sms::MAX_BODY_CHARS`] characters (30 parts at most); a
/// body needing more than 255 parts cannot be numbered and has its total capped at 255.
pub fn parts(body: &str, method: LongMessages, reference: u16) -> Vec<Part> {
    let encoded = encode(body);
    if encoded.bytes.len() <= encoded.single {
        return vec![single_part(encoded.data_coding, encoded.bytes)];
    }
    if method == LongMessages::Payload {
        return vec![Part {
            data_coding: encoded.data_coding,
            udhi: false,
            short_message: Vec::new(),
            sar: None,
            message_payload: Some(encoded.bytes),
        }];
    }
    let chunks = split(&encoded);
    let total = u8::try_from(chunks.len()).unwrap_or(u8::MAX);
    let [_, reference_low] = reference.to_be_bytes();
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let seq = u8::try_from(index + 1).unwrap_or(u8::MAX);
            match method {
                LongMessages::Udh => {
                    let mut short_message = Vec::with_capacity(UDH_LEN + chunk.len());
                    short_message.extend_from_slice(&[0x05, 0x00, 0x03, reference_low, total, seq]);
                    short_message.extend_from_slice(chunk);
                    Part {
                        data_coding: encoded.data_coding,
                        udhi: true,
                        short_message,
                        sar: None,
                        message_payload: None,
                    }
                }
                LongMessages::Sar | LongMessages::Payload => Part {
                    data_coding: encoded.data_coding,
                    udhi: false,
                    short_message: chunk.to_vec(),
                    sar: Some(Sar {
                        reference,
                        total,
                        seq,
                    }),
                    message_payload: None,
                },
            }
        })
        .collect()
}

fn single_part(data_coding: u8, short_message: Vec<u8>) -> Part {
    Part {
        data_coding,
        udhi: false,
        short_message,
        sar: None,
        message_payload: None,
    }
}

/// GSM-7 (one septet per byte) when every character has a GSM 03.38 code, else UTF-16BE:
/// the same decision as `ami_core::sms::segment`, taken from the same tables.
fn encode(body: &str) -> Encoded {
    let mut bytes = Vec::with_capacity(body.len());
    let mut char_lengths = Vec::with_capacity(body.len());
    let mut gsm7 = true;
    for c in body.chars() {
        if let Some(code) = gsm7_basic_code(c) {
            bytes.push(code);
            char_lengths.push(1);
        } else if let Some(code) = gsm7_extension_code(c) {
            bytes.extend_from_slice(&[ESCAPE, code]);
            char_lengths.push(2);
        } else {
            gsm7 = false;
            break;
        }
    }
    if gsm7 {
        return Encoded {
            data_coding: DATA_CODING_GSM7,
            bytes,
            char_lengths,
            single: GSM7_SINGLE,
            part: GSM7_PART,
        };
    }
    bytes.clear();
    char_lengths.clear();
    let mut units = [0u16; 2];
    for c in body.chars() {
        let utf16 = c.encode_utf16(&mut units);
        for unit in utf16.iter() {
            bytes.extend_from_slice(&unit.to_be_bytes());
        }
        char_lengths.push(2 * utf16.len());
    }
    Encoded {
        data_coding: DATA_CODING_UCS2,
        bytes,
        char_lengths,
        single: 2 * UCS2_SINGLE,
        part: 2 * UCS2_PART,
    }
}

/// Greedy packing, a character never split: the rule `ami_core::sms::segment` counts by.
fn split(encoded: &Encoded) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for &length in &encoded.char_lengths {
        if end + length - start > encoded.part {
            chunks.push(&encoded.bytes[start..end]);
            start = end;
        }
        end += length;
    }
    chunks.push(&encoded.bytes[start..end]);
    chunks
}

/// The GSM 03.38 default alphabet indexed by code (0x1B, the escape, maps to None).
static GSM7_BY_CODE: LazyLock<[Option<char>; 128]> = LazyLock::new(|| {
    let mut table = [None; 128];
    for (index, c) in GSM7_BASIC.chars().enumerate() {
        let code = if index < usize::from(ESCAPE) {
            index
        } else {
            index + 1
        };
        if let Some(slot) = table.get_mut(code) {
            *slot = Some(c);
        }
    }
    table
});

fn gsm7_basic_code(c: char) -> Option<u8> {
    GSM7_BY_CODE
        .iter()
        .position(|&entry| entry == Some(c))
        .and_then(|code| u8::try_from(code).ok())
}

fn gsm7_extension_code(c: char) -> Option<u8> {
    GSM7_EXTENSION
        .chars()
        .zip(GSM7_EXTENSION_CODES)
        .find_map(|(extension, code)| (extension == c).then_some(code))
}

fn gsm7_extension_char(code: u8) -> Option<char> {
    GSM7_EXTENSION_CODES
        .iter()
        .zip(GSM7_EXTENSION.chars())
        .find_map(|(&known, c)| (known == code).then_some(c))
}

/// Text of an inbound `short_message` (or `message_payload`), never failing:
///
/// - 0x00 (SMSC default alphabet): GSM 03.38 septets, one per byte, with the extension
///   table. A byte at or above 0x80 cannot be a septet: such a body comes from an SMSC whose
///   default alphabet is an 8-bit one, and is read as Latin-1 as a whole.
/// - 0x01 IA5/ASCII (bytes above 0x7F become U+FFFD), 0x03 Latin-1, 0x06 Cyrillic
///   (ISO-8859-5), 0x08 UCS-2/UTF-16BE (a lone surrogate becomes U+FFFD, an odd trailing
///   byte is dropped).
/// - 0x10-0x7F and 0xC0-0xFF: the GSM 03.38 data coding scheme groups (general data
///   coding, message waiting indication, data coding/message class), by their alphabet bits.
/// - Anything else (8-bit data, compressed text, other national alphabets): lossy UTF-8.
pub fn decode(data_coding: u8, bytes: &[u8]) -> String {
    match alphabet(data_coding) {
        Alphabet::Gsm7 if bytes.iter().all(u8::is_ascii) => decode_gsm7(bytes),
        Alphabet::Gsm7 | Alphabet::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
        Alphabet::Ascii => bytes
            .iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect(),
        Alphabet::Cyrillic => bytes.iter().map(|&b| iso_8859_5(b)).collect(),
        Alphabet::Ucs2 => char::decode_utf16(
            bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]])),
        )
        .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        Alphabet::Other => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alphabet {
    Gsm7,
    Ascii,
    Latin1,
    Cyrillic,
    Ucs2,
    Other,
}

/// The alphabet of a `data_coding`: SMPP 3.4 §5.2.19 for 0x00-0x0F, the GSM 03.38 data
/// coding scheme (§4) above.
fn alphabet(data_coding: u8) -> Alphabet {
    match data_coding {
        0x00 => Alphabet::Gsm7,
        0x01 => Alphabet::Ascii,
        0x03 => Alphabet::Latin1,
        0x06 => Alphabet::Cyrillic,
        0x08 => Alphabet::Ucs2,
        0x02 | 0x04 | 0x05 | 0x07 | 0x09..=0x0F => Alphabet::Other,
        // General data coding (00xx) and automatic deletion (01xx): bit 5 compressed,
        // bits 3-2 the alphabet.
        0x10..=0x7F if data_coding & 0x20 != 0 => Alphabet::Other,
        0x10..=0x7F => match (data_coding >> 2) & 0x03 {
            0 => Alphabet::Gsm7,
            2 => Alphabet::Ucs2,
            _ => Alphabet::Other,
        },
        // Reserved coding groups.
        0x80..=0xBF => Alphabet::Other,
        // Message waiting indication: discard or store, default alphabet.
        0xC0..=0xDF => Alphabet::Gsm7,
        // Message waiting indication: store, UCS-2.
        0xE0..=0xEF => Alphabet::Ucs2,
        // Data coding/message class: bit 2 chooses 8-bit data over the default alphabet.
        0xF0..=0xFF if data_coding & 0x04 == 0 => Alphabet::Gsm7,
        0xF0..=0xFF => Alphabet::Other,
    }
}

/// GSM 03.38 septets, one per byte (every byte below 0x80). An escape followed by a code
/// the extension table does not define shows that code's default-alphabet character, and an
/// escape that ends the text or precedes another escape shows a space, as GSM 03.38 says.
fn decode_gsm7(septets: &[u8]) -> String {
    let mut text = String::with_capacity(septets.len());
    let mut rest = septets.iter().copied();
    while let Some(code) = rest.next() {
        if code != ESCAPE {
            text.push(gsm7_default_char(code));
            continue;
        }
        match rest.next() {
            None | Some(ESCAPE) => text.push(' '),
            Some(extension) => text.push(
                gsm7_extension_char(extension).unwrap_or_else(|| gsm7_default_char(extension)),
            ),
        }
    }
    text
}

fn gsm7_default_char(code: u8) -> char {
    GSM7_BY_CODE
        .get(usize::from(code))
        .copied()
        .flatten()
        .unwrap_or(' ')
}

/// ISO-8859-5: Latin-1 up to 0xA0, Cyrillic above (at U+0360 + byte) but for three signs.
fn iso_8859_5(byte: u8) -> char {
    match byte {
        0x00..=0xA0 | 0xAD => char::from(byte),
        0xF0 => '№',
        0xFD => '§',
        _ => char::from_u32(0x0360 + u32::from(byte)).unwrap_or(char::REPLACEMENT_CHARACTER),
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
