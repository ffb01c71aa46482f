//! Steps of one chunk before its job runs: record the created job, upload the file to the
//! presigned URL, start the job (waiting while another job is active).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::retry::{Backoff, Verdict};
use super::service::{upload, Job, JobStatus, UploadError};
use crate::checkpoint::{ChunkId, ChunkRow};

use super::*;

impl ImportJobWriter {
    pub(super) fn record_created(&self, row: &ChunkRow, job: &Job) -> Result<(), ImportJobError> {
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

    pub(super) async fn upload_with_retries(
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
    pub(super) async fn start_waiting(
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
}
