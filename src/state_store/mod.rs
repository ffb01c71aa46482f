//! State anywhere: `--state` names a local SQLite file or an S3 object (`s3://bucket/key.db`),
//! held by one writer at a time either way.
//!
//! # Why it exists
//!
//! A scheduled `sync` runs on machines that keep nothing between runs (an ECS Fargate task), so
//! its state must live somewhere durable and shared, and two schedules (an overrun, a manual run
//! beside the schedule) must never write one state at once: both would resume the same work and
//! each would record the other's users as already existing. Locally the flock [`Lease`] of
//! [`crate::lease`] does that; S3 has no locks, but it has conditional writes.
//!
//! # How (an `s3://` state)
//!
//! 1. **Lease**: [`HeldState::acquire`] creates `<key>.lock` with `PutObject` + `If-None-Match: *`,
//!    holding a [`LeaseRecord`] (host, pid, command, a random token, acquired, renewed and
//!    expiry times; default duration 15 min). If the object exists the lease is held: a live one
//!    is refused ([`StateStoreError::Held`], exit 4, naming the holder and the expiry); an
//!    expired one too, unless `break_lock`, which replaces it with `If-Match: <its ETag>`, so
//!    that of two breakers only one wins. A background task renews the lease every third of its
//!    duration (`If-Match` on our own last ETag); if that fails (someone broke it after it
//!    expired, e.g. this process was frozen) the lease is *lost*: [`HeldState::lost`] fires so the
//!    caller can stop, and nothing is uploaded any more.
//! 2. **Download**: the state object is streamed to a private file (0600) in a private temp dir
//!    (0700), and its ETag remembered; no object means a new state. The local [`Checkpoint`]
//!    works on that file exactly as on any local state (a local flock lease is taken on it too, so
//!    the run's API is the same).
//! 3. **Upload**: [`HeldState::persist`] (periodically in the background, every
//!    [`StateOptions::upload_every`], and at [`HeldState::release`]) takes a consistent snapshot
//!    (`snapshot.rs`: `VACUUM INTO` on a separate read connection, never blocking the writers),
//!    skips it when identical to the last upload, and puts it with `If-Match: <ETag of the last
//!    download or upload>` (`If-None-Match: *` for a new state); the answer's ETag is the next
//!    condition. A failed condition means someone else wrote the state:
//!    [`StateStoreError::Conflict`], never an overwrite.
//! 4. **Release**: a last upload, then `DeleteObject <key>.lock` with `If-Match` on our lease's
//!    ETag (S3 supports conditional deletes on general purpose buckets since September 2025; an
//!    object that is not ours any more is left alone), and the temp dir is removed.
//!
//! # Crashes
//!
//! SIGTERM (what ECS sends, 30 s before SIGKILL) cancels the run, which records what it did and
//! returns; the caller then calls [`HeldState::release`], which uploads. After a SIGKILL nothing
//! is uploaded: the lease object stays until it expires (15 min by default); then a run given
//! `break_lock` (`--break-lock`) takes it over (never a run without it, never a live lease) and
//! resumes from the last upload. A schedule can always pass `--break-lock`: it only ever takes
//! over an expired lease. Whatever was done after that upload is done
//! again, which the run's exactly-once machinery makes safe: pass 1 only reads and records; a
//! user created after the upload is either *in doubt* in the uploaded state (attempt recorded: it
//! is looked up with AdminGetUser and recorded `created`) or unknown to it (its AdminCreateUser
//! meets `UsernameExistsException` and it is recorded `skipped`: in the pool once, never twice);
//! follow-ups (groups, disable) are idempotent; an import job redone for a chunk whose users were
//! imported skips them ("The user already exists"). The cost of a SIGKILL is thus at most
//! `upload_every` of repeated calls, never a duplicate user.
//!
//! Files beside the state (import CSVs, the AdminCreateUser spill file, the "input read" marker)
//! live in the private temp dir and go with it: a resumed run reads its input again (its skip set
//! comes from the state), and import chunks whose files are gone and whose jobs never started (or
//! were stopped) are forgotten first, so their users are chunked again
//! (`Checkpoint::forget_chunks_without_files`, called by `migrate::run`). A work dir that outlived the state's last upload would be newer than the
//! state (a marker saying the input was read when the uploaded state does not hold the users), so
//! callers must not give a persistent work dir with a remote state.
//!
//! # Limits
//!
//! One `PutObject` carries at most 5 GB (a state of ~10M users is far below). The lease's expiry
//! is judged with the local clock: machines must keep their clocks in sync (NTP, as EC2 and
//! Fargate do).
//!
//! # A local path
//!
//! Exactly the behaviour of a local `--state` before: the flock [`Lease`] on `<state>.lock`, the
//! file used in place; `persist` and the upload are no-ops.

