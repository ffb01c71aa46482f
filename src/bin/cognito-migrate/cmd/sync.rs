//! `cognito-migrate sync`: keep the pool in step with its source, writing only real differences.
//! Glue only: the flags become a [`SyncJob`], the work is [`cognito_migrate::sync::sync`]; this
//! file prints the result and the one JSON summary line.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use cognito_migrate::listing::ListOptions;
use cognito_migrate::migrate::{self, MigrateConfig};
use cognito_migrate::plan::route::{
    Mode, UnimportablePolicy, UnknownHashPolicy, UnknownProviderPolicy,
};
use cognito_migrate::progress::Output;
use cognito_migrate::sink::admin_create::OnExisting;
use cognito_migrate::sink::import_job::ImportJobConfig;
use cognito_migrate::sync::{
    self, Brake, MatchKey, OnMissing, Persist, SyncConfig, SyncJob, SyncOutcome, SyncReport,
    UserChangesConfig,
};

use cognito_migrate::migrate::BoxError;
use cognito_migrate::state_store::HeldState;
use futures::future::BoxFuture;

use super::args::{self, AdminArgs, CliInput, RateArgs, StateArgs};
use super::source_args::SourceArgs;
use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnMissingArg {
    Disable,
    Delete,
    Ignore,
}

/// Keep a user pool in step with its source: create new users, update changed ones (only the
/// attributes that differ), disable (or delete) users gone from the source and enable those who
/// come back; an unchanged user costs no call at all.
///
/// The state (--state) remembers per user what was last written; the same command resumes an
/// interrupted sync. Removals are held back (exit 7) when they exceed --max-removals or when the
/// source looks incomplete. --plan writes nothing and exits 6 when there are changes to make.
/// The last line on stderr is one JSON object summarising the sync (for log metric filters).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cognito-migrate sync -i users.ndjson -f auth0 --pool-id us-east-1_AbCdEf123 --state sync.db \\
      --role-arn arn:aws:iam::123456789012:role/CognitoImportLogs --plan
  cognito-migrate sync -i users.ndjson -f auth0 --pool-id us-east-1_AbCdEf123 --state sync.db \\
      --role-arn arn:aws:iam::123456789012:role/CognitoImportLogs")]
pub struct SyncArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target user pool id.
    #[arg(long, env = "COGNITO_MIGRATE_POOL_ID")]
    pub pool_id: String,
    #[command(flatten)]
    pub state: StateArgs,
    /// The key that identifies a user across syncs: the mapped username (default), `email`, or a
    /// mapped custom attribute (`custom:legacy_id`).
    #[arg(long = "match", default_value = "username", value_name = "KEY")]
    pub match_key: String,
    /// Users the state knows that the source no longer has: disable them (AdminDisableUser),
    /// delete them (AdminDeleteUser), or leave them.
    #[arg(long, value_enum, default_value = "disable")]
    pub on_missing: OnMissingArg,
    /// The most disables + deletes of users gone from the source in one sync: a count or a
    /// percentage of the users the state knows (a percentage allows at most 1,000). Over it, no
    /// removal is written and they are listed as staged (exit 7).
    #[arg(long, default_value = "5%", value_name = "N|P%")]
    pub max_removals: String,
    /// Let removals through whatever --max-removals says.
    #[arg(long)]
    pub allow_removals: bool,
    /// Above this share of rejected records (percent) the source counts as incomplete: no
    /// removal is written.
    #[arg(long, default_value_t = 1.0, value_name = "P")]
    pub max_rejected: f64,
    /// Write nothing: print the change set (counts per kind; with --json every user with the
    /// names of the attributes that change). Exit 6 when there are changes to make.
    #[arg(long)]
    pub plan: bool,
    /// Reconcile with the pool in this sync: list every user (ListUsers) and the managed groups'
    /// members, adopt users created behind the tool's back (e.g. by the migration trigger) and
    /// correct drift (console edits, deleted users). Also done automatically on a new state and
    /// when the last one is older than --reconcile-every.
    #[arg(long)]
    pub full: bool,
    /// How often a full reconcile runs by itself: e.g. 24h (default), 90m, 7d; 0 makes every
    /// sync a full one.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub reconcile_every: String,
    /// ListUsers / ListUsersInGroup calls per second in a full reconcile (the UserList quota,
    /// 30 per account and Region; lower it to leave room for other callers).
    #[arg(long, default_value_t = 30.0, value_name = "RPS")]
    pub list_rate: f64,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// How new users are created: auto (importable hashes through import jobs, the rest through
    /// AdminCreateUser), import-job, or admin-create.
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: Mode,
    /// IAM role that lets Cognito write import-job logs to CloudWatch (modes auto and import-job).
    #[arg(long, env = "COGNITO_MIGRATE_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// What to do with password hashes Cognito cannot import (new users).
    #[arg(long, value_enum, default_value = "trigger")]
    pub unimportable: UnimportablePolicy,
    /// What to do with a user who has a federated identity that cannot be linked (see `run
    /// --help`): `link-known` links what can be linked, `reject` rejects the user.
    #[arg(long, value_enum, default_value = "link-known")]
    pub unknown_provider: UnknownProviderPolicy,
    /// What to do with a password hash that cannot be used at all (new users).
    #[arg(long, value_enum, default_value = "reset")]
    pub unknown_hash: UnknownHashPolicy,
    /// Where import files are written while their jobs run (default: <state>.files/).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Read failed import jobs' CloudWatch Logs for per-user results (needs logs:GetLogEvents).
    #[arg(long)]
    pub fetch_job_logs: bool,
    /// Write the password_hash of ALGORITHM in NOTATION (see `run --help`). Repeatable.
    #[arg(long = "hash-encoding", value_name = "ALGORITHM=NOTATION")]
    pub hash_encoding: Vec<String>,
    /// Import-job tuning for tests: the longest wait between two polls, in seconds.
    #[arg(
        long,
        hide = true,
        env = "COGNITO_MIGRATE_POLL_MAX_SECONDS",
        default_value_t = 20.0
    )]
    pub poll_max_seconds: f64,
    #[command(flatten)]
    pub rates: RateArgs,
    /// Create the groups users are to be added to that do not exist in the pool.
    #[arg(long)]
    pub create_groups: bool,
    /// Move an email/phone alias another user holds to the new user (ForceAliasCreation).
    #[arg(long)]
    pub force_alias_creation: bool,
}

