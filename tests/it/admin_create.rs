//! `run --mode admin-create|auto` and `retry` against the emulator: a throttling storm, SIGKILL at
//! random moments, existing users, alias conflicts, invalid attributes, missing groups, and the
//! follow-ups of imported users. User counts are small and quotas off (except where quotas are the
//! point) so the whole file stays well under three minutes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{
    self, attr, create_group, create_pool, group_members, run_cli, tempdir, Emulator,
};
use aws_sdk_cognitoidentityprovider::types::{
    AliasAttributeType, AttributeType, UserType, VerifiedAttributeType,
};
use aws_sdk_cognitoidentityprovider::Client;
use cognito_migrate::aws::Clients;
use cognito_migrate::checkpoint::{Checkpoint, Outcome, RunId, RunSpec};
use cognito_migrate::mapping::MappedUser;
use cognito_migrate::record::Position;
use cognito_migrate::sink::admin_create::{self, service::AdminService, AdminCreateConfig};
use serde_json::json;

const MAPPING: &str = r#"
username = "username"
password = "password_hash"
groups = "roles"
enabled = { from = "active", transform = "bool" }

[attributes]
email = { from = "email", transform = "lowercase_email" }
email_verified = { from = "verified", transform = "bool" }
name = "name"
"#;

/// One legacy user as a CSV row.
#[derive(Clone, Debug)]
struct Legacy {
    username: String,
    email: String,
    name: String,
    active: bool,
    roles: Vec<String>,
    hash: String,
}

impl Legacy {
    fn new(i: usize) -> Legacy {
        Legacy {
            username: format!("user{i:04}"),
            email: format!("user{i:04}@example.com"),
            name: format!("User {i}"),
            // Every 7th disabled, every 5th in a group, every 10th in two.
            active: i % 7 != 3,
            roles: match i % 10 {
                0 => vec!["staff".into(), "admins".into()],
                5 => vec!["staff".into()],
                _ => vec![],
            },
            hash: String::new(),
        }
    }
}

fn write_input(dir: &Path, users: &[Legacy], extra_rows: &[&str]) -> (PathBuf, PathBuf) {
    let mut csv = String::from("username,email,verified,name,active,roles,password_hash\n");
    for u in users {
        csv.push_str(&format!(
            "{},{},true,{},{},\"{}\",{}\n",
            u.username,
            u.email,
            u.name,
            u.active,
            u.roles.join(","),
            u.hash
        ));
    }
    for r in extra_rows {
        csv.push_str(r);
        csv.push('\n');
    }
    let input = dir.join("users.csv");
    std::fs::write(&input, csv).unwrap();
    let mapping = dir.join("mapping.toml");
    std::fs::write(&mapping, MAPPING).unwrap();
    (input, mapping)
}

async fn pool(c: &Client, alias_email: bool) -> String {
    let mut req = c.create_user_pool().pool_name("admin-create-test");
    if alias_email {
        req = req.alias_attributes(AliasAttributeType::Email);
    }
    create_pool(req).await
}

/// The pool holds exactly `users`, once each, with their attributes, enabled state and groups.
async fn assert_pool_holds(c: &Client, pool: &str, users: &[Legacy]) {
    let names: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
    let got =
        common::assert_pool_holds(c, pool, &names, "the pool's users differ from the input's")
            .await;
    let by_name: BTreeMap<&str, &UserType> =
        got.iter().map(|u| (u.username().unwrap(), u)).collect();
    for u in users {
        let user = by_name[u.username.as_str()];
        let attrs: BTreeMap<&str, &str> = user
            .attributes()
            .iter()
            .map(|a| (a.name(), a.value().unwrap_or_default()))
            .collect();
        assert_eq!(
            attrs.get("email"),
            Some(&u.email.as_str()),
            "{}",
            u.username
        );
        assert_eq!(attrs.get("name"), Some(&u.name.as_str()), "{}", u.username);
        assert_eq!(attrs.get("email_verified").copied(), Some("true"));
        assert_eq!(user.enabled(), u.active, "{}: enabled", u.username);
    }
    for g in ["staff", "admins"] {
        let want: BTreeSet<String> = users
            .iter()
            .filter(|u| u.roles.iter().any(|r| r == g))
            .map(|u| u.username.clone())
            .collect();
        assert_eq!(group_members(c, pool, g).await, want, "group {g}");
    }
}

