//! `sync`: keep a user pool in step with its source, run after run, writing only real differences.
//!
//! Why it exists: during a long migration window (or for good) the legacy system stays the source
//! of truth and keeps changing. `run` creates users once; `sync` follows the source: it creates the
//! new users, updates the ones whose mapped attributes, enabled flag or groups changed, removes
//! (disables by default) the ones gone from the source and enables those who come back, and does
//! nothing at all, not one call, for an unchanged user (every written user is a billed MAU).
//!
//! How one sync goes ([`sync`]):
//!
//! 1. **Detect** ([`detect`]): the source is read whole with the same mapping, validation and
//!    routing as `run`, each record matched by its key ([`MatchKey`]) and compared with the
//!    state's fingerprint of what was last written ([`key::Target`]). A source that breaks off
//!    stops the sync here: nothing is recorded or written.
//! 2. **Safety**: removals are held back (recorded as `staged`) when the source looks incomplete
//!    (no record, or more rejections than `max_rejected_percent`) or when they exceed the brake
//!    ([`Brake`]) without `allow_removals`. `--plan` stops here and writes nothing to the pool.
//! 3. **Record**: the change set goes into the state in one durable transaction before any write
//!    (`sync_ops`, each op `pending` → `started` → `done`/`failed`); the [`Persist`] hook runs.
//! 4. **Create**: new users go through [`crate::migrate::run`] restricted to their records
//!    (`only`), with its exactly-once machinery (import jobs for importable hashes in mode auto,
//!    AdminCreateUser for the rest, or left to the trigger); their keys are then recorded.
//! 5. **Write**: the other ops through the concurrent change writer ([`writes`] =
//!    `sink::user_changes`: users side by side, one user's ops in the order recorded); each op is
//!    durably `started` before its call, and each finished op updates its key's row in the same
//!    transaction, so the state always says what the pool was made to hold.
//!
//! A crash anywhere resumes the same sync with the same command: an unfinished sync found in the
//! state goes on from its phase. Ops left in doubt (`started`, outcome never recorded; with an
//! `s3://` state whose upload may lag, `pending` too) are settled first by reading their users
//! back (`settle_in_doubt`): what the pool already shows is recorded done without a call, the
//! rest is sent again, so each change is written once. Creates are `migrate`'s own exactly-once
//! business. A failed
//! op leaves its key's row as it was, so the next sync finds the difference again and retries it,
//! without blocking anyone else.

pub mod detect;
pub mod key;
pub mod reconcile;
use crate::sink::user_changes as writes;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::checkpoint::{
    Checkpoint, CheckpointError, KeyWrite, Outcome, RecordSet, SyncCounts, SyncKeyRow, SyncOpRow,
};
use crate::lease::Lease;
use crate::mapping::Mapper;
use crate::migrate::{self, BoxError, CancelToken, MigrateError, Migration, OpenInput};
use crate::plan::route::Router;
use crate::source::RecordError;

pub use detect::PlannedUser;
pub use key::MatchKey;
use key::{attr_digest, Target};
/// The change writer's settings (re-exported so callers need not know which writer it is).
pub use writes::UserChangesConfig;
use writes::{Action, Change, ChangeObserver, ChangeOutcome};

/// What happens to a user the state knows and the source no longer has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnMissing {
    /// AdminDisableUser (the default); a user who comes back is enabled again.
    #[default]
    Disable,
    /// AdminDeleteUser.
    Delete,
    /// Nothing.
    Ignore,
}

/// The removal brake: how many disables + deletes one sync may write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Brake {
    Count(u64),
    Percent(f64),
}

impl Default for Brake {
    fn default() -> Self {
        Brake::Percent(5.0)
    }
}

impl std::str::FromStr for Brake {
    type Err = String;

    fn from_str(s: &str) -> Result<Brake, String> {
        let bad = || format!("--max-removals {s:?}: expected a count (100) or a percentage (5%)");
        match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(Brake::Percent(p)),
                _ => Err(bad()),
            },
            None => s.trim().parse().map(Brake::Count).map_err(|_| bad()),
        }
    }
}

impl Brake {
    /// The most removals allowed when the state knows `active` users: a count as given; a
    /// percentage of them rounded up, at most [`Brake::PERCENT_CAP`].
    pub fn limit(self, active: u64) -> u64 {
        match self {
            Brake::Count(n) => n,
            Brake::Percent(p) => ((active as f64 * p / 100.0).ceil() as u64).min(Self::PERCENT_CAP),
        }
    }

    /// A percentage brake never allows more than this many removals in one sync.
    pub const PERCENT_CAP: u64 = 1000;
}

