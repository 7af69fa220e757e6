//! What the user agent is told: where it listens, what it calls itself, and the trunks it
//! talks to. Deserialised from the server's configuration (`[sip]`, `[[sip_trunks]]`);
//! `SipSettings::validate` lists every problem at once in plain words.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::number::NumberFormat;

/// The transport toward a trunk's proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

/// One carrier account reached over SIP.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// How calls and logs name the trunk.
    pub name: String,
    /// The trunk's proxy, `host:port` (an IP address or a name).
    pub proxy: String,
    #[serde(default)]
    pub transport: Transport,
    /// Digest credentials for challenges and registration; none: challenges fail the call.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The digest realm to answer; none: whatever the trunk's challenge names.
    #[serde(default)]
    pub realm: Option<String>,
    /// Keep a registration with the trunk (needs `username` and `password`).
    #[serde(default)]
    pub register: bool,
    #[serde(default = "default_register_expiry")]
    pub register_expiry_secs: u32,
    /// Addresses INVITEs from this trunk come from (addresses or CIDR networks). INVITEs
    /// from an address no trunk lists are answered 403 and never routed.
    #[serde(default)]
    pub allowed_sources: Vec<IpNet>,
    /// How the trunk writes numbers in the user part of SIP URIs.
    #[serde(default)]
    pub number_format: NumberFormat,
}

fn default_register_expiry() -> u32 {
    3600
}

impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trunk")
            .field("name", &self.name)
            .field("proxy", &self.proxy)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("realm", &self.realm)
            .field("register", &self.register)
            .field("register_expiry_secs", &self.register_expiry_secs)
            .field("allowed_sources", &self.allowed_sources)
            .field("number_format", &self.number_format)
            .finish()
    }
}

impl Trunk {
    /// Whether an INVITE from `ip` may be this trunk's.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.allowed_sources.iter().any(|net| net.contains(&ip))
    }
}

/// The `[sip]` section with its trunks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSettings {
    #[serde(default)]
    pub listen_udp: Option<SocketAddr>,
    #[serde(default)]
    pub listen_tcp: Option<SocketAddr>,
    /// The address written in Via and Contact when the listeners sit behind NAT; none:
    /// the listener's own address.
    #[serde(default)]
    pub public_host: Option<IpAddr>,
    #[serde(default)]
    pub trunks: Vec<Trunk>,
    /// An outbound call not answered by then is cancelled (cause `NoAnswer`).
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u64,
    /// How long the inbound router may take before the caller gets 503.
    #[serde(default = "default_route_timeout")]
    pub route_timeout_secs: u64,
    /// SIP timer T1 (RFC 3261 §17); every other timer derives from it, the ACK wait for
    /// our 200 OK is 64 × T1.
    #[serde(default = "default_t1")]
    pub t1_ms: u64,
}

fn default_ring_timeout() -> u64 {
    60
}

fn default_route_timeout() -> u64 {
    10
}

fn default_t1() -> u64 {
    500
}

impl SipSettings {
    /// Settings with defaults around the given listeners and trunks.
    pub fn new(listen_udp: Option<SocketAddr>, trunks: Vec<Trunk>) -> Self {
        SipSettings {
            listen_udp,
            listen_tcp: None,
            public_host: None,
            trunks,
            ring_timeout_secs: default_ring_timeout(),
            route_timeout_secs: default_route_timeout(),
            t1_ms: default_t1(),
        }
    }

    pub fn ring_timeout(&self) -> Duration {
        Duration::from_secs(self.ring_timeout_secs)
    }

