//! What acts across tenants. Every function here takes a [`CrossTenant`] proof first:
//! `&System`, which the services hold for their workers (dispatch, the webhook worker,
//! carrier events, sweeps, authentication's own lookups), or `&Operator`, which only an
//! authenticated operator principal carries. An HTTP or MCP handler holds neither, so it
//! cannot call these; what it can reach, the table modules next to this one, takes the
//! caller's [`AccountId`](crate::AccountId) and puts it in the WHERE clause.
//!
//! [`CrossTenant`]: crate::CrossTenant

pub mod accounts;
pub mod audit;
pub mod calls;
pub mod kyc;
pub mod messages;
pub mod mids;
pub mod webhooks;
