//! Reading the pool for the views: one paced ListUsers pass, or AdminGetUser per expected user,
//! whichever takes fewer seconds under Cognito's quotas ([`Strategy::choose`]).

use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::Client;
use futures::stream::{self, StreamExt};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;

use super::{Matched, Matcher, PoolEntry};

/// AdminGetUser calls per second: under the UserRead quota (120 RPS per account and Region),
/// leaving room for the apps that share it.
pub const GET_RATE: u32 = 100;
/// ListUsers calls per second: under the UserList quota (30 RPS, not adjustable).
pub const LIST_RATE: u32 = 25;
/// Users per ListUsers page (Cognito's maximum).
pub const LIST_PAGE: u64 = 60;
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
        let ReadError::Aws { code, .. } = self;
        matches!(
            code.as_deref(),
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
    client: &Client,
    pool_id: &str,
    matcher: &Matcher,
    matched: &mut Matched,
    strategy: Strategy,
) -> Result<(), ReadError> {
    match strategy {
        Strategy::Get => get_each(client, pool_id, matcher, matched).await,
        Strategy::List => list_all(client, pool_id, matcher, matched).await,
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
    client: &Client,
    pool_id: &str,
    matcher: &Matcher,
    matched: &mut Matched,
) -> Result<(), ReadError> {
    // Replaced by `crate::listing` at merge (the one ListUsers pager); until then a plain paced
    // sequential pass.
    let limiter = RateLimiter::direct(Quota::per_second(
        NonZeroU32::new(LIST_RATE).expect("non-zero"),
    ));
    let mut token: Option<String> = None;
    loop {
        limiter.until_ready().await;
        let out = client
            .list_users()
            .user_pool_id(pool_id)
            .limit(LIST_PAGE as i32)
            .set_pagination_token(token.take())
            .send()
            .await
            .map_err(|e| aws_error("ListUsers", pool_id, e))?;
        for u in out.users() {
            matched.offer(
                matcher,
                PoolEntry::from_attributes(
                    u.username().unwrap_or_default(),
                    u.attributes()
                        .iter()
                        .map(|a| (a.name(), a.value().unwrap_or_default())),
                    ms(u.user_create_date()),
                    u.user_status().map(|s| s.as_str()).unwrap_or_default(),
                ),
            );
        }
        match out.pagination_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(())
}
