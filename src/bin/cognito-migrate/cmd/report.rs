//! `cognito-migrate report`: every rejected or failed user of a run, for fixing and retrying
//! (`--failed`, CSV), and the run drawn as one self-contained HTML file (`--html`).

use std::path::{Path, PathBuf};

use clap::Args;
use cognito_migrate::checkpoint::{Checkpoint, Run};
use cognito_migrate::html_report::{self, Extras};
use cognito_migrate::report::ReportCsv;

use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Write every rejected or failed user of the run to a CSV file (`--failed`): position, username,
/// route, outcome, reason code and message. Cells that start with `=`, `+`, `-`, `@`, TAB or CR
/// get a leading `'`, so that a spreadsheet shows them instead of running them. And/or draw the
/// run as one self-contained HTML file (`--html`): summary, users per route and outcome,
/// rejections by reason and field, import jobs on a timeline, AdminCreateUser calls per second
/// with throttles, sync runs. Never a password, hash or presigned URL. Reads only the state.
/// Exit code 1 when the run has rejected or failed users, 0 otherwise.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cognito-migrate report --state migration.db --failed failed.csv\n  cognito-migrate report --state migration.db --html report.html"
)]
pub struct ReportArgs {
    /// The run's state: a local file, or `s3://BUCKET/KEY` (read as it was last uploaded; no lease
    /// is taken).
    #[arg(long, value_name = "LOCATION")]
    pub state: String,
    /// Where to write the CSV of rejected and failed users (`-` for stdout).
    #[arg(long, value_name = "OUT.csv", required_unless_present = "html")]
    pub failed: Option<PathBuf>,
    /// Where to write the HTML report (created with mode 0600; replaced if it exists).
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
}

pub async fn run(args: &ReportArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    if args.html.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        return Err(ConfigError::new(
            "--html writes a private file (mode 0600): give it a path, not `-`",
        )
        .into());
    }
    let state = super::read_state(&args.state, global).await?;
    let cp = Checkpoint::open_read_only(state.path())?;
    let run = cp
        .current_run()?
        .ok_or_else(|| ConfigError::new(format!("{} holds no run yet", args.state)))?;
    let mut failed = false;
    if let Some(path) = &args.html {
        let data = html_report::write(&cp, &run, path, &Extras::default())?;
        failed |= data.counts.rejected + data.counts.failed > 0;
        eprintln!("HTML report written to {}", path.display());
    }
    if let Some(path) = &args.failed {
        failed |= write_failed(&cp, &run, path)? > 0;
    }
    Ok(if failed { Exit::SomeFailed } else { Exit::Ok })
}

/// `--failed`: the CSV of rejected and failed users; returns how many it lists.
fn write_failed(cp: &Checkpoint, run: &Run, path: &Path) -> anyhow::Result<u64> {
    let out: Box<dyn std::io::Write> = if path.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(cognito_migrate::fs::create_private(path)?)
    };
    // Cells that a spreadsheet would run as formulas get a leading `'` (see the README).
    let mut w = ReportCsv::new(
        out,
        &[
            "record",
            "line",
            "byte_offset",
            "username",
            "route",
            "outcome",
            "reason",
            "message",
        ],
    )?;
    let mut n = 0u64;
    for u in cp.failed_and_rejected(run.id) {
        let u = u?;
        w.row(&[
            u.record.to_string(),
            u.line.to_string(),
            u.byte_offset.to_string(),
            u.username,
            u.route,
            u.outcome.as_str().to_string(),
            u.reason.unwrap_or_default(),
            u.message.unwrap_or_default(),
        ])?;
        n += 1;
    }
    w.flush()?;
    eprintln!("{n} rejected or failed users written to {}", path.display());
    Ok(n)
}
