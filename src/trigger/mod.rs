//! The user-migration Lambda trigger: when a user Cognito does not know signs in with a password
//! (or asks for a forgotten one), find them in the legacy directory, check the password, and answer
//! with what Cognito needs to create them — keeping their password.
//!
//! # Why it exists
//!
//! Hashes Cognito's import jobs cannot take (Firebase's scrypt, phpass, SHA-crypt, ASP.NET
//! Identity, bcrypt above cost 12, PBKDF2 above 600,000 iterations, …) and users of another pool
//! can only keep their password by being migrated at their first sign-in. Cognito calls this
//! trigger for that; `cognito-migrate-trigger` (the binary) is a thin `main` around [`Handler`].
//!
//! # Behaviour
//!
//! * `UserMigration_Authentication`: the user is looked up by the name they typed — username, or
//!   email / phone number / preferred username where the pool signs in with them (case-insensitively
//!   as the pool compares) — and the password is verified with [`crate::password`] after the hash's
//!   parameters are checked against a [`CostCap`](crate::password::CostCap) (a hash that would take
//!   seconds is refused instead of timing the trigger out). Success answers the user's attributes
//!   ([`attributes`]), `finalUserStatus: CONFIRMED` and `messageAction: SUPPRESS`.
//! * `UserMigration_ForgotPassword`: no password; the user must exist, be enabled and have a
//!   verified email address or phone number (where Cognito sends the code). Answers the attributes
//!   and `messageAction: SUPPRESS`.
//! * Everything else — wrong password, unknown user, disabled user, no usable hash, a hash over the
//!   cost cap, no verified contact for a reset, an event of the wrong shape ([`event`]: checked
//!   before anything else, never echoed), an event from another user pool than the directory's —
//!   is one and the same error answer,
//!   [`TriggerError::Declined`]: the caller cannot tell which it was. An unknown user's password is
//!   still verified, against another user's hash, so that the answer takes as long. Cognito turns
//!   the error into `NotAuthorizedException` / `UserNotFoundException` for the client.
//! * Only an infrastructure failure (the directory cannot be read or failed its integrity check
//!   at cold start, the legacy pool cannot be reached or has not answered within
//!   [`DIRECTORY_DEADLINE`], inside Cognito's 5 s) answers [`TriggerError::Unavailable`].
//! * Failures before the first event (configuration, a directory that cannot be opened) are
//!   [`InitError`]s, reported through the Runtime API ([`report_init_error`]).
//!
//! Logs: one JSON line per invocation ([`log`]: the trigger source, the outcome, a reason code,
//! the directory kind, the hash scheme, the time taken, cold start, and the user as a keyed digest
//! ([`LogDigest`])) — never the username, the password or the hash.
//!
//! # Where users come from
//!
//! [`UserDirectory`] is the small interface the handler needs; two implementations exist:
//! [`FileDirectory`] (a directory file built by `cognito-migrate directory build`, from local disk
//! or downloaded once from S3, see [`crate::directory`]) and [`PoolDirectory`] (another Cognito user
//! pool, for pool-to-pool moves). Tests use their own.
//!
//! # `userAttributes.username`
//!
//! What the sources say (checked while writing this; quoted loosely):
//!
//! * AWS, *Migrate user Lambda trigger* (response parameters, `userAttributes`): the attributes
//!   Cognito stores for the new user — standard ones, custom ones with the `custom:` prefix, and a
//!   `username` that is required when the pool has alias attributes (email, phone number,
//!   preferred username) besides the username and the user signed in with an alias value.
//!   Otherwise (our reading: the page says nothing more) the user is created under the name they
//!   signed in with, the event's `userName`.
//! * AWS, `AdminCreateUser` (`Username`), the same rule for any user creation: a username can be
//!   given only where usernames are a sign-in attribute; a pool that signs in with email addresses
//!   or phone numbers only generates the username itself.
//! * What happens without it: in a pool with an email alias, a migration answered without a
//!   `username` for a user who typed their email fails with "Username cannot be of email format
//!   since user pool is configured for email alias" (a report on Stack Overflow, question
//!   71560661).
//! * cognito-local 5.3.0 (our end-to-end fake) names the migrated user from
//!   `userAttributes.username` and otherwise by a random UUID: right for alias sign-ins and for
//!   pools with email or phone as username; for a user who typed their username it differs from
//!   Cognito (which keeps the typed name). The handler does not answer a `username` there (AWS
//!   does not call for one), so the end-to-end test checks names only where the two agree.
//!
//! So the handler answers `username` — the legacy username — exactly when the user was found by
//! an alias (email, phone number, preferred username) in a pool whose usernames are not email
//! addresses or phone numbers, and never otherwise. [`FileDirectory`] knows the pool's sign-in
//! settings from the directory file; [`PoolDirectory`] is told the new pool's
//! (`COGNITO_MIGRATE_NEW_POOL_USERNAME_ATTRIBUTES`, default: as the old pool). See
//! [`LegacyAccount::username_attribute`]. This follows AWS's documentation; it has not been
//! checked against a real user pool from here (no AWS access), only against cognito-local.

