//! What the network reports (delivery reports, inbound SMS, call states), applied so that
//! nothing the network was told we have is ever lost: an event is acknowledged to the
//! network only once it is committed (the caller holds each event's acknowledgement), and
//! one that cannot be applied even alone is parked, with its error, for the operator.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use ami_carrier::CarrierEvent;
use ami_core::delivery::{CallStatus, SmsStatus};
use ami_store::carrier_events;

use crate::audit_log::Subject;
use crate::auth::{Actor, AdminCaller};
use crate::sms::SmsReport;
use crate::{Error, Result, Services};

/// Parked events listed at most at once.
const LIST_MAX: i64 = 200;

#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedEventView {
    pub id: String,
    /// `sms_status`, `sms_receipt`, `sms_inbound`, `call_status` or `call_inbound`.
    pub kind: String,
    /// The message or call the event names, the carrier's reference a receipt names, or the
    /// receiving number of an inbound event.
    pub subject: String,
    /// Why it could not be applied.
    pub error: String,
    pub parked_at: String,
    pub retried_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedEventList {
    pub events: Vec<ParkedEventView>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

impl Services {
    /// Applies events from the carrier's stream; one answer per event, in their order. `Ok`
    /// means committed (a refusal, such as a report for a message we do not know, is an
    /// answer too). The delivery reports among them go in one transaction; should it fail,
    /// each is tried alone, so one bad report cannot hold back the others.
    pub async fn apply_carrier_events(&self, events: &[CarrierEvent]) -> Vec<Result<()>> {
        let receipt_refs: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                CarrierEvent::Receipt { telco_ref, .. } => Some(telco_ref.as_str()),
                _ => None,
            })
            .collect();
        // Receipts whose reference is not known yet are applied one by one, below.
        let known = self
            .receipt_messages(&receipt_refs)
            .await
            .unwrap_or_default();
        let reports: Vec<(usize, SmsReport)> = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                CarrierEvent::Receipt {
                    telco_ref,
                    status,
                    error,
                } => known.get(telco_ref).map(|msg_id| {
                    (
                        i,
                        SmsReport {
                            msg_id: msg_id.clone(),
                            status: *status,
                            telco_ref: Some(telco_ref.clone()),
                            error: error.clone(),
                        },
                    )
                }),
                CarrierEvent::Sms {
                    msg_id,
                    telco_ref,
                    status,
                    error,
                } => Some((
                    i,
                    SmsReport {
                        msg_id: msg_id.clone(),
                        status: *status,
                        telco_ref: Some(telco_ref.clone()),
                        error: error.clone(),
                    },
                )),
                _ => None,
            })
            .collect();
        let mut answers: Vec<Option<Result<()>>> = events.iter().map(|_| None).collect();
        if reports.len() > 1 {
            let all: Vec<SmsReport> = reports.iter().map(|(_, r)| r.clone()).collect();
            if self.apply_sms_statuses(&Actor::Telco, &all).await.is_ok() {
                for (i, _) in &reports {
                    answers[*i] = Some(Ok(()));
                }
            }
        }
        for (i, event) in events.iter().enumerate() {
            if answers[i].is_none() {
                answers[i] = Some(self.apply_carrier_event(event.clone()).await);
            }
        }
        answers.into_iter().map(|a| a.unwrap_or(Ok(()))).collect()
    }

    /// Keeps an event that could not be applied, with its error, for the operator.
    pub async fn park_carrier_event(&self, event: &CarrierEvent, error: &Error) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let id = carrier_events::park(
            tx.db(),
            event.kind(),
            &encode(event).to_string(),
            &error.to_string(),
            self.now(),
        )
        .await?;
        tx.commit().await?;
        tracing::error!(parked = %id, kind = event.kind(), error = %error, "carrier event parked: it could not be applied");
        Ok(())
    }

    /// The events parked because they could not be applied, oldest first.
    pub async fn list_parked_carrier_events(
        &self,
        _: &AdminCaller,
        after: Option<&str>,
        limit: i64,
    ) -> Result<ParkedEventList> {
        let limit = limit.clamp(1, LIST_MAX);
        let mut conn = self.store.reader().await?;
        let parked = carrier_events::open(&mut conn, after, limit + 1).await?;
        drop(conn);
        self.audit_admin_read("carrier_events").await?;
        let more = parked.len() as i64 > limit;
        let events: Vec<ParkedEventView> = parked
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(view)
            .collect();
        Ok(ParkedEventList {
            count: events.len(),
            next_cursor: more.then(|| events.last().map(|e| e.id.clone())).flatten(),
            events,
        })
    }

    /// Applies a parked event again, once its cause is mended: resolved, it leaves the list;
    /// refused again, it stays with the new error.
    pub async fn retry_parked_carrier_event(
        &self,
        _: &AdminCaller,
        id: &str,
    ) -> Result<ParkedEventView> {
        crate::validate::id("cev", "carrier_event", id)?;
        let mut conn = self.store.reader().await?;
        let parked = carrier_events::get_open(&mut conn, id)
            .await?
            .ok_or_else(|| Error::not_found("carrier_event"))?;
        drop(conn);
        let event = decode(&parked.payload).ok_or_else(|| {
            Error::Internal(ami_store::StoreError::Corrupt(
                "a parked carrier event does not decode".into(),
            ))
        })?;
        let outcome = self.apply_carrier_event(event).await;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let resolved = match &outcome {
            Ok(()) => carrier_events::resolve(&mut tx, id, now).await?,
            Err(e) => {
                carrier_events::retry_failed(&mut tx, id, &e.to_string(), now).await?;
                false
            }
        };
        self.audit(
            &mut tx,
            &Actor::Admin,
            "carrier_event_retried",
            Subject {
                account_id: None,
                entity_type: "carrier_event",
                entity_id: id,
                mid: None,
            },
            json!({"kind": parked.kind, "resolved": resolved}),
        )
        .await?;
        ami_store::commit(tx).await?;
        let mut conn = self.store.reader().await?;
        let after = carrier_events::get(&mut conn, id)
            .await?
            .ok_or_else(|| Error::not_found("carrier_event"))?;
        Ok(view(after))
    }

    /// Applies one event from the carrier's stream. A refusal (a report for a message we do
    /// not know, an inbound message for a number nobody holds or a MID that is stopped) is
    /// the network's answer, as the telco callback would give it: the event is settled.
    pub async fn apply_carrier_event(&self, event: CarrierEvent) -> Result<()> {
        let kind = event.kind();
        let applied = match event {
            CarrierEvent::Sms {
                msg_id,
                telco_ref,
                status,
                error,
            } => self
                .apply_sms_status(
                    &Actor::Telco,
                    &msg_id,
                    status,
                    Some(&telco_ref),
                    error.as_deref(),
                )
                .await
                .map(drop),
            CarrierEvent::Receipt {
                telco_ref,
                status,
                error,
            } => {
                self.apply_receipt(&telco_ref, status, error.as_deref())
                    .await
            }
            CarrierEvent::InboundSms {
                from,
                to,
                body,
                telco_ref,
            } => {
                let sms = crate::telco::InboundSms {
                    from: Some(from),
                    to: Some(to),
                    body: Some(body),
                    telco_ref: Some(telco_ref),
                };
                self.receive_sms(&Actor::Telco, sms).await.map(drop)
            }
            CarrierEvent::Call {
                call_id,
                telco_ref,
                status,
                hangup_cause,
            } => self
                .apply_call_status(
                    &Actor::Telco,
                    &call_id,
                    status,
                    Some(&telco_ref),
                    hangup_cause.as_deref(),
                )
                .await
                .map(drop),
            CarrierEvent::InboundCall {
                from,
                to,
                telco_ref,
            } => {
                let call = crate::inbound_calls::InboundCall {
                    from: Some(from),
                    to: Some(to),
                    telco_ref: Some(telco_ref),
                };
                self.receive_call(&Actor::Telco, call).await.map(drop)
            }
        };
        match applied {
            Err(Error::Refused { code, .. }) => {
                tracing::info!(code = %code, kind, "carrier event refused");
                Ok(())
            }
            other => other,
        }
    }
}

