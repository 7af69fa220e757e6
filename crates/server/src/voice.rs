//! Inbound SIP calls decided by the services: the number's MID, its state and its
//! forwarding URI, refusals turned into SIP final responses.

use ami_services::auth::Actor;
use ami_services::inbound_calls::InboundCall;
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
            let input = InboundCall {
                from: Some(from),
                to: Some(to),
                telco_ref: Some(telco_ref),
            };
            match self.services.receive_call(&Actor::Telco, input).await {
                Ok(route) => InboundRoute::Bridge {
                    call_id: route.call_id,
                    sip_uri: route.forward_sip_uri,
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
