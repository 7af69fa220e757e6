//! The SMPP 3.4 carrier: SMS go to SMSCs over one or more binds, receipts and
//! mobile-originated messages come back as carrier events, acknowledged (`deliver_sm_resp`)
//! only once committed.

mod carrier;
mod client;
pub mod inbound;
mod incoming;
mod link;
mod pace;
pub mod pdu;
pub mod receipt;
mod session;
pub mod settings;
pub mod status;
pub mod text;

pub use carrier::Smpp;
pub use session::{Counters, Role, Session, probe};
pub use settings::{BindMode, Connection, Route, Settings};
