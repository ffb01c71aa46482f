//! The sync tables of the state (schema V4, see `schema.rs`): what the pool was last made to hold
//! per matching key, the groups the source ever named, and each sync's recorded change set with
//! the status of every op. Plain rows only: what they mean (fingerprints, diffs, the brake) is
//! decided by `crate::sync`, which sits above the checkpoint.

use rusqlite::{params, OptionalExtension};

use super::{now_ms, Checkpoint, Result, SqlContext};

/// One matching key as stored in `sync_keys`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncKeyRow {
    pub key: String,
    pub username: String,
    pub sub: Option<String>,
    /// `name=hex16;…`, sorted by name: the digest of each attribute value last written.
    pub attrs: String,
    pub enabled: bool,
    /// Managed groups the user was last put in, newline-joined and sorted.
    pub groups: String,
    /// Gone from the source (and disabled, or left as it was with `--on-missing ignore`).
    pub missing: bool,
    /// 0: left to the migration trigger, not in the pool yet as far as the state knows.
    pub in_pool: bool,
    /// One digest of attrs + enabled + groups, compared in memory.
    pub fp: i64,
}

/// An op of a change set, to record.
#[derive(Clone, Debug)]
pub struct NewSyncOp {
    pub key: String,
    pub username: String,
    /// `create`, `update`, `delete_attributes`, `disable`, `enable`, `delete`, `group_add`,
    /// `group_remove`.
    pub kind: &'static str,
    /// JSON or a group name; an update's values (never a password or hash).
    pub arg: Option<String>,
    /// `create`: the record in the input.
    pub record: Option<u64>,
    /// A disable or delete because the user is gone from the source.
    pub removal: bool,
    /// `pending`, or `staged` for a removal held back.
    pub status: &'static str,
}

/// A recorded op.
#[derive(Clone, Debug)]
pub struct SyncOpRow {
    pub id: i64,
    pub key: String,
    pub username: String,
    pub kind: String,
    pub arg: Option<String>,
    pub record: Option<u64>,
    pub removal: bool,
    pub status: String,
    pub message: Option<String>,
}

/// The counts of a sync (the `sync_runs` columns and the JSON summary line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncCounts {
    pub records: u64,
    pub rejected: u64,
    pub unchanged: u64,
    pub created: u64,
    pub updated: u64,
    pub disabled: u64,
    pub enabled: u64,
    pub deleted: u64,
    pub group_adds: u64,
    pub group_removes: u64,
    pub failed: u64,
    pub staged_removals: u64,
}

/// A sync as recorded in `sync_runs`.
#[derive(Clone, Debug)]
pub struct SyncRunRow {
    pub id: i64,
    pub phase: String,
    pub pool_id: String,
    pub input_fingerprint: String,
    /// The current migrate run before this sync's creates began (see `crate::sync`).
    pub prev_run: Option<i64>,
    pub plan: bool,
    pub full: bool,
    pub counts: SyncCounts,
    pub no_removals_because: Option<String>,
    pub started_at: i64,
}

/// What finishing an op does to its key's row.
#[derive(Clone, Debug)]
pub enum KeyWrite {
    None,
    Put(SyncKeyRow),
    Delete(String),
}

fn put_key(tx: &rusqlite::Transaction<'_>, k: &SyncKeyRow, now: i64) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO sync_keys (key, username, sub, attrs, enabled, groups, missing, in_pool, fp, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT(key) DO UPDATE SET username = ?2, sub = COALESCE(?3, sub), attrs = ?4, \
         enabled = ?5, groups = ?6, missing = ?7, in_pool = ?8, fp = ?9, updated_at = ?10",
        params![
            k.key, k.username, k.sub, k.attrs, k.enabled, k.groups, k.missing, k.in_pool, k.fp, now
        ],
    )
}

fn insert_ops(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    ops: &[NewSyncOp],
    now: i64,
) -> rusqlite::Result<()> {
    let mut ins = tx.prepare_cached(
        "INSERT INTO sync_ops (sync_id, key, username, kind, arg, record, removal, status, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for op in ops {
        ins.execute(params![
            id,
            op.key,
            op.username,
            op.kind,
            op.arg,
            op.record.map(|r| r as i64),
            op.removal,
            op.status,
            now
        ])?;
    }
    Ok(())
}

