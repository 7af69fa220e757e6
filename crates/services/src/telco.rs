//! What the network tells us (PROTOCOL §3.6, §4): SMS arriving for a MID's number and
//! delivery reports of the SMS we sent. The telco HTTP callbacks, the carrier's event stream
//! and the sandbox's inject endpoint all enter through these functions, so one set of rules
//! holds for every path: a number that no live MID holds is not found, a MID that is not
//! active or is covered by a kill-switch refuses inbound traffic (§7), a body is stored for
//! the agent and never audited, and a delivery report never moves a status backwards.

use serde::{Deserialize, Deserializer};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use ami_core::delivery::{self, SmsStatus};
use ami_core::phone::E164;
use ami_core::webhook_event::WebhookEvent;
use ami_store::{AccountId, Conn, messages, mids};

use crate::audit_log::Subject;
use crate::auth::{Actor, CustomerCaller};
use crate::sms::SmsView;
use crate::webhooks::Emission;
use crate::{Error, Result, Services, validate};

/// Most characters (Unicode scalar values) of an inbound SMS body: concatenated messages
/// arrive reassembled, so this is more than one agent send may carry.
pub const MAX_INBOUND_BODY_CHARS: usize = 1600;
/// Most characters of a carrier reference.
pub const MAX_TELCO_REF_CHARS: usize = 128;

/// `POST /v1/_telco/sms/inbound`, and the carrier's `InboundSms` event.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundSms {
    /// The sender, E.164 (spaces, hyphens, dots and parentheses are removed first).
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub from: Option<String>,
    /// The phone number of a mobile identity, E.164.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub to: Option<String>,
    /// 1 to 1600 characters, no NUL.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub body: Option<String>,
    /// The carrier's reference. A repeated callback (same reference, sender and body) gets
    /// the first record back instead of a second message.
    pub telco_ref: Option<String>,
}

/// `POST /v1/mobile-identities/{id}/sandbox/inbound-sms`: an SMS "from the network" to one of
/// the caller's MIDs, on sandbox servers.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxInboundSms {
    /// The sender, E.164.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub from: Option<String>,
    /// 1 to 1600 characters, no NUL.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub body: Option<String>,
}

/// `POST /v1/_telco/sms/dlr`, as a JSON body or as query parameters.
#[derive(Debug, Default, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryReport {
    /// The `id` of the SMS (`msg_…`), as handed to the carrier.
    pub msg_id: Option<String>,
    /// `delivered`, `1`, `ok` → delivered; `failed`, `rejected`, `expired`, `2`, `4`, `8`,
    /// `16` → failed; `sent` → sent. A JSON integer is taken as its decimal spelling.
    #[serde(default, deserialize_with = "string_or_integer")]
    #[schema(value_type = Option<String>)]
    #[param(value_type = Option<String>)]
    pub status: Option<String>,
    /// The carrier's own reference.
    pub telco_ref: Option<String>,
}

impl DeliveryReport {
    /// This report, its missing fields taken from `other` (a JSON body over its query string).
    pub fn or(self, other: DeliveryReport) -> DeliveryReport {
        DeliveryReport {
            msg_id: self.msg_id.or(other.msg_id),
            status: self.status.or(other.status),
            telco_ref: self.telco_ref.or(other.telco_ref),
        }
    }
}

/// The spellings `parse_dlr_status` knows, for the `unknown_status` refusal.
const DLR_STATUSES: [&str; 11] = [
    "delivered",
    "1",
    "ok",
    "failed",
    "rejected",
    "expired",
    "2",
    "4",
    "8",
    "16",
    "sent",
];

fn string_or_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or an integer")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<S: Deserializer<'de>>(self, d: S) -> Result<Self::Value, S::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_any(V)
}

/// Where an inbound SMS is going.
enum Destination<'a> {
    /// The number the network dialled: whichever live MID holds it.
    Number(&'a E164),
    /// One MID of one account (the sandbox inject, after its tenancy check).
    Mid {
        account_id: &'a AccountId,
        mid_id: &'a str,
    },
}

/// A validated inbound SMS, not yet placed.
struct Arriving {
    from: E164,
    body: String,
    telco_ref: Option<String>,
}

pub(crate) fn missing(fields: &[(&str, bool)]) -> Result<()> {
    let absent: Vec<String> = fields
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| (*name).to_owned())
        .collect();
    if absent.is_empty() {
        Ok(())
    } else {
        Err(Error::missing_fields(absent))
    }
}

pub(crate) fn sender(raw: &str) -> Result<E164> {
    E164::parse(raw).map_err(|_| Error::invalid("from", "from must be an E.164 number"))
}