mod s3;
mod snapshot;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::lease::{Holder, Lease, LeaseError};
use s3::{Cond, S3Target, Written};

pub use s3::{rfc3339, LeaseRecord};

/// The default lease duration (renewed every third of it while the process runs).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15 * 60);
/// The default interval between background uploads of a remote state.
pub const DEFAULT_UPLOAD_EVERY: Duration = Duration::from_secs(60);

/// The content type the state object is uploaded with.
const SQLITE_CONTENT_TYPE: &str = "application/vnd.sqlite3";

/// Where a state lives: what `--state` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateLocation {
    /// A local SQLite file.
    Local(PathBuf),
    /// An S3 object, `s3://bucket/key`.
    S3 { bucket: String, key: String },
}

impl StateLocation {
    /// Reads a `--state` value: `s3://bucket/key` or a local path. Anything that starts like an
    /// S3 location (`s3:`, any case) but is not a valid one is refused rather than taken as a
    /// file name.
    pub fn parse(given: &str) -> Result<StateLocation, StateStoreError> {
        let bad = |why: &str| StateStoreError::BadLocation {
            given: given.to_string(),
            why: why.to_string(),
        };
        if given.is_empty() {
            return Err(bad("it is empty"));
        }
        if given.len() < 3 || !given[..3].eq_ignore_ascii_case("s3:") {
            return Ok(StateLocation::Local(PathBuf::from(given)));
        }
        let Some(rest) = given.strip_prefix("s3://") else {
            return Err(bad("an S3 state is s3://BUCKET/KEY (lower-case `s3://`)"));
        };
        let Some((bucket, key)) = rest.split_once('/') else {
            return Err(bad("an S3 state is s3://BUCKET/KEY: the key is missing"));
        };
        if !valid_bucket(bucket) {
            return Err(bad(
                "the bucket name must be 3-63 characters of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit",
            ));
        }
        if key.is_empty() || key.ends_with('/') {
            return Err(bad(
                "the key must name an object, not be empty or end with `/`",
            ));
        }
        if key.len() > 1019 {
            // 1,024 bytes is S3's limit, and the lease object adds `.lock`.
            return Err(bad("the key is longer than 1,019 bytes"));
        }
        Ok(StateLocation::S3 {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// Whether the state is in S3.
    pub fn is_remote(&self) -> bool {
        matches!(self, StateLocation::S3 { .. })
    }

    /// The lease object's key of an S3 state (`<key>.lock`).
    pub fn lock_key(key: &str) -> String {
        format!("{key}.lock")
    }
}

fn valid_bucket(b: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&b.len())
        && b.chars().all(ok_char)
        && ends_ok(b.chars().next())
        && ends_ok(b.chars().last())
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Local(p) => write!(f, "{}", p.display()),
            StateLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

impl std::str::FromStr for StateLocation {
    type Err = StateStoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StateLocation::parse(s)
    }
}

/// How a state is held.
#[derive(Clone, Debug)]
pub struct StateOptions {
    /// How long a remote lease lasts without renewal (renewed every third of it).
    pub lease_duration: Duration,
    /// Take over a remote lease that has expired (never a live one).
    pub break_lock: bool,
    /// How often a remote state is uploaded in the background while held.
    pub upload_every: Duration,
}

impl Default for StateOptions {
    fn default() -> Self {
        StateOptions {
            lease_duration: DEFAULT_LEASE,
            break_lock: false,
            upload_every: DEFAULT_UPLOAD_EVERY,
        }
    }
}

/// Errors of holding, reading and writing a state.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    /// `--state` is not a usable location (exit 2).
    #[error("--state {given}: {why}")]
    BadLocation { given: String, why: String },
    /// An S3 state needs an S3 client (a caller's mistake).
    #[error("{location}: an S3 state needs AWS clients")]
    NoClient { location: String },
    /// The local state's flock lease (exit 4 when held).
    #[error(transparent)]
    Local(#[from] LeaseError),
    /// Another process holds the remote lease (exit 4).
    #[error("{location} is in use by another run ({}); {}; nothing was done",
        describe(.holder),
        expiry(*.expires_ms, *.expired))]
    Held {
        location: String,
        /// `None` when the lease object could not be read as a lease.
        holder: Option<Holder>,
        expires_ms: Option<i64>,
        expired: bool,
    },
    /// The remote lease was taken by another process while this one ran (it could not be renewed
    /// in time); nothing more is uploaded (exit 4).
    #[error("{location}: this run lost its lease ({why}); its last records were not uploaded")]
    Lost { location: String, why: String },
    /// The state object changed since this process read or wrote it: someone else wrote it. It
    /// was not overwritten (exit 4).
    #[error("{location} was written by another process since this run read it (its ETag changed); it was not overwritten, and this run's records since its last upload are not in it")]
    Conflict { location: String },
    /// A read-only command or `retry` found no state object.
    #[error("no state at {location}")]
    NotFound { location: String },
    /// The object is not a SQLite state.
    #[error("{location} is not a cognito-migrate state file (it is not an SQLite database)")]
    NotAState { location: String },
    /// An S3 call failed (exit 3: run the same command again).
    #[error("{op} {location}: {message}")]
    S3 {
        op: &'static str,
        location: String,
        message: String,
    },
    #[error("local copy of the state {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot of the state {path}")]
    Snapshot {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("a state upload task failed: {0}")]
    Task(String),
}