const RUN_COLUMNS: &str = "id, phase, pool_id, input_fingerprint, prev_run, plan, full, records, \
    rejected, unchanged, created, updated, disabled, enabled, deleted, group_adds, group_removes, \
    failed, staged_removals, no_removals_because, started_at";

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SyncRunRow> {
    let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    Ok(SyncRunRow {
        id: r.get(0)?,
        phase: r.get(1)?,
        pool_id: r.get(2)?,
        input_fingerprint: r.get(3)?,
        prev_run: r.get(4)?,
        plan: r.get(5)?,
        full: r.get(6)?,
        counts: SyncCounts {
            records: n(7)?,
            rejected: n(8)?,
            unchanged: n(9)?,
            created: n(10)?,
            updated: n(11)?,
            disabled: n(12)?,
            enabled: n(13)?,
            deleted: n(14)?,
            group_adds: n(15)?,
            group_removes: n(16)?,
            failed: n(17)?,
            staged_removals: n(18)?,
        },
        no_removals_because: r.get(19)?,
        started_at: r.get(20)?,
    })
}

const OP_COLUMNS: &str = "id, key, username, kind, arg, record, removal, status, message";

fn op_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SyncOpRow> {
    Ok(SyncOpRow {
        id: r.get(0)?,
        key: r.get(1)?,
        username: r.get(2)?,
        kind: r.get(3)?,
        arg: r.get(4)?,
        record: r.get::<_, Option<i64>>(5)?.map(|v| v.max(0) as u64),
        removal: r.get(6)?,
        status: r.get(7)?,
        message: r.get(8)?,
    })
}

fn set_counts(tx: &rusqlite::Transaction<'_>, id: i64, c: &SyncCounts) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE sync_runs SET records = ?2, rejected = ?3, unchanged = ?4, created = ?5, \
         updated = ?6, disabled = ?7, enabled = ?8, deleted = ?9, group_adds = ?10, \
         group_removes = ?11, failed = ?12, staged_removals = ?13 WHERE id = ?1",
        params![
            id,
            c.records as i64,
            c.rejected as i64,
            c.unchanged as i64,
            c.created as i64,
            c.updated as i64,
            c.disabled as i64,
            c.enabled as i64,
            c.deleted as i64,
            c.group_adds as i64,
            c.group_removes as i64,
            c.failed as i64,
            c.staged_removals as i64
        ],
    )
}

