//! The user-changes writer: applies changes to users already in the pool — attributes updated or
//! deleted, users disabled, enabled or deleted, group memberships added or removed — as fast as
//! each Cognito quota category allows and not one call faster. `sync` computes the changes; this
//! writer only performs them and says what became of each.
//!
//! - **One call per [`Change`]**, through [`service::ChangeService`]: UserUpdate calls
//!   (AdminUpdateUserAttributes, AdminDeleteUserAttributes, AdminDisableUser, AdminEnableUser,
//!   AdminDeleteUser) and UserResourceUpdate calls (AdminAddUserToGroup, AdminRemoveUserFromGroup)
//!   each behind their own adaptive limiter ([`crate::sink::admin_create::limiter`]), retried by
//!   the one decision in [`retry`] (the client's own SDK retries must be off).
//! - **Order.** The changes of one username are applied strictly in the order received (Enable,
//!   then UpdateAttributes, then AddToGroup); different users run concurrently, up to
//!   [`UserChangesConfig::concurrency`] at once. Receiving stops while that many are in flight, so
//!   the caller's channel is the memory bound.
//! - **Exactly once, with the caller.** [`ChangeObserver::started`] is called before a change's
//!   call is sent and [`ChangeObserver::finished`] once its outcome is known; every `started` gets
//!   exactly one `finished`, also when the apply is cancelled or stops on a fatal error. The caller
//!   records both, so a crash leaves at most the changes in flight in doubt.
//! - **Idempotent outcomes.** `Delete` of a user that is gone is [`ChangeOutcome::AlreadyDone`];
//!   any other action on a missing user is [`ChangeOutcome::UserNotFound`]; `RemoveFromGroup` from
//!   a group that does not exist is `AlreadyDone`. Cognito (and the emulator) answer success to
//!   `RemoveFromGroup` when the user is not a member, to `AddToGroup` when it is one, to
//!   `Disable`/`Enable` when it already is, and to `DeleteAttributes` of an attribute the user does
//!   not have: those are [`ChangeOutcome::Done`] (the writer cannot tell them apart, and the pool
//!   is as asked either way). An empty attribute list makes no call and is `Done`.
//! - **Failures.** A user's failure is [`ChangeOutcome::Failed`] with Cognito's error code, never
//!   an error of the whole apply; [`UserChangesError`] is only for what stops every call (the
//!   pool does not exist, credentials or permissions refused). Attribute values are never logged.
//! - **Cancellation.** When `cancel` turns true no new change is started; calls in flight finish,
//!   or give up before their next retry with [`ChangeOutcome::Failed`] code `Interrupted`.

pub mod config;
pub mod retry;
pub mod service;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

pub use config::UserChangesConfig;
use retry::Decision;
pub use service::PoolUser;
use service::{CallError, ChangeService};

/// One change to one user. `id` is the caller's (its record of the change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    pub username: String,
    pub action: Action,
}

/// What to do to the user; each is one Cognito call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// AdminUpdateUserAttributes with these (name, value) pairs.
    UpdateAttributes(Vec<(String, String)>),
    /// AdminDeleteUserAttributes with these names.
    DeleteAttributes(Vec<String>),
    /// AdminDisableUser.
    Disable,
    /// AdminEnableUser.
    Enable,
    /// AdminDeleteUser.
    Delete,
    /// AdminAddUserToGroup.
    AddToGroup(String),
    /// AdminRemoveUserFromGroup.
    RemoveFromGroup(String),
}

/// What became of a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The call succeeded.
    Done,
    /// The pool was already as asked and Cognito said so (a deleted user already gone, a group
    /// to leave that does not exist).
    AlreadyDone,
    /// There is no such user (`UserNotFoundException`), for any action but `Delete`.
    UserNotFound,
    /// The change failed for this user; `code` is Cognito's error code, or `retries_exhausted`
    /// / `call_failed` when there was none, or `Interrupted` when the apply was cancelled.
    Failed { code: String, message: String },
}

/// Told about each change before its call is sent and once its outcome is known.
pub trait ChangeObserver: Send + Sync {
    fn started(&self, id: i64);
    fn finished(&self, id: i64, outcome: &ChangeOutcome);
}

/// Calls made and throttled in one quota category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CategoryStats {
    /// Calls sent (retries included).
    pub calls: u64,
    /// Calls Cognito answered `TooManyRequestsException`.
    pub throttled: u64,
}

