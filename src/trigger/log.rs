//! The trigger's one log line per invocation: a single JSON object, documented in
//! `docs/trigger.md` ("The log line"), so that CloudWatch Logs metric filters can count
//! migrations, declines by reason, directory failures and durations
//! (`scripts/trigger/template.yaml` creates them; `tests/it/deploy.rs` checks every
//! pattern against lines the real binary printed).
//!
//! Why a fixed schema of our own rather than the log crate's text: a metric filter matches fields
//! by name and compares numbers, which the `key=value` text of `tracing`'s formatter does not
//! allow; and every field is chosen here, so nothing from the event can slip into it. The line
//! holds the outcome, a reason code, the error type Cognito was answered, the trigger source, the
//! directory kind, the hash scheme, a detail for operators (a member name, cost-cap parameters or
//! the directory's error, never a value from the event), the duration, whether it was the first
//! invocation of the execution environment, and the user as a keyed digest ([`super::LogDigest`]):
//! never a username, password, hash or any other value of the event.
//!
//! It is emitted through `tracing` with the target [`INVOCATION_TARGET`] and the JSON as the
//! message; the binary's formatter ([`crate::logging::JsonLines`]) writes such events as the bare
//! message, so each is a line CloudWatch parses as JSON.

use serde::Serialize;

/// The `tracing` target of the invocation line.
pub const INVOCATION_TARGET: &str = "cognito_migrate::trigger::invocation";

/// The line's `event` member.
pub const INVOCATION_EVENT: &str = "cognito-migrate-trigger.invocation";

/// The line's `version` member: raised when a member changes meaning or goes away (adding one
/// does not raise it).
pub const INVOCATION_VERSION: u32 = 1;

/// Where users come from, for the log line (`directory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryKind {
    /// A directory file on local disk (e.g. a layer's `/opt/directory.db`).
    File,
    /// A directory file downloaded from S3 at cold start.
    S3,
    /// Another user pool.
    Pool,
    /// A directory of another kind (tests).
    Other,
}

impl DirectoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryKind::File => "file",
            DirectoryKind::S3 => "s3",
            DirectoryKind::Pool => "pool",
            DirectoryKind::Other => "other",
        }
    }
}

/// One invocation, as logged. Field order is the order in the line.
#[derive(Clone, Debug, Serialize)]
pub struct InvocationLine<'a> {
    /// Always [`INVOCATION_EVENT`].
    pub event: &'static str,
    /// Always [`INVOCATION_VERSION`].
    pub version: u32,
    /// `authentication`, `forgot_password` or `unknown`.
    pub trigger: &'a str,
    /// `migrated`, `declined` or `unavailable`.
    pub outcome: &'static str,
    /// `ok` when migrated, else a reason code (`wrong_password`, `unknown_user`, …,
    /// `directory_unavailable`).
    pub reason: &'a str,
    /// The error type answered to Cognito: `UserMigrationDeclined`,
    /// `LegacyDirectoryUnavailable`, or null when migrated.
    pub error_type: Option<&'static str>,
    /// [`DirectoryKind::as_str`].
    pub directory: &'static str,
    /// The hash scheme that verified the password, if one did.
    pub scheme: Option<&'a str>,
    /// For operators: the member at fault, the cost-cap parameters, the directory's error.
    pub detail: Option<&'a str>,
    /// Time in the handler, in milliseconds (three decimals).
    pub duration_ms: f64,
    /// The first invocation of this execution environment (its duration excludes the init,
    /// which Lambda reports as `Init Duration`).
    pub cold_start: bool,
    /// The user's keyed digest, or null for an event that had no readable user.
    pub user: Option<&'a str>,
}

impl InvocationLine<'_> {
    /// The line: one JSON object, no newline.
    pub fn to_json(&self) -> String {
        // Serializing these plain members cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The `event` member of the line written when the trigger cannot start.
pub const INIT_FAILED_EVENT: &str = "cognito-migrate-trigger.init_failed";

/// The line written (through [`INVOCATION_TARGET`], so bare) when the trigger cannot start: no
/// invocation is answered then (Lambda tries a new init at each invocation, so a line per
/// sign-in attempt), and without this line an `s3://` directory that cannot be downloaded would
/// leave the template's `LegacyDirectoryUnavailable` metric, and its alarm, silent.
#[derive(Clone, Debug, Serialize)]
pub struct InitFailedLine<'a> {
    /// Always [`INIT_FAILED_EVENT`].
    pub event: &'static str,
    /// Always [`INVOCATION_VERSION`].
    pub version: u32,
    /// The error type reported to Lambda: `Runtime.LegacyDirectoryUnavailable` (the directory
    /// file cannot be opened, downloaded or verified) or `Runtime.InvalidConfiguration`.
    pub error_type: &'a str,
    /// The error's message: the variable and what is wrong (a path, a bucket and key), never a
    /// secret.
    pub detail: &'a str,
}

impl InitFailedLine<'_> {
    /// The line: one JSON object, no newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Milliseconds with three decimals, as the line holds them.
pub fn millis(elapsed: std::time::Duration) -> f64 {
    (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
