//! What an agent may ask about itself (PROTOCOL §3.5).

use ami_store::mids;

use crate::auth::AgentCaller;
use crate::views::AgentSelf;
use crate::{Error, Result, Services};

impl Services {
    pub async fn agent_self(&self, caller: &AgentCaller) -> Result<AgentSelf> {
        let mut conn = self.store.reader().await?;
        let mid = mids::get(&mut conn, &caller.account_id, caller.mid_id.as_str())
            .await?
            .ok_or_else(|| Error::not_found("mobile_identity"))?;
        Ok(AgentSelf {
            mobile_identity_id: mid.id,
            customer_id: mid.account_id,
            phone_number: mid.phone_number,
            capabilities: serde_json::from_str(&mid.capabilities).unwrap_or_default(),
            token_prefix: caller.token_prefix.clone(),
            token_created_at: ami_core::time::rfc3339(caller.token_created_at),
            status: mid.status,
        })
    }
}
