//! Runs: what a migration was started with, and whether a new invocation may resume it.

use std::time::SystemTime;

use rusqlite::{params, OptionalExtension, Row};
use sha2::{Digest, Sha256};

use crate::bytes::hex;

use super::{
    from_ms, now_ms, to_i64, Checkpoint, CheckpointError, ChunkId, Result, RunId, SqlContext,
};

/// The modes a run can have (the CLI's `--mode` values).
pub const MODES: [&str; 3] = ["import-job", "admin-create", "auto"];

/// What a run is started with. Everything here except `input_location` must match for a resume.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RunSpec {
    /// Path or URL of the input, as the user gave it (informational: a moved file still resumes).
    pub input_location: String,
    /// Input format (`csv`, `json`, `auth0`, …).
    pub input_format: String,
    /// Input size in bytes.
    pub input_size: u64,
    /// Content fingerprint, e.g. from [`fingerprint_file`](crate::source::fingerprint::fingerprint_file).
    pub input_fingerprint: String,
    pub pool_id: String,
    /// One of [`MODES`].
    pub mode: String,
    /// JSON object of the options that affect results (mapping, policies, …). Compared as JSON
    /// values, so key order does not matter.
    pub options: String,
}

/// A recorded run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Run {
    pub id: RunId,
    /// Short random token (8 hex digits) that goes into job names.
    pub token: String,
    pub spec: RunSpec,
    /// `true` when [`Checkpoint::begin_run`] resumed this run rather than creating it.
    pub resumed: bool,
    /// `false` once superseded by a `--restart`.
    pub current: bool,
    #[serde(skip)]
    pub created_at: SystemTime,
}

impl Run {
    /// The import job name for one of this run's chunks; see [`job_name`].
    pub fn job_name(&self, chunk: ChunkId) -> String {
        job_name(&self.token, self.id, chunk)
    }
}

/// The Cognito import job name for a chunk: `cognito-migrate-<token>-r<run>-c<chunk>`.
///
/// Deterministic, so that after a crash between CreateUserImportJob and recording its job id the job
/// can be found again by name; the run token makes it unique across runs and state files. Fits
/// Cognito's JobName (1–128 characters of `[\w\s+=,.@-]`).
pub fn job_name(run_token: &str, run: RunId, chunk: ChunkId) -> String {
    let token: String = run_token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(16)
        .collect();
    format!("cognito-migrate-{token}-r{run}-c{chunk}")
}

const RUN_COLUMNS: &str =
    "id, token, input_location, input_format, input_size, input_fingerprint, \
                           pool_id, mode, options, status, created_at";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: row.get(0)?,
        token: row.get(1)?,
        spec: RunSpec {
            input_location: row.get(2)?,
            input_format: row.get(3)?,
            input_size: row.get::<_, i64>(4)? as u64,
            input_fingerprint: row.get(5)?,
            pool_id: row.get(6)?,
            mode: row.get(7)?,
            options: row.get(8)?,
        },
        resumed: false,
        current: row.get::<_, String>(9)? == "current",
        created_at: from_ms(row.get(10)?),
    })
}

fn new_token(spec: &RunSpec, attempt: u32) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(attempt.to_le_bytes());
    h.update(spec.input_fingerprint.as_bytes());
    h.update(spec.pool_id.as_bytes());
    hex(&h.finalize()[..4])
}

