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
//!
//! And it writes machine-read lines bare: events of the targets given to [`JsonLines`] (the
//! trigger's per-invocation JSON line) are written as their message alone, without level or
//! target, so that CloudWatch Logs sees a JSON object its metric filters can match.

use std::ffi::OsStr;
use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

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

/// An event formatter: events whose target is one of `targets` are written as their message
/// alone on a line (the message is already a JSON object); all others as `inner` writes them.
#[derive(Debug)]
pub struct JsonLines<F> {
    inner: F,
    targets: &'static [&'static str],
}

impl<F> JsonLines<F> {
    pub fn new(inner: F, targets: &'static [&'static str]) -> JsonLines<F> {
        JsonLines { inner, targets }
    }
}

/// Collects an event's `message`.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            // A `format_args!` message's Debug is its text, unquoted.
            use std::fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for JsonLines<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if self.targets.contains(&event.metadata().target()) {
            let mut message = Message::default();
            event.record(&mut message);
            writeln!(writer, "{}", message.0)
        } else {
            self.inner.format_event(ctx, writer, event)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// A writer for captured output (the crate's tests' log sink).
    #[derive(Clone, Default)]
    pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Captured {
        /// Everything written so far.
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_are_bare_and_other_lines_keep_their_format() {
        let captured = Captured::default();
        let sink = captured.clone();
        let format = tracing_subscriber::fmt::format()
            .without_time()
            .with_target(false)
            .with_ansi(false);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .event_format(JsonLines::new(format, &["test::json"]))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let line = r#"{"event":"x","n":1.5}"#;
            tracing::info!(target: "test::json", "{line}");
            tracing::error!(target: "test::json", "{line}");
            tracing::info!(users = 3, "directory file opened");
        });
        let text = captured.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], r#"{"event":"x","n":1.5}"#);
        assert_eq!(lines[1], r#"{"event":"x","n":1.5}"#);
        assert!(
            lines[2].contains("INFO") && lines[2].contains("directory file opened users=3"),
            "{text}"
        );
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
