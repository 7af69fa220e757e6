//! The identity check of the customer's representative (KYC) in contracting: the customer
//! starts it for a SIM request once the customer data is in; the representative opens the
//! link, declares their identity and uploads the ID document's front and back; the operator
//! verifies or rejects; the documents are purged once the retention after the decision has
//! passed. With `kyc_required`, no contract is made before the check is verified.
//!
//! The link's token is shown once, in the response that made it, and stored only as its
//! SHA-256; the page finds the check by that hash and compares it again in constant time.
//! The audit log records each step, never the identity data or the documents.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use ami_core::secret;
use ami_core::sim_request::Status;
use ami_core::webhook_event::WebhookEvent;
use ami_store::contracting as rows;
use ami_store::kyc::{self as kyc_rows, DocumentMeta, Identity, KycCheck, NewDocument};
use ami_store::page::PageRequest;
use ami_store::{AccountId, Conn};

use crate::audit_log::Subject;
use crate::auth::{Actor, AdminCaller, CustomerCaller};
use crate::{Error, Result, Services, validate};

const KYC: &str = "kyc";

/// The KYC settings (`kyc_*` keys of the configuration).
#[derive(Debug, Clone)]
pub struct KycSettings {
    /// No contract before the SIM request's KYC is verified.
    pub required: bool,
    /// How long a verification link stays usable.
    pub link_ttl_ms: i64,
    /// How long the documents are kept after the operator's decision.
    pub retention_ms: i64,
    /// The largest accepted file, per side of the document.
    pub max_document_bytes: usize,
}

impl Default for KycSettings {
    fn default() -> Self {
        Self {
            required: false,
            link_ttl_ms: 7 * ami_core::time::DAY_MS,
            retention_ms: 30 * ami_core::time::DAY_MS,
            max_document_bytes: 5 * 1024 * 1024,
        }
    }
}

/// The kinds of ID document the page accepts.
pub const DOCUMENT_TYPES: [&str; 4] =
    ["passport", "id_card", "residence_permit", "driving_licence"];

/// How the representative learns of the check. This server sends no e-mail or SMS on its
/// own: the customer hands the link over.
#[derive(Debug, Serialize, ToSchema)]
pub struct KycNotification {
    /// `manual`: the customer passes `verification_url` to the representative.
    pub channel: String,
    /// Whether the server itself reached the representative (never, today).
    pub sent: bool,
    /// The representative named in the customer data.
    pub recipient: String,
    pub message: String,
}

/// `POST /v1/sim-requests/{id}/kyc/initiate`.
#[derive(Serialize, ToSchema)]
pub struct KycInitiated {
    pub kyc_id: String,
    /// `pending`, or the existing check's status when `already_existed`.
    pub status: String,
    /// The representative's page, with its secret token: shown in this response only. A
    /// repeated initiation of a pending check hands out a new link (the previous one stops
    /// working); null when the check is past `pending`.
    pub verification_url: Option<String>,
    pub expires_at: String,
    pub notification: KycNotification,
    /// True (status 200) when the SIM request already had a live check.
    pub already_existed: bool,
}

/// Never prints the link: it carries the token.
impl std::fmt::Debug for KycInitiated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KycInitiated")
            .field("kyc_id", &self.kyc_id)
            .field("status", &self.status)
            .field("already_existed", &self.already_existed)
            .finish_non_exhaustive()
    }
}

/// A check as its customer sees it: the state, never the identity data or documents.
#[derive(Debug, Serialize, ToSchema)]
pub struct KycView {
    pub kyc_id: String,
    pub sim_request_id: String,
    /// `pending`, `submitted`, `verified` or `rejected`.
    pub status: String,
    /// When the link stops working, if nothing was submitted.
    pub expires_at: String,
    pub created_at: String,
    pub submitted_at: Option<String>,
    pub decided_at: Option<String>,
    /// The operator's reason, for a rejection.
    pub reason: Option<String>,
    /// Whether the documents were deleted after the retention.
    pub documents_purged: bool,
}

impl KycView {
    fn from_row(k: &KycCheck) -> Self {
        KycView {
            kyc_id: k.id.clone(),
            sim_request_id: k.sim_request_id.clone(),
            status: k.status.clone(),
            expires_at: ami_core::time::rfc3339(k.expires_at),
            created_at: ami_core::time::rfc3339(k.created_at),
            submitted_at: k.submitted_at.map(ami_core::time::rfc3339),
            decided_at: k.decided_at.map(ami_core::time::rfc3339),
            reason: k.reason.clone(),
            documents_purged: k.purged_at.is_some(),
        }
    }
}

