//! The one decision of the user-changes writer about a failed call: retry it (throttling slows the
//! category's limiter down, other transient failures back off), give up on this user, or stop the
//! whole apply because no call can succeed.
//!
//! Built on the crate's shared classification ([`crate::retry::classify`]) so every writer agrees
//! on every code; the writer's Cognito client has the SDK's own retries off, so this is the only
//! layer that retries. What this writer adds is the *fatal* class: bad or expired credentials,
//! permissions IAM refuses, and a user pool that does not exist concern every user alike, so they
//! end the apply with [`super::UserChangesError`] instead of failing each user in turn.

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::SdkError;

/// The shared classification and backoff, used as they are.
pub use crate::retry::{classify, Backoff, Verdict};
/// Whether a failed attempt may nevertheless have taken effect (no answer, or a 5xx).
pub use crate::sink::admin_create::retry::maybe_applied;

/// Error codes no call of the apply can get past: the credentials or the caller's permissions.
pub const FATAL_CODES: [&str; 7] = [
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "IncompleteSignature",
    "ExpiredTokenException",
    "MissingAuthenticationTokenException",
    "AccessDeniedException",
];

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Throttled: slow the limiter down, back off, try again.
    Throttled,
    /// Another transient failure: back off, try again.
    Transient,
    /// This user's change failed (or has a definite answer such as `UserNotFoundException`).
    Permanent,
    /// Nothing can succeed: stop the apply.
    Fatal,
}

impl Decision {
    /// The writer's one `is_retriable` decision.
    pub fn is_retriable(self) -> bool {
        matches!(self, Decision::Throttled | Decision::Transient)
    }
}

/// `ResourceNotFoundException` about the pool itself ("User pool us-east-1_x does not exist."), as
/// opposed to a missing group ("Group not found.").
pub fn is_missing_pool(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("ResourceNotFoundException")
        && message.is_some_and(|m| m.starts_with("User pool ") && m.contains("does not exist"))
}

/// Decides on an answer by its code, message and HTTP status. `group_call`: the call names a
/// group, so `ResourceNotFoundException` may be the group's (a per-user answer) rather than the
/// pool's.
pub fn decide_code(
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    group_call: bool,
) -> Decision {
    if code.is_some_and(|c| FATAL_CODES.contains(&c)) {
        return Decision::Fatal;
    }
    if code == Some("ResourceNotFoundException") && (!group_call || is_missing_pool(code, message))
    {
        // Calls that name only the pool and a user answer a missing user with
        // UserNotFoundException; ResourceNotFoundException there is the pool.
        return Decision::Fatal;
    }
    match crate::retry::classify_code(code, status) {
        Verdict::Throttled => Decision::Throttled,
        Verdict::Transient => Decision::Transient,
        Verdict::Permanent => Decision::Permanent,
    }
}

/// Decides on an SDK error: a request that could not even be built is fatal (it is the client's
/// configuration, the same for every user); otherwise as [`classify`] and [`decide_code`] say.
pub fn decide<E>(e: &SdkError<E, HttpResponse>, group_call: bool) -> Decision
where
    E: aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata,
{
    use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
    match e {
        SdkError::ServiceError(se) => decide_code(
            e.code(),
            e.message(),
            Some(se.raw().status().as_u16()),
            group_call,
        ),
        SdkError::ConstructionFailure(_) => Decision::Fatal,
        _ => match classify(e) {
            Verdict::Throttled => Decision::Throttled,
            Verdict::Transient => Decision::Transient,
            Verdict::Permanent => Decision::Permanent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::tests::{service_error, CODES};

    #[test]
    fn retries_exactly_what_the_shared_classification_retries_except_fatal_codes() {
        for status in [400, 429, 500, 503] {
            for code in CODES.map(Some).into_iter().chain([None]) {
                let e = service_error(code, status);
                let mine = decide(&e, true);
                if code.is_some_and(|c| FATAL_CODES.contains(&c)) {
                    assert_eq!(mine, Decision::Fatal);
                    continue;
                }
                assert_eq!(
                    mine.is_retriable(),
                    classify(&e).is_retriable(),
                    "{code:?} HTTP {status}"
                );
                assert_eq!(
                    mine == Decision::Throttled,
                    classify(&e) == Verdict::Throttled,
                    "{code:?} HTTP {status}"
                );
            }
        }
    }

    #[test]
    fn credentials_permissions_and_a_missing_pool_are_fatal_a_missing_group_is_not() {
        for code in FATAL_CODES {
            assert_eq!(
                decide_code(Some(code), None, Some(400), false),
                Decision::Fatal
            );
        }
        let pool = Some("User pool us-east-1_abc does not exist.");
        let rnf = Some("ResourceNotFoundException");
        assert_eq!(decide_code(rnf, pool, Some(400), true), Decision::Fatal);
        assert_eq!(decide_code(rnf, pool, Some(400), false), Decision::Fatal);
        let group = Some("Group not found.");
        assert_eq!(
            decide_code(rnf, group, Some(400), true),
            Decision::Permanent
        );
        assert_eq!(decide_code(rnf, group, Some(400), false), Decision::Fatal);
        for code in [
            "UserNotFoundException",
            "InvalidParameterException",
            "NotAuthorizedException",
            "AliasExistsException",
        ] {
            assert_eq!(
                decide_code(Some(code), Some("x"), Some(400), false),
                Decision::Permanent,
                "{code}"
            );
        }
        assert_eq!(
            decide_code(Some("TooManyRequestsException"), None, Some(400), false),
            Decision::Throttled
        );
        assert_eq!(
            decide_code(None, None, Some(502), true),
            Decision::Transient
        );
    }
}
