//! The signing page's HTML.

use ami_services::contracting::SigningView;

use super::{STYLE, escape};

pub fn render(v: &SigningView, id: &str, token: &str, notice: Option<&str>) -> String {
    let c = &v.contract;
    let o = &v.offer;
    let action = format!("/v1/sign/{}/confirm?t={}", escape(id), escape(token));
    let notice_html = notice
        .map(|n| {
            let class = if c.status == "signed" {
                "notice"
            } else {
                "notice warn"
            };
            format!("<p class=\"{class}\" role=\"status\">{}</p>", escape(n))
        })
        .unwrap_or_default();
    let form = if c.status == "signature_pending" {
        format!(
            "<form method=\"post\" action=\"{action}\"><p>By signing, {rep} confirms the contract on behalf of {name}.</p>\
             <button type=\"submit\">Sign the contract</button></form>",
            rep = escape(&v.representative_name),
            name = escape(&v.legal_name),
        )
    } else {
        String::new()
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>AMI contract {id}</title><style>{STYLE}</style></head><body>\
         <h1>Mobile identity contract</h1>{notice_html}\
         <table><tr><th>Contract</th><td><code>{id}</code></td></tr>\
         <tr><th>Status</th><td>{status}</td></tr>\
         <tr><th>Customer</th><td>{name}</td></tr>\
         <tr><th>Representative</th><td>{rep}</td></tr>\
         <tr><th>Country</th><td>{country}</td></tr>\
         <tr><th>SIM type</th><td>{sim}</td></tr>\
         <tr><th>Capabilities</th><td>{caps}</td></tr>\
         <tr><th>Monthly price</th><td>{price} {cur}</td></tr>\
         <tr><th>Setup fee</th><td>{setup} {cur}</td></tr>\
         <tr><th>Signature due by</th><td>{expires}</td></tr></table>{form}</body></html>",
        id = escape(&c.id),
        status = escape(&c.status.replace('_', " ")),
        name = escape(&v.legal_name),
        rep = escape(&v.representative_name),
        country = escape(&o.country),
        sim = escape(&o.sim_type),
        caps = escape(&o.capabilities.join(", ")),
        price = escape(&o.monthly_price.to_string()),
        setup = escape(&o.setup_fee.to_string()),
        cur = escape(&o.currency),
        expires = escape(&c.expires_at),
    )
}

pub fn not_found() -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">\
         <title>Not found</title><style>{STYLE}</style></head><body><h1>Not found</h1>\
         <p>This signing link is not valid. Ask for a new link from whoever sent it.</p></body></html>"
    )
}
