//! What runs on AWS, checked here: the CloudFormation templates (`scripts/trigger/template.yaml`,
//! `deploy/sync/template.yaml`) and the sync's image (`deploy/sync/Dockerfile`).
//!
//! Why: nothing here can deploy to AWS, but most of what goes wrong there can be caught before —
//! cfn-lint (pinned in the emulator's venv) on both templates; every CloudWatch metric filter
//! pattern run, with a matcher of CloudWatch's JSON filter syntax (`common::filter_pattern`,
//! itself checked against AWS's documented examples), over the lines the real trigger binary
//! prints and over the sync's agreed summary line; the dashboard's body parsed as JSON with
//! every metric it shows published by a filter; the sync task role checked against the Cognito
//! calls in `src/` and the README's IAM table; the Dockerfile's stages, user and `--locked`
//! (no container engine here to build it).
//!
//! Templates are read through cfn-lint's own YAML decoder (short forms such as `!Sub` become
//! `Fn::Sub`), so the test reads them as CloudFormation does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::common::filter_pattern::{dimension_value, metric_value, FilterPattern};
use crate::common::trigger::{
    event, FakeRuntime, Trigger, AUTH_EVENT, BCRYPT4_PASSWORD, FORGOT_EVENT, WAIT,
};
use crate::common::{repo_root, tempdir};
use crate::trigger_runtime::{alice_event_edited, small_directory, tamper};

const TRIGGER_TEMPLATE: &str = "scripts/trigger/template.yaml";
pub(crate) const SYNC_TEMPLATE: &str = "deploy/sync/template.yaml";

fn venv_bin(name: &str) -> PathBuf {
    let path = repo_root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/emulator setup (scripts/test does)",
        path.display()
    );
    path
}

/// The template as CloudFormation reads it, through cfn-lint's decoder.
pub(crate) fn template(relative: &str) -> Value {
    let out = Command::new(venv_bin("python"))
        .arg("-c")
        .arg(
            "import json, sys\n\
             from cfnlint.decode import decode\n\
             template, errors = decode(sys.argv[1])\n\
             if errors:\n    sys.exit('\\n'.join(str(e) for e in errors))\n\
             print(json.dumps(template))",
        )
        .arg(repo_root().join(relative))
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "cannot decode {relative}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn resources_of_type<'t>(template: &'t Value, kind: &str) -> Vec<(&'t str, &'t Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(name, r)| (name.as_str(), r))
        .collect()
}

/// One metric filter of a template.
#[derive(Debug)]
pub(crate) struct Filter {
    pattern: FilterPattern,
    metric: String,
    value: String,
    dimensions: Vec<String>,
}

