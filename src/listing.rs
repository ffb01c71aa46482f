//! The pool's users, listed under the UserList quota: what `sync`'s full reconcile, the id map and
//! `progress` read from the pool.
//!
//! # Why it exists
//!
//! Three features need every user of the pool (username, `sub`, attributes, enabled, creation
//! date), and ListUsers is the only way: at most 60 users a page, and the UserList quota category
//! (ListUsers, ListUsersInGroup) allows 30 requests per second per account, not adjustable
//! (Cognito developer guide, "Quotas in Amazon Cognito"). Listing 1,000,000 users is at least
//! 16,667 pages, 9.3 minutes at the quota. One pagination chain cannot get there: each page needs
//! the previous page's token, so a chain makes one call per round trip (a page of 60 users takes
//! Cognito about 100–300 ms), 3–10 calls a second.
//!
//! # How
//!
//! [`Lister::users`] runs [`Partitions::BySubPrefix`] chains at once by default: one per first hex
//! digit of `sub` (`Filter: sub ^= "a"`). A `sub` is a UUID in lowercase hex, so the 16 prefixes
//! split the pool into disjoint parts that together hold every user; `sub` is one of the standard
//! attributes ListUsers can filter on, and `^=` is its "starts with" match (Cognito API reference,
//! ListUsers, `Filter`). Every call of every chain takes its slot from ONE [`AdaptiveLimiter`] at
//! the quota (98% of it, evenly spaced; slower after a `TooManyRequestsException`, see the
//! limiter), so the chains together stay under the quota whatever their number. A pool that
//! refuses the filter (`InvalidParameterException` on the first call) is listed in one chain,
//! with a warning. Users are sent into a bounded channel as each page arrives, so memory stays
//! bounded and the caller works while the listing goes on.
//!
//! Retries: a throttled call slows the limiter and is sent again; a transient error (5xx,
//! timeout, connection) is sent again after the shared backoff; after [`ListOptions::attempts`]
//! failed attempts of one call, or on any other error, the listing fails ([`ListError`]). The
//! client should be one without SDK retries (`Clients::cognito_without_sdk_retries`), so that
//! this module's decision is the only one. One classification of errors: [`crate::retry::classify`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::UserType;
use aws_sdk_cognitoidentityprovider::Client;
use tokio::sync::mpsc;

use crate::retry::{classify, Backoff, Verdict};
use crate::sink::admin_create::limiter::{AdaptiveLimiter, Category};

/// ListUsers' largest page (Cognito API reference, ListUsers `Limit`: 0–60).
pub const PAGE_SIZE: i32 = 60;

/// The UserList quota per account and Region, in requests per second (not adjustable).
pub const USER_LIST_QUOTA: f64 = 30.0;

/// One user of the pool, as ListUsers returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUser {
    /// The user's name in the pool (for a pool with email as username: a UUID Cognito chose).
    pub username: String,
    /// The `sub` attribute, the user's permanent id.
    pub sub: Option<String>,
    /// Every attribute ListUsers returned (`sub` included), in its order.
    pub attributes: Vec<(String, String)>,
    pub enabled: bool,
    /// `UserStatus`: CONFIRMED, RESET_REQUIRED, FORCE_CHANGE_PASSWORD, EXTERNAL_PROVIDER, …
    pub status: Option<String>,
    /// `UserCreateDate`, milliseconds since the Unix epoch.
    pub created_ms: Option<i64>,
    /// `UserLastModifiedDate`, milliseconds since the Unix epoch.
    pub modified_ms: Option<i64>,
}

impl PoolUser {
    /// The value of attribute `name`, if the user has it.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn from_sdk(user: UserType) -> PoolUser {
        let attributes: Vec<(String, String)> = user
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.name, a.value.unwrap_or_default()))
            .collect();
        let sub = attributes
            .iter()
            .find(|(n, _)| n == "sub")
            .map(|(_, v)| v.clone());
        PoolUser {
            username: user.username.unwrap_or_default(),
            sub,
            attributes,
            enabled: user.enabled,
            status: user.user_status.map(|s| s.as_str().to_string()),
            created_ms: user.user_create_date.and_then(|d| d.to_millis().ok()),
            modified_ms: user
                .user_last_modified_date
                .and_then(|d| d.to_millis().ok()),
        }
    }
}

/// How the pool is split into pagination chains that run at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitions {
    /// One chain, no filter.
    Single,
    /// Sixteen chains, `sub ^= "0"` … `sub ^= "f"`.
    BySubPrefix,
}

