//! What a run did over time, for `report --html` (schema V4_VISIBILITY): AdminCreateUser calls
//! and throttles per second, when each chunk was uploaded, the run's time span, rejections by
//! reason and field, and the `sync_runs` table when a `sync` wrote one.
//!
//! Why here: the checkpoint owns the state's schema; the HTML report reads these values and never
//! SQL. Nothing here holds a password, hash or presigned URL (there is no column for one).

use std::collections::BTreeMap;
use std::time::SystemTime;

use rusqlite::params;
use rusqlite::types::Value;

use super::{from_ms, to_i64, Checkpoint, ChunkId, Result, RunId, SqlContext};

/// AdminCreateUser activity in one wall-clock second of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecondStats {
    /// Unix seconds.
    pub second: i64,
    /// AdminCreateUser calls sent (throttled ones included).
    pub calls: u64,
    /// Calls answered `TooManyRequestsException`.
    pub throttles: u64,
    /// Users the writer settled (created, updated, skipped or failed).
    pub settled: u64,
}

/// One rejection group: users rejected for `reason` on `field`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectionGroup {
    pub reason: String,
    /// The input field (an attribute or column name, never a value); empty for failures.
    pub field: String,
    pub users: u64,
    /// The first few of these users' places in the input: (record, line), in input order.
    pub first: Vec<(u64, u64)>,
}

/// Places kept per [`RejectionGroup`].
pub const FIRST_PLACES: usize = 5;

/// A rejected or failed user's place in the input, with its reason and field (no message: a
/// message may quote a value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedAt {
    pub record: u64,
    pub line: u64,
    pub username: String,
    pub route: String,
    pub outcome: String,
    pub reason: String,
    pub field: String,
}

/// One row of the `sync_runs` table that `sync` writes: its times and change set.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncRun {
    pub id: i64,
    /// Unix milliseconds when stored as an integer.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// `true` for a plan-only sync (nothing written).
    pub plan: bool,
    pub full: bool,
    pub outcome: String,
    /// The change set, in [`SYNC_COUNTS`] order.
    pub counts: Vec<(&'static str, u64)>,
}

/// The counted columns of `sync_runs`, in the order a report shows them.
pub const SYNC_COUNTS: [&str; 12] = [
    "records",
    "rejected",
    "unchanged",
    "created",
    "updated",
    "disabled",
    "enabled",
    "deleted",
    "group_adds",
    "group_removes",
    "failed",
    "staged_removals",
];

/// The rejection's field: [`super::UserRow::rejected`] writes `field: message`, and every
/// rejection names a field (`record` when the record itself could not be read).
pub fn field_of(message: Option<&str>) -> String {
    message
        .and_then(|m| m.split_once(": "))
        .map(|(f, _)| f.to_string())
        .unwrap_or_default()
}

