//! Which IP addresses a webhook may connect to (pure).
//!
//! Allowlist thinking: an address is allowed only when it is ordinary public unicast.
//! Every special-purpose block of the IANA IPv4 and IPv6 registries that is not globally
//! reachable is refused with a stable reason. IPv6 forms that carry an IPv4 address are
//! judged by that IPv4 address, so an embedded form is never more permissive than the
//! plain one. The standard library's helpers are not used as the table: several of them
//! are unstable, and `::ffff:127.0.0.1` is not `is_loopback()`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The special-purpose block an address was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    /// `0.0.0.0/8`, `::/128`: Linux connects these to the local host.
    Unspecified,
    /// `127.0.0.0/8`, `::1/128`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT.
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud instance-metadata address, e.g. `169.254.169.254`, `fd00:ec2::254`.
    CloudMetadata,
    /// `192.0.0.0/24`, `2001::/23` outside its named sub-blocks.
    IetfProtocolAssignment,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `192.88.99.0/24`, the deprecated 6to4 relay anycast.
    SixToFourRelay,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `240.0.0.0/4` (class E).
    Reserved,
    /// `255.255.255.255`.
    Broadcast,
    /// `::/96` (deprecated IPv4-compatible IPv6).
    Ipv4Compatible,
    /// `64:ff9b:1::/48`, local-use IPv4/IPv6 translation.
    Nat64LocalUse,
    /// `100::/64`, discard-only.
    DiscardOnly,
    /// `2001::/32`, Teredo tunnelling.
    Teredo,
    /// `2002::/16`, 6to4 tunnelling.
    SixToFour,
    /// `5f00::/16`, SRv6 segment identifiers.
    Srv6Sid,
    /// `fc00::/7`.
    UniqueLocal,
    /// `fec0::/10` (deprecated).
    SiteLocal,
    /// Anything outside `2000::/3` not named above.
    NotGlobalUnicast,
}

impl Range {
    /// Stable short name, used in API error details and audit records.
    pub const fn as_str(self) -> &'static str {
        match self {
            Range::Unspecified => "unspecified",
            Range::Loopback => "loopback",
            Range::Private => "private",
            Range::SharedAddressSpace => "shared_address_space",
            Range::LinkLocal => "link_local",
            Range::CloudMetadata => "cloud_metadata",
            Range::IetfProtocolAssignment => "ietf_protocol_assignment",
            Range::Documentation => "documentation",
            Range::SixToFourRelay => "6to4_relay_anycast",
            Range::Benchmarking => "benchmarking",
            Range::Multicast => "multicast",
            Range::Reserved => "reserved",
            Range::Broadcast => "broadcast",
            Range::Ipv4Compatible => "ipv4_compatible",
            Range::Nat64LocalUse => "nat64_local_use",
            Range::DiscardOnly => "discard_only",
            Range::Teredo => "teredo",
            Range::SixToFour => "6to4",
            Range::Srv6Sid => "srv6_sid",
            Range::UniqueLocal => "unique_local",
            Range::SiteLocal => "site_local",
            Range::NotGlobalUnicast => "not_global_unicast",
        }
    }

    /// Whether an operator allowlist may let this range through. Metadata, unspecified,
    /// multicast and broadcast never make sense as a webhook receiver, whatever the
    /// operator configured, so a too-wide allowlist cannot reopen them.
    pub const fn allowlist_may_reopen(self) -> bool {
        !matches!(
            self,
            Range::Unspecified | Range::CloudMetadata | Range::Multicast | Range::Broadcast
        )
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The IPv6 form that carried the refused IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Embedding {
    /// `::ffff:a.b.c.d`: the kernel connects to `a.b.c.d` itself.
    Ipv4Mapped,
    /// `::a.b.c.d`.
    Ipv4Compatible,
    /// `64:ff9b::a.b.c.d`: a NAT64 gateway connects to `a.b.c.d` from its own network.
    Nat64,
    /// `64:ff9b:1::/48` with the IPv4 address in the low 32 bits.
    Nat64LocalUse,
    /// `2002:aabb:ccdd::`.
    SixToFour,
    /// `2001:0:<server>:<flags>:<port>:<client XOR ffff:ffff>`.
    Teredo,
}

impl Embedding {
    /// Stable short name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Embedding::Ipv4Mapped => "ipv4_mapped",
            Embedding::Ipv4Compatible => "ipv4_compatible",
            Embedding::Nat64 => "nat64",
            Embedding::Nat64LocalUse => "nat64_local_use",
            Embedding::SixToFour => "6to4",
            Embedding::Teredo => "teredo",
        }
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Refusal {
    /// The block the address (or the IPv4 address it carries) lies in.
    pub range: Range,
    /// Set when the range was found in an IPv4 address embedded in an IPv6 one.
    pub embedded_in: Option<Embedding>,
}

impl Refusal {
    const fn plain(range: Range) -> Self {
        Refusal {
            range,
            embedded_in: None,
        }
    }

    /// Stable reason string: `loopback`, or `nat64:loopback` for an embedded address.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// Whether an operator allowlist entry covering the address may let it through.
    /// Only a plain or IPv4-mapped address can be allowlisted: a tunnelled or translated
    /// form goes somewhere else than the address the operator named.
    pub const fn allowlist_may_reopen(&self) -> bool {
        self.range.allowlist_may_reopen()
            && matches!(self.embedded_in, None | Some(Embedding::Ipv4Mapped))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded_in {
            Some(embedding) => write!(f, "{}:{}", embedding.as_str(), self.range.as_str()),
            None => f.write_str(self.range.as_str()),
        }
    }
}

/// Instance-metadata services that sit at fixed addresses. Some lie in ranges that an
/// operator may allowlist (link-local, CGNAT, IETF) or in public space, so they are
/// named one by one and refused before the range rules.
const CLOUD_METADATA_V4: [Ipv4Addr; 6] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
    Ipv4Addr::new(168, 63, 129, 16),
];