/// `run` on the CSV input with its mapping in `mode`.
fn run_args<'a>(
    input: &'a str,
    mapping: &'a str,
    pool: &'a str,
    state: &'a str,
    mode: &'a str,
) -> Vec<&'a str> {
    let mut args = common::run_args(input, "csv", pool, state, mode);
    args.extend(["--mapping", mapping]);
    args
}

/// The value of one attribute of a user, as the pool has it.
async fn attribute(c: &Client, pool: &str, user: &str, name: &str) -> Option<String> {
    c.admin_get_user()
        .user_pool_id(pool)
        .username(user)
        .send()
        .await
        .expect("get the user")
        .user_attributes()
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.value().map(str::to_string))
}

/// The AdminCreateUser writer (default settings) writing into `pool`, fed and finished by the
/// test, with its state file in `dir`.
struct Writer {
    cp: Arc<Checkpoint>,
    run: RunId,
    feeder: admin_create::Feeder,
    pipeline: admin_create::Pipeline,
    _cancel: tokio::sync::watch::Sender<bool>,
}

/// User `{prefix}{i}` as the writer gets it: record i on line i + 1, email
/// `{prefix}{i}@example.com` and the `extra` attributes, enabled, no groups, no password.
fn mapped(i: u64, prefix: &str, extra: &[(&str, &str)]) -> MappedUser {
    let email = ("email".to_string(), format!("{prefix}{i}@example.com"));
    MappedUser {
        position: Position {
            record: i,
            line: i + 1,
            byte_offset: 0,
        },
        username: format!("{prefix}{i}"),
        attributes: std::iter::once(email)
            .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .collect(),
        enabled: true,
        groups: vec![],
        password: None,
        links: vec![],
        legacy_id: None,
    }
}

async fn start_writer(emu: &Emulator, pool: &str, dir: &Path, fingerprint: &str) -> Writer {
    let cp = Arc::new(Checkpoint::open(dir.join("state.db")).unwrap());
    let run = cp
        .begin_run(
            &RunSpec {
                input_location: "test".into(),
                input_format: "csv".into(),
                input_size: 0,
                input_fingerprint: fingerprint.into(),
                pool_id: pool.to_string(),
                mode: "admin-create".into(),
                options: "{}".into(),
            },
            false,
        )
        .unwrap();
    let clients = Clients::from_sdk_config(emu.sdk_config().await, true);
    let service = Arc::new(AdminService::new(
        clients.cognito_without_sdk_retries(),
        pool,
        AdminCreateConfig::default(),
    ));
    let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let (feeder, pipeline) = admin_create::start(service, cp.clone(), run.id, cancel).unwrap();
    Writer {
        cp,
        run: run.id,
        feeder,
        pipeline,
        _cancel: cancel_tx,
    }
}

#[tokio::test]
async fn a_throttling_storm_creates_every_user_once_and_fails_none() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = pool(&c, false).await;
    create_group(&c, &pool, "staff").await;
    create_group(&c, &pool, "admins").await;
    let users: Vec<Legacy> = (1..=60).map(Legacy::new).collect();
    let dir = tempdir("storm");
    let (input, mapping) = write_input(&dir, &users, &[]);
    let state = dir.join("state.db");
    let storm =
        json!({"throttle": 0.3, "internal_error": 0.05, "drop_before": 0.03, "drop_after": 0.03});
    emu.control(
        "/_emulator/config",
        json!({"faults": {"seed": 5, "rules": {
            "AdminCreateUser": storm, "AdminGetUser": storm,
            "AdminAddUserToGroup": storm, "AdminDisableUser": storm}}}),
    );
    let mut args = run_args(
        input.to_str().unwrap(),
        mapping.to_str().unwrap(),
        &pool,
        state.to_str().unwrap(),
        "admin-create",
    );
    args.extend([
        "--rate",
        "200",
        "--update-rate",
        "200",
        "--group-rate",
        "200",
        "--read-rate",
        "200",
        "--concurrency",
        "8",
    ]);
    let (code, _out, err) = run_cli(&args, &emu.cli_env());
    assert_eq!(code, 0, "stderr: {err}");
    let s = emu.status(&state).1;
    assert_eq!(s["created"], json!(60), "{s}");
    assert_eq!(s["failed"], json!(0), "{s}");
    assert_eq!(s["skipped"], json!(0), "{s}");
    assert_eq!(s["pending"], json!(0), "{s}");
    let stats = emu.stats();
    let faults = &stats["operations"]["AdminCreateUser"]["faults"];
    for kind in ["throttle", "internal_error"] {
        assert!(
            faults[kind].as_u64().unwrap() > 0,
            "no {kind} injected: {stats}"
        );
    }
    let drops: u64 = [
        "AdminCreateUser",
        "AdminGetUser",
        "AdminAddUserToGroup",
        "AdminDisableUser",
    ]
    .iter()
    .map(|op| {
        let f = &stats["operations"][op]["faults"];
        f["drop_before"].as_u64().unwrap_or(0) + f["drop_after"].as_u64().unwrap_or(0)
    })
    .sum();
    assert!(drops > 0, "no connection dropped: {stats}");
    emu.control("/_emulator/config", json!({"faults": {"rules": {}}}));
    assert_pool_holds(&c, &pool, &users).await;
}

