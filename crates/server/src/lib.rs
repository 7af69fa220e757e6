//! The `ami` server: HTTP transport, pages and CLI over the AMI services.

pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod doctor;
mod doctor_sip;
pub mod http;
pub mod idempotency_sweep;
pub mod kyc_sweep;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod restore;
pub mod routes;
pub mod secrets_key;
pub mod serve;
mod smpp_metrics;
pub mod traces;
pub mod voice;
mod voice_metrics;
pub mod webhook_verify;
mod webhook_worker;
pub mod workers;
