//! `status` and `report` against state files of every kind, without an emulator: they only read
//! the state, never write, create or chmod it (also in a directory they cannot write), refuse a
//! file that is not a state with exit 2 naming it, and exit 0 only when every user is settled
//! (1 some failed, 5 some still pending). Issue #14, findings 5 and 7.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::common::{run_cli, tempdir};
use cognito_migrate::checkpoint::{Checkpoint, Outcome, RunSpec, UserRow};
use cognito_migrate::record::Position;

fn spec() -> RunSpec {
    RunSpec {
        input_location: "/data/users.csv".into(),
        input_format: "csv".into(),
        input_size: 1234,
        input_fingerprint: "sha256:abc".into(),
        pool_id: "us-east-1_AAAA".into(),
        mode: "admin-create".into(),
        options: r#"{"unimportable":"Trigger"}"#.into(),
    }
}

/// A state with one run whose users have these outcomes (records 1, 2, …).
fn make_state(path: &Path, outcomes: &[Outcome]) {
    let cp = Checkpoint::open(path).unwrap();
    let run = cp.begin_run(&spec(), false).unwrap();
    let rows: Vec<UserRow> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let record = i as u64 + 1;
            let pos = Position {
                record,
                line: record + 1,
                byte_offset: record * 10,
            };
            UserRow::new(pos, format!("user{record}"), "admin-create", *o)
        })
        .collect();
    cp.record_batch(run.id, &rows).unwrap();
}

/// Everything a command could change about a file: its bytes, mode and mtime.
#[derive(Debug, PartialEq)]
struct Snapshot {
    bytes: Vec<u8>,
    mode: u32,
    mtime: SystemTime,
}

fn snapshot(path: &Path) -> Snapshot {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).unwrap();
    Snapshot {
        bytes: std::fs::read(path).unwrap(),
        mode: meta.permissions().mode() & 0o7777,
        mtime: meta.modified().unwrap(),
    }
}

fn side(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn status(state: &Path) -> (i32, String, String) {
    run_cli(&["status", "--state", state.to_str().unwrap()], &[])
}

#[test]
fn status_exits_0_only_when_every_user_is_settled() {
    let dir = tempdir("status-exit");
    let cases: [(&str, &[Outcome], i32); 4] = [
        (
            "done",
            &[Outcome::Created, Outcome::Skipped, Outcome::Trigger],
            0,
        ),
        ("pending", &[Outcome::Created, Outcome::Pending], 5),
        ("failed", &[Outcome::Created, Outcome::Failed], 1),
        (
            "failed-and-pending",
            &[Outcome::Rejected, Outcome::Pending],
            1,
        ),
    ];
    for (name, outcomes, want) in cases {
        let state = dir.join(format!("{name}.db"));
        make_state(&state, outcomes);
        let (code, out, err) = status(&state);
        assert_eq!(code, want, "{name}: {out}{err}");
        if want == 5 {
            assert!(
                out.contains("pending") && err.contains("not finished") && err.contains("`run`"),
                "{name}: the user is told what to do: {out}{err}"
            );
        }
    }
}

#[test]
fn files_that_are_not_states_are_usage_errors_and_left_untouched() {
    let dir = tempdir("not-a-state");
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "these are my notes\n").unwrap();
    let other = dir.join("other.sqlite");
    {
        let c = rusqlite::Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');")
            .unwrap();
    }
    let mut garbage = b"SQLite format 3\0".to_vec();
    garbage.extend(std::iter::repeat_n(0xA5u8, 4096));
    let broken = dir.join("broken.db");
    std::fs::write(&broken, &garbage).unwrap();
    for f in [&empty, &text, &other, &broken] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // An mtime in the past, so that a write within the same clock tick would still show.
    for f in [&empty, &text, &other, &broken] {
        let t = SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    for file in [&empty, &text, &other, &broken] {
        for command in ["status", "report"] {
            let before = snapshot(file);
            let mut args = vec![command, "--state", file.to_str().unwrap()];
            if command == "report" {
                args.extend(["--failed", "-"]);
            }
            let (code, out, err) = run_cli(&args, &[]);
            assert_eq!(code, 2, "{command} {}: {out}{err}", file.display());
            assert!(
                err.contains(&file.display().to_string())
                    && err.contains("not a cognito-migrate state file"),
                "{command} {}: the message names the file: {err}",
                file.display()
            );
            assert_eq!(
                snapshot(file),
                before,
                "{command} changed {}",
                file.display()
            );
            for suffix in ["-wal", "-shm", "-journal"] {
                assert!(
                    !side(file, suffix).exists(),
                    "{command} created {suffix} next to {}",
                    file.display()
                );
            }
        }
    }
}

/// Each cause of an error is printed once (it was "Is a directory (os error 21): Is a
/// directory (os error 21)" when a thiserror variant displayed its source and also returned it).
#[test]
fn a_directory_given_as_state_is_a_usage_error_printed_once() {
    let dir = tempdir("dir-state");
    let (code, out, err) = status(&dir);
    assert_eq!(code, 2, "{out}{err}");
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.contains("directory"), "{line}");
    let parts: Vec<&str> = line.split(": ").collect();
    for pair in parts.windows(2) {
        assert_ne!(pair[0], pair[1], "a cause repeats: {line}");
    }
}

