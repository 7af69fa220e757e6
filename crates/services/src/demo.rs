//! `POST /v1/demo/quick` (PROTOCOL §5): the whole contracting flow for the sandbox demo account.

use serde::Serialize;
use utoipa::ToSchema;

use ami_core::secret;
use ami_store::accounts;

use crate::auth::CustomerCaller;
use crate::contracting::{ActivateInput, CustomerDataInput, NewContract, NewSimRequest};
use crate::views::ActivatedMid;
use crate::{Error, Result, Services};

/// The demo account. Its key is random and never shown: only the demo flow acts for it.
pub const DEMO_ACCOUNT: &str = "cust_demo";

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
    pub async fn demo_quick(&self) -> Result<DemoResult> {
        if !self.settings.sandbox || !self.settings.mock_sign_enabled {
            return Err(Error::not_found("route")
                .with("message", "the demo exists on sandbox servers only"));
        }
        let started = std::time::Instant::now();
        let caller = self.demo_account().await?;
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
            .activate(
                &caller,
                ActivateInput {
                    contract_id: Some(contract.id.clone()),
                },
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

    async fn demo_account(&self) -> Result<CustomerCaller> {
        let mut conn = self.store.reader().await?;
        if accounts::get(&mut conn, DEMO_ACCOUNT).await?.is_none() {
            drop(conn);
            let key = secret::new_customer_key();
            let mut tx = self.store.begin().await?;
            if accounts::get(&mut tx, DEMO_ACCOUNT).await?.is_none() {
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
        Ok(CustomerCaller {
            account_id: DEMO_ACCOUNT.to_owned(),
        })
    }
}
