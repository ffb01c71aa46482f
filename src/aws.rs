//! AWS clients, built once per process from the standard `aws-config` chain.
//!
//! Credentials, profiles, SSO and region come from the usual places (environment, `~/.aws`,
//! `--profile`, `--region`). Endpoints can be overridden for local emulators either with the standard
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables or with `--endpoint-url`; when any
//! override is in force S3 is addressed path-style, which is what emulators serve. Retries are
//! configured explicitly: the SDK's standard retry mode for ordinary calls, and a client without SDK
//! retries for writers that decide retries themselves (so that two layers never multiply).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where and as whom to talk to AWS. Resolved once, before any work.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Overrides every service's endpoint (for emulators such as `scripts/emulator`).
    pub endpoint_url: Option<String>,
    /// Attempts per call made by the SDK's own retry layer (1 disables it). Default 4.
    pub max_attempts: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("no AWS region is configured")]
    NoRegion,
}

impl AwsError {
    pub fn hint(&self) -> &'static str {
        match self {
            AwsError::NoRegion => {
                "pass --region, set AWS_REGION, or set a region in your AWS profile"
            }
        }
    }
}

/// The clients every command shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Clients {
    pub sdk: SdkConfig,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub s3: aws_sdk_s3::Client,
    /// CloudWatch Logs: import-job results (`run --fetch-job-logs`).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    endpoint_overridden: bool,
}

const ENDPOINT_VARS: [&str; 4] = [
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
    "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
];

impl Clients {
    /// Loads the shared configuration and builds the clients.
    pub async fn load(opts: &AwsOptions) -> Result<Clients, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(opts.max_attempts.unwrap_or(4).max(1))
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(region) = &opts.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &opts.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(AwsError::NoRegion);
        }
        let endpoint_overridden = opts.endpoint_url.is_some()
            || ENDPOINT_VARS
                .iter()
                .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        Ok(Clients::from_sdk_config(sdk, endpoint_overridden))
    }

    /// Builds the clients from an already loaded configuration.
    pub fn from_sdk_config(sdk: SdkConfig, endpoint_overridden: bool) -> Clients {
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
        let s3_conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(endpoint_overridden)
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
            cognito,
            sdk,
            endpoint_overridden,
        }
    }

    /// A Cognito client whose SDK layer never retries: for writers whose own retry policy (one
    /// `is_retriable` decision, adaptive rate) must be the only one.
    pub fn cognito_without_sdk_retries(&self) -> aws_sdk_cognitoidentityprovider::Client {
        let conf = aws_sdk_cognitoidentityprovider::config::Builder::from(&self.sdk)
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_cognitoidentityprovider::Client::from_conf(conf)
    }

    /// Whether an endpoint override (flag or environment) is in force.
    pub fn endpoint_overridden(&self) -> bool {
        self.endpoint_overridden
    }

    pub fn region(&self) -> Option<&str> {
        self.sdk.region().map(|r| r.as_ref())
    }
}
