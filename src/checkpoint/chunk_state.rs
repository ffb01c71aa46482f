//! The import-job chunk state machine, apart from its SQL (in `chunks.rs`): a chunk's
//! [`ChunkStatus`], the in-flight [`Step`], the recorded [`ChunkRow`] and what
//! [`ChunkRow::resume`] says to do next after a crash. See `chunks.rs` for the diagram.

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;

use super::users::Outcome;
use super::{ChunkId, RunId};

/// The last step of a chunk known to be complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkStatus {
    /// The file is written and its users recorded; no job yet.
    Written,
    /// CreateUserImportJob returned; job id recorded.
    Created,
    /// The file was PUT to the presigned URL.
    Uploaded,
    /// StartUserImportJob returned.
    Started,
    Succeeded,
    Failed,
    Stopped,
    Expired,
    /// Given up (e.g. the file was lost before upload); its users need another way.
    Abandoned,
}

impl ChunkStatus {
    pub const ALL: [ChunkStatus; 9] = [
        ChunkStatus::Written,
        ChunkStatus::Created,
        ChunkStatus::Uploaded,
        ChunkStatus::Started,
        ChunkStatus::Succeeded,
        ChunkStatus::Failed,
        ChunkStatus::Stopped,
        ChunkStatus::Expired,
        ChunkStatus::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChunkStatus::Written => "written",
            ChunkStatus::Created => "created",
            ChunkStatus::Uploaded => "uploaded",
            ChunkStatus::Started => "started",
            ChunkStatus::Succeeded => "succeeded",
            ChunkStatus::Failed => "failed",
            ChunkStatus::Stopped => "stopped",
            ChunkStatus::Expired => "expired",
            ChunkStatus::Abandoned => "abandoned",
        }
    }

    /// The job (or the chunk) has ended; nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ChunkStatus::Succeeded
                | ChunkStatus::Failed
                | ChunkStatus::Stopped
                | ChunkStatus::Expired
                | ChunkStatus::Abandoned
        )
    }

    pub(super) fn parse(s: &str) -> Option<ChunkStatus> {
        ChunkStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ChunkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A remote step that was begun (its before-marker is recorded) but not recorded as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// CreateUserImportJob.
    Creating,
    /// PUT of the file to the presigned URL.
    Uploading,
    /// StartUserImportJob.
    Starting,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Creating => "creating",
            Step::Uploading => "uploading",
            Step::Starting => "starting",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Step> {
        [Step::Creating, Step::Uploading, Step::Starting]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// A chunk file about to be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkSpec {
    /// `import:BCRYPT`, …, `import:none`; every user of the chunk has this route.
    pub route: String,
    pub file_path: String,
    /// Data rows (users) in the file, header excluded.
    pub row_count: u64,
    pub byte_size: u64,
}

/// An import job's counts (ImportedUsers, SkippedUsers, FailedUsers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub imported: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// A chunk as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChunkRow {
    pub id: ChunkId,
    pub run_id: RunId,
    /// 1-based number within the run (for file names).
    pub seq: u64,
    pub route: String,
    pub file_path: String,
    pub row_count: u64,
    pub byte_size: u64,
    /// Last step completed.
    pub status: ChunkStatus,
    /// A step begun but not recorded as done: its side effect may have happened.
    pub in_flight: Option<Step>,
    /// Decided when the chunk is recorded, before any job exists; see [`job_name`].
    pub job_name: String,
    pub job_id: Option<String>,
    #[serde(skip)]
    pub url_expires_at: Option<SystemTime>,
    pub counts: Option<JobCounts>,
    #[serde(skip)]
    pub written_at: SystemTime,
    #[serde(skip)]
    pub created_at: Option<SystemTime>,
    #[serde(skip)]
    pub started_at: Option<SystemTime>,
    #[serde(skip)]
    pub finished_at: Option<SystemTime>,
    #[serde(skip)]
    pub updated_at: SystemTime,
    pub message: Option<String>,
    /// StartUserImportJob attempts counted for the users in this chunk (added to each user's own).
    pub attempts: u64,
    /// The outcome of the chunk's users still pending in it, once settled
    /// ([`Checkpoint::settle_chunk`]).
    pub settled_outcome: Option<Outcome>,
    /// When the chunk was settled: it needs no more work (`status --json`: milliseconds since
    /// the Unix epoch).
    #[serde(serialize_with = "epoch_ms")]
    pub settled_at: Option<SystemTime>,
}

