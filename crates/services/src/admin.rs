//! Operator use cases (PROTOCOL §3.2): accounts, number inventory, manual MIDs.

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use ami_core::phone::E164;
use ami_core::secret;
use ami_store::page::PageRequest;
use ami_store::{Conn, accounts, numbers};

use crate::audit_log::Subject;
use crate::auth::{Actor, AdminCaller};
use crate::views::{
    AccountList, AccountStatus, AccountView, ActivatedMid, CreatedAccount, NumberCounts,
    NumberList, NumberView, NumbersLoaded, RotatedKey,
};
use crate::{Error, Result, Services, validate};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// Required (`missing_name`); one line, no bidirectional controls, at least one visible character,
    /// else `invalid_name`.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub name: Option<String>,
    pub billing_email: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: Option<String>,
}

/// One number, a list, or an inclusive range. With `country`, every number must be one of
/// that country; without, each number's own country (from the numbering plan) is used.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadNumbers {
    /// A country of the catalogue, else `unsupported_country`.
    pub country: Option<String>,
    /// One number.
    pub number: Option<String>,
    pub numbers: Option<Vec<String>>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// What the numbers carry (`sms`, `voice`); absent: everything their country offers.
    #[schema(value_type = Option<Vec<crate::contracting::Capability>>, min_items = 1)]
    pub capabilities: Option<Vec<String>>,
}

/// The longest part of an invalid entry echoed back.
const MAX_ECHOED_NUMBER_CHARS: usize = 32;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualMid {
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub phone_number: Option<String>,
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub account_id: Option<String>,
    pub inbound_sip_uri: Option<String>,
    #[schema(value_type = Option<Vec<crate::contracting::Capability>>, min_items = 1)]
    pub capabilities: Option<Vec<String>>,
}

/// Most numbers one load may add.
pub const MAX_NUMBERS_PER_LOAD: usize = 100_000;

const ACCOUNT: &str = "account";

