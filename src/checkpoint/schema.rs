//! Schema migrations: `MIGRATIONS[i]` takes the file from `user_version` i to i + 1. Each is
//! applied in its own IMMEDIATE transaction together with the `user_version` bump, so a crash leaves
//! the file at a whole version and two processes opening it at once apply each migration once.
//! Never edit a released migration; append a new one.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{CheckpointError, Result, SqlContext};

/// Version 1: runs, chunks, users.
pub(super) const V1: &str = r#"
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

/// Version 2: chunk-level settling. A chunk's result and its StartUserImportJob attempts are
/// recorded once, on the chunk row, instead of by rewriting every one of its users (a chunk's
/// ~300k users are spread over every page of the `users` table, which is keyed by record, so a
/// per-user `UPDATE` rewrote the whole table):
///
/// - `chunks.attempts`: StartUserImportJob attempts counted for the users in the chunk; a user's
///   attempts are `users.attempts + chunks.attempts` (folded into `users.attempts` when the user
///   moves to another chunk).
/// - `chunks.settled_outcome`: the outcome of the chunk's users still stored `pending` with
///   `users.follows_chunk = 1` (set when the job's result is known: `imported`, `skipped`,
///   `failed` or `unknown`); per-user exceptions (CloudWatch log lines, a failed job's reason)
///   are still written on the users' own rows.
/// - `chunks.settled_at`: the chunk needs no more work (its users are settled or were moved to
///   other chunks). Chunks of a V1 file that ended with no pending user are marked here.
/// - `users.follows_chunk`: 1 for users put in a chunk (the default, so V1 rows follow their
///   chunk too: a V1 chunk that ended unsettled is settled the V2 way on resume); 0 once a writer
///   records the user's outcome itself (an explicit `pending` then stays pending).
/// - `users_explicit_pending`: the (rare) users explicitly `pending` while in a chunk, so that
///   settling a chunk finds them without reading all its users.
/// - `chunks.writing`: 1 while a reading pass is still recording the chunk's users, in batches as
///   they are routed (see `Checkpoint::begin_chunk`): the chunk is not work yet, and is invisible
///   to every reader of chunks (`Checkpoint::chunks`, `Checkpoint::chunk`) and its users to the
///   view below. Set to 0 with the file's row count and size in one UPDATE once the file is
///   complete. A chunk still writing when a run is opened again (a crash mid-write) is discarded:
///   its users and its row are deleted, its file is an orphan, its records are read again.
/// - The view `user_outcomes`: every user with the outcome and attempts derived as above; every
///   reader of outcomes goes through it.
const V2: &str = r#"
ALTER TABLE chunks ADD COLUMN writing INTEGER NOT NULL DEFAULT 0 CHECK (writing IN (0, 1));
ALTER TABLE chunks ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chunks ADD COLUMN settled_outcome TEXT
    CHECK (settled_outcome IN ('imported', 'skipped', 'failed', 'unknown'));
ALTER TABLE chunks ADD COLUMN settled_at INTEGER;
ALTER TABLE users ADD COLUMN follows_chunk INTEGER NOT NULL DEFAULT 1;
CREATE INDEX users_explicit_pending ON users(chunk_id)
    WHERE outcome = 'pending' AND follows_chunk = 0 AND chunk_id IS NOT NULL;
UPDATE chunks SET settled_at = updated_at
    WHERE status IN ('succeeded', 'failed', 'stopped', 'expired', 'abandoned')
      AND NOT EXISTS (SELECT 1 FROM users
                      WHERE users.chunk_id = chunks.id AND users.outcome = 'pending');
CREATE VIEW user_outcomes AS
SELECT u.run_id AS run_id, u.record AS record, u.line AS line, u.byte_offset AS byte_offset,
       u.username AS username, u.route AS route,
       CASE WHEN u.outcome = 'pending' AND u.follows_chunk != 0 AND c.settled_outcome IS NOT NULL
            THEN c.settled_outcome ELSE u.outcome END AS outcome,
       u.reason AS reason, u.message AS message, u.chunk_id AS chunk_id,
       u.chunk_line AS chunk_line, u.attempts + COALESCE(c.attempts, 0) AS attempts,
       u.needs_disable AS needs_disable, u.groups AS groups, u.followups_done AS followups_done,
       CASE WHEN u.outcome = 'pending' AND u.follows_chunk != 0 AND c.settled_outcome IS NOT NULL
            THEN MAX(u.updated_at, c.settled_at) ELSE u.updated_at END AS updated_at,
       u.follows_chunk AS follows_chunk
