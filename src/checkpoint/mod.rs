//! The checkpoint store: one SQLite file (`--state`) that makes a migration resumable after any
//! crash with an exactly-once effect on the user pool.
//!
//! # Why it exists
//!
//! A migration is a long series of side effects on Cognito (AdminCreateUser calls, import jobs with
//! their uploads and starts, follow-up calls for groups and disabled users). The process can die at
//! any point (SIGKILL, OOM, a closed laptop, a throttling storm that ends in a panic). When it is run
//! again with the same input it must neither skip a user nor do anything twice. That needs a record,
//! written around every side effect, of what was about to happen and what did happen.
//!
//! # What is recorded, before and after each side effect
//!
//! - **Run** ([`Checkpoint::begin_run`]): the input (location, format, size, a content
//!   fingerprint, see [`fingerprint_file`]), the pool, the mode and the options that affect results.
//!   A second invocation with the same input, pool, mode and options resumes that run; anything
//!   else is refused with [`CheckpointError::Mismatch`] unless `--restart` was given, which
//!   supersedes the old run (its rows stay for audit; every query is by run id).
//! - **AdminCreateUser**: *before* the calls of a batch, [`Checkpoint::begin_attempts`] records the
//!   users as `pending` and increments their `attempts` (one transaction, fsynced). *After* each
//!   call, the outcome (`created`, `updated`, `skipped`, `failed`, …) goes through a [`Writer`],
//!   which commits them in batches. After a crash a user is in one of three states: no row (never
//!   attempted: create it), a final outcome (done: skip it), or `pending` with `attempts > 0` and no
//!   chunk ([`Checkpoint::in_doubt`]): the call may or may not have reached Cognito, so the writer
//!   must look the user up (AdminGetUser, or treat `UsernameExistsException` as its own earlier
//!   success) before creating it again.
//! - **Import jobs**, per chunk file ([`ChunkRow`]): [`Checkpoint::add_chunk`] records the chunk and
//!   all its users (`pending`, with chunk id and 1-based data line) in one transaction once the file
//!   is written. Every remote step then has a *before* marker (the chunk's `in_flight` step:
//!   [`Checkpoint::chunk_mark_creating`], [`Checkpoint::chunk_mark_uploading`],
//!   [`Checkpoint::chunk_starting`]) and an *after* record ([`Checkpoint::chunk_created`],
//!   [`Checkpoint::chunk_uploaded`], [`Checkpoint::chunk_started`],
//!   [`Checkpoint::chunk_finished`]). [`ChunkRow::resume`] turns that into the exact action a
//!   resumed writer must take, e.g. a `creating` marker without a job id means
//!   CreateUserImportJob may have succeeded: list the jobs and adopt the one named
//!   [`ChunkRow::job_name`] (names are deterministic and unique per run, see [`job_name`]) before
//!   creating another. Per-user results come from the job's CloudWatch log
//!   ([`Checkpoint::set_outcomes_by_chunk_lines`], written on those users' rows) and, for the rest
//!   of the chunk's users, from [`Checkpoint::settle_chunk`]: one outcome (`imported`, or from the
//!   counts, e.g. `unknown`) recorded once on the chunk row, from which readers derive each pending
//!   user's outcome (schema V2, see `schema.rs`: chunk-level events cost O(1), not a rewrite of
//!   the chunk's ~300k user rows).
//! - **Rejections** and users left to the migration **trigger** are recorded like any outcome.
//!
//! # How resume uses it
//!
//! The source is read again from the start; [`Checkpoint::skip_set`] (a compact bitset of record
//! indexes, ~1 bit per record: 125 KB per million) tells the reader which records are settled:
//! final outcomes and users already in a chunk file (the chunk carries them on). The remaining
//! records are routed again; those [`Checkpoint::in_doubt`] are verified before being created. The
//! chunk writer walks [`Checkpoint::chunks`] and follows [`ChunkRow::resume`] for each.
//!
//! # Durability
//!
//! The file is in WAL mode with `synchronous=NORMAL` for outcome batches: a committed transaction is
//! in the WAL (in the OS page cache) when `commit` returns, so it **survives a crash or SIGKILL of
//! the process**; only a power loss or kernel crash may lose the last commits (the file stays
//! consistent). *Before* markers (attempts, chunk steps) are committed with `synchronous=FULL`
//! (the WAL is fsynced, which also makes all earlier commits durable) because losing one could let a
//! side effect happen without a trace; they are few (one per batch or chunk step), so this costs
//! almost nothing. Losing an *after* record only means verifying again. [`Durability::Full`] makes
//! every commit fsync. Do not put the state file on a network file system (WAL needs shared memory);
//! opening fails if WAL cannot be enabled.
//!
//! The file is created with mode 0600 (SQLite gives its `-wal` and `-shm` files the same mode);
//! an existing file is chmodded to 0600. It holds usernames and reason messages, never passwords,
//! hashes, or presigned URLs: there are no columns for them.
//!
//! # Concurrency
//!
//! [`Checkpoint`] is `Send + Sync` (one connection behind a mutex), so writers on several tasks can
//! share it through an `Arc`. Calls block on SQLite; batch writes take milliseconds, so calling them
//! from async code is acceptable, but long queries belong in `spawn_blocking`. Other processes (e.g.
//! `status`) may read concurrently ([`Checkpoint::open_read_only`] never writes); `busy_timeout`
//! covers short write contention. Two writers on one state file are kept apart by a lease held
//! beside it for a writer's whole life (see `crate::lease`), not by anything in this schema.