fn view(p: carrier_events::Parked) -> ParkedEventView {
    let subject = decode(&p.payload)
        .map(|e| match e {
            CarrierEvent::Sms { msg_id, .. } => msg_id,
            CarrierEvent::Call { call_id, .. } => call_id,
            CarrierEvent::Receipt { telco_ref, .. } => telco_ref,
            CarrierEvent::InboundSms { to, .. } | CarrierEvent::InboundCall { to, .. } => to,
        })
        .unwrap_or_default();
    ParkedEventView {
        id: p.id,
        kind: p.kind,
        subject,
        error: p.error,
        parked_at: ami_core::time::rfc3339(p.parked_at),
        retried_at: p.retried_at.map(ami_core::time::rfc3339),
    }
}

/// The event as stored while parked.
fn encode(event: &CarrierEvent) -> Value {
    match event {
        CarrierEvent::Sms {
            msg_id,
            telco_ref,
            status,
            error,
        } => json!({"kind": "sms_status", "msg_id": msg_id, "telco_ref": telco_ref,
                    "status": status.as_str(), "error": error}),
        CarrierEvent::Receipt {
            telco_ref,
            status,
            error,
        } => json!({"kind": "sms_receipt", "telco_ref": telco_ref,
                    "status": status.as_str(), "error": error}),
        CarrierEvent::InboundSms {
            from,
            to,
            body,
            telco_ref,
        } => json!({"kind": "sms_inbound", "from": from, "to": to, "body": body,
                    "telco_ref": telco_ref}),
        CarrierEvent::Call {
            call_id,
            telco_ref,
            status,
            hangup_cause,
        } => json!({"kind": "call_status", "call_id": call_id, "telco_ref": telco_ref,
                    "status": status.as_str(), "hangup_cause": hangup_cause}),
        CarrierEvent::InboundCall {
            from,
            to,
            telco_ref,
        } => json!({"kind": "call_inbound", "from": from, "to": to, "telco_ref": telco_ref}),
    }
}

