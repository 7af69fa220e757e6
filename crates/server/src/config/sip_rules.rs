//! Rules across the SIP keys: `call_carrier = "sip"` needs a listener and a trunk, and the
//! user agent's own checks (listeners against trunk transports, credentials, number
//! formats, unique names) and the RTP range must pass.

use super::Config;
use super::collect::{Path, Problem, Soundness};
use super::types::CallCarrier;

pub(super) fn check(c: &Config, sound: &Soundness, problems: &mut Vec<Problem>) {
    let key = Path::key;
    if !sound.all(&[key("call_carrier"), key("sip"), key("sip_trunks")]) {
        return;
    }
    if c.call_carrier != CallCarrier::Sip {
        return;
    }
    if c.sip_trunks.is_empty() {
        problems.push(Problem::new(
            key("sip_trunks"),
            "call_carrier = \"sip\" needs at least one [[sip_trunks]] trunk",
        ));
    }
    for problem in c.sip.settings(&c.sip_trunks).problems() {
        problems.push(Problem::new(key("sip"), problem));
    }
    let (first, last) = (c.sip.rtp_port_first, c.sip.rtp_port_last);
    if last < first.saturating_add(3) {
        problems.push(Problem::new(
            key("sip").field("rtp_port_last"),
            format!(
                "must be at least rtp_port_first + 3 (room for an RTP and RTCP pair), got \
                 {first}..{last}"
            ),
        ));
    }
    let unspecified = c
        .sip
        .listen_udp
        .or(c.sip.listen_tcp)
        .is_some_and(|a| a.ip().is_unspecified());
    if unspecified && c.sip.public_host.is_none() {
        problems.push(Problem::new(
            key("sip").field("public_host"),
            "must be set when the listeners use an unspecified address (it is the address \
             written in the SDP)",
        ));
    }
}
