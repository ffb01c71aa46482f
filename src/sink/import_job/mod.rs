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

pub mod retry;
pub mod service;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::checkpoint::{
    Checkpoint, CheckpointError, ChunkId, ChunkResume, ChunkRow, ChunkSpec, ChunkStatus, JobCounts,
    Outcome, Run, UserRow,
};
use crate::password::ImportAlgorithm;
use retry::{Backoff, Verdict};
use service::{upload, ImportJobs, Job, JobStatus, ServiceError, UploadError};

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
}

impl Default for ImportJobConfig {
    fn default() -> Self {
        ImportJobConfig {
            poll_min: Duration::from_millis(500),
            poll_max: Duration::from_secs(20),
            max_attempts: 8,
            active_job_wait: Duration::from_secs(24 * 3600),
            keep_files: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportJobError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("chunk {chunk}: {source}")]
    Service {
        chunk: ChunkId,
        #[source]
        source: ServiceError,
    },
    #[error("chunk {chunk}: {source}")]
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
}

pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

pub struct ImportJobWriter {
    pub jobs: ImportJobs,
    pub http: reqwest::Client,
    pub checkpoint: Arc<Checkpoint>,
    pub run: Run,
    pub cfg: ImportJobConfig,
    pub observer: Observer,
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
            let Some(chunk) = next else { return Ok(()) };
            self.drive(chunk, &mut cancel).await?;
        }
    }

    /// A chunk needs no more work: it ended and, if it ended short (expired or stopped), its users
    /// were moved to a new chunk.
    fn is_settled(&self, c: &ChunkRow) -> bool {
        match c.status {
            ChunkStatus::Succeeded | ChunkStatus::Failed | ChunkStatus::Abandoned => true,
            ChunkStatus::Expired | ChunkStatus::Stopped => {
                // Settled once none of its users is still pending in it.
                self.checkpoint
                    .chunk_counts(c.id)
                    .map(|n| n.pending == 0)
                    .unwrap_or(false)
            }
            _ => false,
        }
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
                    self.checkpoint.chunk_mark_creating(id)?;
                    let job = self.call(id, || self.jobs.create(&job_name, alg)).await?;
                    self.record_created(&row, &job)?;
                    url = job.presigned_url;
                }
                ChunkResume::FindJob { job_name } => {
                    let jobs = self.call(id, || self.jobs.list()).await?;
                    let job = match jobs.into_iter().find(|j| j.name == job_name) {
                        Some(j) => self.call(id, || self.jobs.describe(&j.id)).await?,
                        None => self.call(id, || self.jobs.create(&job_name, alg)).await?,
                    };
                    self.record_created(&row, &job)?;
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
                    self.checkpoint.chunk_uploaded(id)?;
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
                    } else if row.in_flight.is_none() {
                        self.checkpoint.chunk_starting(id)?;
                    }
                    self.checkpoint.chunk_started(id)?;
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
                }
                ChunkResume::Done { status } => {
                    self.settle(&row, status).await?;
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
            match upload(&self.http, url, path).await {
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

    /// Settles the users of an ended chunk and deletes its file.
    async fn settle(&self, row: &ChunkRow, status: ChunkStatus) -> Result<(), ImportJobError> {
        let counts = row.counts.unwrap_or_default();
        match status {
            ChunkStatus::Succeeded if counts.imported == row.row_count => {
                self.checkpoint.set_outcome_for_chunk(
                    row.id,
                    Outcome::Pending,
                    Outcome::Imported,
                )?;
            }
            ChunkStatus::Succeeded if counts.skipped == row.row_count => {
                self.checkpoint.set_outcome_for_chunk(
                    row.id,
                    Outcome::Pending,
                    Outcome::Skipped,
                )?;
            }
            ChunkStatus::Succeeded if counts.failed == row.row_count => {
                self.checkpoint
                    .set_outcome_for_chunk(row.id, Outcome::Pending, Outcome::Failed)?;
            }
            ChunkStatus::Succeeded | ChunkStatus::Failed => {
                // Counts only: which user is which is in the job's CloudWatch log.
                self.checkpoint.set_outcome_for_chunk(
                    row.id,
                    Outcome::Pending,
                    Outcome::Unknown,
                )?;
            }
            ChunkStatus::Stopped | ChunkStatus::Expired => {
                if self.checkpoint.chunk_counts(row.id)?.pending > 0 {
                    self.rechunk(row)?;
                }
                return Ok(());
            }
            _ => {}
        }
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
}
