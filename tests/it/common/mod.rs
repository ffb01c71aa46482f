//! The helpers every test module shares, written once: the project's Cognito + S3 emulator
//! (tests/emulator, moto-based) started on a free loopback port for one test and stopped when the
//! test ends, its SDK clients and `status --json`; the CLI runners; pool setup and what a pool
//! holds; temporary directories. [`import_job`] adds the import-job tests' inputs and settings,
//! [`trigger`] the fake Lambda Runtime API the trigger binary runs under.
//!
//! The emulator's venv is created by `scripts/emulator setup` (which `scripts/test` runs). Tests fail,
//! never skip, when it is missing.

pub mod filter_pattern;
pub mod import_job;
pub mod trigger;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Emulator {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    log: PathBuf,
}

/// The `cognito-migrate` binary cargo built for these tests.
pub const CLI: &str = env!("CARGO_BIN_EXE_cognito-migrate");

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().unwrap().port()
}

impl Emulator {
    /// Starts an emulator with extra server arguments, waiting (at most 30 s) until it answers.
    pub fn start_with(args: &[&str]) -> Emulator {
        let root = repo_root();
        let python = std::env::var_os("COGNITO_MIGRATE_EMULATOR_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        assert!(
            python.exists(),
            "the emulator's Python ({}) is missing: run scripts/emulator setup (scripts/test does)",
            python.display()
        );
        let port = free_port();
        let log_dir = root.join("target/emulator-logs");
        std::fs::create_dir_all(&log_dir).unwrap();
        let log = log_dir.join(format!("emulator-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(python)
            .arg(root.join("tests/emulator/server.py"))
            .arg("--port")
            .arg(port.to_string())
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start the emulator");
        let emulator = Emulator {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = emulator.http("GET", "/_emulator/health", "") {
                return emulator;
            }
            assert!(
                Instant::now() < deadline,
                "the emulator did not answer within 30 s; its log: {}",
                emulator.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A minimal blocking HTTP/1.1 call to the emulator's control API: (status, body).
    pub fn http(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        // One write: the emulator's server (werkzeug) stalls on request bytes that arrive after
        // it has read the request.
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// POSTs a JSON body to a control endpoint and expects 200.
    pub fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, text) = self.http("POST", path, &body.to_string()).unwrap();
        assert_eq!(status, 200, "{path} answered {status}: {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.http("GET", path, "").unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// An SDK configuration pointed at this emulator with dummy credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_cognitoidentityprovider::config::Credentials::new(
                "test", "test", None, None, "emulator",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await
    }

    /// A Cognito client pointed at this emulator (SDK retries off).
    pub async fn cognito(&self) -> aws_sdk_cognitoidentityprovider::Client {
        aws_sdk_cognitoidentityprovider::Client::new(&self.sdk_config().await)
    }

    /// The emulator's call counters (`GET /_emulator/stats`).
    pub fn stats(&self) -> serde_json::Value {
        self.get_json("/_emulator/stats").1
    }

    /// `cognito-migrate status --state STATE --json` against this emulator: (exit code, summary).
    pub fn status(&self, state: &Path) -> (i32, serde_json::Value) {
        let (code, out, err) = run_cli(
            &["status", "--state", state.to_str().unwrap(), "--json"],
            &self.cli_env(),
        );
        let summary = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("status --json: {e}: {out} {err}"));
        (code, summary)
    }

    /// Environment for running the CLI binary against this emulator.
    pub fn cli_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ]
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test's own directory (`tempfile`), under cargo's temporary directory for integration tests;
/// it is removed when dropped, and kept when the test fails so that its files can be read. It
/// dereferences to its [`Path`].
pub struct TempDir(Option<tempfile::TempDir>);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.as_ref().expect("a live temporary directory").path()
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        self
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            if std::thread::panicking() {
                eprintln!("kept the failed test's directory {}", dir.keep().display());
            }
        }
    }
}

/// A fresh directory for one test's files, named after `name`.
/// Sends SIGTERM to a child (a run stopped like Ctrl-C).
pub fn sigterm(child: &std::process::Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success(), "kill -TERM {}", child.id());
}

pub fn tempdir(name: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{name}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create a temporary directory");
    TempDir(Some(dir))
}

/// The role ARN the import-job tests give `run` (the emulator accepts any).
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/CognitoImport";

/// Sends a `CreateUserPool` request and returns the new pool's id.
pub async fn create_pool(
    request: aws_sdk_cognitoidentityprovider::operation::create_user_pool::builders::CreateUserPoolFluentBuilder,
) -> String {
    request
        .send()
        .await
        .expect("create a user pool")
        .user_pool()
        .unwrap()
        .id()
        .unwrap()
        .to_string()
}