/// 1 to 1600 characters and no NUL. Other control characters (line breaks, tabs, whatever a
/// handset sent) are the sender's text and are kept as they are.
fn inbound_body(body: String) -> Result<String> {
    if body.is_empty() {
        return Err(Error::bad_request("empty_body", "body must not be empty"));
    }
    let got = body.chars().count();
    if got > MAX_INBOUND_BODY_CHARS {
        return Err(Error::bad_request(
            "body_too_long",
            format!("body has {got} characters, at most {MAX_INBOUND_BODY_CHARS}"),
        )
        .with("max", MAX_INBOUND_BODY_CHARS)
        .with("got", got));
    }
    if body.contains('\0') {
        return Err(Error::invalid("body", "body contains a NUL character"));
    }
    Ok(body)
}

pub(crate) fn telco_ref(raw: Option<&str>) -> Result<Option<String>> {
    validate::optional_text("telco_ref", raw, MAX_TELCO_REF_CHARS)
}

/// The 404 a sandbox route answers on a server that is not a sandbox: the route's absence.
pub(crate) fn no_such_route() -> Error {
    Error::refused(404, "unknown_route", "no such route")
}

impl Services {
    /// An SMS from the network to a MID's number (telco callback, carrier event).
    pub async fn receive_sms(&self, actor: &Actor, input: InboundSms) -> Result<SmsView> {
        missing(&[
            ("from", input.from.is_some()),
            ("to", input.to.is_some()),
            ("body", input.body.is_some()),
        ])?;
        let from = sender(input.from.as_deref().unwrap_or_default())?;
        let to = E164::parse(input.to.as_deref().unwrap_or_default())
            .map_err(|_| Error::invalid("to", "to must be an E.164 number"))?;
        let arriving = Arriving {
            from,
            body: inbound_body(input.body.unwrap_or_default())?,
            telco_ref: telco_ref(input.telco_ref.as_deref())?,
        };
        self.accept_inbound_sms(actor, Destination::Number(&to), arriving)
            .await
    }

    /// The sandbox's inbound SMS for one of the caller's MIDs: the same path as the network's.
    pub async fn sandbox_inbound_sms(
        &self,
        caller: &CustomerCaller,
        mid_id: &str,
        input: SandboxInboundSms,
    ) -> Result<SmsView> {
        if !self.settings.sandbox {
            return Err(no_such_route());
        }
        // Tenancy first: another account's MID answers exactly like a missing one, whatever
        // the body says.
        validate::id("mid", "mobile_identity", mid_id)?;
        {
            let mut conn = self.store.reader().await?;
            mids::get(&mut conn, &caller.account_id, mid_id)
                .await?
                .ok_or_else(|| Error::not_found("mobile_identity"))?;
        }
        missing(&[
            ("from", input.from.is_some()),
            ("body", input.body.is_some()),
        ])?;
        let arriving = Arriving {
            from: sender(input.from.as_deref().unwrap_or_default())?,
            body: inbound_body(input.body.unwrap_or_default())?,
            telco_ref: None,
        };
        let destination = Destination::Mid {
            account_id: &caller.account_id,
            mid_id,
        };
        self.accept_inbound_sms(&caller.actor(), destination, arriving)
            .await
    }

