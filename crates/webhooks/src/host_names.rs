//! Host names refused by name (pure).
//!
//! Defence in depth only: the real check is on the resolved addresses. These names are
//! refused even when they happen to resolve to something public, because they only
//! ever mean "this machine" or "this cluster" and a refusal by name is a clearer error
//! for the customer.

/// Exact names (after lower-casing and dropping one trailing dot).
const BLOCKED_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "kubernetes.default",
    "kubernetes.default.svc",
];

/// Suffixes that are internal by definition: loopback names, mDNS, private-use TLDs,
/// home networks, in-cluster service names.
const BLOCKED_SUFFIXES: &[&str] = &[
    ".localhost",
    ".local",
    ".localdomain",
    ".internal",
    ".home.arpa",
    ".svc",
    ".arpa",
];

/// Whether a domain host (already IDNA-normalised and lower-cased by the URL parser)
/// is refused by name. Single-label names are refused too: they resolve only through
/// the machine's search domains, i.e. to internal hosts.
pub fn is_blocked_host_name(domain: &str) -> bool {
    let name = domain.strip_suffix('.').unwrap_or(domain);
    if name.is_empty() || !name.contains('.') {
        return true;
    }
    BLOCKED_NAMES.contains(&name)
        || BLOCKED_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
        || name.starts_with("kubernetes.default.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_internal_names() {
        for name in [
            "localhost",
            "localhost.",
            "a.localhost",
            "metadata",
            "metadata.google.internal",
            "metadata.google.internal.",
            "instance-data",
            "printer.local",
            "db.internal",
            "router.home.arpa",
            "api.default.svc",
            "kubernetes.default.svc.cluster.local",
            "1.0.0.127.in-addr.arpa",
            "intranet",
            "",
            ".",
        ] {
            assert!(is_blocked_host_name(name), "{name}");
        }
    }

    #[test]
    fn lets_ordinary_names_through() {
        for name in [
            "example.com",
            "example.com.",
            "hooks.example.org",
            "localhost.example.com",
            "xn--nxasmq6b.com",
            "a.test",
        ] {
            assert!(!is_blocked_host_name(name), "{name}");
        }
    }
}
