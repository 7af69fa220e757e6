//! Delivery receipts that name only the carrier's reference (SMPP). The hand-off records which
//! message each reference names (`carrier_refs`); a receipt finds its message there, or, when
//! it overtook the hand-off's commit, waits there until the hand-off finds it.

use std::collections::{HashMap, HashSet};

use ami_core::delivery::SmsStatus;
use ami_store::carrier_refs;

use crate::auth::Actor;
use crate::sms::SmsReport;
use crate::{Result, Services};

/// Receipts still waiting for their reference after this long are dropped.
const ORPHAN_AFTER_MS: i64 = 7 * 86_400_000;
/// Waiting receipts applied per sweep.
const SWEEP_BATCH: i64 = 500;

impl Services {
    /// The messages the references name, by reference.
    pub(crate) async fn receipt_messages(
        &self,
        telco_refs: &[&str],
    ) -> Result<HashMap<String, String>> {
        if telco_refs.is_empty() {
            return Ok(HashMap::new());
        }
        let mut conn = self.store.read_conn().await?;
        Ok(carrier_refs::messages(&mut conn, telco_refs).await?)
    }

    /// One receipt: applied to its message, or kept until the hand-off records its reference.
    pub(crate) async fn apply_receipt(
        &self,
        telco_ref: &str,
        status: SmsStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let known = self.receipt_messages(&[telco_ref]).await?;
        let msg_id = match known.get(telco_ref) {
            Some(msg_id) => msg_id.clone(),
            None => {
                let mut tx = self.store.begin_write().await?;
                let found =
                    carrier_refs::hold(tx.db(), telco_ref, status.as_str(), error, self.now())
                        .await?;
                tx.commit().await?;
                let Some(msg_id) = found else {
                    tracing::info!(
                        telco_ref,
                        "receipt before its hand-off was recorded; it waits"
                    );
                    return Ok(());
                };
                msg_id
            }
        };
        self.apply_sms_status(&Actor::Telco, &msg_id, status, Some(telco_ref), error)
            .await?;
        self.settle_receipts(&[telco_ref]).await
    }

    /// After hand-offs to a carrier that reports by reference are committed, with their
    /// references: the messages are `sent`, then the receipts that overtook the hand-offs
    /// apply. Only after that commit: a message reported `sent` always has its reference
    /// recorded, so its receipt always finds it. A crash before this leaves the messages
    /// `queued` with their hand-off recorded; their receipts still move them on.
    pub(crate) async fn report_hand_offs(
        &self,
        handed: Vec<(String, String)>,
        early: Vec<carrier_refs::Early>,
    ) -> Result<()> {
        let sent = handed.into_iter().map(|(msg_id, telco_ref)| SmsReport {
            msg_id,
            status: SmsStatus::Sent,
            telco_ref: Some(telco_ref),
            error: None,
        });
        self.apply_early_receipts_after(sent.collect(), early).await
    }

    /// Applies receipts that arrived before their hand-off was recorded, then lets them go.
    /// A failure leaves them waiting for [`Services::apply_ripe_receipts`].
    pub(crate) async fn apply_early_receipts(&self, early: Vec<carrier_refs::Early>) -> Result<()> {
        self.apply_early_receipts_after(Vec::new(), early).await
    }

    /// `first`, then the early receipts, in one batch of reports.
    async fn apply_early_receipts_after(
        &self,
        first: Vec<SmsReport>,
        early: Vec<carrier_refs::Early>,
    ) -> Result<()> {
        if first.is_empty() && early.is_empty() {
            return Ok(());
        }
        let mut reports = first;
        reports.extend(early.iter().filter_map(|e| {
            Some(SmsReport {
                msg_id: e.msg_id.clone(),
                status: SmsStatus::parse(&e.status)?,
                telco_ref: Some(e.telco_ref.clone()),
                error: e.error.clone(),
            })
        }));
        // Should the batch fail (on PostgreSQL, a deadlock with another batch), each report
        // is tried alone, in order (`sent` before the receipt that follows it); a receipt that
        // still fails keeps waiting for the sweep.
        let mut unapplied = HashSet::new();
        if self
            .apply_sms_statuses(&Actor::Telco, &reports)
            .await
            .is_err()
        {
            for report in &reports {
                if let Err(e) = self
                    .apply_sms_statuses(&Actor::Telco, std::slice::from_ref(report))
                    .await
                {
                    tracing::warn!(error = %e, sms = %report.msg_id, "a report of a hand-off was not applied");
                    unapplied.extend(report.telco_ref.clone());
                }
            }
        }
        let refs: Vec<&str> = early
            .iter()
            .map(|e| e.telco_ref.as_str())
            .filter(|r| !unapplied.contains(*r))
            .collect();
        if refs.is_empty() {
            return Ok(());
        }
        self.settle_receipts(&refs).await
    }

    async fn settle_receipts(&self, telco_refs: &[&str]) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        carrier_refs::settle(tx.db(), telco_refs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies receipts whose message became known while the process that recorded it stopped
    /// before applying them, and drops receipts that waited a week for a reference that never
    /// came. Returns how many were applied.
    pub async fn apply_ripe_receipts(&self) -> Result<usize> {
        let mut conn = self.store.read_conn().await?;
        let ripe = carrier_refs::ripe(&mut conn, SWEEP_BATCH).await?;
        drop(conn);
        let count = ripe.len();
        self.apply_early_receipts(ripe).await?;
        let mut tx = self.store.begin_write().await?;
        let dropped = carrier_refs::forget_orphans(tx.db(), self.now() - ORPHAN_AFTER_MS).await?;
        tx.commit().await?;
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "receipts for references no hand-off recorded were dropped"
            );
        }
        Ok(count)
    }
}
