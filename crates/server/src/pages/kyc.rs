//! The representative's KYC page: who asks, the identity form with the ID document's two
//! sides, or where the check stands. No script; the form posts to itself.

use ami_services::kyc::{DOCUMENT_TYPES, KycPageView};

use super::{STYLE, escape};

fn document_label(t: &str) -> &'static str {
    match t {
        "passport" => "Passport",
        "id_card" => "National identity card",
        "residence_permit" => "Residence permit",
        _ => "Driving licence",
    }
}

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title><style>{STYLE}\
         label{{display:block;margin:.8rem 0 .2rem;font-weight:600}}input,select{{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}}\
         </style></head><body>{body}</body></html>",
        title = escape(title),
    )
}

/// The page for a check; `notice` is the outcome of a submission (`Ok`) or its refusal.
pub fn render(v: &KycPageView, token: &str, notice: Option<Result<&str, &str>>) -> String {
    let notice_html = match notice {
        Some(Ok(text)) => format!("<p class=\"notice\" role=\"status\">{}</p>", escape(text)),
        Some(Err(text)) => format!(
            "<p class=\"notice warn\" role=\"alert\">{}</p>",
            escape(text)
        ),
        None => String::new(),
    };
    let state = match (v.status.as_str(), v.expired) {
        ("pending", true) => "This link has expired. Ask the customer for a new one.".to_owned(),
        ("pending", false) => String::new(),
        ("submitted", _) => "Your details were received and are being reviewed.".to_owned(),
        ("verified", _) => "Your identity has been verified.".to_owned(),
        _ => "This verification was not accepted. The customer has been told why.".to_owned(),
    };
    let state_html = if state.is_empty() || notice.is_some_and(|n| n.is_ok()) {
        String::new()
    } else {
        format!("<p class=\"notice\">{}</p>", escape(&state))
    };
    let form = if v.status == "pending" && !v.expired {
        let options: String = DOCUMENT_TYPES
            .iter()
            .map(|t| format!("<option value=\"{t}\">{}</option>", document_label(t)))
            .collect();
        let max = match v.max_document_bytes {
            n if n >= 1024 * 1024 => format!("{:.1} MB", n as f64 / (1024.0 * 1024.0)),
            n => format!("{} KB", n / 1024),
        };
        format!(
            "<form method=\"post\" action=\"/kyc/{token}/submit\" enctype=\"multipart/form-data\">\
             <label for=\"full_name\">Full name, as on the document</label>\
             <input id=\"full_name\" name=\"full_name\" required maxlength=\"200\" autocomplete=\"name\">\
             <label for=\"date_of_birth\">Date of birth</label>\
             <input id=\"date_of_birth\" name=\"date_of_birth\" type=\"date\" required>\
             <label for=\"nationality\">Nationality (two-letter country code, e.g. ES)</label>\
             <input id=\"nationality\" name=\"nationality\" required minlength=\"2\" maxlength=\"2\">\
             <label for=\"document_type\">Document</label>\
             <select id=\"document_type\" name=\"document_type\" required>{options}</select>\
             <label for=\"document_number\">Document number</label>\
             <input id=\"document_number\" name=\"document_number\" required maxlength=\"40\">\
             <label for=\"document_front\">Front of the document (JPEG, PNG or PDF, at most {max})</label>\
             <input id=\"document_front\" name=\"document_front\" type=\"file\" required accept=\"image/jpeg,image/png,application/pdf\">\
             <label for=\"document_back\">Back of the document (JPEG, PNG or PDF, at most {max})</label>\
             <input id=\"document_back\" name=\"document_back\" type=\"file\" required accept=\"image/jpeg,image/png,application/pdf\">\
             <p>The details can be sent once. The document images are deleted after the review's retention period.</p>\
             <button type=\"submit\">Send for verification</button></form>",
            token = escape(token),
        )
    } else {
        String::new()
    };
    shell(
        &format!("AMI identity check {}", v.kyc_id),
        &format!(
            "<h1>Identity check</h1>{notice_html}{state_html}\
             <table><tr><th>Check</th><td><code>{id}</code></td></tr>\
             <tr><th>Customer</th><td>{name}</td></tr>\
             <tr><th>Representative</th><td>{rep}</td></tr>\
             <tr><th>Status</th><td>{status}</td></tr>\
             <tr><th>Link valid until</th><td>{expires}</td></tr></table>\
             <p>{name} asks {rep}, as its representative, to confirm their identity before contracting a mobile identity.</p>{form}",
            id = escape(&v.kyc_id),
            name = escape(&v.legal_name),
            rep = escape(&v.representative_name),
            status = escape(&v.status),
            expires = escape(&v.expires_at),
        ),
    )
}

pub fn not_found() -> String {
    shell(
        "Not found",
        "<h1>Not found</h1><p>This verification link is not valid. Ask for a new link from whoever sent it.</p>",
    )
}

/// A refused submission when the check itself cannot be shown (a body that is no form).
pub fn refused(message: &str) -> String {
    shell(
        "Not accepted",
        &format!(
            "<h1>Not accepted</h1><p class=\"notice warn\" role=\"alert\">{}</p>",
            escape(message)
        ),
    )
}
