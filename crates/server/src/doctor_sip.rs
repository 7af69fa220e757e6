//! A SIP OPTIONS outside any dialog, for `ami doctor`: the keep-alive trunks send each
//! other, so any trunk answers it (200, or a 401/403/405 that still proves it is there).
//! Sent from an ephemeral port, not the server's listener, so that it works while the
//! server runs.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, lookup_host};

use crate::config::SipTransport;

/// The status line of the trunk's answer, e.g. `SIP/2.0 200 OK`.
pub async fn options(
    proxy: &str,
    transport: SipTransport,
    wait: Duration,
) -> anyhow::Result<String> {
    let far = lookup_host(proxy)
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{proxy} resolves to no address"))?;
    tokio::time::timeout(wait, exchange(proxy, far, transport))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} ms", wait.as_millis()))?
}

async fn exchange(proxy: &str, far: SocketAddr, transport: SipTransport) -> anyhow::Result<String> {
    match transport {
        SipTransport::Udp => {
            let local = if far.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let socket = UdpSocket::bind(local).await?;
            socket.connect(far).await?;
            let request = request(proxy, "UDP", &socket.local_addr()?.to_string());
            socket.send(request.as_bytes()).await?;
            let mut buf = vec![0u8; 65_535];
            loop {
                let n = socket.recv(&mut buf).await?;
                if let Some(status) = status_line(&buf[..n]) {
                    return Ok(status);
                }
            }
        }
        SipTransport::Tcp => {
            let mut stream = TcpStream::connect(far).await?;
            let request = request(proxy, "TCP", &stream.local_addr()?.to_string());
            stream.write_all(request.as_bytes()).await?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    anyhow::bail!("the trunk closed the connection without an answer");
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(status) = status_line(&buf) {
                    return Ok(status);
                }
            }
        }
    }
}

fn request(proxy: &str, transport: &str, local: &str) -> String {
    let tag = random_token();
    let branch = random_token();
    let call_id = random_token();
    format!(
        "OPTIONS sip:{proxy} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:ami-doctor@{local}>;tag={tag}\r\n\
         To: <sip:{proxy}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: <sip:ami-doctor@{local}>\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The first line of a SIP response, once it is complete.
fn status_line(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (line, _) = text.split_once("\r\n")?;
    line.starts_with("SIP/2.0 ").then(|| line.to_owned())
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_udp_trunk_that_answers_and_one_that_does_not() {
        let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = trunk.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            let (n, from) = trunk.recv_from(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"OPTIONS sip:"));
            trunk
                .send_to(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", from)
                .await
                .unwrap();
        });
        let status = options(&addr, SipTransport::Udp, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(status, "SIP/2.0 200 OK");

        // A bound socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let refused = options(&addr, SipTransport::Udp, Duration::from_millis(300)).await;
        assert!(refused.is_err());
    }
}
