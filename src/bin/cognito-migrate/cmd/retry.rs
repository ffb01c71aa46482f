//! `cognito-migrate retry`: re-run only the failed users of a run after their cause is fixed.
//! Glue only: the run's recorded settings become a [`MigrateConfig`] for
//! [`cognito_migrate::migrate::run`] over just those users.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use cognito_migrate::checkpoint::Checkpoint;
use cognito_migrate::migrate::{self, MigrateConfig, RecordedRun};
use cognito_migrate::password::Notations;
use cognito_migrate::progress::Output;
use cognito_migrate::sink::import_job::ImportJobConfig;
use cognito_migrate::state_store::{HeldState, StateLocation};

use super::args::{self, AdminArgs, StateArgs};
use super::source_args::SourceArgs;
use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Re-run only the failed users of the run in a state file, after their cause is fixed (a missing
/// group created, a conflicting alias removed, a quota raised, …). Their records are read again from
/// the run's input; users created but whose groups or disable failed only get those follow-ups.
/// Rejected users are not retried: their data must change (a new run).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  cognito-migrate retry --state migration.db --create-groups")]
pub struct RetryArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Firebase hash parameters, when the run was given --hash-config.
    #[arg(long, value_name = "FILE")]
    pub hash_config: Option<PathBuf>,
    /// CSV field delimiter, when the run was given --delimiter.
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<char>,
    /// IAM role for import-job logs (modes import-job and auto).
    #[arg(long, env = "COGNITO_MIGRATE_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Read failed import jobs' CloudWatch Logs for per-user results (as `run --fetch-job-logs`).
    #[arg(long)]
    pub fetch_job_logs: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &RetryArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let location = StateLocation::parse(&args.state.state)?;
    if let StateLocation::Local(path) = &location {
        if !path.exists() {
            return Err(ConfigError::new(format!("no state file at {}", path.display())).into());
        }
    }
    let held = super::take_state(&args.state, "retry", global).await?;
    let result = match held.is_new() {
        true => Err(ConfigError::new(format!("no state at {location}")).into()),
        false => retry_held(args, global, &held, &location).await,
    };
    super::release_state(held, result).await
}

async fn retry_held(
    args: &RetryArgs,
    global: &GlobalArgs,
    held: &HeldState,
    location: &StateLocation,
) -> anyhow::Result<Exit> {
    let cp = Arc::new(Checkpoint::open(held.path())?);
    let run = cp
        .current_run()?
        .ok_or_else(|| ConfigError::new(format!("{location} holds no run yet")))?;
    let recorded = RecordedRun::read(&run)?;
    if recorded.hash_config && args.hash_config.is_none() {
        return Err(ConfigError::new("this run was given --hash-config: pass it again").into());
    }
    let admin = args.admin.config()?;
    let split = migrate::retry_split(&cp, &run)?;
    eprintln!(
        "retrying run {}: {} failed users to write again, {} to finish follow-ups for",
        run.id.0,
        split.only.len(),
        split.followup_failed
    );
    let pool_id = run.spec.pool_id.clone();
    if split.followup_failed > 0 {
        // Users in the pool whose follow-ups failed: only the follow-ups again.
        let clients = global.clients().await?;
        let s =
            migrate::apply_followups(&admin, &clients, &pool_id, cp.clone(), run.id, true).await?;
        super::output::print_followups(&s);
    }
    if split.only.is_empty() {
        return super::output::print_status(&cp, &run, args.json);
    }
    drop(cp);
    let mut source = SourceArgs {
        input: run.spec.input_location.clone(),
        format: recorded.format,
        mapping: recorded.mapping.clone(),
        hash_config: args.hash_config.clone(),
        delimiter: args.delimiter,
        firebase_layout: None,
        include_service_accounts: false,
        django_model: None,
        hashes: None,
        join_on: None,
        s3_object: Default::default(),
    };
    source.apply_recorded(&recorded.reader);
    let config = MigrateConfig {
        pool_id,
        state: held.path().to_path_buf(),
        mode: recorded.mode,
        role_arn: migrate::role_arn(recorded.mode, args.role_arn.clone())?,
        unimportable: recorded.unimportable,
        unknown_hash: recorded.unknown_hash,
        unknown_provider: recorded.unknown_provider,
        work_dir: None,
        restart: false,
        fetch_job_logs: args.fetch_job_logs,
        import_job: ImportJobConfig::default(),
        admin,
        // The notations a preflight canary recorded in the state.
        hash_encodings: Notations::default(),
        progress: Output::auto(),
    };
    let print = args::Print {
        json: args.json,
        fetch_job_logs: args.fetch_job_logs,
    };
    args::migrate_and_print(&source, config, global, Some(split.only), held, print).await
}
