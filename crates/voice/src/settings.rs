//! What the SIP carrier is built with.

use std::net::IpAddr;

use ami_media::bridge::BridgeConfig;
use ami_media::sdp::Codec;
use ami_sip::SipSettings;
use ami_webhooks::Guard;

#[derive(Debug, Clone)]
pub struct VoiceSettings {
    /// Listeners and trunks.
    pub sip: SipSettings,
    /// RTP ports, both inclusive (RTP on even ports, RTCP reserved above each).
    pub rtp_port_first: u16,
    pub rtp_port_last: u16,
    /// Offered in this order; the first the far end shares is used.
    pub codecs: Vec<Codec>,
    /// Limits of each call's bridge to the agent.
    pub bridge: BridgeConfig,
    /// The SSRF guard the agent's voice URL must pass when its stream opens.
    pub guard: Guard,
}

impl VoiceSettings {
    /// Where RTP sockets are bound: the SIP listener's address.
    pub fn bind_ip(&self) -> Option<IpAddr> {
        self.sip.listen_udp.or(self.sip.listen_tcp).map(|a| a.ip())
    }

    /// The address written in our SDP: `public_host`, else the listener's own.
    pub fn media_ip(&self) -> Option<IpAddr> {
        self.sip
            .public_host
            .or_else(|| self.bind_ip().filter(|ip| !ip.is_unspecified()))
    }

    /// Every problem, each naming its key; empty when usable.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.sip.problems();
        if self.bind_ip().is_some() && self.media_ip().is_none() {
            out.push(
                "sip.public_host must be set when the listeners use an unspecified address \
                 (it is the address written in the SDP)"
                    .into(),
            );
        }
        if let Err(e) =
            ami_media::ports::PortAllocator::new(self.rtp_port_first, self.rtp_port_last)
        {
            out.push(format!("sip.rtp_port_first/rtp_port_last: {e}"));
        }
        if self.codecs.is_empty() {
            out.push("sip.codecs must name PCMU, PCMA or both".into());
        }
        out
    }
}
