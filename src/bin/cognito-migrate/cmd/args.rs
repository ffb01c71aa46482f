//! The options `run` and `retry` share (pure clap glue, not a command), and their resolution
//! into a library [`Migration`]: settings are resolved here once; the run itself is
//! [`cognito_migrate::migrate`].

use std::sync::Arc;

use clap::Args;
use cognito_migrate::checkpoint::{Checkpoint, RecordSet};
use cognito_migrate::migrate::{self, BoxError, InputSpec, MigrateConfig, Migration, OpenInput};
use cognito_migrate::password::Notations;
use cognito_migrate::pool::PoolSchema;
use cognito_migrate::sink::admin_create::{AdminCreateConfig, OnExisting, Rates};
use cognito_migrate::source::Source;
use cognito_migrate::state_store::{HeldState, StateOptions};
use futures::future::BoxFuture;

use super::source_args::SourceArgs;
use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// The calls per second of each Cognito quota category the writers use, and how many calls are
/// in flight (`run`, `retry`, `sync`).
#[derive(Clone, Debug, Args)]
pub struct RateArgs {
    /// AdminCreateUser calls per second: Cognito's UserCreation quota (default 50 per account and
    /// Region). Raise it to match a raised quota; lower it to leave room for other callers.
    #[arg(long, default_value_t = 50.0, value_name = "RPS")]
    pub rate: f64,
    /// AdminUpdateUserAttributes / AdminDeleteUserAttributes / AdminDisableUser /
    /// AdminEnableUser / AdminDeleteUser / AdminLinkProviderForUser calls per second (UserUpdate
    /// quota).
    #[arg(long, default_value_t = 25.0, value_name = "RPS")]
    pub update_rate: f64,
    /// AdminAddUserToGroup / AdminRemoveUserFromGroup calls per second (UserResourceUpdate quota).
    #[arg(long, default_value_t = 25.0, value_name = "RPS")]
    pub group_rate: f64,
    /// AdminGetUser calls per second (UserRead quota): users already in the pool met by a create,
    /// and calls an interruption left in doubt, looked up on resume.
    #[arg(long, default_value_t = 120.0, value_name = "RPS")]
    pub read_rate: f64,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
}

impl RateArgs {
    /// Refuses a rate that is not a positive number and a concurrency of 0.
    pub fn check(&self) -> anyhow::Result<()> {
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
        Ok(())
    }
}

/// How users are written with AdminCreateUser (`run --mode admin-create|auto`, `retry`).
#[derive(Clone, Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub rates: RateArgs,
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
        let r = &self.rates;
        r.check()?;
        Ok(AdminCreateConfig {
            rates: Rates {
                user_creation: r.rate,
                user_update: r.update_rate,
                user_resource_update: r.group_rate,
                user_read: r.read_rate,
                ..Rates::default()
            },
            concurrency: r.concurrency,
            on_existing: self.on_existing,
            force_alias_creation: self.force_alias_creation,
            invite: self.invite,
            create_groups: self.create_groups,
            queue: (r.concurrency * 8).max(256),
            ..AdminCreateConfig::default()
        })
    }
}

/// Where a writer's state lives and how it is held (`run`, `retry`).
#[derive(Clone, Debug, Args)]
pub struct StateArgs {
    /// The state: a local SQLite file (created with mode 0600), or an S3 object
    /// `s3://BUCKET/KEY` (downloaded at the start, uploaded at checkpoints and at the end). The
    /// same command with the same state resumes. One run at a time: a second one exits 4 (a
    /// local state is locked with <DB>.lock, an S3 state with a lease object <KEY>.lock).
    #[arg(long, value_name = "LOCATION")]
    pub state: String,
    /// Take over the lease of an `s3://` state when it has EXPIRED (its holder died without
    /// releasing it); a live lease is never taken. Safe to pass on every scheduled run.
    #[arg(long)]
    pub break_lock: bool,
    /// Tests only: the `s3://` lease's duration in seconds (default 900), renewed every third.
    #[arg(
        long,
        hide = true,
        env = "COGNITO_MIGRATE_LEASE_SECONDS",
        default_value_t = 900.0
    )]
    pub lease_seconds: f64,
    /// Tests only: seconds between background uploads of an `s3://` state (default 60).
    #[arg(
        long,
        hide = true,
        env = "COGNITO_MIGRATE_STATE_UPLOAD_SECONDS",
        default_value_t = 60.0
    )]
    pub state_upload_seconds: f64,
}

