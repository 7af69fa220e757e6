//! SDP offer/answer for one audio stream (RFC 3264), parsed with the `sdp` crate.
//!
//! We speak G.711 (PCMU, PCMA) at 8 kHz and RFC 4733 telephone-events, nothing else.
//! The SIP side hands us the remote body and sends the body we build.

use std::io::Cursor;
use std::net::IpAddr;

use sdp::description::common::{Address, Attribute, ConnectionInformation};
use sdp::description::media::{MediaDescription, MediaName, RangedPort};
use sdp::description::session::{Origin, SessionDescription, TimeDescription, Timing};

/// The payload type we offer for telephone-event (any dynamic value works).
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// Milliseconds of audio per packet we send.
pub const PTIME_MS: u32 = 20;

/// Why a remote SDP cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not a valid session description.
    #[error("invalid SDP: {0}")]
    Invalid(String),
    /// No usable `m=audio` line (none, port 0, or not RTP/AVP).
    #[error("no usable audio stream in the SDP")]
    NoAudio,
    /// No connection address for the audio stream.
    #[error("no connection address for the audio stream")]
    NoAddress,
    /// None of the offered codecs is one we speak (the SIP side answers 488).
    #[error("no common codec")]
    NoCommonCodec,
}

/// A codec we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 μ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The rtpmap encoding name.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// `PCMU` or `PCMA` (any case), as in the configuration's preference list.
    pub fn parse(name: &str) -> Option<Self> {
        Self::from_name(name, 8000)
    }

    fn from_name(name: &str, clock: u32) -> Option<Self> {
        if clock != 8000 {
            return None;
        }
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }
}

/// One payload type of the remote `m=audio` line, with its rtpmap if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedFormat {
    /// The payload type.
    pub payload_type: u8,
    /// The encoding name from `a=rtpmap`, or the static assignment (RFC 3551).
    pub encoding: Option<String>,
    /// The clock rate from `a=rtpmap`, or the static assignment.
    pub clock_rate: Option<u32>,
}

/// What the remote side's SDP says about its audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAudio {
    /// The connection address (media level, else session level). `0.0.0.0` (hold) is kept
    /// as given.
    pub address: IpAddr,
    /// The RTP port.
    pub port: u16,
    /// The payload types in the order offered.
    pub formats: Vec<OfferedFormat>,
    /// `a=ptime`, if given.
    pub ptime: Option<u32>,
}

impl RemoteAudio {
    /// The payload type of `telephone-event/8000`, if offered.
    pub fn telephone_event(&self) -> Option<u8> {
        self.formats.iter().find_map(|f| {
            let name = f.encoding.as_deref()?;
            (name.eq_ignore_ascii_case("telephone-event") && f.clock_rate == Some(8000))
                .then_some(f.payload_type)
        })
    }

    /// The codecs we speak among the offered ones, with the payload type the remote
    /// uses for each, in the remote's order.
    pub fn codecs(&self) -> Vec<(Codec, u8)> {
        self.formats
            .iter()
            .filter_map(|f| {
                let codec = Codec::from_name(f.encoding.as_deref()?, f.clock_rate?)?;
                Some((codec, f.payload_type))
            })
            .collect()
    }
}

/// The outcome of negotiation: what both sides send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec of the call.
    pub codec: Codec,
    /// Its payload type on the wire.
    pub payload_type: u8,
    /// The telephone-event payload type, if both sides have it.
    pub telephone_event: Option<u8>,
}

fn static_format(pt: u8) -> (Option<String>, Option<u32>) {
    match pt {
        0 => (Some("PCMU".into()), Some(8000)),
        8 => (Some("PCMA".into()), Some(8000)),
        _ => (None, None),
    }
}

fn parse_address(ci: &ConnectionInformation) -> Option<IpAddr> {
    if !ci.network_type.eq_ignore_ascii_case("IN") {
        return None;
    }
    let addr = ci.address.as_ref()?;
    // A multicast address may carry "/ttl"; the crate splits it off, but be lenient.
    addr.address.split('/').next()?.parse().ok()
}

