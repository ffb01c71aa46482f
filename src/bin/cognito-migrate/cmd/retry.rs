//! `cognito-migrate retry`: re-run only the failed users of a run after their cause is fixed; and
//! the AdminCreateUser options and glue that `run --mode admin-create|auto` shares with it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use cognito_migrate::aws::Clients;
use cognito_migrate::checkpoint::{Checkpoint, RecordSet, RunId};
use cognito_migrate::plan::route::{Mode, UnimportablePolicy, UnknownHashPolicy};
use cognito_migrate::progress::{Progress, Task, Unit};
use cognito_migrate::sink::admin_create::service::AdminService;
use cognito_migrate::sink::admin_create::{
    self, AdminCreateConfig, Feeder, OnExisting, Pipeline, Rates, Snapshot, FOLLOWUP_FAILED,
};
use cognito_migrate::source::Format;
use tokio::sync::watch;

use super::run::RunArgs;
use super::source_args::SourceArgs;
use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// How users are written with AdminCreateUser (`run --mode admin-create|auto`, `retry`).
#[derive(Clone, Debug, Args)]
pub struct AdminArgs {
    /// AdminCreateUser calls per second: Cognito's UserCreation quota (default 50 per account and
    /// Region). Raise it to match a raised quota; lower it to leave room for other callers.
    #[arg(long, default_value_t = 50.0, value_name = "RPS")]
    pub rate: f64,
    /// AdminDisableUser / AdminUpdateUserAttributes calls per second (UserUpdate quota).
    #[arg(long, default_value_t = 25.0, value_name = "RPS")]
    pub update_rate: f64,
    /// AdminAddUserToGroup calls per second (UserResourceUpdate quota).
    #[arg(long, default_value_t = 25.0, value_name = "RPS")]
    pub group_rate: f64,
    /// AdminGetUser calls per second (UserRead quota), for existing users and calls in doubt.
    #[arg(long, default_value_t = 120.0, value_name = "RPS")]
    pub read_rate: f64,
    /// AdminCreateUser calls in flight at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// A user already in the pool: `skip` compares and records it skipped; `update` applies the
    /// attributes that differ (AdminUpdateUserAttributes), its groups and disabled state.
    #[arg(long, value_enum, default_value = "skip")]
    pub on_existing: OnExisting,
    /// Move an email/phone alias that another user holds to the new user (ForceAliasCreation);
    /// without it such users fail with AliasExistsException.
    #[arg(long)]
    pub force_alias_creation: bool,
    /// Let Cognito send its invitation with a temporary password (default: MessageAction=SUPPRESS,
    /// nobody is emailed or texted).
    #[arg(long)]
    pub invite: bool,
    /// Create groups that do not exist (otherwise a user's missing group fails its follow-up).
    #[arg(long)]
    pub create_groups: bool,
}

impl AdminArgs {
    pub fn config(&self) -> anyhow::Result<AdminCreateConfig> {
        for (flag, v) in [
            ("--rate", self.rate),
            ("--update-rate", self.update_rate),
            ("--group-rate", self.group_rate),
            ("--read-rate", self.read_rate),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(ConfigError::new(format!("{flag} must be a positive number")).into());
            }
        }
        if self.concurrency == 0 {
            return Err(ConfigError::new("--concurrency must be at least 1").into());
        }
        Ok(AdminCreateConfig {
            rates: Rates {
                user_creation: self.rate,
                user_update: self.update_rate,
                user_resource_update: self.group_rate,
                user_read: self.read_rate,
                ..Rates::default()
            },
            concurrency: self.concurrency,
            on_existing: self.on_existing,
            force_alias_creation: self.force_alias_creation,
            invite: self.invite,
            create_groups: self.create_groups,
            queue: (self.concurrency * 8).max(256),
            ..AdminCreateConfig::default()
        })
    }

    pub fn service(&self, clients: &Clients, pool_id: &str) -> anyhow::Result<Arc<AdminService>> {
        Ok(Arc::new(AdminService::new(
            clients.cognito_without_sdk_retries(),
            pool_id,
            self.config()?,
        )))
    }
}

/// The AdminCreateUser writer while `run` reads: its pipeline, a Ctrl-C listener and its progress
/// (created / updated / skipped / failed counters with rate and ETA).
pub struct AdminSession {
    pipeline: Pipeline,
    task: Task,
    progress: Progress,
    reporter: tokio::task::JoinHandle<()>,
    listener: tokio::task::JoinHandle<()>,
}

fn show(task: &Task, s: &Snapshot) {
    task.set(0, s.created);
    task.set(1, s.updated);
    task.set(2, s.skipped);
    task.set(3, s.failed);
}

/// Starts the writer for `run`; hand users to the [`Feeder`], then [`AdminSession::finish`].
pub fn start_writer(
    args: &AdminArgs,
    clients: &Clients,
    pool_id: &str,
    cp: Arc<Checkpoint>,
    run: RunId,
    progress: &Progress,
) -> anyhow::Result<(Feeder, AdminSession)> {
    let service = args.service(clients, pool_id)?;
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let listener = tokio::spawn(async move {
        let signal = super::interrupted().await;
        eprintln!("interrupted ({signal}): finishing the calls in flight and recording them");
        let _ = cancel_tx.send(true);
    });
    let (feeder, pipeline) = admin_create::start(service, cp, run, cancel_rx)?;
    let snapshot = pipeline.progress();
    let task = progress.task(
        "admin-create",
        None,
        Unit::Users,
        &["created", "updated", "skipped", "failed"],
    );
    let shown = task.clone();
    let reporter = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            show(&shown, &snapshot());
        }
    });
    Ok((
        feeder,
        AdminSession {
            pipeline,
            task,
            progress: progress.clone(),
            reporter,
            listener,
        },
    ))
}

