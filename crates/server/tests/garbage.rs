//! Garbage in, never a 500 out (PROTOCOL §2, §11 last row). Every operation of the router's
//! own OpenAPI document (not a hand list) is called with a valid credential of its level and a
//! battery of hostile input: path ids, malformed and mistyped bodies, huge and deep bodies,
//! the wrong media type, query garbage. Every answer is a 4xx (or a 2xx where the input is
//! legitimately acceptable), in the §2 shape, with no CR/LF in any header, and a refused
//! request leaves the audit log exactly as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::{ADMIN_KEY, Flow, TestServer, engines};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TELCO_KEY: &str = "test-telco-key-0123456789";

/// Who may call an operation, from its `security` requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Public,
    Customer,
    Agent,
    Admin,
    Telco,
}

/// The JSON type a request body field expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Boolean,
    Array,
    Object,
}

/// One field of a request body, addressed from the top (`["customer", "legal_name"]`).
#[derive(Debug, Clone)]
struct Field {
    path: Vec<String>,
    kind: Kind,
}

#[derive(Debug, Clone)]
struct Op {
    method: Method,
    path: String,
    auth: Auth,
    path_params: Vec<String>,
    query_params: Vec<String>,
    /// Some when the operation takes a JSON body; the fields known from its component schema.
    json_body: Option<Vec<Field>>,
    /// The body is a component schema (a typed struct), not a free-form object.
    typed_body: bool,
}

impl Op {
    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn takes(&self, query_param: &str) -> bool {
        self.query_params.iter().any(|p| p == query_param)
    }

    /// HTML pages may answer a refusal with a page instead of a §2 body.
    fn is_html_page(&self) -> bool {
        self.path.starts_with("/v1/sign/") || self.path.starts_with("/kyc/")
    }
}

/// Every operation of `app::api().1`, with what the document says about it.
fn operations() -> Vec<Op> {
    let doc = serde_json::to_value(ami_server::app::api().1).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, name) in [
            (Method::GET, "get"),
            (Method::POST, "post"),
            (Method::PUT, "put"),
            (Method::PATCH, "patch"),
            (Method::DELETE, "delete"),
        ] {
            let Some(op) = item.get(name) else { continue };
            let auth = auth_of(op);
            let params = |place: &str| -> Vec<String> {
                op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == place)
                    .map(|p| p["name"].as_str().unwrap().to_owned())
                    .collect()
            };
            let media = op["requestBody"]["content"].get("application/json");
            let json_body = media.map(|m| fields(&doc, &m["schema"], &[], 0));
            let typed_body = media.is_some_and(|m| m["schema"]["$ref"].is_string());
            ops.push(Op {
                method,
                path: path.clone(),
                auth,
                path_params: params("path"),
                query_params: params("query"),
                json_body,
                typed_body,
            });
        }
    }
    ops
}

fn auth_of(op: &Value) -> Auth {
    let schemes: Vec<&str> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_object())
        .flat_map(|r| r.keys().map(String::as_str))
        .collect();
    match schemes.first().copied() {
        None => Auth::Public,
        Some("bearerAuth") => Auth::Customer,
        Some("agentBearer") => Auth::Agent,
        Some("adminKey") => Auth::Admin,
        Some("telcoKey") => Auth::Telco,
        Some(other) => panic!("unknown security scheme {other}"),
    }
}

/// Follows `$ref` and `oneOf: [null, X]` to the schema that matters.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return resolve(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(variants) = schema["oneOf"].as_array().or(schema["anyOf"].as_array())
        && let Some(v) = variants.iter().find(|v| v["type"] != "null")
    {
        return resolve(doc, v);
    }
    schema
}

fn kind_of(schema: &Value) -> Kind {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    match types.into_iter().find(|t| *t != "null") {
        Some("string") => Kind::String,
        Some("number" | "integer") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        Some("array") => Kind::Array,
        _ => Kind::Object,
    }
}

/// The fields of a body schema that is (or refers to) a component with properties, nested
/// objects included.
fn fields(doc: &Value, schema: &Value, prefix: &[String], depth: usize) -> Vec<Field> {
    let schema = resolve(doc, schema);
    let mut out = Vec::new();
    let Some(props) = schema["properties"].as_object() else {
        return out;
    };
    for (name, prop) in props {
        let mut path = prefix.to_vec();
        path.push(name.clone());
        let resolved = resolve(doc, prop);
        out.push(Field {
            path: path.clone(),
            kind: kind_of(resolved),
        });
        if depth < 3 && resolved["properties"].is_object() {
            out.extend(fields(doc, prop, &path, depth + 1));
        }
    }
    out
}

