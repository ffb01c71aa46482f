//! The one decision of what is worth retrying for the import-job writer, on top of the crate's
//! shared classification ([`crate::retry`]).
//!
//! The SDK's own retries are off for this writer's Cognito client (see
//! [`crate::aws::Clients::cognito_without_sdk_retries`]), so this is the only layer that retries and
//! the two never multiply.

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};

/// How a failed call should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Throttling or another transient failure ([`crate::retry::Verdict::is_retriable`]).
    Retry,
    /// Another import job is active in the account (`LimitExceededException`): wait, don't fail.
    WaitForActiveJob,
    /// Permanent: the request is wrong or not allowed.
    Fail,
}

/// Classifies an SDK error: `LimitExceededException` (another job is active) waits; the rest goes
/// by the shared classification ([`crate::retry::classify`]), where whatever is retriable
/// (throttling or transient) is retried.
pub fn classify<E>(e: &SdkError<E, HttpResponse>) -> Verdict
where
    E: ProvideErrorMetadata,
{
    if matches!(e, SdkError::ServiceError(_)) && e.code() == Some("LimitExceededException") {
        return Verdict::WaitForActiveJob;
    }
    if crate::retry::classify(e).is_retriable() {
        Verdict::Retry
    } else {
        Verdict::Fail
    }
}

/// The shared backoff ([`crate::retry`]); this writer uses its default,
/// [`crate::retry::Jitter::Equal`]: a random point in [d/2, d] where d doubles each time up to `max`.
pub use crate::retry::Backoff;