/// Reads the first usable audio stream of a remote SDP.
pub fn parse_remote(body: &str) -> Result<RemoteAudio, SdpError> {
    let mut reader = Cursor::new(body.as_bytes());
    let desc =
        SessionDescription::unmarshal(&mut reader).map_err(|e| SdpError::Invalid(e.to_string()))?;
    let media = desc
        .media_descriptions
        .iter()
        .find(|m| {
            m.media_name.media == "audio"
                && m.media_name.port.value > 0
                && m.media_name
                    .protos
                    .join("/")
                    .eq_ignore_ascii_case("RTP/AVP")
        })
        .ok_or(SdpError::NoAudio)?;
    let port = u16::try_from(media.media_name.port.value).map_err(|_| SdpError::NoAudio)?;
    let address = media
        .connection_information
        .as_ref()
        .or(desc.connection_information.as_ref())
        .and_then(parse_address)
        .ok_or(SdpError::NoAddress)?;

    let mut formats = Vec::new();
    for f in &media.media_name.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        if pt > 127 {
            continue;
        }
        let (mut encoding, mut clock_rate) = static_format(pt);
        if let Some((name, clock)) = rtpmap(media, pt) {
            encoding = Some(name);
            clock_rate = clock;
        }
        formats.push(OfferedFormat {
            payload_type: pt,
            encoding,
            clock_rate,
        });
    }
    let ptime = media
        .attribute("ptime")
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    Ok(RemoteAudio {
        address,
        port,
        formats,
        ptime,
    })
}

/// `a=rtpmap:<pt> <name>/<clock>[/<channels>]` for one payload type.
fn rtpmap(media: &MediaDescription, pt: u8) -> Option<(String, Option<u32>)> {
    media.attributes.iter().find_map(|a| {
        if a.key != "rtpmap" {
            return None;
        }
        let value = a.value.as_deref()?;
        let (p, rest) = value.split_once(' ')?;
        if p.trim().parse::<u8>().ok()? != pt {
            return None;
        }
        let mut parts = rest.trim().split('/');
        let name = parts.next()?.to_string();
        let clock = parts.next().and_then(|c| c.parse().ok());
        Some((name, clock))
    })
}

/// Picks the codec: the first of `preference` the remote offers.
pub fn negotiate(remote: &RemoteAudio, preference: &[Codec]) -> Result<Negotiated, SdpError> {
    let offered = remote.codecs();
    let (codec, payload_type) = preference
        .iter()
        .find_map(|want| offered.iter().find(|(c, _)| c == want).copied())
        .ok_or(SdpError::NoCommonCodec)?;
    Ok(Negotiated {
        codec,
        payload_type,
        telephone_event: remote.telephone_event(),
    })
}

/// Our side of the session: where we receive RTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAudio {
    /// The public address the remote side sends to (`c=`, `o=`).
    pub address: IpAddr,
    /// Our RTP port.
    pub port: u16,
    /// `o=` session id; keep it for the call.
    pub session_id: u64,
    /// `o=` version; increase it on every new offer or answer in the call.
    pub session_version: u64,
}

/// Builds an SDP body: one `m=audio` with `codecs` (payload type each) and, if given,
/// the telephone-event payload type.
pub fn build(local: &LocalAudio, codecs: &[(Codec, u8)], telephone_event: Option<u8>) -> String {
    let addr_type = if local.address.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    };
    let connection = ConnectionInformation {
        network_type: "IN".into(),
        address_type: addr_type.into(),
        address: Some(Address {
            address: local.address.to_string(),
            ttl: None,
            range: None,
        }),
    };
    let mut formats: Vec<String> = codecs.iter().map(|(_, pt)| pt.to_string()).collect();
    let mut attributes: Vec<Attribute> = codecs
        .iter()
        .map(|(c, pt)| attr("rtpmap", format!("{pt} {}/8000", c.encoding_name())))
        .collect();
    if let Some(te) = telephone_event {
        formats.push(te.to_string());
        attributes.push(attr("rtpmap", format!("{te} telephone-event/8000")));
        attributes.push(attr("fmtp", format!("{te} 0-16")));
    }
    attributes.push(attr("ptime", PTIME_MS.to_string()));
    attributes.push(Attribute {
        key: "sendrecv".into(),
        value: None,
    });
    let desc = SessionDescription {
        version: 0,
        origin: Origin {
            username: "-".into(),
            session_id: local.session_id,
            session_version: local.session_version,
            network_type: "IN".into(),
            address_type: addr_type.into(),
            unicast_address: local.address.to_string(),
        },
        session_name: "-".into(),
        session_information: None,
        uri: None,
        email_address: None,
        phone_number: None,
        connection_information: Some(connection),
        bandwidth: vec![],
        time_descriptions: vec![TimeDescription {
            timing: Timing {
                start_time: 0,
                stop_time: 0,
            },
            repeat_times: vec![],
        }],
        time_zones: vec![],
        encryption_key: None,
        attributes: vec![],
        media_descriptions: vec![MediaDescription {
            media_name: MediaName {
                media: "audio".into(),
                port: RangedPort {
                    value: local.port as isize,
                    range: None,
                },
                protos: vec!["RTP".into(), "AVP".into()],
                formats,
            },
            media_title: None,
            connection_information: None,
            bandwidth: vec![],
            encryption_key: None,
            attributes,
        }],
    };
    desc.marshal()
}