/// A body with `value` at `path`.
fn body_with(path: &[String], value: Value) -> Value {
    path.iter()
        .rev()
        .fold(value, |inner, key| json!({ key: inner }))
}

/// Real ids to aim at, so that garbage reaches past the lookup.
struct Fixture {
    key: String,
    flow: Flow,
    /// An account the admin routes may suspend and rotate without harming `key`.
    victim: String,
    number: String,
}

impl Fixture {
    async fn new(server: &TestServer) -> Fixture {
        let (_, key) = server.customer("Garbage Target").await;
        let flow = server.provision(&key).await;
        let flow = common::with_webhooks(&server.remote(), &key, flow).await;
        let (victim, _) = server.customer("Victim").await;
        let (s, numbers) = server.get("/v1/admin/numbers?limit=1", ADMIN_KEY).await;
        assert_eq!(s, StatusCode::OK, "{numbers}");
        let number = numbers["numbers"][0]["id"]
            .as_str()
            .expect("a number")
            .to_owned();
        Fixture {
            key,
            flow,
            victim,
            number,
        }
    }

    fn credential(&self, auth: Auth) -> Option<(&'static str, String)> {
        match auth {
            Auth::Public => None,
            Auth::Customer => Some(("authorization", format!("Bearer {}", self.key))),
            Auth::Agent => Some(("authorization", format!("Bearer {}", self.flow.agent_token))),
            Auth::Admin => Some(("authorization", format!("Bearer {ADMIN_KEY}"))),
            Auth::Telco => Some(("x-telco-key", TELCO_KEY.to_owned())),
        }
    }

    /// The real id a path parameter stands for, by the collection segment before it.
    fn real_id(&self, template: &str, param: &str) -> String {
        let marker = format!("{{{param}}}");
        let before = template.split(&marker).next().unwrap_or_default();
        let collection = before
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let f = &self.flow;
        match collection {
            "customers" if template.starts_with("/v1/admin/") => self.victim.clone(),
            "customers" => f.customer.clone(),
            "sim-requests" => f.sim_request.clone(),
            "offers" => f.offer.clone(),
            "contracts" | "sign" => f.contract.clone(),
            "mobile-identities" => f.mid.clone(),
            "numbers" => self.number.clone(),
            "webhooks" if template.starts_with("/v1/account/") => {
                f.account_webhook.clone().unwrap_or_default()
            }
            "webhooks" => f.webhook.clone().unwrap_or_default(),
            "deliveries" if template.starts_with("/v1/account/") => {
                f.account_delivery.clone().unwrap_or_default()
            }
            "deliveries" => f.delivery.clone().unwrap_or_default(),
            _ => ami_core::id::new_id("zz"),
        }
    }

    /// A real id of another kind than `id`.
    fn other_prefix(&self, id: &str) -> String {
        if id.starts_with("offer_") {
            self.flow.contract.clone()
        } else {
            self.flow.offer.clone()
        }
    }

    fn path(&self, op: &Op, hostile: Option<(&str, &str)>) -> String {
        let mut path = op.path.clone();
        for p in &op.path_params {
            let value = match hostile {
                Some((name, v)) if name == p => v.to_owned(),
                _ => self.real_id(&op.path, p),
            };
            path = path.replace(&format!("{{{p}}}"), &value);
        }
        path
    }
}

/// Path segments, already percent-encoded as a client would send them.
fn hostile_ids(real: &str, other_prefix: &str) -> Vec<(String, String)> {
    vec![
        ("traversal".into(), "..%2F..%2Fetc%2Fpasswd".into()),
        ("nul".into(), "%00".into()),
        ("nul inside".into(), format!("{real}%00")),
        ("5000 chars".into(), "a".repeat(5000)),
        ("sql".into(), "%27%20OR%201%3D1%20--".into()),
        (
            "unicode".into(),
            "%E2%80%AE%F0%9F%98%80%C3%B1and%C3%BA".into(),
        ),
        ("crlf".into(), "x%0D%0ASet-Cookie:%20a=b".into()),
        ("short mid".into(), "mid_abc".into()),
        ("uppercase".into(), real.to_uppercase()),
        ("other prefix".into(), other_prefix.to_owned()),
    ]
}

