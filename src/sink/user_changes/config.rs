//! Options of the user-changes writer: the rate of each Cognito quota category it uses and how many
//! users it works on at once, plus the retry policy it applies to every call. Kept apart from the
//! driver so the sync engine, the tests and the benchmark build the same thing.

use std::time::Duration;

/// Requests per second per quota category and users worked on at once. The defaults are AWS's
/// documented default quotas (per account and Region, shared with every other caller); lower them
/// to leave room for other callers.
#[derive(Clone, Debug, PartialEq)]
pub struct UserChangesConfig {
    /// UserUpdate: AdminUpdateUserAttributes, AdminDeleteUserAttributes, AdminDisableUser,
    /// AdminEnableUser, AdminDeleteUser. Default 25.
    pub update_rate: f64,
    /// UserResourceUpdate: AdminAddUserToGroup, AdminRemoveUserFromGroup. Default 25.
    pub resource_update_rate: f64,
    /// Users whose changes are in flight at once (one call per user at a time). Default 16.
    pub concurrency: usize,
    /// UserRead: AdminGetUser, to look up users whose changes were in doubt after an
    /// interruption ([`super::ChangeService::look_up`]). Default 120.
    pub read_rate: f64,
    /// UserResourceRead: AdminListGroupsForUser, the same lookups' group memberships. Default 50.
    pub resource_read_rate: f64,
}

impl Default for UserChangesConfig {
    fn default() -> Self {
        UserChangesConfig {
            update_rate: 25.0,
            resource_update_rate: 25.0,
            concurrency: 16,
            read_rate: 120.0,
            resource_read_rate: 50.0,
        }
    }
}

/// How a call is retried; the same numbers as the AdminCreateUser writer's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Attempts per call for transient failures (timeouts, 5xx, dropped connections).
    pub max_attempts: u32,
    /// Attempts per call while throttled (the limiter slows down meanwhile).
    pub max_throttled_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// The limiter never goes below this fraction of its configured rate when slowing down.
    pub min_rate_fraction: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_throttled_attempts: 60,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            min_rate_fraction: 0.1,
        }
    }
}