FROM users AS u LEFT JOIN chunks AS c ON c.id = u.chunk_id
WHERE c.writing IS NULL OR c.writing = 0;
"#;

/// Version 3: verdicts of `preflight`'s hash canary. One row per canary attempt: in `pool_id`, a
/// user whose password was hashed with `algorithm` and written in `notation` was imported by a
/// one-row import job and then signed in (`passed` = 1: Cognito verified the notation) or not
/// (`passed` = 0, `message` says which step failed). `run` writes the notation of the newest
/// passed verdict for the pool and algorithm. Additive: no existing table changes.
const V3: &str = r#"
CREATE TABLE canary_verdicts (
    id         INTEGER PRIMARY KEY,
    pool_id    TEXT    NOT NULL,
    algorithm  TEXT    NOT NULL CHECK (algorithm IN ('BCRYPT', 'SCRYPT', 'ARGON2ID', 'PBKDF2_SHA256')),
    notation   TEXT    NOT NULL,
    passed     INTEGER NOT NULL CHECK (passed IN (0, 1)),
    job_id     TEXT,                     -- the canary's import job, when one was created
    message    TEXT,                     -- why it failed; never a password or hash
    checked_at INTEGER NOT NULL          -- Unix milliseconds
);
CREATE INDEX canary_verdicts_lookup ON canary_verdicts(pool_id, algorithm, passed, checked_at);
"#;

/// Visibility (`report --html`): what the state did not hold to draw a run over time.
///
/// - `chunks.uploaded_at`: when a chunk's file upload was recorded done (Unix ms), so that the
///   import-job timeline shows created / uploaded / running / ended. NULL for chunks uploaded
///   before this version.
/// - `admin_create_seconds`: AdminCreateUser calls and throttled calls per run and wall-clock
///   second (`second` = Unix seconds), added up by the admin-create writer's recorder (a resumed
///   run adds to the same rows), and the users it settled in that second.
const V4_VISIBILITY: &str = r#"
ALTER TABLE chunks ADD COLUMN uploaded_at INTEGER;
CREATE TABLE admin_create_seconds (
    run_id    INTEGER NOT NULL REFERENCES runs(id),
    second    INTEGER NOT NULL,
    calls     INTEGER NOT NULL DEFAULT 0,
    throttles INTEGER NOT NULL DEFAULT 0,
    settled   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, second)
) WITHOUT ROWID;
"#;

/// Version 5 (links): the federated identities to link to each user once it is in the pool, a
/// follow-up like groups and disable (`AdminLinkProviderForUser`). `users.links` holds them as a
/// JSON array of `[provider, provider's user id]` pairs (the pool's identity provider name), or ''
/// when there are none; `followups_done` covers them with the other follow-ups. The view
/// `user_outcomes` is made again with the column. Never a password or hash: a provider's user id
/// is an identifier, like the username.
const V5_LINKS: &str = r#"
ALTER TABLE users ADD COLUMN links TEXT NOT NULL DEFAULT '';
DROP VIEW user_outcomes;
CREATE VIEW user_outcomes AS
SELECT u.run_id AS run_id, u.record AS record, u.line AS line, u.byte_offset AS byte_offset,
       u.username AS username, u.route AS route,
       CASE WHEN u.outcome = 'pending' AND u.follows_chunk != 0 AND c.settled_outcome IS NOT NULL
            THEN c.settled_outcome ELSE u.outcome END AS outcome,
       u.reason AS reason, u.message AS message, u.chunk_id AS chunk_id,
       u.chunk_line AS chunk_line, u.attempts + COALESCE(c.attempts, 0) AS attempts,
       u.needs_disable AS needs_disable, u.groups AS groups, u.followups_done AS followups_done,
       CASE WHEN u.outcome = 'pending' AND u.follows_chunk != 0 AND c.settled_outcome IS NOT NULL
            THEN MAX(u.updated_at, c.settled_at) ELSE u.updated_at END AS updated_at,
       u.follows_chunk AS follows_chunk, u.links AS links
FROM users AS u LEFT JOIN chunks AS c ON c.id = u.chunk_id
WHERE c.writing IS NULL OR c.writing = 0;
"#;

