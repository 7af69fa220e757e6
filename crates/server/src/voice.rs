//! Inbound SIP calls decided by the services: the number's MID, its state and its
//! forwarding URI, refusals turned into SIP final responses.

use ami_services::inbound_calls::{InboundRoute as Decided, RefuseReason};
use ami_services::{Error, Services};
use ami_voice::{CallDirectory, DirectoryFuture, InboundRoute};

/// The services as the SIP carrier's directory of numbers.
pub struct Directory {
    pub services: Services,
}

impl CallDirectory for Directory {
    fn route_inbound(
        &self,
        from: Option<String>,
        to: String,
        telco_ref: String,
    ) -> DirectoryFuture<'_> {
        Box::pin(async move {
            // The call record needs the caller's number.
            let Some(from) = from else {
                return refuse(403, "Anonymous Calls Not Accepted");
            };
            match self
                .services
                .route_inbound_call(&from, &to, Some(&telco_ref))
                .await
            {
                Ok(Decided::Agent {
                    call_id,
                    account,
                    mid,
                    voice_url,
                    signing_secret,
                }) => InboundRoute::Agent {
                    call_id,
                    mid_id: mid,
                    account_id: account,
                    voice_url,
                    signing_secret,
                },
                Ok(Decided::Bridge {
                    call_id, sip_uri, ..
                }) => InboundRoute::Bridge { call_id, sip_uri },
                Ok(Decided::Refuse { reason }) => match reason {
                    RefuseReason::NotFound => refuse(404, "Not Found"),
                    RefuseReason::NotActive => refuse(403, "Forbidden"),
                    RefuseReason::NoRoute => refuse(480, "Temporarily Unavailable"),
                },
                Err(e) => refusal(&e),
            }
        })
    }
}

fn refuse(code: u16, reason: &str) -> InboundRoute {
    InboundRoute::Refuse {
        code,
        reason: reason.to_owned(),
    }
}

/// The SIP answer to a refused call: unknown number 404, stopped or not allowed 403, not
/// reachable now 480.
fn refusal(e: &Error) -> InboundRoute {
    match e {
        Error::Refused { status: 404, .. } => refuse(404, "Not Found"),
        Error::Refused { status: 403, .. } => refuse(403, "Forbidden"),
        Error::Refused { status: 409, .. } => refuse(480, "Temporarily Unavailable"),
        Error::Refused { status: 400, .. } => refuse(400, "Bad Request"),
        Error::Refused { .. } => refuse(480, "Temporarily Unavailable"),
        Error::Internal(err) => {
            tracing::warn!(error = %err, "inbound call not recorded");
            refuse(500, "Server Internal Error")
        }
    }
}
