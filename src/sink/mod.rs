//! Writers: the ways users reach the pool. Each writer is split by role (`config`, `service`,
//! `retry`) and makes its own single decision of what is retryable.

pub mod admin_create;
pub mod import_job;
pub mod user_changes;

#[cfg(test)]
mod tests {
    use crate::retry::tests::{service_error, CODES};
    use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
    use aws_sdk_cognitoidentityprovider::error::SdkError;
    use aws_sdk_cognitoidentityprovider::operation::admin_create_user::AdminCreateUserError;

    use super::{admin_create, import_job};

    /// Whether the import-job writer tries the call again (waiting for another job counts).
    fn import_job_retries(e: &SdkError<AdminCreateUserError, HttpResponse>) -> bool {
        import_job::retry::classify(e) != import_job::retry::Verdict::Fail
    }

    #[test]
    fn both_writers_agree_on_every_code_and_status() {
        for status in [400, 429, 500, 503] {
            for code in CODES.map(Some).into_iter().chain([None]) {
                let e = service_error(code, status);
                let admin = admin_create::retry::classify(&e).is_retriable();
                if code == Some("LimitExceededException") {
                    // The import-job writer's own case: another job is active, so it waits.
                    assert_eq!(
                        import_job::retry::classify(&e),
                        import_job::retry::Verdict::WaitForActiveJob
                    );
                    continue;
                }
                assert_eq!(import_job_retries(&e), admin, "{code:?} HTTP {status}");
            }
        }
        for e in [
            SdkError::timeout_error("slow"),
            SdkError::<AdminCreateUserError, HttpResponse>::dispatch_failure(
                aws_sdk_cognitoidentityprovider::error::ConnectorError::io("reset".into()),
            ),
        ] {
            assert!(admin_create::retry::classify(&e).is_retriable());
            assert!(import_job_retries(&e));
        }
    }

    #[test]
    fn service_unavailable_and_internal_failure_are_retried_by_both_writers() {
        for code in ["ServiceUnavailable", "InternalFailure"] {
            let e = service_error(Some(code), 400);
            assert!(admin_create::retry::classify(&e).is_retriable(), "{code}");
            assert_eq!(
                import_job::retry::classify(&e),
                import_job::retry::Verdict::Retry,
                "{code}"
            );
        }
    }
}