pub mod attributes;
mod digest;
pub mod event;
mod file;
mod init;
pub mod log;
mod pool;
mod s3;
mod settings;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsMigrateUser, CognitoEventUserPoolsMigrateUserTriggerSource as Source,
};

pub use attributes::AttributeRules;
pub use digest::LogDigest;
pub use event::{parse_event, EventError, RawEvent};
pub use file::{CheckedDirectory, FileDirectory, OpenError, DAMAGED};
pub use init::{report_init_error, InitError, ReportError};
pub use log::{
    DirectoryKind, InitFailedLine, InvocationLine, INIT_FAILED_EVENT, INVOCATION_TARGET,
    INVOCATION_VERSION,
};
pub use pool::PoolDirectory;
pub use s3::{download, parse_s3_url, DownloadError};
pub use settings::{
    env, parse_cost_cap, DirectorySource, PoolSettings, SettingsError, TriggerSettings,
};

/// A legacy user, as the handler needs them.
#[derive(Clone, PartialEq, Eq)]
pub struct LegacyAccount {
    /// The user's name in the legacy directory (for logs it is digested, never printed).
    pub username: String,
    /// The `username` attribute to answer, if any: the legacy username when the user signed in
    /// with an alias (email, phone, preferred username) in a pool whose usernames are neither
    /// email addresses nor phone numbers; `None` otherwise. See the [module documentation](self).
    pub username_attribute: Option<String>,
    /// Attributes as the directory holds them; [`AttributeRules`] decides what is answered.
    pub attributes: BTreeMap<String, String>,
    pub enabled: bool,
    /// Group names (not part of the answer: Cognito's migration response cannot carry groups).
    pub groups: Vec<String>,
    /// The hash scheme that verified the password, for logs.
    pub scheme: Option<&'static str>,
}

impl std::fmt::Debug for LegacyAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyAccount")
            .field("enabled", &self.enabled)
            .field("attributes", &self.attributes.keys().collect::<Vec<_>>())
            .field("groups", &self.groups.len())
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// Why a directory did not accept a user. Only for logs: the caller sees [`TriggerError::Declined`]
/// whatever it is. Messages hold parameter names and numbers, never user data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    UnknownUser,
    WrongPassword,
    /// The user has no password hash (they can still reset their password).
    NoPassword,
    /// The stored hash cannot be read.
    UnreadableHash,
    /// Verifying would exceed the cost cap; the reason names the parameters.
    OverCostCap(String),
    /// The legacy pool refused for another reason: a code such as `temporary_password`.
    Other(&'static str),
}

