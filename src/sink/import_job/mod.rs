//! The import-job writer: each recorded chunk file goes through CreateUserImportJob → presigned
//! upload → StartUserImportJob → polling, with every step checkpointed before and after it happens.
//!
//! The driver is a loop over [`ChunkRow::resume`]: it asks the checkpoint what the next action for a
//! chunk is, does it, records it, and asks again. So a crash at any point resumes exactly where it
//! stopped: a job whose creation was in doubt is found again by its deterministic name, an upload in
//! doubt is checked against the job's status, a start in doubt likewise, and a started job is
//! polled, never started twice. A chunk that succeeded is never imported again.
//!
//! Only one import job may be active per account: when StartUserImportJob answers
//! `LimitExceededException` (ours or someone else's job is running) the writer waits and says so.
//! A presigned URL that expired before the upload makes the chunk `expired`; its users go into a new
//! chunk with a new job. Cancellation (Ctrl-C) stops the running job with StopUserImportJob and
//! records it; the next run re-imports that chunk's unsettled users (Cognito skips those already
//! created, so nobody is duplicated).
//!
//! Per-user results: a job that ends Failed or with skipped/failed rows is settled from its
//! CloudWatch Logs stream when [`ImportJobWriter::logs`] is set (`--fetch-job-logs`), else its
//! users are honestly `unknown` (counts only). A chunk over Cognito's per-file limits (rows or
//! bytes, checked before its job is created, or reported by a Failed job with no processed rows) is
//! split into smaller files and chunks.

pub mod logs;
pub mod retry;
pub mod service;
pub use crate::testing_hook;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::checkpoint::{
    Checkpoint, CheckpointError, ChunkId, ChunkResume, ChunkRow, ChunkSpec, ChunkStatus, JobCounts,
    LineOutcome, Outcome, Run, StoredUser, UserRow,
};
use crate::password::ImportAlgorithm;
use crate::testing_hook::testing_hook_kill_at;
use retry::{Backoff, Verdict};
use service::{upload, ImportJobs, Job, JobStatus, ServiceError, UploadError};

/// Cognito's documented per-file limits of an import CSV.
pub const MAX_FILE_USERS: u64 = 500_000;
pub const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// The start of the message recorded on a chunk that was split into smaller ones.
const SPLIT_MESSAGE: &str = "split into smaller files";

#[derive(Clone, Debug)]
pub struct ImportJobConfig {
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// Attempts per remote call for transient failures.
    pub max_attempts: u32,
    /// How long to wait for another active import job before giving up.
    pub active_job_wait: Duration,
    /// Keep chunk files after their job ends (they hold personal data and hashes).
    pub keep_files: bool,
    /// A chunk with more rows or bytes than this is split before its job is created.
    pub max_rows: u64,
    pub max_bytes: u64,
    /// How often to read a job's log again when it is missing or shorter than the job's counts
    /// (CloudWatch Logs can lag behind the job's end), and how long to wait in between.
    pub log_retries: u32,
    pub log_retry_delay: Duration,
}

