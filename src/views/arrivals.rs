//! The trigger's progress: of the users left to the migration trigger, how many are in the pool
//! now, how many remain, and when they arrived (by the pool users' `UserCreateDate`). A value
//! ([`TriggerProgress`]) that `progress` prints as a table or JSON and the HTML report can render.
//!
//! When to retire the trigger and the legacy directory: the figures that tell are the arrivals of
//! the last 7 and 30 days and the days since the last arrival. Once arrivals have dried up (none,
//! or a handful, in 30 days), the users who remain are users who no longer sign in; retiring the
//! trigger means they will have to be imported without a password (they reset it) or dropped.

use std::collections::BTreeMap;

use serde::Serialize;

use super::date::{day_of, iso, ymd, DAY_MS};
use super::{Matched, Origin};

/// Arrivals on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub arrivals: u64,
}

/// Where the trigger stands. Every count is of users left to the trigger; `percent_arrived` is
/// `arrived / left_to_trigger * 100` (0 when nobody was left to it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TriggerProgress {
    pub pool_id: String,
    /// When the pool was read (`YYYY-MM-DDTHH:MM:SSZ`) and as Unix milliseconds.
    pub as_of: String,
    pub as_of_ms: i64,
    /// Users left to the trigger (the directory's users, or the run's `trigger` users).
    pub left_to_trigger: u64,
    /// Of those, users now in the pool.
    pub arrived: u64,
    /// Of those, users not in the pool yet.
    pub remaining: u64,
    pub percent_arrived: f64,
    /// Arrivals per UTC day, oldest first; only days with an arrival.
    pub per_day: Vec<DayCount>,
    /// Arrivals in the 7 and 30 days before `as_of`.
    pub last_7_days: u64,
    pub last_30_days: u64,
    /// Date of the first and last arrival.
    pub first_arrival: Option<String>,
    pub last_arrival: Option<String>,
    /// Whole days from the last arrival to `as_of` (`None`: nobody arrived yet).
    pub days_since_last_arrival: Option<u64>,
    /// Pool users read to find them.
    pub pool_users_seen: u64,
    /// Of the arrived users, those created in the pool before the directory was built (`None`
    /// without a directory): the trigger cannot have created them, so they are users a run put in
    /// the pool itself (e.g. imported without a password) — counted as arrived unless the run's
    /// state is given to leave them out.
    pub in_pool_before_directory: Option<u64>,
}

impl TriggerProgress {
    /// The progress of the trigger users in `matched`, as of `now_ms`.
    /// `directory_built_ms`: when the directory was built, if the users came from one.
    pub fn compute(
        pool_id: &str,
        matched: &Matched,
        now_ms: i64,
        directory_built_ms: Option<i64>,
    ) -> TriggerProgress {
        let mut before = 0u64;
        let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
        let (mut left, mut arrived, mut last7, mut last30) = (0u64, 0u64, 0u64, 0u64);
        let (mut first, mut last): (Option<i64>, Option<i64>) = (None, None);
        for (t, found) in matched.tracked.iter().zip(&matched.found) {
            if t.origin != Origin::Trigger {
                continue;
            }
            left += 1;
            let Some(user) = found else { continue };
            arrived += 1;
            let at = user.created_ms;
            if directory_built_ms.is_some_and(|b| at < b) {
                before += 1;
            }
            *per_day.entry(day_of(at)).or_default() += 1;
            let age = now_ms - at;
            if age < 7 * DAY_MS {
                last7 += 1;
            }
            if age < 30 * DAY_MS {
                last30 += 1;
            }
            first = Some(first.map_or(at, |f| f.min(at)));
            last = Some(last.map_or(at, |l| l.max(at)));
        }
        TriggerProgress {
            pool_id: pool_id.to_string(),
            as_of: iso(now_ms),
            as_of_ms: now_ms,
            left_to_trigger: left,
            arrived,
            remaining: left - arrived,
            percent_arrived: if left == 0 {
                0.0
            } else {
                (arrived as f64 * 1000.0 / left as f64).round() / 10.0
            },
            per_day: per_day
                .into_iter()
                .map(|(d, n)| DayCount {
                    date: ymd(d),
                    arrivals: n,
                })
                .collect(),
            last_7_days: last7,
            last_30_days: last30,
            first_arrival: first.map(|f| ymd(day_of(f))),
            last_arrival: last.map(|l| ymd(day_of(l))),
            days_since_last_arrival: last.map(|l| ((now_ms - l).max(0) / DAY_MS) as u64),
            pool_users_seen: matched.pool_users_seen,
            in_pool_before_directory: directory_built_ms.map(|_| before),
        }
    }

    /// The table `progress` prints.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: String| s.push_str(&format!("{k:<26} {v}\n"));
        line("pool", self.pool_id.clone());
        line("as of", self.as_of.clone());
        line("left to the trigger", self.left_to_trigger.to_string());
        line(
            "arrived (in the pool)",
            format!("{} ({:.1}%)", self.arrived, self.percent_arrived),
        );
        line("remaining", self.remaining.to_string());
        line("arrivals, last 7 days", self.last_7_days.to_string());
        line("arrivals, last 30 days", self.last_30_days.to_string());
        line(
            "last arrival",
            match (&self.last_arrival, self.days_since_last_arrival) {
                (Some(d), Some(n)) => format!("{d} ({n} days ago)"),
                _ => "none yet".into(),
            },
        );
        s.push_str("\narrivals per day (UTC)\n");
        if self.per_day.is_empty() {
            s.push_str("  none\n");
        }
        for d in &self.per_day {
            s.push_str(&format!("  {}  {:>8}\n", d.date, d.arrivals));
        }
        s
    }
}