/// The settings of a sync (the create path's settings are in the [`Migration`]).
#[derive(Clone, Debug)]
pub struct SyncConfig {
    pub pool_id: String,
    /// The local state file.
    pub state: PathBuf,
    pub match_key: MatchKey,
    pub on_missing: OnMissing,
    pub max_removals: Brake,
    pub allow_removals: bool,
    /// Above this share of rejected records (percent), no removal is written.
    pub max_rejected_percent: f64,
    /// Write nothing to the pool; report the change set.
    pub plan: bool,
    /// List the pool and correct drift in this sync ([`reconcile`]).
    pub full: bool,
    /// A full reconcile also runs when the last one started longer ago than this (or never ran).
    pub reconcile_every: Duration,
    /// How the pool is listed for a full reconcile.
    pub listing: crate::listing::ListOptions,
    /// Create the groups that group additions name and the pool lacks.
    pub create_groups: bool,
    pub writes: UserChangesConfig,
    /// How often the [`Persist`] hook runs while ops are written.
    pub persist_every: Duration,
    /// The state read at the start may be older than what the interrupted process did (an
    /// `s3://` state is uploaded at checkpoints, so its last upload can lag the pool): a resumed
    /// sync then treats its `pending` ops as in doubt too and looks their users up.
    pub state_may_lag: bool,
}

/// Called at the sync's checkpoints (change set recorded, after each phase, periodically while
/// writing), e.g. to upload an `s3://` state. A no-op for a local state ([`NoPersist`]).
pub trait Persist: Send + Sync {
    fn persist(&self) -> BoxFuture<'_, Result<(), BoxError>>;
}

/// The local state needs no persisting beyond its own commits.
pub struct NoPersist;

impl Persist for NoPersist {
    fn persist(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

/// How a sync ended, for the summary line and the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    Ok,
    /// `--plan` found changes to make.
    ChangesPending,
    /// Removals were held back (brake or incomplete source).
    RemovalsStaged,
    /// Some users' writes failed (the next sync retries them).
    FailedUsers,
    /// Some records were rejected.
    Rejected,
    Fatal,
}

impl SyncOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Ok => "ok",
            SyncOutcome::ChangesPending => "changes_pending",
            SyncOutcome::RemovalsStaged => "removals_staged",
            SyncOutcome::FailedUsers => "failed_users",
            SyncOutcome::Rejected => "rejected",
            SyncOutcome::Fatal => "fatal",
        }
    }
}

