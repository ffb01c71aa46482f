//! Another Cognito user pool as a source (`--format cognito`, LOCATION = its pool id).
//!
//! Some pool settings cannot be changed after a pool is created (sign-in with email or phone,
//! case sensitivity, required attributes…), so the way to change them is a new pool and a
//! pool-to-pool move. This reader lists the old pool's users with `ListUsers` (60 per page, the
//! maximum) and their group membership with `ListGroups` + `ListUsersInGroup`, and turns each user
//! into a [`LegacyUser`]: `username`, every attribute under its own name (`email`,
//! `email_verified`, `custom:plan`, `sub`…), `status` (`CONFIRMED`, `RESET_REQUIRED`…),
//! `enabled`, `user_create_date` and `user_last_modified_date` (epoch seconds), and the groups.
//!
//! Cognito never hands out password hashes, so these users carry no password: they are imported
//! without one (RESET_REQUIRED) or left to the migration trigger, whose legacy-pool lookup checks
//! the password against the old pool at first sign-in. Federated users (`EXTERNAL_PROVIDER`) are
//! rejected: they are re-created by their identity provider at their next sign-in.
//!
//! Quotas: `ListUsers` and `ListUsersInGroup` share the account's UserList quota (30 requests per
//! second by default), `ListGroups` is in UserPoolResourceRead (20). Calls are paced by a token
//! limiter below those numbers ([`CognitoOptions`]), and throttling, server errors and broken
//! connections are retried here with exponential backoff (on a client without SDK retries, so that
//! only one layer retries). Group membership is read first and kept in memory (one entry per
//! membership); users are then streamed page by page through a small bounded channel, so the
//! users themselves are never all in memory. A user added to a group while the read runs may be
//! missed; read from a pool that is not changing.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::operation::list_groups::ListGroupsOutput;
use aws_sdk_cognitoidentityprovider::operation::list_users::ListUsersOutput;
use aws_sdk_cognitoidentityprovider::operation::list_users_in_group::ListUsersInGroupOutput;
use aws_sdk_cognitoidentityprovider::types::UserType;
use aws_sdk_cognitoidentityprovider::Client;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;

use super::error::{Reason, RecordError, SourceError};
use super::Source;
use crate::record::{LegacyUser, Position};
use crate::retry::{Backoff, Jitter, Verdict};

/// The longest wait between two attempts of a call.
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Pacing and retries of the reads.
#[derive(Clone, Debug)]
pub struct CognitoOptions {
    /// ListUsers + ListUsersInGroup calls per second (the UserList quota is 30 by default; the
    /// default 25 leaves room for other callers in the account).
    pub list_rate: u32,
    /// ListGroups calls per second (UserPoolResourceRead, 20 by default). Default 10.
    pub groups_rate: u32,
    /// Users per page (1–60). Default 60.
    pub page_size: i32,
    /// Attempts per call before the read gives up. Default 10.
    pub max_attempts: u32,
    /// First backoff after a throttle or server error; doubles per attempt, at most 128 times
    /// this and at most 20 s.
    pub initial_backoff: Duration,
    /// Read group membership (ListGroups + ListUsersInGroup). Default true.
    pub groups: bool,
}

impl Default for CognitoOptions {
    fn default() -> Self {
        CognitoOptions {
            list_rate: 25,
            groups_rate: 10,
            page_size: 60,
            max_attempts: 10,
            initial_backoff: Duration::from_millis(250),
            groups: true,
        }
    }
}

/// A failed Cognito call, as the retry loop sees it.
struct Failure {
    retriable: bool,
    throttled: bool,
    message: String,
}

fn classify<E>(e: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    // A quota refusal of ListUsers counts as throttling here, beside the shared classification.
    let verdict = crate::retry::classify(e);
    let throttled = verdict == Verdict::Throttled || e.code() == Some("LimitExceededException");
    let retriable = throttled || verdict.is_retriable();
    Failure {
        retriable,
        throttled,
        message: DisplayErrorContext(e).to_string(),
    }
}

/// Paces and retries calls; counts what it had to retry.
struct Caller {
    client: Client,
    pool_id: String,
    list: DefaultDirectRateLimiter,
    groups: DefaultDirectRateLimiter,
    opts: CognitoOptions,
    throttled: u64,
    retried: u64,
}

#[derive(Clone, Copy)]
enum Limit {
    List,
    Groups,
}

