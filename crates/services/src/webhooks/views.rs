//! What the webhook routes answer. A secret is shown once, at registration; afterwards only
//! its prefix.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use ami_store::webhook_deliveries::{self, Attempt, Delivery};
use ami_store::webhooks::Webhook;

fn ts(ms: i64) -> String {
    ami_core::time::rfc3339(ms)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    /// The MID it hears; null for an account-scoped webhook, which hears every MID.
    pub mid: Option<String>,
    pub account_id: String,
    /// The URL as normalised and accepted by the SSRF guard.
    pub url: String,
    /// Event names, or `["*"]`.
    pub events: Vec<String>,
    /// `active` or `disabled`.
    pub status: String,
    /// While disabled: `gone` (the receiver answered 410) or `consecutive_failures`.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    /// Deliveries failed in a row; at 10 the webhook is disabled.
    pub consecutive_failures: i64,
    /// The beginning of the secret, to tell secrets apart.
    pub secret_prefix: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        WebhookView {
            events: serde_json::from_str(&w.events).unwrap_or_default(),
            id: w.id,
            mid: w.mid_id,
            account_id: w.account_id,
            url: w.url,
            status: w.status,
            disabled_reason: w.disabled_reason,
            disabled_at: w.disabled_at.map(ts),
            consecutive_failures: w.consecutive_failures,
            secret_prefix: w.secret_prefix,
            created_at: ts(w.created_at),
            updated_at: ts(w.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` + base64 of 32 random bytes. Shown once: store it now. It signs both
    /// signature schemes of every delivery.
    pub secret: String,
    /// Prefix and last four characters of the secret.
    pub secret_hint: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedWebhook {
    pub id: String,
    pub deleted: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub webhook_id: String,
    /// The event name, e.g. `sms.inbound`, or `webhook.test` for a ping.
    pub event: String,
    /// The payload's `id` and the `webhook-id` header: the same on every attempt and every
    /// redelivery, so a receiver can drop duplicates.
    pub event_id: String,
    pub mid: Option<String>,
    pub sequence: i64,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempt_count: i64,
    /// When the next attempt is due; null when finished, or while the webhook is disabled.
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    /// Why the last attempt failed: `timeout`, `connect`, `redirect`, `request`, or
    /// `refused: <guard reason>`.
    pub last_error: Option<String>,
    /// The delivery this one sends again.
    pub redelivery_of: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            next_attempt_at: (d.status == webhook_deliveries::PENDING)
                .then_some(d.due_at)
                .flatten()
                .map(ts),
            id: d.id,
            webhook_id: d.webhook_id,
            event: d.event,
            event_id: d.event_id,
            mid: d.mid_id,
            sequence: d.sequence,
            status: d.status,
            attempt_count: d.attempts,
            last_attempt_at: d.last_attempt_at.map(ts),
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            redelivery_of: d.redelivery_of,
            created_at: ts(d.created_at),
            delivered_at: d.delivered_at.map(ts),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1 for the first attempt.
    pub number: i64,
    pub attempted_at: String,
    /// The receiver's HTTP status; null when it never answered.
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    /// `refused`, `connect`, `timeout`, `redirect` or `request`; null when answered.
    pub error_kind: Option<String>,
    pub error: Option<String>,
    /// At most the first 1 KiB of the response body, escaped to printable ASCII.
    pub response_excerpt: String,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        AttemptView {
            number: a.number,
            attempted_at: ts(a.attempted_at),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error_kind: a.error_kind,
            error: a.error,
            response_excerpt: a.response_excerpt,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The exact body every attempt sends.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// The latest 100 attempts, first to last.
    pub attempts: Vec<AttemptView>,
}
