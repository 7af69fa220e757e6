pub mod auth;
pub mod error;
pub mod hygiene;
pub mod idempotency;
pub mod json;
pub mod mcp_gate;
pub mod query;
pub mod request_id;
