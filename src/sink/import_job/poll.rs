//! Step of a started job: poll it until it ends, or expire the chunk whose URL ran out.

use tokio::sync::watch;

use super::service::Job;
use crate::checkpoint::{ChunkRow, ChunkStatus, JobCounts};
use crate::testing_hook::testing_hook_kill_at;

use super::*;

impl ImportJobWriter {
    /// Polls until the job ends; on cancellation stops it and waits for it to stop.
    pub(super) async fn poll(
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
    pub(super) async fn expire(&self, row: &ChunkRow, why: &str) -> Result<(), ImportJobError> {
        if !row.status.is_final() {
            self.checkpoint
                .chunk_finished(row.id, ChunkStatus::Expired, None, Some(why))?;
        }
        self.rechunk(row)?;
        Ok(())
    }
}