/// The settings of a listing.
#[derive(Clone, Debug)]
pub struct ListOptions {
    /// The UserList quota to pace at, in calls per second (default [`USER_LIST_QUOTA`]). The
    /// quota is per account: lower it when something else lists the same account's pools.
    pub rate: f64,
    pub partitions: Partitions,
    /// `AttributesToGet`; `None` returns every attribute. Cognito refuses a request for an
    /// attribute some listed user lacks (unless it is filterable), so leave it `None` unless the
    /// attributes are required ones.
    pub attributes: Option<Vec<String>>,
    /// Attempts per call before the listing fails (throttled attempts not counted).
    pub attempts: u32,
    /// The channel's capacity in users (back pressure on the chains).
    pub buffer: usize,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            rate: USER_LIST_QUOTA,
            partitions: Partitions::BySubPrefix,
            attributes: None,
            attempts: 6,
            buffer: 4 * PAGE_SIZE as usize,
        }
    }
}

/// What a listing did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ListStats {
    pub users: u64,
    /// Calls answered with a page.
    pub pages: u64,
    /// Calls sent (pages, throttled and failed attempts).
    pub calls: u64,
    pub throttled: u64,
    pub elapsed: Duration,
    /// Whether the pool refused the `sub` filter and was listed in one chain.
    pub fell_back_to_single: bool,
}

impl ListStats {
    /// Calls per second over the listing.
    pub fn calls_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.calls as f64 / s
        } else {
            0.0
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A call failed for good (or ran out of attempts).
    #[error(
        "{operation} on user pool {pool_id} failed after {attempts} attempt(s): {code}: {message}"
    )]
    Call {
        operation: &'static str,
        pool_id: String,
        attempts: u32,
        code: String,
        message: String,
    },
    /// The receiver of the users was dropped before the listing ended.
    #[error("the listing of user pool {pool_id} was stopped by its reader")]
    Closed { pool_id: String },
}

impl ListError {
    /// The AWS error code of a failed call (`None` when the reader stopped the listing).
    pub fn code(&self) -> Option<&str> {
        match self {
            ListError::Call { code, .. } => Some(code),
            ListError::Closed { .. } => None,
        }
    }
}

/// Lists one pool's users and groups under one limiter for the UserList quota.
pub struct Lister {
    client: Client,
    pool_id: String,
    options: ListOptions,
    limiter: Arc<AdaptiveLimiter>,
    pages: AtomicU64,
    users: AtomicU64,
}

/// One call's result: a page and the next token, or the error to decide on.
type Page = (Vec<UserType>, Option<String>);

impl Lister {
    /// A lister for `pool_id`. Give it a client without SDK retries.
    pub fn new(client: Client, pool_id: impl Into<String>, options: ListOptions) -> Lister {
        let limiter = Arc::new(AdaptiveLimiter::new(
            Category::UserList,
            options.rate.max(0.1),
            0.1,
        ));
        Lister {
            client,
            pool_id: pool_id.into(),
            options,
            limiter,
            pages: AtomicU64::new(0),
            users: AtomicU64::new(0),
        }
    }

    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    /// Sends every user of the pool into `tx`, each exactly once, in no particular order.
    pub async fn users(&self, tx: mpsc::Sender<PoolUser>) -> Result<ListStats, ListError> {
        let start = Instant::now();
        let calls_before = self.limiter.calls();
        let throttled_before = self.limiter.throttled();
        let mut fell_back = false;
        match self.options.partitions {
            Partitions::Single => self.chain(None, &tx).await?,
            Partitions::BySubPrefix => {
                // The first page of the first prefix tells whether the pool takes the filter.
                match self.page(Some("0"), None).await {
                    Err(ListError::Call { code, .. }) if code == "InvalidParameterException" => {
                        tracing::warn!(
                            pool_id = %self.pool_id,
                            "the pool refused ListUsers' `sub ^=` filter: listing in one chain, \
                             below the UserList quota"
                        );
                        fell_back = true;
                        self.chain(None, &tx).await?;
                    }
                    Err(e) => return Err(e),
                    Ok((first, next)) => {
                        let rest = async {
                            self.send_page(first, &tx).await?;
                            if let Some(token) = next {
                                self.chain_from(Some("0"), Some(token), &tx).await?;
                            }
                            Ok::<(), ListError>(())
                        };
                        let others = futures::future::try_join_all(
                            "123456789abcdef"
                                .chars()
                                .map(|c| {
                                    let tx = tx.clone();
                                    async move {
                                        let prefix = c.to_string();
                                        self.chain(Some(&prefix), &tx).await
                                    }
                                })
                                .collect::<Vec<_>>(),
                        );
                        futures::future::try_join(rest, others).await?;
                    }
                }
            }
        }
        Ok(ListStats {
            users: self.users.load(Ordering::Relaxed),
            pages: self.pages.load(Ordering::Relaxed),
            calls: self.limiter.calls() - calls_before,
            throttled: self.limiter.throttled() - throttled_before,
            elapsed: start.elapsed(),
            fell_back_to_single: fell_back,
        })
    }