#[tokio::test]
async fn sigkill_at_random_moments_then_resume_ends_with_each_user_once() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = pool(&c, false).await;
    create_group(&c, &pool, "staff").await;
    create_group(&c, &pool, "admins").await;
    let users: Vec<Legacy> = (1..=240).map(Legacy::new).collect();
    let dir = tempdir("sigkill");
    let (input, mapping) = write_input(&dir, &users, &["bad,not-an-email,true,Bad,true,,"]);
    let state = dir.join("state.db");
    // Some answers lost after the work was done, so that calls are in doubt in every run.
    emu.control(
        "/_emulator/config",
        json!({"faults": {"seed": 9, "rules": {"AdminCreateUser": {"drop_after": 0.04}}}}),
    );
    let mut args: Vec<String> = run_args(
        input.to_str().unwrap(),
        mapping.to_str().unwrap(),
        &pool,
        state.to_str().unwrap(),
        "admin-create",
    )
    .into_iter()
    .map(String::from)
    .collect();
    args.extend(["--rate", "50", "--concurrency", "8"].map(String::from));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    eprintln!("kill moments seed {seed}");
    let mut x = seed | 1;
    let mut killed = 0;
    for _ in 0..10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let after = Duration::from_millis(150 + x % 900);
        let mut child = common::cli_command(&args, &emu.cli_env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while t.elapsed() < after {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    assert!(killed >= 5, "only {killed} runs were killed mid-way");
    let pending_before = emu.status(&state).1["pending"].as_u64().unwrap();
    eprintln!("{killed} kills; {pending_before} users pending before the last run");
    let (code, _out, err) = run_cli(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &emu.cli_env(),
    );
    assert_eq!(code, 1, "one row is rejected, so exit 1; stderr: {err}");
    let s = emu.status(&state).1;
    assert_eq!(s["total"], json!(241), "{s}");
    assert_eq!(s["created"], json!(240), "{s}");
    assert_eq!(s["rejected"], json!(1), "{s}");
    assert_eq!(s["pending"], json!(0), "{s}");
    assert_eq!(s["failed"], json!(0), "{s}");
    emu.control("/_emulator/config", json!({"faults": {"rules": {}}}));
    assert_pool_holds(&c, &pool, &users).await;
    // A resume of a finished run calls nothing.
    emu.control("/_emulator/stats/reset", json!({}));
    let (code, _, err) = run_cli(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &emu.cli_env(),
    );
    assert_eq!(code, 1, "{err}");
    let stats = emu.stats();
    for op in ["AdminCreateUser", "AdminGetUser"] {
        assert_eq!(
            stats["operations"][op]["calls"].as_u64().unwrap_or(0),
            0,
            "{op}: {stats}"
        );
    }
}

#[tokio::test]
async fn existing_users_alias_conflicts_and_missing_groups_are_recorded_and_retry_fixes_them() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = pool(&c, true).await;
    create_group(&c, &pool, "staff").await;
    create_group(&c, &pool, "admins").await;
    let precreate = |name: &str, attrs: Vec<AttributeType>| {
        c.admin_create_user()
            .user_pool_id(&pool)
            .username(name)
            .set_user_attributes(Some(attrs))
            .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
            .send()
    };
    let mut users: Vec<Legacy> = (1..=6).map(Legacy::new).collect();
    // user0001 exists with the same attributes, user0002 with another name.
    precreate(
        "user0001",
        vec![
            attr("email", "user0001@example.com"),
            attr("email_verified", "true"),
            attr("name", "User 1"),
        ],
    )
    .await
    .unwrap();
    precreate(
        "user0002",
        vec![
            attr("email", "user0002@example.com"),
            attr("email_verified", "true"),
            attr("name", "Someone Else"),
        ],
    )
    .await
    .unwrap();
    // "holder" has the verified email alias that user0003 wants.
    users[2].email = "shared@example.com".into();
    precreate(
        "holder",
        vec![
            attr("email", "shared@example.com"),
            attr("email_verified", "true"),
        ],
    )
    .await
    .unwrap();
    // user0004 wants a group nobody created.
    users[3].roles = vec!["ghosts".into()];
    let dir = tempdir("existing");
    let (input, mapping) = write_input(
        &dir,
        &users,
        &[
            "bad,not-an-email,true,Bad,true,,",
            "user0099,user0099@example.com,true,User 99,yes-ish,,",
        ],
    );
    let state = dir.join("state.db");
    let args = run_args(
        input.to_str().unwrap(),
        mapping.to_str().unwrap(),
        &pool,
        state.to_str().unwrap(),
        "admin-create",
    );
    let (code, _out, err) = run_cli(&args, &emu.cli_env());
    assert_eq!(code, 1, "stderr: {err}");
    let s = emu.status(&state).1;
    assert_eq!(s["skipped"], json!(2), "{s}");
    assert_eq!(s["failed"], json!(2), "{s}");
    assert_eq!(s["rejected"], json!(2), "{s}");
    assert_eq!(
        s["created"],
        json!(2),
        "the run went on past the failures: {s}"
    );
    let cp = Checkpoint::open(&state).unwrap();
    let run = cp.current_run().unwrap().unwrap();
    let by_user: BTreeMap<String, _> = (1..=20)
        .filter_map(|r| cp.user(run.id, r).unwrap())
        .map(|u| (u.username.clone(), u))
        .collect();
    assert_eq!(by_user["user0001"].outcome, Outcome::Skipped);
    assert_eq!(by_user["user0001"].message.as_deref(), Some("exists, same"));
    assert_eq!(
        by_user["user0002"].message.as_deref(),
        Some("exists, differs: name")
    );
    assert_eq!(
        by_user["user0003"].reason.as_deref(),
        Some("AliasExistsException")
    );
    assert!(
        by_user["user0003"]
            .message
            .as_deref()
            .unwrap()
            .contains("--force-alias-creation"),
        "{:?}",
        by_user["user0003"]
    );
    assert_eq!(
        by_user["user0004"].reason.as_deref(),
        Some("followup_failed")
    );
    assert!(by_user["user0004"]
        .message
        .as_deref()
        .unwrap()
        .contains("ghosts"));
    // The existing user with other attributes was left alone.
    assert_eq!(
        attribute(&c, &pool, "user0002", "name").await.as_deref(),
        Some("Someone Else")
    );

    // report --failed lists the rejected and failed users with their reasons.
    let report = dir.join("failed.csv");
    let (code, _, err) = crate::common::report_failed(&state, &report, &emu.cli_env());
    assert_eq!(code, 1, "{err}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(text.lines().count(), 1 + 4, "{text}");
    for needle in [
        "AliasExistsException",
        "followup_failed",
        "invalid_email",
        "invalid_boolean",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }

    // After the causes are fixed (or allowed), retry writes only the failed users.
    emu.control("/_emulator/stats/reset", json!({}));
    let (code, _, err) = run_cli(
        &[
            "retry",
            "--state",
            state.to_str().unwrap(),
            "--create-groups",
            "--force-alias-creation",
        ],
        &emu.cli_env(),
    );
    assert_eq!(code, 1, "rejections remain; stderr: {err}");
    let s = emu.status(&state).1;
    assert_eq!(s["failed"], json!(0), "{s}");
    assert_eq!(s["created"], json!(4), "{s}");
    assert_eq!(s["skipped"], json!(2), "{s}");
    let stats = emu.stats();
    assert_eq!(
        stats["operations"]["AdminCreateUser"]["calls"].as_u64(),
        Some(1),
        "only user0003 is created again: {stats}"
    );
    assert_eq!(
        group_members(&c, &pool, "ghosts").await,
        BTreeSet::from(["user0004".to_string()])
    );
    assert_eq!(
        attribute(&c, &pool, "holder", "email_verified")
            .await
            .as_deref(),
        Some("false")
    );

    // --on-existing update applies what differs.
    let state2 = dir.join("state2.db");
    let mut args = run_args(
        input.to_str().unwrap(),
        mapping.to_str().unwrap(),
        &pool,
        state2.to_str().unwrap(),
        "admin-create",
    );
    args.extend(["--on-existing", "update", "--create-groups"]);
    let (_, _, err) = run_cli(&args, &emu.cli_env());
    let s = emu.status(&state2).1;
    assert_eq!(s["updated"], json!(1), "{s} {err}");
    assert_eq!(
        attribute(&c, &pool, "user0002", "name").await.as_deref(),
        Some("User 2")
    );
}

#[tokio::test]
async fn attributes_cognito_refuses_fail_that_user_with_its_reason_and_the_rest_are_created() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = pool(&c, false).await;
    let dir = tempdir("invalid");
    let Writer {
        cp,
        run,
        feeder,
        pipeline,
        _cancel,
    } = start_writer(&emu, &pool, &dir, "x").await;
    for i in 1..=5u64 {
        // Not in the pool's schema: Cognito answers InvalidParameterException.
        let extra: &[_] = if i == 3 { &[("custom:nope", "x")] } else { &[] };
        feeder
            .send(mapped(i, "u", extra), "admin-create")
            .await
            .unwrap();
    }
    drop(feeder);
    let snap = pipeline.finish().await.unwrap();
    assert_eq!((snap.created, snap.failed), (4, 1), "{snap:?}");
    let u3 = cp.user(run, 3).unwrap().unwrap();
    assert_eq!(u3.outcome, Outcome::Failed);
    assert_eq!(u3.reason.as_deref(), Some("InvalidParameterException"));
    assert!(
        u3.message.as_deref().unwrap().contains("custom:nope"),
        "{u3:?}"
    );
    assert_eq!(u3.attempts, 1);
    let names: BTreeSet<String> = common::pool_usernames(&c, &pool)
        .await
        .into_keys()
        .collect();
    assert_eq!(names, ["u1", "u2", "u4", "u5"].map(String::from).into());
}

