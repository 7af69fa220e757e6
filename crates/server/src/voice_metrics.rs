//! The SIP carrier in `GET /metrics`, read at each scrape: calls live, calls started by
//! direction and ended by status and cause, RTP packets in, out and dropped, and the frames
//! of the agents' WebSockets.

use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use ami_voice::{MediaCounters, SipCarrier};

pub struct VoiceCollector(pub SipCarrier);

impl std::fmt::Debug for VoiceCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoiceCollector")
    }
}

type Total = fn(&MediaCounters) -> &AtomicU64;
/// Each value of the label, and its counter.
type Values = &'static [(&'static str, Total)];

/// Counters of one name told apart by one label: (name, help, label, values).
const MEDIA: &[(&str, &str, &str, Values)] = &[
    (
        "sip_rtp_packets",
        "RTP packets of the calls, by direction (in: accepted from the far ends, out: sent)",
        "direction",
        &[("in", |m| &m.rtp_in), ("out", |m| &m.rtp_out)],
    ),
    (
        "sip_rtp_dropped",
        "Datagrams dropped on the calls' RTP ports, by reason (stranger: from a source that \
         may not speak for the call; invalid: not RTP of a negotiated payload type)",
        "reason",
        &[
            ("stranger", |m| &m.rtp_stranger),
            ("invalid", |m| &m.rtp_invalid),
        ],
    ),
    (
        "sip_agent_frames",
        "Frames of the agents' WebSockets, by direction (out: queued to the agent, dropped: \
         not sent because the agent was not reading, in: received from the agent)",
        "direction",
        &[
            ("out", |m| &m.agent_frames_out),
            ("dropped", |m| &m.agent_frames_dropped),
            ("in", |m| &m.agent_frames_in),
        ],
    ),
];

impl Collector for VoiceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = self.0.metrics();
        let live = i64::try_from(self.0.live_calls()).unwrap_or(i64::MAX);
        ConstGauge::new(live).encode(encoder.encode_descriptor(
            "sip_calls_live",
            "Calls under way on the SIP carrier (ringing or up)",
            None,
            MetricType::Gauge,
        )?)?;

        let (inbound, outbound) = metrics.started_calls();
        let mut family = encoder.encode_descriptor(
            "sip_calls_started",
            "Calls set up on the SIP carrier, by direction",
            None,
            MetricType::Counter,
        )?;
        for (direction, n) in [("inbound", inbound), ("outbound", outbound)] {
            ConstCounter::new(n).encode(family.encode_family(&[("direction", direction)])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "sip_calls_ended",
            "Calls ended on the SIP carrier, by status and cause (`requested`: the server \
             asked for the end and its call record says why)",
            None,
            MetricType::Counter,
        )?;
        for ((status, cause), n) in metrics.ended_calls() {
            let labels = [("status", status.as_str()), ("cause", cause.as_str())];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }

        for (name, help, label, values) in MEDIA {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (value, counter) in *values {
                let n = MediaCounters::get(counter(&metrics.media));
                ConstCounter::new(n).encode(family.encode_family(&[(*label, *value)])?)?;
            }
        }
        Ok(())
    }
}