impl StateArgs {
    /// `--work-dir` with an `s3://` state is refused: files in a work dir that outlives the
    /// state's last upload would be newer than it.
    pub fn refuse_work_dir(&self, work_dir: Option<&std::path::Path>) -> anyhow::Result<()> {
        if work_dir.is_some() && self.state.starts_with("s3://") {
            return Err(ConfigError::new(
                "--work-dir cannot be used with an s3:// state: its import files live in a private \
                 temporary directory (set TMPDIR to choose the disk)",
            )
            .into());
        }
        Ok(())
    }

    pub fn options(&self) -> anyhow::Result<StateOptions> {
        for (flag, v) in [
            ("--lease-seconds", self.lease_seconds),
            ("--state-upload-seconds", self.state_upload_seconds),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(ConfigError::new(format!("{flag} must be a positive number")).into());
            }
        }
        Ok(StateOptions {
            lease_duration: std::time::Duration::from_secs_f64(self.lease_seconds),
            break_lock: self.break_lock,
            upload_every: std::time::Duration::from_secs_f64(self.state_upload_seconds),
        })
    }
}

/// Reads `--hash-encoding` values (`run`, `preflight`).
pub fn hash_encodings(args: &[String]) -> anyhow::Result<Notations> {
    let mut n = Notations::default();
    for a in args {
        n.set_from_arg(a)
            .map_err(|e| ConfigError::new(format!("--hash-encoding {e}")))?;
    }
    Ok(n)
}

/// Opens the resources of a run (state first: a state that cannot be used is a usage error
/// before any call), fetches the pool's schema and resolves the input into a [`Migration`].
pub async fn migration(
    source: &SourceArgs,
    config: MigrateConfig,
    global: &GlobalArgs,
) -> anyhow::Result<Migration> {
    let checkpoint = Arc::new(Checkpoint::open(&config.state)?);
    let clients = global.clients().await?;
    let schema = PoolSchema::fetch(&clients.cognito, &config.pool_id).await?;
    let mapper = source.mapper(&schema)?;
    let hash_context = source.hash_context()?;
    let (size, fingerprint) = source.input_fingerprint(global).await?;
    let input = InputSpec {
        location: source.input.clone(),
        format: source.format.to_string(),
        size,
        fingerprint,
        mapping: source.mapping.as_ref().map(|p| p.display().to_string()),
        hash_config: source.hash_config.is_some(),
        reader: source.recorded_options(),
    };
    Ok(Migration {
        config,
        checkpoint,
        clients,
        schema,
        mapper,
        hash_context,
        input,
        say: Arc::new(|m: &str| eprintln!("{m}")),
    })
}

/// How the end of a run is printed.
#[derive(Clone, Copy, Debug)]
pub struct Print {
    /// The final summary as JSON on stdout.
    pub json: bool,
    /// The run read job logs (says what `unknown` users mean).
    pub fetch_job_logs: bool,
}

/// Runs the migration `config` describes (with `only`, a `retry` pass over just those records),
/// stopping cleanly on Ctrl-C or SIGTERM (or when a remote state's lease is lost), and prints
/// its end. Only the holder of the state (`held`) may call it.
pub async fn migrate_and_print(
    source: &SourceArgs,
    config: MigrateConfig,
    global: &GlobalArgs,
    only: Option<RecordSet>,
    held: &HeldState,
    print: Print,
) -> anyhow::Result<Exit> {
    let output = config.progress;
    let m = migration(source, config, global).await?;
    let cp = m.checkpoint.clone();
    let input = CliInput { source, global };
    let (cancel, listener) = super::cancel_on_signals();
    let lost = held.lost();
    let stop = cancel.clone();
    let watcher = tokio::spawn(async move {
        let why = lost.await;
        eprintln!("stopping: {why}; this run no longer owns the state");
        stop.cancel();
    });
    let report = migrate::run(m, &input, only, &cancel, held.lease()).await;
    listener.abort();
    watcher.abort();
    super::output::print_report(&cp, &report?, output, print.json, print.fetch_job_logs)
}

/// The input named by [`SourceArgs`], opened when the run's first pass needs it.
pub struct CliInput<'a> {
    pub source: &'a SourceArgs,
    pub global: &'a GlobalArgs,
}

impl OpenInput for CliInput<'_> {
    fn open(&self) -> BoxFuture<'_, Result<Box<dyn Source>, BoxError>> {
        Box::pin(async move { Ok(self.source.open_source(self.global).await?) })
    }
}
