//! The log filter both binaries share, so that no log level shows a secret.
//!
//! Why: below INFO, the AWS SDK and smithy log request and response bodies and URLs (a
//! CreateUserImportJob answer holds the presigned upload URL with its `X-Amz-Signature`; a
//! Lambda event holds the user's password), and hyper, h2, reqwest and rustls log connections
//! and headers. These crates are capped at INFO whatever `RUST_LOG` or `-vvv` asks for; this
//! crate's own logs, which never hold a secret, follow the request.

use tracing_subscriber::filter::{LevelFilter, Targets};

/// Target prefixes capped at INFO. A [`Targets`] entry matches every target that starts with
/// it, so `aws_` covers `aws_config`, `aws_sigv4`, `aws_smithy_*`, `aws_sdk_*`, `hyper` covers
/// `hyper_util` and `lambda_runtime` covers `lambda_runtime_api_client`.
pub const CAPPED_TARGETS: [&str; 7] = [
    "aws_",
    "hyper",
    "h2",
    "reqwest",
    "rustls",
    "lambda_runtime",
    "tower",
];

/// Everything at any level, except [`CAPPED_TARGETS`] at INFO at most. Combine it with the
/// user's level filter (both must let an event through).
pub fn caps() -> Targets {
    CAPPED_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, target| t.with_target(*target, LevelFilter::INFO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn sdk_and_http_targets_stop_at_info_and_ours_do_not() {
        let caps = caps();
        for target in [
            "aws_smithy_runtime::client::orchestrator",
            "aws_smithy_runtime_api::client::interceptors",
            "aws_sdk_cognitoidentityprovider::operation",
            "aws_sigv4::http_request::sign",
            "aws_config::profile",
            "hyper_util::client::legacy::pool",
            "hyper::proto::h1::io",
            "h2::codec",
            "reqwest::connect",
            "rustls::client::hs",
            "lambda_runtime_api_client",
        ] {
            assert!(caps.would_enable(target, &Level::INFO), "{target}");
            assert!(!caps.would_enable(target, &Level::DEBUG), "{target}");
            assert!(!caps.would_enable(target, &Level::TRACE), "{target}");
        }
        assert!(caps.would_enable("cognito_migrate::sink::import_job", &Level::TRACE));
        assert!(caps.would_enable("cognito_migrate", &Level::DEBUG));
    }
}