/// What the representative declared.
#[derive(Debug, Serialize, ToSchema)]
pub struct KycIdentity {
    pub full_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub document_type: Option<String>,
    /// Null once purged.
    pub document_number: Option<String>,
}

/// One stored side of the ID document (its content is not in the JSON).
#[derive(Debug, Serialize, ToSchema)]
pub struct KycDocumentView {
    /// `front` or `back`.
    pub side: String,
    pub media_type: String,
    pub size_bytes: i64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
}

impl From<DocumentMeta> for KycDocumentView {
    fn from(d: DocumentMeta) -> Self {
        KycDocumentView {
            side: d.side,
            media_type: d.media_type,
            size_bytes: d.size_bytes,
            sha256: d.sha256,
        }
    }
}

/// A check as the operator reviews it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminKycView {
    #[serde(flatten)]
    pub check: KycView,
    pub account_id: String,
    pub identity: KycIdentity,
    /// Empty before the submission and after the purge.
    pub documents: Vec<KycDocumentView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminKycList {
    pub kyc: Vec<AdminKycView>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

/// `POST /v1/admin/kyc/purge`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KycPurged {
    /// How many checks lost their documents now.
    pub purged: usize,
    pub kyc_ids: Vec<String>,
    /// Documents of checks decided at or before this moment were purged.
    pub decided_before: String,
}

/// What the verification page shows.
#[derive(Debug)]
pub struct KycPageView {
    pub kyc_id: String,
    pub status: String,
    pub expired: bool,
    pub expires_at: String,
    pub legal_name: String,
    pub representative_name: String,
    pub max_document_bytes: usize,
}

/// One uploaded file as the form sent it.
pub struct Upload {
    pub content: Vec<u8>,
}

/// The form of the verification page, parsed by the transport.
#[derive(Default)]
pub struct KycSubmission {
    pub full_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub document_type: Option<String>,
    pub document_number: Option<String>,
    pub document_front: Option<Upload>,
    pub document_back: Option<Upload>,
}

/// The media type of a document, from its first bytes (never from what the browser says).
pub fn sniff_document(content: &[u8]) -> Option<&'static str> {
    if content.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if content.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if content.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

pub const ACCEPTED_MEDIA_TYPES: [&str; 3] = ["image/jpeg", "image/png", "application/pdf"];

fn kyc_subject<'a>(account_id: &'a str, id: &'a str) -> Subject<'a> {
    Subject {
        account_id: Some(account_id),
        entity_type: KYC,
        entity_id: id,
        mid: None,
    }
}

