//! Domain types and pure rules of AMI. Nothing here performs IO, so every rule is unit-testable.

pub mod audit;
pub mod currency;
pub mod delivery;
pub mod id;
pub mod json;
pub mod limits;
pub mod money;
pub mod phone;
pub mod policy;
pub mod secret;
pub mod sim_request;
pub mod sip;
pub mod sms;
pub mod text;
pub mod time;
pub mod webhook_event;
