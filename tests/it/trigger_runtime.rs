//! The real `cognito-migrate-trigger` binary under a local fake of the Lambda Runtime API.
//!
//! Why: unit tests call the handler directly; only running the binary shows that `main` wires the
//! configuration, the directory and `lambda_runtime` together, that answers (and error answers)
//! reach the Runtime API in the shape Lambda expects, that the process keeps serving after an
//! error, and that its logs hold no secrets even with `RUST_LOG=trace`.
//!
//! The fake (`common/trigger.rs`) is a tiny HTTP/1.1 server on 127.0.0.1; every wait is
//! bounded and the child is killed at the end.
//!
//! The `#[ignore]`d `bench_one_million_users` is the benchmark run by `scripts/trigger/bench`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::tempdir;
use crate::common::trigger::{
    event, Answer, FakeRuntime, Trigger, AUTH_EVENT, BCRYPT4, BCRYPT4_PASSWORD, FORGOT_EVENT,
    TRIGGER, WAIT,
};
use cognito_migrate::directory::{DirectoryEntry, DirectoryWriter, SignIn};
use serde_json::{json, Value};

pub(crate) fn small_directory(dir: &Path) -> PathBuf {
    let path = dir.join("directory.db");
    let sign_in = SignIn {
        email: true,
        ..SignIn::default()
    };
    let mut w = DirectoryWriter::create(&path, "us-east-1_EXAMPLE", sign_in).unwrap();
    let user = |name: &str, enabled: bool| DirectoryEntry {
        username: name.into(),
        attributes: [
            ("email".to_string(), format!("{name}@example.com")),
            ("email_verified".to_string(), "true".to_string()),
            ("custom:legacy_id".to_string(), "42".to_string()),
        ]
        .into(),
        enabled,
        groups: vec![],
        password_hash: Some(BCRYPT4.into()),
        record: 1,
    };
    w.add_entry(&user("alice", true)).unwrap();
    w.add_entry(&user("mallory", false)).unwrap();
    w.finish().unwrap();
    path
}

fn body_json(a: &Answer) -> Value {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{e}: {}", a.body))
}

#[test]
fn the_binary_answers_a_sequence_of_events_including_after_errors() {
    let dir = tempdir("sequence");
    let directory = small_directory(&dir);
    let runtime = FakeRuntime::start();
    let trigger = Trigger::spawn(
        &runtime,
        &[
            ("COGNITO_MIGRATE_DIRECTORY", directory.to_str().unwrap()),
            ("COGNITO_MIGRATE_LOG_KEY", "test-key"),
            // Even at TRACE, the runtime's raw-event log must stay off.
            ("RUST_LOG", "trace"),
        ],
        &dir.join("trigger.log"),
    );
    assert!(
        runtime.first_next(WAIT).is_some(),
        "no /next request: {}",
        trigger.log()
    );

    let ok = runtime.call(&event(AUTH_EVENT, "alice", Some(BCRYPT4_PASSWORD)));
    assert_eq!(ok.kind, "response", "{ok:?}");
    let v = body_json(&ok);
    assert_eq!(v["response"]["finalUserStatus"], "CONFIRMED");
    assert_eq!(v["response"]["messageAction"], "SUPPRESS");
    assert_eq!(
        v["response"]["userAttributes"]["email"],
        "alice@example.com"
    );
    assert_eq!(v["response"]["userAttributes"]["email_verified"], "true");
    assert_eq!(v["response"]["userAttributes"]["custom:legacy_id"], "42");
    assert!(
        !ok.body.contains(BCRYPT4_PASSWORD),
        "the password is echoed: {}",
        ok.body
    );

    let wrong = runtime.call(&event(AUTH_EVENT, "alice", Some("correct hors?")));
    let unknown = runtime.call(&event(AUTH_EVENT, "nobody", Some(BCRYPT4_PASSWORD)));
    let disabled = runtime.call(&event(AUTH_EVENT, "mallory", Some(BCRYPT4_PASSWORD)));
    for a in [&wrong, &unknown, &disabled] {
        assert_eq!(a.kind, "error", "{a:?}");
        assert_eq!(
            body_json(a),
            json!({"errorType": "UserMigrationDeclined", "errorMessage": "user migration declined"})
        );
    }
    assert_eq!(
        wrong.body, unknown.body,
        "wrong password and unknown user must look the same"
    );

    // An event the runtime cannot even parse is an error answer too, and serving goes on.
    let mut odd: Value = serde_json::from_str(AUTH_EVENT).unwrap();
    odd["triggerSource"] = "UserMigration_Unknown".into();
    let odd = runtime.call(&odd.to_string());
    assert_eq!(odd.kind, "error", "{odd:?}");

    let reset = runtime.call(&event(FORGOT_EVENT, "alice@example.com", None));
    assert_eq!(reset.kind, "response", "{reset:?}");
    let v = body_json(&reset);
    assert_eq!(v["response"]["userAttributes"]["username"], "alice");
    assert_eq!(v["response"]["messageAction"], "SUPPRESS");

    let again = runtime.call(&event(AUTH_EVENT, "ALICE", Some(BCRYPT4_PASSWORD)));
    assert_eq!(again.kind, "response", "{again:?}");

    let log = trigger.log();
    for secret in [
        BCRYPT4_PASSWORD,
        "correct hors?",
        "t/ab7kONqOqKnhfETA",
        "alice@example.com",
        "mallory",
        "nobody",
    ] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
    assert!(log.contains("migrated"), "{log}");
    assert!(
        log.contains("wrong_password") && log.contains("unknown_user") && log.contains("disabled"),
        "{log}"
    );
}

