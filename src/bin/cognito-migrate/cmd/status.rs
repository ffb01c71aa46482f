//! `cognito-migrate status`: what happened to every user of a run, from its state file.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use cognito_migrate::checkpoint::{Checkpoint, Run, Verdict};

use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Print the counts of a run: users created, imported, skipped, rejected, failed, pending, per
/// route and per import job. Reads only the state file, never writes it. Exit code 0 when every
/// user is settled; 1 when any user was rejected or failed (or is unknown); else 5 when users are
/// still pending (run the same `run` command to continue); 2 when the file is not a state.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  cognito-migrate status --state migration.db --json")]
pub struct StatusArgs {
    /// The run's state file.
    #[arg(long, value_name = "DB")]
    pub state: PathBuf,
    /// Print JSON: {"total":N,"created":N,"imported":N,"skipped":N,"rejected":N,"failed":N,"pending":N,…}
    /// plus "routes" and "jobs".
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &StatusArgs, _global: &GlobalArgs) -> anyhow::Result<Exit> {
    if !args.state.exists() {
        return Err(ConfigError::new(format!("no state file at {}", args.state.display())).into());
    }
    let cp = Checkpoint::open_read_only(&args.state)?;
    let run = cp
        .current_run()?
        .ok_or_else(|| ConfigError::new(format!("{} holds no run yet", args.state.display())))?;
    let exit = print_status(&cp, &run, args.json)?;
    if exit == Exit::Pending {
        eprintln!(
            "not finished: {} users are still pending (run the same `run` command to continue)",
            cp.counts(run.id)?.pending
        );
    }
    Ok(exit)
}

/// Prints a run's status (table or JSON) and returns the exit code it implies.
pub fn print_status(cp: &Checkpoint, run: &Run, json: bool) -> anyhow::Result<Exit> {
    let counts = cp.counts(run.id)?;
    let routes = cp.route_counts(run.id)?;
    let chunks = cp.chunks(run.id)?;
    let mut out = std::io::stdout().lock();
    if json {
        let mut v = serde_json::to_value(counts)?;
        v["routes"] = serde_json::to_value(&routes)?;
        v["jobs"] = serde_json::to_value(&chunks)?;
        v["run"] = serde_json::json!({"id": run.id, "pool_id": run.spec.pool_id, "mode": run.spec.mode, "input": run.spec.input_location});
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "run {} · pool {} · mode {} · input {}",
            run.id.0, run.spec.pool_id, run.spec.mode, run.spec.input_location
        )?;
        writeln!(out, "{:<10}{:>10}", "total", counts.total)?;
        for (name, n) in [
            ("imported", counts.imported),
            ("created", counts.created),
            ("updated", counts.updated),
            ("skipped", counts.skipped),
            ("trigger", counts.trigger),
            ("rejected", counts.rejected),
            ("failed", counts.failed),
            ("unknown", counts.unknown),
            ("pending", counts.pending),
        ] {
            if n > 0 {
                writeln!(out, "{name:<10}{n:>10}")?;
            }
        }
        if !routes.is_empty() {
            writeln!(out, "per route")?;
            for (route, c) in &routes {
                writeln!(
                    out,
                    "  {route:<22}{:>8} users: {} imported, {} created, {} skipped, {} failed, {} pending",
                    c.total, c.imported, c.created, c.skipped, c.failed, c.pending
                )?;
            }
        }
        for c in &chunks {
            let counts = c.counts.unwrap_or_default();
            writeln!(
                out,
                "  chunk {:<4} {:<20} {:<10} {:>8} rows  job {:<28} {} imported, {} skipped, {} failed",
                c.id.0,
                c.route,
                c.status.as_str(),
                c.row_count,
                c.job_id.as_deref().unwrap_or("-"),
                counts.imported,
                counts.skipped,
                counts.failed
            )?;
        }
    }
    Ok(match counts.verdict() {
        Verdict::Done => Exit::Ok,
        Verdict::SomeFailed => Exit::SomeFailed,
        Verdict::Pending => Exit::Pending,
    })
}
