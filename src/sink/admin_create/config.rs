//! Options of the AdminCreateUser writer: rates per Cognito quota category, concurrency, and what to
//! do with users that already exist, aliases, invitations and groups. Kept apart from the pipeline so
//! the CLI, the tests and the benchmark build the same thing.

use std::time::Duration;

/// Requests per second per Cognito quota category (per account and Region, shared with every other
/// caller). Defaults are AWS's documented default quotas; raise them to match a raised quota.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// UserCreation: AdminCreateUser. Default 50.
    pub user_creation: f64,
    /// UserUpdate: AdminUpdateUserAttributes, AdminDisableUser. Default 25.
    pub user_update: f64,
    /// UserResourceUpdate: AdminAddUserToGroup. Default 25.
    pub user_resource_update: f64,
    /// UserRead: AdminGetUser (comparing existing users, resolving calls in doubt). Default 120.
    pub user_read: f64,
    /// UserPoolResourceUpdate: CreateGroup (`--create-groups`). Default 15.
    pub pool_resource_update: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            user_creation: 50.0,
            user_update: 25.0,
            user_resource_update: 25.0,
            user_read: 120.0,
            pool_resource_update: 15.0,
        }
    }
}

/// What to do with a user that is already in the pool (`UsernameExistsException`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnExisting {
    /// Compare its attributes and record it as skipped ("exists, same" / "exists, differs: …").
    #[default]
    Skip,
    /// Apply the attributes that differ (AdminUpdateUserAttributes), disable and add groups as for
    /// a new user; recorded as updated.
    Update,
}

impl OnExisting {
    pub fn as_str(self) -> &'static str {
        match self {
            OnExisting::Skip => "skip",
            OnExisting::Update => "update",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AdminCreateConfig {
    pub rates: Rates,
    /// Calls in flight at once (writer tasks).
    pub concurrency: usize,
    pub on_existing: OnExisting,
    /// `ForceAliasCreation`: move an email/phone alias held by another user to the new user.
    pub force_alias_creation: bool,
    /// Let Cognito send its invitation (MessageAction unset) instead of `SUPPRESS`.
    pub invite: bool,
    /// Create groups that do not exist (CreateGroup) instead of failing the user's follow-up.
    pub create_groups: bool,
    /// Attempts per call for transient failures (timeouts, 5xx, dropped connections).
    pub max_attempts: u32,
    /// Attempts per call while throttled (the limiter slows down meanwhile).
    pub max_throttled_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Users read ahead of the writers (the memory bound of the pipeline).
    pub queue: usize,
    /// Users recorded as attempted in one fsynced transaction before their calls.
    pub attempt_batch: usize,
    /// Outcomes committed every this many rows or this delay, whichever first.
    pub outcome_batch_rows: usize,
    pub outcome_batch_delay: Duration,
    /// The limiter never goes below this fraction of its configured rate when slowing down.
    pub min_rate_fraction: f64,
}

impl Default for AdminCreateConfig {
    fn default() -> Self {
        AdminCreateConfig {
            rates: Rates::default(),
            concurrency: 16,
            on_existing: OnExisting::Skip,
            force_alias_creation: false,
            invite: false,
            create_groups: false,
            max_attempts: 10,
            max_throttled_attempts: 60,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            queue: 256,
            attempt_batch: 64,
            outcome_batch_rows: 500,
            outcome_batch_delay: Duration::from_millis(250),
            min_rate_fraction: 0.1,
        }
    }
}
