//! What `run`, `retry` and `status` print about a run (shared output glue, not a command).

use std::io::Write;

use cognito_migrate::checkpoint::{Checkpoint, Run, Verdict};
use cognito_migrate::migrate::{self, Report};
use cognito_migrate::progress::Output;
use cognito_migrate::sink::admin_create::FollowupSummary;

use crate::exit::Exit;

/// Says what the follow-ups (disable, groups) did, if they did anything.
pub fn print_followups(f: &FollowupSummary) {
    if f.applied + f.failed > 0 {
        eprintln!(
            "follow-ups (disable, groups): {} users done, {} failed",
            f.applied, f.failed
        );
    }
}

/// Prints the end of a run: follow-ups done, the per-job table, the status, and why `unknown`
/// users make the exit code 1.
pub fn print_report(
    cp: &Checkpoint,
    report: &Report,
    output: Output,
    json: bool,
    fetch_job_logs: bool,
) -> anyhow::Result<Exit> {
    print_followups(&report.followups);
    let table = migrate::job_table(cp, &report.run)?;
    if !table.is_empty() && output != Output::Off {
        eprint!("\nimport jobs\n{}", table.render());
    }
    let exit = print_status(cp, &report.run, json)?;
    // Users of a job whose per-user results are unknown are not known to be in the pool.
    let unknown = report.unknown;
    if unknown > 0 {
        if fetch_job_logs {
            eprintln!(
                "{unknown} users are `unknown`: their job's CloudWatch log did not give their result (see above)"
            );
        } else {
            eprintln!(
                "{unknown} users are `unknown`: their job reported counts only; run again with --fetch-job-logs to read each user's result"
            );
        }
        return Ok(Exit::SomeFailed);
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
