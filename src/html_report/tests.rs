use super::*;
use crate::checkpoint::tests::TempDb;
use crate::checkpoint::{Outcome, RunSpec, SecondStats, UserRow};
use crate::mapping::{Reason, Rejection};
use crate::record::Position;

const EVIL: &str = "<script>alert(1)</script>@example.com";

fn pos(record: u64) -> Position {
    Position {
        record,
        line: record + 1,
        byte_offset: record * 100,
    }
}

fn state(db: &TempDb) -> (Checkpoint, Run) {
    let cp = Checkpoint::open(&db.0).unwrap();
    let run = cp
        .begin_run(
            &RunSpec {
                input_location: "s3://bucket/users.ndjson?X-Amz-Signature=deadbeef".into(),
                input_format: "auth0".into(),
                input_size: 4321,
                input_fingerprint: "sha256:abc".into(),
                pool_id: "eu-west-1_<b>pool</b>".into(),
                mode: "auto".into(),
                options: "{}".into(),
            },
            false,
        )
        .unwrap();
    let mut rows = vec![
        UserRow::new(pos(1), "ada", "admin-create", Outcome::Created),
        UserRow::new(pos(2), "bob", "admin-create", Outcome::Created),
        UserRow::new(pos(3), "cy", "trigger", Outcome::Trigger),
        UserRow::new(pos(4), "dee", "admin-create", Outcome::Failed).with_reason(
            "InvalidParameterException",
            "Cognito said no: secret-ish text",
        ),
    ];
    let email = Rejection::new(pos(5), "email", Reason::InvalidEmail, "not-an-email-VALUE");
    rows.push(UserRow::rejected(&email, EVIL));
    for r in 6..=9 {
        let rej = Rejection::new(pos(r), "custom:plan", Reason::TooLong, "way too long VALUE");
        rows.push(UserRow::rejected(&rej, format!("user{r}")));
    }
    cp.record_batch(run.id, &rows).unwrap();
    (cp, run)
}

#[test]
fn a_report_escapes_untrusted_text_and_shows_names_never_values() {
    let db = TempDb::new("html-escape");
    let (cp, run) = state(&db);
    let html = render(&gather(&cp, &run).unwrap(), &Extras::default());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "a username opened a tag");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;@example.com"));
    assert!(!html.contains("<b>pool</b>") && html.contains("eu-west-1_&lt;b&gt;pool&lt;/b&gt;"));
    // Rejection messages may quote values: only reasons and field names are printed.
    for value in [
        "not-an-email-VALUE",
        "way too long VALUE",
        "secret-ish text",
    ] {
        assert!(!html.contains(value), "{value} printed");
    }
    assert!(html.contains(">invalid_email<") && html.contains(">custom:plan<"));
    assert!(
        html.contains("record 6 (line 7), record 7 (line 8)"),
        "first places"
    );
    // The signed query string of the input location is left out.
    assert!(html.contains("s3://bucket/users.ndjson (auth0, 4321 bytes)"));
    assert!(!html.contains("Signature"));
    // The counts, as status --json prints them.
    for (name, n) in [
        ("total", 9),
        ("created", 2),
        ("rejected", 5),
        ("failed", 1),
        ("trigger", 1),
    ] {
        let cell = format!("data-count=\"{name}\">{n}</td>");
        assert!(html.contains(&cell), "{cell}");
    }
    assert!(html.contains("data-route=\"admin-create\" data-count=\"created\">2<"));
    // No sync ran on this state: no sync section; no progress given: no progress section.
    assert!(!html.contains("id=\"sync\"") && !html.contains("id=\"progress\""));
    assert!(html.contains("This run has no import job."));
    assert!(html.contains("No AdminCreateUser call is recorded"));
}

#[test]
fn admin_create_seconds_add_up_across_writers_and_are_drawn_with_throttles() {
    let db = TempDb::new("html-seconds");
    let (cp, run) = state(&db);
    let t = 1_796_637_600;
    let s = |second, calls, throttles, settled| SecondStats {
        second,
        calls,
        throttles,
        settled,
    };
    cp.add_admin_seconds(run.id, &[s(t, 40, 0, 38), s(t + 1, 55, 5, 50)])
        .unwrap();
    // A resumed run's writer adds to the same second.
    cp.add_admin_seconds(run.id, &[s(t + 1, 5, 1, 5), s(t + 3, 10, 0, 10)])
        .unwrap();
    assert_eq!(
        cp.admin_seconds(run.id).unwrap(),
        vec![s(t, 40, 0, 38), s(t + 1, 60, 6, 55), s(t + 3, 10, 0, 10)]
    );
    let html = render(&gather(&cp, &run).unwrap(), &Extras::default());
    assert!(
        html.contains("<th>calls</th><td class=\"n\">110</td>"),
        "total calls"
    );
    assert!(html.contains("<th>throttled calls</th><td class=\"n\">6</td>"));
    assert_eq!(
        html.matches("class=\"throttle\"").count(),
        1,
        "one throttled second"
    );
    assert!(html.contains("10:00:01: 6 throttled"));
}

