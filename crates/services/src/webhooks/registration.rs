//! The customer's webhooks (PROTOCOL §8): register, list, delete, re-enable.
//!
//! A refused registration stores nothing. The URL is checked by the SSRF guard, name
//! resolution included, before the transaction starts: a slow resolver must never hold
//! the store's write lock.

use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use ami_core::webhook_event::{self, FilterError, WILDCARD, WebhookEvent};
use ami_store::page::PageRequest;
use ami_store::webhooks::{self, Webhook};
use ami_store::{Conn, mids, sealed, webhook_deliveries};

use super::views::{CreatedWebhook, DeletedWebhook, WebhookList, WebhookView};
use super::{
    MAX_PER_SCOPE, Scope, WEBHOOK, check_scope_id, host_of, scope_name, scope_not_found, subject,
};
use crate::auth::CustomerCaller;
use crate::{Error, Result, Services, validate};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterWebhook {
    /// `http(s)://`, at most 2048 characters, no credentials, no fragment; refused when it
    /// names or resolves to a private, loopback, link-local or otherwise non-public address.
    #[schema(value_type = String, required = true)]
    pub url: Option<Value>,
    /// Event names, or `["*"]` for all of them (the default).
    #[schema(value_type = Option<Vec<String>>)]
    pub events: Option<Value>,
}

fn invalid_url(detail: &str) -> Error {
    Error::invalid("url", format!("the URL is refused: {detail}")).with("detail", detail)
}

fn invalid_events(message: &str) -> Error {
    Error::invalid("events", message)
}

