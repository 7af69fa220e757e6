//! The validated value types of the configuration. Each one checks its value as it is
//! deserialised and serialises back to what `ami config show` prints: a key's rules live
//! in its type, so a new key of an existing kind needs no new code.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub(super) const REDACTED: &str = "<redacted>";

/// A configured secret, empty when unset. Its Debug and its serialised form are redacted,
/// and a value of the wrong type is refused without being echoed.
#[derive(Clone, Default)]
pub struct Secret(Option<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        Secret((!value.is_empty()).then_some(value))
    }

    /// The secret itself, `None` when unset.
    pub fn expose(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// What Debug and `config show` print: `<redacted>` when set, nothing when unset.
    fn shown(&self) -> &'static str {
        if self.is_set() { REDACTED } else { "" }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v.trim()))
            }

            // The other kinds are refused by name only: serde's own message would echo them.
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("expected a string, found a boolean"))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom("expected a string, found a number"))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom("expected a string, found a number"))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("expected a string, found a number"))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
                Err(de::Error::custom("expected a string, found an array"))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
                Err(de::Error::custom("expected a string, found a table"))
            }
        }

        d.deserialize_str(SecretVisitor)
    }
}

/// The database URL, always with a scheme (`sqlite://…`, `sqlite::memory:`,
/// `postgres://…`); a bare path means SQLite. Debug and `config show` mask its password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("is empty".into());
        }
        let scheme = match s.find("://") {
            Some(i) => Some(&s[..i]),
            // `sqlite:path` and `sqlite::memory:` have no `//`.
            None if s.starts_with("sqlite:") => Some("sqlite"),
            None => None,
        };
        match scheme.map(str::to_ascii_lowercase).as_deref() {
            Some("sqlite" | "postgres" | "postgresql") => Ok(DatabaseUrl(s.to_owned())),
            Some(other) => Err(format!(
                "unknown database scheme `{}` (expected sqlite:// or postgres://)",
                shown(other)
            )),
            None => Ok(DatabaseUrl(format!("sqlite://{s}"))),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_database_url(&self.0))
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact_database_url(&self.0))
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_str(d, str::parse)
    }
}

/// Masks the password of a URL (`user:<redacted>@host`, `?password=<redacted>`).
pub fn redact_database_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let (before_query, query) = match rest.find('?') {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    // The last '@' before the query ends the userinfo, whatever the password contains.
    let mut out = String::from(head);
    match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &before_query[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// A duration in milliseconds (keys ending in `_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Millis(u64);

impl Millis {
    pub const fn from_millis(ms: u64) -> Self {
        Millis(ms)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    pub const fn duration(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// The milliseconds as the store's timestamps count them.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl TryFrom<i64> for Millis {
    type Error = std::num::TryFromIntError;

    fn try_from(ms: i64) -> Result<Self, Self::Error> {
        u64::try_from(ms).map(Millis)
    }
}

/// Whether a commit reaches the disk before its answer (SQLite `synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// In the OS before the answer: survives a process crash, not an OS crash.
    Normal,
    /// On the disk before the answer, group commits included.
    Full,
}

impl From<Durability> for ami_store::Durability {
    fn from(d: Durability) -> Self {
        match d {
            Durability::Normal => ami_store::Durability::Normal,
            Durability::Full => ami_store::Durability::Full,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: one readable line per event.
    Text,
    /// For log collectors: one JSON object per line.
    Json,
}

/// The carrier that carries SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Carrier {
    Sandbox,
    /// SMS over SMPP 3.4 to the `[[smpp]]` connections; calls stay on the sandbox.
    Smpp,
}

/// The carrier that carries calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallCarrier {
    Sandbox,
    /// Calls over the `[[sip_trunks]]`, audio to the agent's WebSocket or a SIP URI.
    Sip,
}

/// An integer in `MIN..=MAX`, deserialised into any integer type it fits (see [`bounded`]).
pub(super) struct Within<T, const MIN: i64, const MAX: i64>(pub T);

impl<'de, T: TryFrom<i64>, const MIN: i64, const MAX: i64> Deserialize<'de>
    for Within<T, MIN, MAX>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Int<const MIN: i64, const MAX: i64>;

        impl<const MIN: i64, const MAX: i64> Visitor<'_> for Int<MIN, MAX> {
            type Value = i64;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an integer between {MIN} and {MAX}")
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<i64, E> {
                if (MIN..=MAX).contains(&n) {
                    Ok(n)
                } else if n <= 0 && MIN >= 1 {
                    Err(E::custom(format!("must be greater than zero, got {n}")))
                } else {
                    Err(E::custom(format!(
                        "must be an integer between {MIN} and {MAX}, got {n}"
                    )))
                }
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<i64, E> {
                match i64::try_from(n) {
                    Ok(n) => self.visit_i64(n),
                    Err(_) => Err(E::custom(format!(
                        "must be an integer between {MIN} and {MAX}, got {n}"
                    ))),
                }
            }
        }

        let n = d.deserialize_i64(Int::<MIN, MAX>)?;
        T::try_from(n)
            .map(Within)
            .map_err(|_| de::Error::custom(format!("{n} does not fit this key")))
    }
}

/// `deserialize_with` for integer keys: `bounded::<_, _, 1, 1000>`.
pub(super) fn bounded<'de, D, T, const MIN: i64, const MAX: i64>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    Within::<T, MIN, MAX>::deserialize(d).map(|w| w.0)
}

