//! The Cognito calls of the user-changes writer, one per [`Action`], each behind its quota
//! category's [`AdaptiveLimiter`] and the writer's one retry decision ([`super::retry`]).
//!
//! [`ChangeService::perform`] waits for the category's limiter, sends, and on failure retries
//! (throttling slows the limiter down; transient failures back off with jitter) or gives up with a
//! [`CallError`]. A cancellation stops it before the next attempt (never in the middle of one).
//! Attribute values are sent, never logged: a debug line names the operation and the error code.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::AttributeType;
use aws_sdk_cognitoidentityprovider::Client;
use tokio::sync::watch;

use super::config::{RetryPolicy, UserChangesConfig};
use super::retry::{decide, maybe_applied, Backoff, Decision};
use super::Action;
use crate::sink::admin_create::limiter::{AdaptiveLimiter, Category};

/// The code of a [`CallError`] for a call given up because the apply was cancelled.
pub const INTERRUPTED: &str = "Interrupted";

/// A call that failed for good, with the writer's [`Decision`] on its last failure.
pub type CallError = crate::sink::admin_create::service::CallError<Decision>;

/// A user as the pool holds it, read by [`ChangeService::look_up`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolUser {
    /// Every attribute the pool returns, by name.
    pub attributes: std::collections::HashMap<String, String>,
    pub enabled: bool,
    /// Every group the user is in (read only when asked for).
    pub groups: Option<std::collections::BTreeSet<String>>,
}

/// The Cognito operation an action is, and its quota category.
pub fn operation(action: &Action) -> (&'static str, Category) {
    match action {
        Action::UpdateAttributes(_) => ("AdminUpdateUserAttributes", Category::UserUpdate),
        Action::DeleteAttributes(_) => ("AdminDeleteUserAttributes", Category::UserUpdate),
        Action::Disable => ("AdminDisableUser", Category::UserUpdate),
        Action::Enable => ("AdminEnableUser", Category::UserUpdate),
        Action::Delete => ("AdminDeleteUser", Category::UserUpdate),
        Action::AddToGroup(_) => ("AdminAddUserToGroup", Category::UserResourceUpdate),
        Action::RemoveFromGroup(_) => ("AdminRemoveUserFromGroup", Category::UserResourceUpdate),
    }
}

/// The Cognito side of the writer. Its client must not retry by itself
/// ([`crate::aws::Clients::cognito_without_sdk_retries`]).
pub struct ChangeService {
    client: Client,
    pool_id: String,
    pub update: AdaptiveLimiter,
    pub resource_update: AdaptiveLimiter,
    /// AdminGetUser of [`ChangeService::look_up`].
    pub read: AdaptiveLimiter,
    /// AdminListGroupsForUser of [`ChangeService::look_up`].
    pub resource_read: AdaptiveLimiter,
    policy: RetryPolicy,
    retries: AtomicU64,
}