mod canary;
mod chunk_state;
mod chunks;
mod recorder;
mod run;
mod schema;
mod sync_state;
mod users;
mod visibility;
mod writer;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub use crate::source::fingerprint::{fingerprint_file, fingerprint_s3};
pub use canary::CanaryVerdict;
pub use chunk_state::{
    ChunkResume, ChunkRow, ChunkSpec, ChunkStatus, JobCounts, LineOutcome, Step,
};
pub use recorder::{ChunkUser, Recorder, RecorderError};
pub use run::{job_name, Run, RunSpec, MODES};
pub use schema::SCHEMA_VERSION;
pub use sync_state::{KeyWrite, NewSyncOp, SyncCounts, SyncKeyRow, SyncOpRow, SyncRunRow};
pub use users::{
    decode_links, encode_links, Counts, Outcome, RecordSet, StoredUser, UserIter, UserRow, Verdict,
};
pub use visibility::{
    field_of, RejectedAt, RejectionGroup, SecondStats, SyncRun, FIRST_PLACES, SYNC_COUNTS,
};
pub use writer::Writer;

/// Errors of the checkpoint store. Every message names the state file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    // The cause is printed by whoever prints the chain (`{:#}`), not repeated here.
    #[error("state file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state file {path}: SQLite")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "state file {path}: schema version {found} is newer than this cognito-migrate supports \
         ({supported}); use a newer cognito-migrate"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("state file {path}: cannot enable WAL mode (journal_mode is {mode}); is it on a network file system?")]
    NoWal { path: PathBuf, mode: String },
    #[error(
        "state file {path}: the {what} differs from the recorded run (recorded: {recorded}; given: \
         {given}); pass --restart to start a new run (the old one is kept for audit) or use a new \
         --state file"
    )]
    Mismatch {
        path: PathBuf,
        what: &'static str,
        recorded: String,
        given: String,
    },
    #[error("state file {path}: no run {run}")]
    UnknownRun { path: PathBuf, run: RunId },
    #[error("state file {path}: no chunk {chunk}")]
    UnknownChunk { path: PathBuf, chunk: ChunkId },
    #[error("state file {path}: chunk {chunk}: cannot {action}: it is {state}")]
    InvalidTransition {
        path: PathBuf,
        chunk: ChunkId,
        action: &'static str,
        state: String,
    },
    #[error(
        "state file {path}: run {run}: record {record} is already {outcome}; refusing to attempt it again"
    )]
    AlreadySettled {
        path: PathBuf,
        run: RunId,
        record: u64,
        outcome: Outcome,
    },
    #[error("state file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// The file is not a state file of this tool (empty, text, another program's database, a
    /// directory); it was left as it was.
    #[error("{path} is not a cognito-migrate state file: {why}")]
    NotAState { path: PathBuf, why: String },
    /// A read-only open found a state of an older schema: only a writer upgrades it.
    #[error(
        "state file {path}: it was written by an older cognito-migrate (schema version {found}; \
         this one reads {supported}); run the same `run` command to upgrade it"
    )]
    NeedsUpgrade {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
}