impl Default for ImportJobConfig {
    fn default() -> Self {
        ImportJobConfig {
            poll_min: Duration::from_millis(500),
            poll_max: Duration::from_secs(20),
            max_attempts: 8,
            active_job_wait: Duration::from_secs(24 * 3600),
            keep_files: false,
            max_rows: MAX_FILE_USERS,
            max_bytes: MAX_FILE_BYTES,
            log_retries: 5,
            log_retry_delay: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportJobError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("chunk {chunk}")]
    Service {
        chunk: ChunkId,
        #[source]
        source: ServiceError,
    },
    #[error("chunk {chunk}")]
    Upload {
        chunk: ChunkId,
        #[source]
        source: UploadError,
    },
    #[error("chunk {chunk}: another import job stayed active for longer than {waited:?}")]
    ActiveJobTimeout { chunk: ChunkId, waited: Duration },
    #[error("interrupted; the running job was stopped and recorded: run the same command again to resume")]
    Interrupted,
}

/// What the writer tells the user about, as it happens.
#[derive(Clone, Debug)]
pub enum Event {
    JobCreated {
        chunk: ChunkId,
        job: String,
        rows: u64,
        bytes: u64,
    },
    /// Bytes of the chunk's file sent so far (per block of the upload).
    UploadProgress {
        chunk: ChunkId,
        sent: u64,
    },
    Uploaded {
        chunk: ChunkId,
        bytes: u64,
    },
    Started {
        chunk: ChunkId,
        job: String,
    },
    WaitingForActiveJob {
        chunk: ChunkId,
    },
    Progress {
        chunk: ChunkId,
        status: String,
        imported: u64,
        skipped: u64,
        failed: u64,
        rows: u64,
    },
    Finished {
        chunk: ChunkId,
        status: ChunkStatus,
        counts: JobCounts,
        message: Option<String>,
    },
    Expired {
        chunk: ChunkId,
        new_chunk: ChunkId,
    },
    Resumed {
        chunk: ChunkId,
        action: String,
    },
    /// A job's CloudWatch Logs stream was read: `lines` result lines, `matched` mapped to users.
    LogsRead {
        chunk: ChunkId,
        lines: u64,
        matched: u64,
    },
    /// The job's log could not be read: its users stay `unknown` (counts only).
    LogsUnavailable {
        chunk: ChunkId,
        reason: String,
    },
    /// A chunk over the per-file limits was split into `new_chunks`.
    Split {
        chunk: ChunkId,
        new_chunks: Vec<ChunkId>,
        why: String,
    },
    /// Users that did not reach the pool because their whole job failed.
    JobFailed {
        chunk: ChunkId,
        users: u64,
        message: String,
    },
}

pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// Where the writer reads per-user results (`--fetch-job-logs`).
#[derive(Clone, Debug)]
pub struct JobLogs {
    pub client: aws_sdk_cloudwatchlogs::Client,
    /// `/aws/cognito/userpools/<pool id>/<pool name>` ([`logs::log_group`]).
    pub group: String,
}

pub struct ImportJobWriter {
    pub jobs: ImportJobs,
    pub http: reqwest::Client,
    pub checkpoint: Arc<Checkpoint>,
    pub run: Run,
    pub cfg: ImportJobConfig,
    pub observer: Observer,
    /// Read per-user results from CloudWatch Logs; `None`: counts only.
    pub logs: Option<JobLogs>,
}

fn algorithm(route: &str) -> Option<ImportAlgorithm> {
    route.strip_prefix("import:").and_then(|a| a.parse().ok())
}

impl ImportJobWriter {
    fn emit(&self, e: Event) {
        (self.observer)(&e)
    }

