//! The trigger's init errors, and reporting them through the Lambda Runtime API.
//!
//! # Why it exists
//!
//! When a function cannot start, Lambda's Runtime API contract is that the runtime posts the
//! error to `/runtime/init/error` and exits; Lambda then shows that error type and message as the
//! reason the init failed, instead of an unexplained "Runtime exited". `lambda_runtime` does so
//! only for its SnapStart hooks, and everything the trigger sets up (configuration, the directory)
//! happens before `lambda_runtime::run`, so this module does it for those: an [`InitError`]
//! names the variable at fault, and [`report_init_error`] posts it.

use std::time::Duration;

use super::settings::SettingsError;
use super::OpenError;
use crate::aws::AwsError;
use crate::directory::DirectoryError;

/// The Runtime API variable Lambda sets for the runtime (`host:port`).
const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";

/// How long the report may take: it is the last thing the process does.
const REPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the trigger could not start. Messages name the variable and what is wrong (causes inline,
/// so that they print once), never a secret.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The environment is not a valid configuration (the message names the variable).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The local directory file cannot be opened (missing, not a directory file, another format
    /// version).
    #[error("COGNITO_MIGRATE_DIRECTORY: {0}")]
    Directory(DirectoryError),
    /// The `s3://` directory file cannot be downloaded, opened or verified.
    #[error("COGNITO_MIGRATE_DIRECTORY: {0}")]
    Download(OpenError),
    #[error("{0}: set AWS_REGION")]
    Aws(AwsError),
}

impl InitError {
    /// The error type reported to Lambda (its recommended `Category.Reason` form).
    pub fn error_type(&self) -> &'static str {
        match self {
            InitError::Settings(_) | InitError::Aws(_) => "Runtime.InvalidConfiguration",
            InitError::Directory(_) | InitError::Download(_) => {
                "Runtime.LegacyDirectoryUnavailable"
            }
        }
    }

    /// The body of the report: `{"errorType": …, "errorMessage": …}`.
    pub fn diagnostic(&self) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: self.error_type().to_string(),
            error_message: self.to_string(),
        }
    }
}

/// Why an init error could not be reported.
#[derive(Debug, thiserror::Error)]
#[error("cannot report the init error to the Lambda Runtime API: {0}")]
pub struct ReportError(String);

/// Posts `error` to `/2018-06-01/runtime/init/error` of the Runtime API at
/// `AWS_LAMBDA_RUNTIME_API` (`host:port`, or a URL whose path is kept as a base), with the `Lambda-Runtime-Function-Error-Type` header Lambda reads.
pub async fn report_init_error(error: &InitError) -> Result<(), ReportError> {
    let api = std::env::var(RUNTIME_API)
        .map_err(|_| ReportError(format!("{RUNTIME_API} is not set (not running in Lambda?)")))?;
    // Lambda sets host:port; local tools (cargo lambda) set a whole URL with a base path.
    let endpoint = if api.contains("://") {
        api
    } else {
        format!("http://{api}")
    };
    let endpoint = endpoint
        .parse()
        .map_err(|e| ReportError(format!("{RUNTIME_API} is not host:port or a URL: {e}")))?;
    let client = lambda_runtime_api_client::PooledClient::builder()
        .with_endpoint(endpoint)
        .build();
    let body = serde_json::to_vec(&error.diagnostic()).map_err(|e| ReportError(e.to_string()))?;
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", error.error_type())
        .header("Content-Type", "application/json")
        .body(lambda_runtime_api_client::body::Body::from(body))
        .map_err(|e| ReportError(e.to_string()))?;
    let response = tokio::time::timeout(REPORT_TIMEOUT, client.call(request))
        .await
        .map_err(|_| ReportError(format!("no answer within {REPORT_TIMEOUT:?}")))?
        .map_err(|e| ReportError(e.to_string()))?;
    if !response.status().is_success() {
        return Err(ReportError(format!("it answered {}", response.status())));
    }
    Ok(())
}
