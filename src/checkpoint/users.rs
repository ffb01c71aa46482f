//! Per-user rows: outcomes, batched writes, counts, report iterators and the resume set.
//!
//! Since schema V2 a user's outcome and attempts are *derived*: a user put in an import chunk stays
//! stored `pending` and takes its chunk's `settled_outcome` once the chunk is settled, and the
//! chunk's StartUserImportJob attempts add to the user's own (see [`super::schema`]). Every read
//! goes through the view `user_outcomes` (or [`EFFECTIVE_OUTCOME`] inside a write), so readers see
//! the same outcomes as when every user's row was rewritten.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, Value, ValueRef};
use rusqlite::{params, params_from_iter, OptionalExtension, Row};
use serde::Serialize;

use super::{
    from_ms, now_ms, to_i64, Checkpoint, CheckpointError, ChunkId, Result, RunId, SqlContext,
};
use crate::mapping::Rejection;
use crate::record::Position;

/// What happened to one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Not settled: in a chunk whose job has not reported, or an AdminCreateUser call in doubt.
    Pending,
    /// Imported by an import job.
    Imported,
    /// Created by AdminCreateUser.
    Created,
    /// Already in the pool, updated.
    Updated,
    /// Already in the pool, left as it was (or skipped by an import job).
    Skipped,
    /// Not migrated because of its data (see reason).
    Rejected,
    /// Cognito refused it or the call failed; `retry` may try again.
    Failed,
    /// Left for the user-migration trigger.
    Trigger,
    /// In a finished import job whose counts are known but not per user.
    Unknown,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Pending,
        Outcome::Imported,
        Outcome::Created,
        Outcome::Updated,
        Outcome::Skipped,
        Outcome::Rejected,
        Outcome::Failed,
        Outcome::Trigger,
        Outcome::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Imported => "imported",
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Skipped => "skipped",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::Trigger => "trigger",
            Outcome::Unknown => "unknown",
        }
    }

    /// Settled for this run: everything but `pending` (`failed` ones are for `retry`).
    pub fn is_final(self) -> bool {
        self != Outcome::Pending
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown outcome {s:?}"))
    }
}

impl ToSql for Outcome {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Outcome {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        s.parse().map_err(|e: String| FromSqlError::Other(e.into()))
    }
}

/// One user's outcome, as the writers record it. Holds no secret: there is no field for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub position: Position,
    pub username: String,
    /// `import:BCRYPT` | `import:SCRYPT` | `import:ARGON2ID` | `import:PBKDF2_SHA256` |
    /// `import:none` | `admin-create` | `trigger` | `rejected`.
    pub route: String,
    pub outcome: Outcome,
    /// Machine-readable code (`invalid_email`, `UsernameExistsException`, …).
    pub reason: Option<String>,
    /// Human-readable detail. Never put a password or hash here.
    pub message: Option<String>,
    /// Follow-up: disable the user after creating it.
    pub needs_disable: bool,
    /// Follow-up: groups to add the user to, comma-joined.
    pub groups: String,
    /// Follow-ups done (or none needed). Once set it stays set.
    pub followups_done: bool,
    /// Follow-up: federated identities to link ([`encode_links`]; '' for none).
    pub links: String,
    /// The user's id in the legacy system (schema V6_IDMAP), for the id map. `None` keeps what is
    /// recorded.
    pub legacy_id: Option<String>,
}

/// Links as the `links` column holds them: a JSON array of `[provider, user id]` pairs, or ''.
pub fn encode_links<'a>(links: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let pairs: Vec<[&str; 2]> = links.into_iter().map(|(p, id)| [p, id]).collect();
    if pairs.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&pairs).expect("strings serialise")
    }
}

/// The `[provider, user id]` pairs of a `links` column ('' or damaged: none).
pub fn decode_links(text: &str) -> Vec<(String, String)> {
    if text.is_empty() {
        return Vec::new();
    }
    serde_json::from_str::<Vec<(String, String)>>(text).unwrap_or_default()
}