/// What an apply did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ApplyStats {
    /// Changes taken from the channel.
    pub received: u64,
    /// Changes whose call was started (each has an outcome below).
    pub started: u64,
    pub done: u64,
    pub already_done: u64,
    pub user_not_found: u64,
    pub failed: u64,
    /// Changes taken from the channel but never started (cancelled, or stopped by a fatal error).
    pub not_started: u64,
    pub user_update: CategoryStats,
    pub user_resource_update: CategoryStats,
    /// Attempts repeated after a throttled or transient failure.
    pub retries: u64,
    /// The apply stopped taking changes because it was cancelled.
    pub cancelled: bool,
    pub elapsed_ms: u64,
}

/// What stops every call, not just one user's.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum UserChangesError {
    #[error("user pool {pool_id} does not exist ({operation}: {message})")]
    PoolNotFound {
        pool_id: String,
        operation: &'static str,
        message: String,
    },
    #[error("{operation} was refused ({code}: {message}); check the credentials and the IAM permissions")]
    Refused {
        operation: &'static str,
        code: String,
        message: String,
    },
}

/// The outcome of a change from its call's result; `Err` for a fatal error.
fn outcome(action: &Action, r: Result<(), CallError>) -> Result<ChangeOutcome, CallError> {
    let e = match r {
        Ok(()) => return Ok(ChangeOutcome::Done),
        Err(e) if e.class == Decision::Fatal => return Err(e),
        Err(e) => e,
    };
    Ok(match action {
        Action::Delete if e.is("UserNotFoundException") => ChangeOutcome::AlreadyDone,
        _ if e.is("UserNotFoundException") => ChangeOutcome::UserNotFound,
        Action::RemoveFromGroup(_) if e.is("ResourceNotFoundException") => {
            ChangeOutcome::AlreadyDone
        }
        _ => ChangeOutcome::Failed {
            code: e.code.clone().unwrap_or_else(|| {
                if e.class.is_retriable() {
                    "retries_exhausted".into()
                } else {
                    "call_failed".into()
                }
            }),
            message: e.to_string(),
        },
    })
}

fn fatal_error(pool_id: &str, e: CallError) -> UserChangesError {
    if e.is("ResourceNotFoundException") {
        UserChangesError::PoolNotFound {
            pool_id: pool_id.to_string(),
            operation: e.operation,
            message: e.message,
        }
    } else {
        UserChangesError::Refused {
            operation: e.operation,
            code: e.code.unwrap_or_else(|| "request_not_built".into()),
            message: e.message,
        }
    }
}

/// One change, start to outcome.
async fn one(
    service: &ChangeService,
    change: &Change,
    cancel: &watch::Receiver<bool>,
) -> Result<ChangeOutcome, CallError> {
    match &change.action {
        Action::UpdateAttributes(a) if a.is_empty() => return Ok(ChangeOutcome::Done),
        Action::DeleteAttributes(n) if n.is_empty() => return Ok(ChangeOutcome::Done),
        _ => {}
    }
    let r = service
        .perform(&change.username, &change.action, cancel)
        .await;
    outcome(&change.action, r)
}

/// Applies the changes received on `changes` until the channel closes (every sender dropped) and
/// every change taken is settled, or until `cancel` turns true (then the calls in flight finish
/// and it returns with [`ApplyStats::cancelled`]). The SDK's own retries are switched off on a
/// copy of `client` (as [`crate::aws::Clients::cognito_without_sdk_retries`] does), so this
/// writer's retry decision is the only one whatever client is given.
pub async fn apply(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool_id: &str,
    config: &UserChangesConfig,
    changes: mpsc::Receiver<Change>,
    observer: &dyn ChangeObserver,
    cancel: watch::Receiver<bool>,
) -> Result<ApplyStats, UserChangesError> {
    let service = ChangeService::new(without_sdk_retries(client), pool_id, config);
    drive(&service, config.concurrency, changes, observer, cancel).await
}

