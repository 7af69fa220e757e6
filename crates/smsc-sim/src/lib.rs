//! An SMSC simulator: enough of an SMPP 3.4 server to test and measure an ESME against,
//! including the faults a real SMSC shows (throttling, dropped connections, late and
//! out-of-order responses, receipts before responses, unbinds, garbage bytes).