impl CheckpointError {
    /// The file itself cannot serve as this run's state (not a state, corrupt, unreadable, of
    /// another version, on a file system without WAL, read-only): running the same command again
    /// cannot help, unlike a failure in the middle of a run.
    pub fn is_unusable_file(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            CheckpointError::NotAState { .. }
            | CheckpointError::NeedsUpgrade { .. }
            | CheckpointError::SchemaTooNew { .. }
            | CheckpointError::NoWal { .. } => true,
            CheckpointError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::PermissionDenied
                    | io::ErrorKind::IsADirectory
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::ReadOnlyFilesystem
                    | io::ErrorKind::NotFound
            ),
            CheckpointError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(
                    C::NotADatabase
                        | C::DatabaseCorrupt
                        | C::CannotOpen
                        | C::PermissionDenied
                        | C::ReadOnly
                        | C::AuthorizationForStatementDenied
                )
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

/// Attach the state file's path to a SQLite error.
pub(crate) trait SqlContext<T> {
    fn ctx(self, path: &Path) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, path: &Path) -> Result<T> {
        self.map_err(|source| CheckpointError::Sqlite {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// A run's id in the state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

/// A chunk's id; unique across all runs of a state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ChunkId(pub i64);

macro_rules! sql_id {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.0))
            }
        }
        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(value).map($t)
            }
        }
    };
}
sql_id!(RunId);
sql_id!(ChunkId);

/// How hard commits are pushed to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=NORMAL` for outcomes, `FULL` for before-markers (see the module docs).
    #[default]
    Normal,
    /// `synchronous=FULL` for every commit: survives power loss, at one fsync per batch.
    Full,
}

/// Options for [`Checkpoint::open_with`].
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    pub durability: Durability,
    /// How long a write waits for another connection's lock before failing with `SQLITE_BUSY`.
    pub busy_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The checkpoint store: an open state file.
pub struct Checkpoint {
    path: PathBuf,
    conn: Mutex<Connection>,
    durability: Durability,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl Checkpoint {
    /// Open (creating if needed) the state file at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        Self::open_with(path, OpenOptions::default())
    }

    /// Open an existing state file (for `status`, `report`, `retry`): fails with a `NotFound`
    /// [`CheckpointError::Io`] instead of creating an empty one.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        if let Err(source) = fs::metadata(path) {
            return Err(CheckpointError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        Self::open(path)
    }