fn without_sdk_retries(
    client: &aws_sdk_cognitoidentityprovider::Client,
) -> aws_sdk_cognitoidentityprovider::Client {
    aws_sdk_cognitoidentityprovider::Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(aws_sdk_cognitoidentityprovider::config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// Reads users back from the pool, to settle changes an interruption left in doubt (sent, their
/// outcome never recorded): AdminGetUser under the UserRead quota, AdminListGroupsForUser under
/// UserResourceRead, each with its own adaptive limiter ([`UserChangesConfig::read_rate`],
/// [`UserChangesConfig::resource_read_rate`]) and the writer's one retry decision.
pub struct Lookup {
    service: ChangeService,
}

impl Lookup {
    pub fn new(
        client: &aws_sdk_cognitoidentityprovider::Client,
        pool_id: &str,
        config: &UserChangesConfig,
    ) -> Lookup {
        Lookup {
            service: ChangeService::new(without_sdk_retries(client), pool_id, config),
        }
    }

    /// `Ok(Ok(Some(user)))`: what the pool holds (`groups` read too when asked);
    /// `Ok(Ok(None))`: no such user; `Ok(Err(why))`: this user could not be read (a per-user
    /// failure: the caller sends its changes again); `Err`: nothing can be read (the pool is
    /// gone, the credentials or permissions are refused).
    pub async fn user(
        &self,
        username: &str,
        groups: bool,
        cancel: &watch::Receiver<bool>,
    ) -> Result<Result<Option<PoolUser>, String>, UserChangesError> {
        match self.service.look_up(username, groups, cancel).await {
            Ok(u) => Ok(Ok(u)),
            Err(e) if e.class == Decision::Fatal => Err(fatal_error(self.service.pool_id(), e)),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Calls sent (AdminGetUser, AdminListGroupsForUser), retries included.
    pub fn calls(&self) -> (u64, u64) {
        (
            self.service.read.calls(),
            self.service.resource_read.calls(),
        )
    }
}

/// The driver of [`apply`] on a given service (tests give it a shorter retry policy).
pub(crate) async fn drive(
    service: &ChangeService,
    concurrency: usize,
    mut changes: mpsc::Receiver<Change>,
    observer: &dyn ChangeObserver,
    mut cancel: watch::Receiver<bool>,
) -> Result<ApplyStats, UserChangesError> {
    let t0 = Instant::now();
    let concurrency = concurrency.max(1);
    let mut stats = ApplyStats::default();
    let call_cancel = cancel.clone();
    let run = |c: Change| {
        observer.started(c.id);
        let cancel = &call_cancel;
        async move {
            let r = one(service, &c, cancel).await;
            (c, r)
        }
    };
    let mut in_flight = FuturesUnordered::new();
    // Users with a change in flight → their changes still to start, in order.
    let mut waiting: HashMap<String, VecDeque<Change>> = HashMap::new();
    let mut closed = false;
    let mut stop = *cancel.borrow_and_update();
    let mut cancel_alive = true;
    let mut fatal: Option<CallError> = None;
    loop {
        let can_take = !closed && !stop && fatal.is_none() && in_flight.len() < concurrency;
        if !can_take && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            r = cancel.changed(), if cancel_alive && !stop => match r {
                Ok(()) => stop = *cancel.borrow_and_update(),
                Err(_) => cancel_alive = false,
            },
            Some((change, result)) = in_flight.next(), if !in_flight.is_empty() => {
                let (change, result): (Change, Result<ChangeOutcome, CallError>) =
                    (change, result);
                let o = match result {
                    Ok(o) => o,
                    Err(e) => {
                        let o = ChangeOutcome::Failed {
                            code: e.code.clone().unwrap_or_else(|| "call_failed".into()),
                            message: e.to_string(),
                        };
                        fatal.get_or_insert(e);
                        o
                    }
                };
                let counter = match &o {
                    ChangeOutcome::Done => &mut stats.done,
                    ChangeOutcome::AlreadyDone => &mut stats.already_done,
                    ChangeOutcome::UserNotFound => &mut stats.user_not_found,
                    ChangeOutcome::Failed { .. } => &mut stats.failed,
                };
                *counter += 1;
                observer.finished(change.id, &o);
                let next = waiting.get_mut(&change.username).and_then(VecDeque::pop_front);
                match next {
                    Some(n) if !stop && fatal.is_none() => {
                        stats.started += 1;
                        in_flight.push(run(n));
                    }
                    Some(_) => {
                        let rest = waiting.remove(&change.username).map_or(0, |q| q.len());
                        stats.not_started += 1 + rest as u64;
                    }
                    None => {
                        waiting.remove(&change.username);
                    }
                }
            },
            msg = changes.recv(), if can_take => match msg {
                None => closed = true,
                Some(c) => {
                    stats.received += 1;
                    if let Some(q) = waiting.get_mut(&c.username) {
                        q.push_back(c);
                    } else {
                        waiting.insert(c.username.clone(), VecDeque::new());
                        stats.started += 1;
                        in_flight.push(run(c));
                    }
                }
            },
        }
    }
    stats.not_started += waiting.values().map(|q| q.len() as u64).sum::<u64>();
    stats.cancelled = stop;
    stats.user_update = CategoryStats {
        calls: service.update.calls(),
        throttled: service.update.throttled(),
    };
    stats.user_resource_update = CategoryStats {
        calls: service.resource_update.calls(),
        throttled: service.resource_update.throttled(),
    };
    stats.retries = service.retries();
    stats.elapsed_ms = t0.elapsed().as_millis() as u64;
    match fatal {
        Some(e) => Err(fatal_error(service.pool_id(), e)),
        None => Ok(stats),
    }
}

#[cfg(test)]
mod tests;
