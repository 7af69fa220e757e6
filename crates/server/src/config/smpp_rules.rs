//! Rules across the SMPP entries: the carrier has connections, names are unique, routes
//! name connections that exist, and a submission's response always comes before the
//! carrier timeout cuts it off.

use super::Config;
use super::collect::{Path, Problem, Soundness};
use super::types::Carrier;

/// What `carrier_timeout_ms` must leave after a connection's response timeout: the time a
/// batch needs to record its outcome.
const SUBMIT_MARGIN_MS: u64 = 1_000;

pub(super) fn check(c: &Config, sound: &Soundness, problems: &mut Vec<Problem>) {
    let key = Path::key;
    if !sound.all(&[key("carrier"), key("smpp"), key("smpp_routes")]) {
        return;
    }
    if c.carrier == Carrier::Smpp && c.smpp.is_empty() {
        problems.push(Problem::new(
            key("smpp"),
            "carrier = \"smpp\" needs at least one [[smpp]] connection",
        ));
    }
    for (i, conn) in c.smpp.iter().enumerate() {
        if c.smpp[..i].iter().any(|earlier| earlier.name == conn.name) {
            problems.push(Problem::new(
                key("smpp").index(i).field("name"),
                format!("duplicate connection name `{}`", conn.name),
            ));
        }
        if !conn.password.is_set() {
            problems.push(Problem::new(
                key("smpp").index(i).field("password"),
                "is empty",
            ));
        }
        if sound.holds(&key("carrier_timeout_ms"))
            && conn.response_timeout_ms + SUBMIT_MARGIN_MS > c.carrier_timeout_ms.get()
        {
            problems.push(Problem::new(
                key("smpp").index(i).field("response_timeout_ms"),
                format!(
                    "must be at least {SUBMIT_MARGIN_MS} below carrier_timeout_ms ({}), got {}",
                    c.carrier_timeout_ms.get(),
                    conn.response_timeout_ms
                ),
            ));
        }
    }
    for (i, route) in c.smpp_routes.iter().enumerate() {
        let at = key("smpp_routes").index(i).field("connections");
        if route.connections.is_empty() {
            problems.push(Problem::new(at.clone(), "names no connection"));
        }
        for name in &route.connections {
            if !c.smpp.iter().any(|conn| &conn.name == name) {
                problems.push(Problem::new(
                    at.clone(),
                    format!("`{name}` is not the name of an [[smpp]] connection"),
                ));
            }
        }
        if c.smpp_routes[..i].iter().any(|r| r.prefix == route.prefix) {
            problems.push(Problem::new(
                key("smpp_routes").index(i).field("prefix"),
                format!("duplicate prefix `{}`", route.prefix),
            ));
        }
    }
}