/// `YYYY-MM-DD`, a real calendar date in the past.
fn date_of_birth(v: &str, today_ms: i64) -> Result<String> {
    let bad = || {
        Error::invalid(
            "date_of_birth",
            "date_of_birth must be a past date, YYYY-MM-DD",
        )
    };
    let b = v.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let (y, m, d) = (num(&v[0..4])?, num(&v[5..7])?, num(&v[8..10])?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if y < 1900 || d == 0 || d > days {
        return Err(bad());
    }
    if v >= &ami_core::time::rfc3339(today_ms)[..10] {
        return Err(bad());
    }
    Ok(v.to_owned())
}

impl Services {
    fn verification_url(&self, token: &str) -> String {
        format!(
            "{}/kyc/{token}",
            self.settings.public_base_url.trim_end_matches('/')
        )
    }

    async fn representative_of(
        &self,
        conn: &mut Conn,
        account: &AccountId,
        req: &rows::SimRequest,
    ) -> Result<rows::Customer> {
        let customer_id = req.customer_id.as_deref().ok_or_else(|| {
            Error::conflict(
                "customer_data_missing",
                "submit the customer data of this request before its KYC",
            )
        })?;
        rows::customer(conn, account, customer_id)
            .await?
            .ok_or_else(|| Error::not_found("customer"))
    }

    /// Starts the KYC of a SIM request, or hands back the live one (`already_existed`).
    /// Returns whether a check was created (201) rather than found (200).
    pub async fn initiate_kyc(
        &self,
        caller: &CustomerCaller,
        sim_request_id: &str,
    ) -> Result<(bool, KycInitiated)> {
        let now = self.now();
        let actor = caller.actor();
        let mut tx = self.store.begin().await?;
        let req = self.owned_request(&mut tx, caller, sim_request_id).await?;
        if matches!(req.status.as_str(), "cancelled" | "rejected" | "failed") {
            return Err(Error::invalid_state(
                Status::CustomerDataSubmitted.as_str(),
                &req.status,
            ));
        }
        let customer = self
            .representative_of(&mut tx, &caller.account_id, &req)
            .await?;
        let notification = |url_given: bool| KycNotification {
            channel: "manual".into(),
            sent: false,
            recipient: customer.representative_name.clone(),
            message: if url_given {
                "hand verification_url to the representative: it is shown only now".into()
            } else {
                "the representative has already used the link".into()
            },
        };
        let existing = kyc_rows::latest_for_request(&mut tx, &caller.account_id, &req.id).await?;
        let live = existing
            .filter(|k| k.status != "rejected" && !(k.status == "pending" && k.expires_at <= now));
        if let Some(k) = live {
            let url = if k.status == "pending" {
                let token = secret::new_link_token();
                kyc_rows::replace_token(
                    &mut tx,
                    &caller.account_id,
                    &k.id,
                    &secret::hash(&token),
                    now,
                )
                .await?;
                self.audit(
                    &mut tx,
                    &actor,
                    "kyc_link_reissued",
                    kyc_subject(caller.account_id.as_str(), &k.id),
                    json!({"sim_request_id": &req.id}),
                )
                .await?;
                Some(self.verification_url(&token))
            } else {
                None
            };
            ami_store::commit(tx).await?;
            return Ok((
                false,
                KycInitiated {
                    kyc_id: k.id,
                    status: k.status,
                    notification: notification(url.is_some()),
                    verification_url: url,
                    expires_at: ami_core::time::rfc3339(k.expires_at),
                    already_existed: true,
                },
            ));
        }
        let id = ami_core::id::new_id_at(KYC, now);
        let token = secret::new_link_token();
        let expires_at = now + self.settings.kyc.link_ttl_ms;
        kyc_rows::insert(
            &mut tx,
            &caller.account_id,
            &id,
            &req.id,
            &secret::hash(&token),
            expires_at,
            now,
        )
        .await?;
        self.audit(
            &mut tx,
            &actor,
            "kyc_initiated",
            kyc_subject(caller.account_id.as_str(), &id),
            json!({"sim_request_id": &req.id}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok((
            true,
            KycInitiated {
                kyc_id: id,
                status: "pending".into(),
                verification_url: Some(self.verification_url(&token)),
                expires_at: ami_core::time::rfc3339(expires_at),
                notification: notification(true),
                already_existed: false,
            },
        ))
    }

    /// The SIM request's newest check; 404 `kyc_not_found` when it has none.
    pub async fn get_kyc(&self, caller: &CustomerCaller, sim_request_id: &str) -> Result<KycView> {
        let mut conn = self.store.reader().await?;
        let req = self
            .owned_request(&mut conn, caller, sim_request_id)
            .await?;
        let k = kyc_rows::latest_for_request(&mut conn, &caller.account_id, &req.id)
            .await?
            .ok_or_else(|| Error::not_found(KYC))?;
        Ok(KycView::from_row(&k))
    }

    /// The contract gate of `kyc_required`: the request's newest check must be verified.
    pub(crate) async fn check_kyc_gate(
        &self,
        conn: &mut Conn,
        account: &AccountId,
        sim_request_id: &str,
    ) -> Result<()> {
        if !self.settings.kyc.required {
            return Ok(());
        }
        match kyc_rows::latest_for_request(conn, account, sim_request_id).await? {
            None => Err(Error::conflict(
                "kyc_required",
                "this server requires the representative's KYC before the contract: \
                 POST /v1/sim-requests/{id}/kyc/initiate",
            )
            .with("sim_request_id", sim_request_id)),
            Some(k) if k.status == "verified" => Ok(()),
            Some(k) => Err(Error::conflict(
                "kyc_not_verified",
                format!("the representative's KYC is {}, not verified", k.status),
            )
            .with("kyc_id", k.id)
            .with("status", k.status)),
        }
    }

    /// The check a verification token opens; None for any token that opens nothing.
    async fn kyc_by_token(&self, conn: &mut Conn, token: &str) -> Result<Option<KycCheck>> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let hash = secret::hash(token);
        Ok(kyc_rows::by_token_hash(conn, &hash)
            .await?
            .filter(|(_, stored)| secret::ct_eq(stored.as_bytes(), hash.as_bytes()))
            .map(|(k, _)| k))
    }

    /// The verification page's view; None when the token opens nothing.
    pub async fn kyc_page(&self, token: &str) -> Result<Option<KycPageView>> {
        let mut conn = self.store.reader().await?;
        let Some(k) = self.kyc_by_token(&mut conn, token).await? else {
            return Ok(None);
        };
        let account = self.row_account(&k.account_id);
        let req = rows::sim_request(&mut conn, &account, &k.sim_request_id)
            .await?
            .ok_or_else(|| Error::not_found("sim_request"))?;
        let customer = self.representative_of(&mut conn, &account, &req).await?;
        Ok(Some(KycPageView {
            expired: k.status == "pending" && k.expires_at <= self.now(),
            kyc_id: k.id,
            status: k.status,
            expires_at: ami_core::time::rfc3339(k.expires_at),
            legal_name: customer.legal_name,
            representative_name: customer.representative_name,
            max_document_bytes: self.settings.kyc.max_document_bytes,
        }))
    }

    /// Checks one uploaded side: present, within the size limit, a JPEG, PNG or PDF by its
    /// first bytes.
    fn checked_document<'a>(
        &self,
        field: &str,
        upload: Option<&'a Upload>,
    ) -> Result<(&'static str, &'a [u8])> {
        let max = self.settings.kyc.max_document_bytes;
        let content = upload.map(|u| u.content.as_slice()).unwrap_or_default();
        if content.is_empty() {
            return Err(Error::missing_fields(vec![field.to_owned()]));
        }
        if content.len() > max {
            return Err(Error::refused(
                413,
                "document_too_large",
                format!("{field} is larger than {max} bytes"),
            )
            .with("field", field)
            .with("max_bytes", max));
        }
        let media_type = sniff_document(content).ok_or_else(|| {
            Error::refused(
                415,
                "unsupported_document_type",
                format!("{field} must be a JPEG or PNG image or a PDF"),
            )
            .with("field", field)
            .with("accepted", ACCEPTED_MEDIA_TYPES.to_vec())
        })?;
        Ok((media_type, content))
    }

    /// The representative's one submission. None when the token opens nothing; refused with
    /// 409 `kyc_already_submitted` after the first, 410 `kyc_link_expired` past the link's
    /// life. Nothing is stored unless everything is valid.
    pub async fn submit_kyc(&self, token: &str, form: KycSubmission) -> Result<Option<KycView>> {
        let now = self.now();
        {
            let mut conn = self.store.reader().await?;
            let Some(k) = self.kyc_by_token(&mut conn, token).await? else {
                return Ok(None);
            };
            refuse_unless_open(&k, now)?;
        }
        let mut missing = Vec::new();
        for (field, value) in [
            ("full_name", &form.full_name),
            ("date_of_birth", &form.date_of_birth),
            ("nationality", &form.nationality),
            ("document_type", &form.document_type),
            ("document_number", &form.document_number),
        ] {
            if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                missing.push(field.to_owned());
            }
        }
        for (field, upload) in [
            ("document_front", &form.document_front),
            ("document_back", &form.document_back),
        ] {
            if upload.as_ref().is_none_or(|u| u.content.is_empty()) {
                missing.push(field.to_owned());
            }
        }
        if !missing.is_empty() {
            return Err(Error::missing_fields(missing));
        }
        let full_name = validate::required_name("full_name", form.full_name.as_deref(), 200)?;
        let dob = date_of_birth(
            form.date_of_birth.as_deref().unwrap_or_default().trim(),
            now,
        )?;
        let nationality = form
            .nationality
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase();
        if nationality.len() != 2 || !nationality.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Error::invalid(
                "nationality",
                "nationality must be a two-letter ISO 3166 country code",
            ));
        }
        let document_type = form.document_type.as_deref().unwrap_or_default().trim();
        if !DOCUMENT_TYPES.contains(&document_type) {
            return Err(Error::invalid(
                "document_type",
                format!("document_type must be one of {}", DOCUMENT_TYPES.join(", ")),
            )
            .with("accepted", DOCUMENT_TYPES.to_vec()));
        }
        let number = form.document_number.as_deref().unwrap_or_default().trim();
        if number.len() > 40
            || !number
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b' ')
        {
            return Err(Error::invalid(
                "document_number",
                "document_number is at most 40 letters, digits, spaces or hyphens",
            ));
        }
        let front = self.checked_document("document_front", form.document_front.as_ref())?;
        let back = self.checked_document("document_back", form.document_back.as_ref())?;

        let mut tx = self.store.begin().await?;
        let Some(k) = self.kyc_by_token(&mut tx, token).await? else {
            return Ok(None);
        };
        refuse_unless_open(&k, now)?;
        let account = self.row_account(&k.account_id);
        let identity = Identity {
            full_name: &full_name,
            date_of_birth: &dob,
            nationality: &nationality,
            document_type,
            document_number: number,
        };
        if !kyc_rows::record_submission(&mut tx, &account, &k.id, &identity, now).await? {
            return Err(already_submitted());
        }
        let mut sizes = Vec::new();
        for (side, (media_type, content)) in [("front", front), ("back", back)] {
            let sha = hex::encode(Sha256::digest(content));
            kyc_rows::insert_document(
                &mut tx,
                &account,
                &k.id,
                &NewDocument {
                    side,
                    media_type,
                    sha256: &sha,
                    content,
                },
                now,
            )
            .await?;
            sizes
                .push(json!({"side": side, "media_type": media_type, "size_bytes": content.len()}));
        }
        // The representative acts through the customer's link, as on the signing page.
        let actor = Actor::Customer(k.account_id.clone());
        self.audit(
            &mut tx,
            &actor,
            "kyc_submitted",
            kyc_subject(&k.account_id, &k.id),
            json!({"sim_request_id": &k.sim_request_id, "document_type": document_type, "documents": sizes}),
        )
        .await?;
        self.emit_account(
            &mut tx,
            &k.account_id,
            WebhookEvent::KycSubmitted,
            json!({"kyc_id": &k.id, "sim_request_id": &k.sim_request_id, "status": "submitted"}),
        )
        .await?;
        let stored = kyc_rows::get(&mut tx, &account, &k.id)
            .await?
            .ok_or_else(|| Error::not_found(KYC))?;
        ami_store::commit(tx).await?;
        Ok(Some(KycView::from_row(&stored)))
    }

    async fn admin_view(&self, conn: &mut Conn, k: KycCheck) -> Result<AdminKycView> {
        let account = self.row_account(&k.account_id);
        let documents = kyc_rows::documents(conn, &account, &k.id)
            .await?
            .into_iter()
            .map(KycDocumentView::from)
            .collect();
        Ok(AdminKycView {
            check: KycView::from_row(&k),
            account_id: k.account_id,
            identity: KycIdentity {
                full_name: k.full_name,
                date_of_birth: k.date_of_birth,
                nationality: k.nationality,
                document_type: k.document_type,
                document_number: k.document_number,
            },
            documents,
        })
    }

    /// The review queue: every account's checks, newest first, optionally of one status.
    pub async fn list_kyc(
        &self,
        admin: &AdminCaller,
        status: Option<&str>,
        page: &PageRequest,
    ) -> Result<AdminKycList> {
        if let Some(s) = status
            && !["pending", "submitted", "verified", "rejected"].contains(&s)
        {
            return Err(Error::invalid(
                "status",
                "status must be pending, submitted, verified or rejected",
            ));
        }
        let mut conn = self.store.reader().await?;
        let p = ami_store::system::kyc::list(admin.operator(), &mut conn, status, page).await?;
        let mut kyc = Vec::with_capacity(p.items.len());
        for k in p.items {
            kyc.push(self.admin_view(&mut conn, k).await?);
        }
        drop(conn);
        self.audit_admin_read("kyc").await?;
        Ok(AdminKycList {
            count: kyc.len(),
            kyc,
            next_cursor: p.next_cursor,
        })
    }

    /// submitted → verified or rejected, audited and announced to the account's webhooks.
    pub async fn decide_kyc(
        &self,
        admin: &AdminCaller,
        id: &str,
        verified: bool,
        reason: Option<&str>,
    ) -> Result<AdminKycView> {
        validate::id(KYC, KYC, id)?;
        let reason = if verified {
            None
        } else {
            Some(validate::required_text("reason", reason, 500)?)
        };
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let k = ami_store::system::kyc::get(admin.operator(), &mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found(KYC))?;
        let account = admin.chosen_account(&k.account_id);
        let to = if verified { "verified" } else { "rejected" };
        if !kyc_rows::decide(&mut tx, &account, id, to, reason.as_deref(), now).await? {
            return Err(Error::conflict(
                "kyc_not_submitted",
                format!(
                    "only a submitted KYC can be decided; this one is {}",
                    k.status
                ),
            )
            .with("status", k.status));
        }
        self.audit(
            &mut tx,
            &Actor::Admin,
            &format!("kyc_{to}"),
            kyc_subject(&k.account_id, id),
            json!({"sim_request_id": &k.sim_request_id, "reason": reason.as_deref()}),
        )
        .await?;
        let event = if verified {
            WebhookEvent::KycVerified
        } else {
            WebhookEvent::KycRejected
        };
        self.emit_account(
            &mut tx,
            &k.account_id,
            event,
            json!({"kyc_id": id, "sim_request_id": &k.sim_request_id, "status": to, "reason": reason.as_deref()}),
        )
        .await?;
        let stored = kyc_rows::get(&mut tx, &account, id)
            .await?
            .ok_or_else(|| Error::not_found(KYC))?;
        let view = self.admin_view(&mut tx, stored).await?;
        ami_store::commit(tx).await?;
        Ok(view)
    }

    /// Deletes the documents of every check decided longer ago than the retention; the
    /// operator's route and the periodic sweep both come here.
    pub async fn purge_kyc_documents(&self, admin: Option<&AdminCaller>) -> Result<KycPurged> {
        let now = self.now();
        let decided_before = now - self.settings.kyc.retention_ms;
        let mut tx = self.store.begin().await?;
        let purged = match admin {
            Some(a) => {
                ami_store::system::kyc::purge(a.operator(), &mut tx, decided_before, now).await?
            }
            None => {
                ami_store::system::kyc::purge(self.system(), &mut tx, decided_before, now).await?
            }
        };
        let actor = if admin.is_some() {
            Actor::Admin
        } else {
            Actor::System
        };
        for (id, account) in &purged {
            self.audit(
                &mut tx,
                &actor,
                "kyc_documents_purged",
                kyc_subject(account, id),
                json!({"retention_days": self.settings.kyc.retention_ms / ami_core::time::DAY_MS}),
            )
            .await?;
        }
        if admin.is_some() {
            // The operator's run is audited even when it found nothing to purge.
            self.audit(
                &mut tx,
                &Actor::Admin,
                "kyc_purge_run",
                Subject {
                    account_id: None,
                    entity_type: KYC,
                    entity_id: KYC,
                    mid: None,
                },
                json!({"purged": purged.len()}),
            )
            .await?;
        }
        ami_store::commit(tx).await?;
        Ok(KycPurged {
            purged: purged.len(),
            kyc_ids: purged.into_iter().map(|(id, _)| id).collect(),
            decided_before: ami_core::time::rfc3339(decided_before),
        })
    }
}

