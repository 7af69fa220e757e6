//! The per-MID limit decision (PROTOCOL §6). Pure: the store locks the MID's usage row and
//! the (MID, destination, kind) row, calls [`decide`], and writes back what it returns in
//! the same transaction, which is what makes a reservation atomic across replicas.

use crate::limits::{Limits, MAX_RATE_BURST, MAX_RATE_PER_SECOND};
use crate::money::Micros;
use crate::time::DAY_MS;

pub const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sms,
    Call,
}

/// Counters of one MID. Window starts are UTC boundaries in ms (hour, day, calendar month).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// GCRA theoretical arrival time of the next operation (SMS and calls share it).
    pub tat_ms: i64,
    pub hour_start: i64,
    pub sms_hour: i64,
    pub calls_hour: i64,
    pub day_start: i64,
    pub sms_day: i64,
    pub calls_day: i64,
    pub month_start: i64,
    pub spend_month: Micros,
    pub call_seconds_month: i64,
}

/// Counters of one (MID, destination, kind).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationUsage {
    pub hour_start: i64,
    pub hour_count: i64,
    pub day_start: i64,
    pub day_count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    RatePerSecond,
    MonthlyBudget,
    CountryNotAllowed,
    SmsPerHour,
    SmsPerDay,
    CallsPerHour,
    CallsPerDay,
    SmsPerDestinationPerHour,
    SmsPerDestinationPerDay,
    CallsPerDestinationPerHour,
    CallsPerDestinationPerDay,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::RatePerSecond,
        Reason::MonthlyBudget,
        Reason::CountryNotAllowed,
        Reason::SmsPerHour,
        Reason::SmsPerDay,
        Reason::CallsPerHour,
        Reason::CallsPerDay,
        Reason::SmsPerDestinationPerHour,
        Reason::SmsPerDestinationPerDay,
        Reason::CallsPerDestinationPerHour,
        Reason::CallsPerDestinationPerDay,
    ];

    /// The §6 wire reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RatePerSecond => "rate_per_second",
            Reason::MonthlyBudget => "monthly_budget",
            Reason::CountryNotAllowed => "country_not_allowed",
            Reason::SmsPerHour => "sms_per_hour",
            Reason::SmsPerDay => "sms_per_day",
            Reason::CallsPerHour => "calls_per_hour",
            Reason::CallsPerDay => "calls_per_day",
            Reason::SmsPerDestinationPerHour => "sms_per_destination_per_hour",
            Reason::SmsPerDestinationPerDay => "sms_per_destination_per_day",
            Reason::CallsPerDestinationPerHour => "calls_per_destination_per_hour",
            Reason::CallsPerDestinationPerDay => "calls_per_destination_per_day",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub kind: Kind,
    pub now_ms: i64,
    /// Calling prefix of the destination, e.g. "+34", from the numbering plan.
    pub destination_prefix: &'a str,
    /// Money reserved now (SMS: segments × price; call: 0 at placement). Negative counts as 0.
    pub cost: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow {
        usage: Usage,
        destination: DestinationUsage,
    },
    Refuse {
        reason: Reason,
        /// Seconds until waiting helps (≥ 1); None where waiting does not help.
        retry_after_secs: Option<u64>,
    },
}

/// GCRA emission interval in whole ms, rounded up so the enforced rate never exceeds the
/// configured one (exact for rates that divide 1000). None for a rate that admits nothing.
fn emission_interval_ms(rate: f64) -> Option<i64> {
    (rate.is_finite() && rate > 0.0)
        .then(|| (1000.0 / rate.min(MAX_RATE_PER_SECOND)).ceil().max(1.0) as i64)
}

/// Burst size: the MID's `rate_burst`, and never less than one second's worth of its rate
/// (`ceil(rate_per_second)`), so raising the rate alone still lets that many go at once.
fn burst(limits: &Limits) -> i64 {
    let second = limits.rate_per_second.min(MAX_RATE_PER_SECOND).ceil() as i64;
    limits.rate_burst.clamp(1, MAX_RATE_BURST).max(second)
}

/// Whole seconds, rounded up and at least 1, for a wait of `ms`.
fn wait_secs(ms: i64) -> u64 {
    let ms = u64::try_from(ms).unwrap_or(0);
    ms.div_ceil(1000).max(1)
}