/// What a probe must be answered with.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This status and error code.
    Exactly(u16, &'static str),
    /// This status, whatever the code.
    Status(u16),
    /// 400 `unknown_field` naming this field.
    UnknownField(&'static str),
    /// Any 4xx.
    Refused,
    /// 2xx.
    Success,
    /// A 2xx or a 4xx: the input may be legitimately acceptable.
    Settled,
}

struct Probe<'a> {
    server: &'a TestServer,
    fx: &'a Fixture,
    failures: Vec<String>,
    requests: usize,
}

impl Probe<'_> {
    async fn send(
        &mut self,
        op: &Op,
        what: &str,
        uri: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
        expect: Expect,
    ) {
        self.requests += 1;
        let label = format!("{} [{what}]", op.label());
        let mut req = self
            .server
            .http
            .request(op.method.clone(), format!("{}{uri}", self.server.base));
        if let Some((name, value)) = self.fx.credential(op.auth) {
            req = req.header(name, value);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let before = self.server.event_count().await;
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => return self.failures.push(format!("{label}: no response: {e}")),
        };
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let after = self.server.event_count().await;
        let mut fail = |why: String| {
            self.failures.push(format!(
                "{label}: {why} (status {status}, body {})",
                clip(&text)
            ))
        };

        if status.is_server_error() || status.is_informational() || status.is_redirection() {
            fail("not a 2xx or 4xx".into());
            return;
        }
        for (name, value) in &headers {
            if value.as_bytes().iter().any(|b| *b == b'\r' || *b == b'\n') {
                fail(format!("header {name} carries CR/LF"));
            }
        }
        if !headers.contains_key("x-request-id") {
            fail("no X-Request-Id".into());
        }
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let code = parsed
            .as_ref()
            .and_then(|v| v["error"].as_str())
            .map(str::to_owned);
        if status.is_client_error() {
            let html = content_type.starts_with("text/html");
            if html && !op.is_html_page() {
                fail("an HTML refusal outside the pages".into());
            } else if !html && (!content_type.starts_with("application/json") || code.is_none()) {
                fail(format!(
                    "refusal without a §2 body (content-type {content_type:?})"
                ));
            }
            if after != before {
                fail(format!(
                    "a refused request wrote {} audit event(s)",
                    after as i64 - before as i64
                ));
            }
        }
        match expect {
            Expect::Exactly(s, c) if status.as_u16() != s || code.as_deref() != Some(c) => {
                fail(format!("expected {s} {c}"));
            }
            Expect::Status(s) if status.as_u16() != s => fail(format!("expected {s}")),
            Expect::UnknownField(name)
                if status.as_u16() != 400
                    || code.as_deref() != Some("unknown_field")
                    || parsed.as_ref().is_none_or(|b| b["field"] != name) =>
            {
                fail(format!("expected 400 unknown_field naming {name}"));
            }
            Expect::Refused if !status.is_client_error() => fail("expected a 4xx".into()),
            Expect::Success if !status.is_success() => fail("expected a 2xx".into()),
            _ => {}
        }
    }

    async fn json(
        &mut self,
        op: &Op,
        what: &str,
        uri: &str,
        body: impl Into<Vec<u8>>,
        expect: Expect,
    ) {
        self.send(
            op,
            what,
            uri,
            Some("application/json"),
            Some(body.into()),
            expect,
        )
        .await;
    }
}

/// `name` with every character as a JSON `\uXXXX` escape: the same key, spelt differently.
fn escaped(name: &str) -> String {
    name.encode_utf16().map(|u| format!("\\u{u:04x}")).collect()
}

fn clip(s: &str) -> String {
    if s.len() > 300 {
        format!("{}…", &s[..s.floor_char_boundary(300)])
    } else {
        s.to_owned()
    }
}

/// Hostile path parameters, one parameter at a time, the others real.
async fn path_battery(p: &mut Probe<'_>, op: &Op) {
    for param in &op.path_params {
        let real = p.fx.real_id(&op.path, param);
        for (what, value) in hostile_ids(&real, &p.fx.other_prefix(&real)) {
            let uri = p.fx.path(op, Some((param, &value)));
            let what = format!("{param} = {what}");
            if op.json_body.is_some() {
                p.json(op, &what, &uri, "{}", Expect::Refused).await;
            } else {
                p.send(op, &what, &uri, None, None, Expect::Refused).await;
            }
        }
    }
}