/// An optional time as milliseconds since the Unix epoch (`null` when absent).
fn epoch_ms<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&super::to_ms(*t)),
        None => s.serialize_none(),
    }
}

/// What a (resumed) import-job writer must do next with a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkResume {
    /// No job was requested: `chunk_mark_creating`, CreateUserImportJob named `job_name`,
    /// `chunk_created`.
    Create { job_name: String },
    /// CreateUserImportJob may have succeeded without its job id being recorded: list the pool's
    /// import jobs and adopt the one named `job_name` (`chunk_created`); create one only if none.
    FindJob { job_name: String },
    /// The job exists: `chunk_mark_uploading`, PUT the file (a fresh presigned URL comes from
    /// DescribeUserImportJob if the first one expired), `chunk_uploaded`.
    Upload { job_id: String },
    /// The upload may or may not have completed: DescribeUserImportJob; while the job is still
    /// `Created` upload again (the PUT replaces the object), then `chunk_uploaded`; if it has
    /// expired, `chunk_finished(Expired)`.
    CheckUpload { job_id: String },
    /// Uploaded: `chunk_starting`, StartUserImportJob, `chunk_started`.
    Start { job_id: String },
    /// StartUserImportJob may have been called: DescribeUserImportJob; if still `Created`, start it;
    /// otherwise it started: `chunk_started`, then poll.
    CheckStarted { job_id: String },
    /// Running: poll DescribeUserImportJob, then `chunk_finished` and the per-user results.
    Poll { job_id: String },
    /// Ended. Users still `pending` in it need their outcome settled
    /// (`set_outcomes_by_chunk_lines` or `set_outcome_for_chunk`).
    Done { status: ChunkStatus },
}

impl ChunkRow {
    /// The exact next action after a crash (or in normal operation).
    pub fn resume(&self) -> ChunkResume {
        let job_id = || self.job_id.clone().unwrap_or_default();
        match (self.status, self.in_flight) {
            (ChunkStatus::Written, None) => ChunkResume::Create {
                job_name: self.job_name.clone(),
            },
            (ChunkStatus::Written, Some(_)) => ChunkResume::FindJob {
                job_name: self.job_name.clone(),
            },
            (ChunkStatus::Created, None) => ChunkResume::Upload { job_id: job_id() },
            (ChunkStatus::Created, Some(_)) => ChunkResume::CheckUpload { job_id: job_id() },
            (ChunkStatus::Uploaded, None) => ChunkResume::Start { job_id: job_id() },
            (ChunkStatus::Uploaded, Some(_)) => ChunkResume::CheckStarted { job_id: job_id() },
            (ChunkStatus::Started, _) => ChunkResume::Poll { job_id: job_id() },
            (status, _) => ChunkResume::Done { status },
        }
    }

    /// Whether a side effect may have happened without being recorded (a before-marker with no
    /// after-record).
    pub fn side_effect_in_doubt(&self) -> Option<Step> {
        self.in_flight
    }

    /// Ended and settled ([`Checkpoint::settle_chunk`]): nothing more to do for it.
    pub fn is_settled(&self) -> bool {
        self.status.is_final() && self.settled_at.is_some()
    }
}

/// One CloudWatch result line mapped back to a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineOutcome {
    /// 1-based data line in the chunk file.
    pub line: u64,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub message: Option<String>,
}