    /// Open an existing state file for reading only (`status`, `report`): nothing is created,
    /// migrated, chmodded or written, and a file that is not a state is
    /// [`CheckpointError::NotAState`], untouched. A state of an older schema is
    /// [`CheckpointError::NeedsUpgrade`]: only a writer (`run`) upgrades it.
    ///
    /// A WAL database needs its `-shm` file to be read; SQLite creates it next to the state when it
    /// is missing. When it cannot (the directory is not writable), the file is opened as
    /// immutable (`immutable=1`): read as it is on disk, without locks. No writer can be active
    /// then (a writer needs that directory writable), unless another user with write access runs
    /// one; then counts may be those of the last checkpoint of the WAL.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref().to_path_buf();
        match check_header(&path)? {
            Header::Empty => {
                return Err(CheckpointError::NotAState {
                    path,
                    why: "the file is empty".into(),
                })
            }
            Header::Missing => {
                return Err(CheckpointError::Io {
                    path,
                    source: io::ErrorKind::NotFound.into(),
                })
            }
            Header::Sqlite => {}
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open =
            |target: &Path, flags: OpenFlags| -> Result<(Connection, rusqlite::Result<Contents>)> {
                let conn = Connection::open_with_flags(target, flags).ctx(&path)?;
                conn.busy_timeout(OpenOptions::default().busy_timeout)
                    .ctx(&path)?;
                let contents = inspect(&conn);
                Ok((conn, contents))
            };
        let (mut conn, mut contents) = open(&path, flags)?;
        let cannot_open = |e: &rusqlite::Error| {
            matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
            )
        };
        if contents.as_ref().is_err_and(cannot_open) {
            tracing::warn!(
                "{}: cannot create its shared-memory file (is the directory read-only?); \
                 reading the file as it is on disk",
                path.display()
            );
            drop(conn);
            let uri = immutable_uri(&path);
            (conn, contents) = open(Path::new(&uri), flags | OpenFlags::SQLITE_OPEN_URI)?;
        }
        let contents = contents
            .ctx(&path)
            .map_err(|e| not_a_state_if_not_a_database(e, &path))?;
        contents.check_is_state(&path)?;
        if contents.version == 0 {
            return Err(CheckpointError::NotAState {
                path,
                why: "it is an empty SQLite database".into(),
            });
        }
        if contents.version < SCHEMA_VERSION {
            return Err(CheckpointError::NeedsUpgrade {
                path,
                found: contents.version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Checkpoint {
            path,
            conn: Mutex::new(conn),
            durability: Durability::Normal,
        })
    }

    /// Open (creating if needed) the state file: mode 0600, WAL, busy timeout, migrations applied.
    /// A file that exists but is not a state (text, another program's database) is
    /// [`CheckpointError::NotAState`], untouched; an existing empty file becomes a new state.
    pub fn open_with(path: impl AsRef<Path>, options: OpenOptions) -> Result<Checkpoint> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| CheckpointError::Io {
            path: path.clone(),
            source,
        };
        check_header(&path)?;
        create_if_missing(&path).map_err(io_err)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ctx(&path)?;
        conn.busy_timeout(options.busy_timeout).ctx(&path)?;
        // Before anything writes (the journal mode is written into the file).
        inspect(&conn)
            .ctx(&path)
            .map_err(|e| not_a_state_if_not_a_database(e, &path))?
            .check_is_state(&path)?;
        crate::fs::make_private(&path).map_err(io_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .ctx(&path)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(CheckpointError::NoWal { path, mode });
        }
        let sync = match options.durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA cache_size=-{CACHE_KIB}; PRAGMA temp_store=MEMORY;"
        ))
        .ctx(&path)?;
        let mut conn = conn;
        schema::migrate(&mut conn, &path)?;
        // The WAL and shared-memory files exist now (created with the database's mode by SQLite);
        // tighten them too in case they were left over from a more permissive time.
        for suffix in ["-wal", "-shm"] {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            crate::fs::make_private(Path::new(&side)).map_err(io_err)?;
        }
        Ok(Checkpoint {
            path,
            conn: Mutex::new(conn),
            durability: options.durability,
        })
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open file (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        self.conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .ctx(&self.path)
    }

    /// The journal mode in force (always `wal` for an open checkpoint).
    pub fn journal_mode(&self) -> Result<String> {
        self.conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ctx(&self.path)
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a transaction open (Transaction rolls back
        // on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` in one IMMEDIATE transaction (so that it never fails half-way for a lock upgrade).
    /// With `durable`, the commit is fsynced (`synchronous=FULL`) whatever the durability setting.
    pub(crate) fn write_tx<T>(
        &self,
        durable: bool,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn();
        let raise = durable && self.durability == Durability::Normal;
        if raise {
            conn.execute_batch("PRAGMA synchronous=FULL")
                .ctx(&self.path)?;
        }
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .ctx(&self.path)?;
            let value = f(&tx)?;
            tx.commit().ctx(&self.path)?;
            Ok(value)
        })();
        if raise {
            let restored = conn
                .execute_batch("PRAGMA synchronous=NORMAL")
                .ctx(&self.path);
            if result.is_ok() {
                restored?;
            }
        }
        result
    }

    pub(crate) fn invalid(&self, message: impl Into<String>) -> CheckpointError {
        CheckpointError::Invalid {
            path: self.path.clone(),
            message: message.into(),
        }
    }
}

/// What the first bytes of a would-be state file say.
enum Header {
    /// No file (a writer creates it).
    Missing,
    /// An empty file (a writer makes it a new state).
    Empty,
    /// The SQLite header.
    Sqlite,
}

