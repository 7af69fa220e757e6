//! The SSRF input catalogue: every row is refused at registration (with the expected
//! reason) and again at delivery, as if planted directly in the store, without a single
//! connection reaching the loopback listeners that the loopback-bound rows point at.
//!
//! Nothing here may leave the machine, even if the guard were broken: the stand-in for
//! a public host is 127.0.0.2, the only allowlisted address, and names never reach a
//! real resolver.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;

use ami_webhooks::{AttemptError, StaticLookup, WebhookUrl};
use bytes::Bytes;
use common::{Reply, guard, sender, spawn_receiver};
use http::HeaderMap;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// (input, expected registration reason prefix). `{p4}` is the port of a listener on
/// 127.0.0.1, `{p6}` of one on [::1], `{pp}` of one on the stand-in public host.
const ROWS: &[(&str, &str)] = &[
    // Encoded IPv4 literals.
    ("http://2130706433:{p4}/", "blocked_address:loopback"),
    ("http://0x7f.1:{p4}/", "blocked_address:loopback"),
    ("http://017700000001:{p4}/", "blocked_address:loopback"),
    ("http://0177.0.0.1:{p4}/", "blocked_address:loopback"),
    ("http://0x7f000001:{p4}/", "blocked_address:loopback"),
    ("http://0x7f.0x0.0x0.0x1:{p4}/", "blocked_address:loopback"),
    ("http://127.1:{p4}/", "blocked_address:loopback"),
    ("http://127.0.1:{p4}/", "blocked_address:loopback"),
    ("http://127.0.0.1:{p4}/", "blocked_address:loopback"),
    ("http://127.0.0.1.:{p4}/", "blocked_address:loopback"),
    (
        "https://127\u{3002}0\u{3002}0\u{3002}1:{p4}/",
        "blocked_address:loopback",
    ),
    ("http://%31%32%37.0.0.1:{p4}/", "blocked_address:loopback"),
    ("http://127.0.0.\n1:{p4}/", "control_character"),
    ("http://127.0.0.1:{p4}/\t", "control_character"),
    (" http://127.0.0.1:{p4}/ ", "whitespace"),
    ("http://0:{p4}/", "blocked_address:unspecified"),
    ("http://0.0.0.0:{p4}/", "blocked_address:unspecified"),
    ("https://0.1.2.3/", "blocked_address:unspecified"),
    ("http://2852039166/", "blocked_address:cloud_metadata"),
    (
        "http://0xA9.0xFE.0xA9.0xFE/",
        "blocked_address:cloud_metadata",
    ),
    (
        "http://0251.0376.0251.0376/",
        "blocked_address:cloud_metadata",
    ),
    ("http://0251.254.169.254/", "blocked_address:cloud_metadata"),
    ("http://425.510.425.510/", "unparsable"),
    ("http://7147006462/", "unparsable"),
    ("http://0x41414141A9FEA9FE/", "unparsable"),
    // Special IPv4 ranges.
    ("https://10.0.0.1/", "blocked_address:private"),
    ("https://172.16.0.1/", "blocked_address:private"),
    ("https://172.31.255.255/", "blocked_address:private"),
    ("https://192.168.1.1/", "blocked_address:private"),
    (
        "https://100.64.0.1/",
        "blocked_address:shared_address_space",
    ),
    ("https://100.100.100.200/", "blocked_address:cloud_metadata"),
    (
        "https://100.127.255.255/",
        "blocked_address:shared_address_space",
    ),
    ("https://169.254.169.254/", "blocked_address:cloud_metadata"),
    ("https://169.254.170.2/", "blocked_address:cloud_metadata"),
    (
        "https://192.0.0.1/",
        "blocked_address:ietf_protocol_assignment",
    ),
    ("https://192.0.0.192/", "blocked_address:cloud_metadata"),
    (
        "https://192.0.0.170/",
        "blocked_address:ietf_protocol_assignment",
    ),
    ("https://192.0.2.1/", "blocked_address:documentation"),
    ("https://198.51.100.7/", "blocked_address:documentation"),
    ("https://203.0.113.9/", "blocked_address:documentation"),
    ("https://192.88.99.1/", "blocked_address:6to4_relay_anycast"),
    ("https://198.18.0.1/", "blocked_address:benchmarking"),
    ("https://198.19.255.255/", "blocked_address:benchmarking"),
    ("https://224.0.0.1/", "blocked_address:multicast"),
    ("https://239.255.255.250/", "blocked_address:multicast"),
    ("https://240.0.0.1/", "blocked_address:reserved"),
    ("https://255.255.255.255/", "blocked_address:broadcast"),
    // IPv6 literals.
    ("http://[::1]:{p6}/", "blocked_address:loopback"),
    ("http://[0:0:0:0:0:0:0:1]:{p6}/", "blocked_address:loopback"),
    ("http://[0000::1]:{p6}/", "blocked_address:loopback"),
    ("http://[::]:{p6}/", "blocked_address:unspecified"),
    (
        "http://[::ffff:127.0.0.1]:{p4}/",
        "blocked_address:ipv4_mapped:loopback",
    ),
    (
        "http://[::ffff:7f00:1]:{p4}/",
        "blocked_address:ipv4_mapped:loopback",
    ),
    (
        "http://[::ffff:0.0.0.0]:{p4}/",
        "blocked_address:ipv4_mapped:unspecified",
    ),
    (
        "http://[0:0:0:0:0:ffff:169.254.169.254]/",
        "blocked_address:ipv4_mapped:cloud_metadata",
    ),
    (
        "http://[::ffff:a9fe:a9fe]/",
        "blocked_address:ipv4_mapped:cloud_metadata",
    ),
    (
        "http://[::ffff:10.0.0.1]/",
        "blocked_address:ipv4_mapped:private",
    ),
    (
        "http://[::ffff:192.168.1.1]/",
        "blocked_address:ipv4_mapped:private",
    ),
    (
        "http://[::127.0.0.1]/",
        "blocked_address:ipv4_compatible:loopback",
    ),
    (
        "http://[64:ff9b::7f00:1]/",
        "blocked_address:nat64:loopback",
    ),
    (
        "http://[64:ff9b::169.254.169.254]/",
        "blocked_address:nat64:cloud_metadata",
    ),
    (
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "blocked_address:nat64_local_use:cloud_metadata",
    ),
    ("http://[2002:7f00:1::]/", "blocked_address:6to4:loopback"),
    (
        "http://[2002:a9fe:a9fe::]/",
        "blocked_address:6to4:cloud_metadata",
    ),
    (
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        "blocked_address:teredo:loopback",
    ),
    ("http://[fc00::1]/", "blocked_address:unique_local"),
    ("http://[fd00:ec2::254]/", "blocked_address:cloud_metadata"),
    ("http://[fe80::1]/", "blocked_address:link_local"),
    ("http://[fe80::1%25eth0]/", "zone_id"),
    ("http://[fe80::1%eth0]:{p6}/", "zone_id"),
    ("http://[fec0::1]/", "blocked_address:site_local"),
    ("http://[ff02::1]/", "blocked_address:multicast"),
    ("http://[100::1]/", "blocked_address:discard_only"),
    ("http://[2001:db8::1]/", "blocked_address:documentation"),
    ("http://[3fff::1]/", "blocked_address:documentation"),
    ("http://[5f00::1]/", "blocked_address:srv6_sid"),
    // Names.
    ("http://localhost:{p4}/", "blocked_host_name"),
    ("http://LOCALHOST:{p4}/", "blocked_host_name"),
    ("http://localhost.:{p4}/", "blocked_host_name"),
    (
        "http://\u{24db}\u{24de}\u{24d2}\u{24d0}\u{24db}\u{24d7}\u{24de}\u{24e2}\u{24e3}:{p4}/",
        "blocked_host_name",
    ),
    (
        "http://\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}:{p4}/",
        "blocked_host_name",
    ),
    ("http://api.localhost:{p4}/", "blocked_host_name"),
    ("https://metadata.google.internal/", "blocked_host_name"),
    ("https://metadata.google.internal./", "blocked_host_name"),
    ("https://metadata/", "blocked_host_name"),
    ("https://instance-data/", "blocked_host_name"),
    ("https://db.internal/", "blocked_host_name"),
    ("https://printer.local/", "blocked_host_name"),
    (
        "http://a.test:{p4}/",
        "resolves_to_blocked_address:loopback",
    ),
    (
        "http://a.test.:{p4}/",
        "resolves_to_blocked_address:loopback",
    ),
    (
        "http://A.TEST:{p4}/",
        "resolves_to_blocked_address:loopback",
    ),
    ("http://b.test:{pp}/", "resolves_to_blocked_address:private"),
    (
        "http://c.test:{pp}/",
        "resolves_to_blocked_address:loopback",
    ),
    (
        "https://d.test/",
        "resolves_to_blocked_address:ipv4_mapped:cloud_metadata",
    ),
    (
        "https://e.test/",
        "resolves_to_blocked_address:cloud_metadata",
    ),
    ("https://f.test/", "resolution_failed"),
    ("https://g.test/", "no_addresses"),
    (
        "http://v6.test:{p6}/",
        "resolves_to_blocked_address:loopback",
    ),
    (
        "https://nat64.test/",
        "resolves_to_blocked_address:nat64:cloud_metadata",
    ),
    // Parser confusion.
    ("https://evil@127.0.0.1:{p4}/", "userinfo_not_allowed"),
    (
        "https://example.com@127.0.0.1:{p4}/",
        "userinfo_not_allowed",
    ),
    (
        "https://example.com%2F@127.0.0.1:{p4}/",
        "userinfo_not_allowed",
    ),
    ("https://a@b@127.0.0.1:{p4}/", "userinfo_not_allowed"),
    ("http://user:pass@public.test:{pp}/", "userinfo_not_allowed"),
    (
        "https://127.0.0.1:{p4}#@public.test/",
        "fragment_not_allowed",
    ),
    ("https://127.0.0.1:443\\@public.test/", "backslash"),
    ("http://1.1.1.1 &@127.0.0.1:{p4}# @3.3.3.3/", "whitespace"),
    (
        "http://127.0.0.1%2523@public.test:{pp}/",
        "userinfo_not_allowed",
    ),
    ("https:127.0.0.1:{p4}", "missing_slashes"),
    ("http:public.test:{pp}/", "missing_slashes"),
    ("https:\\\\127.0.0.1\\", "backslash"),
    ("http:/\\127.0.0.1/", "backslash"),
    ("http://public.test\u{200b}:{pp}/", "invisible_character"),
    ("http://public.test:{pp}/\u{202e}x", "invisible_character"),
    // Schemes and ports.
    ("gopher://127.0.0.1:6379/_x", "scheme_not_allowed"),
    ("file:///etc/passwd", "scheme_not_allowed"),
    ("dict://127.0.0.1:11211/", "scheme_not_allowed"),
    ("ftp://public.test/", "scheme_not_allowed"),
    ("ldap://127.0.0.1/", "scheme_not_allowed"),
    ("jar:https://public.test!/", "scheme_not_allowed"),
    ("ws://public.test:{pp}/", "scheme_not_allowed"),
    ("data:text/plain,hi", "scheme_not_allowed"),
    ("javascript:alert(1)", "scheme_not_allowed"),
    ("https://public.test:0/", "port_not_allowed"),
    ("https://public.test:65536/", "unparsable"),
];

