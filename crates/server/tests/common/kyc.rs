//! KYC helpers: multipart forms for the verification page, and checks brought to the
//! submitted state over HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestServer, customer_data};

const BOUNDARY: &str = "amiKycTestBoundary7MA4YWxk";

/// A JPEG of `n` bytes: the JPEG signature, then filler.
pub fn jpeg(n: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.resize(n, 0x42);
    v
}

pub fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend_from_slice(&[7; 300]);
    v
}

/// A `multipart/form-data` body with these text fields and files.
pub fn form(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, content) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub const IDENTITY: &[(&str, &str)] = &[
    ("full_name", "Ana Ruiz"),
    ("date_of_birth", "1985-04-12"),
    ("nationality", "es"),
    ("document_type", "id_card"),
    ("document_number", "12345678Z"),
];

/// Posts a form to the page's submit route; returns status and page text.
pub async fn submit(server: &TestServer, path: &str, body: Vec<u8>) -> (StatusCode, String) {
    let res = server
        .http
        .post(format!("{}{path}/submit", server.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

pub async fn page(
    server: &TestServer,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = server
        .http
        .get(format!("{}{path}", server.base))
        .send()
        .await
        .unwrap();
    let headers = res.headers().clone();
    (res.status(), headers, res.text().await.unwrap())
}

/// The path of a verification URL (`/kyc/<token>`).
pub fn path_of(url: &Value) -> String {
    let url = url.as_str().expect("verification_url");
    url[url.find("/kyc/").expect("a /kyc/ link")..].to_owned()
}

/// A SIM request with its offer accepted: (sim request, offer).
pub async fn accepted_request(server: &TestServer, key: &str) -> (String, String) {
    let (s, r) = server
        .post("/v1/sim-requests", key, json!({"country": "ES"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let req = r["sim_request"]["id"].as_str().unwrap().to_owned();
    let offer = r["offer"]["id"].as_str().unwrap().to_owned();
    let (s, v) = server
        .post(&format!("/v1/offers/{offer}/accept"), key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (req, offer)
}

/// A request through its customer data: (sim request, offer, customer).
pub async fn request_with_customer_data(
    server: &TestServer,
    key: &str,
) -> (String, String, String) {
    let (req, offer) = accepted_request(server, key).await;
    let (s, v) = server
        .post(
            &format!("/v1/sim-requests/{req}/customer-data"),
            key,
            customer_data(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (req, offer, v["customer"]["id"].as_str().unwrap().to_owned())
}

/// Initiates and submits a valid KYC for `req`; returns the KYC id.
pub async fn submitted_kyc(server: &TestServer, key: &str, req: &str) -> String {
    let (s, v) = server
        .post(
            &format!("/v1/sim-requests/{req}/kyc/initiate"),
            key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, text) = submit(
        server,
        &path_of(&v["verification_url"]),
        form(
            IDENTITY,
            &[("document_front", &jpeg(900)), ("document_back", &png())],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    v["kyc_id"].as_str().unwrap().to_owned()
}
