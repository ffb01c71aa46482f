//! The one decision of what is worth retrying for the import-job writer.
//!
//! The SDK's own retries are off for this writer's Cognito client (see
//! [`crate::aws::Clients::cognito_without_sdk_retries`]), so this is the only layer that retries and
//! the two never multiply.

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};

/// How a failed call should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transient: throttling, 5xx, `InternalErrorException`, timeouts, dropped connections.
    Retry,
    /// Another import job is active in the account (`LimitExceededException`): wait, don't fail.
    WaitForActiveJob,
    /// Permanent: the request is wrong or not allowed.
    Fail,
}

/// Classifies an SDK error.
pub fn classify<E>(e: &SdkError<E, HttpResponse>) -> Verdict
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Verdict::Retry
        }
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match e.code() {
                Some(
                    "TooManyRequestsException" | "InternalErrorException" | "ThrottlingException",
                ) => Verdict::Retry,
                Some("LimitExceededException") => Verdict::WaitForActiveJob,
                _ if status >= 500 || status == 429 => Verdict::Retry,
                _ => Verdict::Fail,
            }
        }
        _ => Verdict::Fail,
    }
}

/// The shared backoff ([`crate::retry`]); this writer uses its default,
/// [`crate::retry::Jitter::Equal`]: a random point in [d/2, d] where d doubles each time up to `max`.
pub use crate::retry::Backoff;