fn already_submitted() -> Error {
    Error::conflict(
        "kyc_already_submitted",
        "this verification has already been submitted; it can be sent only once",
    )
}

/// A check takes a submission only while pending and within its link's life.
fn refuse_unless_open(k: &KycCheck, now: i64) -> Result<()> {
    if k.status != "pending" {
        return Err(already_submitted().with("status", k.status.clone()));
    }
    if k.expires_at <= now {
        return Err(Error::refused(
            410,
            "kyc_link_expired",
            "this verification link has expired; ask for a new one",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_judged_by_their_first_bytes() {
        assert_eq!(
            sniff_document(&[0xFF, 0xD8, 0xFF, 0xE0, 0]),
            Some("image/jpeg")
        );
        assert_eq!(sniff_document(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_document(b"%PDF-1.7\n"), Some("application/pdf"));
        for bad in [&b"GIF89a"[..], b"<svg", b"", b"\xFF\xD8", b"%PDF"] {
            assert_eq!(sniff_document(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_of_birth() {
        let now = 1_795_946_400_000; // 2026-11-29
        assert_eq!(date_of_birth("1980-02-29", now).unwrap(), "1980-02-29");
        for bad in [
            "1981-02-29",
            "1980-13-01",
            "1980-00-10",
            "80-01-01",
            "2027-01-01",
            "1980/01/01",
            "1899-12-31",
            "2026-11-29",
        ] {
            assert!(date_of_birth(bad, now).is_err(), "{bad}");
        }
    }
}