    /// The usernames of the members of `group` (ListUsersInGroup, UserList quota).
    pub async fn group_members(&self, group: &str) -> Result<Vec<String>, ListError> {
        let mut members = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (users, next) = self
                .call("ListUsersInGroup", || {
                    let req = self
                        .client
                        .list_users_in_group()
                        .user_pool_id(&self.pool_id)
                        .group_name(group)
                        .limit(PAGE_SIZE)
                        .set_next_token(token.clone());
                    async move {
                        req.send()
                            .await
                            .map(|o| (o.users.unwrap_or_default(), o.next_token))
                    }
                })
                .await?;
            members.extend(users.into_iter().filter_map(|u| u.username));
            match next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(members),
            }
        }
    }

    /// The limiter's counters: calls sent and throttled so far.
    pub fn calls(&self) -> (u64, u64) {
        (self.limiter.calls(), self.limiter.throttled())
    }

    /// One chain: every page of the users whose `sub` starts with `prefix` (all users if `None`).
    async fn chain(
        &self,
        prefix: Option<&str>,
        tx: &mpsc::Sender<PoolUser>,
    ) -> Result<(), ListError> {
        self.chain_from(prefix, None, tx).await
    }

    async fn chain_from(
        &self,
        prefix: Option<&str>,
        mut token: Option<String>,
        tx: &mpsc::Sender<PoolUser>,
    ) -> Result<(), ListError> {
        loop {
            let (users, next) = self.page(prefix, token.take()).await?;
            self.send_page(users, tx).await?;
            match next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(()),
            }
        }
    }

    async fn send_page(
        &self,
        users: Vec<UserType>,
        tx: &mpsc::Sender<PoolUser>,
    ) -> Result<(), ListError> {
        self.pages.fetch_add(1, Ordering::Relaxed);
        for user in users {
            self.users.fetch_add(1, Ordering::Relaxed);
            tx.send(PoolUser::from_sdk(user))
                .await
                .map_err(|_| ListError::Closed {
                    pool_id: self.pool_id.clone(),
                })?;
        }
        Ok(())
    }

    async fn page(&self, prefix: Option<&str>, token: Option<String>) -> Result<Page, ListError> {
        let filter = prefix.map(|p| format!("sub ^= \"{p}\""));
        self.call("ListUsers", || {
            let req = self
                .client
                .list_users()
                .user_pool_id(&self.pool_id)
                .limit(PAGE_SIZE)
                .set_filter(filter.clone())
                .set_attributes_to_get(self.options.attributes.clone())
                .set_pagination_token(token.clone());
            async move {
                req.send()
                    .await
                    .map(|o| (o.users.unwrap_or_default(), o.pagination_token))
            }
        })
        .await
    }

    /// One call under the limiter, sent again while it is throttled or transiently failing.
    async fn call<T, E, F, Fut>(&self, operation: &'static str, make: F) -> Result<T, ListError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: std::future::Future<
            Output = Result<
                T,
                SdkError<E, aws_sdk_cognitoidentityprovider::config::http::HttpResponse>,
            >,
        >,
    {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let mut attempts = 0u32;
        loop {
            let ticket = self.limiter.acquire().await;
            let e = match make().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match classify(&e) {
                Verdict::Throttled => {
                    self.limiter.on_throttle(&ticket);
                    continue;
                }
                Verdict::Transient if attempts + 1 < self.options.attempts.max(1) => {
                    attempts += 1;
                    tracing::debug!(operation, code = ?e.code(), "transient error, sent again");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                _ => {
                    return Err(ListError::Call {
                        operation,
                        pool_id: self.pool_id.clone(),
                        attempts: attempts + 1,
                        code: e.code().unwrap_or("unknown").to_string(),
                        message: aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e)
                            .to_string(),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cognitoidentityprovider::primitives::DateTime;
    use aws_sdk_cognitoidentityprovider::types::{AttributeType, UserStatusType};

    #[test]
    fn a_pool_user_keeps_every_attribute_and_finds_its_sub() {
        let user = UserType::builder()
            .username("u1")
            .enabled(true)
            .user_status(UserStatusType::Confirmed)
            .user_create_date(DateTime::from_millis(1_700_000_000_123))
            .attributes(
                AttributeType::builder()
                    .name("email")
                    .value("a@example.com")
                    .build()
                    .unwrap(),
            )
            .attributes(
                AttributeType::builder()
                    .name("sub")
                    .value("0f-uuid")
                    .build()
                    .unwrap(),
            )
            .build();
        let u = PoolUser::from_sdk(user);
        assert_eq!(u.username, "u1");
        assert_eq!(u.sub.as_deref(), Some("0f-uuid"));
        assert_eq!(u.attribute("email"), Some("a@example.com"));
        assert_eq!(u.attributes.len(), 2);
        assert!(u.enabled);
        assert_eq!(u.status.as_deref(), Some("CONFIRMED"));
        assert_eq!(u.created_ms, Some(1_700_000_000_123));
        assert_eq!(u.modified_ms, None);
    }
}
