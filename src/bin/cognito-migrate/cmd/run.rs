//! `cognito-migrate run`: migrate users into the pool, checkpointed so the same command resumes.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use cognito_migrate::checkpoint::{
    self, Checkpoint, ChunkSpec, ChunkUser, Outcome, RecordSet, Recorder, Run, RunSpec, UserRow,
};
use cognito_migrate::lease::Lease;
use cognito_migrate::mapping::Rejection;
use cognito_migrate::plan::chunks::ChunkFile;
use cognito_migrate::plan::route::{
    Mode, Route, Routed, Router, UnimportablePolicy, UnknownHashPolicy,
};
use cognito_migrate::plan::{self, ChunkRow, Observer, PlanConfig};
use cognito_migrate::progress::{self, Output, Progress, Table, Task, Unit};
use cognito_migrate::sink::admin_create::spill::{self, SpillWriter};
use cognito_migrate::sink::import_job::service::{http_client, ImportJobs};
use cognito_migrate::sink::import_job::{
    logs as job_logs, Event, ImportJobConfig, ImportJobError, ImportJobWriter, JobLogs,
};
use cognito_migrate::source::RecordError;

use super::retry::AdminArgs;
use super::source_args::SourceArgs;
use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

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
  cognito-migrate status --state migration.db")]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target user pool id.
    #[arg(long, env = "COGNITO_MIGRATE_POOL_ID")]
    pub pool_id: String,
    /// The state file (SQLite; created with mode 0600). The same command with the same file resumes.
    /// One run at a time: a second one on the same file exits 4 (see <DB>.lock).
    #[arg(long, value_name = "DB")]
    pub state: PathBuf,
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
    /// Where import files are written while their jobs run (default: <state>.files/).
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

/// Records plan outcomes in the checkpoint as they come: rejections, trigger users, and import
/// users into their chunk while its file is being written (the chunk becomes work once the file
/// is complete; see `checkpoint::Recorder`).
struct RunSink {
    /// Commits rows and chunks on a background thread, overlapping SQLite with reading.
    recorder: Recorder,
    skip: RecordSet,
    chunks: u64,
    /// The reading bar: input bytes consumed.
    read: Task,
    /// Users for AdminCreateUser (modes admin-create and auto), kept until the input is read to
    /// its end (see `admin_create::spill`).
    admin: Option<SpillWriter>,
    /// `retry`: only these records are read into the writers.
    only: Option<RecordSet>,
}

impl Observer for RunSink {
    fn skip(&mut self, record: u64) -> bool {
        if let Some(only) = &self.only {
            return !only.contains(record);
        }
        self.skip.contains(record)
    }

    fn routed(&mut self, r: Routed, row: Option<ChunkRow>) -> io::Result<()> {
        let u = &r.user;
        self.read.set(0, u.position.byte_offset);
        let base = UserRow::new(
            u.position,
            u.username.clone(),
            r.route.as_str(),
            Outcome::Pending,
        )
        .with_followups(!u.enabled, &u.groups);
        match (r.route, row) {
            (Route::Trigger, _) => {
                let mut row = base;
                row.outcome = Outcome::Trigger;
                if let Some(why) = &r.not_imported_because {
                    row = row.with_reason("left_to_trigger", why.clone());
                }
                self.recorder.push(row).map_err(io::Error::other)?;
            }
            (_, Some(c)) => self
                .recorder
                .push_chunk_user(ChunkUser {
                    file: c.file,
                    line: c.row,
                    row: base,
                })
                .map_err(io::Error::other)?,
            (Route::AdminCreate, None) if self.admin.is_some() => {
                self.admin.as_mut().expect("checked").push(&r.user)?;
            }
            (route, None) => {
                return Err(io::Error::other(format!(
                    "route {route} is not handled by this mode yet"
                )))
            }
        }
        Ok(())
    }

    fn rejected(&mut self, rejection: &Rejection) -> io::Result<()> {
        self.read.set(0, rejection.position.byte_offset);
        self.recorder
            .push(UserRow::rejected(rejection, ""))
            .map_err(io::Error::other)?;
        Ok(())
    }