fn attr(key: &str, value: String) -> Attribute {
    Attribute {
        key: key.into(),
        value: Some(value),
    }
}

/// What answering an offer gives: the remote side, the choice, and our SDP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The remote's audio stream.
    pub remote: RemoteAudio,
    /// The negotiated codec and payload types.
    pub negotiated: Negotiated,
    /// Our answer's body.
    pub body: String,
}

/// Answers a remote offer in one step: parse, negotiate by `preference`, build.
pub fn answer(offer: &str, local: &LocalAudio, preference: &[Codec]) -> Result<Answer, SdpError> {
    let remote = parse_remote(offer)?;
    let negotiated = negotiate(&remote, preference)?;
    let body = build_answer(local, &negotiated);
    Ok(Answer {
        remote,
        negotiated,
        body,
    })
}

/// Our offer: every codec of `preference` in order, plus telephone-event.
pub fn build_offer(local: &LocalAudio, preference: &[Codec]) -> String {
    let codecs: Vec<(Codec, u8)> = preference.iter().map(|c| (*c, c.payload_type())).collect();
    build(local, &codecs, Some(TELEPHONE_EVENT_PT))
}

/// Our answer to a negotiated offer: the chosen codec with the remote's payload type,
/// and telephone-event only if the remote offered it (with its payload type).
pub fn build_answer(local: &LocalAudio, negotiated: &Negotiated) -> String {
    build(
        local,
        &[(negotiated.codec, negotiated.payload_type)],
        negotiated.telephone_event,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OFFER: &str = "v=0\r\n\
o=- 123 1 IN IP4 198.51.100.7\r\n\
s=call\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=video 0 RTP/AVP 96\r\n\
m=audio 40000 RTP/AVP 8 0 18 96\r\n\
c=IN IP4 203.0.113.9\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:96 telephone-event/8000\r\n\
a=fmtp:96 0-15\r\n\
a=ptime:30\r\n\
a=sendrecv\r\n";

    #[test]
    fn reads_the_audio_stream() {
        let r = parse_remote(OFFER);
        let Ok(r) = r else { panic!("{r:?}") };
        assert_eq!(
            r.address,
            "203.0.113.9".parse::<IpAddr>().unwrap_or(r.address)
        );
        assert_eq!(r.address.to_string(), "203.0.113.9");
        assert_eq!(r.port, 40000);
        assert_eq!(r.ptime, Some(30));
        assert_eq!(r.telephone_event(), Some(96));
        assert_eq!(r.codecs(), vec![(Codec::Pcma, 8), (Codec::Pcmu, 0)]);
        assert_eq!(r.formats.len(), 4);
    }

    #[test]
    fn prefers_by_our_order_not_the_offer_order() {
        let Ok(r) = parse_remote(OFFER) else { panic!() };
        let n = negotiate(&r, &[Codec::Pcmu, Codec::Pcma]);
        assert_eq!(
            n,
            Ok(Negotiated {
                codec: Codec::Pcmu,
                payload_type: 0,
                telephone_event: Some(96)
            })
        );
        let n = negotiate(&r, &[Codec::Pcma, Codec::Pcmu]);
        assert_eq!(n.map(|n| n.codec), Ok(Codec::Pcma));
    }

    #[test]
    fn one_step_answer_and_codec_names() {
        let local = LocalAudio {
            address: IpAddr::from([192, 0, 2, 10]),
            port: 30002,
            session_id: 1,
            session_version: 1,
        };
        let a = answer(OFFER, &local, &[Codec::Pcma]);
        assert_eq!(a.as_ref().map(|a| a.negotiated.codec), Ok(Codec::Pcma));
        assert!(a.is_ok_and(|a| a.body.contains("m=audio 30002 RTP/AVP 8 96\r\n")));
        assert!(matches!(
            answer("v=0", &local, &[Codec::Pcmu]),
            Err(SdpError::Invalid(_))
        ));
        assert_eq!(Codec::parse("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::parse("PCMA"), Some(Codec::Pcma));
        assert_eq!(Codec::parse("G729"), None);
    }

    #[test]
    fn no_common_codec() {
        let body = OFFER.replace("8 0 18 96", "18 96");
        let Ok(r) = parse_remote(&body) else { panic!() };
        assert_eq!(
            negotiate(&r, &[Codec::Pcmu, Codec::Pcma]),
            Err(SdpError::NoCommonCodec)
        );
        // A PCMU name at another clock rate is not ours either.
        let body = OFFER
            .replace("8 0 18 96", "97")
            .replace("a=rtpmap:18 G729/8000", "a=rtpmap:97 PCMU/16000");
        let Ok(r) = parse_remote(&body) else { panic!() };
        assert_eq!(negotiate(&r, &[Codec::Pcmu]), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn session_level_address_and_refusals() {
        let body = OFFER.replace("c=IN IP4 203.0.113.9\r\n", "");
        assert_eq!(
            parse_remote(&body).map(|r| r.address.to_string()),
            Ok("198.51.100.7".into())
        );
        let body = OFFER.replace("RTP/AVP 8 0", "RTP/SAVP 8 0");
        assert_eq!(parse_remote(&body), Err(SdpError::NoAudio));
        let body = OFFER.replace("m=audio 40000", "m=audio 0");
        assert_eq!(parse_remote(&body), Err(SdpError::NoAudio));
        let body = OFFER
            .replace("c=IN IP4 203.0.113.9\r\n", "")
            .replace("c=IN IP4 198.51.100.7\r\n", "");
        assert_eq!(parse_remote(&body), Err(SdpError::NoAddress));
        assert!(matches!(parse_remote("hello"), Err(SdpError::Invalid(_))));
    }

    #[test]
    fn answer_and_offer_parse_back() {
        let local = LocalAudio {
            address: "192.0.2.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port: 30000,
            session_id: 42,
            session_version: 1,
        };
        let Ok(r) = parse_remote(OFFER) else { panic!() };
        let Ok(n) = negotiate(&r, &[Codec::Pcmu]) else {
            panic!()
        };
        let answer = build_answer(&local, &n);
        assert!(answer.contains("c=IN IP4 192.0.2.10\r\n"), "{answer}");
        assert!(
            answer.contains("m=audio 30000 RTP/AVP 0 96\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(answer.contains("a=fmtp:96 0-16\r\n"));
        assert!(answer.contains("a=ptime:20\r\n"));
        assert!(answer.contains("a=sendrecv\r\n"));
        let back = parse_remote(&answer);
        assert_eq!(
            back.as_ref().map(|b| (b.port, b.telephone_event())),
            Ok((30000, Some(96)))
        );

        let offer = build_offer(&local, &[Codec::Pcmu, Codec::Pcma]);
        assert!(
            offer.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"),
            "{offer}"
        );
        let Ok(back) = parse_remote(&offer) else {
            panic!("{offer}")
        };
        assert_eq!(back.codecs(), vec![(Codec::Pcmu, 0), (Codec::Pcma, 8)]);
        assert_eq!(back.telephone_event(), Some(101));
        assert_eq!(back.ptime, Some(20));
    }

    proptest! {
        #[test]
        fn any_bytes_no_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_remote(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn mutated_offers_no_panic(cut in 0usize..400, insert in "[ -~\r\n]{0,20}") {
            let mut body = OFFER.to_string();
            let at = cut.min(body.len());
            body.insert_str(at, &insert);
            let _ = parse_remote(&body);
            let _ = parse_remote(&OFFER[..at]);
        }
    }
}
