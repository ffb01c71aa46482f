//! `progress` and `report --id-map` against the emulator: a run that leaves some users to the
//! trigger, the trigger's directory, users arriving in the pool as the trigger would create them
//! (AdminCreateUser under their legacy username, backdated through the emulator's control API),
//! then the counts, the days and every user's `sub` checked against what the pool holds.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_cognitoidentityprovider::types::MessageActionType;
use aws_sdk_cognitoidentityprovider::Client;
use serde_json::{json, Value};

use crate::common::import_job::{self, BCRYPT};
use crate::common::{attr, create_pool, run_cli, string_attribute, tempdir, Emulator};

/// Users of the input: `i % 3 == 0` bcrypt cost 10 (imported with the hash), `1` bcrypt cost 13
/// (over Cognito's cap: left to the trigger), `2` no hash (imported, must reset).
const USERS: usize = 12;
const DAY: i64 = 86_400;

fn input(dir: &Path) -> std::path::PathBuf {
    let over_cap = BCRYPT.replacen("$10$", "$13$", 1);
    let text: String = (0..USERS)
        .map(|i| {
            let mut v: Value =
                serde_json::from_str(&import_job::auth0_line("pv", i, false, true)).unwrap();
            match i % 3 {
                0 => v["passwordHash"] = json!(BCRYPT),
                1 => v["passwordHash"] = json!(over_cap),
                _ => {}
            }
            v.to_string() + "\n"
        })
        .collect();
    let path = dir.join("users.ndjson");
    std::fs::write(&path, text).unwrap();
    path
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `YYYY-MM-DD` (UTC) of Unix seconds, by the shell's `date` (a second implementation).
fn date_of(secs: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Creates the user as the trigger's answer makes Cognito create it, then backdates it.
async fn arrive(c: &Client, emu: &Emulator, pool: &str, i: usize, at: i64) {
    let name = import_job::username("pv", i);
    c.admin_create_user()
        .user_pool_id(pool)
        .username(&name)
        .user_attributes(attr("email", &format!("pv{i:05}@example.com")))
        .user_attributes(attr("email_verified", "true"))
        .user_attributes(attr("custom:legacy_id", &name))
        .message_action(MessageActionType::Suppress)
        .send()
        .await
        .unwrap();
    let path = format!("/_emulator/users/{pool}/{}", name.replace('|', "%7C"));
    emu.control(&path, json!({ "created": at }));
}

fn progress(emu: &Emulator, args: &[&str]) -> Value {
    let mut all = vec!["progress", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run_cli(&all, &emu.cli_env());
    assert_eq!(code, 0, "progress {args:?}: {out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"))
}

fn id_map(
    emu: &Emulator,
    state: &Path,
    out: &Path,
    extra: &[&str],
) -> Vec<BTreeMap<String, String>> {
    let mut args = vec![
        "report",
        "--state",
        state.to_str().unwrap(),
        "--id-map",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, stdout, err) = run_cli(&args, &emu.cli_env());
    assert_eq!(code, 0, "report --id-map: {stdout}\n{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the id map is private");
    }
    let text = std::fs::read_to_string(out).unwrap();
    assert!(!text.contains("$2b$"), "no hash in the id map: {text}");
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header,
        [
            "legacy_id",
            "legacy_username",
            "username",
            "sub",
            "status",
            "origin",
            "route",
            "record",
            "created"
        ]
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// Every row's `sub` is the one AdminGetUser answers for its username; returns statuses by
/// legacy id.
async fn check_subs(
    c: &Client,
    pool: &str,
    rows: &[BTreeMap<String, String>],
) -> BTreeMap<String, String> {
    let mut statuses = BTreeMap::new();
    for row in rows {
        let got = c
            .admin_get_user()
            .user_pool_id(pool)
            .username(&row["username"])
            .send()
            .await;
        match row["status"].as_str() {
            "in_pool" | "arrived" => {
                let u = got.unwrap_or_else(|e| panic!("{row:?}: {e}"));
                let sub = u
                    .user_attributes()
                    .iter()
                    .find(|a| a.name() == "sub")
                    .and_then(|a| a.value())
                    .unwrap();
                assert_eq!(row["sub"], sub, "{row:?}");
                assert!(!row["created"].is_empty(), "{row:?}");
            }
            "not_arrived" => {
                assert!(got.is_err(), "{row:?} is in the pool");
                assert_eq!(row["sub"], "", "{row:?}");
            }
            other => panic!("unexpected status {other} in {row:?}"),
        }
        statuses.insert(row["legacy_id"].clone(), row["status"].clone());
    }
    statuses
}

#[tokio::test]
async fn progress_and_the_id_map_follow_the_pool_as_users_arrive() {
    let emu = Emulator::start();
    import_job::fast(&emu);
    let c = emu.cognito().await;
    let pool = create_pool(
        c.create_user_pool()
            .pool_name("views")
            .auto_verified_attributes(
                aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType::Email,
            )
            .schema(string_attribute("legacy_id").build()),
    )
    .await;
    let dir = tempdir("pool-views");
    let users = input(&dir);
    let state = dir.join("state.db");
    let (code, out, err) = import_job::run(&emu, &import_job::run_args(&users, &pool, &state), &[]);
    assert_eq!(code, 0, "run: {out}\n{err}");
    let (_, status) = emu.status(&state);
    assert_eq!(status["trigger"], 4, "{status}");
    let directory = dir.join("directory.db");
    let (code, out, err) = run_cli(
        &[
            "directory",
            "build",
            "-f",
            "auth0",
            "-i",
            users.to_str().unwrap(),
            "--pool-id",
            &pool,
            "--out",
            directory.to_str().unwrap(),
            "--only-unimported",
            "--state",
            state.to_str().unwrap(),
        ],
        &emu.cli_env(),
    );
    assert_eq!(code, 0, "directory build: {out}\n{err}");

    // The directory alone also holds the users imported without a password (the trigger never
    // sees them: they are in the pool already); they were there before it was built, and the
    // command says so.
    let (code, out, err) = run_cli(
        &[
            "progress",
            "--json",
            "--directory",
            directory.to_str().unwrap(),
        ],
        &emu.cli_env(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (p["left_to_trigger"].as_u64(), p["arrived"].as_u64()),
        (Some(8), Some(4)),
        "{p}"
    );
    assert_eq!(p["in_pool_before_directory"], 4, "{p}");
    assert!(err.contains("give the run's --state"), "{err}");

    // Before anyone arrives.
    let dir_arg = [
        "--directory",
        directory.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ];
    let p = progress(&emu, &dir_arg);
    assert_eq!(
        (p["left_to_trigger"].as_u64(), p["arrived"].as_u64()),
        (Some(4), Some(0)),
        "{p}"
    );
    assert_eq!(p["per_day"], json!([]));

    // Two trigger users arrive: 3 and 40 days ago.
    let t = now();
    arrive(&c, &emu, &pool, 1, t - 3 * DAY).await;
    arrive(&c, &emu, &pool, 4, t - 40 * DAY).await;
    let p = progress(&emu, &dir_arg);
    assert_eq!(p["left_to_trigger"], 4, "{p}");
    assert_eq!(p["arrived"], 2, "{p}");
    assert_eq!(p["remaining"], 2, "{p}");
    assert_eq!(p["percent_arrived"], 50.0, "{p}");
    assert_eq!(p["last_7_days"], 1, "{p}");
    assert_eq!(p["last_30_days"], 1, "{p}");
    assert_eq!(p["days_since_last_arrival"], 3, "{p}");
    assert_eq!(
        p["per_day"],
        json!([{"date": date_of(t - 40 * DAY), "arrivals": 1},
               {"date": date_of(t - 3 * DAY), "arrivals": 1}]),
        "{p}"
    );
    // The table says the same.
    let mut table_args = vec!["progress"];
    table_args.extend_from_slice(&dir_arg);
    let (code, table, err) = run_cli(&table_args, &emu.cli_env());
    assert_eq!(code, 0, "{table}\n{err}");
    for line in [
        "left to the trigger        4".to_string(),
        "arrived (in the pool)      2 (50.0%)".into(),
        "remaining                  2".into(),
        "arrivals, last 30 days     1".into(),
        format!(
            "last arrival               {} (3 days ago)",
            date_of(t - 3 * DAY)
        ),
        format!("  {}         1", date_of(t - 40 * DAY)),
    ] {
        assert!(table.contains(&line), "{line:?} in\n{table}");
    }
    // The HTML report draws the same progress (report --html --progress).
    let html = dir.join("report.html");
    let mut html_args = vec![
        "report",
        "--state",
        state.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--progress",
        "--directory",
        directory.to_str().unwrap(),
    ];
    let (code, out, err) = run_cli(&html_args, &emu.cli_env());
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(crate::report_html::html5_errors(&html), None);
    for cell in [
        "<th>left to the trigger</th><td class=\"n\">4</td>",
        "<th>arrived (now in the pool)</th><td class=\"n\">2</td>",
        "<th>remaining</th><td class=\"n\">2</td>",
    ] {
        assert!(page.contains(cell), "{cell:?} not in the report");
    }
    assert!(
        page.contains(&date_of(t - 40 * DAY)),
        "the arrivals per day"
    );
    // --progress needs --html; --directory needs --id-map or --progress.
    html_args.retain(|a| *a != "--progress");
    let (code, _, err) = run_cli(&html_args, &emu.cli_env());
    assert_eq!(code, 2, "{err}");
    // The same from the run's state alone (its `trigger` users), and by AdminGetUser.
    let from_state = progress(
        &emu,
        &["--state", state.to_str().unwrap(), "--lookup", "get"],
    );
    for k in [
        "left_to_trigger",
        "arrived",
        "remaining",
        "per_day",
        "last_30_days",
    ] {
        assert_eq!(from_state[k], p[k], "{k}: {from_state} vs {p}");
    }

    // The id map: every user, the pool's sub for each one there.
    let map = dir.join("id-map.csv");
    let rows = id_map(
        &emu,
        &state,
        &map,
        &["--directory", directory.to_str().unwrap()],
    );
    assert_eq!(rows.len(), USERS, "{rows:?}");
    let statuses = check_subs(&c, &pool, &rows).await;
    for r in &rows {
        // The Auth0 mapping's username and custom:legacy_id are both the user_id.
        assert_eq!(r["legacy_username"], r["legacy_id"], "{r:?}");
    }
    for i in 0..USERS {
        let want = match i {
            1 | 4 => "arrived",
            _ if i % 3 == 1 => "not_arrived",
            _ => "in_pool",
        };
        let legacy = import_job::username("pv", i);
        assert_eq!(
            statuses.get(&legacy).map(String::as_str),
            Some(want),
            "{legacy}: {rows:?}"
        );
    }

    // A third arrives today; both commands see it when run again.
    arrive(&c, &emu, &pool, 7, t - 60).await;
    let p = progress(&emu, &dir_arg);
    assert_eq!(
        (p["arrived"].as_u64(), p["last_7_days"].as_u64()),
        (Some(3), Some(2)),
        "{p}"
    );
    assert_eq!(p["days_since_last_arrival"], 0, "{p}");
    let rows = id_map(
        &emu,
        &state,
        &map,
        &[
            "--directory",
            directory.to_str().unwrap(),
            "--lookup",
            "get",
        ],
    );
    let statuses = check_subs(&c, &pool, &rows).await;
    assert_eq!(statuses.values().filter(|s| *s == "arrived").count(), 3);
    assert_eq!(statuses.values().filter(|s| *s == "not_arrived").count(), 1);
    assert_eq!(statuses.values().filter(|s| *s == "in_pool").count(), 8);

    // Usage errors exit 2: another pool than the directory's, a pool that does not exist, a
    // directory that does not exist, a file that is not a directory file (here the state).
    let d = directory.to_str().unwrap();
    let st = state.to_str().unwrap();
    let missing = dir.join("nope.db");
    let html = html.to_str().unwrap();
    for args in [
        vec!["progress", "--directory", d, "--pool-id", "us-east-1_Other"],
        vec!["progress", "--state", st, "--pool-id", "us-east-1_Nowhere"],
        vec![
            "report",
            "--state",
            st,
            "--id-map",
            "-",
            "--directory",
            missing.to_str().unwrap(),
        ],
        vec!["progress", "--directory", st],
        vec!["report", "--state", st, "--id-map", "-", "--directory", st],
        vec![
            "report",
            "--state",
            st,
            "--html",
            html,
            "--progress",
            "--directory",
            st,
        ],
    ] {
        let (code, out, err) = run_cli(&args, &emu.cli_env());
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
    }
    // The run's users counted against another pool (the directory's, or --pool-id): refused.
    let other = create_pool(
        c.create_user_pool()
            .pool_name("views-other")
            .auto_verified_attributes(
                aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType::Email,
            ),
    )
    .await;
    let (code, out, err) = run_cli(
        &["progress", "--state", st, "--pool-id", &other],
        &emu.cli_env(),
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains(&format!("the state's run is for pool {pool}, not {other}")),
        "{err}"
    );
    let (_, _, err) = run_cli(&["progress", "--directory", st], &emu.cli_env());
    assert!(
        err.contains("is not a cognito-migrate directory file"),
        "{err}"
    );

    // A reader that goes away before the output (`progress --json | head -0`): an error
    // message, not a panic.
    let mut child = std::process::Command::new(crate::common::CLI)
        .args(["progress", "--json", "--directory", d, "--state", st])
        .envs(emu.cli_env().iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("Broken pipe"), "{err}");
    // The pool is gone: the directory still names it, the pool's answer is a usage error.
    c.delete_user_pool()
        .user_pool_id(&pool)
        .send()
        .await
        .unwrap();
    for lookup in ["auto", "list", "get"] {
        let args = ["progress", "--directory", d, "--lookup", lookup];
        let (code, out, err) = run_cli(&args, &emu.cli_env());
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
        assert!(err.contains("ResourceNotFoundException"), "{err}");
    }
}

/// In a pool whose usernames are email addresses Cognito names every user by a generated id, so
/// the users of a run and those the trigger creates are found by their email address.
#[tokio::test]
async fn email_username_pools_are_matched_by_email() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = create_pool(
        c.create_user_pool()
            .pool_name("views-email")
            .username_attributes(
                aws_sdk_cognitoidentityprovider::types::UsernameAttributeType::Email,
            )
            .auto_verified_attributes(
                aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType::Email,
            ),
    )
    .await;
    let dir = tempdir("pool-views-email");
    let over_cap = BCRYPT.replacen("$10$", "$13$", 1);
    // Even users have no hash (created by AdminCreateUser), odd ones a hash for the trigger.
    let text: String = (0..6)
        .map(|i| {
            let mut v: Value =
                serde_json::from_str(&import_job::auth0_line("em", i, false, true)).unwrap();
            if i % 2 == 1 {
                v["passwordHash"] = json!(over_cap);
            }
            v.to_string() + "\n"
        })
        .collect();
    let users = dir.join("users.ndjson");
    std::fs::write(&users, text).unwrap();
    let mapping = dir.join("mapping.toml");
    std::fs::write(&mapping, "username = \"email\"\n").unwrap();
    let state = dir.join("state.db");
    let (code, out, err) = run_cli(
        &[
            "run",
            "-i",
            users.to_str().unwrap(),
            "-f",
            "auth0",
            "--mapping",
            mapping.to_str().unwrap(),
            "--pool-id",
            &pool,
            "--state",
            state.to_str().unwrap(),
            "--mode",
            "admin-create",
        ],
        &emu.cli_env(),
    );
    assert_eq!(code, 0, "run: {out}\n{err}");

    // One trigger user arrives: Cognito (here moto) names it by a generated id.
    let email = "em00003@example.com";
    c.admin_create_user()
        .user_pool_id(&pool)
        .username(email)
        .user_attributes(attr("email", email))
        .user_attributes(attr("email_verified", "true"))
        .message_action(MessageActionType::Suppress)
        .send()
        .await
        .unwrap();
    let p = progress(&emu, &["--state", state.to_str().unwrap()]);
    assert_eq!(
        (p["left_to_trigger"].as_u64(), p["arrived"].as_u64()),
        (Some(3), Some(1)),
        "{p}"
    );
    assert_eq!(p["days_since_last_arrival"], 0, "{p}");

    let map = dir.join("id-map.csv");
    let rows = id_map(&emu, &state, &map, &[]);
    let statuses = check_subs(&c, &pool, &rows).await;
    assert_eq!(rows.len(), 6, "{rows:?}");
    let count = |s: &str| rows.iter().filter(|r| r["status"] == s).count();
    assert_eq!(
        (count("in_pool"), count("arrived"), count("not_arrived")),
        (3, 1, 2),
        "{rows:?}"
    );
    for r in &rows {
        let i: usize = r["record"].parse::<usize>().unwrap() - 1;
        assert_eq!(
            r["legacy_username"],
            format!("em{i:05}@example.com"),
            "{r:?}"
        );
        if r["status"] != "not_arrived" {
            assert!(
                !r["username"].contains('@'),
                "the generated name, not the email: {r:?}"
            );
        }
    }
    // AdminGetUser by the email address finds the same users.
    let by_get = id_map(
        &emu,
        &state,
        &dir.join("id-map-get.csv"),
        &["--lookup", "get"],
    );
    assert_eq!(by_get, rows);
    // The legacy id is Auth0's user_id, recorded in the state by the run although this pool has
    // no custom:legacy_id to hold it.
    assert_eq!(statuses.len(), 6, "{statuses:?}");
    for r in &rows {
        let i: usize = r["record"].parse::<usize>().unwrap() - 1;
        assert_eq!(r["legacy_id"], import_job::username("em", i), "{r:?}");
    }
}
