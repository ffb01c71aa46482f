//! The one decision of what is worth retrying for the AdminCreateUser writer: the crate's shared
//! classification ([`crate::retry`]), used as it is.
//!
//! The writer's Cognito client has the SDK's own retries off
//! ([`crate::aws::Clients::cognito_without_sdk_retries`]), so this is the only layer that retries and
//! the two never multiply. Throttling is told apart from other transient failures because it also
//! slows the rate limiter down (see [`super::limiter`]).

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::SdkError;

/// The shared classification ([`crate::retry::classify`]): throttling also slows the rate
/// limiter down, other transient failures are retried with backoff, permanent ones fail the user.
/// This writer's one `is_retriable` decision is [`Verdict::is_retriable`].
pub use crate::retry::{classify, classify_code, Verdict};

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
