//! `cognito-migrate plan` as a user runs it, for what it tells them: log lines written to a file
//! carry no ANSI colour codes, users with an unusable password hash are migrated without a
//! password and warned about (never the hash itself), and a group name Cognito refuses is a
//! rejection with its record, field and reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CLI: &str = env!("CARGO_BIN_EXE_cognito-migrate");

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("plan-messages-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const USERS: &str = r#"{"id":"1","username":"ada","email":"ada@example.com","hash":"{SSHA}c2VjcmV0c2FsdHNlY3JldA==","roles":"staff"}
{"id":"2","username":"bob","email":"bob@example.com","hash":"!Qm4vT8zXk2LpR7sWn1YbC5dHf9JgA3eKu6iOo0","roles":"staff"}
{"id":"3","username":"cy","email":"cy@example.com","hash":"sha1$9jYg7SjjPvtt$7a75f31d83568c42ed517bd88866898c4628cf1b","roles":"Cluster Admins"}
"#;

const MAPPING: &str = r#"
username = "username"
password = "hash"
groups = "roles"
[attributes]
email = "email"
email_verified = { transform = "const", value = "true" }
"custom:legacy_id" = "id"
"#;

/// Runs `plan` with stderr to a file (not a terminal) and `NO_COLOR` unset.
fn plan(dir: &Path) -> (i32, String, String) {
    std::fs::write(dir.join("users.ndjson"), USERS).unwrap();
    std::fs::write(dir.join("mapping.toml"), MAPPING).unwrap();
    let stderr_path = dir.join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let pool = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/pool-schema.json");
    let out = Command::new(CLI)
        .args(["plan", "--format", "ndjson", "--input"])
        .arg(dir.join("users.ndjson"))
        .arg("--mapping")
        .arg(dir.join("mapping.toml"))
        .arg("--pool-schema")
        .arg(&pool)
        .arg("--out")
        .arg(dir.join("plan"))
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(Stdio::from(stderr))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(stderr_path).unwrap(),
    )
}

#[test]
fn plan_warns_without_colour_or_secrets_and_rejects_bad_group_names() {
    let dir = scratch("plan");
    let (code, stdout, stderr) = plan(&dir);
    // Record 3's group name has a space: rejected, so exit 1.
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The warning is there, and without escape codes.
    assert!(
        stderr.contains("WARN") && stderr.contains("cannot be used"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("\x1b["),
        "colour codes in a log file: {stderr:?}"
    );
    // Two users without a usable hash go in without a password; none of it shows the hash.
    assert!(stdout.contains("import:none"), "{stdout}");
    assert!(stdout.contains("no password (1): unrecognised"), "{stdout}");
    assert!(
        stdout.contains("no password (1): an unusable-password marker"),
        "{stdout}"
    );
    let rejects = std::fs::read_to_string(dir.join("plan/rejects.csv")).unwrap();
    assert!(
        rejects.contains("3,3,") && rejects.contains(",roles,invalid_group,"),
        "{rejects}"
    );
    for secret in ["c2VjcmV0", "Qm4vT8zX", "7a75f31d"] {
        for (what, text) in [
            ("stdout", &stdout),
            ("stderr", &stderr),
            ("rejects", &rejects),
        ] {
            assert!(!text.contains(secret), "{what} shows {secret}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
