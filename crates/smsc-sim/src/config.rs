//! How a simulator is set up: who may bind, how message ids look, what receipts say.

use std::net::SocketAddr;
use std::time::Duration;

use crate::faults::Faults;

/// A system_id and password pair the simulator accepts in bind_* requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub system_id: String,
    pub password: String,
}

impl Credentials {
    pub fn new(system_id: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            system_id: system_id.into(),
            password: password.into(),
        }
    }
}

/// How the message_id of a submit_sm_resp is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageIdScheme {
    /// 1, 2, 3, ... in decimal.
    #[default]
    SequentialDecimal,
    /// A counter as eight or more upper-case hex digits: 0000000A, 0000000B, ...
    Hex,
}

/// How a mobile-originated text too long for one deliver_sm is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Segmentation {
    /// A concatenation user data header (8-bit reference) in each part, esm_class UDHI set.
    #[default]
    Udh,
    /// sar_msg_ref_num, sar_total_segments and sar_segment_seqnum TLVs, no header in the text.
    Sar,
}

/// The final state a receipt reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinalState {
    #[default]
    Delivered,
    Expired,
    Deleted,
    Undeliverable,
    Accepted,
    Unknown,
    Rejected,
}

impl FinalState {
    /// The `stat:` word of the receipt text.
    pub fn stat(self) -> &'static str {
        match self {
            FinalState::Delivered => "DELIVRD",
            FinalState::Expired => "EXPIRED",
            FinalState::Deleted => "DELETED",
            FinalState::Undeliverable => "UNDELIV",
            FinalState::Accepted => "ACCEPTD",
            FinalState::Unknown => "UNKNOWN",
            FinalState::Rejected => "REJECTD",
        }
    }

    /// The value of the message_state TLV (SMPP 3.4, 5.2.28).
    pub fn message_state(self) -> u8 {
        match self {
            FinalState::Delivered => 2,
            FinalState::Expired => 3,
            FinalState::Deleted => 4,
            FinalState::Undeliverable => 5,
            FinalState::Accepted => 6,
            FinalState::Unknown => 7,
            FinalState::Rejected => 8,
        }
    }

    pub fn is_success(self) -> bool {
        self == FinalState::Delivered
    }
}

/// Destinations starting with `prefix` get a receipt in `state` with `error_code` (`err:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalStateRule {
    pub prefix: String,
    pub state: FinalState,
    pub error_code: u16,
}

/// Delivery receipts for submit_sm with registered_delivery set.
#[derive(Debug, Clone)]
pub struct ReceiptConfig {
    pub enabled: bool,
    /// Time between the submit_sm_resp and the receipt.
    pub delay: Duration,
    /// The longest matching prefix decides; without a match the receipt says DELIVRD.
    pub final_states: Vec<FinalStateRule>,
}

impl Default for ReceiptConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            delay: Duration::ZERO,
            final_states: Vec::new(),
        }
    }
}

impl ReceiptConfig {
    pub(crate) fn rule_for(&self, destination: &str) -> (FinalState, u16) {
        self.final_states
            .iter()
            .filter(|rule| destination.starts_with(&rule.prefix))
            .max_by_key(|rule| rule.prefix.len())
            .map_or((FinalState::Delivered, 0), |rule| {
                (rule.state, rule.error_code)
            })
    }
}

/// When an unanswered deliver_sm (receipt or MO) is sent again.
#[derive(Debug, Clone, Copy)]
pub struct DeliverRetry {
    /// A deliver_sm without a positive deliver_sm_resp within this time is sent again.
    pub response_timeout: Duration,
    /// Attempts in all, the first included; then the message is given up.
    pub max_attempts: u32,
}

impl Default for DeliverRetry {
    fn default() -> Self {
        Self {
            response_timeout: Duration::from_secs(5),
            max_attempts: 10,
        }
    }
}

/// Everything a simulator starts with. Faults can be changed later through the handle.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Accepted binds. Empty accepts any system_id and password.
    pub credentials: Vec<Credentials>,
    /// The system_id the simulator names itself in bind_*_resp.
    pub smsc_system_id: String,
    pub message_ids: MessageIdScheme,
    pub receipts: ReceiptConfig,
    pub deliver_retry: DeliverRetry,
    pub segmentation: Segmentation,
    /// Keep every decoded submit_sm for [`crate::Smsc::submits`]; off for benchmarks.
    pub record_submits: bool,
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: Vec::new(),
            smsc_system_id: "SMSCSIM".to_owned(),
            message_ids: MessageIdScheme::default(),
            receipts: ReceiptConfig::default(),
            deliver_retry: DeliverRetry::default(),
            segmentation: Segmentation::default(),
            record_submits: true,
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// A config that accepts exactly one system_id/password pair.
    pub fn with_credentials(system_id: &str, password: &str) -> Self {
        Self {
            credentials: vec![Credentials::new(system_id, password)],
            ..Self::default()
        }
    }
}
