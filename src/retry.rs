//! The one classification of failed AWS calls and the one exponential backoff of every layer
//! that retries AWS calls itself: the AdminCreateUser writer, the import-job writer, the
//! `cognito` source, the CloudWatch Logs reader, and (backoff only) the `s3://` reader when it
//! reopens a download that broke off.
//!
//! Their clients have the SDK's own retries off
//! ([`crate::aws::Clients::cognito_without_sdk_retries`]), so each of them is the only layer that
//! retries. [`classify`] says what an error is (throttling, another transient failure, or a
//! permanent refusal) by its AWS error code and HTTP status, so that all callers agree on every
//! code; each caller keeps its single decision of what to do with it (the import-job writer waits
//! on `LimitExceededException`, for example). [`Backoff`] decides *how long* to wait before the
//! next attempt, so that the growth, the cap and the jitter are written once. The jitter is
//! chosen per use ([`Jitter`]).

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};

/// What a failed AWS call is, as far as retrying goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `TooManyRequestsException`, `ThrottlingException`, `RequestLimitExceeded` or HTTP 429:
    /// slow down, then retry.
    Throttled,
    /// `InternalErrorException`, `InternalFailure`, `ServiceUnavailable(Exception)`, any other
    /// 5xx, timeouts, dropped connections: retry with backoff.
    Transient,
    /// The request is wrong or not allowed (`InvalidParameterException`, …): do not retry.
    Permanent,
}

impl Verdict {
    pub fn is_retriable(self) -> bool {
        self != Verdict::Permanent
    }
}

/// Classifies an answer by its error code and HTTP status (`code`: the service's error code, if
/// any). The code decides where it is known; otherwise 429 is throttling and 5xx transient.
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> Verdict {
    match code {
        Some("TooManyRequestsException" | "ThrottlingException" | "RequestLimitExceeded") => {
            Verdict::Throttled
        }
        Some(
            "InternalErrorException"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "ServiceUnavailableException",
        ) => Verdict::Transient,
        _ => match status {
            Some(429) => Verdict::Throttled,
            Some(s) if s >= 500 => Verdict::Transient,
            _ => Verdict::Permanent,
        },
    }
}

/// Classifies an SDK error (of any AWS SDK): no answer at all (timeout, dispatch failure, a
/// cut-off response) is transient; a service answer goes by [`classify_code`]; anything else
/// (a request that could not be built) is permanent.
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

/// How the wait of one attempt is spread below its nominal delay d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly d. For a single reader whose calls a rate limiter already paces.
    None,
    /// A random time in [d/2, d] ("equal jitter"): many writers throttled together do not retry in
    /// lockstep, yet each waits at least half the nominal delay. The writers' policy.
    Equal,
}

/// Exponential backoff, capped: the n-th delay (n from 0) has the nominal value
/// d = initial · 2ⁿ, at most `max`, spread by the [`Jitter`].
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: Jitter,
    attempt: u32,
}

impl Backoff {
    /// A backoff with [`Jitter::Equal`] (change it with [`Backoff::with_jitter`]).
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            jitter: Jitter::Equal,
            attempt: 0,
        }
    }

    pub fn with_jitter(mut self, jitter: Jitter) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// How many delays were handed out since the start or the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts again from `initial` (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay; each call doubles the nominal delay up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let d = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt += 1;
        match self.jitter {
            Jitter::None => d,
            Jitter::Equal => d.mul_f64(0.5 + 0.5 * rand::random::<f64>()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_cognitoidentityprovider::error::ErrorMetadata;
    use aws_sdk_cognitoidentityprovider::operation::admin_create_user::AdminCreateUserError;

    /// A service answer with HTTP `status` and error `code` (none: an answer without a code).
    pub(crate) fn service_error(
        code: Option<&str>,
        status: u16,
    ) -> SdkError<AdminCreateUserError, HttpResponse> {
        let mut meta = ErrorMetadata::builder().message("test");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let raw = HttpResponse::new(status.try_into().unwrap(), "{}".into());
        SdkError::service_error(AdminCreateUserError::generic(meta.build()), raw)
    }

    /// Codes worth asking about: every one named anywhere, and a few that must not retry.
    pub(crate) const CODES: [&str; 14] = [
        "TooManyRequestsException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalErrorException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "LimitExceededException",
        "InvalidParameterException",
        "InvalidPasswordException",
        "UsernameExistsException",
        "NotAuthorizedException",
        "ResourceNotFoundException",
        "UserImportInProgressException",
    ];

    #[test]
    fn codes_and_statuses_are_classified() {
        for (code, status, want) in [
            (Some("TooManyRequestsException"), 400, Verdict::Throttled),
            (Some("ThrottlingException"), 400, Verdict::Throttled),
            (None, 429, Verdict::Throttled),
            (Some("InternalErrorException"), 500, Verdict::Transient),
            (Some("ServiceUnavailable"), 503, Verdict::Transient),
            (Some("InternalFailure"), 500, Verdict::Transient),
            (None, 503, Verdict::Transient),
            (Some("SomethingNew"), 502, Verdict::Transient),
            (Some("InvalidParameterException"), 400, Verdict::Permanent),
            (Some("LimitExceededException"), 400, Verdict::Permanent),
            (None, 400, Verdict::Permanent),
        ] {
            assert_eq!(classify_code(code, Some(status)), want, "{code:?} {status}");
            assert_eq!(
                classify(&service_error(code, status)),
                want,
                "{code:?} {status}"
            );
        }
        let timeout: SdkError<AdminCreateUserError, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(classify(&timeout), Verdict::Transient);
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn without_jitter_the_delay_doubles_exactly_up_to_the_cap() {
        let mut b = Backoff::new(100 * MS, 1000 * MS).with_jitter(Jitter::None);
        let d: Vec<Duration> = (0..7).map(|_| b.next_delay()).collect();
        assert_eq!(
            d,
            [100, 200, 400, 800, 1000, 1000, 1000].map(|n| n * MS),
            "growth then the cap"
        );
        assert_eq!(b.attempts(), 7);
    }

    #[test]
    fn equal_jitter_stays_within_half_and_whole_of_the_nominal_delay() {
        // Many draws: every delay lies in [d/2, d], and the draws do not all coincide.
        for _ in 0..200 {
            let mut b = Backoff::new(100 * MS, 1000 * MS);
            for nominal in [100, 200, 400, 800, 1000, 1000] {
                let d = b.next_delay();
                let nominal = nominal * MS;
                assert!(
                    d >= nominal / 2 && d <= nominal,
                    "{d:?} outside [{:?}, {nominal:?}]",
                    nominal / 2
                );
            }
        }
        let mut b = Backoff::new(1000 * MS, 1000 * MS);
        let draws: std::collections::BTreeSet<Duration> = (0..50).map(|_| b.next_delay()).collect();
        assert!(draws.len() > 1, "no jitter: {draws:?}");
    }

    #[test]
    fn many_attempts_neither_overflow_nor_pass_the_cap() {
        let mut b =
            Backoff::new(Duration::from_secs(1), Duration::from_secs(30)).with_jitter(Jitter::None);
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(30));
        }
        assert_eq!(b.next_delay(), Duration::from_secs(30));
        assert_eq!(b.attempts(), 101);
    }

    #[test]
    fn reset_starts_again_from_the_initial_delay() {
        let mut b = Backoff::new(50 * MS, Duration::from_secs(20)).with_jitter(Jitter::None);
        for _ in 0..5 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), 1600 * MS);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(), 50 * MS);
        assert_eq!(b.next_delay(), 100 * MS);
    }
}
