//! One carrier per channel: SMS through one network (SMPP, say), calls through another.

use std::sync::Arc;

use crate::{BoxFuture, Carrier, Lookup, OutboundCall, OutboundSms, SubmitError};

pub struct Channels {
    pub sms: Arc<dyn Carrier>,
    pub calls: Arc<dyn Carrier>,
}

impl Carrier for Channels {
    fn name(&self) -> &'static str {
        self.sms.name()
    }

    /// Asked for both channels at once: only when both can answer.
    fn looks_up(&self) -> bool {
        self.sms.looks_up() && self.calls.looks_up()
    }

    fn reports_by_reference(&self) -> bool {
        self.sms.reports_by_reference()
    }

    fn submit_sms(&self, sms: OutboundSms) -> BoxFuture<'_, Result<String, SubmitError>> {
        self.sms.submit_sms(sms)
    }

    fn submit_sms_batch(
        &self,
        batch: Vec<OutboundSms>,
    ) -> BoxFuture<'_, Vec<Result<String, SubmitError>>> {
        self.sms.submit_sms_batch(batch)
    }

    fn find_sms(&self, msg_id: &str) -> BoxFuture<'_, Lookup> {
        self.sms.find_sms(msg_id)
    }

    fn place_call(&self, call: OutboundCall) -> BoxFuture<'_, Result<String, SubmitError>> {
        self.calls.place_call(call)
    }

    fn find_call(&self, call_id: &str) -> BoxFuture<'_, Lookup> {
        self.calls.find_call(call_id)
    }

    fn hang_up(&self, telco_ref: String) -> BoxFuture<'_, Result<(), SubmitError>> {
        self.calls.hang_up(telco_ref)
    }
}