/// Reads the first 16 bytes of `path` (without changing it): anything but nothing, an empty file
/// or SQLite's header is [`CheckpointError::NotAState`].
fn check_header(path: &Path) -> Result<Header> {
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let not_a_state = |why: &str| CheckpointError::NotAState {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let io_err = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Header::Missing),
        Err(e) => return Err(io_err(e)),
    };
    if meta.is_dir() {
        return Err(not_a_state("it is a directory"));
    }
    if meta.len() == 0 {
        return Ok(Header::Empty);
    }
    let mut head = Vec::with_capacity(16);
    io::Read::read_to_end(
        &mut io::Read::take(fs::File::open(path).map_err(io_err)?, 16),
        &mut head,
    )
    .map_err(io_err)?;
    if head != MAGIC {
        return Err(not_a_state("it is not an SQLite database"));
    }
    Ok(Header::Sqlite)
}

/// What an open SQLite file holds, as far as telling a state from other files goes.
struct Contents {
    version: i64,
    tables: i64,
    has_runs: bool,
}

fn inspect(conn: &Connection) -> rusqlite::Result<Contents> {
    let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let (tables, has_runs) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(name = 'runs'), 0) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? > 0)),
    )?;
    Ok(Contents {
        version,
        tables,
        has_runs,
    })
}

impl Contents {
    /// A state, or an empty database (a writer makes it one): not another program's database.
    fn check_is_state(&self, path: &Path) -> Result<()> {
        let empty = self.version == 0 && self.tables == 0;
        if empty || (self.version > 0 && self.has_runs) {
            return Ok(());
        }
        Err(CheckpointError::NotAState {
            path: path.to_path_buf(),
            why: "it is an SQLite database of another program".into(),
        })
    }
}

/// SQLite's "not a database" (e.g. a file that starts like one and is garbage after) is a file
/// that is not a state.
fn not_a_state_if_not_a_database(e: CheckpointError, path: &Path) -> CheckpointError {
    match &e {
        CheckpointError::Sqlite { source, .. }
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) =>
        {
            CheckpointError::NotAState {
                path: path.to_path_buf(),
                why: "SQLite says it is not a database (corrupt?)".into(),
            }
        }
        _ => e,
    }
}

/// `file:<path>?immutable=1`, with the characters URIs reserve percent-encoded.
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => uri.push_str(&format!("%{:02X}", c as u32)),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Create `path` with mode 0600 if it does not exist (an existing file is chmodded once it is
/// known to be a state: one that is not is left untouched).
fn create_if_missing(path: &Path) -> io::Result<()> {
    crate::fs::private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
}

/// Milliseconds since the Unix epoch, as stored in every `*_at` column.
/// SQLite's page cache per connection, in KiB: recording millions of users updates B-trees all
/// over the file, which a large cache keeps in memory.
const CACHE_KIB: i64 = 256 * 1024;

/// The page cache while a whole table is read once ([`Checkpoint::scanning`]): each page is
/// read once, so a large cache would only hold pages nobody reads again (a million sync keys
/// filled it with ~200 MB).
const SCAN_CACHE_KIB: i64 = 8 * 1024;

impl Checkpoint {
    /// Runs `f` on the connection with a small page cache ([`SCAN_CACHE_KIB`]): for reads of a
    /// whole table, whose pages would otherwise stay cached for nothing. The cache is made
    /// large again afterwards.
    pub(crate) fn scanning<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        let conn = self.conn();
        let before: i64 = conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .ctx(&self.path)?;
        conn.execute_batch(&format!("PRAGMA cache_size=-{SCAN_CACHE_KIB}"))
            .ctx(&self.path)?;
        let result = f(&conn);
        conn.execute_batch(&format!("PRAGMA cache_size={before}"))
            .ctx(&self.path)?;
        result
    }

    /// Sets the page cache of this state's connection to `kib` KiB (default 256 MiB, for
    /// recording millions of users). `sync` writes a few rows per changed user and keeps its
    /// memory low with a smaller one.
    pub fn set_cache_kib(&self, kib: i64) -> Result<()> {
        self.conn()
            .execute_batch(&format!("PRAGMA cache_size=-{}", kib.max(64)))
            .ctx(&self.path)
    }
}

pub(crate) fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

pub(crate) fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// u64 → SQLite INTEGER (rusqlite has no infallible u64 conversion).
pub(crate) fn to_i64(value: u64, path: &Path, what: &str) -> Result<i64> {
    i64::try_from(value).map_err(|_| CheckpointError::Invalid {
        path: path.to_path_buf(),
        message: format!("{what} {value} is too large"),
    })
}
