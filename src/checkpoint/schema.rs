//! Schema migrations: `MIGRATIONS[i]` takes the file from `user_version` i to i + 1. Each is
//! applied in its own IMMEDIATE transaction together with the `user_version` bump, so a crash leaves
//! the file at a whole version and two processes opening it at once apply each migration once.
//! Never edit a released migration; append a new one.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{CheckpointError, Result, SqlContext};

/// Version 1: runs, chunks, users.
const V1: &str = r#"
CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    -- short random token, part of every import job name, so that names from another state file
    -- (or a superseded run) are never adopted by mistake
    token             TEXT    NOT NULL UNIQUE,
    input_location    TEXT    NOT NULL,
    input_format      TEXT    NOT NULL,
    input_size        INTEGER NOT NULL,
    input_fingerprint TEXT    NOT NULL,
    pool_id           TEXT    NOT NULL,
    mode              TEXT    NOT NULL CHECK (mode IN ('import-job', 'admin-create', 'auto')),
    options           TEXT    NOT NULL,      -- JSON: the options that affect results
    status            TEXT    NOT NULL DEFAULT 'current'
                              CHECK (status IN ('current', 'superseded')),
    superseded_by     INTEGER REFERENCES runs(id),
    created_at        INTEGER NOT NULL,      -- Unix milliseconds, like every *_at column
    updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX runs_one_current ON runs(status) WHERE status = 'current';

CREATE TABLE chunks (
    id             INTEGER PRIMARY KEY,      -- unique across runs
    run_id         INTEGER NOT NULL REFERENCES runs(id),
    seq            INTEGER NOT NULL,         -- 1-based number of the chunk within its run
    route          TEXT    NOT NULL,         -- import:BCRYPT | ... | import:none
    file_path      TEXT    NOT NULL,
    row_count      INTEGER NOT NULL,
    byte_size      INTEGER NOT NULL,
    -- last step completed
    status         TEXT    NOT NULL CHECK (status IN ('written', 'created', 'uploaded', 'started',
                              'succeeded', 'failed', 'stopped', 'expired', 'abandoned')),
    -- step begun but not known to be done: its side effect may have happened unrecorded
    in_flight      TEXT    CHECK (in_flight IN ('creating', 'uploading', 'starting')),
    job_name       TEXT    NOT NULL,         -- decided before CreateUserImportJob, for adoption
    job_id         TEXT,
    url_expires_at INTEGER,                  -- the presigned URL itself is never stored
    imported       INTEGER,
    skipped        INTEGER,
    failed         INTEGER,
    written_at     INTEGER NOT NULL,
    created_at     INTEGER,                  -- job created
    started_at     INTEGER,
    finished_at    INTEGER,
    updated_at     INTEGER NOT NULL,
    message        TEXT,
    UNIQUE (run_id, seq),
    -- past 'written', a job exists, unless the chunk ended without one
    CHECK (job_id IS NOT NULL
           OR status IN ('written', 'succeeded', 'failed', 'stopped', 'expired', 'abandoned'))
);

CREATE TABLE users (
    run_id         INTEGER NOT NULL REFERENCES runs(id),
    record         INTEGER NOT NULL,         -- 1-based record index in the input
    line           INTEGER NOT NULL,
    byte_offset    INTEGER NOT NULL,
    username       TEXT    NOT NULL,
    route          TEXT    NOT NULL CHECK (route IN ('admin-create', 'trigger', 'rejected')
                                           OR route LIKE 'import:%'),
    outcome        TEXT    NOT NULL CHECK (outcome IN ('pending', 'imported', 'created', 'updated',
                              'skipped', 'rejected', 'failed', 'trigger', 'unknown')),
    reason         TEXT,                     -- machine-readable code
    message        TEXT,                     -- human-readable; never a password or hash
    chunk_id       INTEGER REFERENCES chunks(id),
    chunk_line     INTEGER,                  -- 1-based data line in the chunk file
    attempts       INTEGER NOT NULL DEFAULT 0,
    needs_disable  INTEGER NOT NULL DEFAULT 0,
    groups         TEXT    NOT NULL DEFAULT '',   -- comma-joined
    followups_done INTEGER NOT NULL DEFAULT 0,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (run_id, record)
) WITHOUT ROWID;
CREATE UNIQUE INDEX users_chunk_line ON users(chunk_id, chunk_line) WHERE chunk_id IS NOT NULL;
"#;

/// All migrations, in order.
const MIGRATIONS: &[&str] = &[V1];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx(path)?;
        // Read inside the write transaction: another process may have just migrated.
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .ctx(path)?;
        if version > SCHEMA_VERSION {
            return Err(CheckpointError::SchemaTooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[version as usize]).ctx(path)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))
            .ctx(path)?;
        tx.commit().ctx(path)?;
    }
}
