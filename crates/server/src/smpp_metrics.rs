//! The SMPP sessions in `GET /metrics`, read at each scrape: whether each is bound, how much
//! of its window is in use, and its counters.

use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use ami_smpp::{Counters, Session, Smpp};

pub struct SmppCollector(pub Smpp);

impl std::fmt::Debug for SmppCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmppCollector")
    }
}

type Gauge = fn(&Session) -> i64;
type Count = fn(&Counters) -> u64;

const GAUGES: &[(&str, &str, Gauge)] = &[
    (
        "smpp_bound",
        "1 when the session is bound, 0 otherwise",
        |s| i64::from(s.is_up()),
    ),
    (
        "smpp_window_in_use",
        "submit_sm awaiting their response",
        |s| s.in_flight() as i64,
    ),
    (
        "smpp_window_size",
        "the most submit_sm that may await their response",
        |s| s.connection.window as i64,
    ),
];

const COUNTERS: &[(&str, &str, Count)] = &[
    ("smpp_binds", "binds that succeeded", |c| {
        c.binds.load(Ordering::Relaxed)
    }),
    (
        "smpp_bind_failures",
        "binds that failed (refused, unreachable)",
        |c| c.bind_failures.load(Ordering::Relaxed),
    ),
    ("smpp_disconnects", "bound connections that ended", |c| {
        c.disconnects.load(Ordering::Relaxed)
    }),
    ("smpp_submits", "submit_sm sent", |c| {
        c.submitted.load(Ordering::Relaxed)
    }),
    (
        "smpp_throttled",
        "submit_sm answered with throttling or a full queue",
        |c| c.throttled.load(Ordering::Relaxed),
    ),
    (
        "smpp_refused",
        "submit_sm refused with another error status",
        |c| c.refused.load(Ordering::Relaxed),
    ),
    (
        "smpp_unknown",
        "submit_sm without a usable answer (timeout, generic_nack, link lost)",
        |c| c.unknown.load(Ordering::Relaxed),
    ),
    ("smpp_received", "deliver_sm and data_sm received", |c| {
        c.received.load(Ordering::Relaxed)
    }),
];

impl Collector for SmppCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sessions = self.0.sessions();
        let labels: Vec<[(&str, &str); 2]> = sessions
            .iter()
            .map(|s| [("connection", s.name()), ("role", s.role.as_str())])
            .collect();
        for (name, help, value) in GAUGES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (session, labels) in sessions.iter().zip(&labels) {
                ConstGauge::new(value(session)).encode(family.encode_family(labels)?)?;
            }
        }
        for (name, help, value) in COUNTERS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (session, labels) in sessions.iter().zip(&labels) {
                ConstCounter::new(value(&session.counters))
                    .encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}