impl Checkpoint {
    /// Start a run, or resume the current one.
    ///
    /// - no current run: a new one is created;
    /// - the current run has the same pool, mode, input (size and fingerprint) and options: it is
    ///   resumed (`resumed: true`);
    /// - otherwise [`CheckpointError::Mismatch`] names the first difference, unless `restart`;
    /// - with `restart`, any current run is marked superseded (its rows stay, for audit) and a new
    ///   run begins, even if the spec matches;
    /// - either way, the current run's chunks still writing (a crash mid-write) are discarded
    ///   first ([`Checkpoint::discard_writing_chunks`]).
    pub fn begin_run(&self, spec: &RunSpec, restart: bool) -> Result<Run> {
        if !MODES.contains(&spec.mode.as_str()) {
            return Err(self.invalid(format!(
                "unknown mode {:?} (expected one of {})",
                spec.mode,
                MODES.join(", ")
            )));
        }
        let given_options: serde_json::Value = serde_json::from_str(&spec.options)
            .map_err(|e| self.invalid(format!("run options are not valid JSON: {e}")))?;
        let size = to_i64(spec.input_size, &self.path, "input size")?;
        self.write_tx(true, |tx| {
            let current = tx
                .query_row(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE status = 'current'"),
                    [],
                    run_from_row,
                )
                .optional()
                .ctx(&self.path)?;
            if let Some(run) = &current {
                // A chunk left writing by a crash is not work: its records are read again (a
                // superseded run keeps no half-recorded chunk either).
                super::chunks::discard_writing_chunks(tx, run.id, &self.path)?;
            }
            if let Some(mut run) = current {
                if !restart {
                    self.check_same(&run.spec, spec, &given_options)?;
                    run.resumed = true;
                    return Ok(run);
                }
            }
            let now = now_ms();
            let mut token = new_token(spec, 0);
            let mut attempt = 0;
            while tx
                .query_row("SELECT 1 FROM runs WHERE token = ?1", [&token], |_| Ok(()))
                .optional()
                .ctx(&self.path)?
                .is_some()
            {
                attempt += 1;
                token = new_token(spec, attempt);
            }
            // Supersede first: the partial unique index allows one current run.
            let old: Option<RunId> = tx
                .query_row("SELECT id FROM runs WHERE status = 'current'", [], |r| {
                    r.get(0)
                })
                .optional()
                .ctx(&self.path)?;
            if let Some(old) = old {
                tx.execute(
                    "UPDATE runs SET status = 'superseded', updated_at = ?2 WHERE id = ?1",
                    params![old, now],
                )
                .ctx(&self.path)?;
            }
            tx.execute(
                "INSERT INTO runs (token, input_location, input_format, input_size, \
                 input_fingerprint, pool_id, mode, options, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'current', ?9, ?9)",
                params![
                    token,
                    spec.input_location,
                    spec.input_format,
                    size,
                    spec.input_fingerprint,
                    spec.pool_id,
                    spec.mode,
                    spec.options,
                    now
                ],
            )
            .ctx(&self.path)?;
            let id = RunId(tx.last_insert_rowid());
            if let Some(old) = old {
                tx.execute(
                    "UPDATE runs SET superseded_by = ?2 WHERE id = ?1",
                    params![old, id],
                )
                .ctx(&self.path)?;
            }
            Ok(Run {
                id,
                token,
                spec: spec.clone(),
                resumed: false,
                current: true,
                created_at: from_ms(now),
            })
        })
    }

    fn check_same(
        &self,
        recorded: &RunSpec,
        given: &RunSpec,
        given_options: &serde_json::Value,
    ) -> Result<()> {
        let mismatch = |what, recorded: &dyn ToString, given: &dyn ToString| {
            Err(CheckpointError::Mismatch {
                path: self.path.clone(),
                what,
                recorded: recorded.to_string(),
                given: given.to_string(),
            })
        };
        if recorded.pool_id != given.pool_id {
            return mismatch("user pool", &recorded.pool_id, &given.pool_id);
        }
        if recorded.mode != given.mode {
            return mismatch("mode", &recorded.mode, &given.mode);
        }
        if recorded.input_size != given.input_size {
            return mismatch(
                "input size",
                &format!("{} bytes", recorded.input_size),
                &format!("{} bytes", given.input_size),
            );
        }
        if recorded.input_fingerprint != given.input_fingerprint {
            return mismatch(
                "input content",
                &format!(
                    "{} ({})",
                    recorded.input_fingerprint, recorded.input_location
                ),
                &format!("{} ({})", given.input_fingerprint, given.input_location),
            );
        }
        if recorded.input_format != given.input_format {
            return mismatch("input format", &recorded.input_format, &given.input_format);
        }
        let recorded_options: serde_json::Value =
            serde_json::from_str(&recorded.options).unwrap_or(serde_json::Value::Null);
        if &recorded_options != given_options {
            return mismatch("options", &recorded.options, &given.options);
        }
        Ok(())
    }

    /// Sets aside a run whose first reading pass broke off (the input could not be read to its
    /// end): it is marked superseded without a successor, its chunks still writing are
    /// discarded, and its rows stay for audit. Only for a run that has written nothing to the
    /// pool (its input was never read through, and writes start only after that), so that the
    /// same state file takes the fixed input as a new run instead of refusing it as another
    /// input. Does nothing to a run that is no longer current.
    pub fn abandon_run(&self, run: RunId) -> Result<()> {
        self.write_tx(true, |tx| {
            super::chunks::discard_writing_chunks(tx, run, &self.path)?;
            tx.execute(
                "UPDATE runs SET status = 'superseded', updated_at = ?2 \
                 WHERE id = ?1 AND status = 'current'",
                params![run, now_ms()],
            )
            .ctx(&self.path)?;
            Ok(())
        })
    }

    /// The current run, if any.
    pub fn current_run(&self) -> Result<Option<Run>> {
        self.conn()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE status = 'current'"),
                [],
                run_from_row,
            )
            .optional()
            .ctx(&self.path)
    }

    /// A run by id, current or superseded.
    pub fn run(&self, id: RunId) -> Result<Run> {
        self.conn()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                run_from_row,
            )
            .optional()
            .ctx(&self.path)?
            .ok_or_else(|| CheckpointError::UnknownRun {
                path: self.path.clone(),
                run: id,
            })
    }

    /// All runs, oldest first (superseded ones included).
    pub fn runs(&self) -> Result<Vec<Run>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"))
            .ctx(&self.path)?;
        let rows = stmt
            .query_map([], run_from_row)
            .ctx(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(&self.path)?;
        Ok(rows)
    }
}
