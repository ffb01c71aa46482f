//! `cognito-migrate sync` against the emulator: the life of a user (created, changed, removed,
//! back, deleted), groups (a Cognito-only group never touched), zero calls for an unchanged
//! source (the emulator's call counters), `--plan`, the removal brake, an empty or truncated
//! source, a user already created in the pool (as the migration trigger does), and SIGKILL at
//! each of the sync's checkpoints then resume. Small inputs, quotas off: the file runs in well
//! under a minute.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::{self, attr, create_pool, run_cli, tempdir, Emulator};
use aws_sdk_cognitoidentityprovider::types::UserType;
use aws_sdk_cognitoidentityprovider::Client;
use serde_json::Value;

const MAPPING: &str = r#"
username = "username"
groups = "roles"
enabled = { from = "active", transform = "bool" }

[attributes]
email = { from = "email", transform = "lowercase_email" }
email_verified = { from = "verified", transform = "bool" }
name = "name"
"#;

/// The calls that change a pool.
const WRITES: [&str; 10] = [
    "AdminCreateUser",
    "AdminUpdateUserAttributes",
    "AdminDeleteUserAttributes",
    "AdminDisableUser",
    "AdminEnableUser",
    "AdminDeleteUser",
    "AdminAddUserToGroup",
    "AdminRemoveUserFromGroup",
    "CreateUserImportJob",
    "StartUserImportJob",
];

#[derive(Clone, Debug)]
struct U {
    username: String,
    name: String,
    active: bool,
    roles: Vec<&'static str>,
}

