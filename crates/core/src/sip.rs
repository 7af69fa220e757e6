//! SIP URIs accepted for inbound routing and call callbacks: `sip[s]:user@host[:port][;params]`.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SIP URI: {0}")]
pub struct InvalidSipUri(pub &'static str);

pub const MAX_LEN: usize = 512;

pub fn validate(uri: &str) -> Result<(), InvalidSipUri> {
    if uri.len() > MAX_LEN {
        return Err(InvalidSipUri("too long"));
    }
    if uri.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(InvalidSipUri("control characters or spaces"));
    }
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .ok_or(InvalidSipUri("scheme must be sip: or sips:"))?;
    let (addr, params) = rest.split_once(';').unwrap_or((rest, ""));
    let (user, hostport) = addr.split_once('@').ok_or(InvalidSipUri("missing user@"))?;
    let user_ok = !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/%".contains(&b));
    if !user_ok {
        return Err(InvalidSipUri("invalid user part"));
    }
    let (host, port) = split_host_port(hostport)?;
    if !valid_host(host) {
        return Err(InvalidSipUri("invalid host"));
    }
    if port.is_some_and(|p| !p.parse::<u16>().is_ok_and(|n| n > 0)) {
        return Err(InvalidSipUri("invalid port"));
    }
    let params_ok = params.split(';').filter(|p| !p.is_empty()).all(|p| {
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()%=".contains(&b))
    });
    if !params_ok {
        return Err(InvalidSipUri("invalid parameters"));
    }
    Ok(())
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), InvalidSipUri> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or(InvalidSipUri("unclosed IPv6 literal"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(InvalidSipUri("invalid IPv6 literal"));
        }
        return match after {
            "" => Ok((s, None)),
            p => p
                .strip_prefix(':')
                .map(|p| (s, Some(p)))
                .ok_or(InvalidSipUri("invalid port")),
        };
    }
    Ok(match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

fn valid_host(h: &str) -> bool {
    if h.starts_with('[') {
        return true; // checked in split_host_port
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_forms() {
        for ok in [
            "sip:agent@example.org",
            "sips:bot@voice.example.org:5061",
            "sip:+34600123456@10.0.0.1:5060;transport=tcp",
            "sip:a@[2001:db8::1]:5060",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "http://x@y",
            "sip:example.org",
            "sip:@example.org",
            "sip:a@",
            "sip:a@host:99999",
            "sip:a@host:0",
            "sip:a@ho st",
            "sip:a@host\r\nX: y",
            "sip:a@-host",
            "sip:a@[::zz]",
            "sip:a@host;<script>",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        assert!(validate(&format!("sip:a@{}", "h".repeat(600))).is_err());
    }
}