    pub fn route_timeout(&self) -> Duration {
        Duration::from_secs(self.route_timeout_secs)
    }

    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }

    /// Every problem with the settings, each a sentence naming the field; empty when they
    /// are usable.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.listen_udp.is_none() && self.listen_tcp.is_none() {
            out.push("sip: set listen_udp or listen_tcp (or both)".to_string());
        }
        if self.ring_timeout_secs == 0 {
            out.push("sip.ring_timeout_secs must be at least 1".to_string());
        }
        if self.route_timeout_secs == 0 {
            out.push("sip.route_timeout_secs must be at least 1".to_string());
        }
        if !(10..=5000).contains(&self.t1_ms) {
            out.push("sip.t1_ms must be between 10 and 5000".to_string());
        }
        for (i, t) in self.trunks.iter().enumerate() {
            let at = format!("sip_trunks[{i}] ({})", t.name);
            if t.name.trim().is_empty() {
                out.push(format!("sip_trunks[{i}].name must not be empty"));
            }
            if self.trunks[..i].iter().any(|o| o.name == t.name) {
                out.push(format!("{at}: the name is used by another trunk"));
            }
            if let Err(e) = split_host_port(&t.proxy) {
                out.push(format!("{at}.proxy: {e}"));
            }
            if t.transport == Transport::Tcp && self.listen_tcp.is_none() {
                out.push(format!(
                    "{at}.transport is tcp but sip.listen_tcp is not set"
                ));
            }
            if t.transport == Transport::Udp && self.listen_udp.is_none() {
                out.push(format!(
                    "{at}.transport is udp but sip.listen_udp is not set"
                ));
            }
            if t.username.is_some() != t.password.is_some() {
                out.push(format!("{at}: username and password go together"));
            }
            if t.register && t.username.is_none() {
                out.push(format!("{at}.register needs username and password"));
            }
            if t.register && !(60..=86_400).contains(&t.register_expiry_secs) {
                out.push(format!(
                    "{at}.register_expiry_secs must be between 60 and 86400"
                ));
            }
            if let Err(e) = t.number_format.check() {
                out.push(format!("{at}.number_format: {e}"));
            }
        }
        out
    }

    /// `Ok` when usable, else every problem, one a line.
    pub fn validate(&self) -> Result<(), String> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The trunk an INVITE from `ip` belongs to: the first that allows it.
    pub fn trunk_for_source(&self, ip: IpAddr) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.allows(ip))
    }
}

/// `host:port` into its parts; the port is required, an IPv6 host is bracketed.
pub(crate) fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| format!("`{s}` is not [ipv6]:port"))?;
        (host, port)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| format!("`{s}` is not host:port"))?
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("`{s}` has no usable host"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{s}` has no usable port"))?;
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> SipSettings {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_full_configuration_parses_and_validates() {
        let s = parse(
            r#"
            listen_udp = "0.0.0.0:5060"
            public_host = "203.0.113.7"
            [[trunks]]
            name = "main"
            proxy = "sip.trunk.example:5060"
            username = "acct"
            password = "s3cret"
            register = true
            allowed_sources = ["198.51.100.0/24", "192.0.2.10/32"]
            number_format = { national = { country_prefix = "34" } }
            "#,
        );
        assert_eq!(s.validate(), Ok(()));
        let t = &s.trunks[0];
        assert!(t.allows("198.51.100.77".parse().unwrap()));
        assert!(t.allows("::ffff:192.0.2.10".parse().unwrap()));
        assert!(!t.allows("192.0.2.11".parse().unwrap()));
        assert_eq!(t.register_expiry_secs, 3600);
    }

    #[test]
    fn problems_are_listed_together_with_their_field() {
        let s = parse(
            r#"
            [[trunks]]
            name = "a"
            proxy = "nohost"
            register = true
            [[trunks]]
            name = "a"
            proxy = "h:0"
            username = "u"
            "#,
        );
        let p = s.problems().join("\n");
        assert!(p.contains("set listen_udp or listen_tcp"), "{p}");
        assert!(
            p.contains("sip_trunks[0] (a).proxy: `nohost` is not host:port"),
            "{p}"
        );
        assert!(
            p.contains("sip_trunks[0] (a).register needs username"),
            "{p}"
        );
        assert!(p.contains("sip_trunks[1] (a): the name is used"), "{p}");
        assert!(p.contains("`h:0` has no usable port"), "{p}");
        assert!(p.contains("username and password go together"), "{p}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = toml::from_str::<SipSettings>("listen_udp = \"127.0.0.1:5060\"\nlisten = 1")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `listen`"), "{e}");
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let s = parse(
            r#"
            listen_udp = "127.0.0.1:5060"
            [[trunks]]
            name = "a"
            proxy = "127.0.0.1:5070"
            username = "u"
            password = "hunter2-secret"
            "#,
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn host_and_port_split() {
        assert_eq!(split_host_port("[::1]:5060"), Ok(("::1".to_string(), 5060)));
        assert_eq!(
            split_host_port("10.0.0.1:5080"),
            Ok(("10.0.0.1".to_string(), 5080))
        );
        assert!(split_host_port("10.0.0.1").is_err());
    }
}
