//! A migration run as a library API: what `cognito-migrate run` and `retry` do (and what `sync`
//! creates its new users with), so that a run can be driven and tested in-process.
//!
//! The caller resolves its settings once into a [`Migration`] (a [`MigrateConfig`] plus the
//! opened state, the AWS clients, the pool's schema, the mapper and the input's identity), takes
//! the state's [`Lease`], and calls [`run`]:
//!
//! 1. **Pass 1** (read, map, route, record, spill): every record of the input is mapped and
//!    routed; import users go into chunk files, AdminCreateUser users into a spill file, and every
//!    outcome is recorded in the checkpoint. Nothing is written to the pool in this pass, so an
//!    input that breaks off sets the new run aside ([`Checkpoint::abandon_run`]). A marker file
//!    says the input was read whole, so a resumed run skips the pass.
//! 2. **Pass 2** (writers): the spilled users go through AdminCreateUser, then every chunk through
//!    its import job, then the follow-ups (disable, groups) of imported users.
//!
//! Cancellation is a [`CancelToken`] (the CLI triggers it on SIGINT/SIGTERM; a test directly):
//! pass 1 stops at the next record, the AdminCreateUser writer finishes its calls in flight, the
//! import-job writer stops its running job; all is recorded and the same run resumes.
//! [`retry`] reads a finished run back from its state to write only its failed users again.

mod admin;
mod retry;
mod sink;
#[cfg(test)]
mod tests;
mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::aws::Clients;
use crate::checkpoint::{
    Checkpoint, CheckpointError, RecordSet, Recorder, RecorderError, Run, RunSpec,
};
use crate::lease::Lease;
use crate::mapping::Mapper;
use crate::password::{HashContext, Notations, NotationsError};
use crate::plan::route::{
    Mode, Router, UnimportablePolicy, UnknownHashPolicy, UnknownProviderPolicy,
};
use crate::plan::{self, PlanConfig, PlanError};
use crate::pool::PoolSchema;
use crate::progress::{Output, Progress, Unit};
use crate::sink::admin_create::spill::SpillWriter;
use crate::sink::admin_create::{AdminCreateConfig, AdminCreateError, FollowupSummary};
use crate::sink::import_job::service::{http_client, ImportJobs};
use crate::sink::import_job::{
    logs as job_logs, Event, ImportJobConfig, ImportJobError, ImportJobWriter, JobLogs,
};
use crate::source::{RecordError, Source};

pub use admin::apply_followups;
pub use retry::{retry_split, RecordedRun, RetrySplit};
pub use view::job_table;

/// An error of the caller's own making, boxed: what an [`OpenInput`] fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Opens the run's input for reading; called only when pass 1 runs (a resumed run whose input
/// was read whole does not open it again).
pub trait OpenInput: Sync {
    fn open(&self) -> BoxFuture<'_, Result<Box<dyn Source>, BoxError>>;
}

impl<F> OpenInput for F
where
    F: Fn() -> Result<Box<dyn Source>, BoxError> + Sync,
{
    fn open(&self) -> BoxFuture<'_, Result<Box<dyn Source>, BoxError>> {
        let opened = self();
        Box::pin(async move { opened })
    }
}

/// What identifies the input of a run in its state file (a different input is another run).
#[derive(Clone, Debug)]
pub struct InputSpec {
    /// A path, `-` for stdin, `s3://bucket/key`, or a pool id (`--format cognito`).
    pub location: String,
    pub format: String,
    /// Bytes, 0 when unknown (stdin, a pool).
    pub size: u64,
    /// The content fingerprint (`checkpoint::fingerprint_file`, an S3 ETag, `stdin`, …).
    pub fingerprint: String,
    /// The mapping file laid over the built-in mapping, as given.
    pub mapping: Option<String>,
    /// Whether Firebase hash parameters were given (`retry` then needs them again).
    pub hash_config: bool,
    /// The reader options, recorded so that `retry` reads the input the same way.
    pub reader: serde_json::Value,
}

