//! The one decision of what is worth retrying for the AdminCreateUser writer.
//!
//! The writer's Cognito client has the SDK's own retries off
//! ([`crate::aws::Clients::cognito_without_sdk_retries`]), so this is the only layer that retries and
//! the two never multiply. Throttling is told apart from other transient failures because it also
//! slows the rate limiter down (see [`super::limiter`]).

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};

/// How a failed call is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `TooManyRequestsException` / HTTP 429: slow down, then retry.
    Throttled,
    /// 5xx, `InternalErrorException`, timeouts, dropped connections: retry with backoff.
    Transient,
    /// The request is wrong or not allowed (`InvalidParameterException`, …): the user fails.
    Permanent,
}

impl Verdict {
    pub fn is_retriable(self) -> bool {
        self != Verdict::Permanent
    }
}

/// Classifies an error by its code and HTTP status (`code`: the service's error code, if any).
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> Verdict {
    match code {
        Some("TooManyRequestsException" | "ThrottlingException" | "RequestLimitExceeded") => {
            Verdict::Throttled
        }
        Some("InternalErrorException" | "ServiceUnavailable" | "InternalFailure") => {
            Verdict::Transient
        }
        _ => match status {
            Some(429) => Verdict::Throttled,
            Some(s) if s >= 500 => Verdict::Transient,
            _ => Verdict::Permanent,
        },
    }
}

/// Classifies an SDK error: no answer at all (timeout, dispatch failure, a cut-off response) is
/// transient; a service answer goes by its code and status.
pub fn classify<E>(e: &SdkError<E, HttpResponse>) -> Verdict
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Verdict::Transient
        }
        SdkError::ServiceError(se) => classify_code(e.code(), Some(se.raw().status().as_u16())),
        _ => Verdict::Permanent,
    }
}

/// Whether a failed call may nevertheless have taken effect (the request may have reached Cognito):
/// no answer, or a 5xx. A throttled or otherwise refused call did nothing.
pub fn maybe_applied<E>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => se.raw().status().as_u16() >= 500,
        _ => false,
    }
}

/// The shared backoff ([`crate::retry`]); this writer uses its default, [`crate::retry::Jitter::Equal`]
/// (attempt n waits a random time in [d/2, d] with d = initial · 2ⁿ ≤ max), so that many writers
/// throttled together do not retry in lockstep.
pub use crate::retry::Backoff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_5xx_and_internal_errors_retry_client_errors_do_not() {
        assert_eq!(
            classify_code(Some("TooManyRequestsException"), Some(400)),
            Verdict::Throttled
        );
        assert_eq!(classify_code(None, Some(429)), Verdict::Throttled);
        assert_eq!(
            classify_code(Some("InternalErrorException"), Some(500)),
            Verdict::Transient
        );
        assert_eq!(classify_code(None, Some(503)), Verdict::Transient);
        for code in [
            "InvalidParameterException",
            "InvalidPasswordException",
            "UsernameExistsException",
            "AliasExistsException",
            "NotAuthorizedException",
            "ResourceNotFoundException",
        ] {
            assert_eq!(
                classify_code(Some(code), Some(400)),
                Verdict::Permanent,
                "{code}"
            );
            assert!(!classify_code(Some(code), Some(400)).is_retriable());
        }
    }
}