    /// Retries one remote call for transient failures.
    async fn call<T, F, Fut>(&self, chunk: ChunkId, mut f: F) -> Result<T, ImportJobError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ServiceError>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(20));
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.verdict == Verdict::Retry
                        && backoff.attempts() + 1 < self.cfg.max_attempts =>
                {
                    tracing::warn!("chunk {chunk}: {e}; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(source) => return Err(ImportJobError::Service { chunk, source }),
            }
        }
    }

    /// Drives every chunk of the run to its end, one job at a time, in chunk order.
    pub async fn drive_all(&self, mut cancel: watch::Receiver<bool>) -> Result<(), ImportJobError> {
        loop {
            let chunks = self.checkpoint.chunks(self.run.id)?;
            let next = chunks.into_iter().find(|c| !self.is_settled(c));
            let Some(chunk) = next else { break };
            self.drive(chunk, &mut cancel).await?;
        }
        self.backfill_logs().await?;
        self.delete_settled_files()
    }

    /// Deletes the files of settled chunks still on disk (a crash between settling a chunk and
    /// deleting its file leaves it behind); none while any unsettled chunk shares the file.
    fn delete_settled_files(&self) -> Result<(), ImportJobError> {
        if self.cfg.keep_files {
            return Ok(());
        }
        let chunks = self.checkpoint.chunks(self.run.id)?;
        for c in &chunks {
            let shared = chunks
                .iter()
                .any(|o| o.file_path == c.file_path && !self.is_settled(o));
            if !shared && Path::new(&c.file_path).exists() {
                if let Err(e) = std::fs::remove_file(&c.file_path) {
                    tracing::warn!("cannot delete {}: {e}", c.file_path);
                }
            }
        }
        Ok(())
    }

    /// With logs on (e.g. `--fetch-job-logs` given when resuming), reads the results of finished
    /// jobs whose users are still `unknown`.
    async fn backfill_logs(&self) -> Result<(), ImportJobError> {
        if self.logs.is_none() {
            return Ok(());
        }
        for c in self.checkpoint.chunks(self.run.id)? {
            if matches!(c.status, ChunkStatus::Succeeded | ChunkStatus::Failed)
                && c.job_id.is_some()
                && self.checkpoint.chunk_counts(c.id)?.unknown > 0
            {
                self.apply_logs(&c).await?;
            }
        }
        Ok(())
    }

    /// A chunk needs no more work: it ended and was settled (its users' outcome recorded, or its
    /// users moved to a new chunk when it ended short: expired, stopped or split). A crash between
    /// a job's end and the settling of its users is thus resumed. O(1): read from the chunk row.
    fn is_settled(&self, c: &ChunkRow) -> bool {
        c.is_settled()
    }

    async fn drive(
        &self,
        chunk: ChunkRow,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<(), ImportJobError> {
        let id = chunk.id;
        let alg = algorithm(&chunk.route);
        let mut url: Option<String> = None;
        let mut first = true;
        loop {
            let row = self.checkpoint.chunk(id)?;
            let action = row.resume();
            if first && (row.status != ChunkStatus::Written || row.in_flight.is_some()) {
                self.emit(Event::Resumed {
                    chunk: id,
                    action: format!("{action:?}"),
                });
            }
            first = false;
            match action {
                ChunkResume::Create { job_name } => {
                    if row.row_count > self.cfg.max_rows || row.byte_size > self.cfg.max_bytes {
                        let why = format!(
                            "{SPLIT_MESSAGE}: {} rows, {} bytes is over the per-file limits ({} rows, {} bytes)",
                            row.row_count, row.byte_size, self.cfg.max_rows, self.cfg.max_bytes
                        );
                        self.checkpoint.chunk_finished(
                            id,
                            ChunkStatus::Abandoned,
                            None,
                            Some(&why),
                        )?;
                        continue;
                    }
                    self.checkpoint.chunk_mark_creating(id)?;
                    let job = self.call(id, || self.jobs.create(&job_name, alg)).await?;
                    testing_hook_kill_at("create-sent");
                    self.record_created(&row, &job)?;
                    testing_hook_kill_at("created");
                    url = job.presigned_url;
                }
                ChunkResume::FindJob { job_name } => {
                    let jobs = self.call(id, || self.jobs.list()).await?;
                    let job = match jobs.into_iter().find(|j| j.name == job_name) {
                        Some(j) => self.call(id, || self.jobs.describe(&j.id)).await?,
                        None => self.call(id, || self.jobs.create(&job_name, alg)).await?,
                    };
                    self.record_created(&row, &job)?;
                    testing_hook_kill_at("created");
                    url = job.presigned_url;
                }
                ChunkResume::Upload { job_id } | ChunkResume::CheckUpload { job_id } => {
                    let job = self.call(id, || self.jobs.describe(&job_id)).await?;
                    match job.status {
                        JobStatus::Created => {}
                        JobStatus::Expired => {
                            self.expire(&row, "the job expired before its file was uploaded")
                                .await?;
                            return Ok(());
                        }
                        _ => {
                            // Past Created: the upload happened (and the job was started).
                            self.checkpoint.chunk_mark_uploading(id)?;
                            self.checkpoint.chunk_uploaded(id)?;
                            continue;
                        }
                    }
                    let expired = row
                        .url_expires_at
                        .is_some_and(|t| t <= SystemTime::now() + Duration::from_secs(5));
                    let Some(u) = url.take().or(job.presigned_url) else {
                        self.expire(&row, "no upload URL is available for the job")
                            .await?;
                        return Ok(());
                    };
                    if expired {
                        self.expire(&row, "the upload URL expired before the upload")
                            .await?;
                        return Ok(());
                    }
                    self.checkpoint.chunk_mark_uploading(id)?;
                    match self
                        .upload_with_retries(id, &u, Path::new(&row.file_path))
                        .await
                    {
                        Ok(()) => {}
                        Err(ImportJobError::Upload {
                            source: UploadError::Refused { .. },
                            ..
                        }) => {
                            self.expire(&row, "the upload URL was refused (expired)")
                                .await?;
                            return Ok(());
                        }
                        Err(e) => return Err(e),
                    }
                    testing_hook_kill_at("upload-sent");
                    self.checkpoint.chunk_uploaded(id)?;
                    testing_hook_kill_at("uploaded");
                    self.emit(Event::Uploaded {
                        chunk: id,
                        bytes: row.byte_size,
                    });
                }
                ChunkResume::Start { job_id } | ChunkResume::CheckStarted { job_id } => {
                    let job = self.call(id, || self.jobs.describe(&job_id)).await?;
                    if job.status == JobStatus::Created {
                        if row.in_flight.is_none() {
                            self.checkpoint.chunk_starting(id)?;
                        }
                        self.start_waiting(id, &job_id, cancel).await?;
                        testing_hook_kill_at("start-sent");
                    } else if row.in_flight.is_none() {
                        self.checkpoint.chunk_starting(id)?;
                    }
                    self.checkpoint.chunk_started(id)?;
                    testing_hook_kill_at("started");
                    self.emit(Event::Started {
                        chunk: id,
                        job: job_id.clone(),
                    });
                }
                ChunkResume::Poll { job_id } => {
                    let job = self.poll(&row, &job_id, cancel).await?;
                    let status = match job.status {
                        JobStatus::Succeeded => ChunkStatus::Succeeded,
                        JobStatus::Stopped => ChunkStatus::Stopped,
                        JobStatus::Expired => ChunkStatus::Expired,
                        _ => ChunkStatus::Failed,
                    };
                    let counts = JobCounts {
                        imported: job.imported,
                        skipped: job.skipped,
                        failed: job.failed,
                    };
                    self.checkpoint.chunk_finished(
                        id,
                        status,
                        Some(counts),
                        job.completion_message.as_deref(),
                    )?;
                    self.emit(Event::Finished {
                        chunk: id,
                        status,
                        counts,
                        message: job.completion_message.clone(),
                    });
                    testing_hook_kill_at("finished");
                }
                ChunkResume::Done { status } => {
                    self.settle(&row, status).await?;
                    testing_hook_kill_at("settled");
                    return Ok(());
                }
            }
        }
    }

    fn record_created(&self, row: &ChunkRow, job: &Job) -> Result<(), ImportJobError> {
        let expires = job
            .presigned_url
            .as_deref()
            .map(|u| service::url_expiry(u, job.created))
            .unwrap_or_else(SystemTime::now);
        self.checkpoint
            .chunk_created(row.id, &job.id, &job.name, expires)?;
        self.emit(Event::JobCreated {
            chunk: row.id,
            job: job.id.clone(),
            rows: row.row_count,
            bytes: row.byte_size,
        });
        Ok(())
    }

    async fn upload_with_retries(
        &self,
        chunk: ChunkId,
        url: &str,
        path: &Path,
    ) -> Result<(), ImportJobError> {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(20));
        loop {
            let progress: service::UploadProgress = {
                let observer = self.observer.clone();
                Arc::new(move |sent| observer(&Event::UploadProgress { chunk, sent }))
            };
            match upload(&self.http, url, path, Some(progress)).await {
                Ok(()) => return Ok(()),
                Err(UploadError::Transient(m))
                    if backoff.attempts() + 1 < self.cfg.max_attempts =>
                {
                    tracing::warn!("chunk {chunk}: {m}; retrying the upload");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(source) => return Err(ImportJobError::Upload { chunk, source }),
            }
        }
    }

    /// StartUserImportJob, waiting while another job is active in the account.
    async fn start_waiting(
        &self,
        chunk: ChunkId,
        job_id: &str,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<(), ImportJobError> {
        let began = std::time::Instant::now();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut told = false;
        loop {
            if *cancel.borrow() {
                return Err(ImportJobError::Interrupted);
            }
            match self.jobs.start(job_id).await {
                Ok(_) => return Ok(()),
                Err(e) if e.verdict == Verdict::WaitForActiveJob => {
                    if !told {
                        self.emit(Event::WaitingForActiveJob { chunk });
                        told = true;
                    }
                    if began.elapsed() > self.cfg.active_job_wait {
                        return Err(ImportJobError::ActiveJobTimeout {
                            chunk,
                            waited: self.cfg.active_job_wait,
                        });
                    }
                }
                Err(e)
                    if e.verdict == Verdict::Retry
                        && backoff.attempts() + 1 < self.cfg.max_attempts =>
                {
                    tracing::warn!("chunk {chunk}: {e}; retrying");
                }
                Err(source) => {
                    // A start that reached Cognito before the connection dropped leaves the job
                    // past Created: that is a success.
                    if let Ok(j) = self.jobs.describe(job_id).await {
                        if j.status != JobStatus::Created {
                            return Ok(());
                        }
                    }
                    return Err(ImportJobError::Service { chunk, source });
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.changed() => {}
            }
        }
    }

    /// Polls until the job ends; on cancellation stops it and waits for it to stop.
    async fn poll(
        &self,
        row: &ChunkRow,
        job_id: &str,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<Job, ImportJobError> {
        let mut delay = self.cfg.poll_min;
        let mut stopping = false;
        loop {
            let job = self.call(row.id, || self.jobs.describe(job_id)).await?;
            self.emit(Event::Progress {
                chunk: row.id,
                status: format!("{:?}", job.status),
                imported: job.imported,
                skipped: job.skipped,
                failed: job.failed,
                rows: row.row_count,
            });
            if !job.status.is_final() {
                testing_hook_kill_at("polling");
            }
            if job.status.is_final() {
                if stopping {
                    let counts = JobCounts {
                        imported: job.imported,
                        skipped: job.skipped,
                        failed: job.failed,
                    };
                    self.checkpoint.chunk_finished(
                        row.id,
                        ChunkStatus::Stopped,
                        Some(counts),
                        Some("stopped on request (Ctrl-C)"),
                    )?;
                    return Err(ImportJobError::Interrupted);
                }
                return Ok(job);
            }
            if *cancel.borrow() && !stopping {
                stopping = true;
                if job.status.is_active() {
                    self.call(row.id, || self.jobs.stop(job_id)).await?;
                }
                delay = self.cfg.poll_min;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.changed() => {}
            }
            delay = (delay * 2).min(self.cfg.poll_max);
        }
    }

    /// Gives up on a chunk's job (its URL expired or it was stopped) and puts its unsettled users
    /// into a new chunk with the same file.
    async fn expire(&self, row: &ChunkRow, why: &str) -> Result<(), ImportJobError> {
        if !row.status.is_final() {
            self.checkpoint
                .chunk_finished(row.id, ChunkStatus::Expired, None, Some(why))?;
        }
        self.rechunk(row)?;
        Ok(())
    }

    fn rechunk(&self, row: &ChunkRow) -> Result<Option<ChunkId>, ImportJobError> {
        let users: Vec<UserRow> = self
            .checkpoint
            .chunk_users(row.id)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|u| {
                let mut r = UserRow::new(
                    u.position(),
                    u.username.clone(),
                    u.route.clone(),
                    Outcome::Pending,
                );
                r.needs_disable = u.needs_disable;
                r.groups = u.groups.clone();
                r
            })
            .collect();
        if users.len() as u64 != row.row_count {
            return Err(CheckpointError::Invalid {
                path: self.checkpoint.path().to_path_buf(),
                message: format!(
                    "chunk {} lists {} users for {} rows",
                    row.id,
                    users.len(),
                    row.row_count
                ),
            }
            .into());
        }
        let spec = ChunkSpec {
            route: row.route.clone(),
            file_path: row.file_path.clone(),
            row_count: row.row_count,
            byte_size: row.byte_size,
        };
        let new = self.checkpoint.add_chunk(self.run.id, &spec, users)?;
        self.emit(Event::Expired {
            chunk: row.id,
            new_chunk: new.id,
        });
        Ok(Some(new.id))
    }

    /// Settles the users of an ended chunk and deletes its file. The chunk's result is recorded
    /// once on the chunk row ([`Checkpoint::settle_chunk`], the last step: a crash before it
    /// settles the chunk again, which is idempotent); only exceptions are written per user (log
    /// lines, a failed job's users, users moved to new chunks).
    async fn settle(&self, row: &ChunkRow, status: ChunkStatus) -> Result<(), ImportJobError> {
        let counts = row.counts.unwrap_or_default();
        let processed = counts.imported + counts.skipped + counts.failed;
        let message = row.message.clone().unwrap_or_default();
        let outcome = match status {
            ChunkStatus::Stopped | ChunkStatus::Expired => {
                if self.checkpoint.chunk_counts(row.id)?.pending > 0 {
                    self.rechunk(row)?;
                }
                // The file stays: the new chunk uses it.
                self.checkpoint.settle_chunk(row.id, None)?;
                return Ok(());
            }
            ChunkStatus::Abandoned if message.starts_with(SPLIT_MESSAGE) => {
                self.split(row, &message)?;
                None
            }
            ChunkStatus::Succeeded if counts.imported == row.row_count => Some(Outcome::Imported),
            ChunkStatus::Failed if processed == 0 && over_limits(&message) => {
                // Cognito refused the file as too big before processing any row: smaller files.
                let why = format!("{SPLIT_MESSAGE}: the job failed: {message}");
                self.split(row, &why)?;
                None
            }
            ChunkStatus::Failed if processed == 0 => {
                // The whole file was refused: nobody of this chunk reached the pool.
                let n = self.fail_pending(row, "job_failed", &message)?;
                self.emit(Event::JobFailed {
                    chunk: row.id,
                    users: n,
                    message,
                });
                None
            }
            ChunkStatus::Succeeded | ChunkStatus::Failed => {
                if self.apply_logs(row).await? {
                    // Whatever the log did not tell: counts only.
                    Some(Outcome::Unknown)
                } else if counts.skipped == row.row_count {
                    Some(Outcome::Skipped)
                } else if counts.failed == row.row_count {
                    Some(Outcome::Failed)
                } else {
                    Some(Outcome::Unknown)
                }
            }
            _ => None,
        };
        self.checkpoint.settle_chunk(row.id, outcome)?;
        if !self.cfg.keep_files {
            // The file may be shared with an earlier (expired) chunk of the same users.
            let still_needed =
                self.checkpoint.chunks(self.run.id)?.iter().any(|c| {
                    c.file_path == row.file_path && c.id != row.id && !c.status.is_final()
                });
            if !still_needed {
                match std::fs::remove_file(&row.file_path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!("cannot delete {}: {e}", row.file_path),
                }
            }
        }
        Ok(())
    }

    /// Sets every pending user of a chunk `failed` with a reason code and message.
    fn fail_pending(
        &self,
        row: &ChunkRow,
        reason: &str,
        message: &str,
    ) -> Result<u64, ImportJobError> {
        let lines: Vec<LineOutcome> = self
            .pending_users(row.id)?
            .into_iter()
            .filter_map(|u| {
                Some(LineOutcome {
                    line: u.chunk_line?,
                    outcome: Outcome::Failed,
                    reason: Some(reason.to_string()),
                    message: Some(logs::scrub(message)),
                })
            })
            .collect();
        Ok(self
            .checkpoint
            .set_outcomes_by_chunk_lines(row.id, &lines)?)
    }

    fn pending_users(&self, chunk: ChunkId) -> Result<Vec<StoredUser>, ImportJobError> {
        Ok(self
            .checkpoint
            .chunk_users(chunk)
            .filter(|u| u.as_ref().map_or(true, |u| u.outcome == Outcome::Pending))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Reads the job's CloudWatch Logs stream and records each user's result. Returns whether the
    /// log was read. A missing log (or one shorter than the job's counts: CloudWatch lags) is read
    /// again a few times; an unreadable one leaves the users to the caller (`unknown`).
    async fn apply_logs(&self, row: &ChunkRow) -> Result<bool, ImportJobError> {
        let (Some(src), Some(job_id)) = (&self.logs, &row.job_id) else {
            return Ok(false);
        };
        let counts = row.counts.unwrap_or_default();
        let expected = counts.imported + counts.skipped + counts.failed;
        let stream = logs::log_stream(job_id, &row.job_name);
        let mut tries = 0;
        loop {
            match logs::fetch_results(&src.client, &src.group, &stream).await {
                Ok(lines) if (lines.len() as u64) < expected && tries < self.cfg.log_retries => {}
                Ok(lines) => {
                    let outcomes: Vec<LineOutcome> =
                        lines.iter().filter_map(|l| l.to_line_outcome()).collect();
                    let matched = self
                        .checkpoint
                        .set_outcomes_by_chunk_lines(row.id, &outcomes)?;
                    self.emit(Event::LogsRead {
                        chunk: row.id,
                        lines: lines.len() as u64,
                        matched,
                    });
                    return Ok(true);
                }
                Err(logs::LogsError::NotFound { .. }) if tries < self.cfg.log_retries => {}
                Err(e) => {
                    self.emit(Event::LogsUnavailable {
                        chunk: row.id,
                        reason: e.to_string(),
                    });
                    return Ok(false);
                }
            }
            tries += 1;
            tokio::time::sleep(self.cfg.log_retry_delay).await;
        }
    }

    /// Splits the pending users of an ended chunk into smaller chunks, each with its own file
    /// holding their lines of the chunk's file (header first). File names derive from the chunk and
    /// the first record of each piece, so a split redone after a crash writes the same files.
    fn split(&self, row: &ChunkRow, why: &str) -> Result<(), ImportJobError> {
        let users = self.pending_users(row.id)?;
        if users.is_empty() {
            return Ok(());
        }
        let data = match std::fs::read(&row.file_path) {
            Ok(d) => d,
            Err(e) => {
                let m = format!("the import file could not be read to split it: {e}");
                self.fail_pending(row, "split_failed", &m)?;
                return Ok(());
            }
        };
        let mut lines = data.split_inclusive(|b| *b == b'\n');
        let header = lines.next().unwrap_or_default();
        let lines: Vec<&[u8]> = lines.collect();
        let n = users.len() as u64;
        if n <= 1 {
            self.fail_pending(row, "over_limits", why)?;
            return Ok(());
        }
        // As many pieces as both limits need (at least two), by rows.
        let user_bytes: u64 = users
            .iter()
            .filter_map(|u| u.chunk_line)
            .filter_map(|l| lines.get(l as usize - 1))
            .map(|l| l.len() as u64)
            .sum();
        let pieces = n
            .div_ceil(self.cfg.max_rows.max(1))
            .max((user_bytes + header.len() as u64).div_ceil(self.cfg.max_bytes.max(1)))
            .max(2)
            .min(n);
        let per = n.div_ceil(pieces) as usize;
        let stem = row.file_path.strip_suffix(".csv").unwrap_or(&row.file_path);
        let mut new_chunks = Vec::new();
        for part in users.chunks(per) {
            let path = PathBuf::from(format!("{stem}-c{}r{}.csv", row.id.0, part[0].record));
            let mut bytes = header.len() as u64;
            let mut f = std::io::BufWriter::new(
                crate::fs::create_private(&path).map_err(|e| self.io(&path, e))?,
            );
            f.write_all(header).map_err(|e| self.io(&path, e))?;
            for u in part {
                let line = u
                    .chunk_line
                    .and_then(|l| lines.get((l as usize).wrapping_sub(1)))
                    .ok_or_else(|| {
                        self.invalid(format!(
                            "chunk {}: user record {} has no line in its file",
                            row.id, u.record
                        ))
                    })?;
                f.write_all(line).map_err(|e| self.io(&path, e))?;
                if !line.ends_with(b"\n") {
                    f.write_all(b"\n").map_err(|e| self.io(&path, e))?;
                    bytes += 1;
                }
                bytes += line.len() as u64;
            }
            let f = f.into_inner().map_err(|e| self.io(&path, e.into_error()))?;
            f.sync_all().map_err(|e| self.io(&path, e))?;
            let spec = ChunkSpec {
                route: row.route.clone(),
                file_path: path.display().to_string(),
                row_count: part.len() as u64,
                byte_size: bytes,
            };
            let new =
                self.checkpoint
                    .add_chunk(self.run.id, &spec, part.iter().map(to_user_row))?;
            new_chunks.push(new.id);
        }
        self.emit(Event::Split {
            chunk: row.id,
            new_chunks,
            why: why.to_string(),
        });
        Ok(())
    }

    fn io(&self, path: &Path, e: std::io::Error) -> ImportJobError {
        self.invalid(format!("writing {}: {e}", path.display()))
    }

    fn invalid(&self, message: String) -> ImportJobError {
        CheckpointError::Invalid {
            path: self.checkpoint.path().to_path_buf(),
            message,
        }
        .into()
    }
}

fn to_user_row(u: &StoredUser) -> UserRow {
    let mut r = UserRow::new(
        u.position(),
        u.username.clone(),
        u.route.clone(),
        Outcome::Pending,
    );
    r.needs_disable = u.needs_disable;
    r.groups = u.groups.clone();
    r
}

/// Whether a job's completion message says its file was over a per-file limit.
fn over_limits(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("maximum")
        || m.contains("too large")
        || m.contains("exceed")
        || m.contains("limit"))
        && (m.contains("file") || m.contains("users") || m.contains("mb") || m.contains("size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_messages_are_recognised() {
        assert!(over_limits(
            "The CSV file has 10 users; the maximum is 5 per file."
        ));
        assert!(over_limits(
            "The CSV file is larger than the maximum of 100 MB."
        ));
        assert!(!over_limits(
            "Too many users have failed or been skipped during the import."
        ));
        assert!(!over_limits("The CSV header lacks column(s): email."));
    }
}
