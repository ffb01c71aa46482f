//! Reading the pool for the views: one paced ListUsers pass, or AdminGetUser per expected user,
//! whichever takes fewer seconds under Cognito's quotas ([`Strategy::choose`]).

use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::Client;
use futures::stream::{self, StreamExt};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use tokio::sync::mpsc;

use super::{Matched, Matcher, PoolEntry};
use crate::aws::Clients;
use crate::listing::{ListError, ListOptions, Lister, PoolUser};

/// AdminGetUser calls per second: under the UserRead quota (120 RPS per account and Region),
/// leaving room for the apps that share it.
pub const GET_RATE: u32 = 100;
/// ListUsers calls per second, for [`Strategy::choose`]'s estimate: the lister paces at 98% of the
/// UserList quota (30 RPS, not adjustable); 25 leaves room for throttles.
pub const LIST_RATE: u32 = 25;
/// Users per ListUsers page (Cognito's maximum).
pub const LIST_PAGE: u64 = crate::listing::PAGE_SIZE as u64;
/// AdminGetUser calls in flight at once.
const GET_CONCURRENCY: usize = 16;

/// How the pool is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// One ListUsers pass over the whole pool.
    List,
    /// AdminGetUser per expected user.
    Get,
}

impl Strategy {
    /// The cheaper way to look up `lookups` users in a pool of about `pool_users`: a ListUsers
    /// pass takes `pool_users / 60` pages at [`LIST_RATE`] pages a second, AdminGetUser one call
    /// per user at [`GET_RATE`]; so AdminGetUser wins when `lookups / 100 < pool_users / 1500`,
    /// i.e. when the users looked up are fewer than a fifteenth of the pool (a hundred users in a
    /// pool of a million: one second instead of eleven minutes). A whole run's id map is most of
    /// its pool, so it lists; a progress check of a few hundred trigger users in a large pool gets.
    pub fn choose(lookups: u64, pool_users: u64) -> Strategy {
        let pages = pool_users.div_ceil(LIST_PAGE).max(1);
        // seconds: lookups / GET_RATE vs pages / LIST_RATE, compared without division.
        if lookups * u64::from(LIST_RATE) < pages * u64::from(GET_RATE) {
            Strategy::Get
        } else {
            Strategy::List
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::List => "ListUsers",
            Strategy::Get => "AdminGetUser",
        }
    }
}

/// The pool could not be read. Messages name the operation and AWS's error, never user data.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    List(#[from] ListError),
    #[error("{operation} on {pool_id} failed: {message}")]
    Aws {
        operation: &'static str,
        pool_id: String,
        /// AWS's error code, if any (`ResourceNotFoundException`, `NotAuthorizedException`, …).
        code: Option<String>,
        message: String,
    },
}

impl ReadError {
    /// Whether the caller must fix something (no such pool, not allowed) rather than try again.
    pub fn is_configuration(&self) -> bool {
        let code = match self {
            ReadError::List(e) => e.code(),
            ReadError::Aws { code, .. } => code.as_deref(),
        };
        matches!(
            code,
            Some(
                "ResourceNotFoundException"
                    | "NotAuthorizedException"
                    | "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidParameterException"
            )
        )
    }
}

fn aws_error<E, R>(operation: &'static str, pool_id: &str, e: SdkError<E, R>) -> ReadError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    // AWS's code and message when it answered; the whole cause (a connection error) otherwise.
    let message = match (e.code(), e.message()) {
        (Some(code), Some(m)) => format!("{code}: {m}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(&e).to_string(),
    };
    ReadError::Aws {
        operation,
        pool_id: pool_id.to_string(),
        code: e.code().map(str::to_string),
        message,
    }
}

/// `EstimatedNumberOfUsers` of the pool (DescribeUserPool).
pub async fn estimated_users(client: &Client, pool_id: &str) -> Result<u64, ReadError> {
    let out = client
        .describe_user_pool()
        .user_pool_id(pool_id)
        .send()
        .await
        .map_err(|e| aws_error("DescribeUserPool", pool_id, e))?;
    Ok(out
        .user_pool()
        .map(|p| p.estimated_number_of_users().max(0) as u64)
        .unwrap_or(0))
}

fn ms(d: Option<&aws_sdk_cognitoidentityprovider::primitives::DateTime>) -> i64 {
    d.and_then(|d| d.to_millis().ok()).unwrap_or(0)
}

/// Reads the pool into `matched` with `strategy`.
pub async fn read_pool(
    clients: &Clients,
    pool_id: &str,
    matcher: &Matcher,
    matched: &mut Matched,
    strategy: Strategy,
) -> Result<(), ReadError> {
    match strategy {
        Strategy::Get => get_each(&clients.cognito, pool_id, matcher, matched).await,
        Strategy::List => list_all(clients, pool_id, matcher, matched).await,
    }
}

async fn get_each(
    client: &Client,
    pool_id: &str,
    matcher: &Matcher,
    matched: &mut Matched,
) -> Result<(), ReadError> {
    let limiter = RateLimiter::direct(Quota::per_second(
        NonZeroU32::new(GET_RATE).expect("non-zero"),
    ));
    let names: Vec<String> = matched.lookup_names().map(str::to_string).collect();
    let limiter = &limiter;
    let mut answers = stream::iter(names)
        .map(|name| async move {
            limiter.until_ready().await;
            let r = client
                .admin_get_user()
                .user_pool_id(pool_id)
                .username(&name)
                .send()
                .await;
            match r {
                Ok(out) => Ok(Some(PoolEntry::from_attributes(
                    out.username(),
                    out.user_attributes()
                        .iter()
                        .map(|a| (a.name(), a.value().unwrap_or_default())),
                    ms(out.user_create_date()),
                    out.user_status().map(|s| s.as_str()).unwrap_or_default(),
                ))),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_user_not_found_exception()) =>
                {
                    Ok(None)
                }
                Err(e) => Err(aws_error("AdminGetUser", pool_id, e)),
            }
        })
        .buffer_unordered(GET_CONCURRENCY);
    while let Some(answer) = answers.next().await {
        if let Some(user) = answer? {
            matched.offer(matcher, user);
        }
    }
    Ok(())
}

async fn list_all(
    clients: &Clients,
    pool_id: &str,
    matcher: &Matcher,
    matched: &mut Matched,
) -> Result<(), ReadError> {
    // The one ListUsers pager (sixteen `sub` prefix chains under one limiter at the quota); its
    // client has no SDK retries, so that the lister's decision is the only one.
    let options = ListOptions::default();
    let (tx, mut rx) = mpsc::channel(options.buffer);
    let lister = Lister::new(clients.cognito_without_sdk_retries(), pool_id, options);
    let consume = async {
        while let Some(u) = rx.recv().await {
            matched.offer(matcher, entry_of(u));
        }
    };
    let (listed, ()) = tokio::join!(lister.users(tx), consume);
    listed?;
    Ok(())
}

fn entry_of(u: PoolUser) -> PoolEntry {
    PoolEntry::from_attributes(
        &u.username,
        u.attributes.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        u.created_ms.unwrap_or(0),
        u.status.as_deref().unwrap_or_default(),
    )
}
