//! The SMPP 3.4 carrier: SMS go to SMSCs over one or more binds, receipts and
//! mobile-originated messages come back as carrier events, acknowledged (`deliver_sm_resp`)
//! only once committed.

pub mod inbound;
pub mod pdu;
pub mod receipt;
pub mod text;
