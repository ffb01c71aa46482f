//! `report --html` of a real run against the emulator (issue #18, item 1): a run in `auto` mode with
//! import jobs, AdminCreateUser users under a quota that throttles, and rejections (one of them a
//! username that is markup), then the report: valid HTML5 for a spec-following parser (html5lib,
//! strict, from the emulator's venv), the numbers `status --json` prints, the AdminCreateUser
//! calls and throttles the emulator counted, no hash or presigned URL, the username escaped.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use aws_sdk_cognitoidentityprovider::types::{
    AliasAttributeType, MessageActionType, VerifiedAttributeType,
};
use serde_json::json;

use crate::common::import_job::{self as ij, BCRYPT, ROLE};
use crate::common::{self, repo_root, run_cli, Emulator};

const EVIL: &str = "<script>alert(1)</script>@example.com";
const EVIL_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;@example.com";

/// Parses `file` with html5lib in strict mode (any parse error fails); returns the parser's error.
pub(crate) fn html5_errors(file: &Path) -> Option<String> {
    let python = std::env::var_os("COGNITO_MIGRATE_EMULATOR_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, html5lib\n\
             with open(sys.argv[1], 'rb') as f:\n    data = f.read()\n\
             html5lib.HTMLParser(strict=True).parse(data)\n\
             print('ok')",
        ])
        .arg(file)
        .output()
        .expect("run the venv's python (scripts/emulator setup installs html5lib)");
    if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
        None
    } else {
        Some(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `report --state STATE --html OUT`: (exit code, stderr).
fn report_html(state: &Path, out: &Path, env: &[(&str, String)]) -> (i32, String) {
    let (code, _, err) = run_cli(
        &[
            "report",
            "--state",
            state.to_str().unwrap(),
            "--html",
            out.to_str().unwrap(),
        ],
        env,
    );
    (code, err)
}

#[test]
fn html5lib_in_strict_mode_rejects_invalid_html() {
    // The validator must be able to fail: a stray end tag and a missing doctype are errors.
    let dir = common::tempdir("report-html-invalid");
    let bad = dir.join("bad.html");
    std::fs::write(&bad, "<html><body><p>x</div></body></html>").unwrap();
    assert!(html5_errors(&bad).is_some());
    let good = dir.join("good.html");
    std::fs::write(
        &good,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>t</title></head><body><p>x</p></body></html>",
    )
    .unwrap();
    assert_eq!(html5_errors(&good), None);
}

#[tokio::test]
async fn the_html_report_of_a_real_run_is_valid_and_shows_what_status_shows() {
    let emu = Emulator::start();
    ij::fast(&emu);
    // A UserCreation quota below the writer's rate, so that some AdminCreateUser calls are
    // throttled and the report has throttles to mark.
    emu.control(
        "/_emulator/config",
        json!({"quotas": {"enabled": true, "burst_seconds": 1.0, "rates": {"UserCreation": 10}}}),
    );
    let c = ij::client(&emu).await;
    // Email is an alias: a user whose email another user holds fails with AliasExistsException,
    // so the markup username below is recorded (rejected records carry no username).
    let pool = common::create_pool(
        c.create_user_pool()
            .pool_name("html-report")
            .alias_attributes(AliasAttributeType::Email)
            .auto_verified_attributes(VerifiedAttributeType::Email),
    )
    .await;
    c.admin_create_user()
        .user_pool_id(&pool)
        .username("holder")
        .user_attributes(common::attr("email", "evil@example.com"))
        .user_attributes(common::attr("email_verified", "true"))
        .message_action(MessageActionType::Suppress)
        .send()
        .await
        .unwrap();
    let dir = common::tempdir("report-html");
    // 30 users: every fifth with a bcrypt hash (import job), the rest without (AdminCreateUser in
    // auto mode); two rejected for their email; one named like a script tag that fails.
    let mut lines: Vec<String> = (0..30)
        .map(|i| ij::auth0_line("h", i, i % 5 == 0, true))
        .collect();
    for (id, email) in [
        ("auth0|bad-1", "not an email"),
        ("auth0|bad-2", "also@@bad"),
    ] {
        lines.push(
            json!({"user_id": id, "email": email, "email_verified": true, "passwordHash": BCRYPT})
                .to_string(),
        );
    }
    lines.push(
        json!({"user_id": EVIL, "email": "evil@example.com", "email_verified": true}).to_string(),
    );
    let input = dir.join("users.ndjson");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let state = dir.join("state.db");
    let mut args = common::run_args(
        input.to_str().unwrap(),
        "auth0",
        &pool,
        state.to_str().unwrap(),
        "auto",
    );
    args.extend(["--role-arn", ROLE]);
    let env = ij::env(&emu, &[]);
    let (code, _out, err) = run_cli(&args, &env);
    assert_eq!(code, 1, "two rejections and a failure: {err}");

    let (_, status) = emu.status(&state);
    assert_eq!(ij::n(&status, "rejected"), 2, "{status}");
    assert_eq!(ij::n(&status, "imported"), 6, "{status}");
    assert_eq!(ij::n(&status, "created"), 24, "{status}");
    assert_eq!(ij::n(&status, "failed"), 1, "{status}");

    let out = dir.join("report.html");
    let (code, err) = report_html(&state, &out, &env);
    assert_eq!(code, 1, "the run has rejections: {err}");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the report is private");
    let html = std::fs::read_to_string(&out).unwrap();

    // Valid HTML5 for a spec-following parser.
    if let Some(e) = html5_errors(&out) {
        panic!("html5lib (strict) refused the report: {e}");
    }

    // No sync ran on this state: no sync section (whether or not the schema has the table).
    assert!(!html.contains("<section id=\"sync\">"));

    // The numbers status --json prints: the counts, per route, per job.
    for key in [
        "total", "imported", "created", "updated", "skipped", "trigger", "rejected", "failed",
        "unknown", "pending",
    ] {
        let cell = format!("data-count=\"{key}\">{}</td>", ij::n(&status, key));
        assert!(html.contains(&cell), "missing {cell}");
    }
    let routes = status["routes"].as_object().unwrap();
    assert!(routes.len() >= 3, "{status}");
    for (route, counts) in routes {
        for (key, n) in counts.as_object().unwrap() {
            let n = n.as_u64().unwrap();
            if n > 0 {
                let cell = format!("data-route=\"{route}\" data-count=\"{key}\">{n}</td>");
                assert!(html.contains(&cell), "missing {cell}");
            }
        }
    }
    let jobs = status["jobs"].as_array().unwrap();
    assert!(!jobs.is_empty(), "{status}");
    for j in jobs {
        let n = |k: &str| j["counts"][k].as_u64().unwrap();
        let row = format!(
            "<td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            j["job_id"].as_str().unwrap(),
            j["status"].as_str().unwrap(),
            j["row_count"],
            n("imported"),
            n("skipped"),
            n("failed")
        );
        assert!(html.contains(&row), "missing job row {row}");
    }
    // Every job was created, uploaded, started and ended: the timeline has each phase.
    for phase in [
        "created, uploading",
        "uploaded, waiting to start",
        "running",
        "ended at",
    ] {
        let titles = html.matches(&format!(": {phase}")).count();
        assert!(titles >= jobs.len(), "{phase}: {titles} of {}", jobs.len());
    }

    // AdminCreateUser calls and throttles, as the emulator counted them.
    let stats = emu.stats();
    let op = &stats["operations"]["AdminCreateUser"];
    // Less the call that created "holder" above.
    let (calls, throttled) = (
        op["calls"].as_u64().unwrap() - 1,
        op["throttled"].as_u64().unwrap(),
    );
    assert!(throttled > 0, "the quota never bit: {stats}");
    assert!(
        html.contains(&format!("<th>calls</th><td class=\"n\">{calls}</td>")),
        "{calls} calls"
    );
    assert!(
        html.contains(&format!(
            "<th>throttled calls</th><td class=\"n\">{throttled}</td>"
        )),
        "{throttled} throttled"
    );
    assert!(html.contains("class=\"throttle\""));

    // Rejections by reason and field, with places; the markup username escaped, never a tag.
    assert!(html.contains("<td>invalid_email</td><td>email</td><td class=\"n\">2</td>"));
    let failed = format!(
        "<td>{EVIL_ESCAPED}</td><td>admin-create</td><td>failed</td><td>AliasExistsException</td>"
    );
    assert!(
        html.contains(&failed),
        "the username is shown escaped: {failed}"
    );
    assert!(!html.contains("<script"), "a username became a tag");
    assert!(
        !html.contains("not an email") && !html.contains("also@@bad"),
        "a value"
    );

    // No hash, password or presigned URL.
    assert!(!html.contains(BCRYPT) && !html.contains("$2b$"), "a hash");
    for needle in ["X-Amz-", "Signature", "https://", "http://127.0.0.1"] {
        assert!(!html.contains(needle), "{needle} in the report");
    }

    // A state that `sync` wrote to (its `sync_runs` table, as issue #17 defines it): the change
    // sets are drawn and the page stays valid, hostile text included.
    let db = rusqlite::Connection::open(&state).unwrap();
    // Schema V7_SYNC (issue #17) makes the table in every state; made here with the columns the
    // report reads when this build's schema lacks it.
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS sync_runs (id INTEGER PRIMARY KEY, \
         started_at INTEGER NOT NULL, finished_at INTEGER, plan INTEGER NOT NULL DEFAULT 0, \
         full INTEGER NOT NULL DEFAULT 0, outcome TEXT, pool_id TEXT NOT NULL, \
         input_fingerprint TEXT NOT NULL, records INTEGER, rejected INTEGER, unchanged INTEGER, \
         created INTEGER, updated INTEGER, disabled INTEGER, enabled INTEGER, deleted INTEGER, \
         group_adds INTEGER, group_removes INTEGER, failed INTEGER, staged_removals INTEGER);
         INSERT INTO sync_runs (id, started_at, finished_at, plan, full, outcome, pool_id, \
         input_fingerprint, records, rejected, unchanged, created, updated, disabled, enabled, \
         deleted, group_adds, group_removes, failed, staged_removals) VALUES (1, 1796637600000, \
         1796637660000, 0, 1, 'ok', 'p', 'f', 33, 2, 20, 7, 3, 1, 0, 0, 2, 0, 0, 0);
         INSERT INTO sync_runs (id, started_at, finished_at, plan, full, outcome, pool_id, \
         input_fingerprint, records, rejected, unchanged, created, updated, disabled, enabled, \
         deleted, group_adds, group_removes, failed, staged_removals) VALUES (2, 1796724000000, \
         NULL, 0, 0, '<img src=x onerror=alert(1)>', 'p', 'f', 33, 0, 31, 0, 2, 0, 0, 0, 0, 1, \
         0, 0);",
    )
    .unwrap();
    drop(db);
    let (code, err) = report_html(&state, &out, &env);
    assert_eq!(code, 1, "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    if let Some(e) = html5_errors(&out) {
        panic!("html5lib (strict) refused the report with sync runs: {e}");
    }
    assert!(html.contains("<section id=\"sync\">"));
    assert!(html.contains("12-07 10:00: 7 created") && html.contains("12-08 10:00: 2 updated"));
    assert!(!html.contains("<img") && html.contains("&lt;img src=x onerror=alert(1)&gt;"));

    // Neither output asked for: a usage error.
    let (code, _, _) = run_cli(&["report", "--state", state.to_str().unwrap()], &env);
    assert_eq!(code, 2);
    // The report is a private file, never stdout.
    let (code, out, err) = run_cli(
        &["report", "--state", state.to_str().unwrap(), "--html", "-"],
        &env,
    );
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
}
