//! Resource ids: `<prefix>_<26 chars>`, 48 bits of millisecond time then 100 random bits,
//! Crockford base32 lowercase. Time-sortable so lists page by id.

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters after the prefix: 10 for the timestamp (50 bits), 20 random (100 bits).
const BODY_LEN: usize = 30;

pub const PREFIXES: &[&str] = &[
    "acct", "simreq", "offer", "customer", "contract", "mid", "msg", "call", "wh", "evt", "num",
    "dlv", "ks", "kyc", "tok",
];

pub fn new_id(prefix: &str) -> String {
    new_id_at(prefix, crate::time::now_ms())
}

pub fn new_id_at(prefix: &str, ms: i64) -> String {
    let mut out = String::with_capacity(prefix.len() + 1 + BODY_LEN);
    out.push_str(prefix);
    out.push('_');
    let t = ms.max(0) as u64;
    for i in (0..10).rev() {
        out.push(ALPHABET[((t >> (i * 5)) & 31) as usize] as char);
    }
    let mut random = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut random);
    for b in random {
        out.push(ALPHABET[(b & 31) as usize] as char);
    }
    out
}

/// True when `s` has the shape of an id with this prefix. Used to refuse garbage early;
/// a well-formed id that does not exist is still a 404.
pub fn is_well_formed(prefix: &str, s: &str) -> bool {
    let Some(body) = s.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) else {
        return false;
    };
    body.len() == BODY_LEN && body.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_unique_and_time_sorted() {
        let a = new_id_at("mid", 1_000);
        let b = new_id_at("mid", 2_000);
        assert!(is_well_formed("mid", &a), "{a}");
        assert!(a < b);
        assert_ne!(new_id("mid"), new_id("mid"));
        assert!(!is_well_formed("acct", &a));
        assert!(!is_well_formed("mid", "mid_../../etc"));
        assert!(!is_well_formed("mid", &a.to_uppercase()));
    }
}