#[tokio::test]
async fn auto_mode_imports_hashes_creates_the_rest_and_applies_follow_ups_to_imported_users() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = create_pool(
        c.create_user_pool()
            .pool_name("auto-test")
            .auto_verified_attributes(VerifiedAttributeType::Email),
    )
    .await;
    create_group(&c, &pool, "staff").await;
    create_group(&c, &pool, "admins").await;
    let mut users: Vec<Legacy> = (1..=12).map(Legacy::new).collect();
    for u in users
        .iter_mut()
        .filter(|u| u.username.ends_with(['1', '3', '5', '0']))
    {
        u.hash = bcrypt::hash("correct horse", 4).unwrap();
    }
    let imported: Vec<&str> = users
        .iter()
        .filter(|u| !u.hash.is_empty())
        .map(|u| u.username.as_str())
        .collect();
    assert!(imported.len() >= 3);
    let dir = tempdir("auto");
    let (input, mapping) = write_input(&dir, &users, &[]);
    let state = dir.join("state.db");
    let mut args = run_args(
        input.to_str().unwrap(),
        mapping.to_str().unwrap(),
        &pool,
        state.to_str().unwrap(),
        "auto",
    );
    args.extend([
        "--role-arn",
        "arn:aws:iam::123456789012:role/CognitoImportLogs",
    ]);
    let mut env = emu.cli_env();
    env.push(("COGNITO_MIGRATE_POLL_MAX_SECONDS", "0.2".into()));
    let (code, _out, err) = run_cli(&args, &env);
    assert_eq!(code, 0, "stderr: {err}");
    let s = emu.status(&state).1;
    assert_eq!(
        s["imported"].as_u64().unwrap() as usize,
        imported.len(),
        "{s}"
    );
    assert_eq!(
        s["created"].as_u64().unwrap() as usize,
        12 - imported.len(),
        "{s}"
    );
    assert_pool_holds(&c, &pool, &users).await;
    for name in &imported {
        let u = emu.get_json(&format!("/_emulator/users/{pool}/{name}")).1;
        assert_eq!(u["has_imported_hash"], json!(true), "{u}");
    }
    let cp = Checkpoint::open(&state).unwrap();
    let run = cp.current_run().unwrap().unwrap();
    assert_eq!(cp.pending_followups(run.id).count(), 0);
}