/// Bodies that no JSON route may accept, and wrong or extreme values for each known field.
async fn body_battery(p: &mut Probe<'_>, op: &Op, fields: &[Field], big: &[u8]) {
    let uri = p.fx.path(op, None);
    for (what, body) in [
        ("truncated object", "{"),
        ("truncated array", "[1,2"),
        ("bare word", "nul"),
    ] {
        p.json(op, what, &uri, body, Expect::Exactly(400, "invalid_json"))
            .await;
    }
    for (what, body) in [
        ("array", "[1,2]"),
        ("string", "\"x\""),
        ("number", "42"),
        ("null", "null"),
        ("true", "true"),
    ] {
        p.json(
            op,
            &format!("{what} instead of an object"),
            &uri,
            body,
            Expect::Status(400),
        )
        .await;
    }
    p.json(
        op,
        "unknown field",
        &uri,
        r#"{"zz_not_a_field": 1}"#,
        if op.typed_body {
            Expect::UnknownField("zz_not_a_field")
        } else {
            Expect::Status(400)
        },
    )
    .await;
    // A key twice is refused at any depth, whichever of the two would have won.
    let name = fields
        .iter()
        .find(|f| f.path.len() == 1)
        .map_or("a", |f| f.path[0].as_str());
    for (what, body) in [
        ("duplicate key", format!(r#"{{"{name}":1,"{name}":1}}"#)),
        (
            "duplicate key, escaped",
            format!(r#"{{"{name}":1,"{}":1}}"#, escaped(name)),
        ),
        (
            "nested duplicate key",
            format!(r#"{{"{name}":[{{"k":1,"k":2}}]}}"#),
        ),
    ] {
        p.json(op, what, &uri, body, Expect::Exactly(400, "duplicate_key"))
            .await;
    }
    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    p.json(
        op,
        "2000-deep",
        &uri,
        deep,
        Expect::Exactly(400, "json_too_deep"),
    )
    .await;
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(2000), "}".repeat(2000));
    p.json(
        op,
        "2000-deep object",
        &uri,
        deep_object,
        Expect::Exactly(400, "json_too_deep"),
    )
    .await;
    p.json(
        op,
        "2 MB",
        &uri,
        big.to_vec(),
        Expect::Exactly(413, "payload_too_large"),
    )
    .await;
    p.send(
        op,
        "text/plain",
        &uri,
        Some("text/plain"),
        Some(b"{}".to_vec()),
        Expect::Exactly(415, "unsupported_media_type"),
    )
    .await;
    p.send(
        op,
        "no content type",
        &uri,
        None,
        Some(b"{}".to_vec()),
        Expect::Exactly(415, "unsupported_media_type"),
    )
    .await;
    p.send(
        op,
        "form",
        &uri,
        Some("application/x-www-form-urlencoded"),
        Some(b"a=b".to_vec()),
        Expect::Exactly(415, "unsupported_media_type"),
    )
    .await;
    p.json(
        op,
        "invalid UTF-8",
        &uri,
        b"{\"a\": \"\xff\xfe\"}".to_vec(),
        Expect::Status(400),
    )
    .await;

    let long = "a".repeat(100_000);
    for f in fields {
        let name = f.path.join(".");
        let wrong = match f.kind {
            Kind::String => json!(12345),
            Kind::Number => json!("12345"),
            Kind::Boolean => json!("true"),
            Kind::Array => json!("x"),
            Kind::Object => json!(7),
        };
        let variants = [
            ("wrong type", wrong, Expect::Refused),
            (
                "100k chars",
                json!(long),
                if f.kind == Kind::String {
                    Expect::Settled
                } else {
                    Expect::Refused
                },
            ),
            (
                "NUL CR LF",
                json!("a\u{0}b\r\nSet-Cookie: x=1"),
                if f.kind == Kind::String {
                    Expect::Settled
                } else {
                    Expect::Refused
                },
            ),
            ("huge number", json!(1e308), Expect::Settled),
            ("negative", json!(-1), Expect::Settled),
            (
                "list of garbage",
                json!(["\u{0}", 1, null, {}]),
                Expect::Settled,
            ),
        ];
        for (what, value, expect) in variants {
            let body = body_with(&f.path, value).to_string();
            p.json(op, &format!("{name}: {what}"), &uri, body, expect)
                .await;
        }
    }
}

/// Query strings: list parameters get their §0 answers; everything else must not break.
async fn query_battery(p: &mut Probe<'_>, op: &Op) {
    let base = p.fx.path(op, None);
    let at = |q: &str| format!("{base}?{q}");
    if op.takes("limit") {
        for (what, q, expect) in [
            ("limit=-1", "limit=-1", Expect::Success),
            ("limit=0", "limit=0", Expect::Success),
            (
                "limit=abc",
                "limit=abc",
                Expect::Exactly(400, "invalid_limit"),
            ),
            (
                "limit=1.5",
                "limit=1.5",
                Expect::Exactly(400, "invalid_limit"),
            ),
            ("limit=huge", "limit=99999999999999999999", Expect::Success),
            ("limit=1000000", "limit=1000000", Expect::Success),
            (
                "unknown parameter",
                "limit=5&zz_unknown=1",
                Expect::Exactly(400, "unknown_parameter"),
            ),
        ] {
            p.send(op, what, &at(q), None, None, expect).await;
        }
    }
    if op.takes("cursor") {
        p.send(
            op,
            "cursor=<script>",
            &at("cursor=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
            None,
            None,
            Expect::Exactly(400, "invalid_cursor"),
        )
        .await;
        p.send(
            op,
            "cursor 5000",
            &at(&format!("cursor={}", "a".repeat(5000))),
            None,
            None,
            Expect::Exactly(400, "invalid_cursor"),
        )
        .await;
    }
    if op.takes("since") {
        p.send(
            op,
            "since=yesterday",
            &at("since=yesterday"),
            None,
            None,
            Expect::Status(400),
        )
        .await;
        p.send(
            op,
            "until=%00",
            &at("until=%00"),
            None,
            None,
            Expect::Status(400),
        )
        .await;
    }
    for q in op
        .query_params
        .iter()
        .filter(|q| !matches!(q.as_str(), "limit" | "cursor" | "since" | "until"))
    {
        for (what, value) in [
            ("NUL", "%00"),
            ("CRLF", "a%0D%0AX-Injected:%201"),
            ("sql", "%27%20OR%201%3D1%20--"),
            ("5000", "a5000"),
        ] {
            let value = if value == "a5000" {
                "a".repeat(5000)
            } else {
                value.to_owned()
            };
            p.send(
                op,
                what,
                &at(&format!("{q}={value}")),
                None,
                None,
                Expect::Settled,
            )
            .await;
        }
    }
    // Whatever a route declares, junk must not break it.
    for q in [
        "%00=%00",
        "limit=abc&limit=def",
        "a%0D%0AX-Injected:%201=b",
        "&&&==&=",
        "%ZZ=1",
    ] {
        p.send(op, "junk query", &at(q), None, None, Expect::Settled)
            .await;
    }
}

#[tokio::test]
async fn no_input_reaches_a_500_and_refusals_change_nothing() {
    let ops = operations();
    assert!(
        ops.len() >= 20,
        "only {} operations in the document",
        ops.len()
    );
    let big = {
        let mut b = br#"{"name":""#.to_vec();
        b.resize(2 << 20, b'a');
        b.extend_from_slice(br#""}"#);
        b
    };
    for engine in engines() {
        let started = Instant::now();
        let server = TestServer::start_with(
            engine,
            &[("AMI_TELCO_INBOUND_KEY", TELCO_KEY), common::LOOPBACK],
        )
        .await;
        let fx = Fixture::new(&server).await;
        let mut probe = Probe {
            server: &server,
            fx: &fx,
            failures: Vec::new(),
            requests: 0,
        };
        for op in &ops {
            path_battery(&mut probe, op).await;
            match (&op.method, &op.json_body) {
                (&Method::GET, _) => query_battery(&mut probe, op).await,
                (_, Some(fields)) => body_battery(&mut probe, op, fields, &big).await,
                // A form post (the signing page): garbage bodies must not break it either.
                (_, None) => {
                    let uri = fx.path(op, None);
                    probe
                        .send(
                            op,
                            "json garbage",
                            &uri,
                            Some("application/json"),
                            Some(b"[1,2".to_vec()),
                            Expect::Settled,
                        )
                        .await;
                    probe
                        .send(
                            op,
                            "2 MB",
                            &uri,
                            Some("application/json"),
                            Some(big.clone()),
                            Expect::Settled,
                        )
                        .await;
                }
            }
        }
        // The credentials still work: nothing above broke the fixture's account.
        let (s, me) = server.get("/v1/agent/self", &fx.flow.agent_token).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {me}");
        let requests = probe.requests;
        let failures = std::mem::take(&mut probe.failures);
        eprintln!(
            "{engine:?}: {requests} garbage requests over {} operations in {:?}",
            ops.len(),
            started.elapsed()
        );
        server.stop().await;
        assert!(
            failures.is_empty(),
            "{engine:?}: {} failure(s):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
