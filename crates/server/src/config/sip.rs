//! The SIP side of `call_carrier = "sip"`: the user agent's listeners and media (`[sip]`)
//! and the trunks (`[[sip_trunks]]`). What one entry says about itself is checked as it is
//! read; the rules across keys (listeners against trunk transports, a trunk at all, the
//! RTP range) in `sip_rules.rs`.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::types::{Secret, bounded, parse_str};

/// `[sip]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// Empty: no UDP listener.
    #[serde(with = "optional_addr")]
    pub listen_udp: Option<SocketAddr>,
    /// Empty: no TCP listener.
    #[serde(with = "optional_addr")]
    pub listen_tcp: Option<SocketAddr>,
    /// Empty: the listener's own address.
    #[serde(with = "optional_ip")]
    pub public_host: Option<IpAddr>,
    #[serde(deserialize_with = "bounded::<_, _, 1, 65_535>")]
    pub rtp_port_first: u16,
    #[serde(deserialize_with = "bounded::<_, _, 1, 65_535>")]
    pub rtp_port_last: u16,
    #[serde(deserialize_with = "codecs")]
    pub codecs: Vec<String>,
    #[serde(deserialize_with = "bounded::<_, _, 1, 3_600>")]
    pub ring_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    #[default]
    Udp,
    Tcp,
}

/// How a trunk writes numbers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NumberFormat {
    /// `+34600111222` as is.
    #[default]
    E164,
    /// National numbers without their country prefix, international ones with
    /// `international_prefix`.
    National {
        country_prefix: String,
        #[serde(default = "international_prefix")]
        international_prefix: String,
        #[serde(default)]
        trunk_prefix: String,
    },
}

/// `[[sip_trunks]]`: one carrier account reached over SIP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SipTrunk {
    #[serde(deserialize_with = "name")]
    pub name: String,
    /// `host:port`.
    pub proxy: String,
    #[serde(default)]
    pub transport: SipTransport,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    #[serde(default)]
    pub realm: String,
    #[serde(default)]
    pub register: bool,
    #[serde(
        default = "register_expiry",
        deserialize_with = "bounded::<_, _, 60, 86_400>"
    )]
    pub register_expiry_secs: u32,
    #[serde(default, with = "networks")]
    pub allowed_sources: Vec<ipnet::IpNet>,
    #[serde(default)]
    pub number_format: NumberFormat,
}

fn international_prefix() -> String {
    "00".into()
}

fn register_expiry() -> u32 {
    3600
}

impl SipTrunk {
    pub fn settings(&self) -> ami_voice::Trunk {
        let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        ami_voice::Trunk {
            name: self.name.clone(),
            proxy: self.proxy.clone(),
            transport: match self.transport {
                SipTransport::Udp => ami_voice::Transport::Udp,
                SipTransport::Tcp => ami_voice::Transport::Tcp,
            },
            username: text(&self.username),
            password: self.password.expose().map(str::to_owned),
            realm: text(&self.realm),
            register: self.register,
            register_expiry_secs: self.register_expiry_secs,
            allowed_sources: self.allowed_sources.clone(),
            number_format: match &self.number_format {
                NumberFormat::E164 => ami_voice::NumberFormat::E164,
                NumberFormat::National {
                    country_prefix,
                    international_prefix,
                    trunk_prefix,
                } => ami_voice::NumberFormat::National {
                    country_prefix: country_prefix.clone(),
                    international_prefix: international_prefix.clone(),
                    trunk_prefix: trunk_prefix.clone(),
                },
            },
        }
    }
}

impl SipSection {
    /// The user agent's settings with these trunks.
    pub fn settings(&self, trunks: &[SipTrunk]) -> ami_voice::SipSettings {
        let mut settings = ami_voice::SipSettings::new(
            self.listen_udp,
            trunks.iter().map(SipTrunk::settings).collect(),
        );
        settings.listen_tcp = self.listen_tcp;
        settings.public_host = self.public_host;
        settings.ring_timeout_secs = self.ring_timeout_secs;
        settings
    }

    /// The codecs in the order of preference (names are checked as they are read).
    pub fn codec_list(&self) -> Vec<ami_voice::Codec> {
        self.codecs
            .iter()
            .filter_map(|c| ami_voice::Codec::parse(c))
            .collect()
    }
}

fn codecs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    if names.is_empty() {
        return Err(serde::de::Error::custom("must name PCMU, PCMA or both"));
    }
    for name in &names {
        if ami_voice::Codec::parse(name).is_none() {
            return Err(serde::de::Error::custom(format!(
                "`{name}` is not a supported codec (PCMU, PCMA)"
            )));
        }
    }
    Ok(names)
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

mod optional_addr {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        parse_str(d, |s| {
            if s.is_empty() {
                return Ok(None);
            }
            SocketAddr::from_str(s)
                .map(Some)
                .map_err(|_| format!("`{s}` is not an ip:port address (or empty: off)"))
        })
    }

    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match addr {
            Some(addr) => s.collect_str(addr),
            None => s.serialize_str(""),
        }
    }
}

mod optional_ip {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
        parse_str(d, |s| {
            if s.is_empty() {
                return Ok(None);
            }
            IpAddr::from_str(s)
                .map(Some)
                .map_err(|_| format!("`{s}` is not an IP address (or empty)"))
        })
    }

    pub fn serialize<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.collect_str(ip),
            None => s.serialize_str(""),
        }
    }
}

/// Addresses or CIDR networks; a bare address is its own /32 or /128.
mod networks {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        items
            .iter()
            .map(|s| {
                ipnet::IpNet::from_str(s)
                    .or_else(|_| IpAddr::from_str(s).map(ipnet::IpNet::from))
                    .map_err(|_| {
                        serde::de::Error::custom(format!(
                            "`{s}` is not an IP address or a CIDR network"
                        ))
                    })
            })
            .collect()
    }

    pub fn serialize<S: Serializer>(nets: &[ipnet::IpNet], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(nets.iter().map(|n| n.to_string()))
    }
}
