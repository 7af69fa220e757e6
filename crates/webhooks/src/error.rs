//! Why the guard refused a webhook URL.

use crate::address::Refusal;

/// A refusal by the SSRF guard. `Display` (and [`GuardError::reason`]) is the stable
/// short text the API returns as `400 invalid_url {detail}` and the delivery log
/// records; it names the rule, never anything learnt from the network beyond that.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Longer than [`crate::MAX_URL_LEN`] bytes.
    #[error("too_long")]
    TooLong,
    /// CR, LF, TAB, NUL or any other control character, anywhere.
    #[error("control_character")]
    ControlCharacter,
    /// A space or other whitespace character, anywhere.
    #[error("whitespace")]
    Whitespace,
    /// An invisible formatting character (zero-width, bidirectional override, BOM).
    #[error("invisible_character")]
    InvisibleCharacter,
    /// A backslash: parsers disagree on whether it is a path separator.
    #[error("backslash")]
    Backslash,
    /// An IPv6 zone identifier (`[fe80::1%25eth0]`).
    #[error("zone_id")]
    ZoneId,
    /// Not a URL at all.
    #[error("unparsable")]
    Unparsable,
    /// A scheme other than `http` or `https`.
    #[error("scheme_not_allowed")]
    SchemeNotAllowed,
    /// `https:host` without the `//`.
    #[error("missing_slashes")]
    MissingSlashes,
    /// A user name or password before the host.
    #[error("userinfo_not_allowed")]
    Userinfo,
    /// A `#fragment`: never sent, only a way to confuse readers of the URL.
    #[error("fragment_not_allowed")]
    Fragment,
    /// No host.
    #[error("missing_host")]
    MissingHost,
    /// Port 0.
    #[error("port_not_allowed")]
    PortNotAllowed,
    /// A host name that only ever means an internal service (`localhost`, metadata
    /// names, single-label names, internal-only suffixes).
    #[error("blocked_host_name")]
    BlockedHostName,
    /// The host is an IP address the guard refuses.
    #[error("blocked_address:{0}")]
    BlockedAddress(Refusal),
    /// The host name resolved to at least one address the guard refuses.
    #[error("resolves_to_blocked_address:{0}")]
    ResolvesToBlockedAddress(Refusal),
    /// The host name did not resolve.
    #[error("resolution_failed")]
    ResolutionFailed,
    /// The host name resolved to no address at all.
    #[error("no_addresses")]
    NoAddresses,
    /// The resolver did not answer in time.
    #[error("resolution_timeout")]
    ResolutionTimeout,
}

impl GuardError {
    /// The stable reason text, e.g. `blocked_address:nat64:loopback`.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}
