//! Helpers shared by the import-job fault and crash tests (`import_job_*`, `state_lease`): a pool in the
//! emulator, generated Auth0 inputs, running `cognito-migrate run` with fast settings, and reading
//! what the pool and the state file hold.

use std::path::{Path, PathBuf};

use aws_sdk_cognitoidentityprovider::Client;
use serde_json::json;

use crate::common::{self, run_cli, Emulator};

pub use crate::common::{
    assert_pool_holds, pool_usernames, tempdir, verified_email_pool as pool, ROLE_ARN as ROLE,
};
/// A bcrypt hash (cost 10) Cognito imports; its password does not matter here.
pub const BCRYPT: &str = "$2b$10$BvjxuTfzJw4LRKIq4kPBJus3C2LYUeEAv41PJsQBCGXHcOVZV.q6y";

pub async fn client(emu: &Emulator) -> Client {
    Client::new(&emu.sdk_config().await)
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

/// The usernames of the first `n` users [`write_users`] writes with `prefix`.
pub fn usernames(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| username(prefix, i)).collect()
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
    let input = input.to_str().unwrap();
    let state = state.to_str().unwrap();
    let mut args = common::run_args(input, "auth0", pool, state, "import-job");
    args.extend(["--role-arn", ROLE]);
    args.iter().map(|s| s.to_string()).collect()
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

pub fn n(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// The emulator's import jobs (oldest first).
pub fn jobs(emu: &Emulator) -> Vec<serde_json::Value> {
    let (code, v) = emu.get_json("/_emulator/import_jobs");
    assert_eq!(code, 200, "{v}");
    v.as_array().cloned().unwrap_or_default()
}
