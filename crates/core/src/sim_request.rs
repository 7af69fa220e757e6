//! The SIM request state machine (PROTOCOL §3.3).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Requested,
    OfferCreated,
    OfferAccepted,
    CustomerDataSubmitted,
    SignaturePending,
    Signed,
    Provisioning,
    Active,
    Cancelled,
    Rejected,
    Failed,
}

use Status::*;

pub const ALL: [Status; 11] = [
    Requested,
    OfferCreated,
    OfferAccepted,
    CustomerDataSubmitted,
    SignaturePending,
    Signed,
    Provisioning,
    Active,
    Cancelled,
    Rejected,
    Failed,
];

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Requested => "requested",
            OfferCreated => "offer_created",
            OfferAccepted => "offer_accepted",
            CustomerDataSubmitted => "customer_data_submitted",
            SignaturePending => "signature_pending",
            Signed => "signed",
            Provisioning => "provisioning",
            Active => "active",
            Cancelled => "cancelled",
            Rejected => "rejected",
            Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Active | Cancelled | Rejected | Failed)
    }

    /// The happy path plus the side exits the protocol lists; nothing else.
    pub fn can_become(self, to: Status) -> bool {
        matches!(
            (self, to),
            (Requested, OfferCreated | Cancelled | Failed)
                | (OfferCreated, OfferAccepted | Cancelled | Rejected)
                | (OfferAccepted, CustomerDataSubmitted | Cancelled)
                | (CustomerDataSubmitted, SignaturePending | Cancelled)
                | (SignaturePending, Signed | Cancelled)
                | (Signed, Provisioning | Failed)
                | (Provisioning, Active | Failed)
        )
    }

    /// Exits that must carry a reason.
    pub fn needs_reason(self) -> bool {
        matches!(self, Cancelled | Rejected | Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_have_no_exit() {
        for from in ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(ALL.iter().all(|to| !from.can_become(*to)), "{from:?}");
        }
    }

    #[test]
    fn exactly_the_listed_transitions() {
        let allowed = ALL
            .iter()
            .flat_map(|f| ALL.iter().map(move |t| (*f, *t)))
            .filter(|(f, t)| f.can_become(*t))
            .count();
        assert_eq!(allowed, 16);
        assert!(SignaturePending.can_become(Cancelled));
        assert!(!Signed.can_become(Cancelled));
        assert!(!OfferAccepted.can_become(SignaturePending));
        for s in ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }
}
