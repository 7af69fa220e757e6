//! `POST /v1/demo/quick` (PROTOCOL §5): the whole contracting flow for the sandbox demo account.
//!
//! It needs no credential, so it must not be able to hurt anybody: it is off unless the
//! operator turns it on (`demo_enabled`), each client address gets a few runs an hour, and
//! it takes numbers from a pool of its own, which it takes back after [`DEMO_LIFETIME_MS`]:
//! a paying customer's activation never finds the inventory emptied by demos.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

use ami_core::secret;
use ami_core::time::HOUR_MS;
use ami_store::{accounts, mids, numbers};

use crate::auth::CustomerCaller;
use crate::contracting::{ActivateInput, CustomerDataInput, NewContract, NewSimRequest};
use crate::views::ActivatedMid;
use crate::{Error, Result, Services};

/// The demo account. Its key is random and never shown: only the demo flow acts for it.
pub const DEMO_ACCOUNT: &str = "cust_demo";

/// How long a demo's number stays with it before the next demo may take it back.
pub const DEMO_LIFETIME_MS: i64 = HOUR_MS;

/// Client addresses remembered at most; past it, those of earlier hours are forgotten first.
const ADMISSIONS_MAX: usize = 100_000;

#[derive(Debug, Clone)]
pub struct DemoSettings {
    pub enabled: bool,
    /// Runs a client address may start per hour.
    pub per_address_per_hour: u32,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            per_address_per_hour: 5,
        }
    }
}

/// Demo runs per client address in the current hour, in this process.
#[derive(Default)]
pub(crate) struct Admissions(Mutex<HashMap<IpAddr, (i64, u32)>>);

impl Admissions {
    /// Counts a run of `client`; the wait in seconds when it had its share this hour.
    fn admit(&self, client: IpAddr, now: i64, per_hour: u32) -> std::result::Result<(), u64> {
        let hour = now - now.rem_euclid(HOUR_MS);
        // A map of counters cannot be left half-changed by a panic.
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= ADMISSIONS_MAX {
            seen.retain(|_, (h, _)| *h == hour);
        }
        let entry = seen.entry(client).or_insert((hour, 0));
        if entry.0 != hour {
            *entry = (hour, 0);
        }
        if entry.1 >= per_hour {
            return Err(u64::try_from(hour + HOUR_MS - now)
                .unwrap_or(0)
                .div_ceil(1000));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DemoStep {
    pub step: &'static str,
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DemoResult {
    pub ok: bool,
    pub elapsed_ms: f64,
    pub steps: Vec<DemoStep>,
    pub mobile_identity: ActivatedMid,
}

impl Services {
    /// Runs the demo for a client at `client`.
    pub async fn demo_quick(&self, client: IpAddr) -> Result<DemoResult> {
        let demo = &self.settings.demo;
        if !self.settings.sandbox || !self.settings.mock_sign_enabled || !demo.enabled {
            return Err(
                Error::not_found("route").with("message", "the demo is not enabled on this server")
            );
        }
        if let Err(wait) = self
            .demo_admissions
            .admit(client, self.now(), demo.per_address_per_hour)
        {
            return Err(Error::refused(
                429,
                "demo_rate_limited",
                "this address has had its demos for this hour",
            )
            .with("retry_after", wait));
        }
        let started = std::time::Instant::now();
        let caller = self.demo_account().await?;
        self.reclaim_demo_numbers(&caller).await?;
        let created = self
            .create_sim_request(&caller, NewSimRequest::default())
            .await?;
        let request_id = created.sim_request.id;
        let offer_id = created.offer.id;
        self.accept_offer(&caller, &offer_id).await?;
        let customer = self
            .submit_customer_data(
                &caller,
                &request_id,
                CustomerDataInput {
                    legal_name: Some("Demo Agent Company".into()),
                    tax_id: Some("DEMO-0000".into()),
                    billing_email: Some("demo@example.org".into()),
                    address: Some("1 Demo Street".into()),
                    representative_name: Some("Demo Representative".into()),
                    ..Default::default()
                },
            )
            .await?
            .customer;
        let contract = self
            .create_contract(
                &caller,
                NewContract {
                    offer_id: Some(offer_id.clone()),
                    customer_id: Some(customer.id.clone()),
                },
            )
            .await?;
        self.mock_sign(&caller, &contract.id).await?;
        let mid = self
            .activate_from(
                &caller,
                ActivateInput {
                    contract_id: Some(contract.id.clone()),
                },
                numbers::Pool::Demo,
            )
            .await?;
        let steps = vec![
            DemoStep {
                step: "sim_request",
                id: request_id,
            },
            DemoStep {
                step: "offer_accepted",
                id: offer_id,
            },
            DemoStep {
                step: "customer_data",
                id: customer.id,
            },
            DemoStep {
                step: "contract",
                id: contract.id.clone(),
            },
            DemoStep {
                step: "signed",
                id: contract.id,
            },
            DemoStep {
                step: "activated",
                id: mid.mobile_identity_id.clone(),
            },
        ];
        Ok(DemoResult {
            ok: true,
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
            steps,
            mobile_identity: mid,
        })
    }

    /// Releases the demo's mobile identities older than [`DEMO_LIFETIME_MS`] and puts their
    /// numbers straight back in the demo pool: fictional numbers need no cooling period.
    async fn reclaim_demo_numbers(&self, caller: &CustomerCaller) -> Result<()> {
        let cutoff = ami_core::id::new_id_at("mid", self.now() - DEMO_LIFETIME_MS);
        let mut conn = self.store.reader().await?;
        let expired =
            mids::live_before(&mut conn, &self.row_account(DEMO_ACCOUNT), &cutoff, 50).await?;
        drop(conn);
        for id in expired {
            match self.release_mid(caller, &id).await {
                Ok(_) | Err(Error::Refused { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let mut tx = self.store.begin().await?;
        numbers::end_quarantine(&mut tx, numbers::Pool::Demo, self.now()).await?;
        ami_store::commit(tx).await?;
        Ok(())
    }

    async fn demo_account(&self) -> Result<CustomerCaller> {
        let mut conn = self.store.reader().await?;
        if accounts::get(&mut conn, &self.row_account(DEMO_ACCOUNT))
            .await?
            .is_none()
        {
            drop(conn);
            let key = secret::new_customer_key();
            let mut tx = self.store.begin().await?;
            if accounts::get(&mut tx, &self.row_account(DEMO_ACCOUNT))
                .await?
                .is_none()
            {
                accounts::insert(
                    &mut tx,
                    &accounts::NewAccount {
                        id: DEMO_ACCOUNT,
                        name: "sandbox demo",
                        billing_email: None,
                        key_hash: &secret::hash(&key),
                        key_prefix: &secret::display_prefix(&key),
                        now: self.now(),
                    },
                )
                .await?;
                self.audit(
                    &mut tx,
                    &crate::auth::Actor::System,
                    "account_created",
                    crate::audit_log::Subject {
                        account_id: Some(DEMO_ACCOUNT),
                        entity_type: "account",
                        entity_id: DEMO_ACCOUNT,
                        mid: None,
                    },
                    serde_json::json!({"source": "demo"}),
                )
                .await?;
            }
            ami_store::commit(tx).await?;
        }
        // The demo's visitors act as the server's own demo account, which holds only the
        // demo's fictional numbers.
        Ok(CustomerCaller {
            account_id: self.row_account(DEMO_ACCOUNT),
        })
    }
}
