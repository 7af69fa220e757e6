//! What the carrier is told about its SMSCs and routes. Parsed and checked by the server's
//! configuration; plain data here.

use std::time::Duration;

use crate::text::LongMessages;

/// How a connection binds: one transceiver session, or a transmitter for submissions and a
/// receiver for receipts and mobile-originated messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    Transceiver,
    TransmitterReceiver,
}

/// One SMSC account.
#[derive(Clone)]
pub struct Connection {
    /// The name routes use, and health and metrics show.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub bind: BindMode,
    pub tls: bool,
    /// Most `submit_sm` awaiting their response at once, per session.
    pub window: usize,
    /// Most `submit_sm` per second, per session (the SMSC's cap); 0: no cap.
    pub max_per_second: u32,
    pub enquire_link: Duration,
    pub response_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub source_ton: u8,
    pub source_npi: u8,
    pub long_messages: LongMessages,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("system_id", &self.system_id)
            .field("password", &"<redacted>")
            .field("bind", &self.bind)
            .field("tls", &self.tls)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// Destinations starting with `prefix` (E.164, with its `+`) go through `connections`, the
/// first that is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: String,
    pub connections: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub connections: Vec<Connection>,
    /// Empty: every destination through every connection, in their order.
    pub routes: Vec<Route>,
    /// The longest a batch of submissions may take: a submission not started by then is
    /// given back untouched, so that the caller's own timeout never cuts one short.
    pub submit_deadline: Duration,
    /// How long the parts of a concatenated mobile-originated message are awaited.
    pub reassembly_timeout: Duration,
}

impl Settings {
    /// The connections a destination may go through, in order of preference; empty when no
    /// route covers it. The longest matching prefix wins.
    pub fn route(&self, to: &str) -> Vec<&str> {
        if self.routes.is_empty() {
            return self.connections.iter().map(|c| c.name.as_str()).collect();
        }
        self.routes
            .iter()
            .filter(|r| to.starts_with(&r.prefix))
            .max_by_key(|r| r.prefix.len())
            .map(|r| r.connections.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(routes: Vec<Route>) -> Settings {
        Settings {
            connections: ["a", "b"]
                .iter()
                .map(|name| Connection {
                    name: (*name).into(),
                    host: "127.0.0.1".into(),
                    port: 2775,
                    system_id: "ami".into(),
                    password: "secret".into(),
                    system_type: String::new(),
                    bind: BindMode::Transceiver,
                    tls: false,
                    window: 10,
                    max_per_second: 0,
                    enquire_link: Duration::from_secs(30),
                    response_timeout: Duration::from_secs(10),
                    reconnect_min: Duration::from_millis(500),
                    reconnect_max: Duration::from_secs(30),
                    source_ton: 1,
                    source_npi: 1,
                    long_messages: LongMessages::Udh,
                })
                .collect(),
            routes,
            submit_deadline: Duration::from_secs(8),
            reassembly_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_longest_prefix_routes_and_no_routes_means_everything() {
        let s = settings(vec![
            Route {
                prefix: "+34".into(),
                connections: vec!["a".into(), "b".into()],
            },
            Route {
                prefix: "+346".into(),
                connections: vec!["b".into()],
            },
        ]);
        assert_eq!(s.route("+34912345678"), vec!["a", "b"]);
        assert_eq!(s.route("+34612345678"), vec!["b"]);
        assert!(s.route("+57300000000").is_empty());
        assert_eq!(settings(Vec::new()).route("+1"), vec!["a", "b"]);
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let s = settings(Vec::new());
        assert!(!format!("{s:?}").contains("secret"));
    }
}
