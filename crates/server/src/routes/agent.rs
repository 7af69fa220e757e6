//! `/v1/agent/*`: what an agent token may do (PROTOCOL §3.5).

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::views::AgentSelf;

use super::{ApiResult, ErrorBody};
use crate::app::AppState;
use crate::http::auth::Agent;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(agent_self))
}

#[utoipa::path(get, path = "/v1/agent/self", tag = "agent", security(("agentBearer" = [])),
    responses((status = 200, body = AgentSelf), (status = 401, body = ErrorBody)))]
async fn agent_self(State(s): State<AppState>, Agent(a): Agent) -> ApiResult<AgentSelf> {
    Ok(Json(s.services.agent_self(&a).await?))
}