pub(crate) fn metric_filters(template: &Value) -> BTreeMap<String, Filter> {
    resources_of_type(template, "AWS::Logs::MetricFilter")
        .into_iter()
        .map(|(name, r)| {
            let p = &r["Properties"];
            let pattern = p["FilterPattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: FilterPattern is not a plain string"));
            let t = &p["MetricTransformations"][0];
            let filter = Filter {
                pattern: FilterPattern::parse(pattern).unwrap_or_else(|e| panic!("{name}: {e}")),
                metric: t["MetricName"].as_str().unwrap().to_string(),
                value: t["MetricValue"].as_str().unwrap().to_string(),
                dimensions: t["Dimensions"]
                    .as_array()
                    .map(|d| {
                        d.iter()
                            .map(|d| d["Value"].as_str().unwrap().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            (name.to_string(), filter)
        })
        .collect()
}

/// What a metric would receive from `lines`, per metric name: the value of every matching line,
/// with its dimension values.
pub(crate) fn published(
    filters: &BTreeMap<String, Filter>,
    lines: &[String],
) -> BTreeMap<String, Vec<(f64, Vec<String>)>> {
    let mut out: BTreeMap<String, Vec<(f64, Vec<String>)>> = BTreeMap::new();
    for f in filters.values() {
        let entry = out.entry(f.metric.clone()).or_default();
        for line in lines.iter().filter(|l| f.pattern.matches(l)) {
            let value = metric_value(&f.value, line)
                .unwrap_or_else(|| panic!("{}: no value {} in {line}", f.metric, f.value));
            let dims = f
                .dimensions
                .iter()
                .map(|d| dimension_value(d, line).unwrap_or_else(|| panic!("{d} in {line}")))
                .collect();
            entry.push((value, dims));
        }
    }
    out
}

pub(crate) fn count(published: &BTreeMap<String, Vec<(f64, Vec<String>)>>, metric: &str) -> usize {
    published
        .get(metric)
        .unwrap_or_else(|| panic!("no filter publishes {metric}"))
        .len()
}

pub(crate) fn sum(published: &BTreeMap<String, Vec<(f64, Vec<String>)>>, metric: &str) -> f64 {
    published[metric].iter().map(|(v, _)| v).sum()
}

// ------------------------------------------------------------------------------------------------
// The matcher against AWS's documentation.

/// The examples of "Filter and pattern syntax" → "Matching terms in JSON log events" (CloudWatch
/// Logs User Guide, https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html;
/// source: github.com/awsdocs/amazon-cloudwatch-logs-user-guide, doc_source/FilterAndPatternSyntax.md),
/// with the outcome the page states for each.
#[test]
fn the_filter_matcher_agrees_with_the_examples_of_aws_documentation() {
    let check = |pattern: &str, event: &Value, expected: bool| {
        let p = FilterPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert_eq!(
            p.matches(&event.to_string()),
            expected,
            "{pattern} on {event}"
        );
    };
    // "JSON metric filter examples": each of these matches the example event.
    let example = json!({
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": null,
        "ThisFlag": true
    });
    for pattern in [
        r#"{ $.eventType = "UpdateTrail" }"#,
        r#"{ $.sourceIPAddress != 123.123.* }"#,
        r#"{ $.arrayKey[0] = "value" }"#,
        r#"{ $.objectList[1].id = 2 }"#,
        r#"{ $.SomeObject IS NULL }"#,
        r#"{ $.SomeOtherObject NOT EXISTS }"#,
        r#"{ $.ThisFlag IS TRUE }"#,
    ] {
        check(pattern, &example, true);
    }
    // The converse of each, as the page explains them ("If arrayKey is not an array this will
    // be false", "only true if the specified object is set to null", …).
    for pattern in [
        r#"{ $.eventType = "CreateTrail" }"#,
        r#"{ $.sourceIPAddress != 111.111.* }"#,
        r#"{ $.objectList[0].id = 2 }"#,
        r#"{ $.eventType[0] = "UpdateTrail" }"#,
        r#"{ $.ThisFlag IS NULL }"#,
        r#"{ $.eventType NOT EXISTS }"#,
        r#"{ $.ThisFlag IS FALSE }"#,
    ] {
        check(pattern, &example, false);
    }
    // "JSON compound conditions": two match, two do not.
    let compound = json!({
        "user": {"id": 1, "email": "John.Stiles@example.com"},
        "users": [
            {"id": 2, "email": "John.Doe@example.com"},
            {"id": 3, "email": "Jane.Doe@example.com"}
        ],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]
    });
    check(
        r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
        &compound,
        true,
    );
    check(
        r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
        &compound,
        false,
    );
    check(
        r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }"#,
        &compound,
        true,
    );
    check(
        r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }"#,
        &compound,
        false,
    );
    // "JSON special considerations": a selector on an array matches neither = nor !=.
    let users = json!({"users": [1, 2, 3]});
    check("{$.users = 1}", &users, false);
    check("{$.users != 1}", &users, false);
    // "OR pattern matching" in JSON filters.
    let (bar, baz) = (json!({"foo": "bar"}), json!({"foo": "baz"}));
    check("{$.foo = bar}", &bar, true);
    check("{$.foo = bar}", &baz, false);
    check("{$.foo = baz }", &baz, true);
    check("{$.foo = bar || $.foo = baz }", &bar, true);
    check("{$.foo = bar || $.foo = baz }", &baz, true);
    // Wildcards: "*Event will match PutEvent and GetEvent. Event* will match EventId and
    // EventName. Ev*ent will only match the actual string Ev*ent."
    for (pattern, value, expected) in [
        ("*Event", "PutEvent", true),
        ("*Event", "GetEvent", true),
        ("*Event", "EventId", false),
        ("Event*", "EventId", true),
        ("Event*", "EventName", true),
        ("Event*", "PutEvent", false),
        ("Ev*ent", "Ev*ent", true),
        ("Ev*ent", "Event", false),
    ] {
        check(
            &format!("{{ $.name = {pattern} }}"),
            &json!({ "name": value }),
            expected,
        );
    }
    // "Numeric comparisons": the page's patterns parse; the comparisons hold at their edges.
    for pattern in [
        "{ $.latency >= 500 }",
        "{ $.numbers[0] < 10e3 }",
        "{ $.numbers[0] < 10e-3 }",
        "{ $.processes[4].averageRuntime <= 55.5 }",
        "{ $.errorCode = 400 }",
        "{ $.errorCode != 500 }",
        "{ $.latency > +1000 }",
    ] {
        FilterPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    }
    check("{ $.latency >= 500 }", &json!({"latency": 500}), true);
    check("{ $.latency >= 500 }", &json!({"latency": 499.9}), false);
    check("{ $.numbers[0] < 10e3 }", &json!({"numbers": [9999]}), true);
    check(
        "{ $.numbers[0] < 10e-3 }",
        &json!({"numbers": [0.01]}),
        false,
    );
    check("{ $.errorCode != 500 }", &json!({"errorCode": 400}), true);
    check("{ $.latency > +1000 }", &json!({"latency": 1000}), false);
    // "Publishing numerical values found in log entries": { $.latency = * }, value $.latency.
    let latency = json!({"latency": 42.5}).to_string();
    assert!(FilterPattern::parse("{ $.latency = * }")
        .unwrap()
        .matches(&latency));
    assert_eq!(metric_value("$.latency", &latency), Some(42.5));
    // Only a JSON object is a JSON log event.
    let p = FilterPattern::parse(r#"{ $.eventType = "UpdateTrail" }"#).unwrap();
    assert!(!p.matches("INFO eventType=UpdateTrail"));
    assert!(!p.matches(r#"["UpdateTrail"]"#));
}

// ------------------------------------------------------------------------------------------------
// The trigger's template against the lines the real binary prints.

/// Runs the trigger binary over `events` and returns its log, one entry per line (one
/// CloudWatch log event each).
fn trigger_lines(directory: &Path, events: &[String], dir: &Path, name: &str) -> Vec<String> {
    let runtime = FakeRuntime::start();
    let trigger = Trigger::spawn(
        &runtime,
        &[
            ("COGNITO_MIGRATE_DIRECTORY", directory.to_str().unwrap()),
            ("COGNITO_MIGRATE_LOG_KEY", "test-key"),
            ("RUST_LOG", "info"),
        ],
        &dir.join(format!("{name}.log")),
    );
    assert!(runtime.first_next(WAIT).is_some(), "{}", trigger.log());
    for e in events {
        runtime.call(e);
    }
    // The line is written before the answer is posted; the log is complete once all answered.
    trigger.log().lines().map(str::to_string).collect()
}

#[test]
fn the_trigger_templates_metric_filters_count_the_lines_the_binary_prints() {
    let dir = tempdir("deploy-trigger");
    let directory = small_directory(&dir);
    let mut malformed: Value = serde_json::from_str(AUTH_EVENT).unwrap();
    malformed["request"] = json!([BCRYPT4_PASSWORD]);
    let events = [
        event(AUTH_EVENT, "alice", Some(BCRYPT4_PASSWORD)), // migrated
        event(AUTH_EVENT, "alice", Some("wrong horse")),    // wrong_password
        event(AUTH_EVENT, "nobody", Some(BCRYPT4_PASSWORD)), // unknown_user
        event(AUTH_EVENT, "mallory", Some(BCRYPT4_PASSWORD)), // disabled
        event(FORGOT_EVENT, "alice@example.com", None),     // migrated
        malformed.to_string(),                              // malformed_event
        alice_event_edited(|v| v["userPoolId"] = json!("us-east-1_OTHERPOOL")), // wrong_user_pool
        event(AUTH_EVENT, "alice", Some("wrong horse")),    // wrong_password
    ];
    let mut lines = trigger_lines(&directory, &events, &dir, "intact");

    // A directory file altered behind SQLite's back: every sign-in is answered unavailable.
    let damaged_dir = dir.join("damaged");
    std::fs::create_dir_all(&damaged_dir).unwrap();
    let damaged = small_directory(&damaged_dir);
    tamper(
        &damaged,
        "\"custom:legacy_id\":\"42\"",
        "\"custom:legacy_id\":\"43\"",
    );
    let unavailable = [
        event(AUTH_EVENT, "alice", Some(BCRYPT4_PASSWORD)),
        event(FORGOT_EVENT, "alice", None),
    ];
    lines.extend(trigger_lines(&damaged, &unavailable, &dir, "damaged"));

    // A directory that cannot be opened at all: the trigger does not start (Lambda tries again at
    // the next invocation), and its init_failed line counts as unavailable.
    let runtime = FakeRuntime::start();
    let missing = dir.join("missing.db");
    let failed = Trigger::spawn(
        &runtime,
        &[
            ("COGNITO_MIGRATE_DIRECTORY", missing.to_str().unwrap()),
            ("RUST_LOG", "info"),
        ],
        &dir.join("init-failed.log"),
    );
    assert!(runtime.init_error(WAIT).is_some(), "{}", failed.log());
    let deadline = std::time::Instant::now() + WAIT;
    while !failed.log().contains("error: ") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let init_lines: Vec<String> = failed.log().lines().map(str::to_string).collect();
    let init_json: Vec<&String> = init_lines.iter().filter(|l| l.starts_with('{')).collect();
    assert_eq!(init_json.len(), 1, "{init_lines:#?}");
    let v: Value = serde_json::from_str(init_json[0]).unwrap();
    assert_eq!(v["event"], "cognito-migrate-trigger.init_failed", "{v}");
    assert_eq!(v["error_type"], "Runtime.LegacyDirectoryUnavailable", "{v}");
    lines.extend(init_lines);

    // The invocation lines are bare JSON objects; the other lines (cold start) are not JSON.
    let invocation_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("{\"event\":\"cognito-migrate-trigger.invocation\""))
        .collect();
    assert_eq!(invocation_lines.len(), 10, "{lines:#?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with('{')).count(),
        11,
        "the invocation lines and the init_failed line are the only JSON lines: {lines:#?}"
    );
    assert!(
        lines.len() > invocation_lines.len(),
        "the cold-start lines: {lines:#?}"
    );
    for (i, l) in invocation_lines.iter().enumerate() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!(v["event"], "cognito-migrate-trigger.invocation", "{l}");
        assert_eq!(v["directory"], "file", "{l}");
        // The first invocation of each of the two processes is its cold start.
        assert_eq!(v["cold_start"], i == 0 || i == events.len(), "{l}");
    }
    for secret in [
        BCRYPT4_PASSWORD,
        "wrong horse",
        "alice",
        "mallory",
        "nobody",
    ] {
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "a line shows {secret:?}: {lines:#?}"
        );
    }

    let filters = metric_filters(&template(TRIGGER_TEMPLATE));
    let published = published(&filters, &lines);
    assert_eq!(count(&published, "Invocations"), 10, "{published:#?}");
    assert_eq!(count(&published, "Migrated"), 2, "{published:#?}");
    assert_eq!(count(&published, "Declined"), 6, "{published:#?}");
    assert_eq!(
        count(&published, "LegacyDirectoryUnavailable"),
        3,
        "two answers and a failed start: {published:#?}"
    );
    assert_eq!(sum(&published, "Migrated"), 2.0);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (value, dims) in &published["DeclinedByReason"] {
        assert_eq!(*value, 1.0);
        *reasons.entry(dims[0].clone()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("wrong_password", 2),
        ("unknown_user", 1),
        ("disabled", 1),
        ("malformed_event", 1),
        ("wrong_user_pool", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(reasons, expected);
    // Durations: one value per invocation, in milliseconds, as the binary measured them.
    let durations: Vec<f64> = published["Duration"].iter().map(|(v, _)| *v).collect();
    assert_eq!(durations.len(), 10);
    assert!(
        durations.iter().all(|d| (0.0..5_000.0).contains(d)),
        "{durations:?}"
    );
    // Every metric the template's alarms and dashboard use is published by a filter.
    assert_eq!(
        filters
            .values()
            .map(|f| f.metric.as_str())
            .collect::<BTreeSet<_>>(),
        [
            "DeclinedByReason",
            "Declined",
            "Duration",
            "Invocations",
            "LegacyDirectoryUnavailable",
            "Migrated"
        ]
        .into_iter()
        .collect()
    );
}

/// `${Name}` and `${Resource.Attr}` of a `Fn::Sub` string replaced by a placeholder.
fn substitute(text: &str, values: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let name = &rest[start + 2..end];
        out.push_str(values.get(name).copied().unwrap_or("placeholder"));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_trigger_dashboard_is_json_and_shows_only_published_metrics_and_its_alarms() {
    let t = template(TRIGGER_TEMPLATE);
    let dashboards = resources_of_type(&t, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1);
    let body = dashboards[0].1["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("DashboardBody is a !Sub string");
    let values: BTreeMap<&str, &str> = [
        ("AWS::Region", "us-east-1"),
        ("MetricNamespace", "CognitoMigrate/Trigger"),
        ("ErrorRateThresholdPercent", "50"),
        ("LogGroup", "/aws/lambda/cognito-migrate-trigger"),
    ]
    .into();
    let body: Value = serde_json::from_str(&substitute(body, &values))
        .unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}"));
    let published: BTreeSet<String> = metric_filters(&t).into_values().map(|f| f.metric).collect();
    let mut shown = BTreeSet::new();
    let mut alarms = Vec::new();
    for w in body["widgets"].as_array().unwrap() {
        for m in w["properties"]["metrics"].as_array().into_iter().flatten() {
            let m = m.as_array().unwrap();
            if let Some(ns) = m[0].as_str() {
                assert_eq!(ns, "CognitoMigrate/Trigger");
                shown.insert(m[1].as_str().unwrap().to_string());
            } else {
                let expression = m[0]["expression"].as_str().unwrap();
                if expression.starts_with("SEARCH(") {
                    assert!(expression.contains("DeclinedByReason"), "{expression}");
                    shown.insert("DeclinedByReason".to_string());
                }
            }
        }
        alarms.extend(w["properties"]["alarms"].as_array().into_iter().flatten());
    }
    assert_eq!(shown, published, "shown vs published metrics");
    assert_eq!(alarms.len(), 2, "the alarm widget lists both alarms");
    // The alarms watch metrics the filters publish.
    for (name, alarm) in resources_of_type(&t, "AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        let metrics: Vec<&str> = match p["MetricName"].as_str() {
            Some(m) => vec![m],
            None => p["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|m| m["MetricStat"]["Metric"]["MetricName"].as_str())
                .collect(),
        };
        assert!(!metrics.is_empty(), "{name}");
        for m in metrics {
            assert!(
                published.contains(m),
                "{name} watches {m}, which no filter publishes"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The sync's template against the agreed summary line.

/// A summary line as `sync` prints it (the interface agreed for issue #17; the lead adds a test
/// on the real sync's output at merge).
fn summary(outcome: &str, exit_code: i32, counts: &[(&str, u64)]) -> String {
    let mut v = json!({
        "event": "cognito-migrate.sync", "version": 1, "pool_id": "us-east-1_AbCdEf123",
        "plan": false, "full": false, "outcome": outcome, "exit_code": exit_code,
        "records": 1000, "rejected": 0, "unchanged": 1000, "created": 0, "updated": 0,
        "disabled": 0, "enabled": 0, "deleted": 0, "group_adds": 0, "group_removes": 0,
        "failed": 0, "staged_removals": 0, "duration_ms": 8123
    });
    for (k, n) in counts {
        assert!(v.get(*k).is_some(), "{k} is not a member of the summary");
        v[*k] = json!(n);
    }
    v.to_string()
}

#[test]
fn the_sync_templates_metric_filters_count_the_summary_line() {
    let lines = vec![
        // 0: nothing to do
        summary("ok", 0, &[]),
        // 1: changes written
        summary("ok", 0, &[("created", 5), ("updated", 7), ("disabled", 2)]),
        // 2: some users failed
        summary("failed_users", 1, &[("failed", 3), ("updated", 10)]),
        // 3: rejected records
        summary("rejected", 1, &[("rejected", 4)]),
        // 4: the brake held removals back
        summary(
            "removals_staged",
            7,
            &[("staged_removals", 120), ("failed", 1)],
        ),
        // 5: fatal
        summary("fatal", 3, &[("duration_ms", 1500)]),
        // 6: refused: the state's lease is held by a run still going (not a failure)
        summary(
            "fatal",
            4,
            &[("records", 0), ("unchanged", 0), ("duration_ms", 90)],
        ),
        // Not summary lines: progress, a warning, a JSON line of another kind.
        "sync: 250000 records read".to_string(),
        "WARN throttled, rate cut to 22.5/s".to_string(),
        r#"{"event":"cognito-migrate.other","failed":9,"outcome":"fatal","staged_removals":3}"#
            .to_string(),
    ];
    let mut plan =
        serde_json::from_str::<Value>(&summary("changes_pending", 6, &[("created", 5)])).unwrap();
    plan["plan"] = json!(true);
    let mut lines = lines;
    // 9: a --plan run
    lines.push(plan.to_string());

    let filters = metric_filters(&template(SYNC_TEMPLATE));
    let published = published(&filters, &lines);
    assert_eq!(count(&published, "Runs"), 8, "{published:#?}");
    assert_eq!(count(&published, "FatalRuns"), 1, "{published:#?}");
    assert_eq!(count(&published, "BusyRuns"), 1, "{published:#?}");
    assert_eq!(count(&published, "FailedUsers"), 2, "{published:#?}");
    assert_eq!(sum(&published, "FailedUsers"), 4.0);
    assert_eq!(count(&published, "RejectedRecords"), 1);
    assert_eq!(sum(&published, "RejectedRecords"), 4.0);
    assert_eq!(count(&published, "StagedRemovals"), 1);
    assert_eq!(sum(&published, "StagedRemovals"), 120.0);
    // Durations of real runs only (a plan writes nothing).
    let durations: Vec<f64> = published["Duration"].iter().map(|(v, _)| *v).collect();
    assert_eq!(
        durations,
        [8123.0, 8123.0, 8123.0, 8123.0, 8123.0, 1500.0, 90.0]
    );
    // Every alarm on a filter's metric watches a metric a filter publishes.
    let t = template(SYNC_TEMPLATE);
    let names: BTreeSet<String> = filters.into_values().map(|f| f.metric).collect();
    for (name, alarm) in resources_of_type(&t, "AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        if p["Namespace"] == "AWS/SQS" {
            continue;
        }
        let m = p["MetricName"].as_str().unwrap();
        assert!(
            names.contains(m),
            "{name} watches {m}, which no filter publishes"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// cfn-lint, the task role, the image.

#[test]
fn both_templates_pass_cfn_lint_without_a_warning() {
    let out = Command::new(venv_bin("cfn-lint"))
        .arg("--format")
        .arg("parseable")
        .arg(repo_root().join(TRIGGER_TEMPLATE))
        .arg(repo_root().join(SYNC_TEMPLATE))
        .output()
        .expect("run cfn-lint");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 0: no error, warning or informational finding (2, 4 and 8 are those bits).
    assert_eq!(out.status.code(), Some(0), "cfn-lint:\n{text}");
    assert!(text.trim().is_empty(), "cfn-lint:\n{text}");
}

/// The `cognito-idp:` actions of every statement of the sync's task role, whatever its condition.
fn task_role_actions(t: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(a) = m.get("Action") {
                    let actions = match a {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(xs) => {
                            xs.iter().map(|x| x.as_str().unwrap().to_string()).collect()
                        }
                        _ => vec![],
                    };
                    out.extend(
                        actions
                            .into_iter()
                            .filter_map(|a| a.strip_prefix("cognito-idp:").map(str::to_string)),
                    );
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(xs) => xs.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(
        &t["Resources"]["TaskRole"]["Properties"]["Policies"],
        &mut out,
    );
    out
}

/// `admin_create_user` → `AdminCreateUser`; the SDK's one irregular name.
fn action_of(method: &str) -> String {
    if method == "get_csv_header" {
        return "GetCSVHeader".to_string();
    }
    method
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_sync_task_role_allows_every_cognito_call_of_the_writers_and_the_readme_lists_it() {
    let t = template(SYNC_TEMPLATE);
    let granted = task_role_actions(&t);
    let expected: BTreeSet<String> = [
        "GetCSVHeader",
        "DescribeUserPool",
        "ListUsers",
        "ListUsersInGroup",
        "ListGroups",
        "ListIdentityProviders",
        "AdminGetUser",
        "AdminListGroupsForUser",
        "AdminLinkProviderForUser",
        "AdminCreateUser",
        "AdminUpdateUserAttributes",
        "AdminDeleteUserAttributes",
        "AdminDisableUser",
        "AdminEnableUser",
        "AdminDeleteUser",
        "AdminAddUserToGroup",
        "AdminRemoveUserFromGroup",
        // New users with federated identities are linked; the pool's providers are read first.
        "AdminLinkProviderForUser",
        "ListIdentityProviders",
        "CreateGroup",
        "CreateUserImportJob",
        "StartUserImportJob",
        "DescribeUserImportJob",
        "StopUserImportJob",
        "ListUserImportJobs",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(granted, expected);

    // Every Cognito call in src/ that a sync can reach is granted. Not reachable from sync:
    // preflight (its own command), the trigger (its own role, in its own template), and the
    // cognito source (it reads another pool; this template does not take that format).
    let mut files = Vec::new();
    rust_files(&repo_root().join("src"), &mut files);
    let mut called = BTreeSet::new();
    for file in files {
        let rel = file
            .strip_prefix(repo_root())
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.starts_with("src/preflight/")
            || rel.starts_with("src/trigger/")
            || rel == "src/source/cognito.rs"
            || rel.ends_with("tests.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Every `.method()` call without arguments, at the start of a line or after a receiver
        // (`c.admin_get_user()`).
        for (i, _) in text.match_indices("()") {
            let head = &text[..i];
            let start = head
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(0);
            if !head[start..].starts_with('.') {
                continue;
            }
            let method = &head[start + 1..];
            let cognito = method.starts_with("admin_")
                || method.ends_with("_user_import_job")
                || method.ends_with("_user_import_jobs")
                || [
                    "list_users",
                    "list_users_in_group",
                    "list_groups",
                    "list_identity_providers",
                    "create_group",
                    "describe_user_pool",
                    "get_csv_header",
                ]
                .contains(&method);
            if cognito {
                called.insert((action_of(method), rel.clone()));
            }
        }
    }
    assert!(
        called.iter().any(|(a, _)| a == "AdminCreateUser"),
        "the scan found no Cognito call: {called:?}"
    );
    for (action, file) in &called {
        assert!(
            granted.contains(action),
            "{file} calls {action}, which the sync's task role does not grant"
        );
    }

    // The README's IAM table names each of them for `sync`.
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `sync`"))
        .expect("a `sync` row in the README's IAM table");
    for action in &expected {
        assert!(
            row.contains(&format!("`{action}`")),
            "the README's sync row lacks {action}: {row}"
        );
    }
}

#[test]
fn the_sync_image_builds_locked_in_stages_and_runs_as_a_non_root_user() {
    let dockerfile = std::fs::read_to_string(repo_root().join("deploy/sync/Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = instructions
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "a builder and a runtime stage: {froms:?}");
    assert!(
        froms[0].starts_with("FROM rust:") && froms[0].ends_with("-slim-bookworm AS builder"),
        "{}",
        froms[0]
    );
    assert!(
        froms[1].contains("distroless/cc-debian12") && froms[1].ends_with(" AS runtime"),
        "the runtime is the builder's Debian (12, bookworm): {}",
        froms[1]
    );
    // The builder's Rust is at least the crate's rust-version.
    let arg = instructions
        .iter()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION");
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    let minor = |v: &str| v.split('.').nth(1).unwrap().parse::<u32>().unwrap();
    assert!(
        minor(arg) >= minor(msrv),
        "Rust {arg} < rust-version {msrv}"
    );
    // Built with the lockfile, the CLI only.
    let build = dockerfile
        .lines()
        .find(|l| l.contains("cargo build"))
        .unwrap();
    assert!(
        build.contains("--release")
            && build.contains("--locked")
            && build.contains("--bin cognito-migrate"),
        "{build}"
    );
    // The runtime stage: a numeric non-root USER, the CLI as entrypoint.
    let runtime: Vec<&str> = instructions
        .iter()
        .copied()
        .skip_while(|l| !l.ends_with(" AS runtime"))
        .collect();
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER in the runtime stage");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric uid");
    assert_ne!(uid, 0, "USER is root");
    assert!(runtime.contains(&r#"ENTRYPOINT ["cognito-migrate"]"#));
    // The build context: only what the COPY lines need (no target/, .venv/, states or fixtures).
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rules[0], "*", "everything is excluded first");
    let allowed: BTreeSet<&str> = rules[1..]
        .iter()
        .map(|r| r.strip_prefix('!').expect("only re-inclusions after *"))
        .collect();
    assert_eq!(
        allowed,
        ["Cargo.toml", "Cargo.lock", "src/"].into_iter().collect()
    );
    for copy in instructions
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let sources: Vec<&str> = copy.split_whitespace().skip(1).collect();
        for source in &sources[..sources.len() - 1] {
            let source = source.trim_end_matches('/');
            assert!(
                allowed.contains(source) || allowed.contains(format!("{source}/").as_str()),
                "{copy}: {source} is not in the build context"
            );
        }
    }
}

/// Every flag the sync task's command line passes exists in `cognito-migrate sync --help`, and
/// the S3 state is taken with `--break-lock` (a task killed past its stop timeout leaves its lease
/// behind; without the flag every later run would exit 4 until someone broke it by hand).
#[test]
fn the_sync_tasks_command_line_uses_only_flags_sync_has() {
    let text = std::fs::read_to_string(repo_root().join(SYNC_TEMPLATE)).unwrap();
    let start = text
        .find("!Sub \"sync|")
        .expect("the sync container's command");
    let end = start
        + text[start..]
            .find("DependsOn")
            .expect("the end of the command");
    let command = &text[start..end];
    let flags: BTreeSet<&str> = command
        .match_indices("|--")
        .map(|(i, _)| {
            let rest = &command[i + 1..];
            let n = rest[2..]
                .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
                .map_or(rest.len(), |n| n + 2);
            &rest[..n]
        })
        .collect();
    for f in [
        "--input",
        "--format",
        "--pool-id",
        "--state",
        "--break-lock",
        "--mode",
        "--on-missing",
        "--mapping",
        "--max-removals",
        "--role-arn",
        "--create-groups",
    ] {
        assert!(flags.contains(f), "the command lacks {f}: {flags:?}");
    }
    let (code, help, err) = crate::common::run_cli(&["sync", "--help"], &[]);
    assert_eq!(code, 0, "{err}");
    for f in &flags {
        assert!(
            help.contains(&format!("{f} ")) || help.contains(&format!("{f}\n")),
            "sync --help has no {f}"
        );
    }
}
