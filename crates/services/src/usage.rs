//! Usage snapshots (PROTOCOL §6), for the agent and for its customer.

use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use ami_core::policy;
use ami_store::{AccountId, mids, usage};

use crate::auth::{AgentCaller, CustomerCaller};
use crate::{Error, Result, Services, validate};

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageSnapshot {
    pub mid: String,
    #[schema(value_type = Object)]
    pub usage: Value,
    #[schema(value_type = Object)]
    pub limits: Value,
    #[schema(value_type = Object)]
    pub pricing: Value,
    #[schema(value_type = Object)]
    pub consumed_pct: Value,
}

impl Services {
    pub async fn agent_usage(&self, agent: &AgentCaller) -> Result<UsageSnapshot> {
        self.usage_snapshot(&agent.account_id, agent.mid_id.as_str())
            .await
    }

    pub async fn mid_usage(&self, caller: &CustomerCaller, mid_id: &str) -> Result<UsageSnapshot> {
        validate::id("mid", "mobile_identity", mid_id)?;
        self.usage_snapshot(&caller.account_id, mid_id).await
    }

    async fn usage_snapshot(&self, account_id: &AccountId, mid_id: &str) -> Result<UsageSnapshot> {
        let now = self.now();
        let mut conn = self.store.reader().await?;
        let mid = mids::get(&mut conn, account_id, mid_id)
            .await?
            .ok_or_else(|| Error::not_found("mobile_identity"))?;
        let limits = crate::mids::stored_limits(&mid)?;
        let u = policy::rolled(&usage::read(&mut conn, account_id, mid_id).await?, now);
        let country = self.country(&mid.country);
        let money = ami_core::money::to_json;
        let pct: Map<String, Value> = policy::consumed_pct(&limits, &u, now)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        Ok(UsageSnapshot {
            mid: mid.id,
            usage: json!({
                "sms_count_this_hour": u.sms_hour,
                "sms_count_today": u.sms_day,
                "calls_count_this_hour": u.calls_hour,
                "calls_count_today": u.calls_day,
                "calls_minutes_this_month": ami_core::delivery::billable_minutes(u.call_seconds_month),
                "spend_this_month_eur": money(u.spend_month),
                "remaining_budget_eur": money((limits.monthly_budget - u.spend_month).max(0)),
                "window_hour_start": ami_core::time::rfc3339(u.hour_start.max(policy::hour_start(now))),
                "window_month_start": ami_core::time::rfc3339(policy::month_start(now)),
            }),
            limits: limits.to_json(),
            pricing: json!({
                "sms_eur": money(country.map_or(0, |c| c.sms_price_eur)),
                "call_per_min_eur": money(country.map_or(0, |c| c.call_per_min_eur)),
            }),
            consumed_pct: Value::Object(pct),
        })
    }
}
