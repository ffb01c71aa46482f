//! `cognito-migrate directory build` and `directory info`, run as a user runs them.
//!
//! Why: the library tests cover the directory file; these show the command wires the shared source
//! and pool options, writes private files, lists rejections without secrets, honours
//! `--only-unimported` with and without the run's state file, and exits with the documented codes.

use crate::common::{repo_root, tempdir, CLI};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cognito_migrate::checkpoint::{fingerprint_file, Checkpoint, Outcome, RunSpec, UserRow};
use cognito_migrate::directory::DirectoryFile;
use cognito_migrate::record::Position;
use serde_json::Value;

fn pool_schema(dir: &Path) -> PathBuf {
    let path = dir.join("pool.json");
    let schema = serde_json::json!({
        "pool_id": "us-east-1_Sample", "pool_name": "sample", "csv_header": [],
        "attributes": [{"name": "custom:legacy_id", "data_type": "string", "required": false,
                        "mutable": true, "max_length": 64}],
        "username_attributes": [], "alias_attributes": ["email"],
        "username_case_sensitive": false, "auto_verified_attributes": []
    });
    std::fs::write(&path, schema.to_string()).unwrap();
    path
}

fn build(dir: &Path, out: &str, extra: &[&str]) -> Output {
    Command::new(CLI)
        .args(["directory", "build", "-f", "ndjson", "-i"])
        .arg(repo_root().join("samples/ndjson/users.ndjson"))
        .arg("--mapping")
        .arg(repo_root().join("samples/ndjson/mapping.toml"))
        .arg("--pool-schema")
        .arg(pool_schema(dir))
        .arg("--out")
        .arg(dir.join(out))
        .args(extra)
        .env_remove("COGNITO_MIGRATE_POOL_ID")
        .output()
        .expect("run cognito-migrate")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn build_writes_a_private_directory_and_lists_rejections_without_secrets() {
    let dir = tempdir("build");
    let o = build(&dir, "directory.db", &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "some records are rejected: {}",
        text(&o)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("written"), "{}", text(&o));
    let db = dir.join("directory.db");
    let rejects = dir.join("directory.db.rejects.csv");
    #[cfg(unix)]
    {
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&rejects), 0o600);
    }
    let csv = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        csv.starts_with("record,line,byte_offset,field,reason,message"),
        "{csv}"
    );
    assert!(csv.lines().count() >= 3, "{csv}");
    assert!(
        !csv.contains("$2b$") && !text(&o).contains("$2b$"),
        "a hash is shown"
    );

    let file = DirectoryFile::open(&db).unwrap();
    assert!(file.find("bob.martin@example.org").unwrap().is_some());

    let info = Command::new(CLI)
        .args(["directory", "info", "--verify", "--json"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(info.status.success(), "{}", text(&info));
    let meta: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(meta["pool_id"], "us-east-1_Sample");
    assert_eq!(meta["user_count"].as_u64(), Some(file.meta().user_count));
    assert_eq!(meta["sign_in"]["email"], true);

    let human = Command::new(CLI)
        .args(["directory", "info"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&human.stdout).contains("sign-in keys   username, email"));
}

#[test]
fn only_unimported_by_routing_and_by_state_file() {
    let dir = tempdir("unimported");
    // By routing: the samples' bcrypt cost-10 hashes are imported with the user.
    let o = build(&dir, "routed.db", &["--only-unimported", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        summary["left_out_imported"].as_u64().unwrap() >= 6,
        "{summary}"
    );
    assert_eq!(summary["written"].as_u64(), Some(0), "{summary}");

    // A missing state file is a usage error.
    let o = build(
        &dir,
        "x.db",
        &["--only-unimported", "--state", "/nonexistent/state.db"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // By the run's checkpoint: only what it records as imported with a hash is left out.
    let state = dir.join("state.db");
    let input = repo_root().join("samples/ndjson/users.ndjson");
    {
        let cp = Checkpoint::open(&state).unwrap();
        let run = cp
            .begin_run(
                &RunSpec {
                    input_location: input.display().to_string(),
                    input_format: "ndjson".into(),
                    input_size: std::fs::metadata(&input).unwrap().len(),
                    input_fingerprint: fingerprint_file(&input).unwrap(),
                    pool_id: "us-east-1_Sample".into(),
                    mode: "import-job".into(),
                    options: "{}".into(),
                },
                false,
            )
            .unwrap();
        let pos = |record, line| Position {
            record,
            line,
            byte_offset: 0,
        };
        cp.record_batch(
            run.id,
            &[
                UserRow::new(pos(1, 1), "alice", "import:BCRYPT", Outcome::Imported),
                UserRow::new(pos(2, 2), "bob", "import:BCRYPT", Outcome::Failed),
                UserRow::new(pos(3, 3), "carol", "import:none", Outcome::Imported),
            ],
        )
        .unwrap();
    }
    let o = build(
        &dir,
        "state.db.out",
        &[
            "--only-unimported",
            "--state",
            state.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["left_out_imported"].as_u64(), Some(1), "{summary}");
    let file = DirectoryFile::open(dir.join("state.db.out")).unwrap();
    assert!(
        file.find("alice").unwrap().is_none(),
        "imported with her hash"
    );
    assert!(file.find("bob").unwrap().is_some(), "his import failed");
    assert!(
        file.find("carol").unwrap().is_some(),
        "imported without her hash"
    );
}
