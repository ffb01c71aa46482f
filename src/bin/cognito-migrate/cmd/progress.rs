//! `cognito-migrate progress`: of the users left to the migration trigger, how many are in the
//! pool now, how many remain, and arrivals per day.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use cognito_migrate::checkpoint::Checkpoint;
use cognito_migrate::directory::DirectoryFile;
use cognito_migrate::views::{self, Lookup, Strategy};

use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Count the users left to the migration trigger who are now in the pool (they signed in), those
/// who remain, and arrivals per day (the pool's UserCreateDate, UTC), with the figures that tell
/// when to retire the trigger: arrivals in the last 7 and 30 days and days since the last one.
/// Reads the pool (ListUsers, or AdminGetUser when few users are looked up in a large pool); never
/// writes anything. Exit code 0; 2 on a usage error (also: no such pool, not allowed to read it);
/// 3 when the pool cannot be read (AWS failing after retries).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cognito-migrate progress --directory directory.db\n  \
     cognito-migrate progress --state migration.db --json"
)]
pub struct ProgressArgs {
    /// The trigger's directory file (`directory build`): its users are the ones left to the
    /// trigger. With --state too, the users the run put in the pool itself are left out.
    #[arg(long, value_name = "FILE", required_unless_present = "state")]
    pub directory: Option<PathBuf>,
    /// A run's state file: without --directory, its `trigger` users are the ones left to it.
    #[arg(long, value_name = "DB")]
    pub state: Option<PathBuf>,
    /// The user pool (default: the directory's, else the run's).
    #[arg(long, env = "COGNITO_MIGRATE_POOL_ID")]
    pub pool_id: Option<String>,
    /// Print JSON (the same value the HTML report renders).
    #[arg(long)]
    pub json: bool,
    /// How to read the pool: `auto` picks the faster under Cognito's quotas (ListUsers pass, or
    /// AdminGetUser per user when they are fewer than a fifteenth of the pool).
    #[arg(long, value_enum, default_value = "auto")]
    pub lookup: LookupArg,
}

/// `--lookup` (shared by `report --id-map` through its own copy: commands do not import each
/// other).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LookupArg {
    Auto,
    List,
    Get,
}

impl LookupArg {
    fn lookup(self) -> Lookup {
        match self {
            LookupArg::Auto => Lookup::Auto,
            LookupArg::List => Lookup::Forced(Strategy::List),
            LookupArg::Get => Lookup::Forced(Strategy::Get),
        }
    }
}

pub async fn run(args: &ProgressArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let cp = match &args.state {
        Some(path) if !path.exists() => {
            return Err(ConfigError::new(format!("no state file at {}", path.display())).into())
        }
        Some(path) => Some(Checkpoint::open_read_only(path)?),
        None => None,
    };
    let run = match (&cp, &args.state) {
        (Some(cp), Some(path)) => Some(
            cp.current_run()?
                .ok_or_else(|| ConfigError::new(format!("{} holds no run yet", path.display())))?,
        ),
        _ => None,
    };
    let dir = match &args.directory {
        Some(path) if !path.exists() => {
            return Err(ConfigError::new(format!("no directory file at {}", path.display())).into())
        }
        // Not a directory file (or one of another format version): a wrong argument.
        Some(path) => Some(DirectoryFile::open(path).map_err(|e| ConfigError::new(e.to_string()))?),
        None => None,
    };
    let pool_id = args
        .pool_id
        .clone()
        .or_else(|| dir.as_ref().map(|d| d.meta().pool_id.clone()))
        .or_else(|| run.as_ref().map(|r| r.spec.pool_id.clone()))
        .ok_or_else(|| ConfigError::new("no pool: give --pool-id"))?;
    // The run's users are counted against the pool they were meant for, never another one.
    if let Some(r) = &run {
        if r.spec.pool_id != pool_id {
            return Err(ConfigError::new(format!(
                "the state's run is for pool {}, not {pool_id}",
                r.spec.pool_id
            ))
            .into());
        }
    }
    if let Some(d) = &dir {
        if d.meta().pool_id != pool_id {
            return Err(ConfigError::new(format!(
                "the directory was built for pool {}, not {pool_id}",
                d.meta().pool_id
            ))
            .into());
        }
    }
    let clients = global.clients().await?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let (progress, strategy) = views::trigger_progress(
        &clients,
        &pool_id,
        cp.as_ref().zip(run.as_ref()).map(|(c, r)| (c, r.id)),
        dir.as_ref(),
        args.lookup.lookup(),
        now_ms,
    )
    .await?;
    // Written, not `println!`: a reader that goes away (`| head`) is an error, not a panic.
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&progress)?)?;
    } else {
        write!(out, "{}", progress.table())?;
    }
    out.flush()?;
    drop(out);
    if let (Some(n), None) = (progress.in_pool_before_directory, &args.state) {
        if n > 0 {
            eprintln!(
                "warning: {n} of the arrived users were in the pool before the directory was \
                 built, so the trigger did not create them (a run imported them?): give the \
                 run's --state to leave them out"
            );
        }
    }
    eprintln!(
        "read the pool with {} ({} pool users seen)",
        strategy.as_str(),
        progress.pool_users_seen
    );
    Ok(Exit::Ok)
}
