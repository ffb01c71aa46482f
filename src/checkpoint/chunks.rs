//! Import-job chunks: one CSV file, one job. Every remote step is bracketed by a *before* marker
//! (`in_flight`) and an *after* record (`status`), both fsynced, so that after a crash
//! [`ChunkRow::resume`] says exactly which step was last completed and whether a side effect may
//! have happened without being recorded.
//!
//! ```text
//!            mark_creating        created          mark_uploading    uploaded
//! written ──[creating]──▶ created ──[uploading]──▶ uploaded ──[starting]──▶ started ──▶ succeeded
//!                                                           chunk_starting chunk_started  failed
//!   any non-final status ──chunk_finished──▶ failed | stopped | expired | abandoned | succeeded
//!   final status ──settle_chunk──▶ settled (its users' outcome decided)
//! ```
//!
//! Chunk-level events cost O(1), not O(users in the chunk) (schema V2): [`Checkpoint::chunk_starting`]
//! counts the StartUserImportJob attempt on the chunk row, and [`Checkpoint::settle_chunk`] records
//! the outcome of the chunk's users still pending on the chunk row; readers derive each user's
//! outcome and attempts from it (the view `user_outcomes`). Only exceptions are written per user:
//! result lines of the job's CloudWatch log ([`Checkpoint::set_outcomes_by_chunk_lines`]), the
//! users of a failed job, users moved to a new chunk.

use std::time::SystemTime;

use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::chunk_state::{ChunkRow, ChunkSpec, ChunkStatus, JobCounts, LineOutcome, Step};
use super::users::{Outcome, UserIter, UserRow, EFFECTIVE_OUTCOME};
use super::{
    from_ms, job_name, now_ms, to_i64, to_ms, Checkpoint, CheckpointError, ChunkId, Counts, Result,
    RunId, SqlContext,
};

