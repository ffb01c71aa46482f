//! The log filter both binaries share, so that no log level shows a secret.
//!
//! Why: below INFO, the AWS SDK and smithy log request and response bodies and URLs (a
//! CreateUserImportJob answer holds the presigned upload URL with its `X-Amz-Signature`; a
//! Lambda event holds the user's password), and hyper, h2, reqwest and rustls log connections
//! and headers. These crates are capped at INFO whatever `RUST_LOG` or `-vvv` asks for; this
//! crate's own logs, which never hold a secret, follow the request.
//!
//! It also decides whether log lines carry ANSI colour. Logs are often written to a file or a
//! pipe (CI, `2> run.log`, CloudWatch): escape codes there are noise. So colour only when stderr
//! is a terminal, and never when `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
//! The CLI calls [`stderr_colour`]; the trigger never colours (Lambda's stderr is CloudWatch).

use std::ffi::OsStr;
use std::io::IsTerminal;

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

/// The decision, from its two inputs: stderr is a terminal, and `NO_COLOR`'s value.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// [`colour`] for this process's stderr and environment.
pub fn stderr_colour() -> bool {
    colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
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

    #[test]
    fn colour_only_for_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
