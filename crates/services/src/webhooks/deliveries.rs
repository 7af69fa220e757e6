//! What the customer sees of its webhooks' deliveries, and what it can ask of them: the
//! deliveries and their attempts, a delivery sent again, a test ping.

use serde_json::json;

use ami_core::webhook_event::TEST_EVENT;
use ami_store::page::PageRequest;
use ami_store::webhook_deliveries::{self, NewDelivery};
use ami_store::webhooks::{self, Webhook};

use super::payload::{self, About};
use super::views::{AttemptView, DeliveryDetail, DeliveryList, DeliveryView};
use super::{Scope, subject};
use crate::auth::CustomerCaller;
use crate::{Error, Result, Services, validate};

/// Most attempts shown with a delivery.
const ATTEMPTS_SHOWN: i64 = 100;

const DELIVERY: &str = "delivery";

fn not_active(w: &Webhook) -> Error {
    Error::conflict(
        "webhook_not_active",
        "the webhook is disabled; enable it first",
    )
    .with("status", w.status.clone())
}

impl Services {
    pub async fn list_deliveries(
        &self,
        caller: &CustomerCaller,
        scope: Scope<'_>,
        webhook_id: &str,
        status: Option<&str>,
        page: &PageRequest,
    ) -> Result<DeliveryList> {
        let mut conn = self.store.reader().await?;
        self.owned_webhook(&mut conn, caller, scope, webhook_id)
            .await?;
        if let Some(s) = status
            && ![
                webhook_deliveries::PENDING,
                webhook_deliveries::DELIVERED,
                webhook_deliveries::FAILED,
            ]
            .contains(&s)
        {
            return Err(Error::invalid(
                "status",
                "status must be pending, delivered or failed",
            ));
        }
        let p = webhook_deliveries::list(&mut conn, &caller.account_id, webhook_id, status, page)
            .await?;
        let items: Vec<DeliveryView> = p.items.into_iter().map(DeliveryView::from).collect();
        Ok(DeliveryList {
            count: items.len(),
            deliveries: items,
            next_cursor: p.next_cursor,
        })
    }

    /// One delivery with its payload and its attempts.
    pub async fn get_delivery(
        &self,
        caller: &CustomerCaller,
        scope: Scope<'_>,
        webhook_id: &str,
        id: &str,
    ) -> Result<DeliveryDetail> {
        let mut conn = self.store.reader().await?;
        self.owned_webhook(&mut conn, caller, scope, webhook_id)
            .await?;
        validate::id("dlv", DELIVERY, id)?;
        let delivery = webhook_deliveries::get(&mut conn, &caller.account_id, webhook_id, id)
            .await?
            .ok_or_else(|| Error::not_found(DELIVERY))?;
        let attempts =
            webhook_deliveries::attempts(&mut conn, &caller.account_id, id, ATTEMPTS_SHOWN).await?;
        Ok(DeliveryDetail {
            payload: serde_json::from_str(&delivery.payload).unwrap_or_default(),
            delivery: DeliveryView::from(delivery),
            attempts: attempts.into_iter().map(AttemptView::from).collect(),
        })
    }

    /// Sends a finished delivery (delivered or failed) again, as a new delivery with the
    /// same event id and the same bytes, so a receiver that already has it can tell.
    pub async fn redeliver(
        &self,
        caller: &CustomerCaller,
        scope: Scope<'_>,
        webhook_id: &str,
        id: &str,
    ) -> Result<DeliveryView> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let webhook = self
            .owned_webhook(&mut tx, caller, scope, webhook_id)
            .await?;
        validate::id("dlv", DELIVERY, id)?;
        let original = webhook_deliveries::get(&mut tx, &caller.account_id, webhook_id, id)
            .await?
            .ok_or_else(|| Error::not_found(DELIVERY))?;
        if original.status == webhook_deliveries::PENDING {
            return Err(Error::conflict(
                "delivery_not_finished",
                "the delivery is still being attempted",
            ));
        }
        if webhook.status != webhooks::ACTIVE {
            return Err(not_active(&webhook));
        }
        let again = NewDelivery {
            id: ami_core::id::new_id_at("dlv", now),
            account_id: caller.account_id.as_str(),
            webhook_id,
            event_id: &original.event_id,
            event: &original.event,
            mid_id: original.mid_id.as_deref(),
            sequence: original.sequence,
            payload: &original.payload,
            redelivery_of: Some(&original.id),
            now,
        };
        webhook_deliveries::insert_many(&mut tx, std::slice::from_ref(&again)).await?;
        self.audit(
            &mut tx,
            &caller.actor(),
            "webhook_redelivery_requested",
            subject(caller.account_id.as_str(), scope, webhook_id),
            json!({"delivery_id": again.id, "redelivery_of": original.id, "event": original.event,
                   "event_id": original.event_id}),
        )
        .await?;
        let created = webhook_deliveries::get(&mut tx, &caller.account_id, webhook_id, &again.id)
            .await?
            .ok_or_else(|| Error::not_found(DELIVERY))?;
        ami_store::commit(tx).await?;
        self.webhook_wakeup.notify_one();
        Ok(DeliveryView::from(created))
    }

    /// A `webhook.test` delivery, whatever the webhook's filter, signed and sent like any
    /// other. Its `sequence` is 0: it is no event of the MID.
    pub async fn ping_webhook(
        &self,
        caller: &CustomerCaller,
        scope: Scope<'_>,
        webhook_id: &str,
    ) -> Result<DeliveryView> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let webhook = self
            .owned_webhook(&mut tx, caller, scope, webhook_id)
            .await?;
        if webhook.status != webhooks::ACTIVE {
            return Err(not_active(&webhook));
        }
        let about = match scope {
            Scope::Mid(mid) => About::Mid(mid),
            Scope::Account => About::Account(caller.account_id.as_str()),
        };
        let event_id = ami_core::id::new_id_at("evt", now);
        let body = payload::render(
            &event_id,
            TEST_EVENT,
            now,
            about,
            0,
            &json!({"webhook_id": webhook_id, "message": "a test delivery asked for by the customer"}),
        );
        let ping = NewDelivery {
            id: ami_core::id::new_id_at("dlv", now),
            account_id: caller.account_id.as_str(),
            webhook_id,
            event_id: &event_id,
            event: TEST_EVENT,
            mid_id: webhook.mid_id.as_deref(),
            sequence: 0,
            payload: &body,
            redelivery_of: None,
            now,
        };
        webhook_deliveries::insert_many(&mut tx, std::slice::from_ref(&ping)).await?;
        self.audit(
            &mut tx,
            &caller.actor(),
            "webhook_test_requested",
            subject(caller.account_id.as_str(), scope, webhook_id),
            json!({"delivery_id": ping.id, "event_id": event_id}),
        )
        .await?;
        let created = webhook_deliveries::get(&mut tx, &caller.account_id, webhook_id, &ping.id)
            .await?
            .ok_or_else(|| Error::not_found(DELIVERY))?;
        ami_store::commit(tx).await?;
        self.webhook_wakeup.notify_one();
        Ok(DeliveryView::from(created))
    }
}
