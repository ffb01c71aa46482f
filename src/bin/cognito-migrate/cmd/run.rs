//! `cognito-migrate run`: migrate users into the pool, checkpointed so the same command resumes.
//! Glue only: the flags become a [`MigrateConfig`], the run is [`cognito_migrate::migrate::run`].

use std::path::{Path, PathBuf};

use clap::Args;
use cognito_migrate::migrate::{self, MigrateConfig};
use cognito_migrate::plan::route::{
    Mode, UnimportablePolicy, UnknownHashPolicy, UnknownProviderPolicy,
};
use cognito_migrate::progress::Output;
use cognito_migrate::sink::import_job::ImportJobConfig;

use super::args::{self, AdminArgs, StateArgs};
use super::source_args::SourceArgs;
use super::GlobalArgs;
use crate::exit::Exit;

/// Migrate users into the pool through Cognito user import jobs, recording every step in a SQLite
/// state file so that running the same command again resumes after any crash, exactly once.
///
/// Users whose hash Cognito imports keep their password (CONFIRMED); users without one are imported
/// RESET_REQUIRED; other hashes follow --unimportable (default: left to the migration trigger).
/// Only one import job may be active per account: the run waits for an active one. Ctrl-C or
/// SIGTERM stops the running job cleanly and records it (exit 3: the same command resumes).
/// Nothing is written to the pool before the whole input has been read: an input that breaks off
/// exits 2 and writes nothing.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cognito-migrate run -i users.ndjson -f auth0 --pool-id us-east-1_AbCdEf123 --state migration.db \\
      --mode import-job --role-arn arn:aws:iam::123456789012:role/CognitoImportLogs
  cognito-migrate run -i s3://exports/users.csv -f csv --mapping mapping.toml --pool-id us-east-1_AbCdEf123 \\
      --state s3://my-state-bucket/migrations/pool-1.db --break-lock --mode admin-create
  cognito-migrate status --state migration.db")]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target user pool id.
    #[arg(long, env = "COGNITO_MIGRATE_POOL_ID")]
    pub pool_id: String,
    #[command(flatten)]
    pub state: StateArgs,
    /// How users are written: import jobs, AdminCreateUser (rate-limited, exactly once), or auto
    /// (importable hashes through import jobs, everyone else through AdminCreateUser).
    #[arg(long, value_enum, default_value = "import-job")]
    pub mode: Mode,
    /// IAM role that lets Cognito write import-job logs to CloudWatch (CloudWatchLogsRoleArn).
    #[arg(long, env = "COGNITO_MIGRATE_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// What to do with password hashes Cognito cannot import.
    #[arg(long, value_enum, default_value = "trigger")]
    pub unimportable: UnimportablePolicy,
    /// What to do with a password hash that cannot be used at all (an unrecognised format, a
    /// malformed hash, an unusable marker like Django's `!…`): `reset` migrates the user without a
    /// password (counted and warned; `--unimportable reject` rejects them), `reject` rejects them.
    #[arg(long, value_enum, default_value = "reset")]
    pub unknown_hash: UnknownHashPolicy,
    /// What to do with a user who has a federated identity that cannot be linked (its provider
    /// is not in the mapping's `[providers]` table, or the pool has no such identity provider):
    /// `link-known` migrates the user and links the identities that can be linked (the others
    /// are counted per provider), `reject` rejects the user (`unknown_provider`).
    #[arg(long, value_enum, default_value = "link-known")]
    pub unknown_provider: UnknownProviderPolicy,
    /// Where import files are written while their jobs run (default: <state>.files/; with an
    /// `s3://` state, a private temporary directory, and this option is refused).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Keep import files after their jobs end (they hold personal data and hashes).
    #[arg(long)]
    pub keep_files: bool,
    /// Start a new run even though the state file holds one for another input, pool or mode.
    #[arg(long)]
    pub restart: bool,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// When a job ends Failed or with skipped/failed rows, read its CloudWatch Logs stream
    /// (/aws/cognito/userpools/<pool id>/<pool name>, <job id>/<job name>) and record each user's
    /// result and reason; also for finished jobs when resuming. Without it: counts only, and the
    /// users of such jobs are `unknown`. Needs logs:GetLogEvents.
    #[arg(long)]
    pub fetch_job_logs: bool,
    /// Import-job tuning for tests and benchmarks (not for normal use): the longest wait between
    /// two DescribeUserImportJob polls, in seconds.
    #[arg(
        long,
        hide = true,
        env = "COGNITO_MIGRATE_POLL_MAX_SECONDS",
        default_value_t = 20.0
    )]
    pub poll_max_seconds: f64,
    /// Import-job tuning for tests: split chunk files with more users than this before creating
    /// their job (Cognito's limit: 500,000).
    #[arg(long, hide = true, env = "COGNITO_MIGRATE_MAX_FILE_USERS")]
    pub max_file_users: Option<u64>,
    /// Write the password_hash of ALGORITHM in NOTATION (e.g. PBKDF2_SHA256=passlib), instead of
    /// the notation a passed `preflight` canary recorded in --state, or the default. Repeatable.
    #[arg(long = "hash-encoding", value_name = "ALGORITHM=NOTATION")]
    pub hash_encoding: Vec<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

impl RunArgs {
    /// The run's settings, resolved once from the flags, on the local state file `state`.
    pub fn config(&self, state: &Path) -> anyhow::Result<MigrateConfig> {
        let role_arn = migrate::role_arn(self.mode, self.role_arn.clone())?;
        let admin = self.admin.config()?;
        let hash_encodings = args::hash_encodings(&self.hash_encoding)?;
        let d = ImportJobConfig::default();
        let poll_max = std::time::Duration::from_secs_f64(self.poll_max_seconds.max(0.05));
        Ok(MigrateConfig {
            pool_id: self.pool_id.clone(),
            state: state.to_path_buf(),
            mode: self.mode,
            role_arn,
            unimportable: self.unimportable,
            unknown_hash: self.unknown_hash,
            unknown_provider: self.unknown_provider,
            work_dir: self.work_dir.clone(),
            restart: self.restart,
            fetch_job_logs: self.fetch_job_logs,
            import_job: ImportJobConfig {
                keep_files: self.keep_files,
                poll_min: d.poll_min.min(poll_max),
                poll_max,
                max_rows: self.max_file_users.unwrap_or(d.max_rows).max(1),
                ..d
            },
            admin,
            hash_encodings,
            progress: Output::auto(),
        })
    }
}

pub async fn run(args: &RunArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    args.state.refuse_work_dir(args.work_dir.as_deref())?;
    let held = super::take_state(&args.state, "run", global).await?;
    let result = run_held(args, global, &held).await;
    super::release_state(held, result).await
}

async fn run_held(
    args: &RunArgs,
    global: &GlobalArgs,
    held: &cognito_migrate::state_store::HeldState,
) -> anyhow::Result<Exit> {
    let config = args.config(held.path())?;
    let print = args::Print {
        json: args.json,
        fetch_job_logs: args.fetch_job_logs,
    };
    args::migrate_and_print(&args.source, config, global, None, held, print).await
}
