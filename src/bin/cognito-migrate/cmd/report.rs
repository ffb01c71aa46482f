//! `cognito-migrate report`: every rejected or failed user of a run, for fixing and retrying
//! (`--failed`, CSV); the id map of every migrated user, for rewriting an app's references
//! (`--id-map`); and the run drawn as one self-contained HTML file (`--html`).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cognito_migrate::checkpoint::{Checkpoint, Run};
use cognito_migrate::directory::DirectoryFile;
use cognito_migrate::html_report::{self, Extras};
use cognito_migrate::report::ReportCsv;
use cognito_migrate::views::{self, Lookup, Strategy};

use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Write every rejected or failed user of the run to a CSV file (`--failed`): position, username,
/// route, outcome, reason code and message. Or write the id map (`--id-map`): every user the run
/// put in the pool and every user left to the trigger, with the legacy id, the Cognito username and
/// the `sub` the pool holds (read from the pool; run it again later for trigger users who arrive).
/// Or draw the run as one self-contained HTML file (`--html`): summary, users per route and
/// outcome, rejections by reason and field, import jobs on a timeline, AdminCreateUser calls per
/// second with throttles, sync runs. Never a password, hash or presigned URL. Cells that start
/// with `=`, `+`, `-`, `@`, TAB or CR get a leading `'`, so that a spreadsheet shows them instead
/// of running them. Exit code 1 when the run has rejected or failed users (or, with --id-map,
/// users it put in the pool are missing from it now), 0 otherwise.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cognito-migrate report --state migration.db --failed failed.csv\n  \
                  cognito-migrate report --state migration.db --html report.html\n  \
                  cognito-migrate report --state migration.db --id-map id-map.csv --directory directory.db"
)]
pub struct ReportArgs {
    /// The run's state: a local file, or `s3://BUCKET/KEY` (read as it was last uploaded; no lease
    /// is taken).
    #[arg(long, value_name = "LOCATION")]
    pub state: String,
    /// Where to write the CSV of rejected and failed users (`-` for stdout).
    #[arg(long, value_name = "OUT.csv", required_unless_present_any = ["html", "id_map"])]
    pub failed: Option<PathBuf>,
    /// Where to write the HTML report (created with mode 0600; replaced if it exists).
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// With --html: also read the pool (ListUsers, paced under the UserList quota) and draw the
    /// trigger's progress: of the users left to the trigger, how many arrived, per day (what
    /// `cognito-migrate progress` prints).
    #[arg(long, requires = "html")]
    pub progress: bool,
    /// Where to write the id map (`-` for stdout; a file is created with mode 0600). Columns:
    /// legacy_id, legacy_username, username, sub, status (in_pool | missing | arrived | not_arrived), origin
    /// (run | trigger), route, record, created.
    #[arg(long, value_name = "OUT.csv")]
    pub id_map: Option<PathBuf>,
    /// With --id-map or --progress: the trigger users are the trigger's directory file's, instead
    /// of the run's `trigger` users (built from the run's input, as `directory build --state`
    /// does).
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,
    /// With --id-map or --progress: how to read the pool (`auto`: a ListUsers pass, or
    /// AdminGetUser per user when they are fewer than a fifteenth of the pool).
    #[arg(long, value_enum, default_value = "auto")]
    pub lookup: IdLookup,
}

/// `--lookup`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum IdLookup {
    Auto,
    List,
    Get,
}

fn output(path: &std::path::Path) -> anyhow::Result<Box<dyn std::io::Write>> {
    Ok(if path.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(cognito_migrate::fs::create_private(path)?)
    })
}

