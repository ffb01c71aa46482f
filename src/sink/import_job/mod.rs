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

mod create;
pub mod logs;
mod poll;
pub mod retry;
pub mod service;
mod settle;
mod split;
pub use crate::testing_hook;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::checkpoint::{
    Checkpoint, CheckpointError, ChunkId, ChunkResume, ChunkRow, ChunkStatus, JobCounts, Run,
};
use crate::password::ImportAlgorithm;
use crate::testing_hook::testing_hook_kill_at;
use retry::{Backoff, Verdict};
use service::{ImportJobs, JobStatus, ServiceError, UploadError};

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
