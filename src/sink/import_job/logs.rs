//! Per-user results of an import job, read from the job's CloudWatch Logs stream.
//!
//! Cognito reports only counts in DescribeUserImportJob; which row was imported, skipped or failed
//! (and why) is in CloudWatch Logs, one event per data row, when the job was created with a
//! `CloudWatchLogsRoleArn`: log group `/aws/cognito/userpools/<pool id>/<pool name>`, stream
//! `<job id>/<job name>`, messages `[SUCCEEDED|SKIPPED|FAILED] Line Number N - reason`. N counts the
//! header as line 1, so the first user is line 2 and the checkpoint's 1-based data line is `N - 1`.
//!
//! This module reads the stream (paginated GetLogEvents from the head), parses the lines and turns
//! them into [`LineOutcome`]s for [`crate::checkpoint::Checkpoint::set_outcomes_by_chunk_lines`].
//! Reasons are Cognito's words, scrubbed of anything that looks like a secret (password hashes,
//! presigned-URL signatures) and capped in length before they are stored.

use std::time::Duration;

use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudwatchlogs::Client;

use crate::checkpoint::{LineOutcome, Outcome};

/// The log group Cognito writes a pool's import-job results to.
pub fn log_group(pool_id: &str, pool_name: &str) -> String {
    format!("/aws/cognito/userpools/{pool_id}/{pool_name}")
}

/// The log stream of one import job.
pub fn log_stream(job_id: &str, job_name: &str) -> String {
    format!("{job_id}/{job_name}")
}

/// Reason codes stored with the outcome (the message holds Cognito's words).
pub const REASON_FAILED: &str = "import_failed";
pub const REASON_SKIPPED: &str = "import_skipped";

const MAX_REASON_CHARS: usize = 300;

/// One parsed result line: the file line number (header = 1), the outcome and Cognito's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultLine {
    pub file_line: u64,
    pub outcome: Outcome,
    pub reason: String,
}

/// Parses `[SUCCEEDED|SKIPPED|FAILED] Line Number N - reason`. Anything else is `None`.
pub fn parse_line(message: &str) -> Option<ResultLine> {
    let m = message.trim();
    let (tag, rest) = m.strip_prefix('[')?.split_once(']')?;
    let outcome = match tag.trim().to_ascii_uppercase().as_str() {
        "SUCCEEDED" | "SUCCESS" => Outcome::Imported,
        "SKIPPED" => Outcome::Skipped,
        "FAILED" => Outcome::Failed,
        _ => return None,
    };
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix("Line Number")
        .or_else(|| rest.strip_prefix("Line number"))?
        .trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let file_line: u64 = rest[..digits].parse().ok()?;
    let reason = rest[digits..].trim_start();
    let reason = reason.strip_prefix('-').unwrap_or(reason).trim();
    Some(ResultLine {
        file_line,
        outcome,
        reason: scrub(reason),
    })
}

/// Removes what could be a secret from a reason: password-hash-like tokens (`$2b$…`, `$argon2…`,
/// PHC strings), presigned-URL parameters and long opaque tokens; caps the length.
pub fn scrub(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON_CHARS));
    for (i, word) in reason.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if looks_secret(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
    }
    if out.chars().count() > MAX_REASON_CHARS {
        out = out.chars().take(MAX_REASON_CHARS - 1).collect();
        out.push('…');
    }
    out
}

fn looks_secret(word: &str) -> bool {
    let w =
        word.trim_matches(|c: char| matches!(c, '.' | ',' | ';' | ':' | '"' | '\'' | '(' | ')'));
    if w.contains("X-Amz-") || w.contains("x-amz-signature") {
        return true;
    }
    // A PHC/modular-crypt string: `$id$…` with at least two more `$`.
    if w.starts_with('$') && w.matches('$').count() >= 3 {
        return true;
    }
    // Long opaque tokens (base64/hex digests).
    w.len() >= 32
        && w.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'.' | b'_' | b'-')
        })
        && w.bytes().any(|b| b.is_ascii_digit())
}

impl ResultLine {
    /// As a checkpoint update: 1-based data line, outcome, reason code and message.
    pub fn to_line_outcome(&self) -> Option<LineOutcome> {
        let line = self.file_line.checked_sub(1).filter(|l| *l > 0)?;
        let reason = match self.outcome {
            Outcome::Failed => Some(REASON_FAILED.to_string()),
            Outcome::Skipped => Some(REASON_SKIPPED.to_string()),
            _ => None,
        };
        let message = match self.outcome {
            Outcome::Imported => None,
            _ if self.reason.is_empty() => None,
            _ => Some(self.reason.clone()),
        };
        Some(LineOutcome {
            line,
            outcome: self.outcome,
            reason,
            message,
        })
    }
}

