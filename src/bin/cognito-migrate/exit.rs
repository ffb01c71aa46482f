//! Exit codes and the mapping from errors to them, in one place.

use cognito_migrate::aws::AwsError;
use cognito_migrate::checkpoint::CheckpointError;
use cognito_migrate::lease::LeaseError;
use cognito_migrate::migrate::MigrateError;
use cognito_migrate::pool::PoolError;
use cognito_migrate::source::RecordError;
use cognito_migrate::state_store::StateStoreError;
use cognito_migrate::sync::SyncError;
use cognito_migrate::views::ReadError;

/// The process exit codes users' scripts depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything was done.
    Ok = 0,
    /// Done, but some rows were rejected or failed (see `report --failed`).
    SomeFailed = 1,
    /// Usage or configuration error: nothing was done.
    Usage = 2,
    /// Fatal error: the run stopped; run the same command again to resume.
    Fatal = 3,
    /// The state is in use by another run (its lease is held); nothing was done. Also: an
    /// `s3://` state's lease was lost or its object written by another process while this run
    /// held it (this run stopped; nothing was overwritten).
    Busy = 4,
    /// Not finished: users are still pending; run the same `run` command to continue.
    Pending = 5,
    /// `sync --plan`: there are changes to make (nothing was written).
    ChangesPending = 6,
    /// `sync` finished but removals were held back (the brake or an incomplete source); they
    /// are listed as staged.
    RemovalsStaged = 7,
}

/// A configuration or usage problem found by the CLI itself (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Decides the exit code and a hint for an error that ended a command.
pub fn classify(err: &anyhow::Error) -> (Exit, Option<String>) {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ConfigError>() {
            return (Exit::Usage, e.hint.clone());
        }
        if let Some(e) = cause.downcast_ref::<MigrateError>() {
            if e.is_configuration() {
                return (Exit::Usage, None);
            }
        }
        if let Some(e) = cause.downcast_ref::<SyncError>() {
            if e.is_configuration() {
                return (Exit::Usage, None);
            }
        }
        if let Some(e) = cause.downcast_ref::<AwsError>() {
            return (Exit::Usage, Some(e.hint().to_string()));
        }
        if let Some(e) = cause.downcast_ref::<StateStoreError>() {
            if let StateStoreError::Local(lease) = e {
                return lease_exit(lease);
            }
            let exit = if e.is_busy() {
                Exit::Busy
            } else if e.is_configuration() {
                Exit::Usage
            } else {
                Exit::Fatal
            };
            return (exit, e.hint().map(str::to_string));
        }
        if let Some(e) = cause.downcast_ref::<LeaseError>() {
            return lease_exit(e);
        }
        if let Some(e) = cause.downcast_ref::<CheckpointError>() {
            if e.is_unusable_file() {
                return (Exit::Usage, None);
            }
        }
        // A fatal record error: the input could not be read to its end (truncated, an I/O or
        // decompression error). An input error, not a crash: nothing was written from it.
        if cause.downcast_ref::<RecordError>().is_some_and(|e| e.fatal) {
            return (
                Exit::Usage,
                Some("fix or replace the input, then run the same command again".into()),
            );
        }
        if let Some(e) = cause.downcast_ref::<ReadError>() {
            if e.is_configuration() {
                return (
                    Exit::Usage,
                    Some("check --pool-id and --region, and that the caller may call cognito-idp:ListUsers, AdminGetUser and DescribeUserPool on the pool".into()),
                );
            }
        }
        if let Some(e) = cause.downcast_ref::<PoolError>() {
            let exit = if e.is_configuration() {
                Exit::Usage
            } else {
                Exit::Fatal
            };
            return (exit, e.hint().map(str::to_string));
        }
    }
    (Exit::Fatal, None)
}

/// The exit code of a local state's lease error.
fn lease_exit(e: &LeaseError) -> (Exit, Option<String>) {
    match e {
        LeaseError::Held { .. } => (
            Exit::Busy,
            Some("wait for that run to end; a lease left by a process that died is taken over by the next run".into()),
        ),
        LeaseError::Io { .. } => (Exit::Usage, None),
    }
}