fn decode(payload: &str) -> Option<CarrierEvent> {
    let v: Value = serde_json::from_str(payload).ok()?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Some(match v.get("kind")?.as_str()? {
        "sms_status" => CarrierEvent::Sms {
            msg_id: text("msg_id")?,
            telco_ref: text("telco_ref")?,
            status: SmsStatus::parse(&text("status")?)?,
            error: text("error"),
        },
        "sms_receipt" => CarrierEvent::Receipt {
            telco_ref: text("telco_ref")?,
            status: SmsStatus::parse(&text("status")?)?,
            error: text("error"),
        },
        "sms_inbound" => CarrierEvent::InboundSms {
            from: text("from")?,
            to: text("to")?,
            body: text("body")?,
            telco_ref: text("telco_ref")?,
        },
        "call_status" => CarrierEvent::Call {
            call_id: text("call_id")?,
            telco_ref: text("telco_ref")?,
            status: CallStatus::parse(&text("status")?)?,
            hangup_cause: text("hangup_cause"),
        },
        "call_inbound" => CarrierEvent::InboundCall {
            from: text("from")?,
            to: text("to")?,
            telco_ref: text("telco_ref")?,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_event_survives_parking() {
        let events = [
            CarrierEvent::Sms {
                msg_id: "msg_1".into(),
                telco_ref: "r".into(),
                status: SmsStatus::Failed,
                error: Some("x".into()),
            },
            CarrierEvent::Receipt {
                telco_ref: "0a1b".into(),
                status: SmsStatus::Delivered,
                error: None,
            },
            CarrierEvent::InboundSms {
                from: "+34600000001".into(),
                to: "+34600000002".into(),
                body: "hola \"ñ\"".into(),
                telco_ref: "r2".into(),
            },
            CarrierEvent::Call {
                call_id: "call_1".into(),
                telco_ref: "r3".into(),
                status: CallStatus::InProgress,
                hangup_cause: None,
            },
            CarrierEvent::InboundCall {
                from: "+34600000001".into(),
                to: "+34600000002".into(),
                telco_ref: "r4".into(),
            },
        ];
        for e in events {
            assert_eq!(decode(&encode(&e).to_string()), Some(e));
        }
        assert_eq!(decode("{\"kind\":\"other\"}"), None);
    }
}