/// A pool that auto-verifies email, as import jobs need; returns its id.
pub async fn verified_email_pool(
    c: &aws_sdk_cognitoidentityprovider::Client,
    name: &str,
) -> String {
    create_pool(
        c.create_user_pool()
            .pool_name(name)
            .auto_verified_attributes(
                aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType::Email,
            ),
    )
    .await
}

/// A mutable custom string attribute for a pool's schema (`custom:{name}` in the pool); add
/// constraints, then build.
pub fn string_attribute(
    name: &str,
) -> aws_sdk_cognitoidentityprovider::types::builders::SchemaAttributeTypeBuilder {
    aws_sdk_cognitoidentityprovider::types::SchemaAttributeType::builder()
        .name(name)
        .attribute_data_type(aws_sdk_cognitoidentityprovider::types::AttributeDataType::String)
        .mutable(true)
}

/// A user attribute.
pub fn attr(name: &str, value: &str) -> aws_sdk_cognitoidentityprovider::types::AttributeType {
    aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .unwrap()
}

/// Creates the group `name` in the pool.
pub async fn create_group(c: &aws_sdk_cognitoidentityprovider::Client, pool: &str, name: &str) {
    c.create_group()
        .user_pool_id(pool)
        .group_name(name)
        .send()
        .await
        .expect("CreateGroup");
}

/// The usernames of the members of `group` (ListUsersInGroup, all pages).
pub async fn group_members(
    c: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    group: &str,
) -> std::collections::BTreeSet<String> {
    let users: Vec<aws_sdk_cognitoidentityprovider::types::UserType> = c
        .list_users_in_group()
        .user_pool_id(pool)
        .group_name(group)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("ListUsersInGroup");
    users
        .iter()
        .map(|u| u.username().unwrap().to_string())
        .collect()
}

/// Every user of the pool (ListUsers, all pages of 60).
pub async fn pool_users(
    c: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
) -> Vec<aws_sdk_cognitoidentityprovider::types::UserType> {
    c.list_users()
        .user_pool_id(pool)
        .limit(60)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("ListUsers")
}

/// Every username in the pool with how often it occurs.
pub async fn pool_usernames(
    c: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
) -> std::collections::BTreeMap<String, u32> {
    let mut names = std::collections::BTreeMap::new();
    for u in pool_users(c, pool).await {
        *names.entry(u.username().unwrap().to_string()).or_insert(0) += 1;
    }
    names
}

/// Asserts that the pool holds exactly the users named in `expected`, each once; returns the
/// pool's users.
pub async fn assert_pool_holds(
    c: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    expected: &[String],
    context: &str,
) -> Vec<aws_sdk_cognitoidentityprovider::types::UserType> {
    let users = pool_users(c, pool).await;
    let mut counts = std::collections::BTreeMap::new();
    for u in &users {
        *counts.entry(u.username().unwrap()).or_insert(0) += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, k)| **k > 1).collect();
    assert!(
        twice.is_empty(),
        "{context}: users in the pool more than once: {twice:?}"
    );
    let got: Vec<&str> = counts.keys().copied().collect();
    let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(
        got, want,
        "{context}: the pool must hold exactly the input's users"
    );
    users
}

/// The arguments of `cognito-migrate run` reading `input` as `format` into `pool` with the state
/// file `state` in `mode`; callers add the rest.
pub fn run_args<'a>(
    input: &'a str,
    format: &'a str,
    pool: &'a str,
    state: &'a str,
    mode: &'a str,
) -> Vec<&'a str> {
    vec![
        "run",
        "-i",
        input,
        "-f",
        format,
        "--pool-id",
        pool,
        "--state",
        state,
        "--mode",
        mode,
    ]
}

/// The CLI binary with arguments and environment (and no `AWS_PROFILE`), stdin closed; callers
/// choose stdout and stderr, then run or spawn it.
pub fn cli_command<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(CLI);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("AWS_PROFILE");
    cmd
}

/// Runs the CLI binary with arguments and environment; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let out = cli_command(args, env)
        .output()
        .expect("run cognito-migrate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `cognito-migrate report --state STATE --failed OUT`: (exit code, stdout, stderr).
pub fn report_failed(state: &Path, out: &Path, env: &[(&str, String)]) -> (i32, String, String) {
    let (state, out) = (state.to_str().unwrap(), out.to_str().unwrap());
    run_cli(&["report", "--state", state, "--failed", out], env)
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A deterministic Auth0 export of `n` users (about 330 bytes each).
pub fn auth0_export(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let line = serde_json::json!({
            "user_id": format!("auth0|{i:024x}"),
            "email": format!("user{i}@example.com"),
            "email_verified": i % 3 != 0,
            "given_name": format!("Given{i}"),
            "family_name": format!("Family{i}"),
            "created_at": "2024-01-02T03:04:05.000Z",
            "updated_at": "2024-02-03T04:05:06.000Z",
            "app_metadata": {"plan": if i % 2 == 0 { "pro" } else { "free" }},
            "blocked": i % 50 == 0,
        });
        out.extend(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}