#[tokio::test]
async fn a_quota_below_the_configured_rate_slows_the_writer_down_without_failing_anyone() {
    // Another caller's share of the account's quota, as the writer sees it: the pool answers
    // TooManyRequestsException above 20 AdminCreateUser/s while the writer is told 50.
    let emu = Emulator::start();
    emu.control(
        "/_emulator/config",
        json!({"quotas": {"enabled": true, "burst_seconds": 1.0, "rates": {"UserCreation": 20}}}),
    );
    let c = emu.cognito().await;
    let pool = pool(&c, false).await;
    let dir = tempdir("quota");
    // The state file stays open in the pipeline; keep the cancel sender for the whole test.
    let Writer {
        feeder,
        pipeline,
        _cancel,
        ..
    } = start_writer(&emu, &pool, &dir, "q").await;
    let progress = pipeline.progress();
    let watcher = tokio::spawn(async move {
        let mut lowest = f64::MAX;
        for _ in 0..200 {
            lowest = lowest.min(progress().creation_rate);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        lowest
    });
    let n = 100u64;
    for i in 1..=n {
        feeder
            .send(mapped(i, "q", &[]), "admin-create")
            .await
            .unwrap();
    }
    drop(feeder);
    let snap = pipeline.finish().await.unwrap();
    let lowest = watcher.await.unwrap();
    assert_eq!((snap.created, snap.failed), (n, 0), "{snap:?}");
    assert!(snap.throttled > 0, "the quota never bit: {snap:?}");
    assert!(
        lowest < 30.0,
        "the writer never slowed down (lowest rate {lowest}): {snap:?}"
    );
    // A writer that kept 50/s against 20/s would see most calls after the first second throttled.
    let stats = emu.stats();
    let op = &stats["operations"]["AdminCreateUser"];
    let (calls, throttled) = (
        op["calls"].as_u64().unwrap(),
        op["throttled"].as_u64().unwrap(),
    );
    eprintln!("{throttled} of {calls} calls throttled; lowest AdminCreateUser rate {lowest:.1}/s");
    assert_eq!(calls - throttled, n, "{stats}");
    assert!(
        (throttled as f64) < 0.5 * calls as f64,
        "{throttled} of {calls} calls throttled"
    );
}

#[tokio::test]
async fn at_a_strict_sliding_window_quota_the_writer_is_almost_never_throttled() {
    // Issue #14, finding 9: at most 20 AdminCreateUser in ANY one-second window (no burst) and
    // `--rate 20`. Pacing at the quota itself trips such a window whenever arrivals jitter; the
    // writer paces at 98% and never sends 21 calls within 1.01 s. Bounds are loose on purpose: on
    // a 2-core machine at load average 18 the emulator's own arrival times jitter by tens of ms
    // and 2-3 of ~100 calls were throttled; the rate belongs to `scripts/bench admin_create`.
    let emu = Emulator::start();
    emu.control(
        "/_emulator/config",
        json!({"quotas": {"enabled": true, "rates": {"UserCreation": 20},
                          "modes": {"UserCreation": "sliding_window"}}}),
    );
    let c = emu.cognito().await;
    let pool = pool(&c, false).await;
    create_group(&c, &pool, "staff").await;
    create_group(&c, &pool, "admins").await;
    let users: Vec<Legacy> = (1..=100)
        .map(|i| Legacy {
            active: true,
            roles: vec![],
            ..Legacy::new(i)
        })
        .collect();
    let dir = tempdir("window");
    let (input, mapping) = write_input(&dir, &users, &[]);
    let state = dir.join("state.db");
    let mut args = run_args(
        input.to_str().unwrap(),
        mapping.to_str().unwrap(),
        &pool,
        state.to_str().unwrap(),
        "admin-create",
    );
    args.extend(["--rate", "20", "--concurrency", "4"]);
    let started = Instant::now();
    let (code, _out, err) = run_cli(&args, &emu.cli_env());
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "stderr: {err}");
    let s = emu.status(&state).1;
    assert_eq!(
        (s["created"].clone(), s["failed"].clone()),
        (json!(100), json!(0)),
        "{s}"
    );
    let stats = emu.stats();
    let op = &stats["operations"]["AdminCreateUser"];
    let (calls, throttled) = (
        op["calls"].as_u64().unwrap(),
        op["throttled"].as_u64().unwrap(),
    );
    eprintln!("{throttled} of {calls} calls throttled; 100 users in {seconds:.1} s");
    assert_eq!(calls - throttled, 100, "{stats}");
    assert!(throttled <= 5, "{throttled} of {calls} calls throttled");
    // 100 users at 19.6/s take 5.1 s; the whole process, start-up included, within twice that.
    assert!(
        seconds < 10.2,
        "{seconds:.1} s for 100 users at a quota of 20/s"
    );
    assert_pool_holds(&c, &pool, &users).await;
}