    fn file_done(&mut self, file: &ChunkFile) -> io::Result<()> {
        let spec = ChunkSpec {
            route: file.route.as_str().to_string(),
            file_path: file.path.display().to_string(),
            row_count: file.rows,
            byte_size: file.bytes,
        };
        self.recorder
            .chunk_done(file.index, spec)
            .map_err(io::Error::other)?;
        self.chunks += 1;
        Ok(())
    }
}

/// Deletes import files in the work dir that no recorded chunk refers to (left by a crash
/// mid-write, complete or `.partial`), and other runs' AdminCreateUser spill files.
fn clean_orphans(dir: &Path, cp: &Checkpoint, run: &Run) -> anyhow::Result<()> {
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

/// Shows the import-job writer's events: a bar per upload, Imported/Skipped/Failed counters per
/// job, and messages above them (or plain lines when stderr is not a terminal).
struct JobView {
    progress: Progress,
    jobs: std::sync::Mutex<HashMap<i64, (Task, Option<Task>)>>,
}

impl JobView {
    fn tasks(&self, chunk: cognito_migrate::checkpoint::ChunkId) -> Option<(Task, Option<Task>)> {
        self.jobs.lock().unwrap().get(&chunk.0).cloned()
    }

    fn on(&self, e: &Event) {
        let p = &self.progress;
        match e {
            Event::JobCreated { chunk, job, rows, bytes } => {
                p.println(format!("chunk {chunk}: import job {job} created for {rows} users"));
                let counters = p.task(
                    &format!("job {chunk}"),
                    Some(*rows),
                    Unit::Users,
                    &["imported", "skipped", "failed"],
                );
                let upload = p.task(&format!("upload {chunk}"), Some(*bytes), Unit::Bytes, &[]);
                self.jobs.lock().unwrap().insert(chunk.0, (counters, Some(upload)));
            }
            Event::UploadProgress { chunk, sent } => {
                if let Some((_, Some(up))) = self.tasks(*chunk) {
                    up.set(0, *sent);
                }
            }
            Event::Uploaded { chunk, bytes } => {
                if let Some((_, Some(up))) = self.tasks(*chunk) {
                    up.set(0, *bytes);
                    up.finish("uploaded");
                } else {
                    p.println(format!("chunk {chunk}: file uploaded ({bytes} bytes)"));
                }
            }
            Event::Started { chunk, job } => p.println(format!("chunk {chunk}: job {job} started")),
            Event::WaitingForActiveJob { chunk } => p.println(format!(
                "chunk {chunk}: another import job is active in this account (Cognito allows one at a time); waiting for it to end"
            )),
            Event::Progress { chunk, imported, skipped, failed, rows, .. } => {
                let (t, _) = self.tasks(*chunk).unwrap_or_else(|| {
                    let t = p.task(&format!("job {chunk}"), Some(*rows), Unit::Users, &["imported", "skipped", "failed"]);
                    self.jobs.lock().unwrap().insert(chunk.0, (t.clone(), None));
                    (t, None)
                });
                t.set(0, *imported);
                t.set(1, *skipped);
                t.set(2, *failed);
            }
            Event::Finished { chunk, status, counts, message } => {
                if let Some((t, up)) = self.tasks(*chunk) {
                    t.set(0, counts.imported);
                    t.set(1, counts.skipped);
                    t.set(2, counts.failed);
                    t.finish(status.as_str());
                    if let Some(up) = up {
                        up.finish("ended");
                    }
                }
                p.println(format!(
                    "chunk {chunk}: {status}: {} imported, {} skipped, {} failed{}",
                    counts.imported,
                    counts.skipped,
                    counts.failed,
                    message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
                ));
            }
            Event::Expired { chunk, new_chunk } => p.println(format!(
                "chunk {chunk}: its job can no longer take the file; its users go into chunk {new_chunk}"
            )),
            Event::Resumed { chunk, action } => p.println(format!("chunk {chunk}: resuming ({action})")),
            Event::LogsRead { chunk, lines, matched } => p.println(format!(
                "chunk {chunk}: read {lines} result lines from the job's CloudWatch log; {matched} users updated"
            )),
            Event::LogsUnavailable { chunk, reason } => p.println(format!(
                "chunk {chunk}: per-user results unavailable ({reason}); its users are recorded as unknown"
            )),
            Event::Split { chunk, new_chunks, why } => p.println(format!(
                "chunk {chunk}: {why}; its users go into chunks {}",
                new_chunks.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
            )),
            Event::JobFailed { chunk, users, message } => p.println(format!(
                "chunk {chunk}: the job failed ({message}): {users} users recorded as failed"
            )),
        }
    }
}

/// The per-job summary table printed on stderr at the end of a run.
fn job_table(cp: &Checkpoint, run: &Run) -> anyhow::Result<Table> {
    let mut t = Table::new(&[
        "chunk", "route", "job", "status", "rows", "imported", "skipped", "failed", "time",
    ]);
    for c in cp.chunks(run.id)? {
        let n = c.counts.unwrap_or_default();
        let time = match (c.started_at, c.finished_at) {
            (Some(a), Some(b)) => b
                .duration_since(a)
                .map(progress::short_duration)
                .unwrap_or_default(),
            _ => "-".into(),
        };
        t.row(vec![
            c.id.to_string(),
            c.route.clone(),
            c.job_id.clone().unwrap_or_else(|| "-".into()),
            c.status.to_string(),
            progress::thousands(c.row_count),
            progress::thousands(n.imported),
            progress::thousands(n.skipped),
            progress::thousands(n.failed),
            time,
        ]);
    }
    Ok(t)
}

/// The error of a reading pass that failed. When the input broke off (a fatal record error) in
/// the first pass of a new run, nothing was written to the pool, so the run is set aside
/// ([`Checkpoint::abandon_run`]): the same state file then takes the fixed input.
fn read_failed(e: anyhow::Error, cp: &Checkpoint, run: &Run) -> anyhow::Error {
    let broken = e
        .chain()
        .any(|c| c.downcast_ref::<RecordError>().is_some_and(|r| r.fatal));
    if !broken {
        return e;
    }
    if !run.resumed {
        if let Err(a) = cp.abandon_run(run.id) {
            return anyhow::Error::new(a).context(format!("{e:#}"));
        }
        return e.context("nothing was written to the pool");
    }
    e.context("nothing more was written to the pool")
}

/// Hands the users of a spill file to the AdminCreateUser writer and waits until each is
/// settled and recorded. Users already settled are left out (a resumed run), except in a retry
/// (`retry_all`), whose file holds just the users to write again.
async fn write_spilled(
    args: &RunArgs,
    clients: &cognito_migrate::aws::Clients,
    cp: &Arc<Checkpoint>,
    run: &Run,
    path: &Path,
    retry_all: bool,
    progress: &Progress,
) -> anyhow::Result<()> {
    let skip = if retry_all {
        RecordSet::new()
    } else {
        cp.skip_set(run.id)?
    };
    let (feeder, admin) = super::retry::start_writer(
        &args.admin,
        clients,
        &args.pool_id,
        cp.clone(),
        run.id,
        progress,
    )?;
    let path = path.to_path_buf();
    let fed = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for user in spill::read(&path).with_context(|| format!("reading {}", path.display()))? {
            let user = user?;
            if skip.contains(user.position.record) {
                continue;
            }
            feeder.send_blocking(user, Route::AdminCreate.as_str())?;
        }
        Ok(())
    })
    .await;
    // Every user handed in is settled and recorded before returning, also when feeding failed.
    admin.finish().await?;
    fed??;
    Ok(())
}