impl Refusal {
    /// A stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownUser => "unknown_user",
            Refusal::WrongPassword => "wrong_password",
            Refusal::NoPassword => "no_password",
            Refusal::UnreadableHash => "unreadable_hash",
            Refusal::OverCostCap(_) => "over_cost_cap",
            Refusal::Other(code) => code,
        }
    }
}

/// The result of checking a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted(LegacyAccount),
    Refused(Refusal),
}

/// The directory could not be consulted (I/O, SQLite, the legacy pool unreachable or throttling).
/// The message is for logs and holds no user data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DirectoryUnavailable(pub String);

/// Where the trigger looks users up. Implementations must keep user data out of errors.
///
/// The methods are async because a directory may be remote ([`PoolDirectory`]); the file directory
/// answers synchronously inside them (a lookup takes microseconds and a verification is bounded by
/// the cost cap — Lambda sends one event at a time per execution environment, so nothing else is
/// waiting on the thread).
pub trait UserDirectory: Send + Sync {
    /// The user pool this directory was built for, if it is bound to one: the handler declines
    /// events from any other pool (`wrong_user_pool`). `None` (the default): no check —
    /// [`PoolDirectory`] reads the old pool and is not told the new one's id.
    fn pool_id(&self) -> Option<&str> {
        None
    }

    /// What kind of directory this is, for the log line (the binary says [`DirectoryKind::S3`]
    /// for a downloaded file with [`Handler::with_directory_kind`]).
    fn kind(&self) -> DirectoryKind {
        DirectoryKind::Other
    }

    /// Checks `password` for the user who signs in as `login`.
    fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> impl Future<Output = Result<Verdict, DirectoryUnavailable>> + Send;

    /// Finds the user who signs in as `login` (forgot-password flow: no password check).
    fn lookup(
        &self,
        login: &str,
    ) -> impl Future<Output = Result<Option<LegacyAccount>, DirectoryUnavailable>> + Send;
}

/// The trigger's error answer. Both variants say nothing about the user; see the
/// [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The user is not migrated (wrong password, unknown, disabled, …: deliberately the same).
    #[error("user migration declined")]
    Declined,
    /// The legacy directory could not be consulted.
    #[error("the legacy user directory is unavailable")]
    Unavailable,
}

impl TriggerError {
    pub fn error_type(self) -> &'static str {
        match self {
            TriggerError::Declined => "UserMigrationDeclined",
            TriggerError::Unavailable => "LegacyDirectoryUnavailable",
        }
    }
}