/// The event filter: absent means everything.
fn parse_events(raw: Option<Value>) -> Result<Vec<String>> {
    let names: Vec<String> = match raw {
        None | Some(Value::Null) => return Ok(vec![WILDCARD.to_owned()]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(name) => Ok(name),
                _ => Err(invalid_events("events must be a list of event names")),
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(invalid_events("events must be a list of event names")),
    };
    webhook_event::parse_filter(&names).map_err(|e| match e {
        FilterError::Empty => invalid_events("events must name at least one event, or \"*\""),
        FilterError::Malformed => {
            invalid_events("an event name is empty, too long or has control characters")
        }
        FilterError::Unsupported(name) => Error::bad_request(
            "unsupported_event",
            format!("{name} is not an event a webhook can hear"),
        )
        .with("event", name)
        .with("supported", WebhookEvent::supported()),
    })
}

impl Services {
    /// The scope exists in the caller's account (a released MID still has its webhooks
    /// listed and deleted, it only takes no new one).
    async fn owned_scope(
        &self,
        conn: &mut Conn,
        caller: &CustomerCaller,
        scope: Scope<'_>,
    ) -> Result<Option<mids::Mid>> {
        check_scope_id(scope)?;
        match scope {
            Scope::Mid(mid) => mids::get(conn, &caller.account_id, mid)
                .await?
                .map(Some)
                .ok_or_else(|| scope_not_found(scope)),
            Scope::Account => Ok(None),
        }
    }

    /// One webhook of the caller, in exactly this scope.
    pub(crate) async fn owned_webhook(
        &self,
        conn: &mut Conn,
        caller: &CustomerCaller,
        scope: Scope<'_>,
        id: &str,
    ) -> Result<Webhook> {
        self.owned_scope(conn, caller, scope).await?;
        validate::id("wh", WEBHOOK, id)?;
        webhooks::get(conn, &caller.account_id, scope, id)
            .await?
            .ok_or_else(|| Error::not_found(WEBHOOK))
    }

    pub async fn register_webhook(
        &self,
        caller: &CustomerCaller,
        scope: Scope<'_>,
        input: RegisterWebhook,
    ) -> Result<CreatedWebhook> {
        {
            let mut conn = self.store.reader().await?;
            if let Some(mid) = self.owned_scope(&mut conn, caller, scope).await?
                && mid.status == "released"
            {
                return Err(Error::conflict(
                    "mobile_identity_not_active",
                    "the mobile identity is released",
                ));
            }
        }
        let raw_url = match input.url {
            None | Some(Value::Null) => return Err(Error::missing_fields(vec!["url".into()])),
            Some(Value::String(url)) => url,
            Some(_) => return Err(invalid_url("not_a_string")),
        };
        let events = parse_events(input.events)?;
        let url = self
            .settings
            .webhooks
            .guard
            .check_url_resolving(&raw_url)
            .await
            .map_err(|refusal| invalid_url(&refusal.reason()))?;

        let now = self.now();
        let secret = ami_webhooks::generate_secret();
        let id = ami_core::id::new_id_at("wh", now);
        let webhook = Webhook {
            secret: self
                .store
                .secrets()?
                .seal(sealed::WEBHOOK_SECRET, &id, &secret),
            id,
            account_id: caller.account_id.to_string(),
            mid_id: match scope {
                Scope::Mid(mid) => Some(mid.to_owned()),
                Scope::Account => None,
            },
            url: url.as_str().to_owned(),
            events: json!(events).to_string(),
            secret_prefix: ami_core::secret::display_prefix(&secret),
            status: webhooks::ACTIVE.into(),
            disabled_reason: None,
            disabled_at: None,
            consecutive_failures: 0,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.begin().await?;
        // Counting and adding under the scope's row lock: two registrations racing for the
        // tenth place cannot both win.
        if !webhooks::lock_scope(&mut tx, self.store.engine(), &caller.account_id, scope).await? {
            return Err(scope_not_found(scope));
        }
        if webhooks::count(&mut tx, &caller.account_id, scope).await? >= MAX_PER_SCOPE {
            return Err(Error::conflict(
                "webhook_limit_reached",
                format!("at most {MAX_PER_SCOPE} webhooks per {}", scope_name(scope)),
            )
            .with("max", MAX_PER_SCOPE));
        }
        webhooks::insert(&mut tx, &webhook).await?;
        self.audit(
            &mut tx,
            &caller.actor(),
            "webhook_created",
            subject(caller.account_id.as_str(), scope, &webhook.id),
            json!({"scope": scope_name(scope), "host": host_of(&webhook.url), "events": events}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(CreatedWebhook {
            secret_hint: ami_core::secret::hint(&secret),
            secret,
            webhook: WebhookView::from(webhook),
        })
    }

    pub async fn list_webhooks(
        &self,
        caller: &CustomerCaller,
        scope: Scope<'_>,
        page: &PageRequest,
    ) -> Result<WebhookList> {
        let mut conn = self.store.reader().await?;
        self.owned_scope(&mut conn, caller, scope).await?;
        let p = webhooks::list(&mut conn, &caller.account_id, scope, page).await?;
        let items: Vec<WebhookView> = p.items.into_iter().map(WebhookView::from).collect();
        Ok(WebhookList {
            count: items.len(),
            webhooks: items,
            next_cursor: p.next_cursor,
        })
    }

    /// Removes the webhook, its secret, and its deliveries with their attempts.
    pub async fn delete_webhook(
        &self,
        caller: &CustomerCaller,
        scope: Scope<'_>,
        id: &str,
    ) -> Result<DeletedWebhook> {
        let mut tx = self.store.begin().await?;
        let webhook = self.owned_webhook(&mut tx, caller, scope, id).await?;
        if !webhooks::delete(&mut tx, &caller.account_id, scope, id).await? {
            return Err(Error::not_found(WEBHOOK));
        }
        self.audit(
            &mut tx,
            &caller.actor(),
            "webhook_deleted",
            subject(caller.account_id.as_str(), scope, id),
            json!({"scope": scope_name(scope), "host": host_of(&webhook.url)}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(DeletedWebhook {
            id: id.to_owned(),
            deleted: true,
        })
    }

    /// Turns a disabled webhook back on: its failure count starts again from zero and the
    /// deliveries that waited while it was off are due at once. An active one is answered
    /// as it is.
    pub async fn enable_webhook(
        &self,
        caller: &CustomerCaller,
        scope: Scope<'_>,
        id: &str,
    ) -> Result<WebhookView> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let webhook = self.owned_webhook(&mut tx, caller, scope, id).await?;
        if webhook.status == webhooks::ACTIVE {
            return Ok(WebhookView::from(webhook));
        }
        if !webhooks::enable(&mut tx, &caller.account_id, scope, id, now).await? {
            return Err(Error::not_found(WEBHOOK));
        }
        let resumed = webhook_deliveries::unpark(&mut tx, id, now).await?;
        self.audit(
            &mut tx,
            &caller.actor(),
            "webhook_enabled",
            subject(caller.account_id.as_str(), scope, id),
            json!({"disabled_reason": webhook.disabled_reason, "resumed_deliveries": resumed}),
        )
        .await?;
        let enabled = webhooks::get(&mut tx, &caller.account_id, scope, id)
            .await?
            .ok_or_else(|| Error::not_found(WEBHOOK))?;
        ami_store::commit(tx).await?;
        self.webhook_wakeup.notify_one();
        Ok(WebhookView::from(enabled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filters() {
        assert_eq!(parse_events(None).unwrap(), vec!["*"]);
        assert_eq!(
            parse_events(Some(json!(["sms.failed", "sms.inbound"]))).unwrap(),
            vec!["sms.inbound", "sms.failed"]
        );
        for bad in [
            json!("*"),
            json!([1]),
            json!([]),
            json!(["a\r\nb"]),
            json!({}),
        ] {
            assert_eq!(
                parse_events(Some(bad.clone())).unwrap_err().code(),
                "invalid_events",
                "{bad}"
            );
        }
        let e = parse_events(Some(json!(["sms.outbound"]))).unwrap_err();
        assert_eq!(e.code(), "unsupported_event");
        assert_eq!(e.body()["event"], "sms.outbound");
        assert_eq!(e.body()["supported"].as_array().map(Vec::len), Some(13));
    }
}