impl UserRow {
    pub fn new(
        position: Position,
        username: impl Into<String>,
        route: impl Into<String>,
        outcome: Outcome,
    ) -> UserRow {
        UserRow {
            position,
            username: username.into(),
            route: route.into(),
            outcome,
            reason: None,
            message: None,
            needs_disable: false,
            groups: String::new(),
            followups_done: false,
            links: String::new(),
            legacy_id: None,
        }
    }

    /// Follow-up: link these (pool provider, provider's user id) identities.
    pub fn with_links<'a>(mut self, links: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.links = encode_links(links);
        self
    }

    pub fn with_legacy_id(mut self, legacy_id: Option<String>) -> Self {
        self.legacy_id = legacy_id;
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>, message: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self.message = Some(message.into());
        self
    }

    pub fn with_followups(mut self, needs_disable: bool, groups: &[String]) -> Self {
        self.needs_disable = needs_disable;
        self.groups = groups.join(",");
        self
    }

    /// A rejected record (route and outcome `rejected`).
    pub fn rejected(rejection: &Rejection, username: impl Into<String>) -> UserRow {
        let message = if rejection.field.is_empty() {
            rejection.message.clone()
        } else {
            format!("{}: {}", rejection.field, rejection.message)
        };
        UserRow::new(
            rejection.position(),
            username,
            "rejected",
            Outcome::Rejected,
        )
        .with_reason(rejection.reason.as_str(), message)
    }
}

/// A user's row as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredUser {
    pub record: u64,
    pub line: u64,
    pub byte_offset: u64,
    pub username: String,
    pub route: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub chunk_id: Option<ChunkId>,
    /// 1-based data line in the chunk file.
    pub chunk_line: Option<u64>,
    /// How many times a side effect for this user was (possibly) issued.
    pub attempts: u64,
    pub needs_disable: bool,
    pub groups: String,
    pub followups_done: bool,
    #[serde(skip)]
    pub updated_at: SystemTime,
    /// Federated identities to link ([`decode_links`]).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub links: String,
}

impl StoredUser {
    pub fn position(&self) -> Position {
        Position {
            record: self.record,
            line: self.line,
            byte_offset: self.byte_offset,
        }
    }

    /// Group names (empty if none).
    pub fn group_list(&self) -> Vec<&str> {
        self.groups.split(',').filter(|g| !g.is_empty()).collect()
    }

    /// The (pool provider, provider's user id) identities to link (empty if none).
    pub fn link_list(&self) -> Vec<(String, String)> {
        decode_links(&self.links)
    }
}

/// A user's outcome as readers see it, for the `users` row in scope (an upsert's existing row or
/// an `UPDATE`'s target): its chunk's settled outcome while it is stored `pending` and follows
/// the chunk (schema V2), else its own.
pub(super) const EFFECTIVE_OUTCOME: &str = "(CASE WHEN users.outcome = 'pending' \
     AND users.follows_chunk != 0 AND users.chunk_id IS NOT NULL THEN COALESCE((SELECT \
     settled_outcome FROM chunks WHERE chunks.id = users.chunk_id), 'pending') \
     ELSE users.outcome END)";

pub(super) const USER_COLUMNS: &str =
    "record, line, byte_offset, username, route, outcome, reason, \
     message, chunk_id, chunk_line, attempts, needs_disable, groups, followups_done, updated_at, \
     links";

pub(super) fn user_from_row(row: &Row<'_>) -> rusqlite::Result<StoredUser> {
    Ok(StoredUser {
        record: row.get::<_, i64>(0)? as u64,
        line: row.get::<_, i64>(1)? as u64,
        byte_offset: row.get::<_, i64>(2)? as u64,
        username: row.get(3)?,
        route: row.get(4)?,
        outcome: row.get(5)?,
        reason: row.get(6)?,
        message: row.get(7)?,
        chunk_id: row.get(8)?,
        chunk_line: row.get::<_, Option<i64>>(9)?.map(|l| l as u64),
        attempts: row.get::<_, i64>(10)? as u64,
        needs_disable: row.get(11)?,
        groups: row.get(12)?,
        followups_done: row.get(13)?,
        updated_at: from_ms(row.get(14)?),
        links: row.get(15)?,
    })
}