#[test]
fn configuration_errors_stop_the_process_with_a_clear_message() {
    let dir = tempdir("config");
    let runtime = FakeRuntime::start();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "COGNITO_MIGRATE_DIRECTORY"),
        (
            &[("COGNITO_MIGRATE_DIRECTORY", "/nonexistent/directory.db")],
            "/nonexistent/directory.db",
        ),
        (
            &[("COGNITO_MIGRATE_DIRECTORY", "s3://bucket-without-key")],
            "s3://",
        ),
    ];
    for (i, (env, expected)) in cases.iter().enumerate() {
        let mut t = Trigger::spawn(&runtime, env, &dir.join(format!("t{i}.log")));
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = t.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "the trigger did not stop: {}",
                t.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!status.success());
        let log = t.log();
        assert!(log.contains(expected), "{expected:?} not in {log}");
    }
    assert!(runtime.first_next(Duration::from_millis(10)).is_none());
}

#[test]
fn init_errors_are_reported_through_the_runtime_api() {
    let dir = tempdir("init-error");
    // (environment, errorType, what errorMessage contains)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            &[],
            "Runtime.InvalidConfiguration",
            "COGNITO_MIGRATE_DIRECTORY",
        ),
        (
            &[("COGNITO_MIGRATE_DIRECTORY", "/nonexistent/directory.db")],
            "Runtime.LegacyDirectoryUnavailable",
            "COGNITO_MIGRATE_DIRECTORY: directory file /nonexistent/directory.db",
        ),
        (
            &[("COGNITO_MIGRATE_DIRECTORY", "s3://bucket-without-key")],
            "Runtime.InvalidConfiguration",
            "COGNITO_MIGRATE_DIRECTORY",
        ),
        (
            &[
                ("COGNITO_MIGRATE_DIRECTORY", "/nonexistent/directory.db"),
                ("COGNITO_MIGRATE_COST_CAP", "bcrypt=lots"),
            ],
            "Runtime.InvalidConfiguration",
            "COGNITO_MIGRATE_COST_CAP",
        ),
    ];
    for (i, (env, error_type, message)) in cases.iter().enumerate() {
        let runtime = FakeRuntime::start();
        let t = Trigger::spawn(&runtime, env, &dir.join(format!("t{i}.log")));
        let Some(reported) = runtime.init_error(WAIT) else {
            panic!(
                "case {i}: nothing posted to /runtime/init/error:\n{}",
                t.log()
            );
        };
        let v = body_json(&reported);
        assert_eq!(v["errorType"], *error_type, "case {i}: {v}");
        let text = v["errorMessage"].as_str().unwrap_or_default();
        assert!(text.contains(message), "case {i}: {message:?} not in {v}");
        assert!(runtime.first_next(Duration::from_millis(10)).is_none());
    }
    // The Runtime API as a whole URL with a base path, as `cargo lambda watch` sets it.
    let runtime = FakeRuntime::start();
    let url = format!("http://{}/.rt/cognito-migrate-trigger", runtime.address());
    let t = Trigger::spawn(
        &runtime,
        &[("AWS_LAMBDA_RUNTIME_API", url.as_str())],
        &dir.join("url.log"),
    );
    let reported = runtime.init_error(WAIT);
    assert!(reported.is_some(), "nothing posted:\n{}", t.log());
}

