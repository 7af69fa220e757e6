use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn millis(list: &[Millis]) -> Vec<u64> {
    list.iter().map(|m| m.get()).collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn defaults_load_and_match_the_documented_values() {
    let c = Config::load_from(&HashMap::new()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.database_url.as_str(), "sqlite://ami.db");
    assert!(!c.admin_key.is_set() && !c.api_key.is_set() && !c.telco_inbound_key.is_set());
    assert_eq!(
        (c.db_max_connections, c.body_limit_bytes, c.max_json_depth),
        (8, 1_048_576, 32)
    );
    assert_eq!(
        (
            c.request_timeout_ms.duration(),
            c.header_read_timeout_ms.duration()
        ),
        (Duration::from_secs(30), Duration::from_secs(5))
    );
    assert!(
        c.sandbox && c.mock_sign_enabled && c.metrics_public && !c.allow_insecure_db_permissions
    );
    assert_eq!(
        (
            c.offer_ttl_days,
            c.contract_ttl_days,
            c.number_quarantine_days,
            c.idempotency_ttl_hours
        ),
        (7, 7, 30, 24)
    );
    assert!(c.webhook_allow_subnets.is_empty() && c.public_base_url.is_none());
    assert_eq!(
        (
            c.webhook_connect_timeout_ms.get(),
            c.webhook_timeout_ms.get(),
            c.webhook_retry_after_cap_ms.get(),
            c.webhook_lease_ms.get(),
            c.webhook_concurrency
        ),
        (5_000, 15_000, 3_600_000, 60_000, 64)
    );
    assert_eq!(
        millis(&c.webhook_retry_delays_ms),
        vec![
            5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000
        ]
    );
    assert_eq!(c.log, "info,rmcp=warn,rsipstack=warn");
    assert!(c.mcp_allowed_hosts.is_empty());
    let es = c.country("ES").unwrap();
    assert_eq!(
        (es.msisdn_prefix.as_str(), es.currency.as_str()),
        ("+34", "EUR")
    );
    assert_eq!(
        (es.monthly_price_micros, es.setup_fee_micros),
        (8_900_000, 5_000_000)
    );
    assert_eq!(
        (es.sms_price_eur_micros, es.call_per_min_eur_micros),
        (70_000, 50_000)
    );
    let co = c.country("CO").unwrap();
    assert_eq!(
        (co.monthly_price_micros, co.setup_fee_micros),
        (32_000_000_000, 18_000_000_000)
    );
    assert_eq!(co.sim_types, ["eSIM", "physical"]);
    assert_eq!(c.sandbox_pool.len(), 2);
    let es_pool = &c.sandbox_pool[0];
    let numbers: Vec<String> = es_pool.numbers().collect();
    assert_eq!(numbers.len(), 10_000);
    assert_eq!(numbers.first().map(String::as_str), Some("+34600000000"));
    assert_eq!(numbers.last().map(String::as_str), Some("+34600009999"));
    assert_eq!(
        c.base_url("0.0.0.0:9000".parse().unwrap()),
        "http://127.0.0.1:9000"
    );

    assert_eq!(
        (c.durability, c.carrier),
        (Durability::Normal, Carrier::Sandbox)
    );
    assert_eq!(c.replica_id, "");
    assert_eq!(
        (c.carrier_timeout_ms.get(), c.dispatch_lease_ms.get()),
        (10_000, 30_000)
    );
    assert_eq!(c.sandbox_record_file, None);
    assert!(!c.demo_enabled);
    assert_eq!(c.demo_per_address_per_hour, 5);
    let demo: Vec<(&str, u32)> = c
        .demo_pool
        .iter()
        .map(|p| (p.country.as_str(), p.count))
        .collect();
    assert_eq!(demo, [("ES", 20), ("CO", 20)]);
    let sandbox_numbers: HashSet<String> =
        c.sandbox_pool.iter().flat_map(|p| p.numbers()).collect();
    assert!(
        c.demo_pool
            .iter()
            .flat_map(|p| p.numbers())
            .all(|n| !sandbox_numbers.contains(&n))
    );
}

#[test]
fn sandbox_and_demo_pools_are_plausible_mobile_numbers() {
    let c = Config::load_from(&HashMap::new()).unwrap();
    for p in c.sandbox_pool.iter().chain(&c.demo_pool) {
        for n in [p.numbers().next().unwrap(), p.numbers().last().unwrap()] {
            let parsed = phonenumber::parse(None, &n).unwrap();
            assert!(phonenumber::is_valid(&parsed), "{n}");
            assert_eq!(
                parsed.number_type(&phonenumber::metadata::DATABASE),
                phonenumber::Type::Mobile,
                "{n}"
            );
            assert_eq!(
                parsed.country().id().map(|id| id.as_ref().to_owned()),
                Some(p.country.clone())
            );
        }
    }
}

#[test]
fn file_then_environment_then_aliases() {
    let f = file("sandbox = false\ndb_max_connections = 3\nlog = \"debug\"\n");
    let path = f.path().to_str().unwrap();
    let c = Config::load_from(&env(&[
        ("AMI_CONFIG", path),
        ("AMI_DB_MAX_CONNECTIONS", "5"),
        ("AMI_METRICS_PUBLIC", "false"),
        ("DATABASE_URL", "/var/lib/ami/ami.db"),
        ("PORT", "9999"),
        ("AMI_WEBHOOK_ALLOW_SUBNETS", "127.0.0.0/8, ::1"),
        ("AMI_WEBHOOK_RETRY_DELAYS_MS", "[50, 100]"),
        ("AMI_COUNTRIES", r#"[{code = "ES", msisdn_prefix = "+34", name = "Spain", currency = "EUR", monthly_price = 1, setup_fee = 0, sim_types = ["eSIM"], capabilities = ["sms"], sms_price_eur = 0.1, call_per_min_eur = 0.1}]"#),
        ("AMI_SANDBOX_POOL", r#"[{country = "ES", from = "+34611000000", count = 5}]"#),
    ]))
    .unwrap();
    assert!(!c.sandbox && !c.metrics_public);
    assert_eq!(c.db_max_connections, 5);
    assert_eq!(c.log, "debug");
    assert_eq!(c.database_url.as_str(), "sqlite:///var/lib/ami/ami.db");
    assert_eq!(c.listen, "0.0.0.0:9999".parse().unwrap());
    assert_eq!(c.webhook_allow_subnets.nets().len(), 2);
    assert!(
        c.webhook_allow_subnets
            .contains("127.1.2.3".parse().unwrap())
    );
    assert!(
        c.webhook_allow_subnets
            .contains("::ffff:127.0.0.1".parse().unwrap())
    );
    assert!(
        !c.webhook_allow_subnets
            .contains("10.0.0.1".parse().unwrap())
    );
    assert_eq!(millis(&c.webhook_retry_delays_ms), vec![50, 100]);
    assert_eq!(c.countries.len(), 1);
    assert_eq!(c.sandbox_pool[0].numbers().collect::<Vec<_>>().len(), 5);

    // AMI_LISTEN and AMI_DATABASE_URL win over the aliases.
    let c = Config::load_from(&env(&[
        ("AMI_LISTEN", "127.0.0.1:1234"),
        ("PORT", "9999"),
        ("AMI_DATABASE_URL", "postgres://ami@db/ami"),
        ("DATABASE_URL", "other.db"),
    ]))
    .unwrap();
    assert_eq!(c.listen.port(), 1234);
    assert_eq!(c.database_url.as_str(), "postgres://ami@db/ami");
}

#[test]
fn every_problem_is_listed_at_once() {
    let f = file(
        "bogus = 1\nalso_bogus = \"x\"\n[[countries]]\ncode = \"ES\"\nmsisdn_prefix = \"+34\"\nname = \"Spain\"\ncurrency = \"EUR\"\nmonthly_price = 1\nsetup_fee = 1\nsim_types = [\"eSIM\"]\ncapabilities = [\"sms\"]\nsms_price_eur = 0.1\ncall_per_min_eur = 0.1\n[[countries]]\ncode = \"ES\"\nmsisdn_prefix = \"+34\"\nname = \"Spain\"\ncurrency = \"EUR\"\nmonthly_price = -1\nsetup_fee = 1\nsim_types = [\"eSIM\"]\ncapabilities = [\"fax\"]\nsms_price_eur = 0.1\ncall_per_min_eur = 0.1\n",
    );
    let errs = Config::load_from(&env(&[
        ("AMI_CONFIG", f.path().to_str().unwrap()),
        ("AMI_LISTEN", "not an address"),
        ("AMI_DATABASE_URL", "mysql://u:p@h/db"),
        ("AMI_DB_MAX_CONNECTIONS", "0"),
        ("AMI_OFFER_TTL_DAYS", "-3"),
        ("AMI_WEBHOOK_ALLOW_SUBNETS", "10.0.0.0/33,garbage"),
        ("AMI_WEBHOOK_LEASE_MS", "1000"),
        ("AMI_WEBHOOK_RETRY_DELAYS_MS", "[1, -5]"),
        ("AMI_SANDBOX", "maybe"),
        (
            "AMI_SANDBOX_POOL",
            r#"[{country = "ES", from = "+34123", count = 5}]"#,
        ),
    ]))
    .unwrap_err();
    let all = errs.to_string();
    for needle in [
        "unknown key `bogus`",
        "unknown key `also_bogus`",
        "listen:",
        "unknown database scheme `mysql`",
        "db_max_connections: must be greater than zero, got 0 (from AMI_DB_MAX_CONNECTIONS)",
        "offer_ttl_days: must be greater than zero, got -3",
        "`10.0.0.0/33` is not a CIDR",
        "`garbage` is not a CIDR",
        "webhook_lease_ms: must be longer than webhook_timeout_ms",
        "webhook_retry_delays_ms[1]: must be an integer between 0 and 86400000",
        "AMI_SANDBOX:",
        "countries[1].code: duplicate country code `ES`",
        "countries[1].monthly_price: must be a non-negative amount, got -1",
        "countries[1].capabilities: `fax` is not one of sms, voice",
        "sandbox_pool[0].from: `+34123` is not an E.164 number",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    // The URL's password is not echoed.
    assert!(!all.contains("u:p@"), "{all}");
}

#[test]
fn typos_in_table_entries_are_named() {
    let errs = Config::load_from(&env(&[(
        "AMI_SANDBOX_POOL",
        r#"[{country = "ES", form = "+34600000000", count = 5}]"#,
    )]))
    .unwrap_err();
    assert!(errs.to_string().contains("form"), "{errs}");
}

#[test]
fn secrets_never_appear_in_debug_errors_or_show() {
    let e = env(&[
        ("AMI_ADMIN_KEY", "adm-SECRET-1"),
        ("AMI_API_KEY", "amik_live_SECRET-2"),
        ("AMI_TELCO_INBOUND_KEY", "telco-SECRET-3"),
        (
            "DATABASE_URL",
            "postgres://ami:pg-SECRET-4@db:5432/ami?sslmode=require&password=pg-SECRET-5",
        ),
    ]);
    let c = Config::load_from(&e).unwrap();
    assert_eq!(c.admin_key.expose(), Some("adm-SECRET-1"));
    let debug = format!("{c:?} {c:#?}");
    let shown = c.redacted_toml();
    for text in [&debug, &shown] {
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
    assert!(
        shown.contains("postgres://ami:<redacted>@db:5432/ami?sslmode=require&password=<redacted>"),
        "{shown}"
    );
    assert!(shown.contains("admin_key = \"<redacted>\""), "{shown}");

    // Unset secrets show as empty; the show output is itself a loadable config.
    let c = Config::load_from(&HashMap::new()).unwrap();
    let shown = c.redacted_toml();
    assert!(shown.contains("api_key = \"\""), "{shown}");
    let f = file(&shown);
    let again = Config::load_from(&env(&[("AMI_CONFIG", f.path().to_str().unwrap())])).unwrap();
    assert_eq!(again.countries.len(), 2);
    assert_eq!(
        again.country("CO").unwrap().monthly_price_micros,
        32_000_000_000
    );

    // A syntax error on a secret's line reports the position, not the line.
    let f = file("admin_key = \"adm-SECRET-6\nsandbox = true\n");
    let errs = Config::load_from(&env(&[("AMI_CONFIG", f.path().to_str().unwrap())])).unwrap_err();
    let text = format!("{errs} {errs:?}");
    assert!(
        !text.contains("SECRET") && text.contains("line 1"),
        "{text}"
    );
}

#[test]
fn database_urls() {
    let url = |s: &str| s.parse::<DatabaseUrl>().map(|u| u.as_str().to_owned());
    assert_eq!(url("ami.db").unwrap(), "sqlite://ami.db");
    assert_eq!(url("./data/ami.db").unwrap(), "sqlite://./data/ami.db");
    assert_eq!(url("sqlite::memory:").unwrap(), "sqlite::memory:");
    assert_eq!(url("postgresql://h/db").unwrap(), "postgresql://h/db");
    assert!(url("").is_err());
    assert!(url("redis://h").is_err());
    assert_eq!(
        redact_database_url("postgres://u:p@ss@h/db"),
        "postgres://u:<redacted>@h/db"
    );
    assert_eq!(
        redact_database_url("postgres://u@h/db"),
        "postgres://u@h/db"
    );
    assert_eq!(redact_database_url("sqlite://ami.db"), "sqlite://ami.db");
}

#[test]
fn the_new_keys_take_their_documented_values() {
    let c = Config::load_from(&env(&[
        ("AMI_DURABILITY", "full"),
        ("AMI_REPLICA_ID", "api-1.example.org:8080"),
        ("AMI_CARRIER", "sandbox"),
        ("AMI_CARRIER_TIMEOUT_MS", "2000"),
        // Exactly the margin is enough.
        ("AMI_DISPATCH_LEASE_MS", "7000"),
        ("AMI_SANDBOX_RECORD_FILE", " /var/lib/ami/sandbox.record "),
        ("AMI_DEMO_ENABLED", "true"),
        ("AMI_DEMO_PER_ADDRESS_PER_HOUR", "1000"),
        (
            "AMI_DEMO_POOL",
            r#"[{country = "ES", from = "+34611000000", count = 3}]"#,
        ),
    ]))
    .unwrap();
    assert_eq!(c.durability, Durability::Full);
    assert_eq!(c.replica_id, "api-1.example.org:8080");
    assert_eq!(
        (
            c.carrier_timeout_ms.duration(),
            c.dispatch_lease_ms.duration()
        ),
        (Duration::from_secs(2), Duration::from_secs(7))
    );
    assert_eq!(
        c.sandbox_record_file.as_deref(),
        Some(std::path::Path::new("/var/lib/ami/sandbox.record"))
    );
    assert!(c.demo_enabled);
    assert_eq!(c.demo_per_address_per_hour, 1000);
    assert_eq!(
        c.demo_pool[0].numbers().collect::<Vec<_>>(),
        ["+34611000000", "+34611000001", "+34611000002"]
    );
}

/// The problems of loading with `pairs`, as one text.
fn problems(pairs: &[(&str, &str)]) -> String {
    match Config::load_from(&env(pairs)) {
        Ok(_) => panic!("{pairs:?} loaded"),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn each_new_key_names_its_bad_value() {
    let long_id = "r".repeat(65);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("AMI_DURABILITY", "fast")],
            "durability: unknown variant `fast`, expected `normal` or `full` (from AMI_DURABILITY)",
        ),
        (
            &[("AMI_REPLICA_ID", &long_id)],
            "replica_id: is 65 characters long, at most 64 allowed",
        ),
        (
            &[("AMI_REPLICA_ID", "api 1")],
            "replica_id: `api 1` may hold only visible ASCII characters",
        ),
        (
            &[("AMI_REPLICA_ID", "réplica")],
            "replica_id: `réplica` may hold only visible ASCII characters",
        ),
        (
            &[("AMI_CARRIER", "acme")],
            "carrier: unknown variant `acme`, expected `sandbox`",
        ),
        (
            &[("AMI_CARRIER_TIMEOUT_MS", "0")],
            "carrier_timeout_ms: must be greater than zero, got 0",
        ),
        (
            &[
                ("AMI_CARRIER_TIMEOUT_MS", "10000"),
                ("AMI_DISPATCH_LEASE_MS", "14999"),
            ],
            "dispatch_lease_ms: must exceed carrier_timeout_ms by at least 5000, got 14999 \
             with carrier_timeout_ms = 10000 (from AMI_DISPATCH_LEASE_MS)",
        ),
        (
            // The default lease (30 s) against a longer carrier timeout.
            &[("AMI_CARRIER_TIMEOUT_MS", "26000")],
            "dispatch_lease_ms: must exceed carrier_timeout_ms by at least 5000, got 30000",
        ),
        (
            &[("AMI_SANDBOX_RECORD_FILE", "/var/lib/ami/")],
            "sandbox_record_file: `/var/lib/ami/` names a directory, not a file",
        ),
        (
            &[("AMI_SANDBOX_RECORD_FILE", "a\u{1}b")],
            "sandbox_record_file: `a\\u{1}b` is not a file path (control character)",
        ),
        (
            &[("AMI_DEMO_ENABLED", "true"), ("AMI_SANDBOX", "false")],
            "demo_enabled: needs sandbox = true",
        ),
        (
            &[("AMI_DEMO_ENABLED", "perhaps")],
            "AMI_DEMO_ENABLED: `perhaps` is not a boolean",
        ),
        (
            &[("AMI_DEMO_PER_ADDRESS_PER_HOUR", "0")],
            "demo_per_address_per_hour: must be greater than zero, got 0",
        ),
        (
            &[("AMI_DEMO_PER_ADDRESS_PER_HOUR", "1001")],
            "demo_per_address_per_hour: must be an integer between 1 and 1000, got 1001",
        ),
        (
            &[(
                "AMI_DEMO_POOL",
                r#"[{country = "ES", from = "+34600009990", count = 20}]"#,
            )],
            "demo_pool[0]: overlaps sandbox_pool[0] (the range starting at +34600000000)",
        ),
        (
            &[(
                "AMI_DEMO_POOL",
                r#"[{country = "ES", from = "+34611000000", count = 20}, {country = "ES", from = "+34611000019", count = 1}]"#,
            )],
            "demo_pool[1]: overlaps demo_pool[0] (the range starting at +34611000000)",
        ),
        (
            &[(
                "AMI_DEMO_POOL",
                r#"[{country = "ES", from = "+34123", count = 20}]"#,
            )],
            "demo_pool[0].from: `+34123` is not an E.164 number",
        ),
        (
            &[(
                "AMI_DEMO_POOL",
                r#"[{country = "ES", from = "+573000100000", count = 20}]"#,
            )],
            "demo_pool[0].from: +573000100000 is not a valid ES number per the numbering plan",
        ),
        (
            &[(
                "AMI_DEMO_POOL",
                r#"[{country = "ES", from = "+34611000000", count = 0}]"#,
            )],
            "demo_pool[0].count: must be greater than zero, got 0",
        ),
        (
            &[
                ("AMI_DEMO_ENABLED", "true"),
                (
                    "AMI_DEMO_POOL",
                    r#"[{country = "FR", from = "+33612345678", count = 20}]"#,
                ),
            ],
            "demo_pool[0].country: country `FR` is not in the countries catalogue",
        ),
    ];
    for (pairs, needle) in cases {
        let all = problems(pairs);
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }

    // The demo pool answers to the catalogue only when the demo runs.
    let c = Config::load_from(&env(&[(
        "AMI_DEMO_POOL",
        r#"[{country = "FR", from = "+33612345678", count = 20}]"#,
    )]))
    .unwrap();
    assert_eq!(c.demo_pool[0].country, "FR");
}

#[test]
fn the_new_keys_problems_are_listed_at_once_too() {
    let all = problems(&[
        ("AMI_DURABILITY", "fast"),
        ("AMI_REPLICA_ID", "api 1"),
        ("AMI_CARRIER", "acme"),
        ("AMI_CARRIER_TIMEOUT_MS", "20000"),
        ("AMI_DISPATCH_LEASE_MS", "24000"),
        ("AMI_SANDBOX_RECORD_FILE", "dir/"),
        ("AMI_SANDBOX", "false"),
        ("AMI_DEMO_ENABLED", "true"),
        ("AMI_DEMO_PER_ADDRESS_PER_HOUR", "0"),
        (
            "AMI_DEMO_POOL",
            r#"[{country = "ES", from = "+34123", count = 1}, {country = "CO", from = "+573000000005", count = 1}]"#,
        ),
    ]);
    for needle in [
        "durability:",
        "replica_id:",
        "carrier:",
        "dispatch_lease_ms: must exceed carrier_timeout_ms",
        "sandbox_record_file:",
        "demo_enabled: needs sandbox = true",
        "demo_per_address_per_hour:",
        "demo_pool[0].from:",
        "demo_pool[1]: overlaps sandbox_pool[1]",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[test]
fn rules_across_keys_skip_values_that_could_not_be_read() {
    // The bad timeout is stood in for by its default (10 s); judging the lease of 12 s
    // against that stand-in would report a problem the operator did not make.
    let all = problems(&[
        ("AMI_CARRIER_TIMEOUT_MS", "0"),
        ("AMI_DISPATCH_LEASE_MS", "12000"),
    ]);
    assert!(
        all.contains("carrier_timeout_ms: must be greater than zero"),
        "{all}"
    );
    assert!(!all.contains("dispatch_lease_ms"), "{all}");
    assert!(all.contains("(1 problem(s))"), "{all}");

    // The same for a value the environment could not give.
    let all = problems(&[
        ("AMI_WEBHOOK_TIMEOUT_MS", "soon"),
        ("AMI_WEBHOOK_LEASE_MS", "10000"),
    ]);
    assert!(
        all.contains("AMI_WEBHOOK_TIMEOUT_MS: not a TOML integer"),
        "{all}"
    );
    assert!(!all.contains("webhook_lease_ms"), "{all}");
}

#[test]
fn every_bad_entry_of_an_array_is_named() {
    let all = problems(&[(
        "AMI_COUNTRIES",
        r#"[{code = "es", msisdn_prefix = "+34", name = "Spain", currency = "EUR", monthly_price = 1, setup_fee = 0, sim_types = ["eSIM"], capabilities = ["sms"], sms_price_eur = 0.1, call_per_min_eur = 0.1}, {code = "CO", msisdn_prefix = "57", name = " ", currency = "COP", monthly_price = 1, setup_fee = 0, sim_types = [], capabilities = ["sms", "sms"], sms_price_eur = 0.1, call_per_min_eur = 0.1}]"#,
    )]);
    for needle in [
        "countries[0].code: `es` is not an ISO 3166 alpha-2 code",
        "countries[1].msisdn_prefix: `57` is not a calling code like +34",
        "countries[1].name: is empty",
        "countries[1].sim_types: is empty",
        "countries[1].capabilities: `sms` is listed twice",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

/// The keys of a struct as its derived `Deserialize` declares them.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Introspect<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Introspect<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Introspect(&mut fields));
    fields
}

fn shown_smpp_password(text: &str) -> Option<String> {
    let shown: toml::Table = toml::from_str(text).ok()?;
    Some(shown["smpp"][0]["password"].as_str()?.to_owned())
}

#[test]
fn smpp_connections_and_routes_are_checked_together() {
    let load = |pairs: &[(&str, &str)]| {
        let mut all = vec![("AMI_CARRIER", "smpp")];
        all.extend_from_slice(pairs);
        Config::load_from(&env(&all)).unwrap_err().to_string()
    };
    let err = load(&[
        (
            "AMI_SMPP",
            r#"[{name = "a", host = "h", system_id = "x", password = "p", window = 0}]"#,
        ),
        (
            "AMI_SMPP_ROUTES",
            r#"[{prefix = "34", connections = ["a"]}]"#,
        ),
    ]);
    assert!(err.contains("smpp[0].window"), "{err}");
    assert!(err.contains("smpp_routes[0].prefix"), "{err}");
    let err = load(&[
        (
            "AMI_SMPP",
            r#"[{name = "a", host = "h", system_id = "x", password = "p", response_timeout_ms = 20000},
                {name = "a", host = "h", system_id = "x", password = ""}]"#,
        ),
        (
            "AMI_SMPP_ROUTES",
            r#"[{prefix = "+34", connections = ["b"]}]"#,
        ),
    ]);
    for expected in [
        "smpp[0].response_timeout_ms",
        "smpp[1].name: duplicate connection name `a`",
        "smpp[1].password: is empty",
        "smpp_routes[0].connections: `b` is not the name of an [[smpp]] connection",
    ] {
        assert!(err.contains(expected), "{expected} missing from {err}");
    }
    assert!(load(&[]).contains("needs at least one [[smpp]] connection"));
}

#[test]
fn config_show_and_debug_list_every_key_with_secrets_redacted() {
    let keys: BTreeSet<&str> = field_names::<Config>().iter().copied().collect();
    assert!(keys.len() >= 40 && keys.contains("demo_pool"), "{keys:?}");

    let c = Config::load_from(&env(&[
        ("AMI_ADMIN_KEY", "adm-SECRET-1"),
        ("AMI_API_KEY", "amik_live_SECRET-2"),
        ("AMI_TELCO_INBOUND_KEY", "telco-SECRET-3"),
        ("AMI_SECRETS_KEY", "sealing-SECRET-6"),
        ("DATABASE_URL", "postgres://ami:pg-SECRET-4@db/ami"),
        ("AMI_CARRIER", "smpp"),
        (
            "AMI_SMPP",
            r#"[{name = "s", host = "smsc", system_id = "ami", password = "smpp-SECRET-5"}]"#,
        ),
    ]))
    .unwrap();
    let text = c.redacted_toml();
    assert_eq!(shown_smpp_password(&text), Some("<redacted>".to_owned()));
    let shown: toml::Table = toml::from_str(&text).unwrap();
    let shown_keys: BTreeSet<&str> = shown.keys().map(String::as_str).collect();
    assert_eq!(shown_keys, keys, "{text}");
    for secret in ["admin_key", "api_key", "telco_inbound_key", "secrets_key"] {
        assert_eq!(shown[secret].as_str(), Some("<redacted>"), "{secret}");
    }
    assert_eq!(
        shown["database_url"].as_str(),
        Some("postgres://ami:<redacted>@db/ami")
    );
    let debug = format!("{c:?}");
    for key in &keys {
        assert!(
            debug.contains(&format!("{key}: ")),
            "{key} missing from {debug}"
        );
    }
    for text in [&text, &debug] {
        assert!(!text.contains("SECRET"), "{text}");
    }

    // The embedded defaults declare exactly the keys of the structure.
    let defaults: toml::Table = toml::from_str(DEFAULT_TOML).unwrap();
    let default_keys: BTreeSet<&str> = defaults.keys().map(String::as_str).collect();
    assert_eq!(default_keys, keys);
}

#[test]
fn every_key_is_documented_in_default_toml_and_the_readme() {
    let readme = include_str!("../../../../README.md");
    let defaults: toml::Table = toml::from_str(DEFAULT_TOML).unwrap();
    let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
    for key in field_names::<Config>() {
        // An array of tables with no entry by default is declared `key = []`.
        let is_table_array = defaults[*key]
            .as_array()
            .is_some_and(|items| !items.is_empty() && items.iter().all(toml::Value::is_table));
        let declaration = if is_table_array {
            format!("[[{key}]]")
        } else if defaults[*key].is_table() {
            format!("[{key}]")
        } else {
            format!("{key} = ")
        };
        assert!(
            readme.contains(&format!("| `{key}` |"))
                || readme.contains(&format!("| `[[{key}]]` |"))
                || readme.contains(&format!("| `[{key}]` |")),
            "no README row for {key}"
        );
        let at = lines
            .iter()
            .position(|l| l.starts_with(&declaration))
            .unwrap_or_else(|| panic!("{key} is not declared in default.toml"));
        assert!(
            at > 0 && lines[at - 1].starts_with('#'),
            "{key} has no comment above it in default.toml"
        );
    }
}

fn shown_trunk_password(text: &str) -> Option<String> {
    let shown: toml::Table = toml::from_str(text).ok()?;
    Some(shown["sip_trunks"][0]["password"].as_str()?.to_owned())
}

#[test]
fn sip_settings_are_checked_together() {
    let load = |pairs: &[(&str, &str)]| {
        let mut all = vec![("AMI_CALL_CARRIER", "sip")];
        all.extend_from_slice(pairs);
        Config::load_from(&env(&all))
    };
    // The defaults listen on 0.0.0.0 and name no trunk.
    let err = load(&[]).unwrap_err().to_string();
    assert!(
        err.contains("needs at least one [[sip_trunks]] trunk"),
        "{err}"
    );
    assert!(err.contains("sip.public_host: must be set"), "{err}");

    let sip = r#"{listen_udp = "127.0.0.1:5060", listen_tcp = "", public_host = "", rtp_port_first = 20000, rtp_port_last = 20001, codecs = ["PCMU", "G729"], ring_timeout_secs = 30}"#;
    let err = load(&[
        ("AMI_SIP", sip),
        (
            "AMI_SIP_TRUNKS",
            r#"[{name = "t", proxy = "nohost", transport = "tcp", username = "u", allowed_sources = ["10.0.0.0/8", "bad"]}]"#,
        ),
    ])
    .unwrap_err()
    .to_string();
    for expected in [
        "sip.codecs",
        "`G729` is not a supported codec",
        "sip_trunks[0].allowed_sources",
    ] {
        assert!(err.contains(expected), "{expected} missing from {err}");
    }

    let sip = r#"{listen_udp = "127.0.0.1:5060", listen_tcp = "", public_host = "", rtp_port_first = 20000, rtp_port_last = 20001, codecs = ["PCMU"], ring_timeout_secs = 30}"#;
    let err = load(&[
        ("AMI_SIP", sip),
        (
            "AMI_SIP_TRUNKS",
            r#"[{name = "t", proxy = "nohost", transport = "tcp", username = "u"}]"#,
        ),
    ])
    .unwrap_err()
    .to_string();
    for expected in [
        "sip.rtp_port_last: must be at least rtp_port_first + 3",
        "sip_trunks[0] (t).proxy: `nohost` is not host:port",
        "transport is tcp but sip.listen_tcp is not set",
        "username and password go together",
    ] {
        assert!(err.contains(expected), "{expected} missing from {err}");
    }

    let sip = r#"{listen_udp = "0.0.0.0:5060", listen_tcp = "", public_host = "203.0.113.7", rtp_port_first = 20000, rtp_port_last = 20999, codecs = ["PCMA", "PCMU"], ring_timeout_secs = 45}"#;
    let c = load(&[
        ("AMI_SIP", sip),
        (
            "AMI_SIP_TRUNKS",
            r#"[{name = "t", proxy = "sip.example:5060", username = "u", password = "trunk-SECRET-6", register = true, allowed_sources = ["192.0.2.10"], number_format = { national = { country_prefix = "34" } }}]"#,
        ),
    ])
    .unwrap();
    assert_eq!(c.call_carrier, super::CallCarrier::Sip);
    assert_eq!(c.carrier, super::Carrier::Sandbox);
    let settings = c.sip.settings(&c.sip_trunks);
    assert_eq!(settings.validate(), Ok(()));
    assert_eq!(settings.ring_timeout_secs, 45);
    assert!(settings.trunks[0].allows("192.0.2.10".parse().unwrap()));
    assert_eq!(
        c.sip.codec_list(),
        [ami_voice::Codec::Pcma, ami_voice::Codec::Pcmu]
    );
    let text = c.redacted_toml();
    assert_eq!(shown_trunk_password(&text), Some("<redacted>".to_owned()));
    for shown in [&text, &format!("{c:?}"), &format!("{settings:?}")] {
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