/// Where a run stands, from its users' outcomes ([`Counts::verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every recorded user has a final outcome, none rejected, failed or unknown.
    Done,
    /// Some users were rejected or failed, or their result is unknown (whether or not others are
    /// still pending).
    SomeFailed,
    /// None failed, but some users are still pending: the run is not finished.
    Pending,
}

/// Counts of users by outcome. `status --json` prints it as is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: u64,
    pub created: u64,
    pub imported: u64,
    pub skipped: u64,
    pub rejected: u64,
    pub failed: u64,
    pub pending: u64,
    pub updated: u64,
    pub trigger: u64,
    pub unknown: u64,
}

impl Counts {
    /// Add `n` users with `outcome`.
    pub fn add(&mut self, outcome: Outcome, n: u64) {
        self.total += n;
        *match outcome {
            Outcome::Pending => &mut self.pending,
            Outcome::Imported => &mut self.imported,
            Outcome::Created => &mut self.created,
            Outcome::Updated => &mut self.updated,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Rejected => &mut self.rejected,
            Outcome::Failed => &mut self.failed,
            Outcome::Trigger => &mut self.trigger,
            Outcome::Unknown => &mut self.unknown,
        } += n;
    }

    /// Where a run stands: every user settled, some failed (or unknown), or some still pending.
    pub fn verdict(&self) -> Verdict {
        if self.rejected + self.failed + self.unknown > 0 {
            Verdict::SomeFailed
        } else if self.pending > 0 {
            Verdict::Pending
        } else {
            Verdict::Done
        }
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Pending => self.pending,
            Outcome::Imported => self.imported,
            Outcome::Created => self.created,
            Outcome::Updated => self.updated,
            Outcome::Skipped => self.skipped,
            Outcome::Rejected => self.rejected,
            Outcome::Failed => self.failed,
            Outcome::Trigger => self.trigger,
            Outcome::Unknown => self.unknown,
        }
    }
}

/// A set of record indexes, as a bitset: `max_record / 8` bytes (125 KB for a million records,
/// 12.5 MB for a hundred million). Record indexes are dense (1, 2, 3, …), which is what makes a
/// bitset the compact choice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordSet {
    words: Vec<u64>,
    len: u64,
}

impl RecordSet {
    pub fn new() -> RecordSet {
        RecordSet::default()
    }

    /// Insert; `true` if it was not there.
    pub fn insert(&mut self, record: u64) -> bool {
        let (word, bit) = ((record / 64) as usize, record % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let was = self.words[word] & (1 << bit) != 0;
        self.words[word] |= 1 << bit;
        if !was {
            self.len += 1;
        }
        !was
    }

    pub fn contains(&self, record: u64) -> bool {
        self.words
            .get((record / 64) as usize)
            .is_some_and(|w| w & (1 << (record % 64)) != 0)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        self.words.capacity() * 8
    }

    /// The records, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as u64;
                w &= w - 1;
                Some(i as u64 * 64 + bit)
            })
        })
    }
}

impl FromIterator<u64> for RecordSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut set = RecordSet::new();
        for r in iter {
            set.insert(r);
        }
        set
    }
}

/// Page size of [`UserIter`].
const PAGE: i64 = 1000;

/// Users in key order, fetched a page at a time (keyset pagination), so the store is not locked
/// while the caller works on a row and memory stays flat on millions of rows.
pub struct UserIter<'a> {
    cp: &'a Checkpoint,
    sql: String,
    params: Vec<Value>,
    by_chunk_line: bool,
    after: i64,
    page: VecDeque<StoredUser>,
    done: bool,
}