/// Rolls every window to `now` first (a counter whose window has passed counts as 0 and
/// its start moves to the current boundary), then checks in order: country allowlist (exact
/// match on the calling prefix; an empty list refuses everything), rate (GCRA, see
/// [`burst`]), per-hour and per-day totals for the kind, per-destination hour/day for the
/// kind, then budget (`spend_month + cost > monthly_budget`). On Allow, returns the updated
/// counters (counts +1, spend + cost, tat advanced); a refusal changes nothing.
///
/// The reason is the first limit that refuses in that order. `retry_after_secs` is when
/// every limit refusing right now will have cleared (a request has to pass all of them),
/// None if one never clears by waiting: the country, a limit of 0, a cost larger than the
/// whole budget, or a month boundary more than 24 h away.
pub fn decide(limits: &Limits, usage: &Usage, dest: &DestinationUsage, req: &Request) -> Decision {
    let now = req.now_ms;
    if !limits
        .allowed_country_prefixes
        .iter()
        .any(|p| p == req.destination_prefix)
    {
        return Decision::Refuse {
            reason: Reason::CountryNotAllowed,
            retry_after_secs: None,
        };
    }
    let mut u = rolled(usage, now);
    let mut d = rolled_destination(dest, now);
    let cost = req.cost.max(0);
    // Each refusing limit with the wait after which it clears (None: never by waiting).
    let mut blockers: Vec<(Reason, Option<u64>)> = Vec::new();

    let interval = emission_interval_ms(limits.rate_per_second);
    match interval {
        None => blockers.push((Reason::RatePerSecond, None)),
        Some(t) => {
            let tolerance = t.saturating_mul(burst(limits) - 1);
            let early = u.tat_ms.saturating_sub(tolerance).saturating_sub(now);
            if early > 0 {
                blockers.push((Reason::RatePerSecond, Some(wait_secs(early))));
            }
        }
    }

    let hour_end = u.hour_start.saturating_add(HOUR_MS);
    let day_end = u.day_start.saturating_add(DAY_MS);
    let dest_hour_end = d.hour_start.saturating_add(HOUR_MS);
    let dest_day_end = d.day_start.saturating_add(DAY_MS);
    let counts = match req.kind {
        Kind::Sms => [
            (
                Reason::SmsPerHour,
                u.sms_hour,
                limits.sms_per_hour,
                hour_end,
            ),
            (Reason::SmsPerDay, u.sms_day, limits.sms_per_day, day_end),
            (
                Reason::SmsPerDestinationPerHour,
                d.hour_count,
                limits.sms_per_destination_per_hour,
                dest_hour_end,
            ),
            (
                Reason::SmsPerDestinationPerDay,
                d.day_count,
                limits.sms_per_destination_per_day,
                dest_day_end,
            ),
        ],
        Kind::Call => [
            (
                Reason::CallsPerHour,
                u.calls_hour,
                limits.calls_per_hour,
                hour_end,
            ),
            (
                Reason::CallsPerDay,
                u.calls_day,
                limits.calls_per_day,
                day_end,
            ),
            (
                Reason::CallsPerDestinationPerHour,
                d.hour_count,
                limits.calls_per_destination_per_hour,
                dest_hour_end,
            ),
            (
                Reason::CallsPerDestinationPerDay,
                d.day_count,
                limits.calls_per_destination_per_day,
                dest_day_end,
            ),
        ],
    };
    for (reason, used, limit, window_end) in counts {
        if used >= limit {
            let wait = (limit > 0).then(|| wait_secs(window_end.saturating_sub(now)));
            blockers.push((reason, wait));
        }
    }

    if u.spend_month.saturating_add(cost) > limits.monthly_budget {
        let to_next_month = next_month_start(now).saturating_sub(now);
        let wait = (cost <= limits.monthly_budget && to_next_month <= DAY_MS)
            .then(|| wait_secs(to_next_month));
        blockers.push((Reason::MonthlyBudget, wait));
    }

    if let Some(&(reason, _)) = blockers.first() {
        let retry_after_secs = blockers
            .iter()
            .map(|(_, w)| *w)
            .try_fold(0, |acc, w| w.map(|w| acc.max(w)));
        return Decision::Refuse {
            reason,
            retry_after_secs,
        };
    }

    if let Some(t) = interval {
        u.tat_ms = u.tat_ms.max(now).saturating_add(t);
    }
    match req.kind {
        Kind::Sms => {
            u.sms_hour += 1;
            u.sms_day += 1;
        }
        Kind::Call => {
            u.calls_hour += 1;
            u.calls_day += 1;
        }
    }
    u.spend_month = u.spend_month.saturating_add(cost);
    d.hour_count += 1;
    d.day_count += 1;
    Decision::Allow {
        usage: u,
        destination: d,
    }
}

