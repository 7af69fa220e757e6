//! The agent's voice URL made into a connectable target, through the SSRF guard at the
//! moment the stream opens: a name that now resolves somewhere forbidden is refused even if
//! it passed when the URL was saved.

use std::net::SocketAddr;

use ami_carrier::AgentStream;
use ami_media::agent::AgentTarget;
use ami_webhooks::{Guard, WebhookHost};
use url::Url;

/// The checked target, or a short reason it is refused.
pub async fn target(guard: &Guard, stream: &AgentStream) -> Result<AgentTarget, String> {
    let url = Url::parse(&stream.voice_url).map_err(|_| "invalid voice URL".to_owned())?;
    // The guard knows HTTP URLs; a WebSocket URL is judged as its HTTP twin (same host,
    // port and rules), `wss` as `https`.
    let twin = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return Err("the voice URL is not ws:// or wss://".into()),
    };
    let mut http = url.clone();
    http.set_scheme(twin)
        .map_err(|()| "invalid voice URL".to_owned())?;
    let checked = guard.check_url(http.as_str()).map_err(|e| e.to_string())?;
    let ip = match checked.host() {
        WebhookHost::Ip(ip) => *ip,
        WebhookHost::Domain(name) => guard
            .resolve(name)
            .await
            .map_err(|e| e.to_string())?
            .first()
            .copied()
            .ok_or_else(|| "the voice URL's host has no address".to_owned())?,
    };
    Ok(AgentTarget {
        url,
        addr: SocketAddr::new(ip, checked.port()),
        signing_secret: stream.signing_secret.clone(),
        tls: None,
    })
}
