//! Pages and texts served to people and agents: the signing page, the KYC page, `/docs`,
//! `/llms.txt`, the landing page.

pub mod docs;
pub mod kyc;
pub mod landing;
pub mod llms;
pub mod sign;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The generated texts, built once at start from the live route list.
pub struct Pages {
    pub openapi_json: String,
    pub llms_txt: String,
    pub docs_html: String,
}

pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}pre{padding:.8rem;overflow-x:auto}
button{font-size:1.1rem;padding:.6rem 1.4rem;border-radius:6px;border:1px solid #333;background:#1b1b1b;color:#fff;cursor:pointer}
.notice{padding:.8rem;border-radius:6px;background:#eef6ee;border:1px solid #9c9}.warn{background:#fbeeee;border-color:#c99}";