pub async fn run(args: &RunArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let lease = super::take_lease(&args.state, "run")?;
    run_scoped(args, global, None, &lease).await
}

/// `run`, or with `only` (`retry`) a pass over just those records of the run's input. Only the
/// holder of the state's `lease` may call it.
pub async fn run_scoped(
    args: &RunArgs,
    global: &GlobalArgs,
    only: Option<RecordSet>,
    _lease: &Lease,
) -> anyhow::Result<Exit> {
    let role_arn = match (args.mode, args.role_arn.clone()) {
        (Mode::AdminCreate, r) => r.unwrap_or_default(),
        (_, Some(r)) => r,
        (mode, None) => {
            return Err(ConfigError::new(format!(
            "--mode {} needs --role-arn (the CloudWatch Logs role Cognito writes job results with)",
            mode.as_str()
        ))
            .into())
        }
    };
    args.admin.config()?;
    // Before any call: a state that cannot be used (not a state, corrupt) is a usage error.
    let cp = Arc::new(Checkpoint::open(&args.state)?);
    let clients = global.clients().await?;
    let schema = cognito_migrate::pool::PoolSchema::fetch(&clients.cognito, &args.pool_id).await?;
    let mut mapper = args.source.mapper(&schema)?;
    let by_hand = super::preflight::hash_encodings(&args.hash_encoding)?;
    let hash_context = args.source.hash_context()?;

    let (size, fp) = args.source.input_fingerprint(global).await?;
    // The password_hash notation per algorithm: --hash-encoding, else what a passed preflight
    // canary proved for this pool (recorded in this state file), else the default.
    let proved = cp.canary_notations(&args.pool_id)?;
    let mut notations = proved.clone();
    for (alg, n) in by_hand.iter() {
        notations.set(alg, n)?;
    }
    let router = Router::new(args.mode, args.unimportable, hash_context, &schema)
        .with_unknown_hash(args.unknown_hash)
        .with_notations(notations.clone());
    let options = serde_json::json!({
        "unimportable": format!("{:?}", args.unimportable),
        "unknown_hash": format!("{:?}", args.unknown_hash),
        "mapping": args.source.mapping.as_ref().map(|p| p.display().to_string()),
        "hash_config": args.source.hash_config.is_some(),
        "reader": args.source.recorded_options(),
    });
    let spec = RunSpec {
        input_location: args.source.input.clone(),
        input_format: args.source.format.to_string(),
        input_size: size,
        input_fingerprint: fp,
        pool_id: args.pool_id.clone(),
        mode: args.mode.as_str().to_string(),
        options: options.to_string(),
    };
    let run = cp.begin_run(&spec, args.restart).map_err(|e| match e {
        checkpoint::CheckpointError::Mismatch { .. } => {
            anyhow::Error::new(ConfigError::new(e.to_string()))
        }
        e => e.into(),
    })?;
    if run.resumed {
        eprintln!("resuming run {} from {}", run.id.0, args.state.display());
    }
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.files", args.state.display())));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    clean_orphans(&work_dir, &cp, &run)?;
    let progress = Progress::new(Output::auto());

    // Users for AdminCreateUser wait in this file until the input has been read to its end
    // (a retry's own file: the run's may still be needed).
    let admin_mode = args.mode != Mode::ImportJob;
    let spill_path = work_dir.join(format!(
        ".admin-create-{}{}.ndjson",
        run.token,
        if only.is_some() { "-retry" } else { "" }
    ));

    // Pass 1 (skipped when a resumed run had read its whole input already: the marker file is
    // written once every user of the input is recorded or spilled, and removed when the run is
    // complete). Nothing is written to the pool during this pass.
    let read_marker = work_dir.join(format!(".input-read-{}", run.token));
    if only.is_none() && run.resumed && read_marker.exists() && (!admin_mode || spill_path.exists())
    {
        progress.println("the input was read and recorded before: going on with writing users");
    } else {
        // Pass 1: read, map, route; write import files, spill AdminCreateUser users and record
        // every user.
        let skip = cp.skip_set(run.id)?;
        let mut source = args.source.open_source(global).await?;
        let mut cfg = PlanConfig::new(&work_dir);
        cfg.file_prefix = format!(
            "r{}-{}-",
            run.id.0,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        );
        let sink_cp = cp.clone();
        let run_id = run.id;
        let read = progress.task(
            "reading",
            (args.source.input != "-").then_some(size),
            Unit::Bytes,
            &[],
        );
        let sink_read = read.clone();
        let spill = if admin_mode {
            Some(
                SpillWriter::create(&spill_path)
                    .with_context(|| format!("creating {}", spill_path.display()))?,
            )
        } else {
            None
        };
        let only = only.clone();
        let summary = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut sink = RunSink {
                recorder: Recorder::start(sink_cp, run_id),
                skip,
                chunks: 0,
                read: sink_read,
                admin: spill,
                only,
            };
            let summary = plan::execute(source.as_mut(), &mut mapper, &router, &cfg, &mut sink)?;
            sink.recorder.finish()?;
            if let Some(spill) = sink.admin.take() {
                let path = spill.path().to_path_buf();
                spill
                    .finish()
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(summary)
        })
        .await?;
        let summary = match summary {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&spill_path);
                return Err(read_failed(e, &cp, &run));
            }
        };
        // The same warnings `plan` shows (unusable hashes, source warnings).
        for w in &summary.warnings {
            tracing::warn!("{w}");
        }
        if let Some(p) = &summary.rejects_file {
            let _ = std::fs::remove_file(p);
        }
        if args.source.input != "-" {
            read.set(0, size);
        }
        read.finish("read");
        if summary.records > 0 {
            progress.println(format!(
                "read {} records: {} to migrate, {} rejected",
                summary.records, summary.routed, summary.rejected
            ));
        }
        for alg in cognito_migrate::preflight::Needs::planned_algorithms(&summary.routes) {
            if !proved.is_set(alg) && !by_hand.is_set(alg) {
                tracing::warn!(
                    "{}",
                    format!(
                        "no hash canary has passed for pool {} and {alg} in {}: the {} \
                     notation of its password_hash values is unproven; run `cognito-migrate \
                     preflight --state {}` first (or set it with --hash-encoding {alg}=NOTATION)",
                        args.pool_id,
                        args.state.display(),
                        notations.get(alg),
                        args.state.display()
                    )
                );
            }
        }
        let f = std::fs::File::create(&read_marker)
            .with_context(|| format!("creating {}", read_marker.display()))?;
        f.sync_all()?;
    }

    // The AdminCreateUser users, now that the input is known to be whole.
    if admin_mode && spill_path.exists() {
        write_spilled(
            args,
            &clients,
            &cp,
            &run,
            &spill_path,
            only.is_some(),
            &progress,
        )
        .await?;
        if only.is_some() {
            let _ = std::fs::remove_file(&spill_path);
        }
    }

    // Pass 2: drive each chunk through its import job.
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let signal = super::interrupted().await;
        eprintln!(
            "interrupted ({signal}): stopping the running import job (Ctrl-C or SIGTERM again to quit at once)"
        );
        let _ = cancel_tx.send(true);
        super::interrupted().await;
        std::process::exit(Exit::Fatal as i32);
    });
    let view = Arc::new(JobView {
        progress: progress.clone(),
        jobs: Default::default(),
    });
    let logs = args.fetch_job_logs.then(|| JobLogs {
        client: clients.logs.clone(),
        group: job_logs::log_group(&args.pool_id, &schema.pool_name),
    });
    let writer = ImportJobWriter {
        jobs: ImportJobs {
            client: clients.cognito_without_sdk_retries(),
            pool_id: args.pool_id.clone(),
            role_arn,
        },
        http: http_client(),
        checkpoint: cp.clone(),
        run: run.clone(),
        cfg: {
            let d = ImportJobConfig::default();
            let poll_max = std::time::Duration::from_secs_f64(args.poll_max_seconds.max(0.05));
            ImportJobConfig {
                keep_files: args.keep_files,
                poll_min: d.poll_min.min(poll_max),
                poll_max,
                max_rows: args.max_file_users.unwrap_or(d.max_rows).max(1),
                ..d
            }
        },
        observer: {
            let view = view.clone();
            Arc::new(move |e: &Event| view.on(e))
        },
        logs,
    };
    let result = writer.drive_all(cancel_rx).await;
    progress.finish();
    match result {
        Ok(()) => {
            let _ = std::fs::remove_file(&read_marker);
            let _ = std::fs::remove_file(&spill_path);
        }
        Err(ImportJobError::Interrupted) => {
            return Err(anyhow::Error::new(ImportJobError::Interrupted));
        }
        Err(e) => return Err(e.into()),
    }
    // Disable and groups for imported users (import-job and auto modes).
    super::retry::apply_followups(
        &args.admin,
        &clients,
        &args.pool_id,
        cp.clone(),
        run.id,
        false,
    )
    .await?;
    let table = job_table(&cp, &run)?;
    if !table.is_empty() && progress.output() != Output::Off {
        eprint!("\nimport jobs\n{}", table.render());
    }
    let exit = super::status::print_status(&cp, &run, args.json)?;
    // Users of a job whose per-user results are unknown are not known to be in the pool.
    let unknown = cp.counts(run.id)?.unknown;
    if unknown > 0 {
        if args.fetch_job_logs {
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