impl StateStoreError {
    /// The state is in use by, or belongs now to, another process: exit 4 in the CLI.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StateStoreError::Held { .. }
                | StateStoreError::Lost { .. }
                | StateStoreError::Conflict { .. }
                | StateStoreError::Local(LeaseError::Held { .. })
        )
    }

    /// A usage or configuration problem (exit 2 in the CLI).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            StateStoreError::BadLocation { .. }
                | StateStoreError::NoClient { .. }
                | StateStoreError::NotFound { .. }
                | StateStoreError::NotAState { .. }
                | StateStoreError::Local(LeaseError::Io { .. })
        )
    }

    /// What to do about it, for the CLI's `hint:` line.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StateStoreError::Held { expired: false, .. } => Some(
                "wait for that run to end (a lease whose holder died expires by itself; then run with --break-lock)",
            ),
            StateStoreError::Held { expired: true, .. } => Some(
                "its holder stopped renewing it (it died or lost its network): run again with --break-lock to take it over",
            ),
            StateStoreError::Lost { .. } | StateStoreError::Conflict { .. } => Some(
                "another run owns the state now: let it finish; the work this run did after its last upload is redone safely by the next run",
            ),
            _ => None,
        }
    }
}

fn describe(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => format!("held by {h}"),
        None => "its lease object could not be read as a lease".to_string(),
    }
}