/// Waits until `cancel` says true (forever if its sender is gone without saying so).
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl ChangeService {
    pub fn new(client: Client, pool_id: impl Into<String>, cfg: &UserChangesConfig) -> Self {
        Self::with_policy(client, pool_id, cfg, RetryPolicy::default())
    }

    pub(crate) fn with_policy(
        client: Client,
        pool_id: impl Into<String>,
        cfg: &UserChangesConfig,
        policy: RetryPolicy,
    ) -> Self {
        let f = policy.min_rate_fraction;
        ChangeService {
            client,
            pool_id: pool_id.into(),
            update: AdaptiveLimiter::new(Category::UserUpdate, cfg.update_rate, f),
            resource_update: AdaptiveLimiter::new(
                Category::UserResourceUpdate,
                cfg.resource_update_rate,
                f,
            ),
            read: AdaptiveLimiter::new(Category::UserRead, cfg.read_rate, f),
            resource_read: AdaptiveLimiter::new(
                Category::UserResourceRead,
                cfg.resource_read_rate,
                f,
            ),
            policy,
            retries: AtomicU64::new(0),
        }
    }

    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    /// Attempts repeated after a throttled or transient failure, all calls.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn limiter(&self, c: Category) -> &AdaptiveLimiter {
        match c {
            Category::UserResourceUpdate => &self.resource_update,
            Category::UserRead => &self.read,
            Category::UserResourceRead => &self.resource_read,
            _ => &self.update,
        }
    }

    /// One call with the writer's retry policy; gives up before the next attempt once `cancel`
    /// says true.
    async fn call<T, E, F, Fut>(
        &self,
        category: Category,
        operation: &'static str,
        group_call: bool,
        cancel: &watch::Receiver<bool>,
        mut f: F,
    ) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let limiter = self.limiter(category);
        let p = &self.policy;
        let mut backoff = Backoff::new(p.backoff_initial, p.backoff_max);
        let (mut transient, mut throttled) = (0u32, 0u32);
        let mut applied = false;
        let mut cancel = cancel.clone();
        let interrupted = |applied: bool| CallError {
            operation,
            code: Some(INTERRUPTED.into()),
            message: "cancelled before the call was (again) sent".into(),
            class: Decision::Permanent,
            maybe_applied: applied,
        };
        loop {
            let ticket = tokio::select! {
                biased;
                _ = cancelled(&mut cancel) => return Err(interrupted(applied)),
                t = limiter.acquire() => t,
            };
            let e = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            applied |= maybe_applied(&e);
            let decision = decide(&e, group_call);
            let (tries, max) = match decision {
                Decision::Throttled => {
                    limiter.on_throttle(&ticket);
                    (&mut throttled, p.max_throttled_attempts)
                }
                Decision::Transient => (&mut transient, p.max_attempts),
                Decision::Permanent | Decision::Fatal => {
                    return Err(CallError::from_sdk(operation, &e, decision, applied))
                }
            };
            *tries += 1;
            if *tries >= max {
                return Err(CallError::from_sdk(operation, &e, decision, applied));
            }
            tracing::debug!("{operation}: {}; retrying", e.code().unwrap_or("no answer"));
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                biased;
                _ = cancelled(&mut cancel) => return Err(interrupted(applied)),
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    /// What the pool holds for `username` (`None`: no such user): AdminGetUser (UserRead) and,
    /// with `groups`, every page of AdminListGroupsForUser (UserResourceRead), each call behind
    /// its category's limiter and the writer's retry decision. Used to settle changes left in
    /// doubt by an interruption without sending them twice; attribute values are compared by
    /// the caller, never logged.
    pub async fn look_up(
        &self,
        username: &str,
        groups: bool,
        cancel: &watch::Receiver<bool>,
    ) -> Result<Option<PoolUser>, CallError> {
        let pool = self.pool_id.as_str();
        let c = &self.client;
        let got = self
            .call(Category::UserRead, "AdminGetUser", false, cancel, || {
                c.admin_get_user()
                    .user_pool_id(pool)
                    .username(username)
                    .send()
            })
            .await;
        let got = match got {
            Ok(g) => g,
            Err(e) if e.is("UserNotFoundException") => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut user = PoolUser {
            attributes: got
                .user_attributes()
                .iter()
                .map(|a| (a.name().to_string(), a.value().unwrap_or("").to_string()))
                .collect(),
            enabled: got.enabled(),
            groups: None,
        };
        if groups {
            let mut names = std::collections::BTreeSet::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .call(
                        Category::UserResourceRead,
                        "AdminListGroupsForUser",
                        false,
                        cancel,
                        || {
                            c.admin_list_groups_for_user()
                                .user_pool_id(pool)
                                .username(username)
                                .limit(60)
                                .set_next_token(token.clone())
                                .send()
                        },
                    )
                    .await;
                let page = match page {
                    Ok(p) => p,
                    Err(e) if e.is("UserNotFoundException") => return Ok(None),
                    Err(e) => return Err(e),
                };
                names.extend(
                    page.groups()
                        .iter()
                        .filter_map(|g| g.group_name().map(str::to_string)),
                );
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            user.groups = Some(names);
        }
        Ok(Some(user))
    }

    /// The one Cognito call of `action` for `username`.
    pub async fn perform(
        &self,
        username: &str,
        action: &Action,
        cancel: &watch::Receiver<bool>,
    ) -> Result<(), CallError> {
        let (op, category) = operation(action);
        // A call that names a group: its ResourceNotFoundException may be the group's.
        let group_call = matches!(action, Action::AddToGroup(_) | Action::RemoveFromGroup(_));
        let pool = self.pool_id.as_str();
        let c = &self.client;
        // Every action is one request on the pool and the user, sent by the same call.
        macro_rules! send {
            ($request:expr) => {
                self.call(category, op, group_call, cancel, || {
                    $request.user_pool_id(pool).username(username).send()
                })
                .await
                .map(|_| ())
            };
        }
        match action {
            Action::UpdateAttributes(attrs) => {
                let attrs: Vec<AttributeType> = attrs
                    .iter()
                    .filter_map(|(k, v)| AttributeType::builder().name(k).value(v).build().ok())
                    .collect();
                send!(c
                    .admin_update_user_attributes()
                    .set_user_attributes(Some(attrs.clone())))
            }
            Action::DeleteAttributes(names) => send!(c
                .admin_delete_user_attributes()
                .set_user_attribute_names(Some(names.clone()))),
            Action::Disable => send!(c.admin_disable_user()),
            Action::Enable => send!(c.admin_enable_user()),
            Action::Delete => send!(c.admin_delete_user()),
            Action::AddToGroup(group) => send!(c.admin_add_user_to_group().group_name(group)),
            Action::RemoveFromGroup(group) => {
                send!(c.admin_remove_user_from_group().group_name(group))
            }
        }
    }
}