fn count(v: Value) -> u64 {
    match v {
        Value::Integer(n) => n.max(0) as u64,
        Value::Real(f) if f > 0.0 => f as u64,
        Value::Text(t) => t.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

fn flag(v: &Value) -> bool {
    match v {
        Value::Integer(n) => *n != 0,
        Value::Text(t) => matches!(t.as_str(), "1" | "true" | "yes"),
        _ => false,
    }
}

fn millis(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(n) => Some(*n),
        _ => None,
    }
}

impl Checkpoint {
    /// Adds AdminCreateUser activity to `run`'s per-second rows (a resumed run adds to them).
    pub fn add_admin_seconds(&self, run: RunId, seconds: &[SecondStats]) -> Result<()> {
        if seconds.is_empty() {
            return Ok(());
        }
        self.write_tx(false, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO admin_create_seconds (run_id, second, calls, throttles, settled) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, second) DO UPDATE SET \
                     calls = calls + excluded.calls, throttles = throttles + excluded.throttles, \
                     settled = settled + excluded.settled",
                )
                .ctx(&self.path)?;
            for s in seconds {
                stmt.execute(params![
                    run,
                    s.second,
                    to_i64(s.calls, &self.path, "calls")?,
                    to_i64(s.throttles, &self.path, "throttles")?,
                    to_i64(s.settled, &self.path, "settled users")?,
                ])
                .ctx(&self.path)?;
            }
            Ok(())
        })
    }

    /// `run`'s AdminCreateUser activity per second, oldest first (empty when it made no call).
    pub fn admin_seconds(&self, run: RunId) -> Result<Vec<SecondStats>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT second, calls, throttles, settled FROM admin_create_seconds \
                 WHERE run_id = ?1 ORDER BY second",
            )
            .ctx(&self.path)?;
        let rows = stmt
            .query_map([run], |r| {
                Ok(SecondStats {
                    second: r.get(0)?,
                    calls: r.get::<_, i64>(1)?.max(0) as u64,
                    throttles: r.get::<_, i64>(2)?.max(0) as u64,
                    settled: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }

    /// When each of `run`'s chunks was recorded uploaded (chunks uploaded before schema
    /// V4_VISIBILITY, or not yet, are absent).
    pub fn chunk_uploaded_at(&self, run: RunId) -> Result<BTreeMap<ChunkId, SystemTime>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, uploaded_at FROM chunks \
                 WHERE run_id = ?1 AND writing = 0 AND uploaded_at IS NOT NULL",
            )
            .ctx(&self.path)?;
        let rows = stmt
            .query_map([run], |r| Ok((r.get::<_, ChunkId>(0)?, from_ms(r.get(1)?))))
            .ctx(&self.path)?
            .collect::<rusqlite::Result<BTreeMap<_, _>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }

    /// The first and last time anything of `run` was recorded (the run's start, its users' and
    /// chunks' last updates).
    pub fn run_span(&self, run: RunId) -> Result<(SystemTime, SystemTime)> {
        let (first, last): (i64, i64) = self
            .conn()
            .query_row(
                "SELECT created_at, MAX(updated_at, \
                   COALESCE((SELECT MAX(updated_at) FROM users WHERE run_id = ?1), 0), \
                   COALESCE((SELECT MAX(updated_at) FROM chunks WHERE run_id = ?1), 0), \
                   COALESCE((SELECT MAX(second) * 1000 + 999 FROM admin_create_seconds \
                             WHERE run_id = ?1), 0)) \
                 FROM runs WHERE id = ?1",
                [run],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx(&self.path)?;
        Ok((from_ms(first), from_ms(last)))
    }

    /// Rejected and failed users of `run` grouped by reason and field, most users first.
    pub fn rejection_groups(&self, run: RunId) -> Result<Vec<RejectionGroup>> {
        // (reason, field) → (users, first places)
        type Places = (u64, Vec<(u64, u64)>);
        let mut groups: BTreeMap<(String, String), Places> = BTreeMap::new();
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT COALESCE(reason, ''), outcome, message, record, line FROM user_outcomes \
                 WHERE run_id = ?1 AND outcome IN ('rejected', 'failed') ORDER BY record",
            )
            .ctx(&self.path)?;
        let mut rows = stmt.query([run]).ctx(&self.path)?;
        while let Some(r) = rows.next().ctx(&self.path)? {
            let reason: String = r.get(0).ctx(&self.path)?;
            let outcome: String = r.get(1).ctx(&self.path)?;
            let message: Option<String> = r.get(2).ctx(&self.path)?;
            // Only a rejection's message starts with its field; a failure's is Cognito's text.
            let field = if outcome == "rejected" {
                field_of(message.as_deref())
            } else {
                String::new()
            };
            let place = (
                r.get::<_, i64>(3).ctx(&self.path)? as u64,
                r.get::<_, i64>(4).ctx(&self.path)? as u64,
            );
            let g = groups.entry((reason, field)).or_default();
            g.0 += 1;
            if g.1.len() < FIRST_PLACES {
                g.1.push(place);
            }
        }
        let mut out: Vec<RejectionGroup> = groups
            .into_iter()
            .map(|((reason, field), (users, first))| RejectionGroup {
                reason,
                field,
                users,
                first,
            })
            .collect();
        out.sort_by(|a, b| b.users.cmp(&a.users).then(a.reason.cmp(&b.reason)));
        Ok(out)
    }

    /// The first `limit` rejected or failed users of `run` in input order.
    pub fn first_rejected(&self, run: RunId, limit: usize) -> Result<Vec<RejectedAt>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT record, line, username, route, outcome, COALESCE(reason, ''), message \
                 FROM user_outcomes WHERE run_id = ?1 AND outcome IN ('rejected', 'failed') \
                 ORDER BY record LIMIT ?2",
            )
            .ctx(&self.path)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![run, limit], |r| {
                let outcome: String = r.get(4)?;
                let message: Option<String> = r.get(6)?;
                Ok(RejectedAt {
                    record: r.get::<_, i64>(0)? as u64,
                    line: r.get::<_, i64>(1)? as u64,
                    username: r.get(2)?,
                    route: r.get(3)?,
                    field: if outcome == "rejected" {
                        field_of(message.as_deref())
                    } else {
                        String::new()
                    },
                    outcome,
                    reason: r.get(5)?,
                })
            })
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }

    /// The rows of `sync_runs`, oldest first, or `None` when the state has no such table (no
    /// `sync` ever ran on it). Columns it lacks count as 0.
    pub fn sync_runs(&self) -> Result<Option<Vec<SyncRun>>> {
        let conn = self.conn();
        let columns: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_table_info('sync_runs')")
                .ctx(&self.path)?;
            let names = stmt
                .query_map([], |r| r.get(0))
                .ctx(&self.path)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .ctx(&self.path)?;
            names
        };
        if columns.is_empty() {
            return Ok(None);
        }
        let has = |c: &str| columns.iter().any(|n| n == c);
        let pick = |c: &str| {
            if has(c) {
                format!("\"{c}\"")
            } else {
                "NULL".to_string()
            }
        };
        let counted = SYNC_COUNTS;
        let mut select = ["id", "started_at", "finished_at", "plan", "full", "outcome"]
            .iter()
            .map(|c| pick(c))
            .collect::<Vec<_>>();
        select.extend(counted.iter().map(|c| pick(c)));
        let order = if has("id") { "\"id\"" } else { "rowid" };
        let sql = format!(
            "SELECT {} FROM sync_runs ORDER BY {order}",
            select.join(", ")
        );
        let mut stmt = conn.prepare(&sql).ctx(&self.path)?;
        let rows = stmt
            .query_map([], |r| {
                let v = |i: usize| r.get::<_, Value>(i);
                let outcome = match v(5)? {
                    Value::Text(t) => t,
                    Value::Integer(n) => n.to_string(),
                    _ => String::new(),
                };
                let mut counts = Vec::with_capacity(counted.len());
                for (i, c) in counted.iter().enumerate() {
                    counts.push((*c, count(v(6 + i)?)));
                }
                Ok(SyncRun {
                    id: millis(&v(0)?).unwrap_or(0),
                    started_at: millis(&v(1)?),
                    finished_at: millis(&v(2)?),
                    plan: flag(&v(3)?),
                    full: flag(&v(4)?),
                    outcome,
                    counts,
                })
            })
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        Ok(Some(rows))
    }
}
