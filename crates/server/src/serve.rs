//! The accept loop: HTTP/1.1 and h2c on one port, slow-header protection, graceful shutdown.
//!
//! `axum::serve` offers no header read timeout, so connections are driven by hyper-util
//! directly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long in-flight requests may run on after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error such as EMFILE, so a full fd table does not spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops accepting, lets
/// in-flight requests finish for up to 10 s and closes whatever is left.
///
/// Handlers can read the peer address with `ConnectInfo<SocketAddr>`.
pub async fn run(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);

    let graceful = GracefulShutdown::new();
    let hard_stop = CancellationToken::new();

    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            // The client gave up before we got to it: nothing wrong with the listener.
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        // Small JSON responses: do not wait for Nagle.
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            builder.clone(),
            stream,
            peer,
            app.clone(),
            graceful.watcher(),
            header_read_timeout,
            hard_stop.clone(),
        ));
    }

    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "shutting down; draining connections"
    );
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
    hard_stop.cancel();
    Ok(())
}

fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

async fn serve_connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    watcher: Watcher,
    first_request_timeout: Duration,
    hard_stop: CancellationToken,
) {
    let first_request = Arc::new(Notify::new());
    let service = {
        let first_request = first_request.clone();
        tower::service_fn(move |mut req: hyper::Request<Incoming>| {
            first_request.notify_one();
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        })
    };
    let service = TowerToHyperService::new(service);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let conn = watcher.watch(conn);
    tokio::pin!(conn);

    // hyper's header timeout only starts once the protocol is sniffed; a client that sends
    // nothing (or a few bytes of the h2 preface) would otherwise hold the socket forever.
    let started = tokio::select! {
        result = &mut conn => return log_end(peer, result),
        () = first_request.notified() => true,
        () = tokio::time::sleep(first_request_timeout) => false,
        () = hard_stop.cancelled() => return,
    };
    if !started {
        tracing::debug!(%peer, "no request within the header timeout; closing");
        return;
    }
    tokio::select! {
        result = &mut conn => log_end(peer, result),
        () = hard_stop.cancelled() => {}
    }
}

fn log_end(peer: SocketAddr, result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = result {
        // Client-side trouble (resets, timeouts, garbage) is routine on a public port.
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(
        app: Router,
        header_timeout: Duration,
    ) -> (
        SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let handle = tokio::spawn(run(listener, app, header_timeout, token.clone()));
        (addr, token, handle)
    }

    /// Reads until EOF or error; returns how long that took and what was read.
    async fn read_until_closed(
        stream: &mut TcpStream,
        limit: Duration,
    ) -> Option<(Duration, Vec<u8>)> {
        let started = Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(
                limit.saturating_sub(started.elapsed()),
                stream.read(&mut buf),
            )
            .await
            {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some((started.elapsed(), out)),
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn half_a_header_is_disconnected_after_the_timeout() {
        let timeout = Duration::from_millis(300);
        let (addr, token, handle) =
            start(Router::new().route("/", get(|| async { "ok" })), timeout).await;

        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let (took, _) = read_until_closed(&mut slow, Duration::from_secs(3))
            .await
            .expect("still connected after 3 s");
        assert!(
            took >= Duration::from_millis(250),
            "closed too early: {took:?}"
        );
        assert!(
            took <= timeout + Duration::from_millis(700),
            "closed too late: {took:?}"
        );

        // Nothing at all is treated the same way.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let (took, _) = read_until_closed(&mut silent, Duration::from_secs(3))
            .await
            .expect("silent client kept");
        assert!(
            took <= timeout + Duration::from_millis(700),
            "closed too late: {took:?}"
        );

        token.cancel();
        handle.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn serves_http1_with_peer_address_and_drains_on_shutdown() {
        let app =
            Router::new()
                .route(
                    "/peer",
                    get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                        peer.ip().to_string()
                    }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        "done"
                    }),
                );
        let (addr, token, handle) = start(app, Duration::from_secs(5)).await;

        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (_, body) = read_until_closed(&mut c, Duration::from_secs(3))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("127.0.0.1"),
            "{text}"
        );

        // A request in flight when shutdown starts still gets its answer.
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        token.cancel();
        let (_, body) = read_until_closed(&mut c, Duration::from_secs(3))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("done"),
            "{text}"
        );
        tokio::time::timeout(Duration::from_secs(3), handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "still accepting after shutdown"
        );
    }

    #[tokio::test]
    async fn speaks_h2c_with_prior_knowledge() {
        let (addr, token, handle) = start(
            Router::new().route("/", get(|| async { "ok" })),
            Duration::from_secs(5),
        )
        .await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        // Preface plus an empty SETTINGS frame: the server answers with its own SETTINGS.
        c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .unwrap();
        let mut head = [0u8; 9];
        tokio::time::timeout(Duration::from_secs(3), c.read_exact(&mut head))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(head[3], 0x04, "expected a SETTINGS frame, got {head:?}");
        token.cancel();
        drop(c);
        tokio::time::timeout(Duration::from_secs(12), handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
