//! Parsing and checking a webhook URL without touching the network (pure).
//!
//! The URL is parsed once with the WHATWG parser (the `url` crate, the same one the
//! HTTP client uses), and every decision is taken on the parsed form: decimal, octal,
//! hex and short IPv4 spellings, percent-encoded and full-width hosts and IDN names all
//! arrive here already normalised. The normalised string is what gets stored and sent.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::allowlist::AllowSubnets;
use crate::error::GuardError;
use crate::host_names::is_blocked_host_name;

/// Longest accepted URL, in bytes of the raw input.
pub const MAX_URL_LEN: usize = 2048;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP (sandbox and private deployments).
    Http,
    /// HTTP over TLS.
    Https,
}

/// The host of a webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WebhookHost {
    /// An IP literal, in whatever spelling it was written.
    Ip(IpAddr),
    /// An ASCII (punycode) lower-case domain name.
    Domain(String),
}

impl fmt::Display for WebhookHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookHost::Ip(ip) => write!(f, "{ip}"),
            WebhookHost::Domain(name) => f.write_str(name),
        }
    }
}

/// A parsed `http(s)` URL with a host. Built by [`check_url`] (all rules applied) or by
/// [`WebhookUrl::parse_stored`] (structure only); the sender applies every rule again
/// before each attempt, so holding one is not a licence to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: Url,
    scheme: Scheme,
    host: WebhookHost,
    port: u16,
}

impl WebhookUrl {
    /// Parses a URL read back from storage without judging it, so that a stored URL the
    /// guard now refuses can still be handed to the sender and be refused there, as a
    /// recorded failed attempt.
    pub fn parse_stored(stored: &str) -> Result<Self, GuardError> {
        let url = Url::parse(stored).map_err(|_| GuardError::Unparsable)?;
        Self::from_parsed(url)
    }

    fn from_parsed(url: Url) -> Result<Self, GuardError> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(GuardError::SchemeNotAllowed),
        };
        let host = match url.host() {
            Some(Host::Ipv4(v4)) => WebhookHost::Ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => WebhookHost::Ip(IpAddr::V6(v6)),
            Some(Host::Domain(name)) if !name.is_empty() => WebhookHost::Domain(name.to_owned()),
            _ => return Err(GuardError::MissingHost),
        };
        let port = url
            .port_or_known_default()
            .ok_or(GuardError::SchemeNotAllowed)?;
        Ok(WebhookUrl {
            url,
            scheme,
            host,
            port,
        })
    }

    /// The normalised URL: store this and send to this, never the raw input.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The parsed URL.
    pub fn as_url(&self) -> &Url {
        &self.url
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host, as the parser normalised it.
    pub fn host(&self) -> &WebhookHost {
        &self.host
    }

    /// The explicit port, or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Zero-width and bidirectional formatting characters: invisible in a dashboard, and
/// some IDN mappings silently drop them.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00ad}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Character-level rules on the raw input: the WHATWG parser silently strips tabs and
/// newlines and trims spaces, so they are refused before it runs.
fn check_characters(input: &str) -> Result<(), GuardError> {
    if input.len() > MAX_URL_LEN {
        return Err(GuardError::TooLong);
    }
    for c in input.chars() {
        if c.is_control() {
            return Err(GuardError::ControlCharacter);
        }
        if c.is_whitespace() {
            return Err(GuardError::Whitespace);
        }
        if is_invisible(c) {
            return Err(GuardError::InvisibleCharacter);
        }
        if c == '\\' {
            return Err(GuardError::Backslash);
        }
    }
    Ok(())
}

/// A `%` between brackets is an IPv6 zone id: it names a local interface, which no
/// remote receiver can have.
fn has_zone_id(input: &str) -> bool {
    let mut rest = input;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let inside = after.find(']').map_or(after, |close| &after[..close]);
        if inside.contains('%') {
            return true;
        }
        rest = after;
    }
    false
}

