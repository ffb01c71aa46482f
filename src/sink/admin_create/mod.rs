//! The AdminCreateUser writer: users created one call at a time, as fast as the account's quota
//! allows and not one call faster, exactly once across crashes.
//!
//! A bounded pipeline on tokio channels, so memory stays flat on any input size:
//!
//! ```text
//! reader/mapper (blocking thread, plan::execute) ──Feeder──▶ attempt stage ──▶ N writer tasks ──▶ recorder
//!                                                  (begin_attempts,           (Cognito calls)     (batched
//!                                                   one fsync per batch)                           outcomes)
//! ```
//!
//! Exactly once: before a user's AdminCreateUser call, the attempt is recorded
//! ([`Checkpoint::begin_attempts`]). A user whose outcome was not recorded afterwards (a crash) is
//! *in doubt*: the next run reads it again and asks Cognito first (AdminGetUser). If it exists with
//! the attributes we would have sent, it is ours: `created`, and its follow-ups are applied again
//! (they are idempotent). The same holds within a run when an attempt got no answer (a dropped
//! connection, a timeout, a 5xx) and its retry meets `UsernameExistsException`. Outcomes are
//! committed in batches; a settled user is never read into the writer again.
//!
//! Existing users (`UsernameExistsException` that is not ours) are compared with AdminGetUser and
//! recorded `skipped` ("exists, same" / "exists, differs: email, name"), or with
//! [`OnExisting::Update`] the differing attributes are applied (`updated`). `AliasExistsException`
//! fails the user with its reason unless `force_alias_creation`. Follow-ups: groups
//! (AdminAddUserToGroup, creating missing groups with `create_groups`, else the user fails with
//! `followup_failed`) and AdminDisableUser for users disabled in the legacy system, and, first,
//! AdminLinkProviderForUser for each federated identity the user has (see [`link_all`]).
//!
//! Passwords: AdminCreateUser takes no hash. Users are created without `TemporaryPassword`
//! (Cognito generates one, status FORCE_CHANGE_PASSWORD) and with `MessageAction=SUPPRESS` unless
//! `invite`: nobody is emailed. See the README ("Passwords in admin-create mode").

pub mod config;
pub mod limiter;
pub mod retry;
pub mod service;
pub mod spill;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::checkpoint::{
    Checkpoint, CheckpointError, Outcome, RecordSet, RunId, SecondStats, StoredUser, UserRow,
    Writer,
};
use crate::mapping::MappedUser;
pub use config::{AdminCreateConfig, OnExisting, Rates};
use service::{AdminService, CallError, RemoteUser};

/// Reason code of a user whose creation (or import) succeeded but whose disable/groups did not.
pub const FOLLOWUP_FAILED: &str = "followup_failed";

#[derive(Debug, thiserror::Error)]
pub enum AdminCreateError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("the AdminCreateUser writer stopped before taking every user")]
    Closed,
    #[error("the AdminCreateUser writer failed: {0}")]
    Task(String),
}

/// Live counters, for progress lines and the final summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub queued: AtomicU64,
    pub created: AtomicU64,
    pub updated: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    /// Users whose earlier attempt was in doubt and which Cognito already held.
    pub resolved_in_doubt: AtomicU64,
    pub followups_applied: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Snapshot {
    pub queued: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    pub resolved_in_doubt: u64,
    pub followups_applied: u64,
    pub calls: u64,
    pub throttled: u64,
    pub retries: u64,
    /// AdminCreateUser's limiter rate now (slowed down after throttling).
    pub creation_rate: f64,
    pub elapsed_seconds: f64,
}

impl Snapshot {
    pub fn done(&self) -> u64 {
        self.created + self.updated + self.skipped + self.failed
    }

    /// Users settled per second since the start.
    pub fn rate(&self) -> f64 {
        if self.elapsed_seconds > 0.0 {
            self.done() as f64 / self.elapsed_seconds
        } else {
            0.0
        }
    }

