//! The operator's allowlist of subnets (`AMI_WEBHOOK_ALLOW_SUBNETS`).
//!
//! Private deployments deliver to receivers on their own network, and tests deliver to
//! loopback. Both need a way through the guard that is explicit, narrow and empty by
//! default.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::address::{Refusal, classify};

/// The environment variable the server reads the allowlist from.
pub const ALLOW_SUBNETS_ENV: &str = "AMI_WEBHOOK_ALLOW_SUBNETS";

/// Subnets the guard lets through although the address table refuses them. Cloud
/// metadata, unspecified, multicast and broadcast addresses stay refused even when
/// listed, and tunnelled IPv6 forms are never matched by an IPv4 entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowSubnets {
    nets: Vec<IpNet>,
}

/// An entry of the allowlist that is neither a CIDR block nor an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid subnet in the webhook allowlist: {entry:?}")]
pub struct AllowSubnetsError {
    /// The offending entry, trimmed.
    pub entry: String,
}

impl AllowSubnets {
    /// The default: nothing is allowlisted.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list of CIDR blocks (`127.0.0.0/8, ::1/128`). A bare
    /// address stands for itself alone. Blank entries are ignored, so an empty string
    /// is the empty list.
    pub fn parse(list: &str) -> Result<Self, AllowSubnetsError> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => {
                    entry
                        .parse::<IpAddr>()
                        .map(IpNet::from)
                        .map_err(|_| AllowSubnetsError {
                            entry: entry.to_owned(),
                        })?
                }
            };
            nets.push(net);
        }
        Ok(AllowSubnets { nets })
    }

    /// True when no subnet is allowlisted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The allowlisted blocks, normalised to their network address.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` lies in an allowlisted block. IPv4-mapped IPv6 addresses match IPv4
    /// entries, because the kernel connects them to that IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|net| net.contains(&canonical) || net.contains(&ip))
    }

    /// The guard's verdict on one address: the address table, then the allowlist for
    /// the ranges it may reopen.
    pub fn judge(&self, ip: IpAddr) -> Result<(), Refusal> {
        match classify(ip) {
            Ok(()) => Ok(()),
            Err(refusal) if refusal.allowlist_may_reopen() && self.contains(ip) => Ok(()),
            Err(refusal) => Err(refusal),
        }
    }
}

impl FromStr for AllowSubnets {
    type Err = AllowSubnetsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for AllowSubnets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_string_is_empty_list() {
        assert!(AllowSubnets::parse("").unwrap().is_empty());
        assert!(AllowSubnets::parse(" , ,").unwrap().is_empty());
    }

    #[test]
    fn parses_cidrs_and_bare_addresses() {
        let allow = AllowSubnets::parse("127.0.0.0/8, 10.1.2.3 ,fd00::/8,::1").unwrap();
        assert_eq!(
            allow.to_string(),
            "127.0.0.0/8,10.1.2.3/32,fd00::/8,::1/128"
        );
        assert!(allow.contains(ip("127.9.9.9")));
        assert!(allow.contains(ip("10.1.2.3")));
        assert!(!allow.contains(ip("10.1.2.4")));
        assert!(allow.contains(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn host_bits_are_dropped() {
        let allow = AllowSubnets::parse("127.0.0.1/8").unwrap();
        assert_eq!(allow.to_string(), "127.0.0.0/8");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "127.0.0.0/33",
            "localhost",
            "10.0.0.0/8;",
            "1.2.3",
            "::1/129",
        ] {
            let err = AllowSubnets::parse(&format!("127.0.0.0/8,{bad}")).unwrap_err();
            assert_eq!(err.entry, bad);
        }
    }

    #[test]
    fn loopback_allowlist_lets_loopback_through_only() {
        let allow = AllowSubnets::parse("127.0.0.0/8").unwrap();
        assert_eq!(allow.judge(ip("127.0.0.1")), Ok(()));
        assert_eq!(allow.judge(ip("::ffff:127.0.0.1")), Ok(()));
        assert!(allow.judge(ip("::1")).is_err());
        assert!(allow.judge(ip("10.0.0.1")).is_err());
        assert!(allow.judge(ip("64:ff9b::7f00:1")).is_err());
        assert!(allow.judge(ip("2002:7f00:1::")).is_err());
        assert!(allow.judge(ip("::127.0.0.1")).is_err());
    }

    #[test]
    fn everything_allowlisted_still_refuses_the_hard_ranges() {
        let allow = AllowSubnets::parse("0.0.0.0/0,::/0").unwrap();
        for hard in [
            "0.0.0.0",
            "0.1.2.3",
            "169.254.169.254",
            "100.100.100.200",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(allow.judge(ip(hard)).is_err(), "{hard}");
        }
        for open in ["10.0.0.1", "127.0.0.1", "::1", "fc00::1", "169.254.1.1"] {
            assert_eq!(allow.judge(ip(open)), Ok(()), "{open}");
        }
    }
}