impl<'a> UserIter<'a> {
    /// `filter` uses `?2`, `?3`, … for `params`; `?1` is the pagination key.
    pub(super) fn new(
        cp: &'a Checkpoint,
        filter: &str,
        params: Vec<Value>,
        by_chunk_line: bool,
    ) -> UserIter<'a> {
        let key = if by_chunk_line {
            "chunk_line"
        } else {
            "record"
        };
        UserIter {
            cp,
            sql: format!(
                "SELECT {USER_COLUMNS} FROM user_outcomes WHERE {filter} AND {key} > ?1 \
                 ORDER BY {key} LIMIT {PAGE}"
            ),
            params,
            by_chunk_line,
            after: i64::MIN,
            page: VecDeque::new(),
            done: false,
        }
    }

    fn fetch(&mut self) -> Result<()> {
        let conn = self.cp.conn();
        let mut stmt = conn.prepare_cached(&self.sql).ctx(&self.cp.path)?;
        let params = std::iter::once(Value::Integer(self.after)).chain(self.params.iter().cloned());
        let rows = stmt
            .query_map(params_from_iter(params), user_from_row)
            .ctx(&self.cp.path)?;
        for row in rows {
            self.page.push_back(row.ctx(&self.cp.path)?);
        }
        if (self.page.len() as i64) < PAGE {
            self.done = true;
        }
        if let Some(last) = self.page.back() {
            self.after = if self.by_chunk_line {
                last.chunk_line.unwrap_or(0) as i64
            } else {
                last.record as i64
            };
        }
        Ok(())
    }
}

impl Iterator for UserIter<'_> {
    type Item = Result<StoredUser>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            if let Err(e) = self.fetch() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.page.pop_front().map(Ok)
    }
}

const UPSERT: &str = "INSERT INTO users (run_id, record, line, byte_offset, username, route, \
     outcome, reason, message, attempts, needs_disable, groups, followups_done, updated_at, links, \
     legacy_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
     ON CONFLICT (run_id, record) DO UPDATE SET line = excluded.line, \
     byte_offset = excluded.byte_offset, username = excluded.username, route = excluded.route, \
     outcome = excluded.outcome, reason = excluded.reason, message = excluded.message, \
     attempts = users.attempts + excluded.attempts, needs_disable = excluded.needs_disable, \
     groups = excluded.groups, links = excluded.links, \
     followups_done = MAX(users.followups_done, excluded.followups_done), follows_chunk = 0, updated_at = excluded.updated_at, \
     legacy_id = COALESCE(excluded.legacy_id, users.legacy_id)";

