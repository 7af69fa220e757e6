//! Connecting to the agent's WebSocket (the MID's voice URL).
//!
//! The caller (the server's SSRF guard) has already resolved and checked the URL; we
//! connect to exactly that socket address and use the URL's host only for `Host` and
//! TLS SNI. The upgrade request is signed like a Standard Webhooks delivery over the
//! `start` frame that follows, so the agent can check the stream is ours before it
//! trusts it: `webhook-signature: v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{start}"))`
//! with the MID's `whsec_` secret.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderValue;
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use url::Url;

/// The agent's socket.
pub type AgentSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest frame or message accepted from an agent; a 20 ms media frame is ~250 bytes,
/// so this allows a few seconds of audio in one message.
const MAX_MESSAGE: usize = 256 * 1024;

/// Where and how to reach the agent.
#[derive(Debug, Clone)]
pub struct AgentTarget {
    /// The voice URL (`ws://` or `wss://`).
    pub url: Url,
    /// The address the URL resolved to, already checked by the caller.
    pub addr: SocketAddr,
    /// The MID's signing secret, `whsec_<base64 key>`.
    pub signing_secret: String,
    /// TLS client settings for `wss://`; `None`: the public roots (`webpki-roots`).
    /// Set for agents behind a private CA.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why the agent could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not `ws`/`wss` or has no host.
    #[error("invalid agent URL")]
    InvalidUrl,
    /// The secret is not a `whsec_` secret.
    #[error("invalid signing secret")]
    InvalidSecret,
    /// The stream id cannot be a `webhook-id`.
    #[error("invalid stream id")]
    InvalidId,
    /// TCP, TLS or the upgrade failed.
    #[error("connect: {0}")]
    Connect(String),
    /// No answer in time.
    #[error("connect timed out")]
    Timeout,
}

/// The three Standard Webhooks headers for `payload`.
pub fn signature_headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    payload: &str,
) -> Result<[(&'static str, String); 3], ConnectError> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
        .filter(|k| !k.is_empty())
        .ok_or(ConnectError::InvalidSecret)?;
    let valid_id = !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_id {
        return Err(ConnectError::InvalidId);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| ConnectError::InvalidSecret)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(payload.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    Ok([
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", format!("v1,{signature}")),
    ])
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ConnectError::Connect(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens the agent's socket, signing the upgrade over `start_frame` (which the caller
/// sends, byte for byte, as the second frame). The whole connect is bounded by `timeout`.
pub async fn connect(
    target: &AgentTarget,
    stream_id: &str,
    start_frame: &str,
    now_unix: i64,
    timeout: Duration,
) -> Result<AgentSocket, ConnectError> {
    let connector = match target.url.scheme() {
        "ws" => Connector::Plain,
        "wss" => Connector::Rustls(match &target.tls {
            Some(config) => Arc::clone(config),
            None => tls_config()?,
        }),
        _ => return Err(ConnectError::InvalidUrl),
    };
    if target.url.host_str().is_none() {
        return Err(ConnectError::InvalidUrl);
    }
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|_| ConnectError::InvalidUrl)?;
    for (name, value) in
        signature_headers(&target.signing_secret, stream_id, now_unix, start_frame)?
    {
        let value = HeaderValue::from_str(&value).map_err(|_| ConnectError::InvalidId)?;
        request.headers_mut().insert(name, value);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let attempt = async {
        let tcp = TcpStream::connect(target.addr)
            .await
            .map_err(|e| ConnectError::Connect(e.to_string()))?;
        // Media frames are small and latency-bound.
        tcp.set_nodelay(true)
            .map_err(|e| ConnectError::Connect(e.to_string()))?;
        let (socket, _response) = tokio_tungstenite::client_async_tls_with_config(
            request,
            tcp,
            Some(config),
            Some(connector),
        )
        .await
        .map_err(|e| ConnectError::Connect(e.to_string()))?;
        Ok(socket)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ConnectError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification's reference libraries.
        let headers = signature_headers(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        let Ok([id, ts, sig]) = headers else {
            panic!("{headers:?}")
        };
        assert_eq!(id.1, "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(ts.1, "1614265330");
        assert_eq!(sig.1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn bad_secret_or_id() {
        assert!(matches!(
            signature_headers("nope", "a", 1, "{}"),
            Err(ConnectError::InvalidSecret)
        ));
        assert!(matches!(
            signature_headers("whsec_", "a", 1, "{}"),
            Err(ConnectError::InvalidSecret)
        ));
        assert!(matches!(
            signature_headers("whsec_AAAA", "a.b", 1, "{}"),
            Err(ConnectError::InvalidId)
        ));
    }
}