impl AdminSession {
    /// Waits for every user handed in to be settled and recorded (drop the feeder first).
    pub async fn finish(self) -> anyhow::Result<Snapshot> {
        let r = self.pipeline.finish().await;
        self.reporter.abort();
        self.listener.abort();
        let snap = r?;
        show(&self.task, &snap);
        self.task.finish("done");
        if snap.queued > 0 {
            self.progress.println(snap.line());
        }
        Ok(snap)
    }
}

/// Disable / groups for users already in the pool whose follow-ups are not done (imported users
/// after their jobs; with `retry_failed` also users failed with `followup_failed`).
pub async fn apply_followups(
    args: &AdminArgs,
    clients: &Clients,
    pool_id: &str,
    cp: Arc<Checkpoint>,
    run: RunId,
    retry_failed: bool,
) -> anyhow::Result<()> {
    let service = args.service(clients, pool_id)?;
    let s = admin_create::apply_followups(service, cp, run, retry_failed).await?;
    if s.applied + s.failed > 0 {
        eprintln!(
            "follow-ups (disable, groups): {} users done, {} failed",
            s.applied, s.failed
        );
    }
    Ok(())
}

/// Re-run only the failed users of the run in a state file, after their cause is fixed (a missing
/// group created, a conflicting alias removed, a quota raised, …). Their records are read again from
/// the run's input; users created but whose groups or disable failed only get those follow-ups.
/// Rejected users are not retried: their data must change (a new run).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  cognito-migrate retry --state migration.db --create-groups")]
pub struct RetryArgs {
    /// The run's state file.
    #[arg(long, value_name = "DB")]
    pub state: PathBuf,
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

fn policy(s: &str) -> Option<UnimportablePolicy> {
    match s {
        "Trigger" => Some(UnimportablePolicy::Trigger),
        "Reset" => Some(UnimportablePolicy::Reset),
        "Reject" => Some(UnimportablePolicy::Reject),
        _ => None,
    }
}

pub async fn run(args: &RetryArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    use clap::ValueEnum;
    if !args.state.exists() {
        return Err(ConfigError::new(format!("no state file at {}", args.state.display())).into());
    }
    let lease = super::take_lease(&args.state, "retry")?;
    let cp = Arc::new(Checkpoint::open(&args.state)?);
    let run = cp
        .current_run()?
        .ok_or_else(|| ConfigError::new(format!("{} holds no run yet", args.state.display())))?;
    let spec = &run.spec;
    let options: serde_json::Value = serde_json::from_str(&spec.options).unwrap_or_default();
    if options["hash_config"].as_bool() == Some(true) && args.hash_config.is_none() {
        return Err(ConfigError::new("this run was given --hash-config: pass it again").into());
    }
    let unrecorded =
        |what: &str| ConfigError::new(format!("the state file records an unknown {what}"));
    let format: Format = spec
        .input_format
        .parse()
        .map_err(|_| unrecorded("format"))?;
    let mode = <Mode as ValueEnum>::from_str(&spec.mode, true).map_err(|_| unrecorded("mode"))?;
    let unimportable = options["unimportable"]
        .as_str()
        .and_then(policy)
        .ok_or_else(|| unrecorded("--unimportable"))?;
    // Runs recorded before --unknown-hash existed rejected such users: keep that.
    let unknown_hash = match options["unknown_hash"].as_str() {
        None | Some("Reject") => UnknownHashPolicy::Reject,
        Some("Reset") => UnknownHashPolicy::Reset,
        Some(_) => return Err(unrecorded("--unknown-hash").into()),
    };
    let mut source = SourceArgs {
        input: spec.input_location.clone(),
        format,
        mapping: options["mapping"].as_str().map(PathBuf::from),
        hash_config: args.hash_config.clone(),
        delimiter: args.delimiter,
        firebase_layout: None,
        include_service_accounts: false,
        django_model: None,
        hashes: None,
        join_on: None,
        s3_object: Default::default(),
    };
    source.apply_recorded(&options["reader"]);
    let run_args = RunArgs {
        source,
        pool_id: spec.pool_id.clone(),
        state: args.state.clone(),
        mode,
        role_arn: args.role_arn.clone(),
        unimportable,
        unknown_hash,
        work_dir: None,
        keep_files: false,
        restart: false,
        json: args.json,
        fetch_job_logs: args.fetch_job_logs,
        poll_max_seconds: 20.0,
        max_file_users: None,
        hash_encoding: Vec::new(), // the notations a preflight canary recorded in the state
        admin: args.admin.clone(),
    };

    // Users in the pool whose follow-ups failed: only the follow-ups again.
    let mut followup_failed = 0u64;
    let mut only = RecordSet::new();
    for u in cp.retryable_failures(run.id) {
        let u = u?;
        if u.reason.as_deref() == Some(FOLLOWUP_FAILED) {
            followup_failed += 1;
        } else {
            only.insert(u.record);
        }
    }
    eprintln!(
        "retrying run {}: {} failed users to write again, {} to finish follow-ups for",
        run.id.0,
        only.len(),
        followup_failed
    );
    if followup_failed > 0 {
        let clients = global.clients().await?;
        apply_followups(
            &args.admin,
            &clients,
            &spec.pool_id,
            cp.clone(),
            run.id,
            true,
        )
        .await?;
    }
    if only.is_empty() {
        return super::status::print_status(&cp, &run, args.json);
    }
    drop(cp);
    super::run::run_scoped(&run_args, global, Some(only), &lease).await
}