impl Checkpoint {
    /// Record (insert or update) users' outcomes in one transaction. Chunk assignment and attempts
    /// are kept. Committed with `synchronous=NORMAL`: survives a process crash when this returns.
    pub fn record_batch(&self, run: RunId, rows: &[UserRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write_tx(false, |tx| {
            let mut stmt = tx.prepare_cached(UPSERT).ctx(&self.path)?;
            let now = now_ms();
            for row in rows {
                self.upsert(&mut stmt, run, row, row.outcome, 0, now)?;
            }
            Ok(())
        })
    }

    /// Record, *before* issuing their calls, that these users are about to be attempted: outcome
    /// `pending`, `attempts + 1` (the rows' own outcome, reason and message are ignored). One
    /// fsynced transaction. Fails with [`CheckpointError::AlreadySettled`] (recording nothing) if
    /// one of them already has a settled outcome other than `failed` or `unknown`: attempting it
    /// again would break exactly-once.
    pub fn begin_attempts(&self, run: RunId, rows: &[UserRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // Only unsettled users may be attempted again.
        let sql = format!("{UPSERT} WHERE {EFFECTIVE_OUTCOME} IN ('pending', 'failed', 'unknown')");
        self.write_tx(true, |tx| {
            let mut stmt = tx.prepare_cached(&sql).ctx(&self.path)?;
            let mut detach = tx
                .prepare_cached(
                    "UPDATE users SET attempts = attempts + COALESCE( \
                         (SELECT c.attempts FROM chunks AS c WHERE c.id = users.chunk_id), 0), \
                     chunk_id = NULL, chunk_line = NULL \
                     WHERE run_id = ?1 AND record = ?2 AND chunk_id IN \
                         (SELECT c.id FROM chunks AS c WHERE c.settled_at IS NOT NULL)",
                )
                .ctx(&self.path)?;
            let now = now_ms();
            for row in rows {
                let changed = self.upsert(&mut stmt, run, row, Outcome::Pending, 1, now)?;
                if changed == 0 {
                    let outcome: Outcome = tx
                        .query_row(
                            "SELECT outcome FROM user_outcomes WHERE run_id = ?1 AND record = ?2",
                            params![run, to_i64(row.position.record, &self.path, "record")?],
                            |r| r.get(0),
                        )
                        .ctx(&self.path)?;
                    return Err(CheckpointError::AlreadySettled {
                        path: self.path.clone(),
                        run,
                        record: row.position.record,
                        outcome,
                    });
                }
                // A user of a chunk that is already settled (e.g. `failed` or `unknown` in an
                // import job, now retried through AdminCreateUser) leaves that chunk: nothing
                // would settle it again, so a crash during the call must leave it where resume
                // looks for users in doubt (`in_doubt`, and not in `skip_set`). Its chunk's
                // attempts are folded into its own. Done after the guard above, which needs the
                // chunk to see the user's settled outcome.
                detach
                    .execute(params![
                        run,
                        to_i64(row.position.record, &self.path, "record")?
                    ])
                    .ctx(&self.path)?;
            }
            Ok(())
        })
    }

    fn upsert(
        &self,
        stmt: &mut rusqlite::CachedStatement<'_>,
        run: RunId,
        row: &UserRow,
        outcome: Outcome,
        attempts: i64,
        now: i64,
    ) -> Result<usize> {
        let (reason, message) = if attempts > 0 {
            (None, None)
        } else {
            (row.reason.as_deref(), row.message.as_deref())
        };
        stmt.execute(params![
            run,
            to_i64(row.position.record, &self.path, "record")?,
            to_i64(row.position.line, &self.path, "line")?,
            to_i64(row.position.byte_offset, &self.path, "byte offset")?,
            row.username,
            row.route,
            outcome,
            reason,
            message,
            attempts,
            row.needs_disable,
            row.groups,
            row.followups_done,
            now,
            row.links,
            row.legacy_id
        ])
        .ctx(&self.path)
    }

    /// One user's row.
    pub fn user(&self, run: RunId, record: u64) -> Result<Option<StoredUser>> {
        let record = to_i64(record, &self.path, "record")?;
        self.conn()
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS} FROM user_outcomes WHERE run_id = ?1 AND record = ?2"
                ),
                params![run, record],
                user_from_row,
            )
            .optional()
            .ctx(&self.path)
    }

    /// Counts by outcome for a run.
    pub fn counts(&self, run: RunId) -> Result<Counts> {
        Ok(self
            .grouped_counts("run_id = ?1", run, false)?
            .remove("")
            .unwrap_or_default())
    }

    /// Counts by outcome for each route of a run.
    pub fn route_counts(&self, run: RunId) -> Result<BTreeMap<String, Counts>> {
        self.grouped_counts("run_id = ?1", run, true)
    }

    pub(super) fn grouped_counts(
        &self,
        filter: &str,
        param: impl ToSql,
        by_route: bool,
    ) -> Result<BTreeMap<String, Counts>> {
        let group = if by_route { "route" } else { "''" };
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {group}, outcome, COUNT(*) FROM user_outcomes WHERE {filter} GROUP BY 1, 2"
            ))
            .ctx(&self.path)?;
        let mut rows = stmt.query([param]).ctx(&self.path)?;
        let mut out: BTreeMap<String, Counts> = BTreeMap::new();
        while let Some(row) = rows.next().ctx(&self.path)? {
            let key: String = row.get(0).ctx(&self.path)?;
            let outcome: Outcome = row.get(1).ctx(&self.path)?;
            let n: i64 = row.get(2).ctx(&self.path)?;
            out.entry(key).or_default().add(outcome, n as u64);
        }
        Ok(out)
    }

    /// Whether a record has a settled outcome (anything but `pending`) in this run.
    pub fn is_done(&self, run: RunId, record: u64) -> Result<bool> {
        let record = to_i64(record, &self.path, "record")?;
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM user_outcomes WHERE run_id = ?1 AND record = ?2 \
                 AND outcome != 'pending'",
                params![run, record],
                |_| Ok(()),
            )
            .optional()
            .ctx(&self.path)?
            .is_some())
    }

    /// Records with a settled outcome (see [`Checkpoint::is_done`]).
    pub fn finished_records(&self, run: RunId) -> Result<RecordSet> {
        self.record_set("user_outcomes", "run_id = ?1 AND outcome != 'pending'", run)
    }

    /// Records a resumed reader must skip: settled ones, and pending ones already in a chunk file
    /// (their chunk carries them on). Pending users without a chunk are not in it: they are read
    /// again and, if [`Checkpoint::in_doubt`], verified before being created.
    pub fn skip_set(&self, run: RunId) -> Result<RecordSet> {
        // The stored outcome gives the same set as the derived one (a user whose outcome comes
        // from its chunk is in a chunk), without the join.
        self.record_set(
            "users",
            "run_id = ?1 AND (outcome != 'pending' OR chunk_id IS NOT NULL)",
            run,
        )
    }

    fn record_set(&self, table: &str, filter: &str, run: RunId) -> Result<RecordSet> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT record FROM {table} WHERE {filter} ORDER BY record"
            ))
            .ctx(&self.path)?;
        let mut rows = stmt.query([run]).ctx(&self.path)?;
        let mut set = RecordSet::new();
        while let Some(row) = rows.next().ctx(&self.path)? {
            set.insert(row.get::<_, i64>(0).ctx(&self.path)? as u64);
        }
        Ok(set)
    }

    /// Every recorded legacy id of a run (schema V6_IDMAP), in record order, to `f`.
    pub fn for_each_legacy_id(&self, run: RunId, mut f: impl FnMut(u64, String)) -> Result<()> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT record, legacy_id FROM users \
                 WHERE run_id = ?1 AND legacy_id IS NOT NULL ORDER BY record",
            )
            .ctx(&self.path)?;
        let mut rows = stmt.query([run]).ctx(&self.path)?;
        while let Some(row) = rows.next().ctx(&self.path)? {
            f(
                row.get::<_, i64>(0).ctx(&self.path)? as u64,
                row.get(1).ctx(&self.path)?,
            );
        }
        Ok(())
    }

    /// Failed and rejected users in record order (for `report --failed`).
    pub fn failed_and_rejected(&self, run: RunId) -> UserIter<'_> {
        UserIter::new(
            self,
            "run_id = ?2 AND outcome IN ('failed', 'rejected')",
            vec![Value::Integer(run.0)],
            false,
        )
    }

    /// Users with one outcome, in record order.
    pub fn users_with_outcome(&self, run: RunId, outcome: Outcome) -> UserIter<'_> {
        UserIter::new(
            self,
            "run_id = ?2 AND outcome = ?3",
            vec![
                Value::Integer(run.0),
                Value::Text(outcome.as_str().to_string()),
            ],
            false,
        )
    }

    /// Users `retry` should try again: outcome `failed` (rejections are data problems, and
    /// `unknown` users may well be in the pool).
    pub fn retryable_failures(&self, run: RunId) -> UserIter<'_> {
        self.users_with_outcome(run, Outcome::Failed)
    }

    /// Users whose AdminCreateUser call may have happened unrecorded (pending, attempted, not in a
    /// chunk): look them up before creating them again.
    pub fn in_doubt(&self, run: RunId) -> UserIter<'_> {
        UserIter::new(
            self,
            "run_id = ?2 AND outcome = 'pending' AND attempts > 0 AND chunk_id IS NULL",
            vec![Value::Integer(run.0)],
            false,
        )
    }

    /// Users in the pool with follow-ups (disable, groups, links) not yet done.
    pub fn pending_followups(&self, run: RunId) -> UserIter<'_> {
        UserIter::new(
            self,
            "run_id = ?2 AND outcome IN ('created', 'imported', 'updated') \
             AND (needs_disable != 0 OR groups != '' OR links != '') AND followups_done = 0",
            vec![Value::Integer(run.0)],
            false,
        )
    }

    /// Mark the follow-ups of these records done, in one transaction.
    pub fn mark_followups_done(&self, run: RunId, records: &[u64]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write_tx(false, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE users SET followups_done = 1, updated_at = ?3 \
                     WHERE run_id = ?1 AND record = ?2",
                )
                .ctx(&self.path)?;
            let now = now_ms();
            for &r in records {
                stmt.execute(params![run, to_i64(r, &self.path, "record")?, now])
                    .ctx(&self.path)?;
            }
            Ok(())
        })
    }
}