fn u(i: usize, roles: &[&'static str]) -> U {
    U {
        username: format!("user{i}"),
        name: format!("User {i}"),
        active: true,
        roles: roles.to_vec(),
    }
}

struct Setup {
    emu: Emulator,
    c: Client,
    pool: String,
    dir: common::TempDir,
}

impl Setup {
    async fn new(name: &str) -> Setup {
        Setup::with_pool(name, false).await
    }

    /// With `email_username`, a pool whose users sign in with their email as username (the
    /// emulator then names each user by a UUID, as Cognito does).
    async fn with_pool(name: &str, email_username: bool) -> Setup {
        let emu = Emulator::start();
        let c = emu.cognito().await;
        let mut req = c.create_user_pool().pool_name(name);
        if email_username {
            req = req.username_attributes(
                aws_sdk_cognitoidentityprovider::types::UsernameAttributeType::Email,
            );
        }
        let pool = create_pool(req).await;
        for g in ["staff", "admins", "console"] {
            c.create_group()
                .user_pool_id(&pool)
                .group_name(g)
                .send()
                .await
                .expect("create group");
        }
        let dir = tempdir(name);
        std::fs::write(dir.join("mapping.toml"), MAPPING).unwrap();
        Setup { emu, c, pool, dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.join("sync.db")
    }

    fn write(&self, users: &[U]) -> PathBuf {
        let mut csv = String::from("username,email,verified,name,active,roles\n");
        for u in users {
            csv.push_str(&format!(
                "{},{}@example.com,true,{},{},\"{}\"\n",
                u.username,
                u.username,
                u.name,
                u.active,
                u.roles.join(",")
            ));
        }
        let input = self.dir.join("users.csv");
        std::fs::write(&input, csv).unwrap();
        input
    }

    fn args(&self, input: &Path, extra: &[&str]) -> Vec<String> {
        self.args_state(input, self.state().to_str().unwrap(), extra)
    }

    /// [`Setup::args`] with another `--state` (e.g. `s3://…`).
    fn args_state(&self, input: &Path, state: &str, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "sync",
            "-i",
            input.to_str().unwrap(),
            "-f",
            "csv",
            "--mapping",
            self.dir.join("mapping.toml").to_str().unwrap(),
            "--pool-id",
            &self.pool,
            "--state",
            state,
            "--mode",
            "admin-create",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// Runs `sync`; returns (exit code, stdout, the summary line, stderr).
    fn sync(&self, users: &[U], extra: &[&str]) -> (i32, String, Value, String) {
        let input = self.write(users);
        self.sync_input(&input, extra)
    }

    fn sync_input(&self, input: &Path, extra: &[&str]) -> (i32, String, Value, String) {
        let args = self.args(input, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run_cli(&args, &self.emu.cli_env());
        let summary = summary(&err);
        (code, out, summary, err)
    }

    fn reset_stats(&self) {
        self.emu
            .control("/_emulator/stats/reset", serde_json::json!({}));
    }

    /// Calls of each write operation since the last reset.
    fn writes(&self) -> Vec<(String, u64)> {
        let stats = self.emu.stats();
        WRITES
            .iter()
            .map(|op| {
                let n = stats["operations"][op]["calls"].as_u64().unwrap_or(0);
                (op.to_string(), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn calls(&self, op: &str) -> u64 {
        self.emu.stats()["operations"][op]["calls"]
            .as_u64()
            .unwrap_or(0)
    }

    async fn users(&self) -> Vec<UserType> {
        common::pool_users(&self.c, &self.pool).await
    }

    async fn user(&self, name: &str) -> Option<UserType> {
        self.users()
            .await
            .into_iter()
            .find(|u| u.username() == Some(name))
    }

    async fn members(&self, group: &str) -> BTreeSet<String> {
        common::group_members(&self.c, &self.pool, group).await
    }
}

/// The last stderr line, which must be the one JSON summary object.
fn summary(stderr: &str) -> Value {
    let last = stderr.lines().last().unwrap_or("");
    let v: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last stderr line is not JSON ({e}): {stderr}"));
    assert_eq!(v["event"], "cognito-migrate.sync", "{stderr}");
    v
}

/// From a resumed sync's stderr: (changes in doubt, settled by lookup without a call).
fn in_doubt(stderr: &str) -> Option<(u64, u64)> {
    let line = stderr.lines().find(|l| l.contains("were in doubt"))?;
    let num = |before: &str| -> Option<u64> {
        let head = &line[..line.find(before)?];
        head.split_whitespace().last()?.parse().ok()
    };
    Some((num(" changes were in doubt")?, num(" already showed")?))
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn attr_of(u: &UserType, name: &str) -> Option<String> {
    u.attributes()
        .iter()
        .find(|a| a.name() == name)
        .and_then(|a| a.value().map(str::to_string))
}

#[tokio::test]
async fn a_users_life_groups_zero_calls_when_unchanged_plan_and_the_brake() {
    let s = Setup::new("sync-life").await;
    let mut users = vec![
        u(0, &["staff"]),
        u(1, &["staff", "admins"]),
        u(2, &[]),
        u(3, &[]),
        u(4, &[]),
    ];

    // 1. The first sync creates everyone with their groups.
    let (code, _, sum, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["created"], 5, "{sum}");
    assert_eq!(sum["outcome"], "ok");
    assert_eq!(s.users().await.len(), 5);
    assert_eq!(s.members("staff").await, names(&["user0", "user1"]));
    assert_eq!(s.members("admins").await, names(&["user1"]));

    // 2. The same source again: not one write call.
    s.reset_stats();
    let (code, _, sum, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.writes(), vec![], "an unchanged source writes nothing");
    assert_eq!(sum["unchanged"], 5, "{sum}");
    assert_eq!(sum["records"], 5, "{sum}");

    // A group only Cognito knows, which sync must never touch.
    s.c.admin_add_user_to_group()
        .user_pool_id(&s.pool)
        .username("user0")
        .group_name("console")
        .send()
        .await
        .unwrap();

    // 3. Changes: a name, groups moved, one user gone. --plan first: exit 6, nothing written,
    // attribute names but no values.
    users[2].name = "Renamed Two".into();
    users[1].roles = vec!["staff"];
    users[3].roles = vec!["admins"];
    let gone = users.remove(4);
    s.reset_stats();
    let (code, out, sum, err) = s.sync(&users, &["--plan", "--json"]);
    assert_eq!(code, 6, "{err}");
    assert_eq!(s.writes(), vec![], "--plan writes nothing");
    assert_eq!(sum["plan"], true);
    assert_eq!(sum["outcome"], "changes_pending");
    assert_eq!(sum["updated"], 1, "{sum}");
    assert_eq!(sum["disabled"], 1, "{sum}");
    assert_eq!(sum["group_adds"], 1, "{sum}");
    assert_eq!(sum["group_removes"], 1, "{sum}");
    assert!(!out.contains("Renamed Two") && !err.contains("Renamed Two"));
    let plan: Value = serde_json::from_str(out.trim()).unwrap();
    let planned = plan["users"].as_array().unwrap();
    let user2 = planned.iter().find(|p| p["username"] == "user2").unwrap();
    assert_eq!(user2["attributes"], serde_json::json!(["name"]), "{plan}");
    let user4 = planned.iter().find(|p| p["username"] == "user4").unwrap();
    assert_eq!(user4["action"], "disable", "{plan}");

    let (code, _, sum, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["disabled"], 1, "{sum}");
    assert_eq!(
        s.calls("AdminUpdateUserAttributes"),
        1,
        "only user2 changed"
    );
    assert_eq!(s.calls("AdminDisableUser"), 1);
    let two = s.user("user2").await.unwrap();
    assert_eq!(attr_of(&two, "name").as_deref(), Some("Renamed Two"));
    assert!(!s.user("user4").await.unwrap().enabled());
    assert_eq!(s.members("staff").await, names(&["user0", "user1"]));
    assert_eq!(s.members("admins").await, names(&["user3"]));
    assert_eq!(
        s.members("console").await,
        names(&["user0"]),
        "a group the source never named is left alone"
    );

    // 4. The user comes back: enabled again, nothing else written.
    users.push(gone);
    s.reset_stats();
    let (code, _, sum, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["enabled"], 1, "{sum}");
    assert_eq!(s.writes(), vec![("AdminEnableUser".to_string(), 1)]);
    assert!(s.user("user4").await.unwrap().enabled());

    // 5. Two of five gone: over the default brake (5% of 5, rounded up: 1). Held back, exit 7.
    let kept: Vec<U> = users[..3].to_vec();
    s.reset_stats();
    let (code, _, sum, err) = s.sync(&kept, &["--on-missing", "delete"]);
    assert_eq!(code, 7, "{err}");
    assert_eq!(sum["staged_removals"], 2, "{sum}");
    assert_eq!(sum["outcome"], "removals_staged");
    assert!(err.contains("--allow-removals"), "{err}");
    assert_eq!(s.writes(), vec![], "held-back removals write nothing");

    // 6. --allow-removals lets them through.
    let (code, _, sum, err) = s.sync(&kept, &["--on-missing", "delete", "--allow-removals"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["deleted"], 2, "{sum}");
    let left: BTreeSet<String> = s
        .users()
        .await
        .iter()
        .map(|u| u.username().unwrap().to_string())
        .collect();
    assert_eq!(left, names(&["user0", "user1", "user2"]));
}

#[tokio::test]
async fn an_empty_or_truncated_source_removes_nobody() {
    let s = Setup::new("sync-incomplete").await;
    let users: Vec<U> = (0..4).map(|i| u(i, &[])).collect();
    let (code, _, _, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");

    // Header only: no records, so no removal, whatever the brake.
    s.reset_stats();
    let (code, _, sum, err) = s.sync(&[], &["--allow-removals"]);
    assert_eq!(code, 7, "{err}");
    assert_eq!(sum["records"], 0, "{sum}");
    assert_eq!(sum["staged_removals"], 4, "{sum}");
    assert!(err.contains("the source has no records"), "{err}");
    assert_eq!(s.writes(), vec![]);

    // A gzip that breaks off: exit 2, nothing written.
    let mut csv = String::from("username,email,verified,name,active,roles\n");
    for i in 0..200 {
        csv.push_str(&format!(
            "user{i},user{i}@example.com,true,User {i},true,\"\"\n"
        ));
    }
    let gz = common::gzip(csv.as_bytes());
    let input = s.dir.join("users.csv.gz");
    std::fs::write(&input, &gz[..gz.len() / 2]).unwrap();
    let (code, _, sum, err) = s.sync_input(&input, &["--allow-removals"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(sum["outcome"], "fatal", "{sum}");
    assert_eq!(s.writes(), vec![]);
    assert!(s.users().await.iter().all(|u| u.enabled()));
}

#[tokio::test]
async fn a_user_already_in_the_pool_is_matched_and_gets_its_groups() {
    let s = Setup::new("sync-adopt").await;
    // As the migration trigger would have created it, without groups.
    s.c.admin_create_user()
        .user_pool_id(&s.pool)
        .username("user7")
        .user_attributes(attr("email", "user7@example.com"))
        .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
        .send()
        .await
        .unwrap();
    let users = vec![u(6, &[]), u(7, &["staff"])];
    s.reset_stats();
    let (code, _, sum, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["failed"], 0, "{sum}");
    // The first sync's full reconcile adopted user7 by its key: only user6 is created.
    assert!(err.contains("1 adopted"), "{err}");
    assert_eq!(sum["created"], 1, "{sum}");
    assert_eq!(s.calls("AdminCreateUser"), 1);
    assert_eq!(sum["updated"], 1, "user7's name: {sum}");
    assert_eq!(sum["group_adds"], 1, "{sum}");
    assert_eq!(s.users().await.len(), 2, "user7 is not created twice");
    assert_eq!(s.members("staff").await, names(&["user7"]));
    let seven = s.user("user7").await.unwrap();
    assert_eq!(attr_of(&seven, "name").as_deref(), Some("User 7"));
    // Known now: the next sync writes nothing.
    s.reset_stats();
    let (code, _, _, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.writes(), vec![]);
}

/// SIGKILL at each checkpoint of a sync, then the same command: the pool ends exact and every
/// change is written once.
#[tokio::test]
async fn sigkill_mid_sync_then_resume_writes_each_change_once() {
    // The writer's rates raised so that several users' changes are in flight at once: killed
    // when an op's call has answered but before its outcome is recorded (`sync-op-sent`), that
    // op and the others in flight are in doubt, and the resume must look them up, not resend.
    let fast = [
        "--allow-removals",
        "--update-rate",
        "1000",
        "--group-rate",
        "1000",
    ];
    for point in [
        "sync-recorded",
        "sync-created",
        "sync-op-done",
        "sync-op-done#3",
        "sync-op-sent",
        "sync-op-sent#3",
    ] {
        let s = Setup::new("sync-crash").await;
        let mut users: Vec<U> = (0..6).map(|i| u(i, &[])).collect();
        let (code, _, _, err) = s.sync(&users, &[]);
        assert_eq!(code, 0, "{point}: {err}");
        // A change of every kind: renames, groups, a new user, a removal.
        users[0].name = "Zero".into();
        users[1].name = "One".into();
        users[2].roles = vec!["staff"];
        users[3].active = false;
        users.remove(5);
        users.push(u(9, &["admins"]));
        s.reset_stats();
        let input = s.write(&users);
        let args = s.args(&input, &fast);
        let mut env = s.emu.cli_env();
        env.push((cognito_migrate::testing_hook::ENV, point.to_string()));
        let out = common::cli_command(&args, &env).output().unwrap();
        assert_eq!(
            out.status.code(),
            None,
            "{point}: killed by the hook: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (code, _, sum, err) = s.sync_input(&input, &fast);
        assert_eq!(code, 0, "{point}: {err}");
        assert!(err.contains("resuming sync"), "{point}: {err}");
        assert_eq!(sum["failed"], 0, "{point}: {sum}");
        if point.starts_with("sync-op-sent") {
            // The op whose answer killed the process is in doubt and already in the pool.
            let (doubt, shown) = in_doubt(&err).unwrap_or_else(|| panic!("{point}: {err}"));
            eprintln!("{point}: {doubt} changes in doubt, {shown} settled by lookup");
            assert!(shown >= 1 && doubt >= shown, "{point}: {err}");
            assert!(s.calls("AdminGetUser") >= 1, "{point}: looked up");
        }
        // Exactly once across both processes.
        assert_eq!(s.calls("AdminUpdateUserAttributes"), 2, "{point}");
        assert_eq!(s.calls("AdminDisableUser"), 2, "{point}: user3 and user5");
        assert_eq!(s.calls("AdminCreateUser"), 1, "{point}");
        assert_eq!(s.calls("AdminAddUserToGroup"), 2, "{point}");
        let pool = s.users().await;
        assert_eq!(pool.len(), 7, "{point}");
        let zero = pool.iter().find(|u| u.username() == Some("user0")).unwrap();
        assert_eq!(attr_of(zero, "name").as_deref(), Some("Zero"), "{point}");
        for (name, enabled) in [("user3", false), ("user5", false), ("user9", true)] {
            let x = pool.iter().find(|u| u.username() == Some(name)).unwrap();
            assert_eq!(x.enabled(), enabled, "{point}: {name}");
        }
        assert_eq!(s.members("staff").await, names(&["user2"]), "{point}");
        assert_eq!(s.members("admins").await, names(&["user9"]), "{point}");
        // And then nothing is left to do.
        s.reset_stats();
        let (code, _, _, err) = s.sync_input(&input, &fast);
        assert_eq!(code, 0, "{point}: {err}");
        assert_eq!(s.writes(), vec![], "{point}");
    }
}

/// A user whose write fails does not hold anyone else back, and the next sync retries it.
#[tokio::test]
async fn a_failed_user_is_retried_by_the_next_sync() {
    let s = Setup::new("sync-retry").await;
    let mut users: Vec<U> = (0..3).map(|i| u(i, &[])).collect();
    let (code, _, _, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    // user0 goes into a group that does not exist yet; user1 is renamed.
    users[0].roles = vec!["later"];
    users[1].name = "Renamed".into();
    let (code, _, sum, err) = s.sync(&users, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(sum["outcome"], "failed_users", "{sum}");
    assert_eq!(sum["failed"], 1, "{sum}");
    assert_eq!(sum["updated"], 1, "{sum}");
    assert!(err.contains("group_add of user user0 failed"), "{err}");
    let one = s.user("user1").await.unwrap();
    assert_eq!(attr_of(&one, "name").as_deref(), Some("Renamed"));
    s.c.create_group()
        .user_pool_id(&s.pool)
        .group_name("later")
        .send()
        .await
        .unwrap();
    s.reset_stats();
    let (code, _, sum, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["group_adds"], 1, "{sum}");
    assert_eq!(s.writes(), vec![("AdminAddUserToGroup".to_string(), 1)]);
    assert_eq!(s.members("later").await, names(&["user0"]));
    // --create-groups creates a group a user is to be added to.
    users[2].roles = vec!["brand-new"];
    let (code, _, sum, err) = s.sync(&users, &["--create-groups"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["group_adds"], 1, "{sum}");
    assert_eq!(s.members("brand-new").await, names(&["user2"]));
}

/// SIGTERM (what ECS sends) in the middle of the writes: exit 3 with the summary line, and the
/// same command finishes the same sync without writing anything twice.
#[tokio::test]
async fn sigterm_stops_cleanly_and_the_same_command_resumes() {
    let s = Setup::new("sync-term").await;
    let mut users: Vec<U> = (0..12).map(|i| u(i, &[])).collect();
    let (code, _, _, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    for (i, user) in users.iter_mut().enumerate() {
        user.name = format!("Renamed {i}");
    }
    s.reset_stats();
    let input = s.write(&users);
    // Slow writes (4 a second), so that the signal comes while they are under way.
    let args = s.args(&input, &["--update-rate", "4"]);
    let child = common::cli_command(&args, &s.emu.cli_env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.calls("AdminUpdateUserAttributes") < 2 {
        assert!(std::time::Instant::now() < deadline, "no write began");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(summary(&err)["outcome"], "fatal", "{err}");
    let before = s.calls("AdminUpdateUserAttributes");
    assert!(before < 12, "stopped before the end: {before}");
    let (code, _, sum, err) = s.sync_input(&input, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("resuming sync"), "{err}");
    assert_eq!(sum["updated"], 12, "{sum}");
    // Each user once; at most the one call in flight when the signal came is sent again.
    let total = s.calls("AdminUpdateUserAttributes");
    assert!((12..=13).contains(&total), "{total} calls");
    for u in s.users().await {
        let name = attr_of(&u, "name").unwrap();
        assert!(name.starts_with("Renamed "), "{name}");
    }
}

/// Drift behind the tool's back (a console edit, a deleted user, a disabled user, a managed group
/// joined by hand) goes unseen by an ordinary sync (no call) and is corrected by `--full`; a
/// group only Cognito knows stays as it is.
#[tokio::test]
async fn full_reconcile_corrects_drift() {
    let s = Setup::new("sync-drift").await;
    let users = vec![u(0, &[]), u(1, &[]), u(2, &[]), u(3, &[]), u(4, &["staff"])];
    let (code, _, sum, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        sum["full"], true,
        "a new state begins with a full reconcile: {sum}"
    );
    let c = &s.c;
    c.admin_update_user_attributes()
        .user_pool_id(&s.pool)
        .username("user1")
        .user_attributes(attr("name", "Edited In The Console"))
        .send()
        .await
        .unwrap();
    c.admin_delete_user()
        .user_pool_id(&s.pool)
        .username("user2")
        .send()
        .await
        .unwrap();
    c.admin_disable_user()
        .user_pool_id(&s.pool)
        .username("user3")
        .send()
        .await
        .unwrap();
    for g in ["staff", "console"] {
        c.admin_add_user_to_group()
            .user_pool_id(&s.pool)
            .username("user0")
            .group_name(g)
            .send()
            .await
            .unwrap();
    }
    // An ordinary sync trusts the state: nothing to do.
    s.reset_stats();
    let (code, _, sum, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["full"], false, "{sum}");
    assert_eq!(s.writes(), vec![]);
    // --full lists the pool and puts it right.
    s.reset_stats();
    let (code, _, sum, err) = s.sync(&users, &["--full"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["full"], true, "{sum}");
    assert!(err.contains("full reconcile: 4 users listed"), "{err}");
    let mut writes = s.writes();
    writes.sort();
    assert_eq!(
        writes,
        vec![
            ("AdminCreateUser".to_string(), 1),
            ("AdminEnableUser".to_string(), 1),
            ("AdminRemoveUserFromGroup".to_string(), 1),
            ("AdminUpdateUserAttributes".to_string(), 1),
        ]
    );
    assert!(s.calls("ListUsers") > 0);
    let one = s.user("user1").await.unwrap();
    assert_eq!(attr_of(&one, "name").as_deref(), Some("User 1"));
    assert!(s.user("user2").await.is_some(), "recreated");
    assert!(s.user("user3").await.unwrap().enabled());
    assert_eq!(s.members("staff").await, names(&["user4"]));
    assert_eq!(s.members("console").await, names(&["user0"]));
    // And the state is right again: nothing more to do.
    s.reset_stats();
    let (code, _, _, err) = s.sync(&users, &["--full"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.writes(), vec![]);
}

/// `--match email` in a pool whose usernames are emails (the pool names users by a UUID): users
/// are matched by email, and the full reconcile learns their pool usernames.
#[tokio::test]
async fn match_by_email_in_an_email_username_pool() {
    let s = Setup::with_pool("sync-email", true).await;
    let mut users: Vec<U> = (0..3).map(|i| u(i, &["staff"])).collect();
    let (code, _, sum, err) = s.sync(&users, &["--match", "email"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["created"], 3, "{sum}");
    let pool = s.users().await;
    assert_eq!(pool.len(), 3);
    users[1].name = "Renamed".into();
    s.reset_stats();
    let (code, _, sum, err) = s.sync(&users, &["--match", "email", "--full"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sum["updated"], 1, "{sum}");
    assert_eq!(
        sum["created"], 0,
        "matched by email, not created again: {sum}"
    );
    assert_eq!(
        s.writes(),
        vec![("AdminUpdateUserAttributes".to_string(), 1)]
    );
    let renamed = s
        .users()
        .await
        .into_iter()
        .find(|u| attr_of(u, "email").as_deref() == Some("user1@example.com"))
        .unwrap();
    assert_eq!(attr_of(&renamed, "name").as_deref(), Some("Renamed"));
    assert_eq!(s.users().await.len(), 3);
    // A record without an email has no key: rejected, naming the record and the field.
    let input = s.dir.join("users.csv");
    let mut csv = std::fs::read_to_string(&input).unwrap();
    csv.push_str("nomail,,true,No Mail,true,\"\"\n");
    std::fs::write(&input, csv).unwrap();
    let (code, _, sum, err) = s.sync_input(&input, &["--match", "email"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(sum["rejected"], 1, "{sum}");
    assert!(err.contains("record 4"), "{err}");
}

/// SIGKILL at random moments of a sync, three times over, then the same command to the end: the
/// pool ends exactly as the source says, and every change is written exactly once (what a kill
/// left in doubt is looked up on resume, not sent again).
#[tokio::test]
async fn sigkill_at_random_moments_then_resume_ends_exact() {
    let s = Setup::new("sync-random-kill").await;
    let mut users: Vec<U> = (0..16).map(|i| u(i, &[])).collect();
    let (code, _, _, err) = s.sync(&users, &[]);
    assert_eq!(code, 0, "{err}");
    for (i, user) in users.iter_mut().enumerate() {
        user.name = format!("Changed {i}");
        if i % 4 == 0 {
            user.roles = vec!["staff"];
        }
    }
    s.reset_stats();
    let input = s.write(&users);
    let args = s.args(&input, &["--update-rate", "20", "--group-rate", "20"]);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut kills = 0;
    for round in 0..3u64 {
        let mut child = common::cli_command(&args, &s.emu.cli_env())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // 50–600 ms: while reading, recording or writing.
        let wait = 50
            + (seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(round * 977))
                % 550;
        std::thread::sleep(std::time::Duration::from_millis(wait));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    let (code, _, _, err) = s.sync_input(&input, &["--update-rate", "20", "--group-rate", "20"]);
    assert_eq!(code, 0, "seed {seed}: {err}");
    for u in s.users().await {
        let name = u.username().unwrap().to_string();
        let i: usize = name.trim_start_matches("user").parse().unwrap();
        assert_eq!(
            attr_of(&u, "name"),
            Some(format!("Changed {i}")),
            "seed {seed}"
        );
    }
    assert_eq!(
        s.members("staff").await,
        names(&["user0", "user4", "user8", "user12"]),
        "seed {seed}"
    );
    let updates = s.calls("AdminUpdateUserAttributes");
    let adds = s.calls("AdminAddUserToGroup");
    assert_eq!(
        (updates, adds),
        (16, 4),
        "seed {seed}: each change written once after {kills} kills"
    );
    s.reset_stats();
    let (code, _, _, err) = s.sync_input(&input, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.writes(), vec![], "seed {seed}");
}

/// A usage error is said before anything is opened: stdin (read twice); the summary line still
/// ends the output.
#[test]
fn a_stdin_input_is_a_usage_error() {
    let dir = tempdir("sync-usage");
    let state = dir.join("s.db");
    let args = [
        "sync",
        "-f",
        "csv",
        "--pool-id",
        "us-east-1_x",
        "--mode",
        "admin-create",
        "-i",
        "-",
        "--state",
        state.to_str().unwrap(),
    ];
    let (code, _, err) = run_cli(&args, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("stdin"), "{err}");
    assert_eq!(summary(&err)["exit_code"], 2);
    assert_eq!(summary(&err)["outcome"], "fatal");
    assert!(!state.exists(), "nothing was created");
}

const BUCKET: &str = "cm-sync-state";

/// The emulator's S3, with the bucket for `s3://` states.
async fn s3(emu: &Emulator) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&emu.sdk_config().await)
        .force_path_style(true)
        .build();
    let c = aws_sdk_s3::Client::from_conf(conf);
    let _ = c.create_bucket().bucket(BUCKET).send().await;
    c
}

async fn lease_expiry(c: &aws_sdk_s3::Client, key: &str) -> Option<i64> {
    let out = c.get_object().bucket(BUCKET).key(key).send().await.ok()?;
    let body = out.body.collect().await.ok()?.to_vec();
    cognito_migrate::state_store::LeaseRecord::from_json(&body)
        .ok()
        .map(|l| l.expires_ms)
}

fn wait_until(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Two syncs on one `s3://` state at once (issue #17): the second is refused with exit 4 while
/// the first writes, makes no Cognito write (every change ends written exactly once), and its
/// JSON summary line is still the last stderr line.
#[tokio::test]
async fn two_concurrent_syncs_on_one_s3_state_one_runs_one_is_refused() {
    let s = Setup::new("sync-s3-two").await;
    let c3 = s3(&s.emu).await;
    let state = format!("s3://{BUCKET}/two/sync.db");
    let mut users: Vec<U> = (0..60).map(|i| u(i, &[])).collect();
    let input = s.write(&users);
    let args = s.args_state(&input, &state, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run_cli(&args, &s.emu.cli_env());
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&err)["created"], 60, "{err}");
    // Every user renamed, written at 15 per second: the first sync writes for ~4 s.
    for x in users.iter_mut() {
        x.name = format!("{} renamed", x.name);
    }
    let input = s.write(&users);
    s.reset_stats();
    let slow = s.args_state(&input, &state, &["--update-rate", "15"]);
    let mut first = common::cli_command(&slow, &s.emu.cli_env())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(s.dir.join("first.stderr")).unwrap())
        .spawn()
        .unwrap();
    wait_until(
        "the first sync to write",
        std::time::Duration::from_secs(60),
        || s.calls("AdminUpdateUserAttributes") >= 5,
    );
    let before: Vec<(String, u64)> = s
        .writes()
        .into_iter()
        .filter(|(op, _)| op != "AdminUpdateUserAttributes")
        .collect();
    for extra in [&[][..], &["--break-lock"][..]] {
        let mut second = s.args_state(&input, &state, &["--update-rate", "15"]);
        second.extend(extra.iter().map(|x| x.to_string()));
        let second: Vec<&str> = second.iter().map(String::as_str).collect();
        let (code, out, err) = run_cli(&second, &s.emu.cli_env());
        assert!(first.try_wait().unwrap().is_none(), "the first still runs");
        assert_eq!(code, 4, "refused {extra:?}: {out}{err}");
        assert!(
            err.contains("is in use by another run")
                && err.contains(&format!("pid {}", first.id())),
            "{err}"
        );
        let sum = summary(&err);
        assert_eq!(
            (sum["exit_code"].as_u64(), sum["outcome"].as_str()),
            (Some(4), Some("fatal")),
            "{sum}"
        );
        assert_eq!(sum["updated"], 0, "{sum}");
    }
    let status = first.wait().unwrap();
    let first_err = std::fs::read_to_string(s.dir.join("first.stderr")).unwrap();
    assert_eq!(status.code(), Some(0), "{first_err}");
    assert_eq!(summary(&first_err)["updated"], 60, "{first_err}");
    let after: Vec<(String, u64)> = s
        .writes()
        .into_iter()
        .filter(|(op, _)| op != "AdminUpdateUserAttributes")
        .collect();
    assert_eq!(after, before, "no other write by the refused syncs");
    assert_eq!(
        s.calls("AdminUpdateUserAttributes"),
        60,
        "each rename written once: none by the refused syncs"
    );
    assert!(
        lease_expiry(&c3, "two/sync.db.lock").await.is_none(),
        "lease released"
    );
    for x in s.users().await {
        assert!(
            attr_of(&x, "name").unwrap().ends_with(" renamed"),
            "{:?}",
            x.username()
        );
    }
}

/// A sync on an `s3://` state SIGKILLed mid-write, resumed with `--break-lock` once its lease
/// expired: the pool ends exact and each change is written once, although the uploaded state
/// lagged what the killed process did (its `pending` ops are looked up, not resent).
#[tokio::test]
async fn an_s3_sync_killed_then_resumed_with_break_lock_ends_exact_each_change_once() {
    let s = Setup::new("sync-s3-kill").await;
    let c3 = s3(&s.emu).await;
    let state = format!("s3://{BUCKET}/kill/sync.db");
    let mut users: Vec<U> = (0..40).map(|i| u(i, &[])).collect();
    let input = s.write(&users);
    let args = s.args_state(&input, &state, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run_cli(&args, &s.emu.cli_env());
    assert_eq!(code, 0, "{err}");
    for (i, x) in users.iter_mut().enumerate() {
        x.name = format!("Renamed {i}");
        if i % 5 == 0 {
            x.roles = vec!["staff"];
        }
    }
    let input = s.write(&users);
    s.reset_stats();
    let mut env = s.emu.cli_env();
    env.push(("COGNITO_MIGRATE_LEASE_SECONDS", "3".into()));
    env.push(("COGNITO_MIGRATE_STATE_UPLOAD_SECONDS", "0.5".into()));
    let rates = ["--update-rate", "15", "--group-rate", "15"];
    let run_args = s.args_state(&input, &state, &rates);
    let mut child = common::cli_command(&run_args, &env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("writes", std::time::Duration::from_secs(60), || {
        s.calls("AdminUpdateUserAttributes") >= 15
    });
    child.kill().unwrap(); // SIGKILL: no last upload, the lease stays
    child.wait().unwrap();
    let expires = lease_expiry(&c3, "kill/sync.db.lock")
        .await
        .expect("the lease stays");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    tokio::time::sleep(std::time::Duration::from_millis(
        (expires - now).max(0) as u64 + 300,
    ))
    .await;
    let mut resume = run_args.clone();
    resume.push("--break-lock".into());
    let resume: Vec<&str> = resume.iter().map(String::as_str).collect();
    let (code, _, err) = run_cli(&resume, &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("taking over the expired lease") && err.contains("resuming sync"),
        "{err}"
    );
    assert!(in_doubt(&err).is_some(), "{err}");
    for x in s.users().await {
        let i: usize = x.username().unwrap()[4..].parse().unwrap();
        assert_eq!(attr_of(&x, "name"), Some(format!("Renamed {i}")));
    }
    assert_eq!(
        s.members("staff").await,
        (0..40)
            .filter(|i| i % 5 == 0)
            .map(|i| format!("user{i}"))
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(
        (
            s.calls("AdminUpdateUserAttributes"),
            s.calls("AdminAddUserToGroup")
        ),
        (40, 8),
        "each change written once across the kill: {err}"
    );
    s.reset_stats();
    let (code, _, err) = run_cli(&resume, &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.writes(), vec![], "{err}");
}

/// The REAL `sync` binary's summary lines in several outcomes (ok, a plan with changes, failed
/// users, removals staged, refused because the state is busy) against the metric filters of
/// `deploy/sync/template.yaml`: each metric counts exactly the lines it is meant to.
#[tokio::test]
async fn the_sync_templates_metric_filters_match_the_real_summary_lines() {
    use crate::deploy::{count, metric_filters, published, sum, template, SYNC_TEMPLATE};
    let s = Setup::new("sync-filters").await;
    let mut users: Vec<U> = (0..4).map(|i| u(i, &[])).collect();
    let mut lines = Vec::new();
    let mut codes = Vec::new();
    let mut take = |(code, _, _, err): (i32, String, Value, String)| {
        codes.push(code);
        lines.push(err.lines().last().unwrap().to_string());
    };
    take(s.sync(&users, &[])); // ok
    users[1].name = "Renamed".into();
    take(s.sync(&users, &["--plan"])); // changes pending
    users[0].roles = vec!["missing-group"];
    take(s.sync(&users, &[])); // a failed user
    users.remove(3);
    take(s.sync(&users, &["--max-removals", "0"])); // removals staged (and the failed user again)
                                                    // A second sync while another process holds the state's lock: exit 4.
    let lock = s.dir.join("sync.db.lock");
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock(1)");
    wait_until("the lock held", std::time::Duration::from_secs(10), || {
        let (code, _, _, err) = s.sync(&users, &[]);
        let busy = code == 4;
        if busy {
            take((code, String::new(), Value::Null, err));
        }
        busy
    });
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(codes, [0, 6, 1, 7, 4], "{lines:#?}");
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let outcomes: Vec<&str> = parsed
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "ok",
            "changes_pending",
            "failed_users",
            "removals_staged",
            "fatal"
        ]
    );
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    let filters = metric_filters(&template(SYNC_TEMPLATE));
    let p = published(&filters, &lines);
    assert_eq!(count(&p, "Runs"), 5, "{p:#?}");
    assert_eq!(
        count(&p, "FatalRuns"),
        0,
        "a busy state is no failure: {p:#?}"
    );
    assert_eq!(count(&p, "BusyRuns"), 1, "{p:#?}");
    let failed: Vec<&Value> = parsed.iter().filter(|v| n(v, "failed") > 0).collect();
    assert_eq!(failed.len(), 2, "{lines:#?}");
    assert_eq!(count(&p, "FailedUsers"), 2, "{p:#?}");
    assert_eq!(sum(&p, "FailedUsers"), 2.0, "{p:#?}");
    assert_eq!(count(&p, "StagedRemovals"), 1, "{p:#?}");
    assert_eq!(sum(&p, "StagedRemovals"), 1.0, "{p:#?}");
    assert_eq!(count(&p, "RejectedRecords"), 0, "{p:#?}");
    let durations: Vec<f64> = p["Duration"].iter().map(|(v, _)| *v).collect();
    let real: Vec<f64> = parsed
        .iter()
        .filter(|v| v["plan"] == false)
        .map(|v| n(v, "duration_ms") as f64)
        .collect();
    assert_eq!(durations, real, "real runs only, not the plan");
}