#[test]
fn status_and_report_do_not_change_a_state() {
    let dir = tempdir("unchanged");
    let state = dir.join("state.db");
    make_state(&state, &[Outcome::Created, Outcome::Failed]);
    let before = snapshot(&state);
    let (code, out, err) = status(&state);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("failed"), "{out}");
    let report = dir.join("failed.csv");
    let (code, _, err) = crate::common::report_failed(&state, &report, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(std::fs::read_to_string(&report).unwrap().contains("user2"));
    assert_eq!(snapshot(&state), before);
}

/// A state in a directory this user cannot write: SQLite cannot create the `-shm` file a WAL
/// database is read through. Run as `nobody` (through `setpriv`) when the tests run as root, whom
/// no directory mode stops.
#[test]
fn status_reads_a_state_in_a_read_only_directory() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Under the system's temp dir, not the checkout: `nobody` must be able to reach it, and a
    // checkout may sit in a directory only its owner can enter (a `mktemp -d` clone).
    let dir = tempfile::Builder::new()
        .prefix("cm-ro-dir-")
        .tempdir_in(std::env::temp_dir())
        .expect("create a temporary directory");
    let dir = dir.path().to_path_buf().canonicalize().unwrap();
    let _cleanup = DirCleanup(dir.clone());
    let state = dir.join("state.db");
    make_state(
        &state,
        &[Outcome::Created, Outcome::Created, Outcome::Pending],
    );
    assert!(!side(&state, "-shm").exists(), "the writer closed cleanly");
    let root = std::fs::metadata(&state).unwrap().uid() == 0;
    let mut bin = std::path::PathBuf::from(crate::common::CLI);
    let mut cmd = if root {
        // The same for the binary: if `nobody` cannot run it where it was built, run a copy.
        let reachable = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !reachable {
            let copy = dir.join("cognito-migrate");
            std::fs::copy(&bin, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            bin = copy;
        }
        // nobody may read the state, and nothing else in its directory.
        std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(&bin);
        c
    } else {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        Command::new(&bin)
    };
    let before = snapshot(&state);
    let out = cmd
        .args(["status", "--state", state.to_str().unwrap(), "--json"])
        .output()
        .expect("run status");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(5), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (v["created"].as_u64(), v["pending"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(snapshot(&state), before);
    assert!(!side(&state, "-shm").exists() && !side(&state, "-wal").exists());
}

/// `run` on a file that is not a state (here SQLite's header followed by garbage) stops before
/// any AWS call with exit 2 naming the file, not exit 3 ("run again to resume"), and leaves the
/// file as it was. The endpoint is a closed port: a call would fail with another message.
#[test]
fn run_refuses_a_corrupt_state_with_exit_2_before_any_call() {
    let dir = tempdir("run-corrupt");
    let state = dir.join("state.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0x5Au8, 8192));
    std::fs::write(&state, &bytes).unwrap();
    let input = dir.join("users.ndjson");
    std::fs::write(
        &input,
        "{\"user_id\":\"auth0|1\",\"email\":\"a@example.com\"}\n",
    )
    .unwrap();
    let before = snapshot(&state);
    let env = [
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ];
    let (code, out, err) = run_cli(
        &crate::common::run_args(
            input.to_str().unwrap(),
            "auth0",
            "us-east-1_AAAA",
            state.to_str().unwrap(),
            "admin-create",
        ),
        &env,
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&state.display().to_string())
            && err.contains("not a cognito-migrate state file"),
        "{err}"
    );
    assert_eq!(snapshot(&state), before);
}

/// Removes a test's directory when the test ends (made writable again first).
struct DirCleanup(std::path::PathBuf);

impl Drop for DirCleanup {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