/// Deletes the users and rows of `run`'s chunks still writing (see
/// [`Checkpoint::discard_writing_chunks`]); also called when a run is opened again.
pub(super) fn discard_writing_chunks(
    tx: &Transaction<'_>,
    run: RunId,
    path: &std::path::Path,
) -> Result<u64> {
    let ids: Vec<ChunkId> = {
        let mut stmt = tx
            .prepare("SELECT id FROM chunks WHERE run_id = ?1 AND writing = 1")
            .ctx(path)?;
        let ids = stmt
            .query_map([run], |r| r.get(0))
            .ctx(path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(path)?;
        ids
    };
    for id in &ids {
        // Only rows the chunk created carry its id (users already recorded are re-chunked by
        // `finish_chunk`, in the transaction that ends the writing).
        tx.execute("DELETE FROM users WHERE chunk_id = ?1", [id])
            .ctx(path)?;
        tx.execute("DELETE FROM chunks WHERE id = ?1 AND writing = 1", [id])
            .ctx(path)?;
    }
    Ok(ids.len() as u64)
}

/// Binds one chunk user's 14 parameters after parameter `p`; returns the last one bound.
fn bind_chunk_user(
    stmt: &mut rusqlite::Statement<'_>,
    mut p: usize,
    run: RunId,
    chunk: ChunkId,
    now: i64,
    (line, user): &(i64, UserRow),
    path: &std::path::Path,
) -> Result<usize> {
    let values: [&dyn rusqlite::ToSql; 14] = [
        &run,
        &to_i64(user.position.record, path, "record")?,
        &to_i64(user.position.line, path, "line")?,
        &to_i64(user.position.byte_offset, path, "byte offset")?,
        &user.username,
        &user.route,
        &chunk,
        line,
        &user.needs_disable,
        &user.groups,
        &user.followups_done,
        &now,
        &user.links,
        &user.legacy_id,
    ];
    for v in values {
        p += 1;
        stmt.raw_bind_parameter(p, v).ctx(path)?;
    }
    Ok(p)
}

const CHUNK_COLUMNS: &str = "id, run_id, seq, route, file_path, row_count, byte_size, status, \
     in_flight, job_name, job_id, url_expires_at, imported, skipped, failed, written_at, \
     created_at, started_at, finished_at, updated_at, message, attempts, settled_outcome, \
     settled_at";

/// Users per multi-row INSERT in [`Checkpoint::add_chunk`] (14 parameters each).
const CHUNK_INSERT_ROWS: usize = 256;

const CHUNK_INSERT_SQL: &str = "INSERT INTO users (run_id, record, line, byte_offset, username, \
     route, outcome, chunk_id, chunk_line, needs_disable, groups, followups_done, updated_at, \
     links, legacy_id) VALUES ";

/// One user of a new chunk when it may already be recorded: it may be re-chunked only if
/// unsettled (`failed`, `unknown`, or `pending` outside any live chunk).
const CHUNK_UPSERT_SQL: &str = "INSERT INTO users (run_id, record, line, byte_offset, username, \
     route, outcome, chunk_id, chunk_line, needs_disable, groups, followups_done, updated_at, \
     links, legacy_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
     ON CONFLICT (run_id, record) DO UPDATE SET line = excluded.line, \
     byte_offset = excluded.byte_offset, username = excluded.username, \
     route = excluded.route, outcome = 'pending', reason = NULL, message = NULL, \
     chunk_id = excluded.chunk_id, chunk_line = excluded.chunk_line, \
     needs_disable = excluded.needs_disable, groups = excluded.groups, links = excluded.links, \
     followups_done = MAX(users.followups_done, excluded.followups_done), \
     attempts = users.attempts + COALESCE((SELECT attempts FROM chunks \
     WHERE chunks.id = users.chunk_id), 0), follows_chunk = 1, \
     updated_at = excluded.updated_at, legacy_id = COALESCE(excluded.legacy_id, users.legacy_id) \
     WHERE {EFFECTIVE} IN ('failed', 'unknown') OR ({EFFECTIVE} = 'pending' \
     AND (users.chunk_id IS NULL OR (SELECT status FROM chunks \
     WHERE chunks.id = users.chunk_id) IN \
     ('succeeded', 'failed', 'stopped', 'expired', 'abandoned')))";

fn chunk_from_row(row: &Row<'_>) -> rusqlite::Result<ChunkRow> {
    let bad = |i: usize, s: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown value {s:?}").into(),
        )
    };
    let status: String = row.get(7)?;
    let in_flight: Option<String> = row.get(8)?;
    let imported: Option<i64> = row.get(12)?;
    let skipped: Option<i64> = row.get(13)?;
    let failed: Option<i64> = row.get(14)?;
    let ms = |i: usize| -> rusqlite::Result<Option<SystemTime>> {
        Ok(row.get::<_, Option<i64>>(i)?.map(from_ms))
    };
    Ok(ChunkRow {
        id: row.get(0)?,
        run_id: row.get(1)?,
        seq: row.get::<_, i64>(2)? as u64,
        route: row.get(3)?,
        file_path: row.get(4)?,
        row_count: row.get::<_, i64>(5)? as u64,
        byte_size: row.get::<_, i64>(6)? as u64,
        status: ChunkStatus::parse(&status).ok_or_else(|| bad(7, status.clone()))?,
        in_flight: match in_flight {
            None => None,
            Some(s) => Some(Step::parse(&s).ok_or_else(|| bad(8, s.clone()))?),
        },
        job_name: row.get(9)?,
        job_id: row.get(10)?,
        url_expires_at: ms(11)?,
        counts: match (imported, skipped, failed) {
            (None, None, None) => None,
            (i, s, f) => Some(JobCounts {
                imported: i.unwrap_or(0) as u64,
                skipped: s.unwrap_or(0) as u64,
                failed: f.unwrap_or(0) as u64,
            }),
        },
        written_at: from_ms(row.get(15)?),
        created_at: ms(16)?,
        started_at: ms(17)?,
        finished_at: ms(18)?,
        updated_at: from_ms(row.get(19)?),
        message: row.get(20)?,
        attempts: row.get::<_, i64>(21)? as u64,
        settled_outcome: row.get(22)?,
        settled_at: ms(23)?,
    })
}

/// Which (status, in_flight) pairs a step may start from.
struct Transition {
    action: &'static str,
    from: &'static [ChunkStatus],
    in_flight: &'static [Option<Step>],
}