const CLOUD_METADATA_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254),
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0023),
];

/// Judges one address. `Ok(())` means ordinary public unicast.
pub fn classify(ip: IpAddr) -> Result<(), Refusal> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4).map_or(Ok(()), |range| Err(Refusal::plain(range))),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// The special range of an IPv4 address, `None` when it is public.
pub fn classify_v4(ip: Ipv4Addr) -> Option<Range> {
    if CLOUD_METADATA_V4.contains(&ip) {
        return Some(Range::CloudMetadata);
    }
    let range = match ip.octets() {
        [0, ..] => Range::Unspecified,
        [10, ..] => Range::Private,
        [100, b, ..] if (64..=127).contains(&b) => Range::SharedAddressSpace,
        [127, ..] => Range::Loopback,
        [169, 254, ..] => Range::LinkLocal,
        [172, b, ..] if (16..=31).contains(&b) => Range::Private,
        [192, 0, 0, _] => Range::IetfProtocolAssignment,
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => Range::Documentation,
        [192, 88, 99, _] => Range::SixToFourRelay,
        [192, 168, ..] => Range::Private,
        [198, 18 | 19, ..] => Range::Benchmarking,
        [224..=239, ..] => Range::Multicast,
        [255, 255, 255, 255] => Range::Broadcast,
        [240..=255, ..] => Range::Reserved,
        _ => return None,
    };
    Some(range)
}

/// Judges the IPv4 address carried inside an IPv6 one: a refused IPv4 address is
/// reported as itself, tagged with the wrapper.
fn embedded(v4: Ipv4Addr, embedding: Embedding) -> Option<Refusal> {
    classify_v4(v4).map(|range| Refusal {
        range,
        embedded_in: Some(embedding),
    })
}

fn low_v4(bits: u128) -> Ipv4Addr {
    // Truncation is the point: the low 32 bits carry the IPv4 address.
    Ipv4Addr::from((bits & 0xffff_ffff) as u32)
}