/// `event(AUTH_EVENT, "alice", right password)` as JSON, changed by `edit`.
pub(crate) fn alice_event_edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value =
        serde_json::from_str(&event(AUTH_EVENT, "alice", Some(BCRYPT4_PASSWORD))).unwrap();
    edit(&mut v);
    v.to_string()
}

fn without(member: &'static str) -> impl FnOnce(&mut Value) {
    move |v: &mut Value| {
        v.as_object_mut().unwrap().remove(member);
    }
}

const DECLINED: &str =
    r#"{"errorType":"UserMigrationDeclined","errorMessage":"user migration declined"}"#;

#[test]
fn malformed_events_are_declined_and_none_of_their_values_is_echoed() {
    let dir = tempdir("malformed");
    let directory = small_directory(&dir);
    let runtime = FakeRuntime::start();
    let trigger = Trigger::spawn(
        &runtime,
        &[
            ("COGNITO_MIGRATE_DIRECTORY", directory.to_str().unwrap()),
            ("RUST_LOG", "trace"),
        ],
        &dir.join("trigger.log"),
    );
    assert!(runtime.first_next(WAIT).is_some(), "{}", trigger.log());

    // Marker values in wrong places; with the right password and the username, none may appear
    // in an answer or the log.
    let markers = ["12345", "98765", "Evil-4711", "31337"];
    let shapes: Vec<(&str, String)> = vec![
        (
            "request as an array holding the right password",
            alice_event_edited(|v| v["request"] = json!([BCRYPT4_PASSWORD])),
        ),
        (
            "request.password an integer",
            alice_event_edited(|v| v["request"]["password"] = json!(12345)),
        ),
        (
            "request.password an array",
            alice_event_edited(|v| v["request"]["password"] = json!([BCRYPT4_PASSWORD])),
        ),
        (
            "userName an integer",
            alice_event_edited(|v| v["userName"] = json!(98765)),
        ),
        (
            "unknown triggerSource",
            alice_event_edited(|v| v["triggerSource"] = json!("UserMigration_Evil-4711")),
        ),
        (
            "triggerSource missing",
            alice_event_edited(without("triggerSource")),
        ),
        ("userName missing", alice_event_edited(without("userName"))),
        (
            "userPoolId missing",
            alice_event_edited(without("userPoolId")),
        ),
        ("request missing", alice_event_edited(without("request"))),
        (
            "callerContext an array",
            alice_event_edited(|v| v["callerContext"] = json!([BCRYPT4_PASSWORD, 31337])),
        ),
        (
            "validationData holding a number",
            alice_event_edited(|v| v["request"]["validationData"] = json!({"k": 31337})),
        ),
        (
            "the whole event an array",
            json!([AUTH_EVENT, BCRYPT4_PASSWORD]).to_string(),
        ),
        (
            "not JSON",
            format!("{{\"request\": {{\"password\": \"{BCRYPT4_PASSWORD}\", 12345"),
        ),
    ];
    let declined: Value = serde_json::from_str(DECLINED).unwrap();
    for (what, body) in &shapes {
        let a = runtime.call(body);
        assert_eq!(a.kind, "error", "{what}: {a:?}");
        assert_eq!(body_json(&a), declined, "{what}");
    }
    // Serving goes on, and a well-formed event still migrates.
    let ok = runtime.call(&event(AUTH_EVENT, "alice", Some(BCRYPT4_PASSWORD)));
    assert_eq!(ok.kind, "response", "{ok:?}\n{}", trigger.log());

    let log = trigger.log();
    for secret in markers.iter().chain([&BCRYPT4_PASSWORD, &"alice"]) {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
    assert_eq!(
        log.matches("\"reason\":\"malformed_event\"").count(),
        shapes.len() - 1,
        "one declined line per malformed event:\n{log}"
    );
    assert!(log.contains("unknown_trigger_source"), "{log}");
}

#[test]
fn an_event_from_another_user_pool_is_declined() {
    let dir = tempdir("other-pool");
    let directory = small_directory(&dir);
    let runtime = FakeRuntime::start();
    let trigger = Trigger::spawn(
        &runtime,
        &[("COGNITO_MIGRATE_DIRECTORY", directory.to_str().unwrap())],
        &dir.join("trigger.log"),
    );
    assert!(runtime.first_next(WAIT).is_some(), "{}", trigger.log());
    let other = alice_event_edited(|v| v["userPoolId"] = json!("us-east-1_OTHERPOOL"));
    let a = runtime.call(&other);
    assert_eq!(a.kind, "error", "{a:?}");
    assert_eq!(
        body_json(&a),
        serde_json::from_str::<Value>(DECLINED).unwrap()
    );
    let ok = runtime.call(&event(AUTH_EVENT, "alice", Some(BCRYPT4_PASSWORD)));
    assert_eq!(ok.kind, "response", "{ok:?}");
    let log = trigger.log();
    assert!(log.contains("wrong_user_pool"), "{log}");
    assert!(!log.contains(BCRYPT4_PASSWORD), "{log}");
    assert!(!log.contains("OTHERPOOL"), "{log}");
}

/// Changes `from` into `to` (same length) where it first occurs in the file's bytes: a row altered
/// behind SQLite's back, which the file format itself does not notice.
pub(crate) fn tamper(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from:?} is not in {}", path.display()));
    bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_tampered_local_directory_answers_unavailable_for_every_event() {
    let dir = tempdir("tampered");
    let directory = small_directory(&dir);
    tamper(
        &directory,
        "\"custom:legacy_id\":\"42\"",
        "\"custom:legacy_id\":\"43\"",
    );
    let runtime = FakeRuntime::start();
    let trigger = Trigger::spawn(
        &runtime,
        &[("COGNITO_MIGRATE_DIRECTORY", directory.to_str().unwrap())],
        &dir.join("trigger.log"),
    );
    assert!(runtime.first_next(WAIT).is_some(), "{}", trigger.log());
    for e in [
        event(AUTH_EVENT, "alice", Some(BCRYPT4_PASSWORD)),
        event(AUTH_EVENT, "nobody", Some(BCRYPT4_PASSWORD)),
        event(FORGOT_EVENT, "alice", None),
    ] {
        let a = runtime.call(&e);
        assert_eq!(a.kind, "error", "{a:?}\n{}", trigger.log());
        assert_eq!(
            body_json(&a)["errorType"],
            "LegacyDirectoryUnavailable",
            "{a:?}"
        );
    }
    let log = trigger.log();
    assert_eq!(
        log.matches("does not match its checksum").count(),
        1,
        "the integrity failure is logged once:\n{log}"
    );
    assert!(!log.contains(BCRYPT4_PASSWORD), "{log}");
}

// ------------------------------------------------------------------------------------------------
// Benchmark (ignored by default; `scripts/trigger/bench` runs it in release mode).

const VECTORS: &str = include_str!("../fixtures/passwords/vectors.json");

/// Every reference vector as (scheme, encoded hash, password), for a directory at real parameters.
fn vector_hashes() -> Vec<(String, String, String)> {
    use cognito_migrate::password::{FirebaseHashConfig, HashContext, PasswordHash};
    use cognito_migrate::record::RawPassword;
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    vectors
        .iter()
        .map(|v| {
            let raw = &v["raw"];
            let mut ctx = HashContext::default();
            let rp = match s(raw, "kind").as_str() {
                "encoded" => RawPassword::Encoded(s(raw, "value")),
                "aspnet" => RawPassword::AspNetIdentity(s(raw, "value")),
                "keycloak" => RawPassword::Keycloak {
                    secret_data: s(raw, "secret_data"),
                    credential_data: s(raw, "credential_data"),
                },
                _ => {
                    let cfg = serde_json::to_string(&raw["hash_config"]).unwrap();
                    ctx.firebase = Some(FirebaseHashConfig::from_json(&cfg).unwrap());
                    RawPassword::Firebase {
                        hash: s(raw, "hash"),
                        salt: s(raw, "salt"),
                    }
                }
            };
            let h = PasswordHash::from_raw(&rp, &ctx).unwrap();
            (s(v, "scheme"), h.encode(), s(v, "password"))
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A tiny deterministic PRNG (xorshift), so the benchmark needs no extra crates.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
#[ignore = "benchmark: scripts/trigger/bench runs it (release build, ~1 GB of disk)"]
fn bench_one_million_users() {
    use cognito_migrate::directory::DirectoryFile;
    use cognito_migrate::password::{CostCap, PasswordHash};

    let users: u64 = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trigger-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let hashes = vector_hashes();
    println!(
        "== trigger benchmark: {users} users, {} distinct reference hashes",
        hashes.len()
    );
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model()
    );

    // 1. The input: NDJSON, built with the CLI exactly as a user would.
    let input = dir.join(format!("users-{users}.ndjson"));
    if !input.exists() {
        let started = Instant::now();
        let mut out = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for i in 0..users {
            let (_, hash, _) = &hashes[(i as usize) % hashes.len()];
            let line = json!({
                "id": i + 1,
                "username": format!("user{i:07}"),
                "email": format!("user{i:07}@example.com"),
                "email_verified": true,
                "given_name": format!("Given{i}"),
                "password_hash": hash,
            });
            writeln!(out, "{line}").unwrap();
        }
        out.flush().unwrap();
        println!(
            "generated {} in {:.1} s",
            input.display(),
            started.elapsed().as_secs_f64()
        );
    }
    std::fs::write(
        dir.join("mapping.toml"),
        "username = \"username\"\npassword = \"password_hash\"\n[attributes]\n\
         email = { from = \"email\", transform = \"lowercase_email\" }\n\
         email_verified = \"email_verified\"\ngiven_name = \"given_name\"\n\"custom:legacy_id\" = \"id\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pool.json"),
        json!({
            // The fixtures' pool: the trigger declines events from any other pool.
            "pool_id": "us-east-1_EXAMPLE", "pool_name": "bench", "csv_header": [],
            "attributes": [{"name": "custom:legacy_id", "data_type": "string", "required": false, "mutable": true, "max_length": 64}],
            "username_attributes": [], "alias_attributes": ["email"],
            "username_case_sensitive": false, "auto_verified_attributes": ["email"]
        })
        .to_string(),
    )
    .unwrap();
    let directory = dir.join(format!("directory-{users}.db"));
    let cli = PathBuf::from(TRIGGER).with_file_name("cognito-migrate");
    let started = Instant::now();
    let status = Command::new(&cli)
        .args(["directory", "build", "--format", "ndjson", "--input"])
        .arg(&input)
        .arg("--mapping")
        .arg(dir.join("mapping.toml"))
        .arg("--pool-schema")
        .arg(dir.join("pool.json"))
        .arg("--out")
        .arg(&directory)
        .stdout(Stdio::inherit())
        .status()
        .expect("run cognito-migrate directory build");
    let build_time = started.elapsed();
    assert!(status.success(), "directory build failed: {status}");
    let size = std::fs::metadata(&directory).unwrap().len();
    println!(
        "directory build: {:.1} s ({:.0} users/s), file {:.1} MB ({} bytes/user)",
        build_time.as_secs_f64(),
        users as f64 / build_time.as_secs_f64(),
        size as f64 / 1e6,
        size / users.max(1)
    );

    // 2. Time from process start to the first Runtime API request: the checksum check of the
    //    local file included.
    let mut starts = Vec::new();
    for i in 0..20 {
        let runtime = FakeRuntime::start();
        let before = Instant::now();
        let t = Trigger::spawn(
            &runtime,
            &[("COGNITO_MIGRATE_DIRECTORY", directory.to_str().unwrap())],
            &dir.join(format!("start-{i}.log")),
        );
        let first = runtime
            .first_next(WAIT)
            .unwrap_or_else(|| panic!("no /next: {}", t.log()));
        starts.push(first - before);
    }
    starts.sort();
    println!(
        "start to first /next (20 runs, process spawn included): min {}, median {}, max {}",
        ms(starts[0]),
        ms(percentile(&starts, 0.5)),
        ms(starts[starts.len() - 1])
    );

    // 3. Lookups in process: random existing users, misses, and by email.
    let file = DirectoryFile::open(&directory).unwrap();
    let started = Instant::now();
    file.verify_checksum().unwrap();
    println!(
        "checksum verification in process (part of every cold start; for s3://, after the download): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut lat = Vec::with_capacity(300_000);
    for n in 0..300_000u64 {
        let i = rng.next() % users;
        let login = match n % 3 {
            0 => format!("user{i:07}"),
            1 => format!("USER{i:07}@example.com"),
            _ => format!("missing{i}"),
        };
        let t = Instant::now();
        let found = file.find(&login).unwrap();
        lat.push(t.elapsed());
        assert_eq!(found.is_some(), n % 3 != 2);
    }
    lat.sort();
    println!(
        "lookup (300,000: 1/3 username, 1/3 email, 1/3 miss): p50 {}, p99 {}, p99.9 {}, max {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&lat, 0.999)),
        ms(lat[lat.len() - 1])
    );

    // 4. Verification per algorithm at the directory's real parameters.
    println!("verification (right password, median of 3; default cost cap):");
    let cap = CostCap::default();
    let mut seen = std::collections::BTreeSet::new();
    for (scheme, encoded, password) in &hashes {
        let h = PasswordHash::parse(encoded).unwrap();
        let key = format!("{h}");
        if !seen.insert(key.clone()) {
            continue;
        }
        if let Some(why) = h.exceeds(&cap) {
            println!("  {scheme:<24} {key:<44} refused by the cap: {why}");
            continue;
        }
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            assert!(h.verify(password), "{scheme}");
            times.push(t.elapsed());
        }
        times.sort();
        println!("  {scheme:<24} {key:<44} {}", ms(times[1]));
    }

    // 5. Through the binary: invocation round trips and peak memory.
    let runtime = FakeRuntime::start();
    let t = Trigger::spawn(
        &runtime,
        &[("COGNITO_MIGRATE_DIRECTORY", directory.to_str().unwrap())],
        &dir.join("serve.log"),
    );
    assert!(runtime.first_next(WAIT).is_some());
    let mut rtt = Vec::new();
    for _ in 0..5_000 {
        let i = rng.next() % users;
        let started = Instant::now();
        let a = runtime.call(&event(FORGOT_EVENT, &format!("user{i:07}"), None));
        rtt.push(started.elapsed());
        assert_eq!(a.kind, "response");
    }
    rtt.sort();
    let rss_lookups = t.peak_rss_kib().unwrap_or(0);
    println!(
        "invocation round trip through the binary (5,000 forgot-password, fake runtime on loopback): p50 {}, p99 {}",
        ms(percentile(&rtt, 0.5)),
        ms(percentile(&rtt, 0.99))
    );
    println!(
        "peak RSS after 5,000 lookups: {:.1} MB",
        rss_lookups as f64 / 1024.0
    );
    // One sign-in per distinct hash, lightest first, to see which families raise the peak.
    let mut by_memory: Vec<(u64, String, u64, String)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, (scheme, encoded, password)) in hashes.iter().enumerate() {
        let h = PasswordHash::parse(encoded).unwrap();
        if seen.insert(format!("{h}")) && h.exceeds(&cap).is_none() {
            by_memory.push((
                h.work_estimate().memory_kib(),
                scheme.clone(),
                i as u64,
                password.clone(),
            ));
        }
    }
    by_memory.sort();
    for (mem, scheme, i, password) in &by_memory {
        let a = runtime.call(&event(AUTH_EVENT, &format!("user{i:07}"), Some(password)));
        assert_eq!(a.kind, "response", "{scheme}: {a:?}");
        if *mem >= 1024 {
            println!(
                "  after a {scheme} sign-in ({:.0} MiB of hash memory): peak RSS {:.1} MB",
                *mem as f64 / 1024.0,
                t.peak_rss_kib().unwrap_or(0) as f64 / 1024.0
            );
        }
    }
    println!(
        "peak RSS after every hash family: {:.1} MB",
        t.peak_rss_kib().unwrap_or(0) as f64 / 1024.0
    );
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
