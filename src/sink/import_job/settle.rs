//! The last step of an ended chunk: settle its users (from the job's counts or its CloudWatch
//! log) and delete its file.

use crate::checkpoint::{
    ChunkId, ChunkRow, ChunkStatus, LineOutcome, Outcome, StoredUser, UserRow,
};

use super::split::over_limits;
use super::*;

impl ImportJobWriter {
    /// Settles the users of an ended chunk and deletes its file. The chunk's result is recorded
    /// once on the chunk row ([`Checkpoint::settle_chunk`], the last step: a crash before it
    /// settles the chunk again, which is idempotent); only exceptions are written per user (log
    /// lines, a failed job's users, users moved to new chunks).
    pub(super) async fn settle(
        &self,
        row: &ChunkRow,
        status: ChunkStatus,
    ) -> Result<(), ImportJobError> {
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
    pub(super) fn fail_pending(
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

    pub(super) fn pending_users(&self, chunk: ChunkId) -> Result<Vec<StoredUser>, ImportJobError> {
        Ok(self
            .checkpoint
            .chunk_users(chunk)
            .filter(|u| u.as_ref().map_or(true, |u| u.outcome == Outcome::Pending))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Reads the job's CloudWatch Logs stream and records each user's result. Returns whether the
    /// log was read. A missing log (or one shorter than the job's counts: CloudWatch lags) is read
    /// again a few times; an unreadable one leaves the users to the caller (`unknown`).
    pub(super) async fn apply_logs(&self, row: &ChunkRow) -> Result<bool, ImportJobError> {
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
}

pub(super) fn to_user_row(u: &StoredUser) -> UserRow {
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