    /// One progress line for logs.
    pub fn line(&self) -> String {
        format!(
            "admin-create: {} created, {} updated, {} skipped, {} failed of {} read · {:.1} users/s · \
             {} calls, {} throttled, {} retried · AdminCreateUser at {:.1}/s",
            self.created,
            self.updated,
            self.skipped,
            self.failed,
            self.queued,
            self.rate(),
            self.calls,
            self.throttled,
            self.retries,
            self.creation_rate
        )
    }
}

/// What the writer shares with its tasks.
struct Ctx {
    service: Arc<AdminService>,
    stats: Arc<Stats>,
    started: Instant,
    /// Groups known to exist (added to or created in this run).
    groups: Mutex<std::collections::HashSet<String>>,
}

impl Ctx {
    fn snapshot(&self) -> Snapshot {
        let s = &self.stats;
        let l = &self.service.limiters;
        Snapshot {
            queued: s.queued.load(Ordering::Relaxed),
            created: s.created.load(Ordering::Relaxed),
            updated: s.updated.load(Ordering::Relaxed),
            skipped: s.skipped.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            resolved_in_doubt: s.resolved_in_doubt.load(Ordering::Relaxed),
            followups_applied: s.followups_applied.load(Ordering::Relaxed),
            calls: l.all().iter().map(|l| l.calls()).sum(),
            throttled: l.throttled(),
            retries: self.service.retries(),
            creation_rate: l.creation.rate(),
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
        }
    }