/// Why the log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The group or stream does not exist (yet, or the role cannot write it).
    #[error("log stream {stream} in {group} was not found (is --role-arn allowed to write CloudWatch Logs?)")]
    NotFound { group: String, stream: String },
    #[error("reading log stream {stream}: {message}")]
    Call { stream: String, message: String },
}

/// Reads every result line of one job's stream, oldest first. Lines that are not result lines are
/// ignored; when a line number appears twice the last one wins.
pub async fn fetch_results(
    client: &Client,
    group: &str,
    stream: &str,
) -> Result<Vec<ResultLine>, LogsError> {
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    let mut attempts = 0u32;
    loop {
        let resp = client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await;
        let out = match resp {
            Ok(out) => out,
            Err(e) => {
                let code = e.code().map(str::to_string);
                if code.as_deref() == Some("ResourceNotFoundException") {
                    return Err(LogsError::NotFound {
                        group: group.to_string(),
                        stream: stream.to_string(),
                    });
                }
                let transient = crate::retry::classify(&e).is_retriable();
                attempts += 1;
                if transient && attempts < 6 {
                    tokio::time::sleep(Duration::from_millis(200 << attempts)).await;
                    continue;
                }
                return Err(LogsError::Call {
                    stream: stream.to_string(),
                    message: DisplayErrorContext(&e).to_string(),
                });
            }
        };
        attempts = 0;
        let events = out.events();
        lines.extend(
            events
                .iter()
                .filter_map(|e| e.message())
                .filter_map(parse_line),
        );
        let next = out.next_forward_token().map(str::to_string);
        // GetLogEvents answers the same forward token once the end is reached.
        if events.is_empty() || next.is_none() || next == token {
            return Ok(lines);
        }
        token = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cognitos_result_lines() {
        let l = parse_line("[SUCCEEDED] Line Number 2 - The import succeeded.").unwrap();
        assert_eq!((l.file_line, l.outcome), (2, Outcome::Imported));
        let lo = l.to_line_outcome().unwrap();
        assert_eq!(lo.line, 1, "the header is line 1: line 2 is the first user");
        assert_eq!(lo.message, None);

        let l = parse_line("[SKIPPED] Line Number 3 - The user already exists.").unwrap();
        assert_eq!((l.file_line, l.outcome), (3, Outcome::Skipped));
        let lo = l.to_line_outcome().unwrap();
        assert_eq!(lo.reason.as_deref(), Some(REASON_SKIPPED));
        assert_eq!(lo.message.as_deref(), Some("The user already exists."));

        let l = parse_line(
            "[FAILED] Line Number 5956 - The User Record does not set any of the auto verified attributes to true. (Example: email_verified to true).",
        )
        .unwrap();
        assert_eq!(l.file_line, 5956);
        assert_eq!(l.outcome, Outcome::Failed);
        assert!(l.reason.starts_with("The User Record does not set"));

        assert_eq!(parse_line("START RequestId: abc"), None);
        assert_eq!(parse_line("[INFO] Line Number 2 - x"), None);
        assert_eq!(parse_line("[FAILED] Line Number - x"), None);
        // Line 1 is the header: no user.
        assert_eq!(
            parse_line("[FAILED] Line Number 1 - bad header")
                .unwrap()
                .to_line_outcome(),
            None
        );
    }

    #[test]
    fn reasons_never_carry_hashes_or_signatures() {
        let l = parse_line(
            "[FAILED] Line Number 4 - The password_hash value $2b$13$abcdefghijklmnopqrstuu5Qe0rS1eG8dWl1Yv2rT0Nq5yK7pB9m is not valid.",
        )
        .unwrap();
        assert!(!l.reason.contains("$2b$"), "{}", l.reason);
        assert!(l.reason.contains("[redacted]"));
        let s = scrub("see http://h/u?X-Amz-Signature=deadbeef and $argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        assert!(!s.contains("deadbeef") && !s.contains("argon2id$"), "{s}");
        assert_eq!(
            scrub("The user already exists."),
            "The user already exists."
        );
        assert!(scrub(&"x ".repeat(500)).chars().count() <= MAX_REASON_CHARS);
    }

    #[test]
    fn names_follow_cognitos_format() {
        assert_eq!(
            log_group("us-east-1_AbC", "prod users"),
            "/aws/cognito/userpools/us-east-1_AbC/prod users"
        );
        assert_eq!(
            log_stream("import-AbCdEf1234", "cm-1-2"),
            "import-AbCdEf1234/cm-1-2"
        );
    }
}