impl Caller {
    fn new(client: Client, pool_id: &str, opts: &CognitoOptions) -> Caller {
        let per_second = |n: u32| Quota::per_second(NonZeroU32::new(n.max(1)).expect("max(1)"));
        Caller {
            client,
            pool_id: pool_id.to_string(),
            list: RateLimiter::direct(per_second(opts.list_rate)),
            groups: RateLimiter::direct(per_second(opts.groups_rate)),
            opts: opts.clone(),
            throttled: 0,
            retried: 0,
        }
    }

    async fn call<T, E, F, Fut>(&mut self, what: &str, limit: Limit, mut f: F) -> Result<T, String>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let first = self.opts.initial_backoff;
        // Doubling from the first delay, at most 128 times it and at most 20 s. No jitter: this
        // is one paced reader, not many writers retrying together.
        let mut backoff = Backoff::new(first, first.saturating_mul(128).min(MAX_BACKOFF))
            .with_jitter(Jitter::None);
        loop {
            match limit {
                Limit::List => self.list.until_ready().await,
                Limit::Groups => self.groups.until_ready().await,
            };
            let attempt = backoff.attempts() + 1;
            let failure = match f(self.client.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => classify(&e),
            };
            if !failure.retriable || attempt >= self.opts.max_attempts.max(1) {
                let tries = if attempt > 1 {
                    format!(" (after {attempt} attempts)")
                } else {
                    String::new()
                };
                return Err(format!(
                    "{what} on user pool {} failed{tries}: {}",
                    self.pool_id, failure.message
                ));
            }
            if failure.throttled {
                self.throttled += 1;
            }
            self.retried += 1;
            let delay = backoff.next_delay();
            tracing::debug!("{what}: {}; retrying in {delay:?}", failure.message);
            tokio::time::sleep(delay).await;
        }
    }

    /// One page of a paginated list call (paced and retried by [`Caller::call`]): its output and
    /// the next page's token, read by `next` (an empty token ends the list like none).
    /// `request` sends the call for a page token (`None`: the first page).
    async fn page<O, E, F, Fut>(
        &mut self,
        what: &str,
        limit: Limit,
        token: Option<String>,
        request: &F,
        next: fn(&O) -> Option<&str>,
    ) -> Result<(O, Option<String>), String>
    where
        F: Fn(Client, Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let out = self
            .call(what, limit, |c| request(c, token.clone()))
            .await?;
        let token = next(&out).filter(|t| !t.is_empty()).map(str::to_string);
        Ok((out, token))
    }

    /// Every page of a paginated list call, handed to `each` in order (see [`Caller::page`]).
    async fn pages<O, E, F, Fut>(
        &mut self,
        what: &str,
        limit: Limit,
        request: F,
        next: fn(&O) -> Option<&str>,
        mut each: impl FnMut(O),
    ) -> Result<(), String>
    where
        F: Fn(Client, Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut token = None;
        loop {
            let (out, next_token) = self.page(what, limit, token, &request, next).await?;
            each(out);
            token = next_token;
            if token.is_none() {
                return Ok(());
            }
        }
    }

    /// Every group's name, then for each user the indexes of its groups.
    async fn memberships(&mut self) -> Result<(Vec<String>, HashMap<String, Vec<u32>>), String> {
        let pool = self.pool_id.clone();
        let page = self.opts.page_size.clamp(1, 60);
        let mut names = Vec::new();
        self.pages(
            "ListGroups",
            Limit::Groups,
            |c, token| {
                c.list_groups()
                    .user_pool_id(pool.clone())
                    .limit(page)
                    .set_next_token(token)
                    .send()
            },
            ListGroupsOutput::next_token,
            |out| {
                names.extend(
                    out.groups()
                        .iter()
                        .filter_map(|g| g.group_name().map(str::to_string)),
                )
            },
        )
        .await?;
        let mut members: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, group) in names.iter().enumerate() {
            self.pages(
                "ListUsersInGroup",
                Limit::List,
                |c, token| {
                    c.list_users_in_group()
                        .user_pool_id(pool.clone())
                        .group_name(group.clone())
                        .limit(page)
                        .set_next_token(token)
                        .send()
                },
                ListUsersInGroupOutput::next_token,
                |out| {
                    for u in out.users() {
                        if let Some(name) = u.username() {
                            members.entry(name.to_string()).or_default().push(i as u32);
                        }
                    }
                },
            )
            .await?;
        }
        Ok((names, members))
    }
}

enum Msg {
    User(Box<Result<LegacyUser, RecordError>>),
    Warning(String),
}