impl SyncArgs {
    fn sync_config(&self, state: PathBuf) -> anyhow::Result<SyncConfig> {
        let match_key: MatchKey = self.match_key.parse().map_err(ConfigError::new)?;
        let max_removals: Brake = self.max_removals.parse().map_err(ConfigError::new)?;
        let reconcile_every = duration(&self.reconcile_every).ok_or_else(|| {
            ConfigError::new(format!(
                "--reconcile-every {:?}: expected a duration such as 24h, 90m, 3600s or 7d",
                self.reconcile_every
            ))
        })?;
        if !(self.list_rate > 0.0 && self.list_rate.is_finite()) {
            return Err(ConfigError::new("--list-rate must be a positive number").into());
        }
        if !(0.0..=100.0).contains(&self.max_rejected) {
            return Err(ConfigError::new("--max-rejected must be a percentage (0 to 100)").into());
        }
        Ok(SyncConfig {
            pool_id: self.pool_id.clone(),
            state,
            match_key,
            on_missing: match self.on_missing {
                OnMissingArg::Disable => OnMissing::Disable,
                OnMissingArg::Delete => OnMissing::Delete,
                OnMissingArg::Ignore => OnMissing::Ignore,
            },
            max_removals,
            allow_removals: self.allow_removals,
            max_rejected_percent: self.max_rejected,
            plan: self.plan,
            create_groups: self.create_groups,
            full: self.full,
            reconcile_every,
            listing: ListOptions {
                rate: self.list_rate,
                ..ListOptions::default()
            },
            writes: UserChangesConfig {
                update_rate: self.rates.update_rate,
                resource_update_rate: self.rates.group_rate,
                concurrency: self.rates.concurrency,
                read_rate: self.rates.read_rate,
                ..UserChangesConfig::default()
            },
            persist_every: std::time::Duration::from_secs(60),
            state_may_lag: self.state.state.starts_with("s3://"),
        })
    }

    /// The create path's settings (`migrate::run` with `--on-existing update`: a user already in
    /// the pool is adopted and brought in line).
    fn migrate_config(&self, state: PathBuf) -> anyhow::Result<MigrateConfig> {
        let role_arn = migrate::role_arn(self.mode, self.role_arn.clone())?;
        let admin = AdminArgs {
            rates: self.rates.clone(),
            on_existing: OnExisting::Update,
            force_alias_creation: self.force_alias_creation,
            invite: false,
            create_groups: self.create_groups,
        }
        .config()?;
        let d = ImportJobConfig::default();
        let poll_max = std::time::Duration::from_secs_f64(self.poll_max_seconds.max(0.05));
        Ok(MigrateConfig {
            pool_id: self.pool_id.clone(),
            state,
            mode: self.mode,
            role_arn,
            unimportable: self.unimportable,
            unknown_hash: self.unknown_hash,
            unknown_provider: self.unknown_provider,
            work_dir: self.work_dir.clone(),
            restart: true,
            fetch_job_logs: self.fetch_job_logs,
            import_job: ImportJobConfig {
                poll_min: d.poll_min.min(poll_max),
                poll_max,
                ..d
            },
            admin,
            hash_encodings: args::hash_encodings(&self.hash_encoding)?,
            progress: Output::auto(),
        })
    }
}

pub async fn run(args: &SyncArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let result = sync_and_print(args, global).await;
    match result {
        Ok((exit, report)) => {
            summary_line(args, Some(&report), exit, started);
            Ok(exit)
        }
        Err(err) => {
            // Said here as `main` says it, so that the summary line is the last line.
            let (exit, hint) = crate::exit::classify(&err);
            eprintln!("error: {}", cognito_migrate::display_chain(err.as_ref()));
            if let Some(hint) = hint {
                eprintln!("hint: {hint}");
            }
            summary_line(args, None, exit, started);
            Ok(exit)
        }
    }
}