/// What a sync did (or, with `plan`, would do).
#[derive(Clone, Debug)]
pub struct SyncReport {
    pub id: i64,
    pub plan: bool,
    pub full: bool,
    pub counts: SyncCounts,
    pub outcome: SyncOutcome,
    /// Why removals were held back, when they were.
    pub no_removals_because: Option<String>,
    /// Every user the change set touches (filled for `--plan`).
    pub planned: Vec<PlannedUser>,
    pub warnings: Vec<String>,
    /// This run resumed a sync that had not finished.
    pub resumed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A setting that does not fit (exit code 2).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("opening the input")]
    Open(#[source] BoxError),
    /// The source could not be read to its end: nothing was recorded or written.
    #[error("the input broke off, so nothing was written to the pool")]
    SourceBroke(#[source] RecordError),
    #[error("creating the new users")]
    Create(#[source] MigrateError),
    #[error("listing the pool for the full reconcile")]
    Reconcile(#[source] BoxError),
    /// The change writer stopped for every user (the pool is gone, the calls are refused).
    #[error("writing the changes")]
    Writes(#[source] BoxError),
    #[error("saving the state")]
    Persist(#[source] BoxError),
    #[error("encoding the change set")]
    Json(#[from] serde_json::Error),
    #[error("a worker task failed")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Internal(String),
    /// Cancelled: everything done is recorded; the same command resumes.
    #[error("interrupted; what was done is recorded: run the same command again to resume")]
    Interrupted,
}

impl SyncError {
    pub fn is_configuration(&self) -> bool {
        match self {
            SyncError::Config(_) => true,
            SyncError::Create(e) => e.is_configuration(),
            _ => false,
        }
    }
}

/// Everything a sync needs: its settings, the resolved create path (its mapper is `migrate`'s),
/// and a second mapper for the detection pass.
pub struct SyncJob {
    pub config: SyncConfig,
    pub migration: Migration,
    pub detect_mapper: Mapper,
}

/// Runs one sync to its end (or resumes the unfinished one). Only the holder of the state's
/// `lease` may call it.
/// The state's page cache during a sync, in KiB.
const SYNC_CACHE_KIB: i64 = 32 * 1024;

pub async fn sync(
    job: SyncJob,
    input: &dyn OpenInput,
    cancel: &CancelToken,
    lease: &Lease,
    persist: &dyn Persist,
) -> Result<SyncReport, SyncError> {
    let SyncJob {
        config: cfg,
        migration,
        detect_mapper,
    } = job;
    let cp = migration.checkpoint.clone();
    // A sync reads the state's keys once and writes a few rows per changed user: a 32 MiB page
    // cache serves that, where bulk recording wants 256 MiB, and keeps a million-user sync's
    // memory in bounds (`scripts/bench sync`).
    cp.set_cache_kib(SYNC_CACHE_KIB)?;
    let say = migration.say.clone();
    // The change writer's client: no SDK retries, the writer is the one layer that retries.
    let client = migration.clients.cognito_without_sdk_retries();
    let unfinished = cp.sync_unfinished()?;
    let unfinished = match unfinished {
        Some(u) if cfg.plan => {
            say(&format!(
                "sync {} did not finish: the next sync without --plan resumes it first; this \
                 plan compares the source with what the state holds now",
                u.id
            ));
            None
        }
        u => u,
    };
    let (id, resumed, mut warnings) = match unfinished {
        Some(u) => {
            if u.pool_id != cfg.pool_id {
                return Err(SyncError::Config(format!(
                    "{}: an unfinished sync into pool {} is recorded; finish it with that \
                     --pool-id, or use another --state",
                    cfg.state.display(),
                    u.pool_id
                )));
            }
            say(&format!(
                "resuming sync {} from {} (phase {})",
                u.id,
                cfg.state.display(),
                u.phase
            ));
            let mut warnings = Vec::new();
            if u.input_fingerprint != migration.input.fingerprint {
                // Its creates name records of the input it read: another input cannot serve
                // them. They are given up (the next sync finds those users new again); the
                // other ops need no input and go on.
                let n = cp.sync_abandon_creates(
                    u.id,
                    "the input changed before the user was created: the next sync creates it",
                )?;
                if n > 0 {
                    warnings.push(format!(
                        "the input differs from the one sync {} read: its {n} pending creates are \
                         left to the next sync",
                        u.id
                    ));
                }
            }
            (u.id, true, warnings)
        }
        None => {
            let full = cfg.full
                || match cp.sync_last_full()? {
                    None => true,
                    Some(at) => {
                        crate::checkpoint::now_ms().saturating_sub(at)
                            >= cfg.reconcile_every.as_millis() as i64
                    }
                };
            let id = cp.sync_begin(&cfg.pool_id, &migration.input.fingerprint, cfg.plan, full)?;
            let mut notes = Vec::new();
            if full {
                let managed: std::collections::HashSet<String> =
                    detect_mapper.targets().map(str::to_string).collect();
                let st = reconcile::reconcile(
                    &cp,
                    client.clone(),
                    &cfg.pool_id,
                    &cfg.match_key,
                    &managed,
                    cfg.listing.clone(),
                    cancel,
                )
                .await?;
                say(&format!(
                    "full reconcile: {} users listed in {:.1} s ({} calls, {} throttled); {} \
                     adopted, {} differed from the state, {} no longer in the pool{}",
                    st.pool_users,
                    st.elapsed.as_secs_f64(),
                    st.calls,
                    st.throttled,
                    st.adopted,
                    st.drifted,
                    st.gone,
                    if st.unkeyed > 0 {
                        format!(", {} without a matching key (not managed)", st.unkeyed)
                    } else {
                        String::new()
                    }
                ));
                persist.persist().await.map_err(SyncError::Persist)?;
            }
            let (mut set, no_removals) =
                detect_changes(&cfg, &migration, detect_mapper, input, cancel, id).await?;
            notes.append(&mut set.warnings);
            set.warnings = notes;
            let mut counts = SyncCounts {
                records: set.records,
                rejected: set.rejected,
                unchanged: set.unchanged,
                ..SyncCounts::default()
            };
            if cfg.plan {
                let counts = SyncCounts {
                    records: set.records,
                    rejected: set.rejected,
                    unchanged: set.unchanged,
                    ..set.tally
                };
                let outcome = if set.op_count > 0 {
                    SyncOutcome::ChangesPending
                } else if counts.rejected > 0 {
                    SyncOutcome::Rejected
                } else {
                    SyncOutcome::Ok
                };
                cp.sync_finish(id, &counts, outcome.as_str())?;
                persist.persist().await.map_err(SyncError::Persist)?;
                return Ok(SyncReport {
                    id,
                    plan: true,
                    full,
                    counts,
                    outcome,
                    no_removals_because: no_removals,
                    planned: set.planned,
                    warnings: set.warnings,
                    resumed: false,
                });
            }
            counts.staged_removals = set.ops.iter().filter(|o| o.status == "staged").count() as u64;
            let groups: Vec<String> = set.groups.iter().cloned().collect();
            cp.sync_record(
                id,
                &counts,
                &set.ops,
                &set.quiet,
                &groups,
                no_removals.as_deref(),
            )?;
            persist.persist().await.map_err(SyncError::Persist)?;
            crate::testing_hook::testing_hook_kill_at("sync-recorded");
            (id, false, set.warnings)
        }
    };

    // Creates.
    let create_records = cp.sync_create_records(id)?;
    let run = cp
        .sync_run(id)?
        .ok_or_else(|| SyncError::Internal(format!("no sync {id}")))?;
    if !create_records.is_empty() {
        let current = cp.current_run()?.map(|r| r.id.0);
        let restart = if run.phase == "creating" {
            // The new migrate run begun by this sync (if it got that far) is the current one.
            current == run.prev_run
        } else {
            cp.sync_set_phase(id, "creating", current)?;
            true
        };
        let mut only = RecordSet::new();
        let skip = match (&restart, cp.current_run()?) {
            (false, Some(r)) => cp.skip_set(r.id)?,
            _ => RecordSet::new(),
        };
        for r in create_records {
            if !skip.contains(r) {
                only.insert(r);
            }
        }
        let mut m = migration;
        m.config.restart = restart;
        let report = migrate::run(m, input, Some(only), cancel, lease)
            .await
            .map_err(|e| match e {
                MigrateError::Interrupted => SyncError::Interrupted,
                e => SyncError::Create(e),
            })?;
        crate::testing_hook::testing_hook_kill_at("sync-created");
        record_creates(&cp, id, report.run.id)?;
        persist.persist().await.map_err(SyncError::Persist)?;
    }
    if cancel.is_cancelled() {
        return Err(SyncError::Interrupted);
    }

    // The other ops, in the order recorded.
    if run.phase != "writing" {
        cp.sync_set_phase(id, "writing", None)?;
    }
    let mut todo: Vec<SyncOpRow> = Vec::new();
    loop {
        let after = todo.last().map(|o| o.id).unwrap_or(0);
        let page = cp.sync_open_ops(id, false, after, 10_000)?;
        if page.is_empty() {
            break;
        }
        todo.extend(page);
    }
    let mut resent = std::collections::HashSet::new();
    let pending_in_doubt = resumed && cfg.state_may_lag;
    if todo.iter().any(|o| in_doubt(o, pending_in_doubt)) {
        let (rest, settled) =
            settle_in_doubt(&cfg, &cp, &client, todo, pending_in_doubt, cancel).await?;
        say(&format!(
            "{} changes were in doubt (maybe sent, their outcome not recorded): {} users looked up; \
             {} already showed in the pool and were not sent again, {} are sent again",
            settled.in_doubt,
            settled.users,
            settled.shown,
            settled.resent.len()
        ));
        todo = rest;
        resent = settled.resent;
    }
    if cfg.create_groups {
        let names: std::collections::BTreeSet<&str> = todo
            .iter()
            .filter(|o| o.kind == "group_add")
            .filter_map(|o| o.arg.as_deref())
            .collect();
        ensure_groups(&client, &cfg.pool_id, names).await;
    }
    if !todo.is_empty() {
        write_ops(&cfg, &cp, &client, todo, resent, cancel, persist).await?;
    }
    if cancel.is_cancelled() {
        return Err(SyncError::Interrupted);
    }

    // The end: counts from what the ops did.
    let run = cp
        .sync_run(id)?
        .ok_or_else(|| SyncError::Internal(format!("no sync {id}")))?;
    let counts = SyncCounts {
        records: run.counts.records,
        rejected: run.counts.rejected,
        unchanged: run.counts.unchanged,
        ..cp.sync_op_tally(id)?
    };
    let outcome = if counts.staged_removals > 0 {
        SyncOutcome::RemovalsStaged
    } else if counts.failed > 0 {
        SyncOutcome::FailedUsers
    } else if counts.rejected > 0 {
        SyncOutcome::Rejected
    } else {
        SyncOutcome::Ok
    };
    cp.sync_finish(id, &counts, outcome.as_str())?;
    persist.persist().await.map_err(SyncError::Persist)?;
    let failures: Vec<String> = cp
        .sync_failed_ops(id, 20)?
        .into_iter()
        .map(|o| {
            format!(
                "{} of user {} failed: {}",
                o.kind,
                o.username,
                o.message.as_deref().unwrap_or("")
            )
        })
        .collect();
    warnings.extend(failures);
    Ok(SyncReport {
        id,
        plan: false,
        full: run.full,
        counts,
        outcome,
        no_removals_because: run.no_removals_because,
        planned: Vec::new(),
        warnings,
        resumed,
    })
}

/// The detection pass on a blocking thread: the change set and why removals are held back.
async fn detect_changes(
    cfg: &SyncConfig,
    m: &Migration,
    mut mapper: Mapper,
    input: &dyn OpenInput,
    cancel: &CancelToken,
    sync_id: i64,
) -> Result<(detect::ChangeSet, Option<String>), SyncError> {
    let mut notations = m.checkpoint.canary_notations(&cfg.pool_id)?;
    for (alg, n) in m.config.hash_encodings.iter() {
        notations
            .set(alg, n)
            .map_err(|e| SyncError::Config(e.to_string()))?;
    }
    let router = Router::new(
        m.config.mode,
        m.config.unimportable,
        m.hash_context.clone(),
        &m.schema,
    )
    .with_unknown_hash(m.config.unknown_hash)
    .with_notations(notations);
    let mut source = input.open().await.map_err(SyncError::Open)?;
    let cp = m.checkpoint.clone();
    let cfg = cfg.clone();
    let cancel = cancel.clone();
    tokio::task::spawn_blocking(move || {
        let known = detect::Known::load(&cp)?;
        let mut d = detect::Detect {
            cp: &cp,
            key: &cfg.match_key,
            known,
            set: detect::ChangeSet::default(),
            sync_id,
            plan: cfg.plan,
        };
        d.read(source.as_mut(), &mut mapper, &router, &cancel)?;
        d.removals(cfg.on_missing)?;
        let s = &d.set;
        let limit = cfg.max_removals.limit(d.known.active);
        let no_removals = if s.removals == 0 {
            None
        } else if s.records == 0 {
            Some("the source has no records".to_string())
        } else if (s.rejected as f64) * 100.0 > cfg.max_rejected_percent * s.records as f64 {
            Some(format!(
                "{} of {} records were rejected, more than --max-rejected {}%",
                s.rejected, s.records, cfg.max_rejected_percent
            ))
        } else if s.removals > limit && !cfg.allow_removals {
            Some(format!(
                "{} users would be removed, more than --max-removals allows ({limit}); pass \
                 --allow-removals or raise --max-removals to let them through",
                s.removals
            ))
        } else {
            None
        };
        if no_removals.is_some() {
            d.stage_removals();
        }
        Ok((d.set, no_removals))
    })
    .await?
}

/// `--create-groups`: creates each group (CreateGroup; one that exists is fine). A failure is
/// only warned about: the additions to that group then fail and are retried by the next sync.
async fn ensure_groups(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool_id: &str,
    names: std::collections::BTreeSet<&str>,
) {
    use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
    for name in names {
        let r = client
            .create_group()
            .user_pool_id(pool_id)
            .group_name(name)
            .send()
            .await;
        if let Err(e) = r {
            if e.code() != Some("GroupExistsException") {
                tracing::warn!("creating group {name}: {}", crate::display_chain(&e));
            }
        }
    }
}

/// The create target recorded in a `create` op.
#[derive(serde::Deserialize)]
struct CreateArg {
    attrs: String,
    enabled: bool,
    groups: Vec<String>,
}

/// After `migrate::run`: each create's key recorded from its user's outcome in the run (in
/// pages: a first sync may create millions).
fn record_creates(
    cp: &Checkpoint,
    sync_id: i64,
    run: crate::checkpoint::RunId,
) -> Result<(), SyncError> {
    let mut after = 0;
    loop {
        let page = cp.sync_open_ops(sync_id, true, after, 10_000)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id;
        for c in &page {
            record_create(cp, run, c)?;
        }
    }
}

fn record_create(
    cp: &Checkpoint,
    run: crate::checkpoint::RunId,
    c: &SyncOpRow,
) -> Result<(), SyncError> {
    {
        let arg: CreateArg = serde_json::from_str(c.arg.as_deref().unwrap_or("{}"))?;
        let groups = arg.groups.join("\n");
        let target = Target::parse(&arg.attrs, arg.enabled, &groups);
        let row = |in_pool: bool, t: &Target| SyncKeyRow {
            key: c.key.clone(),
            username: c.username.clone(),
            sub: None,
            attrs: t.attrs_text(),
            enabled: t.enabled,
            groups: t.groups_text(),
            missing: false,
            in_pool,
            fp: t.fingerprint(),
        };
        let user = match c.record {
            Some(r) => cp.user(run, r)?,
            None => None,
        };
        let (status, message, write) = match user.map(|u| (u.outcome, u.message)) {
            Some((Outcome::Created | Outcome::Imported | Outcome::Updated, _)) => {
                ("done", None, KeyWrite::Put(row(true, &target)))
            }
            Some((Outcome::Trigger, _)) => (
                "done",
                Some("left to the migration trigger".to_string()),
                KeyWrite::Put(row(false, &target)),
            ),
            Some((Outcome::Skipped, _)) => {
                // Already in the pool and left as it was: recorded with nothing known written,
                // so the next sync sends its attributes, enabled flag and groups.
                let unknown = Target {
                    enabled: true,
                    ..Target::default()
                };
                (
                    "done",
                    Some("already in the pool: adopted; its data follows in the next sync".into()),
                    KeyWrite::Put(row(true, &unknown)),
                )
            }
            Some((o, m)) => (
                "failed",
                Some(format!(
                    "create: {}{}",
                    o.as_str(),
                    m.map(|m| format!(": {m}")).unwrap_or_default()
                )),
                KeyWrite::None,
            ),
            None => (
                "failed",
                Some("create: no outcome recorded".into()),
                KeyWrite::None,
            ),
        };
        cp.sync_op_finished(c.id, status, message.as_deref(), &write)?;
    }
    Ok(())
}

/// Records each op's start and end, and what a finished op did to its key.
struct OpRecorder {
    cp: Arc<Checkpoint>,
    ops: std::collections::HashMap<i64, SyncOpRow>,
    /// Ops that were in doubt, looked up and not shown by the pool: sent again.
    resent: std::collections::HashSet<i64>,
    error: Mutex<Option<CheckpointError>>,
}

impl OpRecorder {
    fn fail(&self, e: CheckpointError) {
        let mut slot = self.error.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    /// What a finished op makes of its key's row.
    fn key_write(
        &self,
        op: &SyncOpRow,
        outcome: &ChangeOutcome,
    ) -> Result<KeyWrite, CheckpointError> {
        let done = matches!(outcome, ChangeOutcome::Done | ChangeOutcome::AlreadyDone);
        if matches!(outcome, ChangeOutcome::UserNotFound) {
            // Deleted behind the tool's back: forgotten, so the next sync creates it again.
            return Ok(KeyWrite::Delete(op.key.clone()));
        }
        if !done {
            return Ok(KeyWrite::None);
        }
        if op.kind == "delete" {
            return Ok(KeyWrite::Delete(op.key.clone()));
        }
        let Some(mut row) = self.cp.sync_key(&op.key)? else {
            return Ok(KeyWrite::None);
        };
        let mut t = Target::parse(&row.attrs, row.enabled, &row.groups);
        match op.kind.as_str() {
            "update" => {
                let values: Vec<(String, String)> =
                    serde_json::from_str(op.arg.as_deref().unwrap_or("[]")).unwrap_or_default();
                for (n, v) in &values {
                    t.set_attr(n, Some(attr_digest(n, v)));
                }
            }
            "delete_attributes" => {
                let names: Vec<String> =
                    serde_json::from_str(op.arg.as_deref().unwrap_or("[]")).unwrap_or_default();
                for n in &names {
                    t.set_attr(n, None);
                }
            }
            "disable" => {
                t.enabled = false;
                row.missing = op.removal;
            }
            "enable" => {
                t.enabled = true;
                row.missing = false;
            }
            "group_add" => {
                if let Some(g) = &op.arg {
                    t.groups.insert(g.clone());
                }
            }
            "group_remove" => {
                if let Some(g) = &op.arg {
                    t.groups.remove(g);
                }
            }
            _ => {}
        }
        if !op.removal && op.kind != "disable" {
            row.missing = false;
        }
        row.attrs = t.attrs_text();
        row.enabled = t.enabled;
        row.groups = t.groups_text();
        row.fp = t.fingerprint();
        Ok(KeyWrite::Put(row))
    }
}

impl ChangeObserver for OpRecorder {
    fn started(&self, id: i64) {
        if let Err(e) = self.cp.sync_op_started(id) {
            self.fail(e);
        }
    }

    fn finished(&self, id: i64, outcome: &ChangeOutcome) {
        let Some(op) = self.ops.get(&id) else {
            return;
        };
        if matches!(outcome, ChangeOutcome::Failed { code, .. } if code == "Interrupted") {
            // Cut short by a cancel: left `started`, so the resumed sync looks it up.
            return;
        }
        crate::testing_hook::testing_hook_kill_at("sync-op-sent");
        let (status, message) = match outcome {
            ChangeOutcome::Done if self.resent.contains(&id) => ("done", Some(RESENT.to_string())),
            ChangeOutcome::Done => ("done", None),
            ChangeOutcome::AlreadyDone => ("done", Some("already done".to_string())),
            ChangeOutcome::UserNotFound => (
                "failed",
                Some("the user is not in the pool: the next sync creates it again".to_string()),
            ),
            ChangeOutcome::Failed { code, message } => {
                ("failed", Some(format!("{code}: {message}")))
            }
        };
        let result = self
            .key_write(op, outcome)
            .and_then(|w| self.cp.sync_op_finished(id, status, message.as_deref(), &w));
        match result {
            Ok(()) => crate::testing_hook::testing_hook_kill_at("sync-op-done"),
            Err(e) => self.fail(e),
        }
    }
}

/// The message of an op that was in doubt and sent again.
const RESENT: &str =
    "in doubt after an interruption; the pool did not show it (looked up): sent again";
/// The message of an op that was in doubt and settled without a call.
const SHOWN: &str =
    "in doubt after an interruption; the pool already showed it (looked up): not sent again";

/// What [`settle_in_doubt`] did.
struct Settled {
    in_doubt: u64,
    users: u64,
    shown: u64,
    /// In doubt, not shown by the pool: the ops sent again.
    resent: std::collections::HashSet<i64>,
}

/// Whether the pool already holds what `op` was to write: an update's values (compared as the
/// state compares them, by digest), attributes deleted, the enabled flag, group membership.
/// `None` when the op cannot be judged from what was read (then it is sent again).
fn shown_in_pool(op: &SyncOpRow, user: &writes::PoolUser) -> Option<bool> {
    let arg = op.arg.as_deref().unwrap_or_default();
    Some(match op.kind.as_str() {
        "update" => {
            let values: Vec<(String, String)> = serde_json::from_str(arg).ok()?;
            values.iter().all(|(n, v)| {
                user.attributes.get(n).map(|p| attr_digest(n, p)) == Some(attr_digest(n, v))
            })
        }
        "delete_attributes" => {
            let names: Vec<String> = serde_json::from_str(arg).ok()?;
            names.iter().all(|n| !user.attributes.contains_key(n))
        }
        "disable" => !user.enabled,
        "enable" => user.enabled,
        // The user is still there.
        "delete" => false,
        "group_add" => user.groups.as_ref()?.contains(arg),
        "group_remove" => !user.groups.as_ref()?.contains(arg),
        _ => return None,
    })
}

/// An op an interrupted process may have sent without its outcome reaching the state:
/// `started`, or also `pending` when the state may lag ([`SyncConfig::state_may_lag`]).
fn in_doubt(op: &SyncOpRow, pending_too: bool) -> bool {
    op.status == "started" || (pending_too && op.status == "pending")
}

/// A resumed sync's ops found `started` (sent by the interrupted process, outcome never
/// recorded) are settled before anything is sent: each such user is read once
/// ([`writes::Lookup`]: AdminGetUser, and AdminListGroupsForUser when a group op is in doubt);
/// an op whose effect the pool already shows is recorded done without a call (a delete whose user
/// is gone too; any other op of a user who is gone is recorded as the writer records
/// `UserNotFound`); the others are returned with the rest of `todo`, to be sent again. Once one
/// op of a user is not shown, that user's later in-doubt ops are sent again too, in order.
async fn settle_in_doubt(
    cfg: &SyncConfig,
    cp: &Arc<Checkpoint>,
    client: &aws_sdk_cognitoidentityprovider::Client,
    todo: Vec<SyncOpRow>,
    pending_too: bool,
    cancel: &CancelToken,
) -> Result<(Vec<SyncOpRow>, Settled), SyncError> {
    use futures::stream::{self, StreamExt};
    let mut users: std::collections::BTreeMap<String, bool> = Default::default();
    for o in todo.iter().filter(|o| in_doubt(o, pending_too)) {
        let groups = users.entry(o.username.clone()).or_default();
        *groups |= o.kind.starts_with("group_");
    }
    let lookup = writes::Lookup::new(client, &cfg.pool_id, &cfg.writes);
    let rx = cancel.subscribe();
    let read: Vec<_> = stream::iter(users)
        .map(|(name, groups)| {
            let (lookup, rx) = (&lookup, &rx);
            async move {
                let r = lookup.user(&name, groups, rx).await;
                (name, r)
            }
        })
        .buffer_unordered(cfg.writes.concurrency.max(1))
        .collect()
        .await;
    if cancel.is_cancelled() {
        return Err(SyncError::Interrupted);
    }
    let mut found = std::collections::HashMap::new();
    for (name, r) in read {
        let r = r.map_err(|e| SyncError::Writes(Box::new(e)))?;
        found.insert(name, r);
    }
    let recorder = OpRecorder {
        cp: cp.clone(),
        ops: Default::default(),
        resent: Default::default(),
        error: Mutex::new(None),
    };
    let mut st = Settled {
        in_doubt: 0,
        users: found.len() as u64,
        shown: 0,
        resent: Default::default(),
    };
    let mut blocked: std::collections::HashSet<String> = Default::default();
    let mut rest = Vec::with_capacity(todo.len());
    for op in todo {
        if !in_doubt(&op, pending_too) {
            rest.push(op);
            continue;
        }
        st.in_doubt += 1;
        let settle = match found.get(&op.username) {
            _ if blocked.contains(&op.username) => None,
            Some(Ok(None)) if op.kind == "delete" => {
                Some(("done", SHOWN.to_string(), ChangeOutcome::AlreadyDone))
            }
            Some(Ok(None)) => Some((
                "failed",
                "the user is not in the pool (looked up after an interruption): the next sync                  creates it again"
                    .to_string(),
                ChangeOutcome::UserNotFound,
            )),
            Some(Ok(Some(u))) if shown_in_pool(&op, u) == Some(true) => {
                Some(("done", SHOWN.to_string(), ChangeOutcome::Done))
            }
            Some(Ok(Some(_))) | Some(Err(_)) | None => None,
        };
        match settle {
            Some((status, message, outcome)) => {
                let w = recorder.key_write(&op, &outcome)?;
                cp.sync_op_finished(op.id, status, Some(&message), &w)?;
                if status == "done" {
                    st.shown += 1;
                }
            }
            None => {
                if let Some(Err(why)) = found.get(&op.username) {
                    tracing::warn!(
                        "user {} could not be looked up ({why}): its change in doubt is sent again",
                        op.username
                    );
                }
                blocked.insert(op.username.clone());
                st.resent.insert(op.id);
                rest.push(op);
            }
        }
    }
    Ok((rest, st))
}

fn action(op: &SyncOpRow) -> Result<Action, SyncError> {
    let arg = op.arg.clone().unwrap_or_default();
    Ok(match op.kind.as_str() {
        "update" => Action::UpdateAttributes(serde_json::from_str(&arg)?),
        "delete_attributes" => Action::DeleteAttributes(serde_json::from_str(&arg)?),
        "disable" => Action::Disable,
        "enable" => Action::Enable,
        "delete" => Action::Delete,
        "group_add" => Action::AddToGroup(arg),
        "group_remove" => Action::RemoveFromGroup(arg),
        k => return Err(SyncError::Internal(format!("unknown op kind {k}"))),
    })
}

/// Sends the ops through the change writer, running the persist hook every
/// `cfg.persist_every` meanwhile.
async fn write_ops(
    cfg: &SyncConfig,
    cp: &Arc<Checkpoint>,
    client: &aws_sdk_cognitoidentityprovider::Client,
    todo: Vec<SyncOpRow>,
    resent: std::collections::HashSet<i64>,
    cancel: &CancelToken,
    persist: &dyn Persist,
) -> Result<(), SyncError> {
    let (tx, rx) = mpsc::channel(todo.len().max(1));
    for op in &todo {
        let change = Change {
            id: op.id,
            username: op.username.clone(),
            action: action(op)?,
        };
        tx.try_send(change)
            .map_err(|_| SyncError::Internal("the change queue is full".into()))?;
    }
    drop(tx);
    let recorder = OpRecorder {
        cp: cp.clone(),
        ops: todo.into_iter().map(|o| (o.id, o)).collect(),
        resent,
        error: Mutex::new(None),
    };
    let applied = writes::apply(
        client,
        &cfg.pool_id,
        &cfg.writes,
        rx,
        &recorder,
        cancel.subscribe(),
    );
    tokio::pin!(applied);
    let mut last = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let result = loop {
        tokio::select! {
            r = &mut applied => break r,
            _ = tick.tick() => {
                if last.elapsed() >= cfg.persist_every {
                    persist.persist().await.map_err(SyncError::Persist)?;
                    last = Instant::now();
                }
            }
        }
    };
    if let Some(e) = recorder
        .error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(e.into());
    }
    if cancel.is_cancelled() {
        return Err(SyncError::Interrupted);
    }
    result
        .map(|_| ())
        .map_err(|e| SyncError::Writes(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: &str, arg: Option<&str>) -> SyncOpRow {
        SyncOpRow {
            id: 1,
            key: "k".into(),
            username: "u".into(),
            kind: kind.into(),
            arg: arg.map(str::to_string),
            record: None,
            removal: false,
            status: "started".into(),
            message: None,
        }
    }

    fn pool_user(
        attrs: &[(&str, &str)],
        enabled: bool,
        groups: Option<&[&str]>,
    ) -> writes::PoolUser {
        writes::PoolUser {
            attributes: attrs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            enabled,
            groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
        }
    }

    /// Each kind of op is judged against what the pool holds: settled only when the pool shows
    /// its whole effect.
    #[test]
    fn an_op_in_doubt_is_settled_only_when_the_pool_shows_its_effect() {
        let u = pool_user(
            &[("name", "Zero"), ("email", "z@example.com")],
            false,
            Some(&["staff"]),
        );
        let update = |v: &str| op("update", Some(v));
        assert_eq!(
            shown_in_pool(&update(r#"[["name","Zero"]]"#), &u),
            Some(true)
        );
        assert_eq!(
            shown_in_pool(
                &update(r#"[["name","Zero"],["email","new@example.com"]]"#),
                &u
            ),
            Some(false),
            "one value differs"
        );
        assert_eq!(
            shown_in_pool(&update(r#"[["given_name","Z"]]"#), &u),
            Some(false),
            "an attribute the user lacks"
        );
        assert_eq!(
            shown_in_pool(&op("delete_attributes", Some(r#"["given_name"]"#)), &u),
            Some(true)
        );
        assert_eq!(
            shown_in_pool(&op("delete_attributes", Some(r#"["name"]"#)), &u),
            Some(false)
        );
        assert_eq!(shown_in_pool(&op("disable", None), &u), Some(true));
        assert_eq!(shown_in_pool(&op("enable", None), &u), Some(false));
        assert_eq!(
            shown_in_pool(&op("delete", None), &u),
            Some(false),
            "still there"
        );
        assert_eq!(
            shown_in_pool(&op("group_add", Some("staff")), &u),
            Some(true)
        );
        assert_eq!(
            shown_in_pool(&op("group_add", Some("admins")), &u),
            Some(false)
        );
        assert_eq!(
            shown_in_pool(&op("group_remove", Some("staff")), &u),
            Some(false)
        );
        assert_eq!(
            shown_in_pool(&op("group_remove", Some("admins")), &u),
            Some(true)
        );
        // Groups not read: cannot be judged, so sent again.
        let no_groups = pool_user(&[], true, None);
        assert_eq!(
            shown_in_pool(&op("group_add", Some("staff")), &no_groups),
            None
        );
        assert_eq!(shown_in_pool(&update("not json"), &u), None);
    }
}