impl From<TriggerError> for lambda_runtime::Diagnostic {
    fn from(e: TriggerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// How long the handler waits for its directory by default: Cognito gives the whole invocation
/// 5 s. A remote directory ([`PoolDirectory`]) that has not answered by then is answered as
/// unavailable, with a log line, rather than left to Lambda's timeout; a local one works
/// synchronously and is bounded by the cost cap instead.
pub const DIRECTORY_DEADLINE: Duration = Duration::from_millis(4_500);

/// The user-migration handler over a [`UserDirectory`].
pub struct Handler<D> {
    directory: D,
    rules: AttributeRules,
    digest: LogDigest,
    deadline: Duration,
    kind: DirectoryKind,
    /// Set by the first invocation (the log line's `cold_start`).
    invoked: AtomicBool,
}

impl<D> std::fmt::Debug for Handler<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// What one invocation did, for the log line and for tests.
struct Outcome {
    result: Result<(), TriggerError>,
    reason: &'static str,
    detail: Option<String>,
    scheme: Option<&'static str>,
}

impl Outcome {
    fn migrated() -> Outcome {
        Outcome {
            result: Ok(()),
            reason: "ok",
            detail: None,
            scheme: None,
        }
    }

    fn declined(reason: &'static str) -> Outcome {
        Outcome {
            result: Err(TriggerError::Declined),
            reason,
            detail: None,
            scheme: None,
        }
    }
}

impl<D: UserDirectory> Handler<D> {
    pub fn new(directory: D, rules: AttributeRules, digest: LogDigest) -> Handler<D> {
        let kind = directory.kind();
        Handler {
            directory,
            rules,
            digest,
            deadline: DIRECTORY_DEADLINE,
            kind,
            invoked: AtomicBool::new(false),
        }
    }

    /// Another directory kind for the log line than the directory's own [`UserDirectory::kind`].
    pub fn with_directory_kind(mut self, kind: DirectoryKind) -> Handler<D> {
        self.kind = kind;
        self
    }

    /// Another deadline for the directory than [`DIRECTORY_DEADLINE`].
    pub fn with_deadline(mut self, deadline: Duration) -> Handler<D> {
        self.deadline = deadline;
        self
    }

    /// `work` on the directory, or [`DirectoryUnavailable`] when it takes longer than the deadline.
    async fn within_deadline<T>(
        &self,
        work: impl Future<Output = Result<T, DirectoryUnavailable>>,
    ) -> Result<T, DirectoryUnavailable> {
        match tokio::time::timeout(self.deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(DirectoryUnavailable(format!(
                "no answer within {} ms",
                self.deadline.as_millis()
            ))),
        }
    }

    pub fn directory(&self) -> &D {
        &self.directory
    }

    /// Answers one event as the Lambda runtime delivers it: its shape is checked first
    /// ([`parse_event`]); an event of the wrong shape is declined like any other "no", with a
    /// reason code and the member at fault in the log line, never a value from the event.
    pub async fn handle_raw(
        &self,
        raw: RawEvent,
    ) -> Result<CognitoEventUserPoolsMigrateUser, TriggerError> {
        let started = Instant::now();
        match parse_event(raw) {
            Ok(event) => self.handle(event).await,
            Err(e) => {
                let outcome = Outcome {
                    detail: Some(e.to_string()),
                    ..Outcome::declined(e.code())
                };
                self.log_outcome(None, "unknown", &outcome, started);
                Err(TriggerError::Declined)
            }
        }
    }

    /// Answers one `CognitoEventUserPoolsMigrateUser` event: the event back with its `response`
    /// filled in (and the password removed from its `request`), or the error answer.
    pub async fn handle(
        &self,
        mut event: CognitoEventUserPoolsMigrateUser,
    ) -> Result<CognitoEventUserPoolsMigrateUser, TriggerError> {
        let started = Instant::now();
        let header = &event.cognito_event_user_pools_header;
        let login = header.user_name.clone().unwrap_or_default();
        let source = header.trigger_source.clone();
        let right_pool = self
            .directory
            .pool_id()
            .is_none_or(|pool| header.user_pool_id.as_deref() == Some(pool));
        let password = event
            .cognito_event_user_pools_migrate_user_request
            .password
            .take();
        let user = self.digest.of(&login);
        let source_name = match source {
            Some(Source::Authentication) => "authentication",
            Some(Source::ForgotPassword) => "forgot_password",
            _ => "unknown",
        };
        let outcome = match source {
            _ if !right_pool => Outcome::declined("wrong_user_pool"),
            Some(Source::Authentication) => {
                self.authentication(&login, password.as_deref(), &mut event)
                    .await
            }
            Some(Source::ForgotPassword) => self.forgot_password(&login, &mut event).await,
            _ => Outcome::declined("unknown_trigger_source"),
        };
        drop(password);
        self.log_outcome(Some(&user), source_name, &outcome, started);
        outcome.result.map(|()| event)
    }

    /// The invocation's one log line ([`log`]): the user's digest, never a value from the event.
    /// Declines are logged at INFO (they are the normal "no"), an unavailable directory at ERROR.
    fn log_outcome(
        &self,
        user: Option<&str>,
        source_name: &str,
        outcome: &Outcome,
        started: Instant,
    ) {
        let (outcome_name, error_type) = match outcome.result {
            Ok(()) => ("migrated", None),
            Err(e @ TriggerError::Declined) => ("declined", Some(e.error_type())),
            Err(e @ TriggerError::Unavailable) => ("unavailable", Some(e.error_type())),
        };
        let line = InvocationLine {
            event: log::INVOCATION_EVENT,
            version: log::INVOCATION_VERSION,
            trigger: source_name,
            outcome: outcome_name,
            reason: outcome.reason,
            error_type,
            directory: self.kind.as_str(),
            scheme: outcome.scheme,
            detail: outcome.detail.as_deref(),
            duration_ms: log::millis(started.elapsed()),
            cold_start: !self.invoked.swap(true, Ordering::Relaxed),
            user,
        }
        .to_json();
        match outcome.result {
            Err(TriggerError::Unavailable) => {
                tracing::error!(target: INVOCATION_TARGET, "{line}")
            }
            _ => tracing::info!(target: INVOCATION_TARGET, "{line}"),
        }
    }

    async fn authentication(
        &self,
        login: &str,
        password: Option<&str>,
        event: &mut CognitoEventUserPoolsMigrateUser,
    ) -> Outcome {
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            return Outcome::declined("no_password_given");
        };
        if login.trim().is_empty() {
            return Outcome::declined("no_username_given");
        }
        let verdict = match self
            .within_deadline(self.directory.authenticate(login, password))
            .await
        {
            Ok(v) => v,
            Err(e) => return unavailable(e),
        };
        let account = match verdict {
            Verdict::Accepted(a) => a,
            Verdict::Refused(r) => {
                let detail = match &r {
                    Refusal::OverCostCap(why) => Some(why.clone()),
                    _ => None,
                };
                return Outcome {
                    result: Err(TriggerError::Declined),
                    reason: r.code(),
                    detail,
                    scheme: None,
                };
            }
        };
        if !account.enabled {
            return Outcome {
                scheme: account.scheme,
                ..Outcome::declined("disabled")
            };
        }
        let attributes = self.rules.answer(&account);
        answer(event, attributes, Some("CONFIRMED"));
        Outcome {
            scheme: account.scheme,
            ..Outcome::migrated()
        }
    }

    async fn forgot_password(
        &self,
        login: &str,
        event: &mut CognitoEventUserPoolsMigrateUser,
    ) -> Outcome {
        if login.trim().is_empty() {
            return Outcome::declined("no_username_given");
        }
        let account = match self.within_deadline(self.directory.lookup(login)).await {
            Ok(Some(a)) => a,
            Ok(None) => return Outcome::declined(Refusal::UnknownUser.code()),
            Err(e) => return unavailable(e),
        };
        if !account.enabled {
            return Outcome::declined("disabled");
        }
        let attributes = self.rules.answer(&account);
        if !attributes::has_verified_contact(&attributes) {
            return Outcome::declined("no_verified_contact");
        }
        // No finalUserStatus: Cognito makes the user RESET_REQUIRED and sends the reset code.
        answer(event, attributes, None);
        Outcome::migrated()
    }
}

/// Fills in the success answer: the attributes, `finalUserStatus`, and `messageAction: SUPPRESS`
/// (no welcome message: the user already has an account). `forceAliasCreation` stays false, so an
/// email or phone number another user of the new pool already has fails this migration instead of
/// moving the alias away from that user.
fn answer(
    event: &mut CognitoEventUserPoolsMigrateUser,
    attributes: BTreeMap<String, String>,
    final_user_status: Option<&str>,
) {
    let response = &mut event.cognito_event_user_pools_migrate_user_response;
    response.user_attributes = attributes.into_iter().collect();
    response.final_user_status = final_user_status.map(str::to_string);
    response.message_action = Some("SUPPRESS".to_string());
    response.desired_delivery_mediums = None;
    response.force_alias_creation = false;
}

fn unavailable(e: DirectoryUnavailable) -> Outcome {
    Outcome {
        result: Err(TriggerError::Unavailable),
        reason: "directory_unavailable",
        detail: Some(e.0),
        scheme: None,
    }
}
