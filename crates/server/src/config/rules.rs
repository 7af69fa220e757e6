//! Rules across keys or entries, checked once every value has been read. A rule reading a
//! value that could not be read as given is skipped (see `collect.rs`).

use ami_core::phone::E164;

use super::Config;
use super::catalogue::PoolRange;
use super::collect::{Path, Problem, Soundness};
use super::types::shown;

/// A carrier call must end this long before its dispatcher's lease can.
const DISPATCH_LEASE_MARGIN_MS: u64 = 5_000;

pub(super) fn check(c: &Config, sound: &Soundness) -> Vec<Problem> {
    let mut problems = Vec::new();
    let key = Path::key;

    if sound.all(&[key("webhook_connect_timeout_ms"), key("webhook_timeout_ms")])
        && c.webhook_connect_timeout_ms > c.webhook_timeout_ms
    {
        problems.push(Problem::new(
            key("webhook_connect_timeout_ms"),
            "must not exceed webhook_timeout_ms",
        ));
    }
    // A lease that can run out during an attempt would let a second worker make the same
    // attempt at the same time.
    if sound.all(&[key("webhook_lease_ms"), key("webhook_timeout_ms")])
        && c.webhook_lease_ms <= c.webhook_timeout_ms
    {
        problems.push(Problem::new(
            key("webhook_lease_ms"),
            "must be longer than webhook_timeout_ms",
        ));
    }
    // Likewise a claimed outbox job: its carrier call ends before its lease can.
    if sound.all(&[key("dispatch_lease_ms"), key("carrier_timeout_ms")])
        && c.dispatch_lease_ms.get() < c.carrier_timeout_ms.get() + DISPATCH_LEASE_MARGIN_MS
    {
        problems.push(Problem::new(
            key("dispatch_lease_ms"),
            format!(
                "must exceed carrier_timeout_ms by at least {DISPATCH_LEASE_MARGIN_MS}, got {} \
                 with carrier_timeout_ms = {}",
                c.dispatch_lease_ms.get(),
                c.carrier_timeout_ms.get()
            ),
        ));
    }
    if sound.all(&[key("demo_enabled"), key("sandbox")]) && c.demo_enabled && !c.sandbox {
        problems.push(Problem::new(
            key("demo_enabled"),
            "needs sandbox = true (the demo takes sandbox numbers)",
        ));
    }

    if sound.all(&[key("backup_dir"), key("database_url")])
        && c.backup_dir.is_some()
        && ami_store::ownership::sqlite_path(c.database_url.as_str()).is_none()
    {
        problems.push(Problem::new(
            key("backup_dir"),
            "scheduled backups are of a SQLite database; on PostgreSQL use pg_dump (docs/deploy.md)",
        ));
    }

    super::smpp_rules::check(c, sound, &mut problems);
    super::sip_rules::check(c, sound, &mut problems);

    for (i, country) in c.countries.iter().enumerate() {
        let at = key("countries").index(i).field("code");
        let duplicate = c.countries[..i].iter().enumerate().any(|(j, earlier)| {
            earlier.code == country.code && sound.holds(&key("countries").index(j).field("code"))
        });
        if duplicate && sound.holds(&at) {
            problems.push(Problem::new(
                at,
                format!("duplicate country code `{}`", country.code),
            ));
        }
    }

    // The demo pool is held to the catalogue only when the demo runs: a deployment with a
    // catalogue of its own need not redo an unused pool.
    let catalogue = sound.holds(&key("countries"));
    let sandbox = Pool {
        name: "sandbox_pool",
        ranges: &c.sandbox_pool,
        catalogue,
    };
    let sandbox = sandbox.check(c, &[], sound, &mut problems);
    let demo = Pool {
        name: "demo_pool",
        ranges: &c.demo_pool,
        catalogue: catalogue && c.demo_enabled && sound.holds(&key("demo_enabled")),
    };
    demo.check(c, &sandbox, sound, &mut problems);
    problems
}

/// A range found sound, with where it is written.
struct Checked<'a> {
    path: Path,
    range: &'a PoolRange,
}

impl Checked<'_> {
    fn overlaps(&self, range: &PoolRange) -> bool {
        let (first, end) = (range.first(), range.first() + u64::from(range.count) - 1);
        let other = self.range;
        other.from.as_str().len() == range.from.as_str().len()
            && other.first() <= end
            && first < other.first() + u64::from(other.count)
    }
}

/// The ranges of one pool.
struct Pool<'a> {
    name: &'static str,
    ranges: &'a [PoolRange],
    /// Whether each range's country must be in the catalogue.
    catalogue: bool,
}

impl<'a> Pool<'a> {
    /// Checks each range on its own (and against the catalogue), against the pool's earlier
    /// ranges and against `apart_from` (another pool it must not share a number with).
    /// Returns the sound ranges.
    fn check(
        &self,
        c: &Config,
        apart_from: &[Checked<'_>],
        sound: &Soundness,
        problems: &mut Vec<Problem>,
    ) -> Vec<Checked<'a>> {
        let mut checked: Vec<Checked<'a>> = Vec::new();
        for (i, range) in self.ranges.iter().enumerate() {
            let at = Path::key(self.name).index(i);
            if !sound.holds(&at) {
                continue;
            }
            if let Err(problem) = one_range(c, range, &at, self.catalogue) {
                problems.push(problem);
                continue;
            }
            if let Some(other) = checked.iter().chain(apart_from).find(|o| o.overlaps(range)) {
                problems.push(Problem::new(
                    at,
                    format!(
                        "overlaps {} (the range starting at {})",
                        other.path, other.range.from
                    ),
                ));
                continue;
            }
            checked.push(Checked { path: at, range });
        }
        checked
    }
}

fn one_range(c: &Config, range: &PoolRange, at: &Path, catalogue: bool) -> Result<(), Problem> {
    let from = &range.from;
    let code = &range.country;
    if catalogue {
        let Some(country) = c.country(code) else {
            return Err(Problem::new(
                at.clone().field("country"),
                format!(
                    "country `{}` is not in the countries catalogue",
                    shown(code)
                ),
            ));
        };
        if !from.as_str().starts_with(&country.msisdn_prefix) {
            return Err(Problem::new(
                at.clone().field("from"),
                format!("{from} does not start with {}", country.msisdn_prefix),
            ));
        }
    }
    plausible(from.as_str(), code).map_err(|why| Problem::new(at.clone().field("from"), why))?;
    let last = range.last();
    if last.len() != from.as_str().len() {
        return Err(Problem::new(
            at.clone(),
            format!("the range from {from} overflows its number length"),
        ));
    }
    plausible(&last, code).map_err(|why| {
        Problem::new(
            at.clone().field("count"),
            format!("the last number of the range: {why}"),
        )
    })
}

/// A number the numbering plan accepts as belonging to `country`.
fn plausible(number: &str, country: &str) -> Result<(), String> {
    let valid = E164::parse(number)
        .ok()
        .and_then(|n| n.valid_country())
        .is_some_and(|c| c == country);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{number} is not a valid {country} number per the numbering plan"
        ))
    }
}