/// Opens the pool `pool_id` as a source. Reads group membership now (so that a wrong pool id or
/// missing permission fails before anything else runs), then streams the users from a task on
/// the current Tokio runtime. `client` should not retry on its own (see
/// [`Clients::cognito_without_sdk_retries`](crate::aws::Clients::cognito_without_sdk_retries)).
pub async fn open(
    client: Client,
    pool_id: &str,
    opts: &CognitoOptions,
) -> Result<Box<dyn Source>, SourceError> {
    let location = format!("user pool {pool_id}");
    let mut caller = Caller::new(client, pool_id, opts);
    let (groups, members) = if opts.groups {
        caller
            .memberships()
            .await
            .map_err(|m| SourceError::io(&location, std::io::Error::other(m)))?
    } else {
        (Vec::new(), HashMap::new())
    };
    // Check the pool and the ListUsers permission up front, with the first page.
    let first = list_page(&mut caller, None)
        .await
        .map_err(|m| SourceError::io(&location, std::io::Error::other(m)))?;
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(pump(caller, first, groups, members, tx));
    Ok(Box::new(CognitoSource {
        rx,
        warnings: Vec::new(),
        done: false,
    }))
}

type Page = (Vec<UserType>, Option<String>);

async fn list_page(caller: &mut Caller, token: Option<String>) -> Result<Page, String> {
    let pool = caller.pool_id.clone();
    let page = caller.opts.page_size.clamp(1, 60);
    let request = |c: Client, token| {
        c.list_users()
            .user_pool_id(pool.clone())
            .limit(page)
            .set_pagination_token(token)
            .send()
    };
    let (out, next) = caller
        .page(
            "ListUsers",
            Limit::List,
            token,
            &request,
            ListUsersOutput::pagination_token,
        )
        .await?;
    Ok((out.users.unwrap_or_default(), next))
}

async fn pump(
    mut caller: Caller,
    first: Page,
    groups: Vec<String>,
    mut members: HashMap<String, Vec<u32>>,
    tx: mpsc::Sender<Msg>,
) {
    let mut record = 0u64;
    let mut federated = 0u64;
    let (mut users, mut token) = first;
    loop {
        for u in users.drain(..) {
            record += 1;
            let item = convert(&u, record, &groups, &mut members);
            if matches!(&item, Err(e) if e.field.as_deref() == Some("status")) {
                federated += 1;
            }
            if tx.send(Msg::User(Box::new(item))).await.is_err() {
                return; // the reader went away
            }
        }
        let Some(t) = token.take() else { break };
        match list_page(&mut caller, Some(t)).await {
            Ok((u, t)) => {
                users = u;
                token = t;
            }
            Err(message) => {
                let pos = Position {
                    record: record + 1,
                    line: 0,
                    byte_offset: 0,
                };
                let e = RecordError::new(
                    pos,
                    Reason::ReadError,
                    format!("the pool could not be read further: {message}"),
                )
                .fatal();
                let _ = tx.send(Msg::User(Box::new(Err(e)))).await;
                return;
            }
        }
    }
    if caller.throttled + caller.retried > 0 {
        let _ = tx
            .send(Msg::Warning(format!(
                "user pool {}: {} calls retried ({} throttled)",
                caller.pool_id, caller.retried, caller.throttled
            )))
            .await;
    }
    if federated > 0 {
        let _ = tx
            .send(Msg::Warning(format!(
                "{federated} federated (EXTERNAL_PROVIDER) users were not migrated: they are created again by their identity provider at their next sign-in"
            )))
            .await;
    }
    let orphans = members.len();
    if orphans > 0 {
        let _ = tx
            .send(Msg::Warning(format!(
                "{orphans} group members were not among the listed users (added or deleted while reading?)"
            )))
            .await;
    }
}