async fn sync_and_print(
    args: &SyncArgs,
    global: &GlobalArgs,
) -> anyhow::Result<(Exit, SyncReport)> {
    if args.source.input == "-" {
        return Err(ConfigError::new(
            "sync reads its input twice (to find the changes, then to create the new users): \
             --input - (stdin) cannot be read again",
        )
        .with_hint("write the export to a file or to s3:// and give that")
        .into());
    }
    args.state.refuse_work_dir(args.work_dir.as_deref())?;
    let held = super::take_state(&args.state, "sync", global).await?;
    let result = sync_held(args, global, &held).await;
    match (result, held.release().await) {
        (Ok(done), Ok(())) => Ok(done),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => {
            Err(anyhow::Error::new(e).context(format!("saving the state to {}", args.state.state)))
        }
    }
}

/// The held state as sync's persistence hook: an `s3://` state is uploaded at sync's
/// checkpoints (a local one needs nothing beyond its own commits).
struct HeldPersist<'a>(&'a HeldState);

impl Persist for HeldPersist<'_> {
    fn persist(&self) -> BoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move { self.0.persist().await.map_err(|e| Box::new(e) as BoxError) })
    }
}

async fn sync_held(
    args: &SyncArgs,
    global: &GlobalArgs,
    held: &HeldState,
) -> anyhow::Result<(Exit, SyncReport)> {
    let state = held.path().to_path_buf();
    let config = args.sync_config(state.clone())?;
    let migration = args::migration(&args.source, args.migrate_config(state)?, global).await?;
    let detect_mapper = args.source.mapper(&migration.schema)?;
    let input = CliInput {
        source: &args.source,
        global,
    };
    let job = SyncJob {
        config,
        migration,
        detect_mapper,
    };
    let (cancel, listener) = super::cancel_on_signals();
    let lost = held.lost();
    let stop = cancel.clone();
    let watcher = tokio::spawn(async move {
        let why = lost.await;
        eprintln!("stopping: {why}; this sync no longer owns the state");
        stop.cancel();
    });
    let report = sync::sync(job, &input, &cancel, held.lease(), &HeldPersist(held)).await;
    listener.abort();
    watcher.abort();
    let report = report?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let c = &report.counts;
    let verb = if report.plan { "would be" } else { "were" };
    eprintln!(
        "sync {}{}: {} records ({} rejected, {} unchanged); {} created, {} updated, {} disabled, \
         {} enabled, {} deleted, {} group adds, {} group removes {verb} written; {} users failed; \
         {} removals staged",
        report.id,
        if report.plan { " (plan)" } else { "" },
        c.records,
        c.rejected,
        c.unchanged,
        c.created,
        c.updated,
        c.disabled,
        c.enabled,
        c.deleted,
        c.group_adds,
        c.group_removes,
        c.failed,
        c.staged_removals
    );
    if let Some(why) = &report.no_removals_because {
        eprintln!("no removal was written: {why}");
    }
    if args.json {
        let out = serde_json::json!({
            "sync": report.id,
            "plan": report.plan,
            "outcome": report.outcome.as_str(),
            "counts": c,
            "no_removals_because": report.no_removals_because,
            "users": report.planned,
        });
        println!("{out}");
    }
    let exit = match report.outcome {
        SyncOutcome::Ok => Exit::Ok,
        SyncOutcome::ChangesPending => Exit::ChangesPending,
        SyncOutcome::RemovalsStaged => Exit::RemovalsStaged,
        SyncOutcome::FailedUsers | SyncOutcome::Rejected => Exit::SomeFailed,
        SyncOutcome::Fatal => Exit::Fatal,
    };
    Ok((exit, report))
}

/// The one JSON line on stderr that ends every sync (the shared format; no usernames, values or
/// secrets), also when it failed.
fn summary_line(args: &SyncArgs, report: Option<&SyncReport>, exit: Exit, started: Instant) {
    let c = report.map(|r| r.counts).unwrap_or_default();
    let outcome = report.map(|r| r.outcome).unwrap_or(SyncOutcome::Fatal);
    let line = serde_json::json!({
        "event": "cognito-migrate.sync",
        "version": 1,
        "pool_id": args.pool_id,
        "plan": args.plan,
        "full": report.map(|r| r.full).unwrap_or(false),
        "outcome": outcome.as_str(),
        "exit_code": exit as u8,
        "records": c.records,
        "rejected": c.rejected,
        "unchanged": c.unchanged,
        "created": c.created,
        "updated": c.updated,
        "disabled": c.disabled,
        "enabled": c.enabled,
        "deleted": c.deleted,
        "group_adds": c.group_adds,
        "group_removes": c.group_removes,
        "failed": c.failed,
        "staged_removals": c.staged_removals,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    eprintln!("{line}");
}

/// `24h`, `90m`, `3600s`, `7d` or `0`.
fn duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let split = s.len().checked_sub(1)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}
