//! The six contracting steps (PROTOCOL §3.3): request → offer → customer data → contract →
//! signature → activation, with every side exit of the SIM request state machine.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use ami_core::secret;
use ami_core::sim_request::Status;
use ami_store::contracting::{self as rows, SimRequestLink};
use ami_store::{Conn, mids, numbers};

use crate::audit_log::Subject;
use crate::auth::{Actor, CustomerCaller};
use crate::mids::MidSource;
use crate::views::{
    ActivatedMid, ContractView, CustomerDataSubmitted, CustomerView, OfferView, SimRequestCreated,
    SimRequestView,
};
use crate::{Error, Result, Services, validate};

/// The settings key of the signing-token derivation key.
const SIGNING_TOKEN_KEY: &str = "signing_token_key";

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSimRequest {
    /// ISO country code from `/v1/sim-options`; default `ES`.
    pub country: Option<String>,
    /// Default `eSIM`.
    pub sim_type: Option<String>,
    /// Default `["sms", "voice"]`; a non-empty subset of what the country offers.
    #[schema(value_type = Option<Vec<Capability>>, min_items = 1)]
    pub capabilities: Option<Vec<String>>,
    pub agent: Option<AgentInfo>,
    pub commercial_constraints: Option<CommercialConstraints>,
}

/// What a number can be contracted for: the spellings `capabilities` takes.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Capability {
    Sms,
    Voice,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInfo {
    /// Optional; one line, no bidirectional controls, at least one visible character,
    /// else `invalid_agent_name`.
    pub name: Option<String>,
    pub purpose: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommercialConstraints {
    /// The highest monthly price the agent accepts, in `currency`. An offer above it is
    /// rejected at once (`rejected`, reason `price_above_max_monthly_price`).
    pub max_monthly_price: Option<f64>,
    /// ISO 4217 code of `max_monthly_price` (a currency in circulation, any letter case),
    /// else `400 invalid_currency`. Default: the offer's currency. The catalogue has no
    /// exchange rates, so a ceiling in another currency than the offer's (the country's,
    /// see `/v1/sim-options`) cannot be compared and is refused with
    /// `400 currency_mismatch {offer_currency}`, before anything is created.
    pub currency: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    pub reason: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerFields {
    /// One line, no bidirectional controls, at least one visible character, else
    /// `invalid_legal_name`.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub legal_name: Option<String>,
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub tax_id: Option<String>,
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub billing_email: Option<String>,
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub address: Option<String>,
    /// One line, no bidirectional controls, at least one visible character, else
    /// `invalid_representative_name`.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub representative_name: Option<String>,
    pub representative_phone: Option<String>,
}

/// `{customer: {...}}` or the same fields flat.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerDataInput {
    pub customer: Option<CustomerFields>,
    /// One line, no bidirectional controls, at least one visible character, else
    /// `invalid_legal_name`.
    pub legal_name: Option<String>,
    pub tax_id: Option<String>,
    pub billing_email: Option<String>,
    pub address: Option<String>,
    /// One line, no bidirectional controls, at least one visible character, else
    /// `invalid_representative_name`.
    pub representative_name: Option<String>,
    pub representative_phone: Option<String>,
}

impl CustomerDataInput {
    fn fields(self) -> CustomerFields {
        self.customer.unwrap_or(CustomerFields {
            legal_name: self.legal_name,
            tax_id: self.tax_id,
            billing_email: self.billing_email,
            address: self.address,
            representative_name: self.representative_name,
            representative_phone: self.representative_phone,
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContract {
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub offer_id: Option<String>,
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub customer_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateInput {
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub contract_id: Option<String>,
}

/// What the public signing page shows to the representative.
pub struct SigningView {
    pub contract: ContractView,
    pub offer: OfferView,
    pub legal_name: String,
    pub representative_name: String,
}

const SIM_REQUEST: &str = "sim_request";
const OFFER: &str = "offer";
const CUSTOMER: &str = "customer";
const CONTRACT: &str = "contract";

/// Requested capabilities: a non-empty subset of what is offered, deduplicated.
pub(crate) fn capabilities(
    requested: Option<Vec<String>>,
    offered: &[&str],
) -> Result<Vec<String>> {
    let list = requested.unwrap_or_else(|| offered.iter().map(|s| (*s).to_owned()).collect());
    let mut out: Vec<String> = Vec::new();
    for c in list {
        if !offered.contains(&c.as_str()) {
            return Err(Error::invalid(
                "capabilities",
                format!("capabilities must be among {}", offered.join(", ")),
            ));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(
            "capabilities",
            "at least one capability is required",
        ));
    }
    Ok(out)
}

fn request_subject<'a>(account_id: &'a str, id: &'a str) -> Subject<'a> {
    Subject {
        account_id: Some(account_id),
        entity_type: SIM_REQUEST,
        entity_id: id,
        mid: None,
    }
}

impl Services {
    /// Moves the request along the state machine and writes `sim_request_<to>`.
    async fn transition(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        req: &mut rows::SimRequest,
        to: Status,
        reason: Option<&str>,
    ) -> Result<()> {
        let from = Status::parse(&req.status).ok_or_else(|| {
            Error::Internal(ami_store::StoreError::Corrupt(format!(
                "status of {}",
                req.id
            )))
        })?;
        if !from.can_become(to) {
            return Err(Error::conflict(
                "invalid_transition",
                format!("a {} request cannot become {}", from.as_str(), to.as_str()),
            )
            .with("from", from.as_str())
            .with("to", to.as_str()));
        }
        let reason = reason.or(to.needs_reason().then_some("unspecified"));
        let now = self.now();
        if !rows::transition_sim_request(
            conn,
            &self.row_account(&req.account_id),
            &req.id,
            from.as_str(),
            to.as_str(),
            reason,
            now,
        )
        .await?
        {
            return Err(Error::conflict(
                "invalid_transition",
                "the request changed concurrently",
            ));
        }
        self.audit(
            conn,
            actor,
            &format!("sim_request_{}", to.as_str()),
            request_subject(&req.account_id, &req.id),
            json!({"from": from.as_str(), "to": to.as_str(), "reason": reason}),
        )
        .await?;
        req.status = to.as_str().to_owned();
        req.updated_at = now;
        if reason.is_some() {
            req.reason = reason.map(str::to_owned);
        }
        Ok(())
    }

    pub(crate) async fn owned_request(
        &self,
        conn: &mut Conn,
        caller: &CustomerCaller,
        id: &str,
    ) -> Result<rows::SimRequest> {
        validate::id("simreq", SIM_REQUEST, id)?;
        rows::sim_request(conn, &caller.account_id, id)
            .await?
            .ok_or_else(|| Error::not_found(SIM_REQUEST))
    }

    async fn owned_offer(
        &self,
        conn: &mut Conn,
        caller: &CustomerCaller,
        id: &str,
    ) -> Result<rows::Offer> {
        validate::id("offer", OFFER, id)?;
        rows::offer(conn, &caller.account_id, id)
            .await?
            .ok_or_else(|| Error::not_found(OFFER))
    }

    async fn owned_contract(
        &self,
        conn: &mut Conn,
        caller: &CustomerCaller,
        id: &str,
    ) -> Result<rows::Contract> {
        validate::id("contract", CONTRACT, id)?;
        rows::contract(conn, &caller.account_id, id)
            .await?
            .ok_or_else(|| Error::not_found(CONTRACT))
    }

    pub async fn create_sim_request(
        &self,
        caller: &CustomerCaller,
        input: NewSimRequest,
    ) -> Result<SimRequestCreated> {
        let code = input.country.as_deref().unwrap_or("ES").to_owned();
        let country = self.supported_country(&code)?.clone();
        let sim_type = input.sim_type.unwrap_or_else(|| "eSIM".into());
        if !country.sim_types.contains(&sim_type) {
            return Err(Error::invalid(
                "sim_type",
                format!("sim_type must be one of {}", country.sim_types.join(", ")),
            ));
        }
        let offered: Vec<&str> = country.capabilities.iter().map(String::as_str).collect();
        let caps = capabilities(input.capabilities, &offered)?;
        let agent = input.agent.unwrap_or_default();
        let agent = json!({
            "name": validate::optional_name("agent_name", agent.name.as_deref(), 200)?,
            "purpose": validate::optional_text("agent_purpose", agent.purpose.as_deref(), 1000)?,
        });
        let constraints = input.commercial_constraints.unwrap_or_default();
        let max_price = match constraints.max_monthly_price {
            None => None,
            Some(p) => Some(ami_core::money::from_units(p, 1e12).ok_or_else(|| {
                Error::invalid(
                    "max_monthly_price",
                    "max_monthly_price must be a non-negative number",
                )
            })?),
        };
        let currency = match constraints.currency.as_deref() {
            None | Some("") => None,
            Some(c) => Some(ami_core::currency::parse(c).ok_or_else(|| {
                Error::invalid(
                    "currency",
                    "currency must be the ISO 4217 code of a currency in circulation, e.g. EUR",
                )
            })?),
        };
        // No exchange rates: a ceiling is only compared in the offer's own currency.
        if max_price.is_some()
            && let Some(c) = currency
            && !c.eq_ignore_ascii_case(&country.currency)
        {
            return Err(Error::bad_request(
                "currency_mismatch",
                format!(
                    "max_monthly_price is in {c} but the offer is priced in {}: state it in {}",
                    country.currency, country.currency
                ),
            )
            .with("offer_currency", country.currency.clone()));
        }
        let constraints_json =
            json!({"max_monthly_price": constraints.max_monthly_price, "currency": currency});

        let now = self.now();
        let actor = caller.actor();
        let mut req = rows::SimRequest {
            id: ami_core::id::new_id("simreq"),
            account_id: caller.account_id.to_string(),
            status: Status::Requested.as_str().into(),
            country: country.code.clone(),
            sim_type: sim_type.clone(),
            capabilities: json!(caps).to_string(),
            agent: agent.to_string(),
            commercial_constraints: constraints_json.to_string(),
            reason: None,
            offer_id: None,
            customer_id: None,
            contract_id: None,
            mid_id: None,
            created_at: now,
            updated_at: now,
        };
        let offer = rows::Offer {
            id: ami_core::id::new_id("offer"),
            account_id: caller.account_id.to_string(),
            sim_request_id: req.id.clone(),
            status: "offer_created".into(),
            country: country.code.clone(),
            sim_type,
            capabilities: req.capabilities.clone(),
            monthly_price: country.monthly_price,
            setup_fee: country.setup_fee,
            currency: country.currency.clone(),
            expires_at: now + self.settings.offer_ttl_ms,
            created_at: now,
            accepted_at: None,
        };
        let mut tx = self.store.begin().await?;
        rows::insert_sim_request(&mut tx, &req).await?;
        self.audit(
            &mut tx,
            &actor,
            "sim_request_created",
            request_subject(&req.account_id, &req.id),
            // Same shape as every transition (§3.3): the creation comes from no state.
            json!({"from": null, "to": "requested", "reason": null, "country": req.country}),
        )
        .await?;
        rows::insert_offer(&mut tx, &offer).await?;
        rows::link_sim_request(
            &mut tx,
            &caller.account_id,
            &req.id,
            SimRequestLink::Offer,
            &offer.id,
        )
        .await?;
        req.offer_id = Some(offer.id.clone());
        self.transition(&mut tx, &actor, &mut req, Status::OfferCreated, None)
            .await?;
        let mut offer = offer;
        // An offer above the agent's stated ceiling (in the offer's currency, checked above)
        // is rejected at once.
        let over_budget = max_price.is_some_and(|max| offer.monthly_price > max);
        if over_budget {
            rows::set_offer_status(
                &mut tx,
                &caller.account_id,
                &offer.id,
                "offer_created",
                "rejected",
                None,
            )
            .await?;
            offer.status = "rejected".into();
            self.transition(
                &mut tx,
                &actor,
                &mut req,
                Status::Rejected,
                Some("price_above_max_monthly_price"),
            )
            .await?;
        }
        ami_store::commit(tx).await?;
        Ok(SimRequestCreated {
            sim_request: SimRequestView::from(req),
            offer: OfferView::at(offer, now),
        })
    }

    pub async fn get_sim_request(
        &self,
        caller: &CustomerCaller,
        id: &str,
    ) -> Result<SimRequestView> {
        let mut conn = self.store.reader().await?;
        Ok(SimRequestView::from(
            self.owned_request(&mut conn, caller, id).await?,
        ))
    }

    pub async fn cancel_sim_request(
        &self,
        caller: &CustomerCaller,
        id: &str,
        input: CancelInput,
    ) -> Result<SimRequestView> {
        let reason = validate::reason(input.reason.as_deref(), "cancelled_by_client")?;
        let now = self.now();
        let actor = caller.actor();
        let mut tx = self.store.begin().await?;
        let mut req = self.owned_request(&mut tx, caller, id).await?;
        let status = Status::parse(&req.status).unwrap_or(Status::Failed);
        if status.is_terminal() {
            return Err(Error::conflict(
                "already_terminal",
                format!("the request is already {}", req.status),
            )
            .with("status", req.status.clone()));
        }
        self.transition(&mut tx, &actor, &mut req, Status::Cancelled, Some(&reason))
            .await?;
        if let Some(offer_id) = &req.offer_id {
            rows::set_offer_status(
                &mut tx,
                &caller.account_id,
                offer_id,
                "offer_created",
                "cancelled",
                None,
            )
            .await?;
        }
        if let Some(contract_id) = &req.contract_id {
            rows::set_contract_status(
                &mut tx,
                &caller.account_id,
                contract_id,
                "signature_pending",
                "cancelled",
                None,
            )
            .await?;
        }
        if let Some(mid_id) = &req.mid_id {
            let revoked = mids::revoke_tokens(&mut tx, &caller.account_id, mid_id, now).await?;
            if revoked > 0 {
                self.audit(
                    &mut tx,
                    &actor,
                    "agent_token_revoked",
                    crate::mids::mid_subject(&req.account_id, mid_id),
                    json!({"revoked": revoked, "reason": "sim_request_cancelled"}),
                )
                .await?;
            }
        }
        ami_store::commit(tx).await?;
        Ok(SimRequestView::from(req))
    }

    pub async fn get_offer(&self, caller: &CustomerCaller, id: &str) -> Result<OfferView> {
        let mut conn = self.store.reader().await?;
        Ok(OfferView::at(
            self.owned_offer(&mut conn, caller, id).await?,
            self.now(),
        ))
    }

    pub async fn accept_offer(&self, caller: &CustomerCaller, id: &str) -> Result<OfferView> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let offer = self.owned_offer(&mut tx, caller, id).await?;
        let not_acceptable = |why: &str| {
            Error::conflict(
                "offer_not_acceptable",
                format!("the offer cannot be accepted: {why}"),
            )
        };
        if offer.status != "offer_created" {
            return Err(not_acceptable(&offer.status.replace('_', " ")));
        }
        if now >= offer.expires_at {
            return Err(not_acceptable("expired"));
        }
        let mut req = rows::sim_request(&mut tx, &caller.account_id, &offer.sim_request_id)
            .await?
            .ok_or_else(|| Error::not_found(SIM_REQUEST))?;
        if req.status != Status::OfferCreated.as_str() {
            return Err(not_acceptable(&format!("the request is {}", req.status)));
        }
        rows::set_offer_status(
            &mut tx,
            &caller.account_id,
            id,
            "offer_created",
            "offer_accepted",
            Some(now),
        )
        .await?;
        self.transition(
            &mut tx,
            &caller.actor(),
            &mut req,
            Status::OfferAccepted,
            None,
        )
        .await?;
        let accepted = self.owned_offer(&mut tx, caller, id).await?;
        ami_store::commit(tx).await?;
        Ok(OfferView::at(accepted, now))
    }

    fn customer_row(
        &self,
        caller: &CustomerCaller,
        sim_request_id: Option<&str>,
        f: CustomerFields,
    ) -> Result<rows::Customer> {
        let required = [
            ("legal_name", &f.legal_name),
            ("tax_id", &f.tax_id),
            ("billing_email", &f.billing_email),
            ("address", &f.address),
            ("representative_name", &f.representative_name),
        ];
        let missing: Vec<String> = required
            .iter()
            .filter(|(_, v)| v.as_deref().is_none_or(|s| s.trim().is_empty()))
            .map(|(k, _)| (*k).to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(Error::missing_fields(missing));
        }
        let text = |field: &str, v: &Option<String>, max| {
            validate::required_text(field, v.as_deref(), max)
        };
        let name =
            |field: &str, v: &Option<String>| validate::required_name(field, v.as_deref(), 300);
        let representative_phone = match f.representative_phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(
                ami_core::phone::E164::parse(p)
                    .map_err(|_| {
                        Error::invalid("representative_phone", "representative_phone must be E.164")
                    })?
                    .to_string(),
            ),
        };
        Ok(rows::Customer {
            id: ami_core::id::new_id("customer"),
            account_id: caller.account_id.to_string(),
            sim_request_id: sim_request_id.map(str::to_owned),
            legal_name: name("legal_name", &f.legal_name)?,
            tax_id: text("tax_id", &f.tax_id, 64)?,
            billing_email: validate::email(
                "billing_email",
                f.billing_email.as_deref().unwrap_or_default(),
            )?,
            address: text("address", &f.address, 500)?,
            representative_name: name("representative_name", &f.representative_name)?,
            representative_phone,
            created_at: self.now(),
        })
    }

    pub async fn submit_customer_data(
        &self,
        caller: &CustomerCaller,
        id: &str,
        input: CustomerDataInput,
    ) -> Result<CustomerDataSubmitted> {
        let mut tx = self.store.begin().await?;
        let mut req = self.owned_request(&mut tx, caller, id).await?;
        let customer = self.customer_row(caller, Some(id), input.fields())?;
        if req.status != Status::OfferAccepted.as_str() {
            return Err(Error::invalid_state(
                Status::OfferAccepted.as_str(),
                &req.status,
            ));
        }
        rows::insert_customer(&mut tx, &customer).await?;
        rows::link_sim_request(
            &mut tx,
            &caller.account_id,
            id,
            SimRequestLink::Customer,
            &customer.id,
        )
        .await?;
        req.customer_id = Some(customer.id.clone());
        // The audit records that data arrived, never the data (PII).
        self.audit(
            &mut tx,
            &caller.actor(),
            "customer_created",
            Subject {
                account_id: Some(caller.account_id.as_str()),
                entity_type: CUSTOMER,
                entity_id: &customer.id,
                mid: None,
            },
            json!({"sim_request_id": id}),
        )
        .await?;
        self.transition(
            &mut tx,
            &caller.actor(),
            &mut req,
            Status::CustomerDataSubmitted,
            None,
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(CustomerDataSubmitted {
            sim_request: SimRequestView::from(req),
            customer: CustomerView::from(customer),
        })
    }

    /// The legacy stand-alone customer record.
    pub async fn create_customer_record(
        &self,
        caller: &CustomerCaller,
        input: CustomerDataInput,
    ) -> Result<CustomerView> {
        let customer = self.customer_row(caller, None, input.fields())?;
        let mut tx = self.store.begin().await?;
        rows::insert_customer(&mut tx, &customer).await?;
        self.audit(
            &mut tx,
            &caller.actor(),
            "customer_created",
            Subject {
                account_id: Some(caller.account_id.as_str()),
                entity_type: CUSTOMER,
                entity_id: &customer.id,
                mid: None,
            },
            json!({}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(CustomerView::from(customer))
    }

    pub async fn get_customer_record(
        &self,
        caller: &CustomerCaller,
        id: &str,
    ) -> Result<CustomerView> {
        validate::id("customer", CUSTOMER, id)?;
        let mut conn = self.store.reader().await?;
        let c = rows::customer(&mut conn, &caller.account_id, id)
            .await?
            .ok_or_else(|| Error::not_found(CUSTOMER))?;
        Ok(CustomerView::from(c))
    }

    pub async fn create_contract(
        &self,
        caller: &CustomerCaller,
        input: NewContract,
    ) -> Result<ContractView> {
        let mut missing = Vec::new();
        if input.offer_id.as_deref().is_none_or(str::is_empty) {
            missing.push("offer_id".to_owned());
        }
        if input.customer_id.as_deref().is_none_or(str::is_empty) {
            missing.push("customer_id".to_owned());
        }
        if !missing.is_empty() {
            return Err(Error::missing_fields(missing));
        }
        let (offer_id, customer_id) = (
            input.offer_id.unwrap_or_default(),
            input.customer_id.unwrap_or_default(),
        );
        let now = self.now();
        let actor = caller.actor();
        let mut tx = self.store.begin().await?;
        let offer = self.owned_offer(&mut tx, caller, &offer_id).await?;
        validate::id("customer", CUSTOMER, &customer_id)?;
        let customer = rows::customer(&mut tx, &caller.account_id, &customer_id)
            .await?
            .ok_or_else(|| Error::not_found(CUSTOMER))?;
        if offer.status != "offer_accepted" {
            return Err(
                Error::conflict("offer_not_accepted", "the offer has not been accepted")
                    .with("status", offer.status),
            );
        }
        let mut req = rows::sim_request(&mut tx, &caller.account_id, &offer.sim_request_id)
            .await?
            .ok_or_else(|| Error::not_found(SIM_REQUEST))?;
        if customer
            .sim_request_id
            .as_deref()
            .is_some_and(|r| r != req.id)
        {
            return Err(Error::conflict(
                "customer_mismatch",
                "the customer data belongs to another request",
            ));
        }
        self.check_kyc_gate(&mut tx, &caller.account_id, &req.id)
            .await?;
        // A stand-alone customer record counts as the customer data step.
        if req.status == Status::OfferAccepted.as_str() {
            rows::link_sim_request(
                &mut tx,
                &caller.account_id,
                &req.id,
                SimRequestLink::Customer,
                &customer.id,
            )
            .await?;
            self.transition(
                &mut tx,
                &actor,
                &mut req,
                Status::CustomerDataSubmitted,
                None,
            )
            .await?;
        }
        if req.status != Status::CustomerDataSubmitted.as_str() {
            return Err(Error::invalid_state(
                Status::CustomerDataSubmitted.as_str(),
                &req.status,
            ));
        }
        let contract_id = ami_core::id::new_id("contract");
        let token = secret::signing_token(&self.signing_token_key(&mut tx).await?, &contract_id);
        let contract = rows::Contract {
            id: contract_id,
            account_id: caller.account_id.to_string(),
            sim_request_id: req.id.clone(),
            offer_id: offer.id,
            customer_id: customer.id,
            status: "signature_pending".into(),
            created_at: now,
            expires_at: now + self.settings.contract_ttl_ms,
            signed_at: None,
            signature_method: None,
        };
        rows::insert_contract(&mut tx, &contract, &secret::hash(&token)).await?;
        rows::link_sim_request(
            &mut tx,
            &caller.account_id,
            &req.id,
            SimRequestLink::Contract,
            &contract.id,
        )
        .await?;
        self.audit(
            &mut tx,
            &actor,
            "contract_created",
            Subject {
                account_id: Some(caller.account_id.as_str()),
                entity_type: CONTRACT,
                entity_id: &contract.id,
                mid: None,
            },
            json!({"sim_request_id": req.id, "offer_id": contract.offer_id}),
        )
        .await?;
        self.transition(&mut tx, &actor, &mut req, Status::SignaturePending, None)
            .await?;
        ami_store::commit(tx).await?;
        let signing = self.signing_link(&contract.id, token);
        Ok(ContractView::at(contract, now, Some(signing)))
    }

    /// The contract with its signing link and token: the owner may read them again to hand
    /// them to the representative. A contract whose stored hash is not that of the derived
    /// token (none can be derived without the key) is shown without them.
    pub async fn get_contract(&self, caller: &CustomerCaller, id: &str) -> Result<ContractView> {
        let mut conn = self.store.reader().await?;
        let contract = self.owned_contract(&mut conn, caller, id).await?;
        let mut signing = None;
        if let Some(key) = ami_store::settings::get(&mut conn, SIGNING_TOKEN_KEY).await? {
            let token = secret::signing_token(&key, &contract.id);
            if rows::contract_by_signing_token(&mut conn, &contract.id, &secret::hash(&token))
                .await?
                .is_some()
            {
                signing = Some(self.signing_link(&contract.id, token));
            }
        }
        Ok(ContractView::at(contract, self.now(), signing))
    }

    /// The signing page's link and its token.
    fn signing_link(&self, contract_id: &str, token: String) -> (String, String) {
        let url = format!(
            "{}/v1/sign/{contract_id}?t={token}",
            self.settings.public_base_url.trim_end_matches('/'),
        );
        (url, token)
    }

    /// The key signing tokens are derived from, made on first use. Kept in the database so
    /// every replica derives the same token and a restart keeps the links working.
    async fn signing_token_key(&self, conn: &mut Conn) -> Result<String> {
        Ok(ami_store::settings::get_or_insert(
            conn,
            SIGNING_TOKEN_KEY,
            &secret::new_signing_token_key(),
        )
        .await?)
    }

    pub async fn mock_sign(&self, caller: &CustomerCaller, id: &str) -> Result<ContractView> {
        if !self.settings.mock_sign_enabled {
            return Err(Error::refused(
                403,
                "mock_sign_disabled",
                "programmatic signing is disabled on this server",
            ));
        }
        let mut tx = self.store.begin().await?;
        let contract = self.owned_contract(&mut tx, caller, id).await?;
        let signed = self
            .sign(&mut tx, &caller.actor(), contract, "mock")
            .await?;
        ami_store::commit(tx).await?;
        Ok(signed)
    }

    async fn sign(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        c: rows::Contract,
        method: &str,
    ) -> Result<ContractView> {
        let now = self.now();
        match c.status.as_str() {
            "signed" => {
                return Err(Error::conflict(
                    "already_signed",
                    "the contract is already signed",
                ));
            }
            "signature_pending" if now >= c.expires_at => {
                return Err(Error::conflict(
                    "contract_expired",
                    "the contract expired before it was signed",
                ));
            }
            "signature_pending" => {}
            other => {
                return Err(Error::conflict(
                    "contract_not_pending",
                    format!("the contract is {other}"),
                ));
            }
        }
        let mut req = rows::sim_request(conn, &self.row_account(&c.account_id), &c.sim_request_id)
            .await?
            .ok_or_else(|| Error::not_found(SIM_REQUEST))?;
        if !rows::set_contract_status(
            conn,
            &self.row_account(&c.account_id),
            &c.id,
            "signature_pending",
            "signed",
            Some((now, method)),
        )
        .await?
        {
            return Err(Error::conflict(
                "already_signed",
                "the contract is already signed",
            ));
        }
        self.audit(
            &mut *conn,
            actor,
            "contract_signed",
            Subject {
                account_id: Some(&c.account_id),
                entity_type: CONTRACT,
                entity_id: &c.id,
                mid: None,
            },
            json!({"method": method}),
        )
        .await?;
        self.transition(conn, actor, &mut req, Status::Signed, None)
            .await?;
        let signed = rows::contract(conn, &self.row_account(&c.account_id), &c.id)
            .await?
            .ok_or_else(|| Error::not_found(CONTRACT))?;
        Ok(ContractView::at(signed, now, None))
    }

    /// The signing page's view; `None` when the id and token do not match together.
    pub async fn contract_for_signing(&self, id: &str, token: &str) -> Result<Option<SigningView>> {
        if !ami_core::id::is_well_formed("contract", id) || token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let mut conn = self.store.reader().await?;
        let Some(c) = rows::contract_by_signing_token(&mut conn, id, &secret::hash(token)).await?
        else {
            return Ok(None);
        };
        let offer = rows::offer(&mut conn, &self.row_account(&c.account_id), &c.offer_id)
            .await?
            .ok_or_else(|| Error::not_found(OFFER))?;
        let customer = rows::customer(&mut conn, &self.row_account(&c.account_id), &c.customer_id)
            .await?
            .ok_or_else(|| Error::not_found(CUSTOMER))?;
        let now = self.now();
        Ok(Some(SigningView {
            contract: ContractView::at(c, now, None),
            offer: OfferView::at(offer, now),
            legal_name: customer.legal_name,
            representative_name: customer.representative_name,
        }))
    }

    /// The representative's signature from the public page. Errors are the same as mock-sign's.
    pub async fn sign_with_token(&self, id: &str, token: &str) -> Result<Option<ContractView>> {
        if !ami_core::id::is_well_formed("contract", id) || token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let mut tx = self.store.begin().await?;
        let Some(c) = rows::contract_by_signing_token(&mut tx, id, &secret::hash(token)).await?
        else {
            return Ok(None);
        };
        let actor = Actor::Customer(c.account_id.clone());
        let signed = self.sign(&mut tx, &actor, c, "signing_page").await?;
        ami_store::commit(tx).await?;
        Ok(Some(signed))
    }

    pub async fn activate(
        &self,
        caller: &CustomerCaller,
        input: ActivateInput,
    ) -> Result<ActivatedMid> {
        self.activate_from(caller, input, numbers::Pool::Main).await
    }

    /// Activation with a number from `pool`.
    pub(crate) async fn activate_from(
        &self,
        caller: &CustomerCaller,
        input: ActivateInput,
        pool: numbers::Pool,
    ) -> Result<ActivatedMid> {
        let contract_id = input
            .contract_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::missing_fields(vec!["contract_id".into()]))?;
        let actor = caller.actor();
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let contract = self.owned_contract(&mut tx, caller, &contract_id).await?;
        if contract.status != "signed" {
            return Err(
                Error::conflict("contract_not_signed", "the contract is not signed")
                    .with("status", contract.status),
            );
        }
        let mut req = rows::sim_request(&mut tx, &caller.account_id, &contract.sim_request_id)
            .await?
            .ok_or_else(|| Error::not_found(SIM_REQUEST))?;
        if req.status != Status::Signed.as_str() {
            return Err(Error::invalid_state(Status::Signed.as_str(), &req.status));
        }
        self.transition(&mut tx, &actor, &mut req, Status::Provisioning, None)
            .await?;
        // On the services clock: the demo finds its expired MIDs by the time in their ids.
        let mid_id = ami_core::id::new_id_at("mid", self.now());
        let caps: Vec<String> = serde_json::from_str(&req.capabilities).unwrap_or_default();
        let number = self
            .take_number(&mut tx, pool, &req.country, &caps, &mid_id, now)
            .await?
            .ok_or_else(|| {
                Error::conflict(
                    "no_number_available",
                    format!("no number of {} is available right now", req.country),
                )
            })?;
        // The sandbox carrier confirms every number it owns; a real carrier adapter confirms
        // or refuses here, and a refusal ends the request as failed.
        let activated = self
            .insert_mid(
                &mut tx,
                &actor,
                MidSource {
                    id: mid_id.clone(),
                    account_id: caller.account_id.as_str(),
                    number: &number,
                    capabilities: &caps,
                    inbound_sip_uri: None,
                    sim_request_id: Some(&req.id),
                    contract_id: Some(&contract.id),
                },
            )
            .await?;
        rows::link_sim_request(
            &mut tx,
            &caller.account_id,
            &req.id,
            SimRequestLink::Mid,
            &mid_id,
        )
        .await?;
        self.transition(&mut tx, &actor, &mut req, Status::Active, None)
            .await?;
        ami_store::commit(tx).await?;
        Ok(activated)
    }

    /// A free number of the country carrying `caps`, from `pool`. For tenants that is the
    /// operator's inventory; the sandbox's fictional numbers only serve a country the
    /// operator stocks no number of, and only while the sandbox is on: a real number is
    /// never passed over for a fictional one.
    async fn take_number(
        &self,
        conn: &mut Conn,
        pool: numbers::Pool,
        country: &str,
        caps: &[String],
        mid_id: &str,
        now: i64,
    ) -> Result<Option<numbers::Number>> {
        let engine = self.store.engine();
        let needs: Vec<&str> = caps.iter().map(String::as_str).collect();
        let taken =
            numbers::allocate_from(conn, engine, pool, country, &needs, mid_id, now).await?;
        if taken.is_some()
            || pool != numbers::Pool::Main
            || !self.settings.sandbox
            || numbers::count_in(conn, numbers::Pool::Main, country).await? > 0
        {
            return Ok(taken);
        }
        let sandbox = numbers::Pool::Sandbox;
        Ok(numbers::allocate_from(conn, engine, sandbox, country, &needs, mid_id, now).await?)
    }

    /// `/v1/sim-options`: the catalogue as agents see it, an object keyed by country code.
    pub fn sim_options(&self) -> Value {
        let countries: serde_json::Map<String, Value> = self
            .settings
            .countries
            .iter()
            .map(|c| {
                let option = json!({
                    "code": c.code,
                    "name": c.name,
                    "msisdn_prefix": c.msisdn_prefix,
                    "sim_types": c.sim_types,
                    "capabilities": c.capabilities,
                    "price": {
                        "monthly": ami_core::money::to_json(c.monthly_price),
                        "setup": ami_core::money::to_json(c.setup_fee),
                        "currency": c.currency,
                    },
                    "usage_eur": {
                        "sms": ami_core::money::to_json(c.sms_price_eur),
                        "call_per_min": ami_core::money::to_json(c.call_per_min_eur),
                    },
                });
                (c.code.clone(), option)
            })
            .collect();
        json!({ "countries": countries })
    }
}
