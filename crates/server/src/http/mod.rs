pub mod error;
pub mod hygiene;
pub mod json;
pub mod query;
pub mod request_id;
pub mod auth;
pub mod idempotency;