    fn count(&self, row: &UserRow) {
        let c = match row.outcome {
            Outcome::Created => &self.stats.created,
            Outcome::Updated => &self.stats.updated,
            Outcome::Skipped => &self.stats.skipped,
            _ => &self.stats.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

struct Item {
    user: MappedUser,
    route: String,
}

struct Work {
    item: Item,
    /// An earlier attempt of ours may have created it: ask Cognito before creating.
    maybe_ours: bool,
}

/// The reader's end of the pipeline. Dropping it (and every clone) tells the writer that no more
/// users come.
#[derive(Clone)]
pub struct Feeder {
    tx: mpsc::Sender<Item>,
    stats: Arc<Stats>,
}

impl Feeder {
    fn item(&self, mut user: MappedUser, route: &str) -> Item {
        // The writer never needs the legacy password: drop it here.
        user.password = None;
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        Item {
            user,
            route: route.to_string(),
        }
    }

    /// Hands a user to the writer from a blocking thread (the reader); waits while the pipeline is
    /// full.
    pub fn send_blocking(&self, user: MappedUser, route: &str) -> Result<(), AdminCreateError> {
        let item = self.item(user, route);
        self.tx
            .blocking_send(item)
            .map_err(|_| AdminCreateError::Closed)
    }

    /// Hands a user to the writer from async code.
    pub async fn send(&self, user: MappedUser, route: &str) -> Result<(), AdminCreateError> {
        let item = self.item(user, route);
        self.tx
            .send(item)
            .await
            .map_err(|_| AdminCreateError::Closed)
    }
}

/// The running writer.
pub struct Pipeline {
    ctx: Arc<Ctx>,
    stage: JoinHandle<Result<(), AdminCreateError>>,
    workers: Vec<JoinHandle<()>>,
    recorder: JoinHandle<Result<u64, CheckpointError>>,
}

fn base_row(u: &MappedUser, route: &str) -> UserRow {
    UserRow::new(u.position, u.username.clone(), route, Outcome::Pending)
        .with_followups(!u.enabled, &u.groups)
        .with_links(links_of(u))
        .with_legacy_id(u.legacy_id.clone())
}

/// A mapped user's links as (pool provider, provider's user id) pairs.
fn links_of(u: &MappedUser) -> impl Iterator<Item = (&str, &str)> {
    u.links
        .iter()
        .filter_map(|l| Some((l.provider.as_deref()?, l.user_id.as_str())))
}

/// A mapped user's links, owned.
fn owned_links(u: &MappedUser) -> Vec<(String, String)> {
    links_of(u)
        .map(|(p, id)| (p.to_string(), id.to_string()))
        .collect()
}

/// Records of the run an earlier attempt of ours may have created: in doubt (pending, attempted)
/// or failed after an attempt.
fn maybe_ours(cp: &Checkpoint, run: RunId) -> Result<RecordSet, CheckpointError> {
    let mut set = RecordSet::new();
    for u in cp.in_doubt(run) {
        set.insert(u?.record);
    }
    for u in cp.retryable_failures(run) {
        let u = u?;
        if u.attempts > 0 {
            set.insert(u.record);
        }
    }
    Ok(set)
}

/// Starts the writer. `cancel` set to `true` stops it taking new users (calls in flight finish
/// and are recorded).
pub fn start(
    service: Arc<AdminService>,
    cp: Arc<Checkpoint>,
    run: RunId,
    cancel: watch::Receiver<bool>,
) -> Result<(Feeder, Pipeline), AdminCreateError> {
    let cfg = service.config().clone();
    let stats = Arc::new(Stats::default());
    let ctx = Arc::new(Ctx {
        service,
        stats: stats.clone(),
        started: Instant::now(),
        groups: Mutex::new(Default::default()),
    });
    let ours = maybe_ours(&cp, run)?;
    let (tx_in, mut rx_in) = mpsc::channel::<Item>(cfg.queue.max(1));
    let (tx_work, rx_work) = mpsc::channel::<Work>(cfg.concurrency.max(1) * 2);
    let (tx_out, rx_out) = std_mpsc::channel::<UserRow>();

    // Attempt stage: record a batch as attempted (one fsync), then hand it to the writers.
    let stage_cp = cp.clone();
    let batch_max = cfg.attempt_batch.max(1);
    let stage_cancel = cancel.clone();
    let stage = tokio::spawn(async move {
        while let Some(first) = rx_in.recv().await {
            if *stage_cancel.borrow() {
                break;
            }
            let mut batch = vec![first];
            while batch.len() < batch_max {
                match rx_in.try_recv() {
                    Ok(i) => batch.push(i),
                    Err(_) => break,
                }
            }
            let rows: Vec<UserRow> = batch.iter().map(|i| base_row(&i.user, &i.route)).collect();
            let cp = stage_cp.clone();
            let begun = tokio::task::spawn_blocking(move || begin(&cp, run, rows))
                .await
                .map_err(|e| AdminCreateError::Task(e.to_string()))??;
            for (item, ok) in batch.into_iter().zip(begun) {
                if !ok {
                    continue;
                }
                let maybe_ours = ours.contains(item.user.position.record);
                if tx_work.send(Work { item, maybe_ours }).await.is_err() {
                    return Err(AdminCreateError::Closed);
                }
            }
        }
        Ok(())
    });

    // Writers.
    let rx_work = Arc::new(tokio::sync::Mutex::new(rx_work));
    let workers = (0..cfg.concurrency.max(1))
        .map(|_| {
            let rx = rx_work.clone();
            let ctx = ctx.clone();
            let out = tx_out.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                loop {
                    if *cancel.borrow() {
                        break;
                    }
                    let work = { rx.lock().await.recv().await };
                    let Some(work) = work else { break };
                    let row = process(&ctx, work).await;
                    ctx.count(&row);
                    if out.send(row).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(tx_out);

    // Recorder: outcomes in batched transactions, and AdminCreateUser calls and throttles per
    // second for `report --html` (sampled from the creation limiter's counters).
    let rec_cp = cp.clone();
    let (rows, delay) = (cfg.outcome_batch_rows, cfg.outcome_batch_delay);
    let rec_ctx = ctx.clone();
    let recorder = tokio::task::spawn_blocking(move || {
        let mut w = Writer::with_limits(rec_cp.clone(), run, rows, delay);
        let limiter = &rec_ctx.service.limiters.creation;
        let mut seconds = Seconds::new(limiter.calls(), limiter.throttled());
        loop {
            let got = rx_out.recv_timeout(delay / 2);
            let now = now_second();
            seconds.sample(
                now,
                limiter.calls(),
                limiter.throttled(),
                u64::from(got.is_ok()),
            );
            // At most one small transaction a second: the seconds that are over.
            rec_cp.add_admin_seconds(run, &seconds.take_done(now))?;
            match got {
                Ok(row) => {
                    w.push(row)?;
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    w.flush_if_due()?;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let n = w.finish()?;
        rec_cp.add_admin_seconds(run, &seconds.take_all())?;
        Ok(n)
    });

    Ok((
        Feeder { tx: tx_in, stats },
        Pipeline {
            ctx,
            stage,
            workers,
            recorder,
        },
    ))
}

/// The wall-clock second now (Unix seconds).
fn now_second() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// AdminCreateUser activity per second, from samples of the limiter's running counters: each
/// sample adds what the counters grew by since the last one to the second it was taken in.
struct Seconds {
    last_calls: u64,
    last_throttles: u64,
    open: std::collections::BTreeMap<i64, SecondStats>,
}

impl Seconds {
    fn new(calls: u64, throttles: u64) -> Seconds {
        Seconds {
            last_calls: calls,
            last_throttles: throttles,
            open: Default::default(),
        }
    }

    fn sample(&mut self, second: i64, calls: u64, throttles: u64, settled: u64) {
        let (dc, dt) = (
            calls.saturating_sub(self.last_calls),
            throttles.saturating_sub(self.last_throttles),
        );
        self.last_calls = calls;
        self.last_throttles = throttles;
        if dc + dt + settled == 0 {
            return;
        }
        let s = self.open.entry(second).or_insert(SecondStats {
            second,
            ..SecondStats::default()
        });
        s.calls += dc;
        s.throttles += dt;
        s.settled += settled;
    }

    /// The seconds before `now` (complete), taken out.
    fn take_done(&mut self, now: i64) -> Vec<SecondStats> {
        let rest = self.open.split_off(&now);
        std::mem::replace(&mut self.open, rest)
            .into_values()
            .collect()
    }

    fn take_all(&mut self) -> Vec<SecondStats> {
        std::mem::take(&mut self.open).into_values().collect()
    }
}

/// `begin_attempts` for a batch; a user already settled (never expected: the reader skips them)
/// is left out rather than attempted twice. Returns which rows may go ahead.
fn begin(cp: &Checkpoint, run: RunId, rows: Vec<UserRow>) -> Result<Vec<bool>, CheckpointError> {
    match cp.begin_attempts(run, &rows) {
        Ok(()) => Ok(vec![true; rows.len()]),
        Err(CheckpointError::AlreadySettled { .. }) => rows
            .iter()
            .map(|r| match cp.begin_attempts(run, std::slice::from_ref(r)) {
                Ok(()) => Ok(true),
                Err(CheckpointError::AlreadySettled { outcome, .. }) => {
                    tracing::warn!(
                        "record {}: already {outcome}; not attempted again",
                        r.position.record
                    );
                    Ok(false)
                }
                Err(e) => Err(e),
            })
            .collect(),
        Err(e) => Err(e),
    }
}

impl Pipeline {
    pub fn snapshot(&self) -> Snapshot {
        self.ctx.snapshot()
    }

    /// A clonable handle for progress reporting while the pipeline runs.
    pub fn progress(&self) -> impl Fn() -> Snapshot + Send + Sync + 'static {
        let ctx = self.ctx.clone();
        move || ctx.snapshot()
    }

    /// Waits until every user handed in is settled and recorded (drop the [`Feeder`] first).
    pub async fn finish(self) -> Result<Snapshot, AdminCreateError> {
        let stage = self
            .stage
            .await
            .map_err(|e| AdminCreateError::Task(e.to_string()));
        for w in self.workers {
            w.await.map_err(|e| AdminCreateError::Task(e.to_string()))?;
        }
        self.recorder
            .await
            .map_err(|e| AdminCreateError::Task(e.to_string()))??;
        stage??;
        Ok(self.ctx.snapshot())
    }
}

fn failed(mut row: UserRow, e: &CallError) -> UserRow {
    row.outcome = Outcome::Failed;
    let reason = e.code.clone().unwrap_or_else(|| match e.class {
        retry::Verdict::Permanent => "call_failed".into(),
        _ => "retries_exhausted".into(),
    });
    row.with_reason(reason, e.to_string())
}

/// One user, start to end: the row to record.
async fn process(ctx: &Ctx, work: Work) -> UserRow {
    let u = &work.item.user;
    let row = base_row(u, &work.item.route);
    let svc = &ctx.service;
    if work.maybe_ours {
        match svc.get_user(&u.username).await {
            Ok(Some(remote)) => return existing(ctx, u, row, remote, true).await,
            Ok(None) => {}
            Err(e) => return failed(row, &e),
        }
    }
    match svc.create_user(&u.username, &u.attributes.to_map()).await {
        // Just created: nothing is linked to it yet.
        Ok(name) => {
            let dest = name.as_deref().unwrap_or(&u.username);
            created(ctx, u, row, Outcome::Created, None, dest, &[]).await
        }
        Err(e) if e.is("UsernameExistsException") => match svc.get_user(&u.username).await {
            Ok(Some(remote)) => existing(ctx, u, row, remote, e.maybe_applied).await,
            Ok(None) => failed(row, &e),
            Err(e) => failed(row, &e),
        },
        Err(e) if e.is("AliasExistsException") => {
            let mut row = failed(row, &e);
            row.message = Some(format!(
                "{e} (another user has this email or phone number as an alias; \
                 --force-alias-creation moves it to this user)"
            ));
            row
        }
        Err(e) => failed(row, &e),
    }
}

/// The mapped attributes whose value in the pool differs (names only: values are personal data).
fn differing<'a>(u: &'a MappedUser, remote: &RemoteUser) -> Vec<(&'a str, &'a str)> {
    u.attributes
        .iter()
        .filter(|(k, _)| !k.starts_with("cognito:"))
        .filter(|(k, v)| {
            // In email/phone-as-username pools the username is that attribute.
            remote.attributes.get(*k).map(String::as_str) != Some(*v)
        })
        .collect()
}

/// The user is in the pool already.
async fn existing(
    ctx: &Ctx,
    u: &MappedUser,
    row: UserRow,
    remote: RemoteUser,
    maybe_ours: bool,
) -> UserRow {
    let diff = differing(u, &remote);
    let names = || diff.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ");
    if maybe_ours && diff.is_empty() {
        // Our earlier attempt created it: finish the job.
        ctx.stats.resolved_in_doubt.fetch_add(1, Ordering::Relaxed);
        let linked = remote.linked();
        return created(
            ctx,
            u,
            row,
            Outcome::Created,
            None,
            &remote.username,
            &linked,
        )
        .await;
    }
    match ctx.service.config().on_existing {
        OnExisting::Skip => {
            let mut row = row;
            row.outcome = Outcome::Skipped;
            let msg = if diff.is_empty() {
                "exists, same".to_string()
            } else {
                format!("exists, differs: {}", names())
            };
            row.with_reason("exists", msg)
        }
        OnExisting::Update => {
            if diff.is_empty() {
                let msg = Some("exists, same".to_string());
                let linked = remote.linked();
                return created(
                    ctx,
                    u,
                    row,
                    Outcome::Skipped,
                    msg,
                    &remote.username,
                    &linked,
                )
                .await;
            }
            if let Err(e) = ctx.service.update_attributes(&u.username, &diff).await {
                return failed(row, &e);
            }
            let msg = Some(format!("exists, updated: {}", names()));
            let linked = remote.linked();
            created(
                ctx,
                u,
                row,
                Outcome::Updated,
                msg,
                &remote.username,
                &linked,
            )
            .await
        }
    }
}

/// The user is in the pool as we want it: apply its follow-ups and settle it as `outcome`.
/// `dest`: its username in the pool (links are made to it); `linked`: the identities the pool
/// already shows linked to it (not linked again).
async fn created(
    ctx: &Ctx,
    u: &MappedUser,
    mut row: UserRow,
    outcome: Outcome,
    message: Option<String>,
    dest: &str,
    linked: &[(String, String)],
) -> UserRow {
    row.outcome = outcome;
    if let Some(m) = message {
        row = row.with_reason("exists", m);
    }
    let links = owned_links(u);
    let (disable, groups) = (!u.enabled, &u.groups);
    match followups(ctx, &u.username, dest, disable, groups, &links, linked).await {
        Ok(()) => {
            row.followups_done = true;
            row
        }
        Err(msg) => {
            row.outcome = Outcome::Failed;
            row.with_reason(
                FOLLOWUP_FAILED,
                format!("{} in the pool, but: {msg}", outcome_word(outcome)),
            )
        }
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Imported => "imported",
        Outcome::Updated => "updated",
        Outcome::Skipped => "already",
        _ => "created",
    }
}

/// Links the user's federated identities that `linked` (what the pool shows linked to the user)
/// does not hold yet, one AdminLinkProviderForUser call each.
///
/// Exactly once: linking is not idempotent (Cognito refuses a source identity that is already
/// linked), so a user whose earlier follow-ups may have run (a resumed run, a retry, a user found
/// in the pool) is read first (AdminGetUser: its `identities` attribute) and only the missing
/// links are made; a user just created has none. Cognito's answers, per identity (API reference
/// of AdminLinkProviderForUser and the developer guide's "Linking federated users"):
/// - `AliasExistsException`, or `InvalidParameterException` about the source user: the federated
///   user already exists in the pool (it signed in before the migration, as `Google_…`) or the
///   identity is linked to another user. Linking only works for a federated user that has not
///   signed in yet; the message says how to clear it (delete that user, then `retry`).
/// - `LimitExceededException`: the user has five linked identities already (Cognito's maximum).
/// - `InvalidParameterException` also when the user has a value for an immutable custom
///   attribute ("If you have assigned the user any immutable custom attributes, the operation
///   won't succeed"): `plan` warns about such users beforehand.
///
/// A call retried after an answer was lost (`maybe_applied`) and then refused as above may have
/// linked the identity the first time: the user is read again and a link it shows is done.
///
/// Every other error follows the writer's one retry decision; what is left fails the user
/// `followup_failed` with the provider named, and `retry` links what is missing.
async fn link_all(
    ctx: &Ctx,
    username: &str,
    links: &[(String, String)],
    linked: &[(String, String)],
) -> Result<bool, String> {
    let mut any = false;
    for (provider, id) in links {
        if linked.iter().any(|(p, i)| p == provider && i == id) {
            continue;
        }
        any = true;
        match ctx.service.link_provider(username, provider, id).await {
            Ok(()) => crate::testing_hook::testing_hook_kill_at("linked"),
            // A retried call whose first attempt may have linked it (its answer was lost):
            // Cognito refuses the retry because the identity is linked, to this very user.
            Err(e)
                if (e.is("AliasExistsException") || e.is("InvalidParameterException"))
                    && e.maybe_applied
                    && linked_now(ctx, username, provider, id).await => {}
            Err(e) if e.is("AliasExistsException") || e.is("InvalidParameterException") => {
                return Err(format!(
                    "linking its {provider} identity failed ({e}): the federated user \
                     {provider}_{id} probably exists in the pool already (it signed in before \
                     the migration) or the identity is linked to another user; Cognito links only \
                     identities that have not signed in yet: delete that user, then `retry`. \
                     (Cognito also refuses users that have an immutable custom attribute: `plan` \
                     warns about those.)"
                ))
            }
            Err(e) if e.is("LimitExceededException") => {
                return Err(format!(
                    "linking its {provider} identity failed ({e}): Cognito links at most five \
                     identities to a user"
                ))
            }
            Err(e) => return Err(format!("linking its {provider} identity failed: {e}")),
        }
    }
    Ok(any)
}

/// Whether the pool shows the identity linked to the user now (AdminGetUser); a failed read is
/// "no".
async fn linked_now(ctx: &Ctx, username: &str, provider: &str, id: &str) -> bool {
    match ctx.service.get_user(username).await {
        Ok(Some(remote)) => remote
            .linked()
            .iter()
            .any(|(p, i)| p == provider && i == id),
        _ => false,
    }
}

/// Links, then groups, then disable (last, so that a failed link leaves the user as the legacy
/// system had it but not yet disabled). Groups and disable are idempotent; links are made once
/// (see [`link_all`]).
async fn followups(
    ctx: &Ctx,
    username: &str,
    dest: &str,
    disable: bool,
    groups: &[impl AsRef<str>],
    links: &[(String, String)],
    linked: &[(String, String)],
) -> Result<(), String> {
    let svc = &ctx.service;
    let mut any = link_all(ctx, dest, links, linked).await?;
    for g in groups {
        let g = g.as_ref();
        any = true;
        match svc.add_to_group(username, g).await {
            Ok(()) => {}
            Err(e) if e.is("ResourceNotFoundException") => {
                if !svc.config().create_groups {
                    return Err(format!(
                        "group {g:?} does not exist (--create-groups creates missing groups)"
                    ));
                }
                svc.create_group(g).await.map_err(|e| e.to_string())?;
                ctx.groups.lock().expect("groups").insert(g.to_string());
                svc.add_to_group(username, g)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    if disable {
        any = true;
        svc.disable_user(username)
            .await
            .map_err(|e| e.to_string())?;
    }
    if any {
        ctx.stats.followups_applied.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// What [`apply_followups`] did.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct FollowupSummary {
    pub applied: u64,
    pub failed: u64,
}

/// The outcome a user had before its follow-ups failed, from its route.
fn outcome_before_followups(u: &StoredUser) -> Outcome {
    if u.route.starts_with("import:") {
        Outcome::Imported
    } else {
        Outcome::Created
    }
}

/// Applies disable/groups for users already in the pool whose follow-ups are not done: imported
/// users after their import jobs, and (with `retry_failed`) users that failed with
/// [`FOLLOWUP_FAILED`]. Done ones are marked in batches; failures are recorded per user.
pub async fn apply_followups(
    service: Arc<AdminService>,
    cp: Arc<Checkpoint>,
    run: RunId,
    retry_failed: bool,
) -> Result<FollowupSummary, AdminCreateError> {
    let ctx = Arc::new(Ctx {
        service: service.clone(),
        stats: Arc::new(Stats::default()),
        started: Instant::now(),
        groups: Mutex::new(Default::default()),
    });
    let concurrency = service.config().concurrency.max(1);
    let mut summary = FollowupSummary::default();
    const PAGE: usize = 256;
    let mut after_failed = 0u64;
    loop {
        // Each round takes the first page still to do: done users leave the set, failed ones are
        // recorded failed (and, when retrying them, skipped by `after_failed`).
        let cp2 = cp.clone();
        let page: Vec<StoredUser> = tokio::task::spawn_blocking(move || {
            let mut v = Vec::new();
            for u in cp2.pending_followups(run) {
                v.push(u?);
                if v.len() == PAGE {
                    break;
                }
            }
            if retry_failed && v.len() < PAGE {
                for u in cp2.retryable_failures(run) {
                    let u = u?;
                    if u.record > after_failed && u.reason.as_deref() == Some(FOLLOWUP_FAILED) {
                        v.push(u);
                        if v.len() == PAGE {
                            break;
                        }
                    }
                }
            }
            Ok::<_, CheckpointError>(v)
        })
        .await
        .map_err(|e| AdminCreateError::Task(e.to_string()))??;
        if page.is_empty() {
            return Ok(summary);
        }
        let rows: Vec<UserRow> = futures::stream::iter(page)
            .map(|u| {
                let ctx = ctx.clone();
                async move {
                    let groups = u
                        .group_list()
                        .into_iter()
                        .map(str::to_string)
                        .collect::<Vec<_>>();
                    let links = u.link_list();
                    // The links an earlier attempt made (a crash, a retry) are in the pool.
                    // Links go to the user's username in the pool (a generated id in email- or
                    // phone-as-username pools), which AdminGetUser gives.
                    let linked = if links.is_empty() {
                        Ok((u.username.clone(), Vec::new()))
                    } else {
                        match ctx.service.get_user(&u.username).await {
                            Ok(Some(remote)) => Ok((remote.username.clone(), remote.linked())),
                            Ok(None) => Err("the user is not in the pool".to_string()),
                            Err(e) => Err(e.to_string()),
                        }
                    };
                    let r = match linked {
                        Ok((dest, linked)) => {
                            let disable = u.needs_disable;
                            followups(&ctx, &u.username, &dest, disable, &groups, &links, &linked)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    let was_failed = u.outcome == Outcome::Failed;
                    let outcome = if was_failed {
                        outcome_before_followups(&u)
                    } else {
                        u.outcome
                    };
                    let mut row =
                        UserRow::new(u.position(), u.username.clone(), u.route.clone(), outcome);
                    row.needs_disable = u.needs_disable;
                    row.groups = u.groups.clone();
                    row.links = u.links.clone();
                    match r {
                        Ok(()) => {
                            row.followups_done = true;
                            (row, true)
                        }
                        Err(msg) => {
                            row.outcome = Outcome::Failed;
                            let row = row.with_reason(
                                FOLLOWUP_FAILED,
                                format!("{} in the pool, but: {msg}", outcome_word(outcome)),
                            );
                            (row, false)
                        }
                    }
                }
            })
            .buffer_unordered(concurrency)
            .map(|(row, ok)| {
                if ok {
                    summary.applied += 1;
                } else {
                    summary.failed += 1;
                    after_failed = after_failed.max(row.position.record);
                }
                row
            })
            .collect()
            .await;
        let cp2 = cp.clone();
        tokio::task::spawn_blocking(move || cp2.record_batch(run, &rows))
            .await
            .map_err(|e| AdminCreateError::Task(e.to_string()))??;
    }
}

#[cfg(test)]
mod seconds_tests {
    use super::*;

    #[test]
    fn samples_add_counter_growth_to_their_second_and_only_past_seconds_are_taken() {
        // The limiter had counted 5 calls before the writer started: they are not this writer's.
        let mut s = Seconds::new(5, 1);
        s.sample(100, 5, 1, 0);
        s.sample(100, 9, 1, 1);
        s.sample(100, 12, 3, 1);
        s.sample(101, 14, 3, 1);
        s.sample(103, 14, 3, 0);
        let stats = |second, calls, throttles, settled| SecondStats {
            second,
            calls,
            throttles,
            settled,
        };
        assert_eq!(s.take_done(101), vec![stats(100, 7, 2, 2)]);
        assert_eq!(s.take_done(101), vec![], "taken once");
        s.sample(101, 15, 4, 1);
        assert_eq!(s.take_all(), vec![stats(101, 3, 1, 2)]);
        assert_eq!(s.take_all(), vec![]);
    }
}