    /// One transaction: the MID is found and must be active and not stopped by a kill-switch;
    /// the message and its `sms_inbound` event are written together.
    async fn accept_inbound_sms(
        &self,
        actor: &Actor,
        destination: Destination<'_>,
        sms: Arriving,
    ) -> Result<SmsView> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let mid = match destination {
            Destination::Number(to) => {
                ami_store::system::mids::by_phone_number(self.system(), &mut tx, to.as_str())
                    .await?
                    .ok_or_else(|| {
                        Error::refused(
                            404,
                            "destination_not_found",
                            "no mobile identity has this number",
                        )
                    })?
            }
            Destination::Mid { account_id, mid_id } => mids::get(&mut tx, account_id, mid_id)
                .await?
                .ok_or_else(|| Error::not_found("mobile_identity"))?,
        };
        if let Some(earlier) = self.repeated_callback(&mut tx, &mid.id, &sms).await? {
            return Ok(SmsView::from(earlier));
        }
        if mid.status != "active" {
            return Err(Error::conflict(
                "mobile_identity_not_active",
                format!("the mobile identity is {}", mid.status),
            ));
        }
        let subject = crate::mids::mid_subject(&mid.account_id, &mid.id);
        if let Err(refusal) = self
            .check_kill_switch(&mut tx, &self.row_account(&mid.account_id), &mid.id)
            .await
        {
            self.audit(
                &mut tx,
                actor,
                "sms_blocked",
                subject,
                json!({"direction": "inbound", "reason": "kill_switch", "from": sms.from.masked()}),
            )
            .await?;
            ami_store::commit(tx).await?;
            return Err(refusal);
        }
        let seg = ami_core::sms::segment(&sms.body);
        let message = messages::Message {
            id: ami_core::id::new_id_at("msg", now),
            account_id: mid.account_id.clone(),
            mid_id: mid.id.clone(),
            direction: "inbound".into(),
            from_number: sms.from.as_str().to_owned(),
            to_number: mid.phone_number.clone(),
            body: sms.body,
            segments: i64::from(seg.segments),
            encoding: seg.encoding.as_str().into(),
            cost: 0,
            status: SmsStatus::Received.as_str().into(),
            created_at: now,
            handed_at: None,
            sent_at: None,
            delivered_at: None,
            telco_ref: sms.telco_ref,
            retry_count: 0,
            error: None,
            updated_at: now,
        };
        messages::insert(&mut tx, &message).await?;
        self.audit(
            &mut tx,
            actor,
            "sms_inbound",
            Subject {
                entity_type: "sms",
                entity_id: &message.id,
                ..subject
            },
            json!({"from": sms.from.masked(), "segments": seg.segments,
                   "encoding": seg.encoding.as_str(), "telco_ref": message.telco_ref}),
        )
        .await?;
        self.emit_one(&mut tx, Emission::sms(WebhookEvent::SmsInbound, &message))
            .await?;
        ami_store::commit(tx).await?;
        Ok(SmsView::from(message))
    }

    /// The record a carrier already delivered under this reference, when the callback is
    /// the same message again (same sender and body), not a reference the carrier reused.
    async fn repeated_callback(
        &self,
        conn: &mut Conn,
        mid_id: &str,
        sms: &Arriving,
    ) -> Result<Option<messages::Message>> {
        let Some(reference) = sms.telco_ref.as_deref() else {
            return Ok(None);
        };
        Ok(ami_store::system::messages::inbound_by_telco_ref(
            self.system(),
            conn,
            mid_id,
            reference,
        )
        .await?
        .filter(|m| m.from_number == sms.from.as_str() && m.body == sms.body))
    }

    /// A delivery report from the telco callback. Malformed and unknown ids are the same 404;
    /// a late or repeated report is answered with the unchanged record (and audited as
    /// ignored by `apply_sms_status`).
    pub async fn delivery_report(&self, report: DeliveryReport) -> Result<SmsView> {
        let msg_id = report
            .msg_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::bad_request("missing_msg_id", "msg_id is required"))?;
        let spelling = report
            .status
            .as_deref()
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let status = delivery::parse_dlr_status(&spelling).ok_or_else(|| {
            Error::bad_request("unknown_status", "status is not a known delivery status")
                .with("accepted", DLR_STATUSES.to_vec())
        })?;
        let reference = telco_ref(report.telco_ref.as_deref())?;
        validate::id("msg", "sms", msg_id)?;
        let error = (status == SmsStatus::Failed).then(|| format!("carrier reported {spelling}"));
        self.apply_sms_status(
            &Actor::Telco,
            msg_id,
            status,
            reference.as_deref(),
            error.as_deref(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_spelling_parses() {
        for s in DLR_STATUSES {
            assert!(delivery::parse_dlr_status(s).is_some(), "{s}");
        }
    }

    #[test]
    fn status_may_be_a_string_or_an_integer() {
        let r: DeliveryReport = serde_json::from_str(r#"{"msg_id":"m","status":8}"#).unwrap();
        assert_eq!(r.status.as_deref(), Some("8"));
        let r: DeliveryReport = serde_json::from_str(r#"{"status":"ok"}"#).unwrap();
        assert_eq!(r.status.as_deref(), Some("ok"));
        let r: DeliveryReport = serde_json::from_str(r#"{"status":null}"#).unwrap();
        assert_eq!(r.status, None);
        assert!(serde_json::from_str::<DeliveryReport>(r#"{"status":1.5}"#).is_err());
        assert!(serde_json::from_str::<DeliveryReport>(r#"{"status":[1]}"#).is_err());
    }

    #[test]
    fn a_body_wins_over_the_query_field_by_field() {
        let body = DeliveryReport {
            msg_id: Some("a".into()),
            ..Default::default()
        };
        let query = DeliveryReport {
            msg_id: Some("b".into()),
            status: Some("ok".into()),
            telco_ref: None,
        };
        let r = body.or(query);
        assert_eq!(
            (r.msg_id.as_deref(), r.status.as_deref()),
            (Some("a"), Some("ok"))
        );
    }

    #[test]
    fn inbound_bodies() {
        assert!(inbound_body("x".repeat(1600)).is_ok());
        assert!(inbound_body("line\nbreak\ttab".into()).is_ok());
        let e = inbound_body("x".repeat(1601)).unwrap_err();
        assert_eq!(
            (e.code(), e.body()["max"].as_u64()),
            ("body_too_long", Some(1600))
        );
        assert_eq!(
            inbound_body(String::new()).unwrap_err().code(),
            "empty_body"
        );
        assert_eq!(
            inbound_body("a\0b".into()).unwrap_err().code(),
            "invalid_body"
        );
    }
}