/// Rows whose only flaw is in the raw text: the parser's normalised form, the only
/// form ever stored or sent, is a clean URL to the stand-in public host. At delivery
/// they are checked to normalise away from the raw input instead of being sent.
const RAW_ONLY: &[&str] = &[
    "http:public.test:{pp}/",
    "http://public.test\u{200b}:{pp}/",
    "http://public.test:{pp}/\u{202e}x",
];

/// The stand-in for a public address: allowlisted, on loopback.
const PUBLIC: &str = "127.0.0.2";

fn lookup() -> Arc<StaticLookup> {
    Arc::new(
        StaticLookup::new()
            .with("public.test", [ip(PUBLIC)])
            .with("a.test", [ip("127.0.0.1")])
            .with("b.test", [ip(PUBLIC), ip("10.0.0.5")])
            .with("c.test", [ip(PUBLIC), ip("::1")])
            .with("d.test", [ip("::ffff:169.254.169.254")])
            // What a CNAME chain ends in is all a resolver returns.
            .with("e.test", [ip("169.254.169.254")])
            .with("g.test", [])
            .with("v6.test", [ip("::1")])
            .with("nat64.test", [ip("64:ff9b::a9fe:a9fe")]),
    )
}

#[tokio::test]
async fn every_row_is_refused_at_registration_and_at_delivery_without_a_connection() {
    assert!(ROWS.len() >= 60, "the catalogue has {} rows", ROWS.len());
    let v4 = spawn_receiver("127.0.0.1:0", Reply::status(200)).await;
    let v6 = spawn_receiver("[::1]:0", Reply::status(200)).await;
    let public = spawn_receiver(&format!("{PUBLIC}:0"), Reply::status(200)).await;
    let table = lookup();
    let guard = guard(&format!("{PUBLIC}/32"), table.clone());
    let sender = sender(guard.clone());

    let mut failures = Vec::new();
    for (template, want) in ROWS {
        let input = template
            .replace("{p4}", &v4.port().to_string())
            .replace("{p6}", &v6.port().to_string())
            .replace("{pp}", &public.port().to_string());

        // Registration.
        match guard.check_url_resolving(&input).await {
            Ok(url) => failures.push(format!("{input:?}: registered as {url}")),
            Err(e) if !e.reason().starts_with(want) => failures.push(format!(
                "{input:?}: refused with {}, expected {want}",
                e.reason()
            )),
            Err(_) => {}
        }

        // Delivery of the same string, as if it had been stored before the rules
        // tightened. A string that cannot even be parsed cannot be sent at all.
        if RAW_ONLY.contains(template) {
            let stored = WebhookUrl::parse_stored(&input).unwrap();
            if stored.as_str() == input {
                failures.push(format!("{input:?}: stored as is"));
            }
            continue;
        }
        if let Ok(stored) = WebhookUrl::parse_stored(&input) {
            let outcome = sender
                .send(&stored, HeaderMap::new(), Bytes::from_static(b"{}"))
                .await;
            let refused = matches!(outcome.error, Some(AttemptError::Refused(_)));
            if !refused || outcome.status.is_some() {
                failures.push(format!("{input:?}: delivery was not refused: {outcome:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(v4.accepted(), 0, "a connection reached 127.0.0.1");
    assert_eq!(v6.accepted(), 0, "a connection reached [::1]");
    assert_eq!(
        public.accepted(),
        0,
        "a connection reached the stand-in public host"
    );
}

/// The control rows: public addresses and names are accepted, so the refusals above
/// are not an artefact of a guard that refuses everything.
#[tokio::test]
async fn control_rows_are_accepted() {
    // Registration only: nothing is sent, so real public literals are safe here.
    let guard = guard(&format!("{PUBLIC}/32"), lookup());
    for input in [
        "https://public.test/hook",
        "HTTPS://PUBLIC.TEST/hook",
        "https://public.test:443/",
        "http://public.test:8080/x?y=1",
        "https://8.8.8.8/",
        "https://1.1.1.1/",
        "https://100.63.255.255/",
        "https://100.128.0.0/",
        "https://172.15.255.255/",
        "https://172.32.0.0/",
        "https://198.17.255.255/",
        "https://198.20.0.0/",
        "https://223.255.255.255/",
        "http://[2606:4700:4700::1111]/",
        "http://[::ffff:8.8.8.8]/",
        "http://[64:ff9b::8.8.8.8]/",
    ] {
        if let Err(e) = guard.check_url_resolving(input).await {
            panic!("{input}: refused with {}", e.reason());
        }
    }
}
