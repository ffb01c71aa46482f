//! The integration tests, one test binary (as uv and ripgrep do): the AWS SDKs and the library are
//! linked once instead of once per test file, and the helpers live in one place, [`common`].
//!
//! Each former `tests/NAME.rs` is the module `NAME`, so `cargo test --test it NAME::` runs its
//! tests. Tests that need the emulator start their own on a free loopback port
//! ([`common::Emulator`]); the CLI and the trigger run as child processes with the environment given
//! to them, never by changing this process's environment or working directory, so the tests can
//! share one process and run in parallel.

mod common;

mod admin_create;
mod against_emulator;
mod cli_plan_messages;
mod deploy;
mod federated;
mod fuzz;
mod hardening;
mod import_job_crash;
mod import_job_faults;
mod listing;
mod migrate_api;
mod pool_views;
mod preflight;
mod real_exports;
mod report_html;
mod sources_cognito;
mod sources_mapping_init;
mod sources_s3;
mod state_lease;
mod state_read_only;
mod state_s3;
mod sync;
mod trigger_aws;
mod trigger_directory_cli;
mod trigger_e2e;
mod trigger_runtime;
mod user_changes;
