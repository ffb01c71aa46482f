//! The one decision of what is worth retrying for the import-job writer.
//!
//! The SDK's own retries are off for this writer's Cognito client (see
//! [`crate::aws::Clients::cognito_without_sdk_retries`]), so this is the only layer that retries and
//! the two never multiply.

use std::time::Duration;

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

/// Exponential backoff with full jitter, capped.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            attempt: 0,
        }
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay: a random point in [d/2, d] where d doubles each time up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.initial.saturating_mul(1u32 << self.attempt.min(16));
        let d = exp.min(self.max);
        self.attempt += 1;
        let jitter: f64 = rand::random::<f64>();
        d.mul_f64(0.5 + 0.5 * jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[3] >= Duration::from_millis(400) && d[3] <= Duration::from_millis(800));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(2)));
        assert!(d[7] >= Duration::from_secs(1));
        assert_eq!(b.attempts(), 8);
    }
}
