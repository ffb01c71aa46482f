//! End to end with a local Cognito: runs `scripts/trigger/e2e`, which starts cognito-local (npm,
//! pinned) with its UserMigration trigger pointed at `cognito-migrate-trigger` served through
//! `cargo lambda watch` (PyPI, pinned), all on 127.0.0.1, and checks, for a pool with email as
//! username and one with an email alias, that a legacy user signs in with their legacy password
//! (tokens; the user now exists, CONFIRMED, with their attributes and the username Cognito would
//! give them) and that a wrong password or an unknown user gets NotAuthorizedException and creates
//! nobody; also that the trigger's log holds no password or username.
//!
//! Why a script: the same check is useful by hand (`scripts/trigger/e2e`). This test hands it the
//! binaries Cargo built for it, so the script runs no cargo command (which would wait for the build
//! directory `cargo test` holds). The script installs its tools into target/trigger-tools/
//! (git-ignored) on first use — about a minute — and then runs in seconds. It is bounded here:
//! after 4 minutes its whole process group is terminated (the script, its installers and servers)
//! and the test fails.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn cognito_local_migrates_a_legacy_user_through_the_trigger() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trigger-e2e.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(root.join("scripts/trigger/e2e"))
        .current_dir(root)
        .env(
            "COGNITO_MIGRATE_TRIGGER_BIN",
            env!("CARGO_BIN_EXE_cognito-migrate-trigger"),
        )
        .env("COGNITO_MIGRATE_BIN", env!("CARGO_BIN_EXE_cognito-migrate"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        // Its own process group, so that a timeout stops everything it started (installers,
        // servers, the function) and not just the shell.
        .process_group(0)
        .spawn()
        .expect("run scripts/trigger/e2e");
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            std::thread::sleep(Duration::from_secs(3));
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            panic!(
                "scripts/trigger/e2e did not finish within 4 minutes:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "scripts/trigger/e2e failed ({status}):\n{text}"
    );
    assert!(text.contains("end-to-end OK"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    // Both pools were exercised, each check by name.
    for check in [
        "ok   [email] alice signs in with her email and legacy password",
        "ok   [email] the trigger answered no username",
        "ok   [email] her username is generated, not her email",
        "ok   [email] wrong password: NotAuthorizedException",
        "ok   [email] unknown user: NotAuthorizedException",
        "ok   [alias] she is named by her legacy username (alice)",
        "ok   [alias] for a username sign-in the trigger answered no username",
        "ok   [alias] wrong password: NotAuthorizedException",
    ] {
        assert!(text.contains(check), "missing {check:?}:\n{text}");
    }
}