#[test]
fn buckets_sum_seconds_and_their_width_bounds_the_columns() {
    assert_eq!(bucket_seconds(1, 150), 1);
    assert_eq!(bucket_seconds(150, 150), 1);
    assert_eq!(bucket_seconds(151, 150), 2);
    assert_eq!(bucket_seconds(3600, 150), 30);
    assert_eq!(bucket_seconds(20_000, 150), 300);
    assert!(bucket_seconds(10_000_000, 150) * 150 >= 10_000_000);
    let s = |second, calls, throttles| SecondStats {
        second,
        calls,
        throttles,
        settled: 0,
    };
    assert_eq!(
        bucketed(&[s(100, 1, 0), s(104, 2, 1), s(105, 3, 0), s(111, 4, 2)], 5),
        vec![(100, 3, 1), (105, 3, 0), (110, 4, 2)]
    );
}

#[test]
fn sync_runs_are_drawn_when_a_sync_recorded_some() {
    let db = TempDb::new("html-sync");
    let (cp, run) = state(&db);
    assert!(cp.sync_runs().unwrap().unwrap_or_default().is_empty());
    // The table as schema V7_SYNC (issue #17) makes it in every state; made here with the
    // columns the report reads when this build's schema lacks it.
    cp.conn()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS sync_runs (id INTEGER PRIMARY KEY, \
             started_at INTEGER NOT NULL, finished_at INTEGER, plan INTEGER NOT NULL DEFAULT 0, \
             full INTEGER NOT NULL DEFAULT 0, outcome TEXT, pool_id TEXT NOT NULL, \
             input_fingerprint TEXT NOT NULL, records INTEGER NOT NULL DEFAULT 0, \
             rejected INTEGER NOT NULL DEFAULT 0, unchanged INTEGER NOT NULL DEFAULT 0, \
             created INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0, \
             disabled INTEGER NOT NULL DEFAULT 0, enabled INTEGER NOT NULL DEFAULT 0, \
             deleted INTEGER NOT NULL DEFAULT 0, group_adds INTEGER NOT NULL DEFAULT 0, \
             group_removes INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, \
             staged_removals INTEGER NOT NULL DEFAULT 0);",
        )
        .unwrap();
    let html = render(&gather(&cp, &run).unwrap(), &Extras::default());
    assert!(!html.contains("id=\"sync\""), "no sync ran: no section");
    cp.conn()
        .execute_batch(
            "INSERT INTO sync_runs (id, started_at, finished_at, plan, full, outcome, pool_id, input_fingerprint, \
             records, rejected, unchanged, created, updated, disabled, enabled, deleted, \
             group_adds, group_removes, failed, staged_removals) \
             VALUES (1, 1796637600000, 1796637660000, 0, 1, 'ok', 'p', 'f', 100, 1, 90, 4, 3, 1, 0, 1, 2, 0, 0, 0);
             INSERT INTO sync_runs (id, started_at, finished_at, plan, full, outcome, pool_id, input_fingerprint, \
             records, rejected, unchanged, created, updated, disabled, enabled, deleted, \
             group_adds, group_removes, failed, staged_removals) \
             VALUES (2, 1796724000000, NULL, 1, 0, '<i>x</i>', 'p', 'f', 100, 0, 97, 1, 2, 0, 0, 0, 0, 0, 0, 3);",
        )
        .unwrap();
    let runs = cp.sync_runs().unwrap().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].counts[3], ("created", 4));
    assert!(runs[1].plan && !runs[1].full);
    let html = render(&gather(&cp, &run).unwrap(), &Extras::default());
    assert!(html.contains("id=\"sync\""));
    assert!(html.contains("&lt;i&gt;x&lt;/i&gt;") && !html.contains("<i>x"));
    assert!(
        html.contains("12-07 10:00: 4 created"),
        "created segment of the first run"
    );
    assert!(html.contains("12-08 10:00: 2 updated"));
}

#[test]
fn the_progress_slot_takes_a_section_built_from_escaped_parts() {
    let db = TempDb::new("html-progress");
    let (cp, run) = state(&db);
    let mut body = Html::paragraph("3 of 10 users left to the trigger are in the pool <now>");
    body.push(Html::table(
        &["day", "arrivals"],
        &[vec!["2026-12-07", "3"]],
    ));
    body.push(Html::bar_chart(
        "Arrivals per day",
        &[("2026-12-07".into(), 3)],
    ));
    let extras = Extras {
        progress: Some(Section {
            id: "progress",
            title: "Trigger progress".into(),
            body,
        }),
        state_name: Some("s3://bucket/states/<prod>.db".into()),
    };
    let html = render(&gather(&cp, &run).unwrap(), &extras);
    // The state as the user named it (a downloaded state's local copy is gone), escaped.
    assert!(html.contains("From the state file s3://bucket/states/&lt;prod&gt;.db ·"));
    let default = render(&gather(&cp, &run).unwrap(), &Extras::default());
    let path = escape(&cp.path().display().to_string()).into_owned();
    assert!(default.contains(&format!("From the state file {path} ·")));
    let summary = html.find("<section id=\"summary\"").unwrap();
    let progress = html.find("<section id=\"progress\"").unwrap();
    let rejections = html.find("<section id=\"rejections\"").unwrap();
    assert!(summary < progress && progress < rejections);
    assert!(html.contains("in the pool &lt;now&gt;"));
    assert!(html.contains("<td class=\"n\">3</td>"));
}
