//! Helpers shared by the import-job fault and crash tests (`tests/import_job_*.rs`): a pool in the
//! emulator, generated Auth0 inputs, running `cognito-migrate run` with fast settings, and reading
//! what the pool and the state file hold.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType;
use aws_sdk_cognitoidentityprovider::Client;
use serde_json::json;

use crate::support::{self, run_cli, Emulator};

pub use crate::support::{tempdir, ROLE_ARN as ROLE};
/// A bcrypt hash (cost 10) Cognito imports; its password does not matter here.
pub const BCRYPT: &str = "$2b$10$BvjxuTfzJw4LRKIq4kPBJus3C2LYUeEAv41PJsQBCGXHcOVZV.q6y";

pub async fn client(emu: &Emulator) -> Client {
    Client::new(&emu.sdk_config().await)
}

/// A pool like the ones the import job needs (email auto-verified); returns its id.
pub async fn pool(c: &Client, name: &str) -> String {
    support::create_pool(
        c.create_user_pool()
            .pool_name(name)
            .auto_verified_attributes(VerifiedAttributeType::Email),
    )
    .await
}

/// Fast emulator settings: jobs start at once and process quickly.
pub fn fast(emu: &Emulator) {
    emu.control(
        "/_emulator/config",
        json!({"import_rows_per_second": 5000.0, "import_pending_delay_seconds": 0.05}),
    );
}

/// The username of generated user `i`.
pub fn username(prefix: &str, i: usize) -> String {
    format!("auth0|{prefix}{i:05}")
}

/// One Auth0 export line. `hashed`: with a bcrypt hash (route import:BCRYPT), else none
/// (import:none). `verified`: email_verified.
pub fn auth0_line(prefix: &str, i: usize, hashed: bool, verified: bool) -> String {
    let mut v = json!({
        "user_id": username(prefix, i),
        "email": format!("{prefix}{i:05}@example.com"),
        "email_verified": verified,
        "name": format!("User {i}"),
        "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0",
                        "isSocial": false, "user_id": format!("{prefix}{i:05}")}],
    });
    if hashed {
        v["passwordHash"] = json!(BCRYPT);
    }
    v.to_string()
}

/// Writes `n` users (every third with a bcrypt hash when `mixed`) and returns the file.
pub fn write_users(dir: &Path, prefix: &str, n: usize, mixed: bool) -> PathBuf {
    let path = dir.join(format!("{prefix}users.ndjson"));
    let text: String = (0..n)
        .map(|i| auth0_line(prefix, i, mixed && i % 3 == 0, true) + "\n")
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The arguments of `run --mode import-job` for an input, pool and state file.
pub fn run_args(input: &Path, pool: &str, state: &Path) -> Vec<String> {
    [
        "run",
        "-i",
        input.to_str().unwrap(),
        "-f",
        "auth0",
        "--pool-id",
        pool,
        "--state",
        state.to_str().unwrap(),
        "--mode",
        "import-job",
        "--role-arn",
        ROLE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The CLI's environment for these tests: the emulator, fast polling, plain progress lines.
pub fn env(emu: &Emulator, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = emu.cli_env();
    env.push(("COGNITO_MIGRATE_POLL_MAX_SECONDS", "0.2".into()));
    env.push(("COGNITO_MIGRATE_PROGRESS", "plain".into()));
    env.push(("COGNITO_MIGRATE_PROGRESS_INTERVAL", "1".into()));
    for (k, v) in extra {
        env.push((k, v.to_string()));
    }
    env
}

pub fn run(
    emu: &Emulator,
    args: &[String],
    extra: &[(&'static str, &str)],
) -> (i32, String, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_cli(&args, &env(emu, extra))
}

/// `status --state DB --json`.
pub fn status(emu: &Emulator, state: &Path) -> serde_json::Value {
    let (_code, stdout, stderr) = run_cli(
        &["status", "--state", state.to_str().unwrap(), "--json"],
        &emu.cli_env(),
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {stdout} {stderr}"))
}

pub fn n(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Every username in the pool with how often it occurs (ListUsers, all pages).
pub async fn pool_users(c: &Client, pool: &str) -> BTreeMap<String, u32> {
    let mut users = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .list_users()
            .user_pool_id(pool)
            .limit(60)
            .set_pagination_token(token.clone())
            .send()
            .await
            .expect("ListUsers");
        for u in out.users() {
            *users.entry(u.username().unwrap().to_string()).or_insert(0) += 1;
        }
        match out.pagination_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return users,
        }
    }
}

/// Asserts that the pool holds exactly `expected`, each once.
pub async fn assert_pool_holds(c: &Client, pool: &str, expected: &[String], context: &str) {
    let users = pool_users(c, pool).await;
    let twice: Vec<_> = users.iter().filter(|(_, k)| **k > 1).collect();
    assert!(
        twice.is_empty(),
        "{context}: users in the pool more than once: {twice:?}"
    );
    let got: Vec<&String> = users.keys().collect();
    let mut want: Vec<&String> = expected.iter().collect();
    want.sort();
    assert_eq!(
        got, want,
        "{context}: the pool must hold exactly the input's users"
    );
}

/// The emulator's import jobs (oldest first).
pub fn jobs(emu: &Emulator) -> Vec<serde_json::Value> {
    let (code, v) = emu.get_json("/_emulator/import_jobs");
    assert_eq!(code, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}