/// `deserialize_with` for lists of integers, each in `MIN..=MAX` (a bad one is named by
/// its index).
pub(super) fn bounded_list<'de, D, T, const MIN: i64, const MAX: i64>(
    d: D,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let items = Vec::<Within<T, MIN, MAX>>::deserialize(d)?;
    Ok(items.into_iter().map(|w| w.0).collect())
}

/// `host:port`, or `localhost:port`.
pub(super) mod listen {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        parse_str(d, |s| {
            parse(s).ok_or_else(|| format!("`{}` is not a host:port address", shown(s)))
        })
    }

    pub fn serialize<S: Serializer>(addr: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(addr)
    }

    fn parse(s: &str) -> Option<SocketAddr> {
        if let Ok(addr) = SocketAddr::from_str(s) {
            return Some(addr);
        }
        let port = s.strip_prefix("localhost:")?.parse::<u16>().ok()?;
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

/// An http(s) URL without query or fragment, kept without its trailing slash; empty is none.
pub(super) mod base_url {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        parse_str(d, normalise)
    }

    pub fn serialize<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(url.as_deref().unwrap_or_default())
    }

    fn normalise(s: &str) -> Result<Option<String>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"));
        let ok = rest.is_some_and(|r| {
            !r.is_empty()
                && !r.starts_with('/')
                && !r
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
        });
        if ok {
            Ok(Some(s.trim_end_matches('/').to_owned()))
        } else {
            Err(format!(
                "`{}` is not an http(s) URL without query",
                shown(s)
            ))
        }
    }
}

/// Comma-separated CIDR blocks (or single addresses); every bad entry is named.
pub(super) mod subnets {
    use ami_webhooks::AllowSubnets;

    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AllowSubnets, D::Error> {
        parse_str(d, |s| {
            let bad: Vec<String> = s
                .split(',')
                .map(str::trim)
                .filter(|entry| AllowSubnets::parse(entry).is_err())
                .map(|entry| format!("`{}` is not a CIDR", shown(entry)))
                .collect();
            if bad.is_empty() {
                AllowSubnets::parse(s).map_err(|e| e.to_string())
            } else {
                Err(bad.join(", "))
            }
        })
    }

    pub fn serialize<S: Serializer>(subnets: &AllowSubnets, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(subnets)
    }
}

/// A comma-separated list of names; blank entries are dropped.
pub(super) mod comma_list {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        parse_str(d, |s| {
            Ok(s.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect())
        })
    }

    pub fn serialize<S: Serializer>(list: &[String], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&list.join(","))
    }
}

/// An OTLP/HTTP collector address: empty (no traces), or an `http://` or `https://` URL.
pub(super) mod otlp_endpoint {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        parse_str(d, |s| {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            let uri: http::Uri = s
                .parse()
                .map_err(|_| format!("{} is not a URL", shown(s)))?;
            match (uri.scheme_str(), uri.host()) {
                (Some("http" | "https"), Some(_)) if uri.query().is_none() => {
                    Ok(Some(s.to_owned()))
                }
                _ => Err(format!(
                    "{} must be an http:// or https:// address of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318",
                    shown(s)
                )),
            }
        })
    }

    pub fn serialize<S: Serializer>(endpoint: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(endpoint.as_deref().unwrap_or_default())
    }
}

/// Comma-separated IP addresses or CIDR networks; empty is none.
pub(super) mod networks {

    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
        parse_str(d, |s| {
            s.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    ipnet::IpNet::from_str(n)
                        .or_else(|_| std::net::IpAddr::from_str(n).map(ipnet::IpNet::from))
                        .map_err(|_| {
                            format!("`{}` is not an IP address or a CIDR network", shown(n))
                        })
                })
                .collect()
        })
    }

    pub fn serialize<S: Serializer>(nets: &[ipnet::IpNet], s: S) -> Result<S::Ok, S::Error> {
        let list: Vec<String> = nets.iter().map(ToString::to_string).collect();
        s.serialize_str(&list.join(","))
    }
}

/// A file path; empty is none.
pub(super) mod optional_path {
    use std::path::PathBuf;

    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        parse_str(d, |s| {
            if s.chars().any(char::is_control) {
                Err(format!(
                    "`{}` is not a file path (control character)",
                    shown(s)
                ))
            } else if s.ends_with('/') {
                Err(format!("`{}` names a directory, not a file", shown(s)))
            } else {
                Ok((!s.is_empty()).then(|| PathBuf::from(s)))
            }
        })
    }

    pub fn serialize<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        match path {
            Some(path) => s.collect_str(&path.display()),
            None => s.serialize_str(""),
        }
    }
}

/// A `tracing` EnvFilter directive list.
pub(super) fn log_filter<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| match tracing_subscriber::EnvFilter::try_new(s) {
        Ok(_) => Ok(s.to_owned()),
        Err(e) => Err(format!("invalid filter: {e}")),
    })
}

/// Empty, or at most 64 visible ASCII characters.
pub(super) fn replica_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| {
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            Err(format!(
                "`{}` may hold only visible ASCII characters",
                shown(s)
            ))
        } else if s.len() > 64 {
            Err(format!(
                "is {} characters long, at most 64 allowed",
                s.len()
            ))
        } else {
            Ok(s.to_owned())
        }
    })
}

/// A string key: trimmed, then checked by `parse`, whose message becomes the problem.
pub(super) fn parse_str<'de, D, T>(
    d: D,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = String::deserialize(d)?;
    parse(raw.trim()).map_err(de::Error::custom)
}

/// A value echoed in an error message: printable, bounded.
pub(super) fn shown(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 80 {
        format!("{}…", escaped.chars().take(80).collect::<String>())
    } else {
        escaped
    }
}
