//! cognito-migrate: move users from a legacy auth system into an Amazon Cognito user pool.
//!
//! The library holds all the logic; the two binaries (`cognito-migrate`, the CLI, and
//! `cognito-migrate-trigger`, the Lambda user-migration trigger) are thin glue around it.
//! Data flows sources → mapping → routing (plan) → writers, with the checkpoint recording every
//! outcome.

pub mod aws;
mod bytes;
pub mod checkpoint;
pub mod directory;
mod error_chain;
pub mod fs;
pub mod html_report;
pub mod lease;
pub mod listing;
pub mod logging;
pub mod mapping;
pub mod migrate;
pub mod password;
pub mod plan;
pub mod pool;
pub mod preflight;
pub mod progress;
pub mod record;
pub mod report;
pub mod retry;
pub mod sink;
pub mod source;
pub mod state_store;
pub mod sync;
#[doc(hidden)]
pub mod testing_hook;
pub mod trigger;
pub mod views;

pub use error_chain::display_chain;