fn expiry(expires_ms: Option<i64>, expired: bool) -> String {
    match (expires_ms, expired) {
        (Some(ms), false) => format!("the lease expires at {} unless renewed", rfc3339(ms)),
        (Some(ms), true) => format!("the lease expired at {}", rfc3339(ms)),
        (None, _) => "its expiry is unknown".to_string(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A private temporary directory (0700), removed with everything in it when dropped.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> Result<PrivateDir, StateStoreError> {
        let base = std::env::temp_dir();
        let path = base.join(format!(
            "cognito-migrate-state-{}-{}",
            std::process::id(),
            s3::hex(&rand::random::<[u8; 8]>())
        ));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&path).map_err(|source| StateStoreError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(PrivateDir(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The local file name of a downloaded state: the key's last segment (so that messages naming
/// the local file still say which state it is), or `state.db`.
fn local_name(key: &str) -> String {
    let last = key.rsplit('/').next().unwrap_or_default();
    let clean: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        "state.db".to_string()
    } else {
        clean
    }
}

/// The bucket of the S3 state `loc` (so named in errors), reached through the caller's client
/// `s3`, which an S3 location needs ([`StateStoreError::NoClient`] without one).
fn s3_target(
    loc: &str,
    bucket: &str,
    s3: Option<&aws_sdk_s3::Client>,
) -> Result<S3Target, StateStoreError> {
    let client = s3.ok_or_else(|| StateStoreError::NoClient {
        location: loc.to_string(),
    })?;
    Ok(S3Target {
        client: state_client(client),
        bucket: bucket.to_string(),
    })
}

/// The caller's S3 client with a longer per-attempt timeout: a state of a few hundred MB takes
/// longer than the 60 s an ordinary call is given to download or upload.
fn state_client(client: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(15 * 60))
        .build();
    aws_sdk_s3::Client::from_conf(
        client
            .config()
            .to_builder()
            .timeout_config(timeouts)
            .build(),
    )
}

/// Streams object `key` into a new private file at `path`; returns its ETag, or `None` when
/// there is no object (and no file is made).
async fn download(
    target: &S3Target,
    location: &str,
    key: &str,
    path: &Path,
) -> Result<Option<String>, StateStoreError> {
    let Some((mut body, etag)) = target.get(key).await? else {
        return Ok(None);
    };
    let io = |source| StateStoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = crate::fs::create_private(path).map_err(io)?;
    let mut file = tokio::fs::File::from_std(file);
    while let Some(chunk) = body.try_next().await.map_err(|e| StateStoreError::S3 {
        op: "GetObject",
        location: location.to_string(),
        message: format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e)),
    })? {
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    drop(file);
    // Only a SQLite file (or an empty object: a new state) is a state.
    let mut head = [0u8; 16];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(io)?;
        f.read(&mut head).map_err(io)?
    };
    if n > 0 && (n < 16 || &head != b"SQLite format 3\0") {
        return Err(StateStoreError::NotAState {
            location: location.to_string(),
        });
    }
    Ok(Some(etag))
}

/// The lease and upload bookkeeping of a held remote state, shared with its background tasks.
struct Remote {
    target: S3Target,
    key: String,
    lock_key: String,
    location: String,
    local: PathBuf,
    snapshot: PathBuf,
    lease_duration: Duration,
    /// The state object's ETag (`None`: no object yet) and the hash of the last upload.
    upload: Mutex<UploadState>,
    /// Our lease record and its object's ETag.
    lease: Mutex<(LeaseRecord, String)>,
    /// Set when the lease is lost or the state was written by someone else.
    lost: watch::Sender<Option<String>>,
}

struct UploadState {
    etag: Option<String>,
    last_hash: Option<[u8; 32]>,
    /// A conflict seen: every later upload is refused at once.
    conflict: bool,
}

impl Remote {
    fn lost_error(&self) -> Option<StateStoreError> {
        self.lost.borrow().clone().map(|why| StateStoreError::Lost {
            location: self.location.clone(),
            why,
        })
    }

    async fn persist(&self) -> Result<(), StateStoreError> {
        let mut up = self.upload.lock().await;
        if up.conflict {
            return Err(StateStoreError::Conflict {
                location: self.location.clone(),
            });
        }
        if let Some(e) = self.lost_error() {
            return Err(e);
        }
        if !self.local.exists() {
            // Nothing was ever written locally (the command stopped before opening the state).
            return Ok(());
        }
        let (live, out) = (self.local.clone(), self.snapshot.clone());
        let hash = tokio::task::spawn_blocking(move || snapshot::snapshot(&live, &out))
            .await
            .map_err(|e| StateStoreError::Task(e.to_string()))??;
        if up.last_hash == Some(hash) {
            return Ok(());
        }
        let cond = match &up.etag {
            Some(etag) => Cond::Matches(etag.clone()),
            None => Cond::Absent,
        };
        let path = self.snapshot.clone();
        let body =
            move || -> futures::future::BoxFuture<'static, Result<ByteStream, StateStoreError>> {
                let path = path.clone();
                Box::pin(async move {
                    ByteStream::from_path(&path)
                        .await
                        .map_err(|e| StateStoreError::Io {
                            path: path.clone(),
                            source: std::io::Error::other(e),
                        })
                })
            };
        match self
            .target
            .put(&self.key, body, SQLITE_CONTENT_TYPE, &cond)
            .await?
        {
            Written::Yes(etag) => {
                up.etag = Some(etag);
                up.last_hash = Some(hash);
                tracing::info!("uploaded the state to {}", self.location);
                Ok(())
            }
            Written::ConditionFailed => {
                up.conflict = true;
                self.lost.send_replace(Some(
                    "the state object was written by another process".into(),
                ));
                Err(StateStoreError::Conflict {
                    location: self.location.clone(),
                })
            }
        }
    }

    /// Renews the lease once; `Err` with a reason when it is lost.
    async fn renew(&self) -> Result<(), String> {
        let mut lease = self.lease.lock().await;
        let record = lease.0.renewed(now_ms(), self.lease_duration);
        let body = record.to_json();
        let put = self
            .target
            .put(
                &self.lock_key,
                move || {
                    let b = body.clone();
                    Box::pin(async move { Ok(ByteStream::from(b)) })
                },
                "application/json",
                &Cond::Matches(lease.1.clone()),
            )
            .await;
        match put {
            Ok(Written::Yes(etag)) => {
                *lease = (record, etag);
                Ok(())
            }
            Ok(Written::ConditionFailed) => {
                Err("another process replaced or deleted the lease object".into())
            }
            Err(e) => {
                if now_ms() + 5_000 >= lease.0.expires_ms {
                    Err(format!(
                        "it could not be renewed before it expired: {}",
                        crate::display_chain(&e)
                    ))
                } else {
                    tracing::warn!(
                        "renewing the lease on {}: {}; trying again",
                        self.location,
                        crate::display_chain(&e)
                    );
                    Ok(())
                }
            }
        }
    }
}

/// A state held by this process: the local SQLite file to open, and (for an `s3://` state) the
/// lease and the uploads. Call [`HeldState::release`] at the end (also after a failed run): it
/// uploads the state and gives the lease back. Dropped without it, the background tasks stop and
/// a remote lease stays until it expires.
pub struct HeldState {
    location: StateLocation,
    path: PathBuf,
    local_lease: Lease,
    taken_over: Option<Holder>,
    is_new: bool,
    remote: Option<Arc<Remote>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    // Last: removed after the lease file in it is closed.
    _dir: Option<PrivateDir>,
}

impl fmt::Debug for HeldState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldState")
            .field("location", &self.location)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl HeldState {
    /// Takes the state at `location` for this process (`command` says what it runs, e.g. `run`),
    /// before anything else is done. A local path takes the flock [`Lease`]; an S3 location takes
    /// the S3 lease and downloads the state (see the module docs). `s3` is needed for an S3
    /// location only.
    pub async fn acquire(
        location: &StateLocation,
        command: &str,
        s3: Option<&aws_sdk_s3::Client>,
        options: &StateOptions,
    ) -> Result<HeldState, StateStoreError> {
        let (stop, _) = watch::channel(false);
        let (bucket, key) = match location {
            StateLocation::Local(path) => {
                let local_lease = Lease::acquire(path, command)?;
                return Ok(HeldState {
                    location: location.clone(),
                    path: path.clone(),
                    taken_over: local_lease.taken_over().cloned(),
                    is_new: !path.exists(),
                    local_lease,
                    remote: None,
                    stop,
                    tasks: Vec::new(),
                    _dir: None,
                });
            }
            StateLocation::S3 { bucket, key } => (bucket, key),
        };
        let loc = location.to_string();
        let target = s3_target(&loc, bucket, s3)?;
        let lock_key = StateLocation::lock_key(key);
        let (record, lock_etag, taken_over) =
            take_remote_lease(&target, &loc, &lock_key, command, options).await?;
        let mut held = HeldStateBuilder {
            target: target.clone(),
            lock_key: lock_key.clone(),
            lock_etag: Some(lock_etag.clone()),
        };
        let dir = match PrivateDir::create() {
            Ok(d) => d,
            Err(e) => {
                held.give_back().await;
                return Err(e);
            }
        };
        let path = dir.0.join(local_name(key));
        let etag = match download(&target, &loc, key, &path).await {
            Ok(etag) => etag,
            Err(e) => {
                held.give_back().await;
                return Err(e);
            }
        };
        let local_lease = match Lease::acquire(&path, command) {
            Ok(l) => l,
            Err(e) => {
                held.give_back().await;
                return Err(e.into());
            }
        };
        held.lock_etag = None;
        let (lost, _) = watch::channel(None);
        let remote = Arc::new(Remote {
            target,
            key: key.clone(),
            lock_key,
            location: loc,
            local: path.clone(),
            snapshot: dir.0.join("upload.snapshot"),
            lease_duration: options.lease_duration,
            upload: Mutex::new(UploadState {
                etag: etag.clone(),
                last_hash: None,
                conflict: false,
            }),
            lease: Mutex::new((record, lock_etag)),
            lost,
        });
        let tasks = vec![
            spawn_renewal(remote.clone(), stop.subscribe(), options.lease_duration / 3),
            spawn_uploads(remote.clone(), stop.subscribe(), options.upload_every),
        ];
        Ok(HeldState {
            location: location.clone(),
            path,
            local_lease,
            taken_over,
            is_new: etag.is_none(),
            remote: Some(remote),
            stop,
            tasks,
            _dir: Some(dir),
        })
    }

    /// Where the state lives.
    pub fn location(&self) -> &StateLocation {
        &self.location
    }

    /// The local SQLite file to open ([`crate::checkpoint::Checkpoint::open`]): the state itself,
    /// or the private copy of a remote one.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The local flock lease on [`HeldState::path`] (what [`crate::migrate::run`] takes).
    pub fn lease(&self) -> &Lease {
        &self.local_lease
    }

    /// The holder of a lease that this one took over: a local lease left by a dead process, or
    /// an expired remote lease broken with `break_lock`.
    pub fn taken_over(&self) -> Option<&Holder> {
        self.taken_over.as_ref()
    }

    /// Whether there was no state yet (no file, no object).
    pub fn is_new(&self) -> bool {
        self.is_new
    }

    /// Resolves when the remote lease is lost or the state was written by someone else (the
    /// reason); never for a local state. The caller should stop its run.
    pub fn lost(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let rx = self.remote.as_ref().map(|r| r.lost.subscribe());
        async move {
            let Some(mut rx) = rx else {
                return std::future::pending().await;
            };
            loop {
                if let Some(why) = rx.borrow_and_update().clone() {
                    return why;
                }
                if rx.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }

    /// Uploads the state now if it is remote and changed since the last upload (a no-op for a
    /// local state). Safe to call at any time, also while the run writes: the upload is a
    /// consistent snapshot of what was committed.
    pub async fn persist(&self) -> Result<(), StateStoreError> {
        match &self.remote {
            Some(r) => r.persist().await,
            None => Ok(()),
        }
    }

    /// Ends the holding: stops the background tasks, uploads the state a last time, deletes the
    /// remote lease (conditionally on its ETag), removes the local copy. For a local state: drops
    /// the lease. The first error is returned; the lease is given back whatever happens.
    pub async fn release(mut self) -> Result<(), StateStoreError> {
        self.stop.send_replace(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        let Some(remote) = self.remote.take() else {
            return Ok(());
        };
        let uploaded = remote.persist().await;
        let lease_etag = remote.lease.lock().await.1.clone();
        let lost = remote.lost.borrow().is_some();
        match remote
            .target
            .delete_if_match(&remote.lock_key, &lease_etag)
            .await
        {
            Ok(Written::Yes(_)) => {}
            Ok(Written::ConditionFailed) => {
                if !lost {
                    tracing::warn!(
                        "the lease on {} was not ours any more when released; left alone",
                        remote.location
                    );
                }
            }
            Err(e) => {
                tracing::warn!(
                    "cannot delete the lease {}: {} (it expires by itself)",
                    remote.lock_key,
                    crate::display_chain(&e)
                );
            }
        }
        uploaded
    }
}

impl Drop for HeldState {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Gives a just-taken remote lease back when acquiring fails after it.
struct HeldStateBuilder {
    target: S3Target,
    lock_key: String,
    lock_etag: Option<String>,
}

impl HeldStateBuilder {
    async fn give_back(&mut self) {
        if let Some(etag) = self.lock_etag.take() {
            let _ = self.target.delete_if_match(&self.lock_key, &etag).await;
        }
    }
}

/// Takes the lease object: created if absent; an expired one replaced with `break_lock`.
/// Returns our record, its ETag and the holder of a lease broken.
async fn take_remote_lease(
    target: &S3Target,
    location: &str,
    lock_key: &str,
    command: &str,
    options: &StateOptions,
) -> Result<(LeaseRecord, String, Option<Holder>), StateStoreError> {
    let record = LeaseRecord::new(command, options.lease_duration);
    let json = record.to_json();
    let body =
        move || -> futures::future::BoxFuture<'static, Result<ByteStream, StateStoreError>> {
            let b = json.clone();
            Box::pin(async move { Ok(ByteStream::from(b)) })
        };
    // A few rounds: the lease object may change between our reads and writes (released,
    // broken by another process); each round reads it again.
    for _ in 0..5 {
        if let Written::Yes(etag) = target
            .put(lock_key, &body, "application/json", &Cond::Absent)
            .await?
        {
            return Ok((record, etag, None));
        }
        let Some((bytes, etag)) = target.get_small(lock_key).await? else {
            continue; // released meanwhile: try to create it again
        };
        let current = LeaseRecord::from_json(&bytes).ok();
        let now = now_ms();
        // An unreadable lease object has no expiry: treated as expired (no live holder writes one),
        // but, like any expired lease, taken over only with break_lock.
        let expired = current.as_ref().is_none_or(|r| r.expired_at(now));
        if !expired || !options.break_lock {
            return Err(StateStoreError::Held {
                location: location.to_string(),
                holder: current.as_ref().map(|r| r.holder.clone()),
                expires_ms: current.as_ref().map(|r| r.expires_ms),
                expired,
            });
        }
        match target
            .put(lock_key, &body, "application/json", &Cond::Matches(etag))
            .await?
        {
            Written::Yes(etag) => {
                return Ok((record, etag, current.map(|r| r.holder)));
            }
            Written::ConditionFailed => continue, // another breaker won, or it was released
        }
    }
    Err(StateStoreError::S3 {
        op: "PutObject",
        location: format!("{location}.lock"),
        message: "the lease object kept changing while this run tried to take it".into(),
    })
}

fn spawn_renewal(
    remote: Arc<Remote>,
    mut stop: watch::Receiver<bool>,
    every: Duration,
) -> JoinHandle<()> {
    let every = every.max(Duration::from_millis(200));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() || remote.lost.borrow().is_some() {
                return;
            }
            if let Err(why) = remote.renew().await {
                tracing::error!("{}: lease lost: {why}", remote.location);
                remote.lost.send_replace(Some(why));
                return;
            }
        }
    })
}

fn spawn_uploads(
    remote: Arc<Remote>,
    mut stop: watch::Receiver<bool>,
    every: Duration,
) -> JoinHandle<()> {
    let every = every.max(Duration::from_millis(100));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            match remote.persist().await {
                Ok(()) => {}
                Err(e) if e.is_busy() => return,
                // A transient failure: the next round (or the final upload) tries again.
                Err(e) => tracing::warn!("uploading the state: {}", crate::display_chain(&e)),
            }
        }
    })
}