/// The settings of a run, resolved once from flags and environment.
#[derive(Clone, Debug)]
pub struct MigrateConfig {
    pub pool_id: String,
    /// The state file (SQLite); also names the default work dir.
    pub state: PathBuf,
    pub mode: Mode,
    /// CloudWatch Logs role for import jobs (see [`role_arn`]); empty in mode admin-create.
    pub role_arn: String,
    pub unimportable: UnimportablePolicy,
    pub unknown_hash: UnknownHashPolicy,
    /// What users with a federated identity that cannot be linked become.
    pub unknown_provider: UnknownProviderPolicy,
    /// Where import and spill files are written (default: `<state>.files/`).
    pub work_dir: Option<PathBuf>,
    /// Start a new run although the state holds one for another input, pool or mode.
    pub restart: bool,
    /// Read failed jobs' CloudWatch Logs for per-user results.
    pub fetch_job_logs: bool,
    pub import_job: ImportJobConfig,
    pub admin: AdminCreateConfig,
    /// `password_hash` notations set by hand; they win over what a preflight canary proved.
    pub hash_encodings: Notations,
    pub progress: Output,
}

impl MigrateConfig {
    /// The work dir: as given, or `<state>.files/`.
    pub fn work_dir(&self) -> PathBuf {
        self.work_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.files", self.state.display())))
    }
}

/// The CloudWatch Logs role a mode needs: required for import-job and auto, unused (empty) for
/// admin-create.
pub fn role_arn(mode: Mode, given: Option<String>) -> Result<String, MigrateError> {
    match (mode, given) {
        (Mode::AdminCreate, r) => Ok(r.unwrap_or_default()),
        (_, Some(r)) => Ok(r),
        (mode, None) => Err(MigrateError::Config(format!(
            "--mode {} needs --role-arn (the CloudWatch Logs role Cognito writes job results with)",
            mode.as_str()
        ))),
    }
}

/// Everything a run needs, resolved: its settings and the opened resources.
pub struct Migration {
    pub config: MigrateConfig,
    pub checkpoint: Arc<Checkpoint>,
    pub clients: Clients,
    pub schema: PoolSchema,
    pub mapper: Mapper,
    pub hash_context: HashContext,
    pub input: InputSpec,
    /// Where the run's notices go that must show whatever the progress output (that a run is
    /// resumed): the CLI prints them on stderr.
    pub say: Arc<dyn Fn(&str) + Send + Sync>,
}