fn classify_v6(ip: Ipv6Addr) -> Result<(), Refusal> {
    let bits = u128::from(ip);
    let seg = ip.segments();

    // The kernel treats ::ffff:a.b.c.d as a.b.c.d: judge it exactly like that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return embedded(v4, Embedding::Ipv4Mapped).map_or(Ok(()), Err);
    }
    if ip.is_unspecified() {
        return Err(Refusal::plain(Range::Unspecified));
    }
    if ip.is_loopback() {
        return Err(Refusal::plain(Range::Loopback));
    }
    if CLOUD_METADATA_V6.contains(&ip) {
        return Err(Refusal::plain(Range::CloudMetadata));
    }
    // ::a.b.c.d is deprecated and never a real receiver: refused whatever it carries.
    if bits >> 32 == 0 {
        let v4 = low_v4(bits);
        return Err(embedded(v4, Embedding::Ipv4Compatible)
            .unwrap_or(Refusal::plain(Range::Ipv4Compatible)));
    }
    // The well-known NAT64 prefix is how IPv6-only networks reach public IPv4 hosts, so a
    // public embedded address is allowed; a private one would be reached from the
    // gateway's network.
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return embedded(low_v4(bits), Embedding::Nat64).map_or(Ok(()), Err);
    }
    if seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001 {
        return Err(embedded(low_v4(bits), Embedding::Nat64LocalUse)
            .unwrap_or(Refusal::plain(Range::Nat64LocalUse)));
    }
    if bits >> 64 == 0x0100_0000_0000_0000 {
        return Err(Refusal::plain(Range::DiscardOnly));
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        // Teredo: server IPv4 in bits 32..64, client IPv4 inverted in the low 32 bits.
        let server = Ipv4Addr::from(((bits >> 64) & 0xffff_ffff) as u32);
        let client = Ipv4Addr::from(!((bits & 0xffff_ffff) as u32));
        let refusal = embedded(client, Embedding::Teredo)
            .or_else(|| embedded(server, Embedding::Teredo))
            .unwrap_or(Refusal::plain(Range::Teredo));
        return Err(refusal);
    }
    if seg[0] == 0x2001 && seg[1] == 0x0002 && seg[2] == 0 {
        return Err(Refusal::plain(Range::Benchmarking));
    }
    if seg[0] == 0x2001 && seg[1] < 0x0200 {
        return Err(Refusal::plain(Range::IetfProtocolAssignment));
    }
    if (seg[0] == 0x2001 && seg[1] == 0x0db8) || bits >> 108 == 0x3fff0 {
        return Err(Refusal::plain(Range::Documentation));
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return Err(embedded(v4, Embedding::SixToFour).unwrap_or(Refusal::plain(Range::SixToFour)));
    }
    let range = match seg[0] {
        0x5f00 => Range::Srv6Sid,
        s if s & 0xfe00 == 0xfc00 => Range::UniqueLocal,
        s if s & 0xffc0 == 0xfe80 => Range::LinkLocal,
        s if s & 0xffc0 == 0xfec0 => Range::SiteLocal,
        s if s & 0xff00 == 0xff00 => Range::Multicast,
        s if s & 0xe000 != 0x2000 => Range::NotGlobalUnicast,
        _ => return Ok(()),
    };
    Err(Refusal::plain(range))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason(s: &str) -> String {
        let ip: IpAddr = s.parse().unwrap();
        match classify(ip) {
            Ok(()) => "allowed".to_owned(),
            Err(r) => r.reason(),
        }
    }

    /// Every row of the address table, with the exact reason it must produce.
    #[test]
    fn table_rows_have_their_reasons() {
        let rows: &[(&str, &str)] = &[
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("0.255.255.255", "unspecified"),
            ("10.0.0.1", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared_address_space"),
            ("100.127.255.255", "shared_address_space"),
            ("100.100.100.200", "cloud_metadata"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("169.254.0.1", "link_local"),
            ("169.254.169.254", "cloud_metadata"),
            ("169.254.170.2", "cloud_metadata"),
            ("192.0.0.1", "ietf_protocol_assignment"),
            ("192.0.0.170", "ietf_protocol_assignment"),
            ("192.0.0.192", "cloud_metadata"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("192.88.99.1", "6to4_relay_anycast"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("168.63.129.16", "cloud_metadata"),
            // Boundaries just outside the blocks: public.
            ("1.1.1.1", "allowed"),
            ("8.8.8.8", "allowed"),
            ("9.255.255.255", "allowed"),
            ("11.0.0.0", "allowed"),
            ("100.63.255.255", "allowed"),
            ("100.128.0.0", "allowed"),
            ("126.255.255.255", "allowed"),
            ("128.0.0.0", "allowed"),
            ("169.253.255.255", "allowed"),
            ("169.255.0.0", "allowed"),
            ("172.15.255.255", "allowed"),
            ("172.32.0.0", "allowed"),
            ("192.0.1.0", "allowed"),
            ("192.0.3.0", "allowed"),
            ("192.88.98.255", "allowed"),
            ("192.167.255.255", "allowed"),
            ("192.169.0.0", "allowed"),
            ("198.17.255.255", "allowed"),
            ("198.20.0.0", "allowed"),
            ("223.255.255.255", "allowed"),
            // IPv6.
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "ipv4_mapped:loopback"),
            ("::ffff:169.254.169.254", "ipv4_mapped:cloud_metadata"),
            ("::ffff:10.0.0.1", "ipv4_mapped:private"),
            ("::ffff:0.0.0.0", "ipv4_mapped:unspecified"),
            ("::ffff:8.8.8.8", "allowed"),
            ("::127.0.0.1", "ipv4_compatible:loopback"),
            ("::8.8.8.8", "ipv4_compatible"),
            ("::2", "ipv4_compatible:unspecified"),
            ("64:ff9b::7f00:1", "nat64:loopback"),
            ("64:ff9b::a9fe:a9fe", "nat64:cloud_metadata"),
            ("64:ff9b::10.1.2.3", "nat64:private"),
            ("64:ff9b::8.8.8.8", "allowed"),
            ("64:ff9b:1::a9fe:a9fe", "nat64_local_use:cloud_metadata"),
            ("64:ff9b:1::808:808", "nat64_local_use"),
            ("100::1", "discard_only"),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "teredo:loopback"),
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "teredo"),
            ("2001:0:0a00:0001::f7f7:f7f7", "teredo:private"),
            ("2001:2::1", "benchmarking"),
            ("2001:10::1", "ietf_protocol_assignment"),
            ("2001:1ff::1", "ietf_protocol_assignment"),
            ("2001:200::1", "allowed"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("3fff:fff::1", "documentation"),
            ("3fff:1000::1", "allowed"),
            ("2002:7f00:1::", "6to4:loopback"),
            ("2002:a9fe:a9fe::", "6to4:cloud_metadata"),
            ("2002:808:808::1", "6to4"),
            ("5f00::1", "srv6_sid"),
            ("fc00::1", "unique_local"),
            ("fd12:3456::1", "unique_local"),
            ("fd00:ec2::254", "cloud_metadata"),
            ("fe80::1", "link_local"),
            ("febf::1", "link_local"),
            ("fec0::1", "site_local"),
            ("ff02::1", "multicast"),
            ("1::1", "not_global_unicast"),
            ("4000::1", "not_global_unicast"),
            ("2606:4700:4700::1111", "allowed"),
            ("2a00:1450:4001::1", "allowed"),
            ("2000::1", "allowed"),
            ("3ffe::1", "allowed"),
        ];
        for (input, want) in rows {
            assert_eq!(reason(input), *want, "{input}");
        }
    }

    #[test]
    fn hard_ranges_cannot_be_reopened() {
        for range in [
            Range::Unspecified,
            Range::CloudMetadata,
            Range::Multicast,
            Range::Broadcast,
        ] {
            assert!(!range.allowlist_may_reopen(), "{range}");
        }
        assert!(Range::Loopback.allowlist_may_reopen());
        let tunnelled = classify("64:ff9b::7f00:1".parse().unwrap()).unwrap_err();
        assert!(!tunnelled.allowlist_may_reopen());
        let mapped = classify("::ffff:127.0.0.1".parse().unwrap()).unwrap_err();
        assert!(mapped.allowlist_may_reopen());
    }

    /// An independent description of the IPv4 table, as CIDR text, for the property below.
    const V4_REFUSED: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "168.63.129.16/32",
    ];

    fn v4_reference_refuses(ip: Ipv4Addr) -> bool {
        V4_REFUSED.iter().any(|net| {
            net.parse::<ipnet::Ipv4Net>()
                .map(|n| n.contains(&ip))
                .unwrap_or(true)
        })
    }

    /// Only `2000::/3` minus these is public; everything outside is refused anyway.
    const V6_REFUSED_INSIDE_GLOBAL: &[&str] =
        &["2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20"];

    fn v6_reference_refuses(ip: Ipv6Addr) -> bool {
        let global: ipnet::Ipv6Net = "2000::/3".parse().unwrap();
        if let Some(v4) = ip.to_ipv4_mapped() {
            return v4_reference_refuses(v4);
        }
        let nat64: ipnet::Ipv6Net = "64:ff9b::/96".parse().unwrap();
        if nat64.contains(&ip) {
            return v4_reference_refuses(low_v4(u128::from(ip)));
        }
        !global.contains(&ip)
            || V6_REFUSED_INSIDE_GLOBAL
                .iter()
                .any(|net| net.parse::<ipnet::Ipv6Net>().unwrap().contains(&ip))
    }

    fn v6_with_prefix(prefix: u128, prefix_len: u32, low: u128) -> Ipv6Addr {
        let mask = u128::MAX >> prefix_len;
        Ipv6Addr::from(prefix | (low & mask))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn v4_matches_reference(n in any::<u32>()) {
            let ip = Ipv4Addr::from(n);
            prop_assert_eq!(classify(IpAddr::V4(ip)).is_err(), v4_reference_refuses(ip), "{}", ip);
        }

        #[test]
        fn v6_matches_reference(n in any::<u128>()) {
            let ip = Ipv6Addr::from(n);
            prop_assert_eq!(classify(IpAddr::V6(ip)).is_err(), v6_reference_refuses(ip), "{}", ip);
        }

        #[test]
        fn v6_in_global_unicast_matches_reference(n in any::<u128>()) {
            let ip = v6_with_prefix(0x2000 << 112, 3, n);
            prop_assert_eq!(classify(IpAddr::V6(ip)).is_err(), v6_reference_refuses(ip), "{}", ip);
        }

        #[test]
        fn mapped_is_judged_exactly_like_its_v4(n in any::<u32>()) {
            let v4 = Ipv4Addr::from(n);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            let plain = classify(IpAddr::V4(v4)).map_err(|r| r.range);
            prop_assert_eq!(classify(mapped).map_err(|r| r.range), plain);
        }

        #[test]
        fn embedded_forms_never_more_permissive(n in any::<u32>(), high in any::<u64>()) {
            let v4 = Ipv4Addr::from(n);
            let v4_refused = classify(IpAddr::V4(v4)).is_err();
            let n = u128::from(n);
            let forms = [
                (n, "compatible"),
                ((0x0064_ff9b_u128 << 96) | n, "nat64"),
                ((0x0064_ff9b_0001_u128 << 80) | n, "nat64 local use"),
                ((0x2002_u128 << 112) | (n << 80) | u128::from(high & 0xffff), "6to4"),
                ((0x2001_0000_u128 << 96) | (u128::from(high) << 32) | (!n & 0xffff_ffff), "teredo client"),
                ((0x2001_0000_u128 << 96) | (n << 64) | u128::from(high), "teredo server"),
            ];
            for (bits, name) in forms {
                let ip = IpAddr::V6(Ipv6Addr::from(bits));
                if v4_refused {
                    prop_assert!(classify(ip).is_err(), "{} {} allowed", name, ip);
                }
                // A refused embedded address is reported as its own range.
                if let (Err(r), Err(plain)) = (classify(ip), classify(IpAddr::V4(v4)))
                    && name != "teredo server"
                    && r.embedded_in.is_some()
                {
                    prop_assert_eq!(r.range, plain.range, "{} {}", name, ip);
                }
            }
        }

        #[test]
        fn tunnels_are_always_refused(n in any::<u128>()) {
            for (prefix, len) in [
                (0u128, 96u32),
                (0x0064_ff9b_0001_u128 << 80, 48),
                (0x2002_u128 << 112, 16),
                (0x2001_0000_u128 << 96, 32),
                (0x0100_u128 << 112, 64),
                (0x5f00_u128 << 112, 16),
                (0xfc00_u128 << 112, 7),
                (0xfe80_u128 << 112, 10),
                (0xfec0_u128 << 112, 10),
                (0xff00_u128 << 112, 8),
            ] {
                let ip = v6_with_prefix(prefix, len, n);
                prop_assert!(classify(IpAddr::V6(ip)).is_err(), "{}", ip);
            }
        }
    }
}