pub async fn run(args: &ReportArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    if args.html.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        return Err(ConfigError::new(
            "--html writes a private file (mode 0600): give it a path, not `-`",
        )
        .into());
    }
    if args.directory.is_some() && args.id_map.is_none() && !args.progress {
        return Err(ConfigError::new("--directory goes with --id-map or --progress").into());
    }
    let state = super::read_state(&args.state, global).await?;
    let cp = Checkpoint::open_read_only(state.path())?;
    let run = cp
        .current_run()?
        .ok_or_else(|| ConfigError::new(format!("{} holds no run yet", args.state)))?;
    let mut exit = Exit::Ok;
    if let Some(path) = &args.html {
        let mut extras = Extras {
            state_name: Some(args.state.clone()),
            ..Extras::default()
        };
        if args.progress {
            let dir = open_directory(args, &run)?;
            let clients = global.clients().await?;
            let (progress, _) = views::trigger_progress(
                &clients,
                &run.spec.pool_id,
                Some((&cp, run.id)),
                dir.as_ref(),
                lookup(args.lookup),
                now_ms(),
            )
            .await?;
            extras.progress = Some(html_report::Section::trigger_progress(&progress));
        }
        let data = html_report::write(&cp, &run, path, &extras)?;
        if data.counts.rejected + data.counts.failed > 0 {
            exit = Exit::SomeFailed;
        }
        eprintln!("HTML report written to {}", path.display());
    }
    if let Some(path) = &args.failed {
        if failed(&cp, &run, path)? != Exit::Ok {
            exit = Exit::SomeFailed;
        }
    }
    if let Some(path) = &args.id_map {
        let e = id_map(args, global, &cp, &run, path).await?;
        if e != Exit::Ok {
            exit = e;
        }
    }
    Ok(exit)
}

fn failed(cp: &Checkpoint, run: &Run, path: &std::path::Path) -> anyhow::Result<Exit> {
    // Cells that a spreadsheet would run as formulas get a leading `'` (see the README).
    let mut w = ReportCsv::new(
        output(path)?,
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
    Ok(if n > 0 { Exit::SomeFailed } else { Exit::Ok })
}

/// Exit 1 when users the run put in the pool are missing from it now; else 0.
async fn id_map(
    args: &ReportArgs,
    global: &GlobalArgs,
    cp: &Checkpoint,
    run: &Run,
    path: &std::path::Path,
) -> anyhow::Result<Exit> {
    let dir = open_directory(args, run)?;
    let clients = global.clients().await?;
    let (map, strategy) =
        views::id_map(&clients, cp, run, dir.as_ref(), lookup(args.lookup)).await?;
    let mut out = map.write_csv(output(path)?)?;
    out.flush()?;
    drop(out);
    let c = map.counts();
    eprintln!(
        "id map of {} users written to {} (pool read with {}): {} in the pool, {} missing, \
         {} arrived through the trigger, {} not arrived yet",
        map.rows.len(),
        path.display(),
        strategy.as_str(),
        c.in_pool,
        c.missing,
        c.arrived,
        c.not_arrived
    );
    Ok(if c.missing > 0 {
        Exit::SomeFailed
    } else {
        Exit::Ok
    })
}

/// The --directory file, checked to be the run's pool's.
fn open_directory(args: &ReportArgs, run: &Run) -> anyhow::Result<Option<DirectoryFile>> {
    let pool_id = &run.spec.pool_id;
    let dir = match &args.directory {
        Some(p) if !p.exists() => {
            return Err(ConfigError::new(format!("no directory file at {}", p.display())).into())
        }
        // Not a directory file (or one of another format version): a wrong argument.
        Some(p) => Some(DirectoryFile::open(p).map_err(|e| ConfigError::new(e.to_string()))?),
        None => None,
    };
    if let Some(d) = &dir {
        if &d.meta().pool_id != pool_id {
            return Err(ConfigError::new(format!(
                "the directory was built for pool {}, but the run's pool is {pool_id}",
                d.meta().pool_id
            ))
            .into());
        }
    }
    Ok(dir)
}

fn lookup(l: IdLookup) -> Lookup {
    match l {
        IdLookup::Auto => Lookup::Auto,
        IdLookup::List => Lookup::Forced(Strategy::List),
        IdLookup::Get => Lookup::Forced(Strategy::Get),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