/// Stops a run cleanly: pass 1 at the next record, the writers after recording what they did.
/// Clones share the one state.
#[derive(Clone, Debug)]
pub struct CancelToken(Arc<watch::Sender<bool>>);

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken(Arc::new(watch::channel(false).0))
    }
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// A receiver for the writers (they check its value, then wait for a change).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// How a run that returned ended: the run and what is left to say about it.
#[derive(Debug)]
pub struct Report {
    pub run: Run,
    /// Follow-ups (disable, groups) applied to imported users after their jobs.
    pub followups: FollowupSummary,
    /// Users whose import job gave no per-user result: not known to be in the pool.
    pub unknown: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A setting or state that does not fit the run (exit code 2 in the CLI).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    #[error(transparent)]
    Notations(#[from] NotationsError),
    #[error("opening the input")]
    Open(#[source] BoxError),
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The reading pass failed; `nothing_written` says whether the pool was left untouched by
    /// this run (`Some(true)`: a new run, now set aside) or by this pass (`Some(false)`).
    #[error("{}", match .nothing_written {
        Some(true) => "nothing was written to the pool",
        Some(false) => "nothing more was written to the pool",
        None => "reading the input failed",
    })]
    Read {
        nothing_written: Option<bool>,
        #[source]
        source: PlanError,
    },
    /// Setting aside a new run whose input broke off failed.
    #[error("{read}")]
    SetAside {
        read: String,
        #[source]
        source: CheckpointError,
    },
    #[error(transparent)]
    AdminCreate(#[from] AdminCreateError),
    #[error(transparent)]
    ImportJob(#[from] ImportJobError),
    #[error("a worker task failed")]
    Task(#[from] tokio::task::JoinError),
    /// Cancelled before the writers were done: everything done is recorded.
    #[error("interrupted; what was done is recorded: run the same command again to resume")]
    Interrupted,
}

impl MigrateError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MigrateError {
        let path = path.display().to_string();
        move |source| MigrateError::Io { what, path, source }
    }

    /// A usage or configuration problem rather than a failure of the run.
    pub fn is_configuration(&self) -> bool {
        matches!(self, MigrateError::Config(_))
    }
}

/// Deletes import files in the work dir that no recorded chunk refers to (left by a crash
/// mid-write, complete or `.partial`), and other runs' AdminCreateUser spill files.
fn clean_orphans(dir: &Path, cp: &Checkpoint, run: &Run) -> Result<(), MigrateError> {
    let known: std::collections::HashSet<String> = cp
        .chunks(run.id)?
        .into_iter()
        .map(|c| c.file_path)
        .collect();
    // AdminCreateUser spill files of other runs (superseded or set aside) hold personal data
    // nobody will read again.
    let own_spill = format!(".admin-create-{}", run.token);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path().display().to_string();
            let name = e.file_name().to_string_lossy().to_string();
            let orphan_file =
                (p.ends_with(".csv") || p.ends_with(".partial")) && !known.contains(&p);
            let other_spill = name.starts_with(".admin-create-") && !name.starts_with(&own_spill);
            if orphan_file || other_spill {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    Ok(())
}

/// The error of a reading pass that failed. When the input broke off (a fatal record error) in
/// the first pass of a new run, nothing was written to the pool, so the run is set aside
/// ([`Checkpoint::abandon_run`]): the same state file then takes the fixed input.
fn read_failed(e: PlanError, cp: &Checkpoint, run: &Run) -> MigrateError {
    let broken = {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut found = false;
        while let Some(c) = cause {
            found |= c.downcast_ref::<RecordError>().is_some_and(|r| r.fatal);
            cause = c.source();
        }
        found
    };
    if !broken {
        return MigrateError::Read {
            nothing_written: None,
            source: e,
        };
    }
    if !run.resumed {
        if let Err(a) = cp.abandon_run(run.id) {
            return MigrateError::SetAside {
                read: crate::display_chain(&e),
                source: a,
            };
        }
        return MigrateError::Read {
            nothing_written: Some(true),
            source: e,
        };
    }
    MigrateError::Read {
        nothing_written: Some(false),
        source: e,
    }
}

/// Runs a migration to its end (or, with `only`, a `retry` pass over just those records of the
/// run's input), resuming what the state holds. Only the holder of the state's `lease` may call
/// it. The caller shows the run's status from the returned [`Report`].
pub async fn run(
    m: Migration,
    input: &dyn OpenInput,
    only: Option<RecordSet>,
    cancel: &CancelToken,
    _lease: &Lease,
) -> Result<Report, MigrateError> {
    let Migration {
        config: cfg,
        checkpoint: cp,
        clients,
        schema,
        mut mapper,
        hash_context,
        input: spec_in,
        say,
    } = m;
    // The password_hash notation per algorithm: set by hand, else what a passed preflight
    // canary proved for this pool (recorded in this state file), else the default.
    let proved = cp.canary_notations(&cfg.pool_id)?;
    let mut notations = proved.clone();
    for (alg, n) in cfg.hash_encodings.iter() {
        notations.set(alg, n)?;
    }
    let router = Router::new(cfg.mode, cfg.unimportable, hash_context, &schema)
        .with_unknown_hash(cfg.unknown_hash)
        .with_unknown_provider(cfg.unknown_provider)
        .with_notations(notations.clone());
    let options = serde_json::json!({
        "unimportable": format!("{:?}", cfg.unimportable),
        "unknown_hash": format!("{:?}", cfg.unknown_hash),
        "unknown_provider": format!("{:?}", cfg.unknown_provider),
        "mapping": spec_in.mapping,
        "hash_config": spec_in.hash_config,
        "reader": spec_in.reader,
    });
    let spec = RunSpec {
        input_location: spec_in.location.clone(),
        input_format: spec_in.format.clone(),
        input_size: spec_in.size,
        input_fingerprint: spec_in.fingerprint.clone(),
        pool_id: cfg.pool_id.clone(),
        mode: cfg.mode.as_str().to_string(),
        options: options.to_string(),
    };
    let run = cp.begin_run(&spec, cfg.restart).map_err(|e| match e {
        CheckpointError::Mismatch { .. } => MigrateError::Config(e.to_string()),
        e => e.into(),
    })?;
    if run.resumed {
        say(&format!(
            "resuming run {} from {}",
            run.id.0,
            cfg.state.display()
        ));
    }
    let work_dir = cfg.work_dir();
    std::fs::create_dir_all(&work_dir).map_err(MigrateError::io("creating", &work_dir))?;
    clean_orphans(&work_dir, &cp, &run)?;
    let progress = Progress::new(cfg.progress);

    // Users for AdminCreateUser wait in this file until the input has been read to its end
    // (a retry's own file: the run's may still be needed).
    // Every mode: users who only sign in through identity providers (the `federated` route)
    // are created by AdminCreateUser in import-job mode too.
    let admin_mode = true;
    let spill_path = work_dir.join(format!(
        ".admin-create-{}{}.ndjson",
        run.token,
        if only.is_some() { "-retry" } else { "" }
    ));

    // Pass 1 (skipped when a resumed run had read its whole input already: the marker file is
    // written once every user of the input is recorded or spilled, and removed when the run is
    // complete). Nothing is written to the pool during this pass.
    let read_marker = work_dir.join(format!(".input-read-{}", run.token));
    let read_before = only.is_none()
        && run.resumed
        && read_marker.exists()
        && (!admin_mode || spill_path.exists());
    if only.is_none() && run.resumed && !read_before {
        // A resumed run whose work dir is new (a state from S3 resumed on another machine, a
        // deleted work dir): import files named by chunks that never started are gone. Those
        // chunks are forgotten, and the reading pass below records their users again.
        let forgotten = cp.forget_chunks_without_files(run.id)?;
        if !forgotten.is_empty() {
            say(&format!(
                "{} import files of this run are gone (written in another work dir): their users \
                 are read and chunked again",
                forgotten.len()
            ));
        }
    }
    if read_before {
        progress.println("the input was read and recorded before: going on with writing users");
    } else {
        let skip = cp.skip_set(run.id)?;
        let mut source = input.open().await.map_err(MigrateError::Open)?;
        let mut plan_cfg = PlanConfig::new(&work_dir);
        plan_cfg.file_prefix = format!(
            "r{}-{}-",
            run.id.0,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        );
        let stdin = spec_in.location == "-";
        let read = progress.task(
            "reading",
            (!stdin).then_some(spec_in.size),
            Unit::Bytes,
            &[],
        );
        let spill = if admin_mode {
            Some(
                SpillWriter::create(&spill_path)
                    .map_err(MigrateError::io("creating", &spill_path))?,
            )
        } else {
            None
        };
        let mut sink = sink::RunSink {
            recorder: Recorder::start(cp.clone(), run.id),
            skip,
            read: read.clone(),
            admin: spill,
            only: only.clone(),
            cancel: cancel.clone(),
        };
        let summary = tokio::task::spawn_blocking(move || -> Result<_, MigrateError> {
            let summary =
                plan::execute(source.as_mut(), &mut mapper, &router, &plan_cfg, &mut sink)
                    .map_err(|e| MigrateError::Read {
                        nothing_written: None,
                        source: e,
                    })?;
            sink.recorder.finish()?;
            if let Some(spill) = sink.admin.take() {
                let path = spill.path().to_path_buf();
                spill.finish().map_err(MigrateError::io("writing", &path))?;
            }
            Ok(summary)
        })
        .await?;
        let summary = match summary {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&spill_path);
                if cancel.is_cancelled() {
                    return Err(MigrateError::Interrupted);
                }
                return Err(match e {
                    MigrateError::Read { source, .. } => read_failed(source, &cp, &run),
                    e => e,
                });
            }
        };
        // The same warnings `plan` shows (unusable hashes, source warnings).
        for w in &summary.warnings {
            tracing::warn!("{w}");
        }
        if let Some(p) = &summary.rejects_file {
            let _ = std::fs::remove_file(p);
        }
        if !stdin {
            read.set(0, spec_in.size);
        }
        read.finish("read");
        if summary.records > 0 {
            progress.println(format!(
                "read {} records: {} to migrate, {} rejected",
                summary.records, summary.routed, summary.rejected
            ));
        }
        for alg in crate::preflight::Needs::planned_algorithms(&summary.routes) {
            if !proved.is_set(alg) && !cfg.hash_encodings.is_set(alg) {
                tracing::warn!(
                    "no hash canary has passed for pool {} and {alg} in {}: the {} \
                     notation of its password_hash values is unproven; run `cognito-migrate \
                     preflight --state {}` first (or set it with --hash-encoding {alg}=NOTATION)",
                    cfg.pool_id,
                    cfg.state.display(),
                    notations.get(alg),
                    cfg.state.display()
                );
            }
        }
        let f = std::fs::File::create(&read_marker)
            .map_err(MigrateError::io("creating", &read_marker))?;
        f.sync_all()
            .map_err(MigrateError::io("writing", &read_marker))?;
    }

    // The AdminCreateUser users, now that the input is known to be whole (in import-job mode
    // only when some user took the `federated` route).
    let spilled_any = std::fs::metadata(&spill_path).is_ok_and(|m| m.len() > 0);
    if admin_mode && spill_path.exists() && (cfg.mode != Mode::ImportJob || spilled_any) {
        admin::write_spilled(
            &cfg.admin,
            &clients,
            &cfg.pool_id,
            &cp,
            &run,
            &spill_path,
            only.is_some(),
            &progress,
            cancel,
        )
        .await?;
        if only.is_some() {
            let _ = std::fs::remove_file(&spill_path);
        }
    }
    if cancel.is_cancelled() {
        progress.finish();
        return Err(MigrateError::Interrupted);
    }

    // Pass 2: drive each chunk through its import job.
    let view = Arc::new(view::JobView {
        progress: progress.clone(),
        jobs: Default::default(),
    });
    let logs = cfg.fetch_job_logs.then(|| JobLogs {
        client: clients.logs.clone(),
        group: job_logs::log_group(&cfg.pool_id, &schema.pool_name),
    });
    let writer = ImportJobWriter {
        jobs: ImportJobs {
            client: clients.cognito_without_sdk_retries(),
            pool_id: cfg.pool_id.clone(),
            role_arn: cfg.role_arn.clone(),
        },
        http: http_client(),
        checkpoint: cp.clone(),
        run: run.clone(),
        cfg: cfg.import_job.clone(),
        observer: {
            let view = view.clone();
            Arc::new(move |e: &Event| view.on(e))
        },
        logs,
    };
    let result = writer.drive_all(cancel.subscribe()).await;
    progress.finish();
    result?;
    let _ = std::fs::remove_file(&read_marker);
    let _ = std::fs::remove_file(&spill_path);
    // Disable and groups for imported users (import-job and auto modes).
    let followups = apply_followups(
        &cfg.admin,
        &clients,
        &cfg.pool_id,
        cp.clone(),
        run.id,
        false,
    )
    .await?;
    let unknown = cp.counts(run.id)?.unknown;
    Ok(Report {
        run,
        followups,
        unknown,
    })
}