/// Parses and checks a webhook URL without resolving it: scheme, characters, length,
/// userinfo, fragment, host name denylist, and the address table for IP literals.
/// A domain still has to pass resolution (see [`crate::Guard::check_url_resolving`]).
pub fn check_url(input: &str, allow: &AllowSubnets) -> Result<WebhookUrl, GuardError> {
    check_characters(input)?;
    if has_zone_id(input) {
        return Err(GuardError::ZoneId);
    }
    let url = Url::parse(input).map_err(|_| GuardError::Unparsable)?;
    let scheme_len = url.scheme().len();
    let checked = WebhookUrl::from_parsed(url)?;
    // `https:host` parses like `https://host`; only the explicit form is accepted.
    if input.get(scheme_len..scheme_len + 3) != Some("://") {
        return Err(GuardError::MissingSlashes);
    }
    check_parsed(&checked, allow)?;
    Ok(checked)
}

/// The rules that apply to an already parsed URL, shared by registration and delivery.
pub(crate) fn check_parsed(url: &WebhookUrl, allow: &AllowSubnets) -> Result<(), GuardError> {
    if !url.url.username().is_empty() || url.url.password().is_some() {
        return Err(GuardError::Userinfo);
    }
    if url.url.fragment().is_some() {
        return Err(GuardError::Fragment);
    }
    if url.port == 0 {
        return Err(GuardError::PortNotAllowed);
    }
    match &url.host {
        WebhookHost::Ip(ip) => allow.judge(*ip).map_err(GuardError::BlockedAddress),
        WebhookHost::Domain(name) if is_blocked_host_name(name) => Err(GuardError::BlockedHostName),
        WebhookHost::Domain(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(input: &str) -> String {
        match check_url(input, &AllowSubnets::none()) {
            Ok(url) => format!("ok {url}"),
            Err(e) => e.reason(),
        }
    }

    #[test]
    fn normalises_what_it_accepts() {
        assert_eq!(
            reason("HTTPS://Example.COM/hook"),
            "ok https://example.com/hook"
        );
        assert_eq!(
            reason("https://example.com:443/"),
            "ok https://example.com/"
        );
        assert_eq!(
            reason("https://example.com:0443/"),
            "ok https://example.com/"
        );
        assert_eq!(
            reason("http://8.8.8.8:8080/x?y=1"),
            "ok http://8.8.8.8:8080/x?y=1"
        );
        assert_eq!(
            reason("https://bücher.example/"),
            "ok https://xn--bcher-kva.example/"
        );
        assert_eq!(
            reason("https://[2606:4700:4700::1111]/"),
            "ok https://[2606:4700:4700::1111]/"
        );
    }

    #[test]
    fn refuses_with_stable_reasons() {
        let rows = [
            ("http://2130706433/", "blocked_address:loopback"),
            ("http://0x7f.1/", "blocked_address:loopback"),
            (
                "http://[::ffff:7f00:1]/",
                "blocked_address:ipv4_mapped:loopback",
            ),
            ("https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "blocked_host_name"),
            ("https://127.0.0.\n1/", "control_character"),
            (" https://127.0.0.1", "whitespace"),
            ("https://exa\u{200b}mple.com/", "invisible_character"),
            ("https:\\\\127.0.0.1\\", "backslash"),
            ("http://[fe80::1%25eth0]/", "zone_id"),
            ("http://[fe80::1%eth0]/", "zone_id"),
            ("gopher://127.0.0.1:6379/_x", "scheme_not_allowed"),
            ("javascript:alert(1)", "scheme_not_allowed"),
            ("https:example.com", "missing_slashes"),
            ("https://evil@example.com/", "userinfo_not_allowed"),
            ("https://:pw@example.com/", "userinfo_not_allowed"),
            ("https://example.com/#x", "fragment_not_allowed"),
            ("https://example.com:0/", "port_not_allowed"),
            ("https://example.com:65536/", "unparsable"),
            ("http://425.510.425.510/", "unparsable"),
            ("not a url", "whitespace"),
            ("nourl", "unparsable"),
            ("http:///", "unparsable"),
        ];
        for (input, want) in rows {
            assert_eq!(reason(input), want, "{input:?}");
        }
        assert_eq!(
            reason(&format!("https://e.com/{}", "a".repeat(2048))),
            "too_long"
        );
    }

    #[test]
    fn stored_urls_parse_without_judgement() {
        let url = WebhookUrl::parse_stored("http://evil@127.0.0.1:9/").unwrap();
        assert_eq!(url.host(), &WebhookHost::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(url.port(), 9);
        assert_eq!(
            check_parsed(&url, &AllowSubnets::none()),
            Err(GuardError::Userinfo)
        );
        assert!(WebhookUrl::parse_stored("ftp://example.com/").is_err());
    }
}
