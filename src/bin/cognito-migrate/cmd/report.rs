//! `cognito-migrate report`: every rejected or failed user of a run, for fixing and retrying.

use std::path::PathBuf;

use clap::Args;
use cognito_migrate::checkpoint::Checkpoint;
use cognito_migrate::report::ReportCsv;

use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Write every rejected or failed user of the run to a CSV file: position, username, route,
/// outcome, reason code and message. Never a password or hash. Cells that start with `=`, `+`, `-`,
/// `@`, TAB or CR get a leading `'`, so that a spreadsheet shows them instead of running them.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  cognito-migrate report --state migration.db --failed failed.csv"
)]
pub struct ReportArgs {
    /// The run's state: a local file, or `s3://BUCKET/KEY` (read as it was last uploaded; no lease
    /// is taken).
    #[arg(long, value_name = "LOCATION")]
    pub state: String,
    /// Where to write the CSV (`-` for stdout).
    #[arg(long, value_name = "OUT.csv")]
    pub failed: PathBuf,
}

pub async fn run(args: &ReportArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let state = super::read_state(&args.state, global).await?;
    let cp = Checkpoint::open_read_only(state.path())?;
    let run = cp
        .current_run()?
        .ok_or_else(|| ConfigError::new(format!("{} holds no run yet", args.state)))?;
    let out: Box<dyn std::io::Write> = if args.failed.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(cognito_migrate::fs::create_private(&args.failed)?)
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
    eprintln!(
        "{n} rejected or failed users written to {}",
        args.failed.display()
    );
    Ok(if n > 0 { Exit::SomeFailed } else { Exit::Ok })
}