impl Services {
    pub async fn create_customer(
        &self,
        _: &AdminCaller,
        input: NewCustomer,
    ) -> Result<CreatedAccount> {
        let name = validate::required_name("name", input.name.as_deref(), 200)?;
        let billing_email = match input.billing_email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => Some(validate::email("billing_email", e)?),
        };
        let id = ami_core::id::new_id("acct");
        let key = secret::new_customer_key();
        let now = self.now();
        let mut tx = self.store.begin().await?;
        accounts::insert(
            &mut tx,
            &accounts::NewAccount {
                id: &id,
                name: &name,
                billing_email: billing_email.as_deref(),
                key_hash: &secret::hash(&key),
                key_prefix: &secret::display_prefix(&key),
                now,
            },
        )
        .await?;
        self.audit(
            &mut tx,
            &Actor::Admin,
            "account_created",
            subject(&id),
            json!({}),
        )
        .await?;
        self.audit(
            &mut tx,
            &Actor::Admin,
            "api_key_issued",
            subject(&id),
            json!({"key_prefix": secret::display_prefix(&key)}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(CreatedAccount {
            api_key_hint: secret::hint(&key),
            api_key: key,
            id,
            name,
            billing_email,
            status: "active".into(),
            created_at: ami_core::time::rfc3339(now),
        })
    }

    pub async fn list_customers(
        &self,
        admin: &AdminCaller,
        page: &PageRequest,
    ) -> Result<AccountList> {
        let mut conn = self.store.reader().await?;
        let p = ami_store::system::accounts::list(admin.operator(), &mut conn, page).await?;
        self.audit_admin_read("accounts").await?;
        let accounts: Vec<AccountView> = p.items.into_iter().map(AccountView::from).collect();
        Ok(AccountList {
            count: accounts.len(),
            accounts,
            next_cursor: p.next_cursor,
        })
    }

    pub async fn rotate_customer_key(
        &self,
        admin: &AdminCaller,
        account_id: &str,
    ) -> Result<RotatedKey> {
        check_account_id(account_id)?;
        let chosen = admin.chosen_account(account_id);
        let key = secret::new_customer_key();
        let now = self.now();
        let mut tx = self.store.begin().await?;
        if !accounts::set_key(
            &mut tx,
            &chosen,
            &secret::hash(&key),
            &secret::display_prefix(&key),
            now,
        )
        .await?
        {
            return Err(Error::not_found(ACCOUNT));
        }
        self.audit(
            &mut tx,
            &Actor::Admin,
            "api_key_rotated",
            subject(account_id),
            json!({"key_prefix": secret::display_prefix(&key)}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(RotatedKey {
            id: account_id.to_owned(),
            api_key_hint: secret::hint(&key),
            api_key: key,
            rotated_at: ami_core::time::rfc3339(now),
        })
    }

    pub async fn suspend_customer(
        &self,
        admin: &AdminCaller,
        account_id: &str,
        input: Reason,
    ) -> Result<AccountStatus> {
        let reason = validate::reason(input.reason.as_deref(), "suspended_by_admin")?;
        self.set_account_status(
            admin,
            account_id,
            "active",
            "suspended",
            Some(&reason),
            "account_suspended",
        )
        .await
    }

    pub async fn activate_customer(
        &self,
        admin: &AdminCaller,
        account_id: &str,
        input: Reason,
    ) -> Result<AccountStatus> {
        let reason = validate::reason(input.reason.as_deref(), "activated_by_admin")?;
        self.set_account_status(
            admin,
            account_id,
            "suspended",
            "active",
            Some(&reason),
            "account_activated",
        )
        .await
    }

    async fn set_account_status(
        &self,
        admin: &AdminCaller,
        account_id: &str,
        from: &str,
        to: &str,
        reason: Option<&str>,
        action: &str,
    ) -> Result<AccountStatus> {
        check_account_id(account_id)?;
        let chosen = admin.chosen_account(account_id);
        let mut tx = self.store.begin().await?;
        let account = accounts::get(&mut tx, &chosen)
            .await?
            .ok_or_else(|| Error::not_found(ACCOUNT))?;
        if account.status != from {
            return Err(Error::conflict(
                format!("account_already_{}", account.status),
                format!("the account is already {}", account.status),
            ));
        }
        let stored_reason = (to == "suspended").then_some(reason).flatten();
        accounts::set_status(&mut tx, &chosen, from, to, stored_reason, self.now()).await?;
        self.audit(
            &mut tx,
            &Actor::Admin,
            action,
            subject(account_id),
            json!({"from": from, "to": to, "reason": reason}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(AccountStatus {
            id: account_id.to_owned(),
            status: to.to_owned(),
        })
    }

    /// Loads numbers into the operator's inventory. Never all-or-nothing: entries that are
    /// not a valid number of a catalogue country (of `country`, when given) are listed as
    /// `invalid`, numbers already held are `skipped`, the rest are added.
    pub async fn load_numbers(&self, _: &AdminCaller, input: LoadNumbers) -> Result<NumbersLoaded> {
        let country = match input.country.as_deref() {
            Some(asked) => Some(self.supported_country(asked)?.code.clone()),
            None => None,
        };
        let entries: Vec<String> = match (input.number, input.numbers, input.from, input.to) {
            (Some(one), None, None, None) => vec![one],
            (None, Some(list), None, None) => {
                if list.is_empty() || list.len() > MAX_NUMBERS_PER_LOAD {
                    return Err(Error::invalid(
                        "numbers",
                        format!("give 1 to {MAX_NUMBERS_PER_LOAD} numbers"),
                    ));
                }
                list
            }
            (None, None, Some(from), Some(to)) => number_range(&from, &to)?
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect(),
            _ => {
                return Err(Error::bad_request(
                    "invalid_numbers",
                    "give one of number, numbers: [...], or both from and to",
                ));
            }
        };
        let capabilities = match input.capabilities {
            None => None,
            Some(asked) => {
                let offered: Vec<&str> = match country.as_deref().and_then(|c| self.country(c)) {
                    Some(c) => c.capabilities.iter().map(String::as_str).collect(),
                    None => vec!["sms", "voice"],
                };
                let mut caps = crate::contracting::capabilities(Some(asked), &offered)?;
                caps.sort();
                Some(serde_json::to_string(&caps).unwrap_or_default())
            }
        };
        // Valid numbers by country, each once; the rest is reported back as given.
        let mut by_country: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut invalid = Vec::new();
        let mut valid: u64 = 0;
        for entry in &entries {
            let own = E164::parse(entry).ok().and_then(|n| {
                let c = n.valid_country()?;
                let wanted =
                    country.as_deref().is_none_or(|w| w == c) && self.country(&c).is_some();
                wanted.then(|| (c, n.as_str().to_owned()))
            });
            match own {
                Some((c, n)) => {
                    valid += 1;
                    let list = by_country.entry(c).or_default();
                    if !list.contains(&n) {
                        list.push(n);
                    }
                }
                None => invalid.push(entry.chars().take(MAX_ECHOED_NUMBER_CHARS).collect()),
            }
        }
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let mut added = 0;
        for (c, list) in &by_country {
            added +=
                numbers::insert_with_capabilities(&mut tx, c, list, capabilities.as_deref(), now)
                    .await?;
        }
        let skipped = valid - added;
        let entity = country.clone().unwrap_or_else(|| "*".to_owned());
        self.audit(
            &mut tx,
            &Actor::Admin,
            "numbers_loaded",
            Subject {
                account_id: None,
                entity_type: "number_inventory",
                entity_id: &entity,
                mid: None,
            },
            json!({"country": country, "countries": by_country.keys().collect::<Vec<_>>(),
                   "requested": entries.len(), "added": added, "skipped": skipped,
                   "invalid": invalid.len()}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(NumbersLoaded {
            country,
            requested: entries.len(),
            count: entries.len(),
            added,
            skipped,
            invalid,
        })
    }

    pub async fn list_numbers(
        &self,
        _: &AdminCaller,
        status: Option<&str>,
        country: Option<&str>,
        page: &PageRequest,
    ) -> Result<NumberList> {
        if let Some(s) = status
            && !["available", "assigned", "quarantined", "disabled"].contains(&s)
        {
            return Err(Error::invalid(
                "status",
                "status must be available, assigned, quarantined or disabled",
            ));
        }
        // Same rule as loading; garbage (a NUL byte breaks PostgreSQL) never reaches the store.
        if country.is_some_and(|c| !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))) {
            return Err(Error::invalid(
                "country",
                "country must be an ISO 3166-1 alpha-2 code such as ES",
            ));
        }
        let mut conn = self.store.reader().await?;
        let p = numbers::list(&mut conn, status, country, page).await?;
        let mut counts = NumberCounts::default();
        for (status, n) in numbers::counts_by_status(&mut conn, country).await? {
            match status.as_str() {
                "available" => counts.available += n,
                "assigned" => counts.assigned += n,
                "quarantined" => counts.quarantined += n,
                "disabled" => counts.disabled += n,
                _ => {}
            }
            counts.total += n;
        }
        drop(conn);
        self.audit_admin_read("numbers").await?;
        let numbers: Vec<NumberView> = p.items.into_iter().map(NumberView::from).collect();
        Ok(NumberList {
            count: numbers.len(),
            numbers,
            next_cursor: p.next_cursor,
            counts,
        })
    }

    pub async fn disable_number(&self, _: &AdminCaller, id: &str) -> Result<NumberView> {
        self.set_number_status(
            id,
            &["available", "quarantined"],
            "disabled",
            "number_disabled",
        )
        .await
    }

    pub async fn enable_number(&self, _: &AdminCaller, id: &str) -> Result<NumberView> {
        self.set_number_status(id, &["disabled"], "available", "number_enabled")
            .await
    }

    async fn set_number_status(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
        action: &str,
    ) -> Result<NumberView> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let n = self.inventory_number(&mut tx, id).await?;
        let id = n.id.as_str();
        if !from.contains(&n.status.as_str()) {
            return Err(Error::invalid_state(&from.join("|"), &n.status));
        }
        numbers::set_status(&mut tx, id, &n.status, to, None, now).await?;
        self.audit(
            &mut tx,
            &Actor::Admin,
            action,
            Subject {
                account_id: None,
                entity_type: "number",
                entity_id: id,
                mid: None,
            },
            json!({"from": n.status, "to": to}),
        )
        .await?;
        let updated = numbers::get(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("number"))?;
        ami_store::commit(tx).await?;
        Ok(NumberView::from(updated))
    }

    /// An inventory number by its id or by the number itself (E.164, as given in a path).
    async fn inventory_number(&self, conn: &mut Conn, key: &str) -> Result<numbers::Number> {
        let found = if key.starts_with("num_") {
            validate::id("num", "number", key)?;
            numbers::get(conn, key).await?
        } else {
            match E164::parse(key) {
                Ok(phone) => numbers::by_phone(conn, phone.as_str()).await?,
                Err(_) => None,
            }
        };
        found.ok_or_else(|| Error::not_found("number"))
    }

    /// Partner onboarding: a MID for a number the partner already holds, without contracting.
    pub async fn create_manual_mid(
        &self,
        admin: &AdminCaller,
        input: ManualMid,
    ) -> Result<ActivatedMid> {
        let mut missing = Vec::new();
        if input.phone_number.as_deref().is_none_or(str::is_empty) {
            missing.push("phone_number".to_owned());
        }
        if input.account_id.as_deref().is_none_or(str::is_empty) {
            missing.push("account_id".to_owned());
        }
        if !missing.is_empty() {
            return Err(Error::missing_fields(missing));
        }
        let phone = E164::parse(input.phone_number.as_deref().unwrap_or_default())
            .map_err(|_| Error::invalid("phone_number", "phone_number must be E.164"))?;
        let country = phone.valid_country().ok_or_else(|| {
            Error::invalid(
                "phone_number",
                "phone_number is not valid in the numbering plan",
            )
        })?;
        let inbound = crate::mids::parse_sip_uri(input.inbound_sip_uri.as_deref())?;
        let capabilities = crate::contracting::capabilities(input.capabilities, &["sms", "voice"])?;
        let account_id = input.account_id.unwrap_or_default();
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let account = accounts::get(&mut tx, &admin.chosen_account(&account_id))
            .await?
            .ok_or_else(|| Error::not_found(ACCOUNT))?;
        if account.status != "active" {
            return Err(Error::conflict(
                "account_not_active",
                "the account is suspended",
            ));
        }
        let mid_id = ami_core::id::new_id_at("mid", self.now());
        let number = match numbers::by_phone(&mut tx, phone.as_str()).await? {
            None => {
                numbers::insert_many(&mut tx, &country, &[phone.as_str().to_owned()], now).await?;
                numbers::by_phone(&mut tx, phone.as_str()).await?
            }
            Some(n) => Some(n),
        }
        .ok_or_else(|| Error::conflict("number_not_available", "the number is not available"))?;
        let free = number.status == "available"
            || (number.status == "quarantined"
                && number.quarantined_until.is_some_and(|t| t <= now));
        if !free
            || !numbers::set_status(&mut tx, &number.id, &number.status, "assigned", None, now)
                .await?
        {
            return Err(Error::conflict(
                "number_not_available",
                "the number is not available",
            ));
        }
        numbers::assign(&mut tx, &number.id, &mid_id).await?;
        let activated = self
            .insert_mid(
                &mut tx,
                &Actor::Admin,
                crate::mids::MidSource {
                    id: mid_id,
                    account_id: &account_id,
                    number: &number,
                    capabilities: &capabilities,
                    inbound_sip_uri: inbound.as_deref(),
                    sim_request_id: None,
                    contract_id: None,
                },
            )
            .await?;
        ami_store::commit(tx).await?;
        Ok(activated)
    }
}

impl Services {
    /// Every admin call leaves an audit row, reads included (PROTOCOL §3.2).
    pub(crate) async fn audit_admin_read(&self, resource: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        self.audit(
            &mut tx,
            &Actor::Admin,
            "admin_read",
            Subject {
                account_id: None,
                entity_type: resource,
                entity_id: resource,
                mid: None,
            },
            json!({"resource": resource}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(())
    }
}

/// The compatible single-tenant account of `AMI_API_KEY`.
pub const DEFAULT_ACCOUNT: &str = "cust_default";

/// Path account ids: a malformed one is simply not found (and never reaches the store).
fn check_account_id(id: &str) -> Result<()> {
    if id == DEFAULT_ACCOUNT || ami_core::id::is_well_formed("acct", id) {
        Ok(())
    } else {
        Err(Error::not_found(ACCOUNT))
    }
}

fn subject(account_id: &str) -> Subject<'_> {
    Subject {
        account_id: Some(account_id),
        entity_type: ACCOUNT,
        entity_id: account_id,
        mid: None,
    }
}

/// Every number from `from` to `to` inclusive; same length, at most the load maximum.
fn number_range(from: &str, to: &str) -> Result<Vec<E164>> {
    let bad = || {
        Error::invalid(
            "range",
            "from and to must be E.164 numbers of the same length, from <= to",
        )
    };
    let (a, b) = (
        E164::parse(from).map_err(|_| bad())?,
        E164::parse(to).map_err(|_| bad())?,
    );
    if a.as_str().len() != b.as_str().len() {
        return Err(bad());
    }
    let (lo, hi): (u64, u64) = (
        a.as_str()[1..].parse().map_err(|_| bad())?,
        b.as_str()[1..].parse().map_err(|_| bad())?,
    );
    if hi < lo || hi - lo >= MAX_NUMBERS_PER_LOAD as u64 {
        return Err(Error::invalid(
            "range",
            format!("a range holds 1 to {MAX_NUMBERS_PER_LOAD} numbers"),
        ));
    }
    (lo..=hi)
        .map(|n| E164::parse(&format!("+{n}")).map_err(|_| bad()))
        .collect()
}

impl Services {
    /// Start-up bootstrap of `AMI_API_KEY`: the account exists and its key is that value.
    pub async fn ensure_default_account(&self, api_key: &str) -> Result<()> {
        let now = self.now();
        let hash = secret::hash(api_key);
        // The server's own start, from its configuration.
        let default_account = self.row_account(DEFAULT_ACCOUNT);
        let mut tx = self.store.begin().await?;
        match accounts::get(&mut tx, &default_account).await? {
            None => {
                accounts::insert(
                    &mut tx,
                    &accounts::NewAccount {
                        id: DEFAULT_ACCOUNT,
                        name: "default",
                        billing_email: None,
                        key_hash: &hash,
                        key_prefix: &secret::display_prefix(api_key),
                        now,
                    },
                )
                .await?;
                self.audit(
                    &mut tx,
                    &Actor::System,
                    "account_created",
                    subject(DEFAULT_ACCOUNT),
                    json!({"source": "api_key_bootstrap"}),
                )
                .await?;
            }
            Some(_) => {
                if ami_store::system::accounts::by_key_hash(self.system(), &mut tx, &hash)
                    .await?
                    .is_none()
                {
                    accounts::set_key(
                        &mut tx,
                        &default_account,
                        &hash,
                        &secret::display_prefix(api_key),
                        now,
                    )
                    .await?;
                    self.audit(
                        &mut tx,
                        &Actor::System,
                        "api_key_rotated",
                        subject(DEFAULT_ACCOUNT),
                        json!({"source": "api_key_bootstrap"}),
                    )
                    .await?;
                }
            }
        }
        ami_store::commit(tx).await?;
        Ok(())
    }

    /// Loads a sandbox pool range for a country unless that country already has numbers.
    /// Loads `count` consecutive fictional numbers from `from` into `pool`, once: a pool that
    /// already holds numbers of the country is left as it is.
    pub async fn seed_number_pool(
        &self,
        pool: numbers::Pool,
        country: &str,
        from: &str,
        count: usize,
    ) -> Result<u64> {
        let mut conn = self.store.reader().await?;
        if numbers::count_in(&mut conn, pool, country).await? > 0 || count == 0 {
            return Ok(0);
        }
        drop(conn);
        let start =
            E164::parse(from).map_err(|_| Error::invalid("sandbox_pool", "from must be E.164"))?;
        let first: u64 = start.as_str()[1..]
            .parse()
            .map_err(|_| Error::invalid("sandbox_pool", "from"))?;
        let to = format!("+{}", first + count as u64 - 1);
        let list = number_range(start.as_str(), &to)?;
        let strings: Vec<String> = list.iter().map(|n| n.as_str().to_owned()).collect();
        let mut tx = self.store.begin().await?;
        let added = numbers::insert_many_into(&mut tx, pool, country, &strings, self.now()).await?;
        self.audit(
            &mut tx,
            &Actor::System,
            "numbers_loaded",
            Subject { account_id: None, entity_type: "number_inventory", entity_id: country, mid: None },
            json!({"country": country, "requested": strings.len(), "added": added, "source": format!("{}_pool", pool.as_str())}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(added)
    }
}
