//! `cognito-migrate status`: what happened to every user of a run, from its state file.

use clap::Args;
use cognito_migrate::checkpoint::Checkpoint;

use super::output::print_status;
use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Print the counts of a run: users created, imported, skipped, rejected, failed, pending, per
/// route and per import job. Reads only the state file, never writes it. Exit code 0 when every
/// user is settled; 1 when any user was rejected or failed (or is unknown); else 5 when users are
/// still pending (run the same `run` command to continue); 2 when the file is not a state.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  cognito-migrate status --state migration.db --json")]
pub struct StatusArgs {
    /// The run's state: a local file, or `s3://BUCKET/KEY` (read as it was last uploaded; no lease
    /// is taken).
    #[arg(long, value_name = "LOCATION")]
    pub state: String,
    /// Print JSON: {"total":N,"created":N,"imported":N,"skipped":N,"rejected":N,"failed":N,"pending":N,…}
    /// plus "routes" and "jobs".
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &StatusArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let state = super::read_state(&args.state, global).await?;
    let cp = Checkpoint::open_read_only(state.path())?;
    let run = cp
        .current_run()?
        .ok_or_else(|| ConfigError::new(format!("{} holds no run yet", args.state)))?;
    let exit = print_status(&cp, &run, args.json)?;
    if exit == Exit::Pending {
        eprintln!(
            "not finished: {} users are still pending (run the same `run` command to continue)",
            cp.counts(run.id)?.pending
        );
    }
    Ok(exit)
}