impl Checkpoint {
    /// Record a written chunk file and its users in one transaction: the chunk (status `written`,
    /// job name decided now) and each user as `pending` with the chunk id and its 1-based data
    /// line (the iteration order). `users` must yield exactly `spec.row_count` rows, all with the
    /// chunk's route. A user may be re-chunked only if unsettled (`pending` outside any live chunk,
    /// `failed`, `unknown`).
    pub fn add_chunk(
        &self,
        run: RunId,
        spec: &ChunkSpec,
        users: impl IntoIterator<Item = UserRow>,
    ) -> Result<ChunkRow> {
        if !spec.route.starts_with("import:") {
            return Err(self.invalid(format!(
                "chunk route {:?} is not an import route",
                spec.route
            )));
        }
        let row_count = to_i64(spec.row_count, &self.path, "row count")?;
        let byte_size = to_i64(spec.byte_size, &self.path, "byte size")?;
        let id = self.write_tx(false, |tx| {
            let (token, id, seq) = self.next_chunk(tx, run)?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO chunks (id, run_id, seq, route, file_path, row_count, byte_size, \
                 status, job_name, written_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'written', ?8, ?9, ?9)",
                params![
                    id,
                    run,
                    seq,
                    spec.route,
                    spec.file_path,
                    row_count,
                    byte_size,
                    job_name(&token, run, id),
                    now
                ],
            )
            .ctx(&self.path)?;
            // Fresh users (the common case) go in with multi-row plain INSERTs: one statement per
            // CHUNK_INSERT_ROWS users, which saves SQLite's per-statement work (CHECK lists, the
            // statement journal). A batch with a user already recorded fails as a whole (the
            // statement, not the transaction, is rolled back) and is redone row by row with the
            // guarded upsert, which applies the re-chunking rules and reports a refused user.
            let mut batch: Vec<(i64, UserRow)> = Vec::with_capacity(CHUNK_INSERT_ROWS);
            let mut line: i64 = 0;
            for user in users {
                line += 1;
                if user.route != spec.route {
                    return Err(self.invalid(format!(
                        "record {} has route {} but chunk route is {}",
                        user.position.record, user.route, spec.route
                    )));
                }
                batch.push((line, user));
                if batch.len() == CHUNK_INSERT_ROWS {
                    self.insert_chunk_users(tx, run, id, now, &batch)?;
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                self.insert_chunk_users(tx, run, id, now, &batch)?;
            }
            if line != row_count {
                return Err(self.invalid(format!(
                    "chunk {} declares {row_count} rows but {line} users were given",
                    spec.file_path
                )));
            }
            Ok(id)
        })?;
        self.chunk(id)
    }