/// Adds the cost of a completed call (per started minute already computed by the caller) or
/// releases a reservation (negative), never below 0. Windows are rolled to `now_ms` first.
pub fn charge(usage: &Usage, now_ms: i64, amount: Micros, call_seconds: i64) -> Usage {
    let mut u = rolled(usage, now_ms);
    u.spend_month = u.spend_month.saturating_add(amount).max(0);
    u.call_seconds_month = u.call_seconds_month.saturating_add(call_seconds).max(0);
    u
}

pub fn hour_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

pub fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

pub fn month_start(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    days_from_civil(y, m, 1).saturating_mul(DAY_MS)
}

pub fn next_month_start(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1).saturating_mul(DAY_MS)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm): integer
/// only, total over the whole range, so no fallible calendar library call is needed.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number, inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Usage snapshot numbers for §6: consumed percentages (0..100, rounded to 0.1) of
/// sms_hour, sms_day, calls_hour, calls_day, monthly_budget against the limits, after
/// rolling windows to now. A limit of 0 reads as 100 (nothing left).
pub fn consumed_pct(limits: &Limits, usage: &Usage, now_ms: i64) -> [(&'static str, f64); 5] {
    let u = rolled(usage, now_ms);
    let pct = |used: i64, limit: i64| {
        if limit <= 0 {
            100.0
        } else {
            let p = (used as f64 / limit as f64 * 100.0).clamp(0.0, 100.0);
            (p * 10.0).round() / 10.0
        }
    };
    [
        ("sms_hour", pct(u.sms_hour, limits.sms_per_hour)),
        ("sms_day", pct(u.sms_day, limits.sms_per_day)),
        ("calls_hour", pct(u.calls_hour, limits.calls_per_hour)),
        ("calls_day", pct(u.calls_day, limits.calls_per_day)),
        ("monthly_budget", pct(u.spend_month, limits.monthly_budget)),
    ]
}

/// The counters as seen at `now_ms`. A window only moves forward: if `now_ms` is before a
/// stored start (another replica's clock ran ahead) the counters are kept, never reset.
pub fn rolled(usage: &Usage, now_ms: i64) -> Usage {
    let mut u = usage.clone();
    let h = hour_start(now_ms);
    if h > u.hour_start {
        u.hour_start = h;
        u.sms_hour = 0;
        u.calls_hour = 0;
    }
    let d = day_start(now_ms);
    if d > u.day_start {
        u.day_start = d;
        u.sms_day = 0;
        u.calls_day = 0;
    }
    let m = month_start(now_ms);
    if m > u.month_start {
        u.month_start = m;
        u.spend_month = 0;
        u.call_seconds_month = 0;
    }
    u
}

pub fn rolled_destination(dest: &DestinationUsage, now_ms: i64) -> DestinationUsage {
    let mut d = dest.clone();
    let h = hour_start(now_ms);
    if h > d.hour_start {
        d.hour_start = h;
        d.hour_count = 0;
    }
    let day = day_start(now_ms);
    if day > d.day_start {
        d.day_start = day;
        d.day_count = 0;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_rfc3339, rfc3339};
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn at(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    fn sms(now_ms: i64, cost: Micros) -> Request<'static> {
        Request {
            kind: Kind::Sms,
            now_ms,
            destination_prefix: "+34",
            cost,
        }
    }

    fn call(now_ms: i64) -> Request<'static> {
        Request {
            kind: Kind::Call,
            now_ms,
            destination_prefix: "+34",
            cost: 0,
        }
    }

    /// Generous limits, so each test tightens only the one it is about.
    fn open() -> Limits {
        Limits {
            rate_per_second: 1000.0,
            rate_burst: 1000,
            sms_per_hour: 1000,
            sms_per_day: 1000,
            calls_per_hour: 1000,
            calls_per_day: 1000,
            sms_per_destination_per_hour: 1000,
            sms_per_destination_per_day: 1000,
            calls_per_destination_per_hour: 1000,
            calls_per_destination_per_day: 1000,
            monthly_budget: 1_000_000_000,
            allowed_country_prefixes: vec!["+34".into()],
        }
    }

    /// Runs requests in order, writing back allowed counters like the store does.
    fn run(limits: &Limits, reqs: &[Request]) -> (Usage, Vec<Decision>) {
        let mut u = Usage::default();
        let mut d = DestinationUsage::default();
        let mut out = Vec::new();
        for r in reqs {
            let dec = decide(limits, &u, &d, r);
            if let Decision::Allow { usage, destination } = &dec {
                u = usage.clone();
                d = destination.clone();
            }
            out.push(dec);
        }
        (u, out)
    }

    fn refusal(dec: &Decision) -> Option<(Reason, Option<u64>)> {
        match dec {
            Decision::Refuse {
                reason,
                retry_after_secs,
            } => Some((*reason, *retry_after_secs)),
            Decision::Allow { .. } => None,
        }
    }

    #[test]
    fn reason_names() {
        let names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "rate_per_second",
                "monthly_budget",
                "country_not_allowed",
                "sms_per_hour",
                "sms_per_day",
                "calls_per_hour",
                "calls_per_day",
                "sms_per_destination_per_hour",
                "sms_per_destination_per_day",
                "calls_per_destination_per_hour",
                "calls_per_destination_per_day",
            ]
        );
    }

    #[test]
    fn every_reason_is_reachable() {
        let t = at("2026-03-10T10:30:00Z");
        let mut seen = Vec::new();
        let mut check = |limits: Limits, reqs: Vec<Request>, want: Reason| {
            let (_, decs) = run(&limits, &reqs);
            let got = decs.last().and_then(refusal).map(|r| r.0);
            assert_eq!(got, Some(want));
            // Everything before the last one was allowed.
            assert!(decs[..decs.len() - 1].iter().all(|d| refusal(d).is_none()));
            seen.push(want);
        };
        let sms_n = |n: usize| {
            (0..n)
                .map(|i| sms(t + i as i64 * 10, 1))
                .collect::<Vec<_>>()
        };
        let call_n = |n: usize| (0..n).map(|i| call(t + i as i64 * 10)).collect::<Vec<_>>();

        let mut l = open();
        l.allowed_country_prefixes = vec!["+57".into()];
        check(l, sms_n(1), Reason::CountryNotAllowed);
        let mut l = open();
        l.rate_per_second = 1.0;
        l.rate_burst = 2;
        check(l, sms_n(3), Reason::RatePerSecond);
        let mut l = open();
        l.monthly_budget = 2;
        check(l, sms_n(3), Reason::MonthlyBudget);
        let mut l = open();
        l.sms_per_hour = 2;
        check(l, sms_n(3), Reason::SmsPerHour);
        let mut l = open();
        l.sms_per_day = 2;
        check(l, sms_n(3), Reason::SmsPerDay);
        let mut l = open();
        l.calls_per_hour = 2;
        check(l, call_n(3), Reason::CallsPerHour);
        let mut l = open();
        l.calls_per_day = 2;
        check(l, call_n(3), Reason::CallsPerDay);
        let mut l = open();
        l.sms_per_destination_per_hour = 2;
        check(l, sms_n(3), Reason::SmsPerDestinationPerHour);
        let mut l = open();
        l.sms_per_destination_per_day = 2;
        check(l, sms_n(3), Reason::SmsPerDestinationPerDay);
        let mut l = open();
        l.calls_per_destination_per_hour = 2;
        check(l, call_n(3), Reason::CallsPerDestinationPerHour);
        let mut l = open();
        l.calls_per_destination_per_day = 2;
        check(l, call_n(3), Reason::CallsPerDestinationPerDay);

        for r in Reason::ALL {
            assert!(seen.contains(&r), "{r:?}");
        }
    }

    #[test]
    fn country_is_exact_and_empty_refuses_all() {
        let mut l = open();
        l.allowed_country_prefixes = vec!["+3".into(), "+1".into()];
        let refused = |l: &Limits, p: &str| {
            let r = Request {
                destination_prefix: p,
                ..sms(0, 1)
            };
            refusal(&decide(
                l,
                &Usage::default(),
                &DestinationUsage::default(),
                &r,
            ))
        };
        assert_eq!(refused(&l, "+34"), Some((Reason::CountryNotAllowed, None)));
        assert_eq!(refused(&l, "+1"), None);
        l.allowed_country_prefixes.clear();
        assert_eq!(refused(&l, "+1"), Some((Reason::CountryNotAllowed, None)));
    }

    #[test]
    fn kinds_count_separately_and_destination_is_per_kind() {
        let t = at("2026-03-10T10:00:00Z");
        let (u, _) = run(&open(), &[sms(t, 7), call(t + 1), sms(t + 2, 3)]);
        assert_eq!(
            (u.sms_hour, u.sms_day, u.calls_hour, u.calls_day),
            (2, 2, 1, 1)
        );
        assert_eq!(u.spend_month, 10);
        assert_eq!(
            (u.hour_start, u.day_start, u.month_start),
            (t, at("2026-03-10T00:00:00Z"), at("2026-03-01T00:00:00Z"))
        );
    }

    #[test]
    fn boundaries_are_utc() {
        let cases = [
            (
                "2026-01-31T23:59:59.999Z",
                "2026-01-31T23:00:00.000Z",
                "2026-01-31T00:00:00.000Z",
                "2026-01-01T00:00:00.000Z",
                "2026-02-01T00:00:00.000Z",
            ),
            (
                "2026-02-01T00:00:00.000Z",
                "2026-02-01T00:00:00.000Z",
                "2026-02-01T00:00:00.000Z",
                "2026-02-01T00:00:00.000Z",
                "2026-03-01T00:00:00.000Z",
            ),
            (
                "2028-02-29T12:34:56.000Z",
                "2028-02-29T12:00:00.000Z",
                "2028-02-29T00:00:00.000Z",
                "2028-02-01T00:00:00.000Z",
                "2028-03-01T00:00:00.000Z",
            ),
            (
                "2026-12-31T23:59:59.999Z",
                "2026-12-31T23:00:00.000Z",
                "2026-12-31T00:00:00.000Z",
                "2026-12-01T00:00:00.000Z",
                "2027-01-01T00:00:00.000Z",
            ),
            (
                "1969-12-31T23:30:00.000Z",
                "1969-12-31T23:00:00.000Z",
                "1969-12-31T00:00:00.000Z",
                "1969-12-01T00:00:00.000Z",
                "1970-01-01T00:00:00.000Z",
            ),
        ];
        for (t, h, d, m, next) in cases {
            let ms = at(t);
            assert_eq!(rfc3339(hour_start(ms)), h, "{t}");
            assert_eq!(rfc3339(day_start(ms)), d, "{t}");
            assert_eq!(rfc3339(month_start(ms)), m, "{t}");
            assert_eq!(rfc3339(next_month_start(ms)), next, "{t}");
        }
    }

    #[test]
    fn windows_reset_exactly_at_the_boundary() {
        let mut l = open();
        l.sms_per_hour = 1;
        l.sms_per_day = 2;
        l.monthly_budget = 10;
        let last = at("2026-01-31T23:59:59.999Z");
        let (_, decs) = run(
            &l,
            &[
                sms(at("2026-01-31T22:59:59.999Z"), 5),
                sms(at("2026-01-31T23:00:00.000Z"), 5),
                sms(last - 1, 0),
                sms(last, 0),
                sms(at("2026-02-01T00:00:00.000Z"), 10),
            ],
        );
        let reasons: Vec<_> = decs.iter().map(|d| refusal(d).map(|r| r.0)).collect();
        assert_eq!(
            reasons,
            [
                None,
                None,
                Some(Reason::SmsPerHour),
                Some(Reason::SmsPerHour),
                None
            ]
        );
        // The refusal one ms before midnight says one second, and counts a full day and
        // month of budget from the new boundary.
        assert_eq!(refusal(&decs[3]), Some((Reason::SmsPerHour, Some(1))));
        if let Decision::Allow { usage, .. } = &decs[4] {
            assert_eq!(
                (usage.sms_hour, usage.sms_day, usage.spend_month),
                (1, 1, 10)
            );
        } else {
            panic!("allowed after midnight");
        }
    }

    #[test]
    fn leap_february_rolls_to_march() {
        let u = Usage {
            month_start: at("2028-02-01T00:00:00Z"),
            spend_month: 99,
            call_seconds_month: 61,
            ..Usage::default()
        };
        assert_eq!(rolled(&u, at("2028-02-29T23:59:59.999Z")).spend_month, 99);
        let r = rolled(&u, at("2028-03-01T00:00:00Z"));
        assert_eq!((r.spend_month, r.call_seconds_month), (0, 0));
        assert_eq!(r.month_start, at("2028-03-01T00:00:00Z"));
    }

    #[test]
    fn clock_behind_the_stored_window_keeps_counts() {
        let u = Usage {
            hour_start: at("2026-03-10T11:00:00Z"),
            sms_hour: 4,
            ..Usage::default()
        };
        assert_eq!(rolled(&u, at("2026-03-10T10:59:59Z")).sms_hour, 4);
    }

    #[test]
    fn burst_at_rate_5_admits_at_most_burst_plus_5_per_second() {
        let mut l = open();
        l.rate_per_second = 5.0;
        l.rate_burst = 5;
        let t0 = at("2026-03-10T10:00:00Z");
        // One attempt every ms for one simulated second, both ends included.
        let reqs: Vec<_> = (0..=1000).map(|i| sms(t0 + i, 0)).collect();
        let (_, decs) = run(&l, &reqs);
        let admitted = decs.iter().filter(|d| refusal(d).is_none()).count();
        assert_eq!(admitted, 5 + 5);
        // The first burst is all at t0.
        assert!(decs[..5].iter().all(|d| refusal(d).is_none()));
        assert_eq!(refusal(&decs[5]), Some((Reason::RatePerSecond, Some(1))));
    }

    #[test]
    fn the_default_burst_passes_30_at_once_then_the_rate_holds() {
        // The default rate and burst; everything else open.
        let defaults = Limits::default();
        let mut l = open();
        l.rate_per_second = defaults.rate_per_second;
        l.rate_burst = defaults.rate_burst;
        assert_eq!((l.rate_per_second, l.rate_burst), (1.0, 30));
        let t0 = at("2026-03-10T10:00:00Z");
        // 30 at once, then a runaway loop trying every 10 ms for a minute.
        let mut reqs: Vec<_> = (0..30).map(|_| sms(t0, 0)).collect();
        reqs.extend((1..=6000).map(|i| sms(t0 + i * 10, 0)));
        let (_, decs) = run(&l, &reqs);
        assert!(decs[..30].iter().all(|d| refusal(d).is_none()));
        assert_eq!(refusal(&decs[30]), Some((Reason::RatePerSecond, Some(1))));
        // After the burst, one per second: 60 in the minute that follows.
        let later = decs[30..].iter().filter(|d| refusal(d).is_none()).count();
        assert_eq!(later, 60);
    }

    #[test]
    fn a_small_burst_still_lets_an_sms_and_a_call_through() {
        let mut l = open();
        l.rate_per_second = 0.5;
        l.rate_burst = 2;
        let t0 = at("2026-03-10T10:00:00Z");
        let (_, decs) = run(&l, &[sms(t0, 0), call(t0), sms(t0, 0), sms(t0 + 2000, 0)]);
        let ok: Vec<_> = decs.iter().map(|d| refusal(d).is_none()).collect();
        assert_eq!(ok, [true, true, false, true]);
        // tat = t0 + 4 s, tolerance 2 s: waiting 2 s helps.
        assert_eq!(refusal(&decs[2]), Some((Reason::RatePerSecond, Some(2))));
    }

    #[test]
    fn fractional_rate_never_exceeds_the_configured_one() {
        assert_eq!(emission_interval_ms(3.0), Some(334));
        assert_eq!(emission_interval_ms(1000.0), Some(1));
        assert_eq!(emission_interval_ms(0.0), None);
        assert_eq!(emission_interval_ms(f64::NAN), None);
        let mut l = open();
        l.rate_per_second = 0.0;
        let (_, decs) = run(&l, &[sms(0, 0)]);
        assert_eq!(refusal(&decs[0]), Some((Reason::RatePerSecond, None)));
    }

    #[test]
    fn budget_is_exactly_reachable() {
        let mut l = open();
        l.monthly_budget = 1_000;
        let t = at("2026-03-10T10:00:00Z");
        let (u, decs) = run(
            &l,
            &[sms(t, 600), sms(t + 1, 400), sms(t + 2, 1), sms(t + 3, 0)],
        );
        let ok: Vec<_> = decs.iter().map(|d| refusal(d).is_none()).collect();
        assert_eq!(ok, [true, true, false, true]);
        assert_eq!(u.spend_month, 1_000);
        // Weeks from the month's end, waiting does not help.
        assert_eq!(refusal(&decs[2]), Some((Reason::MonthlyBudget, None)));
    }

    #[test]
    fn budget_retry_only_within_a_day_of_the_month_end() {
        let mut l = open();
        l.monthly_budget = 1_000;
        let full = Usage {
            month_start: at("2026-03-01T00:00:00Z"),
            spend_month: 1_000,
            ..Usage::default()
        };
        let dest = DestinationUsage::default();
        let near = at("2026-03-31T23:00:00Z");
        assert_eq!(
            refusal(&decide(&l, &full, &dest, &sms(near, 1))),
            Some((Reason::MonthlyBudget, Some(3600)))
        );
        // A cost beyond the whole budget never fits.
        assert_eq!(
            refusal(&decide(&l, &full, &dest, &sms(near, 1_001))),
            Some((Reason::MonthlyBudget, None))
        );
        assert_eq!(
            refusal(&decide(
                &l,
                &full,
                &dest,
                &sms(at("2026-03-30T23:59:59Z"), 1)
            )),
            Some((Reason::MonthlyBudget, None))
        );
        // A call reserves nothing, so it passes at an exactly spent budget.
        assert!(refusal(&decide(&l, &full, &dest, &call(near))).is_none());
    }

    #[test]
    fn count_retry_after_and_zero_limits() {
        let t = at("2026-03-10T10:59:00Z");
        let mut l = open();
        l.sms_per_hour = 1;
        let (_, decs) = run(&l, &[sms(t, 0), sms(t + 500, 0)]);
        assert_eq!(refusal(&decs[1]), Some((Reason::SmsPerHour, Some(60))));
        // Hour and day both full: only the day boundary helps.
        l.sms_per_day = 1;
        let (_, decs) = run(&l, &[sms(t, 0), sms(t + 500, 0)]);
        assert_eq!(
            refusal(&decs[1]),
            Some((Reason::SmsPerHour, Some(13 * 3600 + 60)))
        );
        // A limit of 0 never clears by waiting.
        let mut l = open();
        l.calls_per_destination_per_day = 0;
        let (_, decs) = run(&l, &[call(t)]);
        assert_eq!(
            refusal(&decs[0]),
            Some((Reason::CallsPerDestinationPerDay, None))
        );
    }

    #[test]
    fn refusal_changes_nothing_and_allow_advances_tat() {
        let mut l = open();
        l.rate_per_second = 2.0;
        let t = at("2026-03-10T10:00:00Z");
        let u = Usage::default();
        let d = DestinationUsage::default();
        let Decision::Allow { usage, destination } = decide(&l, &u, &d, &sms(t, 5)) else {
            panic!("first request allowed");
        };
        assert_eq!(usage.tat_ms, t + 500);
        assert_eq!((destination.hour_count, destination.day_count), (1, 1));
        assert_eq!(destination.hour_start, t);
        // Refusals only return a reason; the caller's rows stay as they were.
        l.allowed_country_prefixes.clear();
        assert!(refusal(&decide(&l, &usage, &destination, &sms(t, 5))).is_some());
    }

    #[test]
    fn charge_and_release() {
        let t = at("2026-03-10T10:00:00Z");
        let u = Usage {
            month_start: at("2026-03-01T00:00:00Z"),
            spend_month: 500,
            call_seconds_month: 30,
            ..Usage::default()
        };
        let c = charge(&u, t, 200, 61);
        assert_eq!((c.spend_month, c.call_seconds_month), (700, 91));
        let r = charge(&u, t, -800, 0);
        assert_eq!(r.spend_month, 0);
        // In a new month the old spend is gone before the charge lands.
        let n = charge(&u, at("2026-04-01T00:00:00Z"), 200, 60);
        assert_eq!((n.spend_month, n.call_seconds_month), (200, 60));
    }

    #[test]
    fn consumed_percentages() {
        let l = Limits {
            sms_per_hour: 3,
            sms_per_day: 500,
            calls_per_hour: 0,
            calls_per_day: 200,
            monthly_budget: 100,
            ..open()
        };
        let t = at("2026-03-10T10:00:00Z");
        let u = Usage {
            hour_start: t,
            sms_hour: 1,
            day_start: at("2026-03-10T00:00:00Z"),
            sms_day: 501,
            calls_day: 1,
            month_start: at("2026-03-01T00:00:00Z"),
            spend_month: 50,
            ..Usage::default()
        };
        assert_eq!(
            consumed_pct(&l, &u, t + 1),
            [
                ("sms_hour", 33.3),
                ("sms_day", 100.0),
                ("calls_hour", 100.0),
                ("calls_day", 0.5),
                ("monthly_budget", 50.0),
            ]
        );
        // An hour later the hourly window has rolled.
        assert_eq!(consumed_pct(&l, &u, t + HOUR_MS)[0], ("sms_hour", 0.0));
    }

    proptest! {
        #[test]
        fn calendar_matches_chrono(ms in -5_000_000_000_000i64..10_000_000_000_000) {
            use chrono::{Datelike, TimeZone, Utc};
            let dt = Utc.timestamp_millis_opt(ms).unwrap();
            let first = Utc
                .with_ymd_and_hms(dt.year(), dt.month(), 1, 0, 0, 0)
                .unwrap();
            prop_assert_eq!(month_start(ms), first.timestamp_millis());
            let next = if dt.month() == 12 {
                Utc.with_ymd_and_hms(dt.year() + 1, 1, 1, 0, 0, 0)
            } else {
                Utc.with_ymd_and_hms(dt.year(), dt.month() + 1, 1, 0, 0, 0)
            }
            .unwrap();
            prop_assert_eq!(next_month_start(ms), next.timestamp_millis());
        }

        #[test]
        fn limits_are_never_overshot(
            rate in prop::sample::select(vec![0.5, 1.0, 3.0, 5.0, 50.0]),
            rate_burst in 1i64..40,
            sms_hour in 0i64..8,
            sms_day in 0i64..20,
            calls_hour in 0i64..5,
            calls_day in 0i64..10,
            per_dest in 0i64..4,
            per_dest_day in 0i64..6,
            budget in 0i64..2_000,
            start in 0i64..(3 * DAY_MS),
            ops in prop::collection::vec(
                (
                    prop_oneof![0i64..1_500, 0i64..900_000, 0i64..(20 * DAY_MS)],
                    any::<bool>(),
                    0usize..3,
                    0i64..300,
                    prop::sample::select(vec!["+34", "+34", "+34", "+57"]),
                ),
                1..250,
            ),
        ) {
            let limits = Limits {
                rate_per_second: rate,
                rate_burst,
                sms_per_hour: sms_hour,
                sms_per_day: sms_day,
                calls_per_hour: calls_hour,
                calls_per_day: calls_day,
                sms_per_destination_per_hour: per_dest,
                sms_per_destination_per_day: per_dest_day,
                calls_per_destination_per_hour: per_dest,
                calls_per_destination_per_day: per_dest_day,
                monthly_budget: budget,
                allowed_country_prefixes: vec!["+34".into()],
            };
            // 2026-01-29: the run crosses day and month ends.
            let mut now = at("2026-01-29T00:00:00Z") + start;
            let mut usage = Usage::default();
            let mut dests: HashMap<(usize, bool), DestinationUsage> = HashMap::new();
            let mut spend: HashMap<i64, i64> = HashMap::new();
            let mut counts: HashMap<(bool, &str, i64), i64> = HashMap::new();
            let mut dest_counts: HashMap<(bool, usize, &str, i64), i64> = HashMap::new();
            let mut admitted: Vec<i64> = Vec::new();
            for (dt, is_sms, dest, cost, prefix) in ops {
                now += dt;
                let kind = if is_sms { Kind::Sms } else { Kind::Call };
                let cost = if is_sms { cost } else { 0 };
                let req = Request { kind, now_ms: now, destination_prefix: prefix, cost };
                let du = dests.get(&(dest, is_sms)).cloned().unwrap_or_default();
                let Decision::Allow { usage: nu, destination } = decide(&limits, &usage, &du, &req)
                else {
                    continue;
                };
                prop_assert_eq!(prefix, "+34");
                usage = nu;
                dests.insert((dest, is_sms), destination);
                admitted.push(now);
                let s = spend.entry(month_start(now)).or_default();
                *s += cost;
                prop_assert!(*s <= budget);
                prop_assert!(usage.spend_month <= budget);
                for (w, start) in [("h", hour_start(now)), ("d", day_start(now))] {
                    *counts.entry((is_sms, w, start)).or_default() += 1;
                    *dest_counts.entry((is_sms, dest, w, start)).or_default() += 1;
                }
            }
            for ((is_sms, w, _), n) in counts {
                let max = match (is_sms, w) {
                    (true, "h") => sms_hour,
                    (true, _) => sms_day,
                    (false, "h") => calls_hour,
                    (false, _) => calls_day,
                };
                prop_assert!(n <= max);
            }
            for ((_, _, w, _), n) in dest_counts {
                let max = if w == "h" { per_dest } else { per_dest_day };
                prop_assert!(n <= max);
            }
            // GCRA: over any 1 s span at most burst + ceil(rate) operations.
            let cap = burst(&limits) as usize + rate.ceil() as usize;
            for (i, t) in admitted.iter().enumerate() {
                let within = admitted[i..].iter().take_while(|x| **x <= t + 1000).count();
                prop_assert!(within <= cap, "{} in 1 s, cap {}", within, cap);
            }
        }
    }
}
