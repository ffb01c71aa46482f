//! TESTING HOOK ONLY: kill the process with SIGKILL at a named step boundary of the import-job
//! writer, so the crash-safety tests (`tests/it/import_job_crash.rs`) can crash the CLI at exactly the
//! moment they mean, deterministically.
//!
//! It sits at the crate root, not in the writer, because both the writer ([`crate::sink`]) and
//! the checkpoint ([`crate::checkpoint`], the `chunk-writing` point) call it, and the checkpoint
//! must not import from the writers above it.
//!
//! It does nothing unless the environment variable `COGNITO_MIGRATE_TEST_KILL_AT` is set, which no
//! user has a reason to do. Its value is a point name, optionally with the occurrence to kill at:
//! `created`, `created#2` (the second time that point is reached). The points, in order:
//!
//! | point | the process dies … |
//! |---|---|
//! | `create-sent` | after CreateUserImportJob answered, before the job id is recorded |
//! | `created` | after the job id is recorded, before the upload |
//! | `upload-sent` | after the PUT succeeded, before it is recorded |
//! | `uploaded` | after the upload is recorded, before StartUserImportJob |
//! | `start-sent` | after StartUserImportJob answered, before it is recorded |
//! | `started` | after the start is recorded, before the first poll |
//! | `polling` | after a poll that saw the job still running |
//! | `finished` | after the job's end is recorded, before its users are settled |
//! | `settled` | after the chunk's users are settled and its file deleted |
//! | `chunk-writing` | while reading: after a transaction of users into a chunk still `writing` |
//! | `linked` | after an AdminLinkProviderForUser call succeeded, before the user's follow-ups are recorded (either writer) |
//! | `sync-recorded` | `sync`: after the change set is recorded, before any write |
//! | `sync-created` | `sync`: after the new users' migrate run, before their keys are recorded |
//! | `sync-op-sent` | `sync`: after an op's call answered, before its outcome is recorded (it and the ops in flight are in doubt) |
//! | `sync-op-done` | `sync`: after an op's end and its key are recorded |
//!
//! `COGNITO_MIGRATE_TEST_CHUNK_COMMIT_ROWS` (tests only) makes the reading pass commit chunk
//! users in smaller transactions, so that `chunk-writing` is reached with small inputs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The environment variable the hook reads.
pub const ENV: &str = "COGNITO_MIGRATE_TEST_KILL_AT";

static HITS: AtomicU32 = AtomicU32::new(0);

/// Kills this process with SIGKILL if `COGNITO_MIGRATE_TEST_KILL_AT` names `point` (and this is
/// the requested occurrence). Never returns in that case.
pub fn testing_hook_kill_at(point: &str) {
    let Some(want) = std::env::var_os(ENV) else {
        return;
    };
    let want = want.to_string_lossy();
    let (name, nth) = match want.split_once('#') {
        Some((n, k)) => (n, k.parse::<u32>().unwrap_or(1).max(1)),
        None => (&*want, 1),
    };
    if name != point {
        return;
    }
    let hit = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    if hit != nth {
        return;
    }
    eprintln!("testing hook: {ENV}={want}: killing this process (SIGKILL)");
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // `kill` is missing or did not work: die without cleanup all the same.
    std::process::abort();
}

/// The environment variable that overrides the chunk users per transaction (tests only).
pub const COMMIT_ROWS_ENV: &str = "COGNITO_MIGRATE_TEST_CHUNK_COMMIT_ROWS";

/// Chunk users per transaction while reading: `default`, unless a test sets
/// `COGNITO_MIGRATE_TEST_CHUNK_COMMIT_ROWS`.
pub fn testing_hook_chunk_commit_rows(default: usize) -> usize {
    static ROWS: OnceLock<Option<usize>> = OnceLock::new();
    ROWS.get_or_init(|| {
        std::env::var(COMMIT_ROWS_ENV)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map(|n| n.max(1))
    })
    .unwrap_or(default)
}
