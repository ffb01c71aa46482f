//! An exclusive lease on a state file: one writer per state.
//!
//! # Why it exists
//!
//! Two `run` (or `retry`) processes on the same `--state` would both resume the same run: each
//! reads the same pending users, both call Cognito for them, and each records the other's users
//! as already existing (issue #14, finding 1: 1,025 AdminCreateUser calls for 500 users). SQLite's
//! own locking serialises single transactions, not a whole run, so the state needs a lease held
//! for a writer's whole lifetime.
//!
//! # How
//!
//! The lease is a sidecar file next to the state, `<state>.lock` (mode 0600, never part of the
//! SQLite schema), held with an exclusive OS advisory lock (`flock(2)` through
//! [`std::fs::File::try_lock`]) for as long as the [`Lease`] lives. The kernel releases the lock
//! when the process ends in any way (exit, panic, SIGKILL, OOM), so a lease can never outlive its
//! holder on the machine that holds it: if the lock can be taken, nobody holds it.
//!
//! The file's content (JSON: host, pid, start time, command) only *describes* the holder, for the
//! message the refused process prints. It is written after the lock is taken and truncated when a
//! lease is released cleanly, so a non-empty file found unlocked was left by a process that died
//! holding it: the new holder takes it over and says whose it was ([`Lease::taken_over`]).
//!
//! The lock file is never deleted: deleting it would let a process that opened the old file and
//! one that created a new file both "hold" the lease.
//!
//! # Limits
//!
//! Advisory locks bind only processes that ask for them (every cognito-migrate command that
//! writes a state does). On network file systems `flock` may be local to one client; the state
//! must not be on one anyway (SQLite's WAL needs shared memory, see `checkpoint`).
//!
//! The same semantics (acquire → guard, holder info, refused with who holds it, a dead holder's
//! lease taken over) are meant for a remote (`s3://`) state's lease.

use std::fmt;
use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Who holds (or held) a lease.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    /// The host name of the holder's machine.
    pub host: String,
    /// The holder's process id on that host.
    pub pid: u32,
    /// When the holder took the lease, in milliseconds since the Unix epoch.
    pub since_ms: i64,
    /// What the holder runs, e.g. `run` or `retry`.
    pub command: String,
}

impl Holder {
    /// This process, taking a lease for `command` now.
    pub fn this_process(command: &str) -> Holder {
        Holder {
            host: host_name(),
            pid: std::process::id(),
            since_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            command: command.to_string(),
        }
    }

    /// The start time as an RFC 3339 UTC timestamp.
    pub fn since(&self) -> String {
        use aws_sdk_cognitoidentityprovider::primitives::{DateTime, DateTimeFormat};
        let secs = self.since_ms.div_euclid(1000);
        DateTime::from_secs(secs)
            .fmt(DateTimeFormat::DateTime)
            .unwrap_or_else(|_| format!("{secs} s after the Unix epoch"))
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` with pid {} on host {} since {}",
            self.command,
            self.pid,
            self.host,
            self.since()
        )
    }
}

/// Why a lease could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another live process holds the lease.
    #[error("{state} is in use by another run ({}); nothing was done", describe(.holder))]
    Held {
        state: PathBuf,
        /// `None` when the holder has not written its description yet (or it was unreadable).
        holder: Option<Holder>,
    },
    /// The lock file cannot be created, opened, locked or written.
    #[error("cannot lock the state with {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn describe(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => format!("held by {h}"),
        None => "its holder did not say who it is".to_string(),
    }
}

/// A held lease; released (its description cleared, the lock dropped) when dropped.
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
    holder: Holder,
    taken_over: Option<Holder>,
}

impl Lease {
    /// The lock file of a state file: `<state>.lock`.
    pub fn lock_path(state: &Path) -> PathBuf {
        let mut p = state.as_os_str().to_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// Takes the lease on `state` for this process (`command` says what it runs), at once or not
    /// at all: a lease held by a live process is [`LeaseError::Held`], with its holder.
    pub fn acquire(state: &Path, command: &str) -> Result<Lease, LeaseError> {
        let path = Self::lock_path(state);
        let io_err = |source| LeaseError::Io {
            path: path.clone(),
            source,
        };
        let mut file = crate::fs::open_private(&path).map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LeaseError::Held {
                    state: state.to_path_buf(),
                    holder: read_holder_of_locked(&mut file),
                })
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        // Locked: whatever the file describes is a holder that died without releasing it.
        let taken_over = read_holder(&mut file).ok().flatten();
        let holder = Holder::this_process(command);
        write_holder(&mut file, &holder).map_err(io_err)?;
        Ok(Lease {
            file,
            path,
            holder,
            taken_over,
        })
    }

    /// This lease's holder (this process).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The holder of a lease that was left behind by a process that ended without releasing it,
    /// and that this lease took over.
    pub fn taken_over(&self) -> Option<&Holder> {
        self.taken_over.as_ref()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Cleared while still locked: a later holder finds an empty file, so nothing to take over.
        // Closing the file (right after) releases the lock.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> io::Result<Option<Holder>> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The holder of a lock another process holds. It writes its description right after locking,
/// so an empty or half-written file is read again for a moment.
fn read_holder_of_locked(file: &mut File) -> Option<Holder> {
    for _ in 0..20 {
        if let Ok(Some(h)) = read_holder(file) {
            return Some(h);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

fn write_holder(file: &mut File, holder: &Holder) -> io::Result<()> {
    let text = serde_json::to_string(holder).map_err(io::Error::other)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// This machine's host name (Linux: the kernel's; elsewhere `$HOSTNAME`), or `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "cognito-migrate-lease-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_second_lease_is_refused_with_its_holder_until_the_first_is_dropped() {
        let dir = tempdir("second");
        let state = dir.join("state.db");
        let first = Lease::acquire(&state, "run").unwrap();
        assert_eq!(first.taken_over(), None);
        assert_eq!(first.holder().pid, std::process::id());
        // flock locks belong to open files, so a second open in this process conflicts too.
        match Lease::acquire(&state, "retry") {
            Err(LeaseError::Held { state: s, holder }) => {
                assert_eq!(s, state);
                assert_eq!(holder.as_ref(), Some(first.holder()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        let err = Lease::acquire(&state, "retry").unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("since 20"),
            "{err}"
        );
        drop(first);
        assert_eq!(std::fs::read(Lease::lock_path(&state)).unwrap(), b"");
        let again = Lease::acquire(&state, "retry").unwrap();
        assert_eq!(
            again.taken_over(),
            None,
            "a released lease is not taken over"
        );
    }

    #[test]
    fn a_lease_left_by_a_dead_process_is_taken_over() {
        let dir = tempdir("stale");
        let state = dir.join("state.db");
        let dead = Holder {
            host: host_name(),
            pid: 999_999,
            since_ms: 1_700_000_000_000,
            command: "run".into(),
        };
        std::fs::write(
            Lease::lock_path(&state),
            serde_json::to_string(&dead).unwrap(),
        )
        .unwrap();
        let lease = Lease::acquire(&state, "run").unwrap();
        assert_eq!(lease.taken_over(), Some(&dead));
        assert_eq!(dead.since(), "2023-11-14T22:13:20Z");
        let now: Holder =
            serde_json::from_slice(&std::fs::read(Lease::lock_path(&state)).unwrap()).unwrap();
        assert_eq!(&now, lease.holder());
    }

    #[cfg(unix)]
    #[test]
    fn the_lock_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir("mode");
        let state = dir.join("state.db");
        let lease = Lease::acquire(&state, "run").unwrap();
        let mode = std::fs::metadata(lease.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