/// Version 6 (the id map): `users.legacy_id`, the user's id in the legacy system as the mapping
/// gave it (the mapped `custom:legacy_id`, else the vendor's id field, e.g. Auth0's `user_id`),
/// recorded when the user is routed, so that `report --id-map` can pair it with the `sub` the pool
/// gives the user even when the pool has no `custom:legacy_id`. NULL for rows of earlier versions
/// and for inputs without one. Written once: later writes of the row keep it
/// (`COALESCE(excluded.legacy_id, users.legacy_id)`). The view `user_outcomes` is unchanged;
/// the id map reads the column from `users` directly. Additive.
const V6_IDMAP: &str = r#"
ALTER TABLE users ADD COLUMN legacy_id TEXT;
"#;

/// Version 7 (`sync`): what the pool was last made to hold per user, and each sync's change set.
///
/// - `sync_keys`: one row per matching key (the mapped username, email or `custom:ATTR`, see
///   `crate::sync::MatchKey`): the Cognito username, its `sub` when known, the digests of the
///   attributes last written (`name=hex16;…`, sorted; never a value), the enabled flag, the
///   managed groups (newline-joined, sorted), `missing` (gone from the source and removed or
///   left), `in_pool` (0: left to the migration trigger, not created yet), and `fp`, one 64-bit
///   digest of attrs + enabled + groups that a sync compares in memory (no query for an
///   unchanged user).
/// - `sync_groups`: every group the source has ever named; only these are managed.
/// - `sync_runs`: one row per sync (also `--plan`), its counts and outcome; `phase` says how far
///   an unfinished one got, so that the same command resumes it.
/// - `sync_ops`: the change set of a sync, recorded before any write: each op `pending` →
///   `started` → `done` / `failed` (or `staged`: a removal held back). An update's values are
///   kept only until it is done.
const V7_SYNC: &str = r#"
CREATE TABLE sync_keys (
    key        TEXT    PRIMARY KEY,
    username   TEXT    NOT NULL,
    sub        TEXT,
    attrs      TEXT    NOT NULL DEFAULT '',
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    groups     TEXT    NOT NULL DEFAULT '',
    missing    INTEGER NOT NULL DEFAULT 0 CHECK (missing IN (0, 1)),
    in_pool    INTEGER NOT NULL DEFAULT 1 CHECK (in_pool IN (0, 1)),
    fp         INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sync_groups (
    name           TEXT    PRIMARY KEY,
    first_named_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sync_runs (
    id              INTEGER PRIMARY KEY,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    plan            INTEGER NOT NULL DEFAULT 0 CHECK (plan IN (0, 1)),
    full            INTEGER NOT NULL DEFAULT 0 CHECK (full IN (0, 1)),
    outcome         TEXT,
    phase           TEXT    NOT NULL DEFAULT 'reading'
                            CHECK (phase IN ('reading', 'recorded', 'creating', 'writing', 'finished')),
    pool_id         TEXT    NOT NULL,
    input_fingerprint TEXT  NOT NULL,
    prev_run        INTEGER,
    records         INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    unchanged       INTEGER NOT NULL DEFAULT 0,
    created         INTEGER NOT NULL DEFAULT 0,
    updated         INTEGER NOT NULL DEFAULT 0,
    disabled        INTEGER NOT NULL DEFAULT 0,
    enabled         INTEGER NOT NULL DEFAULT 0,
    deleted         INTEGER NOT NULL DEFAULT 0,
    group_adds      INTEGER NOT NULL DEFAULT 0,
    group_removes   INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    staged_removals INTEGER NOT NULL DEFAULT 0,
    no_removals_because TEXT
);

CREATE TABLE sync_ops (
    id         INTEGER PRIMARY KEY,
    sync_id    INTEGER NOT NULL REFERENCES sync_runs(id),
    key        TEXT    NOT NULL,
    username   TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('create', 'update', 'delete_attributes', 'disable',
                                   'enable', 'delete', 'group_add', 'group_remove')),
    arg        TEXT,
    record     INTEGER,
    removal    INTEGER NOT NULL DEFAULT 0 CHECK (removal IN (0, 1)),
    status     TEXT    NOT NULL CHECK (status IN ('pending', 'started', 'done', 'failed', 'staged')),
    message    TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX sync_ops_by_sync ON sync_ops(sync_id, status);
"#;

/// All migrations, in order.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4_VISIBILITY, V5_LINKS, V6_IDMAP, V7_SYNC];

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