impl Checkpoint {
    /// The newest sync that wrote (not `--plan`) and did not finish: the same command resumes it.
    pub fn sync_unfinished(&self) -> Result<Option<SyncRunRow>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM sync_runs WHERE plan = 0 AND finished_at IS NULL \
                     AND phase != 'reading' ORDER BY id DESC LIMIT 1"
                ),
                [],
                run_from_row,
            )
            .optional()
            .ctx(&self.path)
    }

    /// The newest finished sync that was a full reconcile: when it started.
    pub fn sync_last_full(&self) -> Result<Option<i64>> {
        self.conn()
            .query_row(
                "SELECT MAX(started_at) FROM sync_runs WHERE full = 1 AND plan = 0 \
                 AND finished_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .ctx(&self.path)
    }

    /// Begins a sync (phase `reading`): its id. A sync that was still reading when its process
    /// died recorded nothing and wrote nothing; it is closed as `fatal` here.
    pub fn sync_begin(
        &self,
        pool_id: &str,
        input_fingerprint: &str,
        plan: bool,
        full: bool,
    ) -> Result<i64> {
        let now = now_ms();
        self.write_tx(true, |tx| {
            tx.execute(
                "UPDATE sync_runs SET finished_at = ?1, outcome = 'fatal', phase = 'finished' \
                 WHERE finished_at IS NULL AND phase = 'reading'",
                [now],
            )
            .ctx(&self.path)?;
            tx.execute(
                "INSERT INTO sync_runs (started_at, plan, full, pool_id, input_fingerprint) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![now, plan, full, pool_id, input_fingerprint],
            )
            .ctx(&self.path)?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Records a sync's change set in one durable transaction before anything is written: the
    /// ops, the counts known so far, the groups the source named (now managed), the rows of keys
    /// that change without a call (users left to the trigger), and why removals are held back.
    pub fn sync_record(
        &self,
        id: i64,
        counts: &SyncCounts,
        ops: &[NewSyncOp],
        quiet_keys: &[SyncKeyRow],
        groups: &[String],
        no_removals_because: Option<&str>,
    ) -> Result<()> {
        let now = now_ms();
        self.write_tx(true, |tx| {
            insert_ops(tx, id, ops, now).ctx(&self.path)?;
            {
                let mut g = tx
                    .prepare(
                        "INSERT INTO sync_groups (name, first_named_at) VALUES (?1, ?2) \
                         ON CONFLICT(name) DO NOTHING",
                    )
                    .ctx(&self.path)?;
                for name in groups {
                    g.execute(params![name, now]).ctx(&self.path)?;
                }
            }
            for k in quiet_keys {
                put_key(tx, k, now).ctx(&self.path)?;
            }
            set_counts(tx, id, counts).ctx(&self.path)?;
            tx.execute(
                "UPDATE sync_runs SET phase = 'recorded', no_removals_because = ?2 WHERE id = ?1",
                params![id, no_removals_because],
            )
            .ctx(&self.path)?;
            Ok(())
        })
    }

    /// Gives up a sync's creates not done yet (marked `failed` with `message`): how many.
    pub fn sync_abandon_creates(&self, id: i64, message: &str) -> Result<usize> {
        self.write_tx(true, |tx| {
            tx.execute(
                "UPDATE sync_ops SET status = 'failed', message = ?2, updated_at = ?3 \
                 WHERE sync_id = ?1 AND kind = 'create' AND status IN ('pending', 'started')",
                params![id, message, now_ms()],
            )
            .ctx(&self.path)
        })
    }

    /// Adds ops to a sync still reading (a change set too large to keep in memory is written as
    /// it is found; the sync counts as recorded only once [`Checkpoint::sync_record`] commits).
    pub fn sync_add_ops(&self, id: i64, ops: &[NewSyncOp]) -> Result<()> {
        let now = now_ms();
        self.write_tx(false, |tx| insert_ops(tx, id, ops, now).ctx(&self.path))
    }

    /// The input records of a sync's creates not done yet.
    pub fn sync_create_records(&self, id: i64) -> Result<Vec<u64>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT record FROM sync_ops WHERE sync_id = ?1 AND kind = 'create' \
                 AND status IN ('pending', 'started') AND record IS NOT NULL ORDER BY id",
            )
            .ctx(&self.path)?;
        let rows = st
            .query_map([id], |r| r.get::<_, i64>(0))
            .ctx(&self.path)?
            .map(|r| r.map(|v| v.max(0) as u64))
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }

    /// Up to `limit` ops of a sync not done yet (`pending` or `started`), after op id `after`,
    /// in order: its creates (`creates`) or its other ops.
    pub fn sync_open_ops(
        &self,
        id: i64,
        creates: bool,
        after: i64,
        limit: usize,
    ) -> Result<Vec<SyncOpRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {OP_COLUMNS} FROM sync_ops WHERE sync_id = ?1 AND id > ?2 \
                 AND status IN ('pending', 'started') AND (kind = 'create') = ?3 \
                 ORDER BY id LIMIT ?4"
            ))
            .ctx(&self.path)?;
        let rows = st
            .query_map(params![id, after, creates, limit as i64], op_from_row)
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }

    /// Up to `limit` failed ops of a sync, in order.
    pub fn sync_failed_ops(&self, id: i64, limit: usize) -> Result<Vec<SyncOpRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {OP_COLUMNS} FROM sync_ops WHERE sync_id = ?1 AND status = 'failed' \
                 ORDER BY id LIMIT ?2"
            ))
            .ctx(&self.path)?;
        let rows = st
            .query_map(params![id, limit as i64], op_from_row)
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }

    /// What a sync's ops did, counted in SQL: done ops per kind (`updated`: distinct users with
    /// an attribute op done), distinct users with a failed op, staged removals.
    pub fn sync_op_tally(&self, id: i64) -> Result<SyncCounts> {
        let conn = self.conn();
        let mut c = SyncCounts::default();
        let mut st = conn
            .prepare(
                "SELECT kind, status, COUNT(*) FROM sync_ops WHERE sync_id = ?1 \
                 AND status IN ('done', 'staged') GROUP BY kind, status",
            )
            .ctx(&self.path)?;
        let rows = st
            .query_map([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?.max(0) as u64,
                ))
            })
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        for (kind, status, n) in rows {
            if status == "staged" {
                c.staged_removals += n;
                continue;
            }
            match kind.as_str() {
                "disable" => c.disabled += n,
                "enable" => c.enabled += n,
                "delete" => c.deleted += n,
                "group_add" => c.group_adds += n,
                "group_remove" => c.group_removes += n,
                _ => {}
            }
        }
        let distinct = |sql: &str| -> Result<u64> {
            conn.query_row(sql, [id], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .ctx(&self.path)
        };
        c.updated = distinct(
            "SELECT COUNT(DISTINCT key) FROM sync_ops WHERE sync_id = ?1 AND status = 'done' \
             AND kind IN ('update', 'delete_attributes')",
        )?;
        // Created (not adopted, not left to the trigger: those are done with a message).
        c.created = distinct(
            "SELECT COUNT(*) FROM sync_ops WHERE sync_id = ?1 AND kind = 'create' \
             AND status = 'done' AND message IS NULL",
        )?;
        c.failed = distinct(
            "SELECT COUNT(DISTINCT key) FROM sync_ops WHERE sync_id = ?1 AND status = 'failed'",
        )?;
        Ok(c)
    }

    /// Moves a sync to `phase` (durably); `prev_run` is recorded when given.
    pub fn sync_set_phase(&self, id: i64, phase: &str, prev_run: Option<i64>) -> Result<()> {
        self.write_tx(true, |tx| {
            tx.execute(
                "UPDATE sync_runs SET phase = ?2, prev_run = COALESCE(?3, prev_run) WHERE id = ?1",
                params![id, phase, prev_run],
            )
            .ctx(&self.path)?;
            Ok(())
        })
    }

    /// Ends a sync with its final counts and outcome.
    pub fn sync_finish(&self, id: i64, counts: &SyncCounts, outcome: &str) -> Result<()> {
        let now = now_ms();
        self.write_tx(true, |tx| {
            set_counts(tx, id, counts).ctx(&self.path)?;
            tx.execute(
                "UPDATE sync_runs SET finished_at = ?2, outcome = ?3, phase = 'finished' WHERE id = ?1",
                params![id, now, outcome],
            )
            .ctx(&self.path)?;
            Ok(())
        })
    }

    /// A sync's row.
    pub fn sync_run(&self, id: i64) -> Result<Option<SyncRunRow>> {
        self.conn()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = ?1"),
                [id],
                run_from_row,
            )
            .optional()
            .ctx(&self.path)
    }

    /// The ops of a sync, in the order they were recorded (the order they are applied in).
    pub fn sync_ops(&self, id: i64) -> Result<Vec<SyncOpRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {OP_COLUMNS} FROM sync_ops WHERE sync_id = ?1 ORDER BY id"
            ))
            .ctx(&self.path)?;
        let rows = st
            .query_map([id], op_from_row)
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }

    /// Marks an op `started` (just before its call), durably: an op found `started` after a
    /// crash is in doubt and looked up in the pool before it is sent again, one found `pending`
    /// was never sent (see `crate::sync`).
    pub fn sync_op_started(&self, op: i64) -> Result<()> {
        self.write_tx(true, |tx| {
            tx.execute(
                "UPDATE sync_ops SET status = 'started', updated_at = ?2 WHERE id = ?1",
                params![op, now_ms()],
            )
            .ctx(&self.path)?;
            Ok(())
        })
    }

    /// Ends an op (`done` or `failed`) and writes what it did to its key, in one transaction. A
    /// done op's argument (an update's values) is cleared.
    pub fn sync_op_finished(
        &self,
        op: i64,
        status: &str,
        message: Option<&str>,
        key: &KeyWrite,
    ) -> Result<()> {
        let now = now_ms();
        self.write_tx(false, |tx| {
            tx.execute(
                "UPDATE sync_ops SET status = ?2, message = ?3, updated_at = ?4, \
                 arg = CASE WHEN ?2 = 'done' AND kind = 'update' THEN NULL ELSE arg END \
                 WHERE id = ?1",
                params![op, status, message, now],
            )
            .ctx(&self.path)?;
            match key {
                KeyWrite::None => {}
                KeyWrite::Put(k) => {
                    put_key(tx, k, now).ctx(&self.path)?;
                }
                KeyWrite::Delete(k) => {
                    tx.execute("DELETE FROM sync_keys WHERE key = ?1", [k])
                        .ctx(&self.path)?;
                }
            }
            Ok(())
        })
    }

    /// One key's row.
    pub fn sync_key(&self, key: &str) -> Result<Option<SyncKeyRow>> {
        self.conn()
            .query_row(
                "SELECT key, username, sub, attrs, enabled, groups, missing, in_pool, fp \
                 FROM sync_keys WHERE key = ?1",
                [key],
                |r| {
                    Ok(SyncKeyRow {
                        key: r.get(0)?,
                        username: r.get(1)?,
                        sub: r.get(2)?,
                        attrs: r.get(3)?,
                        enabled: r.get(4)?,
                        groups: r.get(5)?,
                        missing: r.get(6)?,
                        in_pool: r.get(7)?,
                        fp: r.get(8)?,
                    })
                },
            )
            .optional()
            .ctx(&self.path)
    }

    /// Streams every key with its fingerprint, missing and in-pool flags (one query, no row
    /// kept): how a sync loads what it compares the source with.
    pub fn sync_each_key(&self, mut f: impl FnMut(&str, i64, bool, bool)) -> Result<()> {
        self.scanning(|conn| {
            let mut st = conn
                .prepare("SELECT key, fp, missing, in_pool FROM sync_keys")
                .ctx(&self.path)?;
            let mut rows = st.query([]).ctx(&self.path)?;
            while let Some(r) = rows.next().ctx(&self.path)? {
                let key = r.get_ref(0).ctx(&self.path)?;
                let key = key
                    .as_str()
                    .map_err(|e| CheckpointErrorExt::conv(e, &self.path))?;
                f(
                    key,
                    r.get(1).ctx(&self.path)?,
                    r.get(2).ctx(&self.path)?,
                    r.get(3).ctx(&self.path)?,
                );
            }
            Ok(())
        })
    }

    /// How many keys the state knows.
    pub fn sync_key_count(&self) -> Result<u64> {
        self.scanning(|conn| {
            conn.query_row("SELECT COUNT(*) FROM sync_keys", [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .ctx(&self.path)
        })
    }

    /// Writes key rows directly (users adopted after their create).
    pub fn sync_put_keys(&self, keys: &[SyncKeyRow]) -> Result<()> {
        let now = now_ms();
        self.write_tx(false, |tx| {
            for k in keys {
                put_key(tx, k, now).ctx(&self.path)?;
            }
            Ok(())
        })
    }

    /// Deletes key rows (users no longer in the pool, found by a full reconcile).
    pub fn sync_forget_keys(&self, keys: &[String]) -> Result<()> {
        self.write_tx(false, |tx| {
            let mut st = tx
                .prepare("DELETE FROM sync_keys WHERE key = ?1")
                .ctx(&self.path)?;
            for k in keys {
                st.execute([k]).ctx(&self.path)?;
            }
            Ok(())
        })
    }

    /// The groups the source has ever named (the managed groups).
    pub fn sync_groups(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT name FROM sync_groups ORDER BY name")
            .ctx(&self.path)?;
        let rows = st
            .query_map([], |r| r.get(0))
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }
}

/// Converts a column type error into the store's error.
struct CheckpointErrorExt;

impl CheckpointErrorExt {
    fn conv(e: rusqlite::types::FromSqlError, path: &std::path::Path) -> super::CheckpointError {
        super::CheckpointError::Sqlite {
            path: path.to_path_buf(),
            source: rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                Box::new(e),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::tests::TempDb;

    fn op(key: &str, kind: &'static str, removal: bool, status: &'static str) -> NewSyncOp {
        NewSyncOp {
            key: key.into(),
            username: key.into(),
            kind,
            arg: Some("[]".into()),
            record: (kind == "create").then_some(7),
            removal,
            status,
        }
    }

    #[test]
    fn a_change_set_is_recorded_paged_finished_and_counted() {
        let db = TempDb::new("sync-ops");
        let cp = Checkpoint::open(&db.0).unwrap();
        let id = cp.sync_begin("pool", "fp", false, true).unwrap();
        assert!(cp.sync_unfinished().unwrap().is_none(), "still reading");
        // Written in two parts, as a large pass does.
        cp.sync_add_ops(id, &[op("a", "create", false, "pending")])
            .unwrap();
        let rest = [
            op("b", "update", false, "pending"),
            op("b", "group_add", false, "pending"),
            op("c", "delete_attributes", false, "pending"),
            op("d", "disable", true, "staged"),
        ];
        let counts = SyncCounts {
            records: 4,
            ..SyncCounts::default()
        };
        cp.sync_record(id, &counts, &rest, &[], &["staff".into()], Some("brake"))
            .unwrap();
        let run = cp.sync_unfinished().unwrap().expect("recorded: resumable");
        assert_eq!((run.id, run.phase.as_str()), (id, "recorded"));
        assert_eq!(run.no_removals_because.as_deref(), Some("brake"));
        assert_eq!(cp.sync_groups().unwrap(), vec!["staff"]);
        assert_eq!(cp.sync_create_records(id).unwrap(), vec![7]);
        // Paged in order, creates apart.
        let first = cp.sync_open_ops(id, false, 0, 2).unwrap();
        assert_eq!(
            first.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>(),
            ["update", "group_add"]
        );
        let next = cp.sync_open_ops(id, false, first[1].id, 2).unwrap();
        assert_eq!(next.len(), 1, "the staged removal is not open");
        // Ends: the update's values are cleared, the key written in the same transaction.
        let key = SyncKeyRow {
            key: "b".into(),
            username: "b".into(),
            sub: None,
            attrs: String::new(),
            enabled: true,
            groups: String::new(),
            missing: false,
            in_pool: true,
            fp: 1,
        };
        cp.sync_op_finished(first[0].id, "done", None, &KeyWrite::Put(key.clone()))
            .unwrap();
        cp.sync_op_finished(first[1].id, "failed", Some("x"), &KeyWrite::None)
            .unwrap();
        cp.sync_op_finished(next[0].id, "done", None, &KeyWrite::None)
            .unwrap();
        let creates = cp.sync_open_ops(id, true, 0, 10).unwrap();
        cp.sync_op_finished(creates[0].id, "done", None, &KeyWrite::None)
            .unwrap();
        assert_eq!(cp.sync_key("b").unwrap(), Some(key));
        let ops = cp.sync_ops(id).unwrap();
        assert_eq!(ops[1].arg, None, "a done update keeps no values");
        let t = cp.sync_op_tally(id).unwrap();
        assert_eq!(
            (
                t.created,
                t.updated,
                t.group_adds,
                t.failed,
                t.staged_removals
            ),
            (1, 2, 0, 1, 1)
        );
        cp.sync_finish(id, &t, "removals_staged").unwrap();
        assert!(cp.sync_unfinished().unwrap().is_none());
        assert!(cp.sync_last_full().unwrap().is_some());
        cp.sync_forget_keys(&["b".into()]).unwrap();
        assert_eq!(cp.sync_key_count().unwrap(), 0);
    }
}