/// One listed user as a legacy record.
fn convert(
    u: &UserType,
    record: u64,
    groups: &[String],
    members: &mut HashMap<String, Vec<u32>>,
) -> Result<LegacyUser, RecordError> {
    let pos = Position {
        record,
        line: 0,
        byte_offset: 0,
    };
    let username = u
        .username()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| RecordError::missing(pos, "username"))?;
    let mut user = LegacyUser::new(pos);
    user.enabled = u.enabled();
    let status = u.user_status().map(|s| s.as_str()).unwrap_or_default();
    if let Some(list) = members.remove(username) {
        user.groups = list
            .into_iter()
            .filter_map(|i| groups.get(i as usize).cloned())
            .collect();
    }
    if status == "EXTERNAL_PROVIDER" {
        return Err(RecordError::new(
            pos,
            Reason::BadValue,
            "a federated user (EXTERNAL_PROVIDER): it is created again by its identity provider at its next sign-in, not migrated",
        )
        .with_field("status"));
    }
    let f = &mut user.fields;
    f.insert("username", username);
    f.insert("status", status);
    f.insert("enabled", u.enabled().to_string());
    if let Some(d) = u.user_create_date() {
        f.insert("user_create_date", d.secs().to_string());
    }
    if let Some(d) = u.user_last_modified_date() {
        f.insert("user_last_modified_date", d.secs().to_string());
    }
    for a in u.attributes() {
        f.insert(a.name(), a.value().unwrap_or_default());
    }
    if let Some(text) = u
        .attributes()
        .iter()
        .find(|a| a.name() == "identities")
        .and_then(|a| a.value())
    {
        user.identities = crate::mapping::providers::linked_identities(text)
            .map_err(|m| RecordError::new(pos, Reason::BadValue, m).with_field("identities"))?;
    }
    Ok(user)
}

/// The synchronous end: users as the task delivers them.
struct CognitoSource {
    rx: mpsc::Receiver<Msg>,
    warnings: Vec<String>,
    done: bool,
}

impl Source for CognitoSource {
    fn next_record(&mut self) -> Option<Result<LegacyUser, RecordError>> {
        while !self.done {
            match self.rx.blocking_recv() {
                Some(Msg::User(item)) => return Some(*item),
                Some(Msg::Warning(w)) => self.warnings.push(w),
                None => self.done = true,
            }
        }
        None
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cognitoidentityprovider::primitives::DateTime;
    use aws_sdk_cognitoidentityprovider::types::{AttributeType, UserStatusType};

    fn attr(name: &str, value: &str) -> AttributeType {
        AttributeType::builder()
            .name(name)
            .value(value)
            .build()
            .unwrap()
    }

    #[test]
    fn a_listed_user_becomes_a_record_and_federated_ones_are_rejected() {
        let groups = vec!["admins".to_string(), "beta".to_string()];
        let mut members = HashMap::from([("alice".to_string(), vec![1, 0])]);
        let u = UserType::builder()
            .username("alice")
            .enabled(false)
            .user_status(UserStatusType::Confirmed)
            .user_create_date(DateTime::from_secs(1_700_000_000))
            .attributes(attr("email", "Alice@Example.com"))
            .attributes(attr("custom:plan", "pro"))
            .build();
        let user = convert(&u, 7, &groups, &mut members).unwrap();
        assert_eq!(user.position.record, 7);
        assert_eq!(user.position.line, 0);
        assert_eq!(user.field("username"), Some("alice"));
        assert_eq!(user.field("status"), Some("CONFIRMED"));
        assert_eq!(user.field("email"), Some("Alice@Example.com"));
        assert_eq!(user.field("custom:plan"), Some("pro"));
        assert_eq!(user.field("user_create_date"), Some("1700000000"));
        assert!(!user.enabled);
        assert_eq!(user.groups, ["beta", "admins"]);
        assert!(members.is_empty(), "memberships are handed out once");

        let fed = UserType::builder()
            .username("Google_1234")
            .enabled(true)
            .user_status(UserStatusType::ExternalProvider)
            .build();
        let e = convert(&fed, 8, &groups, &mut members).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("status"));
        assert_eq!(e.reason, Reason::BadValue);
        assert!(!e.fatal);

        let nameless = UserType::builder().enabled(true).build();
        let e = convert(&nameless, 9, &groups, &mut members).unwrap_err();
        assert_eq!(e.reason, Reason::MissingField);
    }
}

#[cfg(test)]
mod identities_tests {
    use crate::mapping::providers::linked_identities;
    use crate::record::Identity;

    #[test]
    fn the_identities_attribute_becomes_the_users_identities() {
        // The shape Cognito gives a user linked to Google (developer guide).
        let text = r#"[{"userId":"109876543210","providerName":"Google","providerType":"Google","issuer":null,"primary":false,"dateCreated":1700000000000},{"userId":"acme|jo","providerName":"AcmeSAML","providerType":"SAML","issuer":"urn:acme","primary":false,"dateCreated":1700000000001}]"#;
        assert_eq!(
            linked_identities(text).unwrap(),
            vec![
                Identity::new("Google", "109876543210"),
                Identity::new("AcmeSAML", "acme|jo")
            ]
        );
        assert!(linked_identities("[]").unwrap().is_empty());
        assert!(linked_identities("{").is_err());
        assert!(linked_identities(r#"[{"userId":"1"}]"#).is_err());
    }
}
