//! Delivery receipts: a `deliver_sm` (or `data_sm`) that reports on an earlier submission,
//! either in TLVs (`receipted_message_id`, `message_state`, `network_error_code`) or in the
//! text form of SMPP 3.4 Appendix B:
//! `id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…`.

/// What a receipt means for the message it reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed,
    /// Still en route, or accepted by the SMSC: no change beyond "sent".
    Accepted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The SMSC's id of the reported message, as the receipt spells it.
    pub message_id: String,
    pub outcome: Outcome,
    /// The SMPP state name: ENROUTE, DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, REJECTD.
    pub state: String,
    /// Why a failed message failed, e.g. "UNDELIV err:005".
    pub error: Option<String>,
}

/// `esm_class` bits 2-5: the message type.
const MESSAGE_TYPE_MASK: u8 = 0x3C;
const SMSC_DELIVERY_RECEIPT: u8 = 0x04;
const INTERMEDIATE_NOTIFICATION: u8 = 0x20;

/// The receipt carried by a `deliver_sm`, or None when it is not one or cannot be read.
///
/// It is a receipt when `esm_class` marks an SMSC delivery receipt or an intermediate
/// notification, or when `receipted_message_id` or `message_state` is present. Each TLV
/// wins over the text's field: the id, the state (a `message_state` outside 1-8 falls back
/// to the text) and the error (a well-formed 3-byte `network_error_code`). Pass the
/// `message_payload` TLV as `short_message` when the SMSC sends the text there. An unknown
/// state, a missing id or a missing state give None.
pub fn parse(
    esm_class: u8,
    short_message: &[u8],
    receipted_message_id: Option<&str>,
    message_state: Option<u8>,
    network_error_code: Option<&[u8]>,
) -> Option<Receipt> {
    let message_type = esm_class & MESSAGE_TYPE_MASK;
    let marked = message_type == SMSC_DELIVERY_RECEIPT || message_type == INTERMEDIATE_NOTIFICATION;
    if !marked && receipted_message_id.is_none() && message_state.is_none() {
        return None;
    }
    let text = String::from_utf8_lossy(short_message);
    let fields = TextFields::parse(&text);

    let message_id = receipted_message_id
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .or(fields.id)?
        .to_owned();
    let state = message_state
        .and_then(state_name)
        .or_else(|| fields.stat.and_then(canonical_state))?;
    let outcome = outcome(state)?;
    let error = (outcome == Outcome::Failed).then(|| {
        match (network_error_code.and_then(network_error), fields.err) {
            (Some(network), _) => format!("{state} {network}"),
            (None, Some(err)) => format!("{state} err:{err}"),
            (None, None) => state.to_owned(),
        }
    });
    Some(Receipt {
        message_id,
        outcome,
        state: state.to_owned(),
        error,
    })
}

/// The `message_state` names of SMPP 3.4 §5.2.28, as the text form spells them.
fn state_name(message_state: u8) -> Option<&'static str> {
    Some(match message_state {
        1 => "ENROUTE",
        2 => "DELIVRD",
        3 => "EXPIRED",
        4 => "DELETED",
        5 => "UNDELIV",
        6 => "ACCEPTD",
        7 => "UNKNOWN",
        8 => "REJECTD",
        _ => return None,
    })
}

/// A text `stat` in its canonical spelling; gateways also write the states out in full.
fn canonical_state(stat: &str) -> Option<&'static str> {
    Some(match stat.to_ascii_uppercase().as_str() {
        "ENROUTE" => "ENROUTE",
        "DELIVRD" | "DELIVERED" => "DELIVRD",
        "EXPIRED" => "EXPIRED",
        "DELETED" => "DELETED",
        "UNDELIV" | "UNDELIVERABLE" => "UNDELIV",
        "ACCEPTD" | "ACCEPTED" => "ACCEPTD",
        "UNKNOWN" => "UNKNOWN",
        "REJECTD" | "REJECTED" => "REJECTD",
        _ => return None,
    })
}

fn outcome(state: &str) -> Option<Outcome> {
    match state {
        "DELIVRD" => Some(Outcome::Delivered),
        "EXPIRED" | "DELETED" | "UNDELIV" | "REJECTD" => Some(Outcome::Failed),
        "ENROUTE" | "ACCEPTD" => Some(Outcome::Accepted),
        _ => None,
    }
}

/// `network_error_code`: network type (1 byte) and error code (2 bytes, big-endian).
fn network_error(value: &[u8]) -> Option<String> {
    let [network, high, low] = <[u8; 3]>::try_from(value).ok()?;
    let code = u16::from_be_bytes([high, low]);
    let network = match network {
        1 => "ANSI-136",
        2 => "IS-95",
        3 => "GSM",
        4 => "ANSI-136 cause",
        5 => "IS-95 cause",
        6 => "ANSI-41",
        7 => "SMPP",
        8 => "SMSC",
        _ => return Some(format!("network error {network}:{code}")),
    };
    Some(format!("{network} error {code}"))
}

/// The fields of the text form that matter here. Keys are case-insensitive and may come in
/// any order; each value runs to the next key. Only the first occurrence of a key counts,
/// so the message excerpt after `text:` cannot override the real fields.
#[derive(Debug, Default)]
struct TextFields<'a> {
    id: Option<&'a str>,
    stat: Option<&'a str>,
    err: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Id,
    Sub,
    Dlvrd,
    SubmitDate,
    DoneDate,
    Stat,
    Err,
    Text,
}

/// Keys as written (lowercase); dates also appear with an underscore.
const KEYS: [(&str, Key); 10] = [
    ("id:", Key::Id),
    ("sub:", Key::Sub),
    ("dlvrd:", Key::Dlvrd),
    ("submit date:", Key::SubmitDate),
    ("submit_date:", Key::SubmitDate),
    ("done date:", Key::DoneDate),
    ("done_date:", Key::DoneDate),
    ("stat:", Key::Stat),
    ("err:", Key::Err),
    ("text:", Key::Text),
];

impl<'a> TextFields<'a> {
    fn parse(text: &'a str) -> Self {
        // ASCII lowercasing keeps byte offsets, so positions found here index `text`.
        let lower = text.to_ascii_lowercase();
        // (key start, value start, key) of each key's first occurrence.
        let mut found: Vec<(usize, usize, Key)> = Vec::new();
        for (pattern, key) in KEYS {
            if found.iter().any(|&(_, _, k)| k == key) {
                continue;
            }
            if let Some(start) = find_key(&lower, pattern) {
                found.push((start, start + pattern.len(), key));
            }
        }
        found.sort_unstable_by_key(|&(start, _, _)| start);
        let mut fields = TextFields::default();
        for (index, &(_, value_start, key)) in found.iter().enumerate() {
            let value_end = found
                .get(index + 1)
                .map_or(text.len(), |&(next_start, _, _)| next_start);
            let value = text
                .get(value_start..value_end.max(value_start))
                .unwrap_or("")
                .split_whitespace()
                .next();
            match key {
                Key::Id => fields.id = value,
                Key::Stat => fields.stat = value,
                Key::Err => fields.err = value,
                Key::Sub | Key::Dlvrd | Key::SubmitDate | Key::DoneDate | Key::Text => {}
            }
        }
        fields
    }
}

/// The first occurrence of `pattern` at the start of the text or after whitespace (so that
/// `id:` does not match inside another word).
fn find_key(lower: &str, pattern: &str) -> Option<usize> {
    lower.match_indices(pattern).map(|(at, _)| at).find(|&at| {
        lower[..at]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace)
    })
}

#[cfg(test)]
#[path = "receipt_tests.rs"]
mod tests;