/// A state opened for reading only (`status`, `report`): the local file, and for a remote state
/// the private temp dir holding its downloaded copy (removed when this is dropped).
#[derive(Debug)]
pub struct ReadOnlyState {
    path: PathBuf,
    _dir: Option<PrivateDir>,
}

impl ReadOnlyState {
    /// The local SQLite file to open with
    /// [`crate::checkpoint::Checkpoint::open_read_only`].
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Gets a state for reading without taking its lease: a local path as it is; an S3 state
/// downloaded (as it was at its last upload: a run in progress may have done more). A missing
/// state is [`StateStoreError::NotFound`].
pub async fn fetch_read_only(
    location: &StateLocation,
    s3: Option<&aws_sdk_s3::Client>,
) -> Result<ReadOnlyState, StateStoreError> {
    let (bucket, key) = match location {
        StateLocation::Local(path) => {
            if !path.exists() {
                return Err(StateStoreError::NotFound {
                    location: location.to_string(),
                });
            }
            return Ok(ReadOnlyState {
                path: path.clone(),
                _dir: None,
            });
        }
        StateLocation::S3 { bucket, key } => (bucket, key),
    };
    let loc = location.to_string();
    let target = s3_target(&loc, bucket, s3)?;
    let dir = PrivateDir::create()?;
    let path = dir.0.join(local_name(key));
    match download(&target, &loc, key, &path).await? {
        Some(_) => Ok(ReadOnlyState {
            path,
            _dir: Some(dir),
        }),
        None => Err(StateStoreError::NotFound { location: loc }),
    }
}
