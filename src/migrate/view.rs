//! What a run shows while it writes: the import-job writer's events as bars and lines, the
//! AdminCreateUser counters, and the per-job table at the end.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::checkpoint::{Checkpoint, CheckpointError, ChunkId, Run};
use crate::progress::{self, Progress, Table, Task, Unit};
use crate::sink::admin_create::Snapshot;
use crate::sink::import_job::Event;

/// Shows the import-job writer's events: a bar per upload, Imported/Skipped/Failed counters per
/// job, and messages above them (or plain lines when stderr is not a terminal).
pub(super) struct JobView {
    pub progress: Progress,
    pub jobs: Mutex<HashMap<i64, (Task, Option<Task>)>>,
}

impl JobView {
    fn tasks(&self, chunk: ChunkId) -> Option<(Task, Option<Task>)> {
        self.jobs.lock().unwrap().get(&chunk.0).cloned()
    }

    pub fn on(&self, e: &Event) {
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

/// Shows an AdminCreateUser snapshot on its task's counters.
pub(super) fn show_admin(task: &Task, s: &Snapshot) {
    task.set(0, s.created);
    task.set(1, s.updated);
    task.set(2, s.skipped);
    task.set(3, s.failed);
}

/// The per-job summary table of a run (printed at its end).
pub fn job_table(cp: &Checkpoint, run: &Run) -> Result<Table, CheckpointError> {
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
