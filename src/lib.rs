//! cognito-migrate: move users from a legacy auth system into an Amazon Cognito user pool.
//!
//! The library holds all the logic; the two binaries (`cognito-migrate`, the CLI, and
//! `cognito-migrate-trigger`, the Lambda user-migration trigger) are thin glue around it.
//! Data flows sources → mapping → routing (plan) → writers, with the checkpoint recording every
//! outcome.

pub mod aws;
mod bytes;
pub mod checkpoint;
#[cfg(target_os = "linux")]
mod direct_io;
pub mod directory;
pub mod lease;
pub mod mapping;
pub mod password;
pub mod plan;
pub mod pool;
pub mod progress;
pub mod record;
pub mod retry;
pub mod sink;
pub mod source;
pub mod trigger;

/// An error and its causes on one line, `a: b: c`. Error types here print only their own message
/// (`#[error("…")]` never repeats a `#[source]`), so whoever prints one prints its chain, once.
pub fn display_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
