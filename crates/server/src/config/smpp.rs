//! The SMPP connections (`[[smpp]]`) and routes (`[[smpp_routes]]`) of `carrier = "smpp"`.
//! What one entry says about itself is checked here as it is read; names that routes refer
//! to, and timeouts against `carrier_timeout_ms`, in `rules.rs`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::types::{Secret, bounded, parse_str};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BindMode {
    Transceiver,
    TransmitterReceiver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LongMessages {
    Udh,
    Sar,
    Payload,
}

/// One SMSC account. Only the address and the credentials must be given.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmppConnection {
    #[serde(deserialize_with = "name")]
    pub name: String,
    #[serde(deserialize_with = "host")]
    pub host: String,
    #[serde(default = "port", deserialize_with = "bounded::<_, _, 1, 65_535>")]
    pub port: u16,
    #[serde(deserialize_with = "c_octets::<_, 16>")]
    pub system_id: String,
    pub password: Secret,
    #[serde(default, deserialize_with = "c_octets::<_, 13>")]
    pub system_type: String,
    #[serde(default = "transceiver")]
    pub bind: BindMode,
    #[serde(default)]
    pub tls: bool,
    #[serde(default = "window", deserialize_with = "bounded::<_, _, 1, 1_000>")]
    pub window: u32,
    /// 0: no cap.
    #[serde(default, deserialize_with = "bounded::<_, _, 0, 100_000>")]
    pub max_per_second: u32,
    #[serde(
        default = "enquire_link",
        deserialize_with = "bounded::<_, _, 1_000, 3_600_000>"
    )]
    pub enquire_link_ms: u64,
    #[serde(
        default = "response_timeout",
        deserialize_with = "bounded::<_, _, 100, 600_000>"
    )]
    pub response_timeout_ms: u64,
    #[serde(
        default = "reconnect_min",
        deserialize_with = "bounded::<_, _, 10, 3_600_000>"
    )]
    pub reconnect_min_ms: u64,
    #[serde(
        default = "reconnect_max",
        deserialize_with = "bounded::<_, _, 10, 3_600_000>"
    )]
    pub reconnect_max_ms: u64,
    #[serde(default = "one", deserialize_with = "bounded::<_, _, 0, 6>")]
    pub source_ton: u8,
    #[serde(default = "one", deserialize_with = "bounded::<_, _, 0, 18>")]
    pub source_npi: u8,
    #[serde(default = "udh")]
    pub long_messages: LongMessages,
}

/// Destinations starting with `prefix` go through `connections`, the first one bound.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmppRoute {
    #[serde(deserialize_with = "prefix")]
    pub prefix: String,
    pub connections: Vec<String>,
}

impl SmppConnection {
    pub fn settings(&self) -> ami_smpp::Connection {
        let ms = Duration::from_millis;
        ami_smpp::Connection {
            name: self.name.clone(),
            host: self.host.clone(),
            port: self.port,
            system_id: self.system_id.clone(),
            password: self.password.expose().unwrap_or_default().to_owned(),
            system_type: self.system_type.clone(),
            bind: match self.bind {
                BindMode::Transceiver => ami_smpp::BindMode::Transceiver,
                BindMode::TransmitterReceiver => ami_smpp::BindMode::TransmitterReceiver,
            },
            tls: self.tls,
            window: self.window as usize,
            max_per_second: self.max_per_second,
            enquire_link: ms(self.enquire_link_ms),
            response_timeout: ms(self.response_timeout_ms),
            reconnect_min: ms(self.reconnect_min_ms),
            reconnect_max: ms(self.reconnect_max_ms.max(self.reconnect_min_ms)),
            source_ton: self.source_ton,
            source_npi: self.source_npi,
            long_messages: match self.long_messages {
                LongMessages::Udh => ami_smpp::text::LongMessages::Udh,
                LongMessages::Sar => ami_smpp::text::LongMessages::Sar,
                LongMessages::Payload => ami_smpp::text::LongMessages::Payload,
            },
        }
    }
}

impl SmppRoute {
    pub fn settings(&self) -> ami_smpp::Route {
        ami_smpp::Route {
            prefix: self.prefix.clone(),
            connections: self.connections.clone(),
        }
    }
}

fn port() -> u16 {
    2775
}
fn transceiver() -> BindMode {
    BindMode::Transceiver
}
fn window() -> u32 {
    10
}
fn enquire_link() -> u64 {
    30_000
}
fn response_timeout() -> u64 {
    5_000
}
fn reconnect_min() -> u64 {
    500
}
fn reconnect_max() -> u64 {
    30_000
}
fn one() -> u8 {
    1
}
fn udh() -> LongMessages {
    LongMessages::Udh
}

fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| {
        if s.is_empty()
            || s.len() > 64
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            Err("must be 1 to 64 letters, digits, `-`, `_` or `.`".to_owned())
        } else {
            Ok(s.to_owned())
        }
    })
}

fn host<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || "/@?#".contains(c)) {
            Err("must be a host name or an IP address".to_owned())
        } else {
            Ok(s.to_owned())
        }
    })
}

/// An SMPP C-Octet String field: printable ASCII, at most `MAX - 1` characters.
fn c_octets<'de, D: Deserializer<'de>, const MAX: usize>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| {
        if s.len() >= MAX || !s.chars().all(|c| c.is_ascii_graphic()) {
            Err(format!(
                "must be at most {} printable ASCII characters",
                MAX - 1
            ))
        } else {
            Ok(s.to_owned())
        }
    })
}

fn prefix<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| {
        let digits = s.strip_prefix('+').unwrap_or("-");
        if digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit()) {
            Err(format!("`{s}` is not `+` followed by up to 15 digits"))
        } else {
            Ok(s.to_owned())
        }
    })
}
