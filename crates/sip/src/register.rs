//! Keeps a trunk's registration alive: REGISTER with digest, refreshed before it lapses,
//! retried after a failure, dropped (expires 0) at shutdown.

use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::registration::Registration;
use rsipstack::sip;
use rsipstack::sip::StatusCodeKind;
use tracing::{info, warn};

use crate::settings::{Transport, Trunk, split_host_port};
use crate::ua::Inner;

/// The wait after a failed attempt.
const RETRY: Duration = Duration::from_secs(30);
/// How long the REGISTER with expires 0 may take at shutdown.
const UNREGISTER_WAIT: Duration = Duration::from_secs(2);

fn registrar(trunk: &Trunk) -> Option<sip::Uri> {
    let (host, port) = split_host_port(&trunk.proxy).ok()?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let param = match trunk.transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
    };
    sip::Uri::try_from(format!("sip:{host}:{port}{param}")).ok()
}

fn set_registered(ua: &Inner, trunk: &str, registered: bool) {
    if let Ok(mut r) = ua.registered.lock() {
        r.insert(trunk.to_string(), registered);
    }
}

pub(crate) async fn keep_registered(ua: Arc<Inner>, trunk: Trunk) {
    let Some(server) = registrar(&trunk) else {
        return;
    };
    let mut registration = Registration::new(ua.endpoint.clone(), Inner::credential(&trunk));
    loop {
        let attempt = tokio::select! {
            r = registration.register(server.clone(), Some(trunk.register_expiry_secs)) => r,
            _ = ua.cancel.cancelled() => return,
        };
        let wait = match attempt {
            Ok(response) if response.status_code.kind() == StatusCodeKind::Successful => {
                set_registered(&ua, &trunk.name, true);
                let granted = u64::from(registration.expires().max(60));
                info!(trunk = %trunk.name, granted, "registered");
                // Refresh well before the binding lapses.
                Duration::from_secs(granted * 3 / 4)
            }
            Ok(response) => {
                set_registered(&ua, &trunk.name, false);
                warn!(trunk = %trunk.name, status = %response.status_code, "registration refused");
                RETRY
            }
            Err(e) => {
                set_registered(&ua, &trunk.name, false);
                warn!(trunk = %trunk.name, error = %e, "registration failed");
                RETRY
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ua.cancel.cancelled() => return,
        }
    }
}

/// Drops the bindings of the trunks that registered.
pub(crate) async fn unregister_all(ua: &Arc<Inner>) {
    for trunk in ua.settings.trunks.iter().filter(|t| t.register) {
        let registered = ua
            .registered
            .lock()
            .map(|r| r.get(&trunk.name).copied().unwrap_or(false))
            .unwrap_or(false);
        let Some(server) = registrar(trunk).filter(|_| registered) else {
            continue;
        };
        let mut registration = Registration::new(ua.endpoint.clone(), Inner::credential(trunk));
        let _ = tokio::time::timeout(UNREGISTER_WAIT, registration.register(server, Some(0))).await;
        set_registered(ua, &trunk.name, false);
    }
}