    /// Insert one batch of a new chunk's users (see [`Checkpoint::add_chunk`]): one multi-row
    /// INSERT, or row by row with the guarded upsert when one of them is already recorded.
    fn insert_chunk_users(
        &self,
        tx: &Transaction<'_>,
        run: RunId,
        chunk: ChunkId,
        now: i64,
        batch: &[(i64, UserRow)],
    ) -> Result<()> {
        let mut sql = String::with_capacity(CHUNK_INSERT_SQL.len() + batch.len() * 40);
        sql.push_str(CHUNK_INSERT_SQL);
        for i in 0..batch.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?,?,?,?,?,?,'pending',?,?,?,?,?,?,?,?)");
        }
        let mut stmt = tx.prepare_cached(&sql).ctx(&self.path)?;
        let mut p = 0;
        for (line, user) in batch {
            let values: [&dyn rusqlite::ToSql; 14] = [
                &run,
                &to_i64(user.position.record, &self.path, "record")?,
                &to_i64(user.position.line, &self.path, "line")?,
                &to_i64(user.position.byte_offset, &self.path, "byte offset")?,
                &user.username,
                &user.route,
                &chunk,
                line,
                &user.needs_disable,
                &user.groups,
                &user.followups_done,
                &now,
                &user.links,
                &user.legacy_id,
            ];
            for v in values {
                p += 1;
                stmt.raw_bind_parameter(p, v).ctx(&self.path)?;
            }
        }
        match stmt.raw_execute() {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation => {}
            Err(e) => return Err(e).ctx(&self.path),
        }
        drop(stmt);
        let upsert = CHUNK_UPSERT_SQL.replace("{EFFECTIVE}", EFFECTIVE_OUTCOME);
        let mut stmt = tx.prepare_cached(&upsert).ctx(&self.path)?;
        for (line, user) in batch {
            let record = to_i64(user.position.record, &self.path, "record")?;
            let changed = stmt
                .execute(params![
                    run,
                    record,
                    to_i64(user.position.line, &self.path, "line")?,
                    to_i64(user.position.byte_offset, &self.path, "byte offset")?,
                    user.username,
                    user.route,
                    chunk,
                    line,
                    user.needs_disable,
                    user.groups,
                    user.followups_done,
                    now,
                    user.links,
                    user.legacy_id
                ])
                .ctx(&self.path)?;
            if changed == 0 {
                let (outcome, in_chunk): (Outcome, Option<ChunkId>) = tx
                    .query_row(
                        "SELECT outcome, chunk_id FROM user_outcomes \
                         WHERE run_id = ?1 AND record = ?2",
                        params![run, record],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .ctx(&self.path)?;
                return Err(match (outcome, in_chunk) {
                    (Outcome::Pending, Some(in_chunk)) => self.invalid(format!(
                        "record {record} is already in chunk {in_chunk}, which has not ended"
                    )),
                    _ => CheckpointError::AlreadySettled {
                        path: self.path.clone(),
                        run,
                        record: user.position.record,
                        outcome,
                    },
                });
            }
        }
        Ok(())
    }

    /// The run's token, and the id and sequence number of the run's next chunk (inside the write
    /// transaction that inserts it).
    fn next_chunk(
        &self,
        tx: &rusqlite::Transaction<'_>,
        run: RunId,
    ) -> Result<(String, ChunkId, i64)> {
        let token: String = tx
            .query_row("SELECT token FROM runs WHERE id = ?1", [run], |r| r.get(0))
            .optional()
            .ctx(&self.path)?
            .ok_or_else(|| CheckpointError::UnknownRun {
                path: self.path.clone(),
                run,
            })?;
        let id: ChunkId = tx
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks", [], |r| {
                r.get(0)
            })
            .ctx(&self.path)?;
        let seq: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM chunks WHERE run_id = ?1",
                [run],
                |r| r.get(0),
            )
            .ctx(&self.path)?;
        Ok((token, id, seq))
    }

    /// Start recording a chunk whose file is still being written (schema V2 `chunks.writing`):
    /// its row is inserted with `writing = 1` (id, sequence number and job name decided now; path,
    /// row count and size come with [`Checkpoint::finish_chunk`]). Until then the chunk and its
    /// users are invisible to every reader, and a crash leaves it to
    /// [`Checkpoint::discard_writing_chunks`].
    pub fn begin_chunk(&self, run: RunId, route: &str) -> Result<ChunkId> {
        if !route.starts_with("import:") {
            return Err(self.invalid(format!("chunk route {route:?} is not an import route")));
        }
        self.write_tx(false, |tx| {
            let (token, id, seq) = self.next_chunk(tx, run)?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO chunks (id, run_id, seq, route, file_path, row_count, byte_size, \
                 status, job_name, written_at, updated_at, writing) \
                 VALUES (?1, ?2, ?3, ?4, '', 0, 0, 'written', ?5, ?6, ?6, 1)",
                params![id, run, seq, route, job_name(&token, run, id), now],
            )
            .ctx(&self.path)?;
            Ok(id)
        })
    }

    /// Record users of a chunk still writing (one transaction for all of `batches`, not fsynced),
    /// each as `pending` with its 1-based data line in the file. Fresh users go in with multi-row
    /// INSERTs; a user already recorded (a failed or unknown user read again by `retry`, say) is
    /// left untouched and returned, to be re-chunked atomically by [`Checkpoint::finish_chunk`]:
    /// discarding a chunk then only deletes rows it created.
    pub fn write_chunk_users(
        &self,
        run: RunId,
        batches: &[(ChunkId, Vec<(i64, UserRow)>)],
    ) -> Result<Vec<(ChunkId, i64, UserRow)>> {
        self.write_tx(false, |tx| {
            let now = now_ms();
            let mut held = Vec::new();
            for (chunk, users) in batches {
                let route: String = tx
                    .query_row(
                        "SELECT route FROM chunks WHERE id = ?1 AND run_id = ?2 AND writing = 1",
                        params![chunk, run],
                        |r| r.get(0),
                    )
                    .optional()
                    .ctx(&self.path)?
                    .ok_or_else(|| self.invalid(format!("chunk {chunk} is not being written")))?;
                for part in users.chunks(CHUNK_INSERT_ROWS) {
                    for (_, user) in part {
                        if user.route != route {
                            return Err(self.invalid(format!(
                                "record {} has route {} but chunk route is {route}",
                                user.position.record, user.route
                            )));
                        }
                    }
                    for i in self.insert_fresh_chunk_users(tx, run, *chunk, now, part)? {
                        let (line, user) = &part[i];
                        held.push((*chunk, *line, user.clone()));
                    }
                }
            }
            Ok(held)
        })
    }

    /// One multi-row INSERT of fresh users; when one of them is already recorded, row by row,
    /// skipping those: returns their indices in `batch`.
    fn insert_fresh_chunk_users(
        &self,
        tx: &Transaction<'_>,
        run: RunId,
        chunk: ChunkId,
        now: i64,
        batch: &[(i64, UserRow)],
    ) -> Result<Vec<usize>> {
        match self.insert_chunk_users_plain(tx, run, chunk, now, batch) {
            Ok(()) => return Ok(Vec::new()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation => {}
            Err(e) => return Err(e).ctx(&self.path),
        }
        let mut held = Vec::new();
        for (i, one) in batch.iter().enumerate() {
            let sql = format!(
                "{CHUNK_INSERT_SQL}(?,?,?,?,?,?,'pending',?,?,?,?,?,?,?,?) \
                 ON CONFLICT (run_id, record) DO NOTHING"
            );
            let mut stmt = tx.prepare_cached(&sql).ctx(&self.path)?;
            bind_chunk_user(&mut stmt, 0, run, chunk, now, one, &self.path)?;
            if stmt.raw_execute().ctx(&self.path)? == 0 {
                held.push(i);
            }
        }
        Ok(held)
    }

    /// The multi-row INSERT of [`Checkpoint::insert_chunk_users`], without the fallback.
    fn insert_chunk_users_plain(
        &self,
        tx: &Transaction<'_>,
        run: RunId,
        chunk: ChunkId,
        now: i64,
        batch: &[(i64, UserRow)],
    ) -> rusqlite::Result<()> {
        let mut sql = String::with_capacity(CHUNK_INSERT_SQL.len() + batch.len() * 40);
        sql.push_str(CHUNK_INSERT_SQL);
        for i in 0..batch.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?,?,?,?,?,?,'pending',?,?,?,?,?,?,?,?)");
        }
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut p = 0;
        for one in batch {
            p = bind_chunk_user(&mut stmt, p, run, chunk, now, one, &self.path)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        }
        stmt.raw_execute().map(|_| ())
    }

    /// The chunk's file is complete: record the users not yet recorded (`rest`, and those
    /// [`Checkpoint::write_chunk_users`] held back, re-chunked with the rules of
    /// [`Checkpoint::add_chunk`]), check that the chunk has exactly `spec.row_count` users, and
    /// make it an ordinary `written` chunk with the file's path and size, in one transaction.
    pub fn finish_chunk(
        &self,
        run: RunId,
        chunk: ChunkId,
        spec: &ChunkSpec,
        rest: &[(i64, UserRow)],
    ) -> Result<ChunkRow> {
        let row_count = to_i64(spec.row_count, &self.path, "row count")?;
        let byte_size = to_i64(spec.byte_size, &self.path, "byte size")?;
        self.write_tx(false, |tx| {
            let route: String = tx
                .query_row(
                    "SELECT route FROM chunks WHERE id = ?1 AND run_id = ?2 AND writing = 1",
                    params![chunk, run],
                    |r| r.get(0),
                )
                .optional()
                .ctx(&self.path)?
                .ok_or_else(|| self.invalid(format!("chunk {chunk} is not being written")))?;
            if route != spec.route {
                return Err(self.invalid(format!(
                    "chunk {chunk} has route {route}, its file {}",
                    spec.route
                )));
            }
            let now = now_ms();
            for part in rest.chunks(CHUNK_INSERT_ROWS) {
                for (_, user) in part {
                    if user.route != route {
                        return Err(self.invalid(format!(
                            "record {} has route {} but chunk route is {route}",
                            user.position.record, user.route
                        )));
                    }
                }
                self.insert_chunk_users(tx, run, chunk, now, part)?;
            }
            let recorded: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM users WHERE chunk_id = ?1",
                    [chunk],
                    |r| r.get(0),
                )
                .ctx(&self.path)?;
            if recorded != row_count {
                return Err(self.invalid(format!(
                    "chunk {} declares {row_count} rows but {recorded} users were recorded",
                    spec.file_path
                )));
            }
            tx.execute(
                "UPDATE chunks SET file_path = ?2, row_count = ?3, byte_size = ?4, writing = 0, \
                 written_at = ?5, updated_at = ?5 WHERE id = ?1",
                params![chunk, spec.file_path, row_count, byte_size, now],
            )
            .ctx(&self.path)?;
            Ok(())
        })?;
        self.chunk(chunk)
    }

    /// Discard the chunks of `run` still writing (a crash mid-write): their users and rows are
    /// deleted, so that their records are read, routed and recorded again, each once; their
    /// files are orphans (no chunk names them). Returns the chunks discarded.
    pub fn discard_writing_chunks(&self, run: RunId) -> Result<u64> {
        self.write_tx(true, |tx| discard_writing_chunks(tx, run, &self.path))
    }

    /// Forget the chunks of `run` whose import file is gone and is still needed, so that a
    /// reading pass reads, routes and records their users again, each once:
    /// - `written` or `created` (whatever step is in flight): no StartUserImportJob was ever sent
    ///   for them (a start needs `uploaded`), so their job, if any, imported nobody and never
    ///   will (Cognito expires it). Their users' rows and the chunk rows are deleted.
    /// - ended `stopped`, `expired` or `abandoned` but not yet settled (settling would move their
    ///   pending users into a new chunk on the same file, or split the file): their pending
    ///   users' rows are deleted and the chunk is settled. Users such a job did import are met
    ///   again by the next job, which skips them (`skipped`, never twice in the pool).
    ///
    /// Why: a state resumed on another machine (`--state s3://…`) or after its work dir was
    /// lost names import files that no longer exist; such a chunk could never be uploaded.
    /// Call it only before a reading pass of the whole input. Returns the chunks forgotten.
    pub fn forget_chunks_without_files(&self, run: RunId) -> Result<Vec<ChunkId>> {
        self.write_tx(true, |tx| {
            let candidates: Vec<(ChunkId, String, String)> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT id, file_path, status FROM chunks WHERE run_id = ?1 AND writing = 0 \
                         AND (status IN ('written', 'created') OR (settled_at IS NULL \
                         AND status IN ('stopped', 'expired', 'abandoned'))) ORDER BY id",
                    )
                    .ctx(&self.path)?;
                let rows = stmt
                    .query_map([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .ctx(&self.path)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .ctx(&self.path)?;
                rows
            };
            let now = now_ms();
            let mut forgotten = Vec::new();
            for (id, file, status) in candidates {
                if std::path::Path::new(&file).exists() {
                    continue;
                }
                if status == "written" || status == "created" {
                    tx.execute(
                        "DELETE FROM users WHERE run_id = ?1 AND chunk_id = ?2",
                        params![run, id],
                    )
                    .ctx(&self.path)?;
                    tx.execute("DELETE FROM chunks WHERE id = ?1", [id])
                        .ctx(&self.path)?;
                } else {
                    tx.execute(
                        "DELETE FROM users WHERE run_id = ?1 AND chunk_id = ?2 \
                         AND outcome = 'pending'",
                        params![run, id],
                    )
                    .ctx(&self.path)?;
                    tx.execute(
                        "UPDATE chunks SET settled_at = ?2, updated_at = ?2 WHERE id = ?1",
                        params![id, now],
                    )
                    .ctx(&self.path)?;
                }
                forgotten.push(id);
            }
            Ok(forgotten)
        })
    }

    /// A chunk by id.
    pub fn chunk(&self, chunk: ChunkId) -> Result<ChunkRow> {
        let conn = self.conn();
        Self::load_chunk(&conn, chunk, &self.path)
    }

    fn load_chunk(
        conn: &rusqlite::Connection,
        chunk: ChunkId,
        path: &std::path::Path,
    ) -> Result<ChunkRow> {
        conn.query_row(
            &format!("SELECT {CHUNK_COLUMNS} FROM chunks WHERE id = ?1 AND writing = 0"),
            [chunk],
            chunk_from_row,
        )
        .optional()
        .ctx(path)?
        .ok_or_else(|| CheckpointError::UnknownChunk {
            path: path.to_path_buf(),
            chunk,
        })
    }

    /// A run's chunks, in order.
    pub fn chunks(&self, run: RunId) -> Result<Vec<ChunkRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {CHUNK_COLUMNS} FROM chunks WHERE run_id = ?1 AND writing = 0 \
                 ORDER BY seq"
            ))
            .ctx(&self.path)?;
        let rows = stmt
            .query_map([run], chunk_from_row)
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }

    /// Counts by outcome of a chunk's users.
    pub fn chunk_counts(&self, chunk: ChunkId) -> Result<Counts> {
        Ok(self
            .grouped_counts("chunk_id = ?1", chunk, false)?
            .remove("")
            .unwrap_or_default())
    }

    /// A chunk's users in line order.
    pub fn chunk_users(&self, chunk: ChunkId) -> UserIter<'_> {
        UserIter::new(self, "chunk_id = ?2", vec![Value::Integer(chunk.0)], true)
    }

    /// Check a transition and apply `update` (an `UPDATE chunks SET … WHERE id = ?1` statement
    /// body after `SET`), fsynced.
    fn chunk_step(
        &self,
        chunk: ChunkId,
        t: Transition,
        extra: impl FnOnce(&Transaction<'_>, &ChunkRow) -> Result<()>,
        set: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<ChunkRow> {
        self.write_tx(true, |tx| {
            let row = Self::load_chunk(tx, chunk, &self.path)?;
            if !t.from.contains(&row.status) || !t.in_flight.contains(&row.in_flight) {
                let state = match row.in_flight {
                    Some(step) => format!("{} and {}", row.status, step.as_str()),
                    None => row.status.to_string(),
                };
                return Err(CheckpointError::InvalidTransition {
                    path: self.path.clone(),
                    chunk,
                    action: t.action,
                    state,
                });
            }
            extra(tx, &row)?;
            let mut all: Vec<&dyn rusqlite::ToSql> = vec![&chunk];
            all.extend_from_slice(params);
            tx.execute(
                &format!(
                    "UPDATE chunks SET {set}, updated_at = {} WHERE id = ?1",
                    now_ms()
                ),
                all.as_slice(),
            )
            .ctx(&self.path)?;
            Self::load_chunk(tx, chunk, &self.path)
        })
    }

    /// Before CreateUserImportJob: from `written` (again, after a crash).
    pub fn chunk_mark_creating(&self, chunk: ChunkId) -> Result<ChunkRow> {
        self.chunk_step(
            chunk,
            Transition {
                action: "mark it creating",
                from: &[ChunkStatus::Written],
                in_flight: &[None, Some(Step::Creating)],
            },
            |_, _| Ok(()),
            "in_flight = 'creating'",
            &[],
        )
    }

    /// After CreateUserImportJob returned (or the job was found by name): `created`. `job_name`
    /// must be the chunk's. The presigned URL itself is never stored, only its expiry.
    pub fn chunk_created(
        &self,
        chunk: ChunkId,
        job_id: &str,
        job_name: &str,
        url_expires_at: SystemTime,
    ) -> Result<ChunkRow> {
        let expires = to_ms(url_expires_at);
        let now = now_ms();
        self.chunk_step(
            chunk,
            Transition {
                action: "record its job as created",
                from: &[ChunkStatus::Written],
                in_flight: &[Some(Step::Creating)],
            },
            |_, row| {
                if row.job_name != job_name {
                    return Err(self.invalid(format!(
                        "chunk {chunk}: job name {job_name:?} is not the chunk's {:?}",
                        row.job_name
                    )));
                }
                Ok(())
            },
            "status = 'created', in_flight = NULL, job_id = ?2, url_expires_at = ?3, \
             created_at = ?4",
            &[&job_id, &expires, &now],
        )
    }

    /// Before the upload: from `created`.
    pub fn chunk_mark_uploading(&self, chunk: ChunkId) -> Result<ChunkRow> {
        self.chunk_step(
            chunk,
            Transition {
                action: "mark it uploading",
                from: &[ChunkStatus::Created],
                in_flight: &[None, Some(Step::Uploading)],
            },
            |_, _| Ok(()),
            "in_flight = 'uploading'",
            &[],
        )
    }

    /// After the upload succeeded: `uploaded`.
    pub fn chunk_uploaded(&self, chunk: ChunkId) -> Result<ChunkRow> {
        self.chunk_step(
            chunk,
            Transition {
                action: "record it uploaded",
                from: &[ChunkStatus::Created],
                in_flight: &[Some(Step::Uploading)],
            },
            |_, _| Ok(()),
            "status = 'uploaded', in_flight = NULL, uploaded_at = ?2",
            &[&now_ms()],
        )
    }

    /// Before StartUserImportJob: from `uploaded`. Counts one attempt for each of its users (on the
    /// chunk row: O(1)).
    pub fn chunk_starting(&self, chunk: ChunkId) -> Result<ChunkRow> {
        self.chunk_step(
            chunk,
            Transition {
                action: "mark it starting",
                from: &[ChunkStatus::Uploaded],
                in_flight: &[None, Some(Step::Starting)],
            },
            |_, _| Ok(()),
            "in_flight = 'starting', attempts = attempts + 1",
            &[],
        )
    }

    /// After StartUserImportJob returned (or the job was seen running): `started`.
    pub fn chunk_started(&self, chunk: ChunkId) -> Result<ChunkRow> {
        let now = now_ms();
        self.chunk_step(
            chunk,
            Transition {
                action: "record it started",
                from: &[ChunkStatus::Uploaded],
                in_flight: &[Some(Step::Starting)],
            },
            |_, _| Ok(()),
            "status = 'started', in_flight = NULL, started_at = ?2",
            &[&now],
        )
    }

    /// The job (or the chunk) ended: `status` must be final (`succeeded`, `failed`, `stopped`,
    /// `expired`, `abandoned`). Allowed from any non-final status. Users' outcomes are not
    /// touched: settle them with [`Checkpoint::set_outcomes_by_chunk_lines`] /
    /// [`Checkpoint::set_outcome_for_chunk`].
    pub fn chunk_finished(
        &self,
        chunk: ChunkId,
        status: ChunkStatus,
        counts: Option<JobCounts>,
        message: Option<&str>,
    ) -> Result<ChunkRow> {
        if !status.is_final() {
            return Err(self.invalid(format!("chunk {chunk}: {status} is not a final status")));
        }
        let to = |n: u64| to_i64(n, &self.path, "count");
        let (imported, skipped, failed) = match counts {
            Some(c) => (
                Some(to(c.imported)?),
                Some(to(c.skipped)?),
                Some(to(c.failed)?),
            ),
            None => (None, None, None),
        };
        let now = now_ms();
        self.chunk_step(
            chunk,
            Transition {
                action: "record it finished",
                from: &[
                    ChunkStatus::Written,
                    ChunkStatus::Created,
                    ChunkStatus::Uploaded,
                    ChunkStatus::Started,
                ],
                in_flight: &[
                    None,
                    Some(Step::Creating),
                    Some(Step::Uploading),
                    Some(Step::Starting),
                ],
            },
            |_, _| Ok(()),
            "status = ?2, in_flight = NULL, imported = ?3, skipped = ?4, failed = ?5, \
             finished_at = ?6, message = ?7",
            &[
                &status.as_str(),
                &imported,
                &skipped,
                &failed,
                &now,
                &message,
            ],
        )
    }

    /// Map one CloudWatch `Line Number N` result back to its user. Returns the user's record
    /// index, or `None` if no user has that line.
    pub fn set_outcome_by_chunk_line(
        &self,
        chunk: ChunkId,
        line: u64,
        outcome: Outcome,
        reason: Option<&str>,
        message: Option<&str>,
    ) -> Result<Option<u64>> {
        let line = to_i64(line, &self.path, "line")?;
        self.write_tx(false, |tx| {
            tx.query_row(
                "UPDATE users SET outcome = ?3, reason = ?4, message = ?5, updated_at = ?6 \
                 WHERE chunk_id = ?1 AND chunk_line = ?2 RETURNING record",
                params![chunk, line, outcome, reason, message, now_ms()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .ctx(&self.path)
            .map(|r| r.map(|r| r as u64))
        })
    }

    /// [`Checkpoint::set_outcome_by_chunk_line`] for many lines, in one transaction. Returns how
    /// many lines matched a user.
    pub fn set_outcomes_by_chunk_lines(
        &self,
        chunk: ChunkId,
        lines: &[LineOutcome],
    ) -> Result<u64> {
        self.write_tx(false, |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE users SET outcome = ?3, reason = ?4, message = ?5, updated_at = ?6 \
                     WHERE chunk_id = ?1 AND chunk_line = ?2",
                )
                .ctx(&self.path)?;
            let now = now_ms();
            let mut matched = 0;
            for l in lines {
                matched += stmt
                    .execute(params![
                        chunk,
                        to_i64(l.line, &self.path, "line")?,
                        l.outcome,
                        l.reason,
                        l.message,
                        now
                    ])
                    .ctx(&self.path)? as u64;
            }
            Ok(matched)
        })
    }

    /// Set every user of a chunk with outcome `from` to `to`, on each user's row. Returns how many
    /// changed. O(users in the chunk): the import-job writer settles a chunk with
    /// [`Checkpoint::settle_chunk`] instead.
    pub fn set_outcome_for_chunk(&self, chunk: ChunkId, from: Outcome, to: Outcome) -> Result<u64> {
        self.write_tx(false, |tx| {
            Ok(tx
                .execute(
                    &format!(
                        "UPDATE users SET outcome = ?3, follows_chunk = 0, updated_at = ?4 \
                         WHERE chunk_id = ?1 AND {EFFECTIVE_OUTCOME} = ?2"
                    ),
                    params![chunk, from, to, now_ms()],
                )
                .ctx(&self.path)? as u64)
        })
    }

    /// Settle an ended chunk, in O(1) plus its explicitly pending users (rare): every user still
    /// `pending` in it takes `outcome` (`imported`, `skipped`, `failed` or `unknown`; `None`
    /// leaves them pending, for a chunk whose users were all settled or moved one by one), and
    /// the chunk needs no more work ([`ChunkRow::is_settled`]). Per-user exceptions recorded
    /// before (log lines) are kept. Settling again replaces the outcome of the users still
    /// following the chunk.
    pub fn settle_chunk(&self, chunk: ChunkId, outcome: Option<Outcome>) -> Result<ChunkRow> {
        if let Some(o) = outcome {
            if !matches!(
                o,
                Outcome::Imported | Outcome::Skipped | Outcome::Failed | Outcome::Unknown
            ) {
                return Err(self.invalid(format!(
                    "chunk {chunk}: {o} is not an outcome an import job settles"
                )));
            }
        }
        let now = now_ms();
        self.chunk_step(
            chunk,
            Transition {
                action: "settle it",
                from: &[
                    ChunkStatus::Succeeded,
                    ChunkStatus::Failed,
                    ChunkStatus::Stopped,
                    ChunkStatus::Expired,
                    ChunkStatus::Abandoned,
                ],
                in_flight: &[None],
            },
            |tx, _| {
                if let Some(o) = outcome {
                    // Users a writer set `pending` itself do not follow the chunk's outcome; the
                    // partial index users_explicit_pending finds them.
                    tx.execute(
                        "UPDATE users SET outcome = ?2, updated_at = ?3 WHERE chunk_id = ?1 \
                         AND outcome = 'pending' AND follows_chunk = 0",
                        params![chunk, o, now],
                    )
                    .ctx(&self.path)?;
                }
                Ok(())
            },
            "settled_outcome = ?2, settled_at = ?3",
            &[&outcome, &now],
        )
    }
}
