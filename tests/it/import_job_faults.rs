//! `run --mode import-job` against the emulator when things go wrong: the presigned URL expired
//! before the upload, another (foreign) import job is active, a job ends Failed (with and without
//! `--fetch-job-logs`), and a file over the per-file limits.

use std::time::{Duration, Instant};

use crate::common::import_job::*;
use crate::common::Emulator;
use serde_json::json;

/// The upload reaches S3 after the URL expired (403 "Request has expired"): the chunk gets a new
/// job and the users are imported exactly once.
#[tokio::test]
async fn an_expired_upload_url_gets_a_new_job_and_imports_once() {
    let emu = Emulator::start();
    fast(&emu);
    let c = client(&emu).await;
    let pool = pool(&c, "cm-expired").await;
    let dir = tempdir("ij-expired");
    let input = write_users(&dir, "e", 12, false);
    let state = dir.join("state.db");
    // The first job's URL lives 8 s (past the tool's 5 s safety margin) and its upload is held
    // 10 s by the emulator before it is looked at: S3 refuses it as expired.
    emu.control(
        "/_emulator/config",
        json!({"presign_expiry_seconds": 8,
               "faults": {"rules": {"ImportUpload": {"delay_ms": 10000}}}}),
    );
    let args = run_args(&input, &pool, &state);
    let cli = {
        let env = env(&emu, &[]);
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::common::run_cli(&args, &env)
        })
    };
    // Once the first upload is being held, later jobs get a normal URL and no delay.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, stats) = emu.get_json("/_emulator/stats");
        if stats["operations"]["ImportUpload"]["calls"]
            .as_u64()
            .unwrap_or(0)
            >= 1
        {
            break;
        }
        assert!(Instant::now() < deadline, "no upload within 30 s: {stats}");
        std::thread::sleep(Duration::from_millis(50));
    }
    emu.control(
        "/_emulator/config",
        json!({"presign_expiry_seconds": 900, "faults": {"rules": {}}}),
    );
    let (code, _stdout, stderr) = cli.join().unwrap();
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stderr.contains("can no longer take the file"), "{stderr}");
    assert!(
        !stderr.contains("X-Amz-Signature"),
        "no presigned URL in output: {stderr}"
    );

    let jobs = jobs(&emu);
    assert_eq!(
        jobs.len(),
        2,
        "the expired job and its replacement: {jobs:?}"
    );
    assert_eq!(jobs[0]["Status"], json!("Created"), "{:?}", jobs[0]);
    assert_eq!(
        jobs[0]["UploadedBytes"].as_u64().unwrap_or(0),
        0,
        "{:?}",
        jobs[0]
    );
    assert_eq!(jobs[1]["Status"], json!("Succeeded"), "{:?}", jobs[1]);
    assert_eq!(jobs[1]["ImportedUsers"], json!(12));

    let expected: Vec<String> = (0..12).map(|i| username("e", i)).collect();
    assert_pool_holds(&c, &pool, &expected, "after an expired URL").await;
    let st = emu.status(&state).1;
    assert_eq!(
        (
            n(&st, "total"),
            n(&st, "imported"),
            n(&st, "pending"),
            n(&st, "unknown")
        ),
        (12, 12, 0, 0),
        "{st}"
    );
    let chunks = st["jobs"].as_array().unwrap();
    assert_eq!(chunks.len(), 2, "{st}");
    assert_eq!(chunks[0]["status"], json!("expired"), "{st}");
    assert_eq!(chunks[1]["status"], json!("succeeded"), "{st}");
    // The chunk-level settling of state schema V2 is visible too.
    assert_eq!(chunks[1]["settled_outcome"], json!("imported"), "{st}");
    assert!(
        chunks[1]["settled_at"].as_i64().is_some_and(|ms| ms > 0),
        "{st}"
    );
    assert!(
        chunks[1]["attempts"].as_u64().is_some_and(|a| a >= 1),
        "{st}"
    );
}

/// Another import job (not ours) is running: the run says it waits, waits, then imports.
#[tokio::test]
async fn a_foreign_active_job_is_waited_for() {
    let emu = Emulator::start();
    emu.control(
        "/_emulator/config",
        json!({"import_rows_per_second": 10.0, "import_pending_delay_seconds": 0.05}),
    );
    let c = client(&emu).await;
    let pool = pool(&c, "cm-active").await;
    // The foreign job: 30 rows at 10 rows/s, about 3 s.
    let header = c.get_csv_header().user_pool_id(&pool).send().await.unwrap();
    let row = |u: &str| {
        header
            .csv_header()
            .iter()
            .map(|col| match col.as_str() {
                "cognito:username" => u.to_string(),
                "email" => format!("{u}@example.com"),
                "email_verified" => "true".into(),
                "cognito:mfa_enabled" => "false".into(),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut file = header.csv_header().join(",") + "\n";
    for i in 0..30 {
        file += &(row(&format!("foreign{i}")) + "\n");
    }
    let job = c
        .create_user_import_job()
        .user_pool_id(&pool)
        .job_name("someone-else")
        .cloud_watch_logs_role_arn(ROLE)
        .send()
        .await
        .unwrap();
    let job = job.user_import_job().unwrap();
    let put = reqwest::Client::new()
        .put(job.pre_signed_url().unwrap())
        .header("x-amz-server-side-encryption", "aws:kms")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    c.start_user_import_job()
        .user_pool_id(&pool)
        .job_id(job.job_id().unwrap())
        .send()
        .await
        .unwrap();

    let dir = tempdir("ij-active");
    let input = write_users(&dir, "a", 8, false);
    let state = dir.join("state.db");
    let (code, _stdout, stderr) = run(&emu, &run_args(&input, &pool, &state), &[]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(
        stderr.contains("another import job is active in this account"),
        "the run must say why it waits: {stderr}"
    );
    let jobs = jobs(&emu);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(
        jobs[0]["Status"],
        json!("Succeeded"),
        "the foreign job ran to its end"
    );
    assert_eq!(jobs[1]["Status"], json!("Succeeded"));
    assert_eq!(jobs[1]["ImportedUsers"], json!(8));
    // Ours started only after the foreign one had ended.
    assert!(
        jobs[1]["StartDate"].as_f64().unwrap() >= jobs[0]["CompletionDate"].as_f64().unwrap(),
        "{jobs:?}"
    );
    let mut expected: Vec<String> = (0..8).map(|i| username("a", i)).collect();
    expected.extend((0..30).map(|i| format!("foreign{i}")));
    assert_pool_holds(&c, &pool, &expected, "after waiting").await;
    let st = emu.status(&state).1;
    assert_eq!((n(&st, "imported"), n(&st, "pending")), (8, 0), "{st}");
}

/// Creates `existing` of the input's users in the pool beforehand so that the job skips them:
/// with more than half skipped, the emulator ends the job Failed ("Too many users have failed or
/// been skipped during the import.").
async fn precreate(c: &aws_sdk_cognitoidentityprovider::Client, pool: &str, users: &[String]) {
    for u in users {
        c.admin_create_user()
            .user_pool_id(pool)
            .username(u)
            .send()
            .await
            .unwrap();
    }
}

/// A Failed job with skipped and failed rows: without `--fetch-job-logs` its users are honestly
/// `unknown` (counts only) and the run exits 1; running again with `--fetch-job-logs` (a resume)
/// reads the job's log and records each user's result and reason.
#[tokio::test]
async fn a_failed_job_is_reported_per_user_with_its_log() {
    let emu = Emulator::start();
    fast(&emu);
    let c = client(&emu).await;
    let pool = pool(&c, "cm-failed").await;
    let dir = tempdir("ij-failed");
    // 10 users: 0..5 exist already (skipped), the job fails the rows of 5 and 6 (the emulator's
    // injected row failures; 6's reason quotes a hash, which must not be stored), 7..9 are imported.
    let input = write_users(&dir, "f", 10, false);
    emu.control(
        "/_emulator/config",
        json!({"import_row_failures": {
            username("f", 5): "The User Record does not set any of the auto verified attributes to true.",
            username("f", 6): "The password_hash value $2b$13$abcdefghijklmnopqrstuu5Qe0rS1eG8dWl1Yv2rT0Nq5yK7pB9m is not a valid BCRYPT hash.",
        }}),
    );
    let existing: Vec<String> = (0..5).map(|i| username("f", i)).collect();
    precreate(&c, &pool, &existing).await;
    let state = dir.join("state.db");
    let args = run_args(&input, &pool, &state);

    let (code, _stdout, stderr) = run(&emu, &args, &[]);
    assert_eq!(
        code, 1,
        "users of a failed job are not known to be migrated: {stderr}"
    );
    let jobs = jobs(&emu);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["Status"], json!("Failed"), "{:?}", jobs[0]);
    let st = emu.status(&state).1;
    let routed = n(&st, "total") - n(&st, "rejected");
    assert_eq!(
        n(&st, "unknown"),
        routed,
        "counts only, every user unknown: {st}"
    );
    assert_eq!(n(&st, "pending"), 0, "{st}");
    let chunk = &st["jobs"][0];
    assert_eq!(chunk["status"], json!("failed"), "{st}");
    let counts = &chunk["counts"];
    let (imp, skip, fail) = (
        counts["imported"].as_u64().unwrap(),
        counts["skipped"].as_u64().unwrap(),
        counts["failed"].as_u64().unwrap(),
    );
    assert_eq!(imp + skip + fail, routed, "{st}");

    // The same command with --fetch-job-logs resumes and reads the log.
    let mut with_logs = args.clone();
    with_logs.push("--fetch-job-logs".into());
    let (code, _stdout, stderr) = run(&emu, &with_logs, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("result lines from the job's CloudWatch log"),
        "{stderr}"
    );
    assert_eq!(jobs_len(&emu), 1, "resuming starts no new job");
    let st = emu.status(&state).1;
    assert_eq!(n(&st, "unknown"), 0, "{st}");
    assert_eq!(
        (n(&st, "imported"), n(&st, "skipped"), n(&st, "failed")),
        (imp, skip, fail),
        "per-user results add up to the job's counts: {st}"
    );
    assert_eq!((imp, skip, fail), (3, 5, 2), "{st}");

    // The report names each failed/skipped user with Cognito's reason, never a hash.
    let report = dir.join("failed.csv");
    let (_code, _o, stderr) = crate::common::report_failed(&state, &report, &emu.cli_env());
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert!(!text.contains("$2b$"), "{text}");
    for (i, why) in [(5, "auto verified"), (6, "not a valid BCRYPT hash")] {
        let line = text
            .lines()
            .find(|l| l.contains(&username("f", i)))
            .unwrap_or_else(|| panic!("user {i} is reported: {text}"));
        assert!(line.contains(why), "{line}");
        assert!(line.contains("import_failed"), "{line}");
    }
    // The pool holds each user once: the existing ones and those the job imported.
    let users = pool_usernames(&c, &pool).await;
    assert!(users.values().all(|k| *k == 1), "{users:?}");
    assert_eq!(users.len() as u64, 5 + imp, "{users:?}");
}

fn jobs_len(emu: &Emulator) -> usize {
    jobs(emu).len()
}

/// A file over the per-file limits: Cognito (here the emulator with a 4-user limit) fails the job
/// without processing a row; the run splits the chunk into smaller files until they fit, and
/// every user is imported once. With the tool's own limit lowered, it splits before creating any
/// job.
#[tokio::test]
async fn a_chunk_over_the_limits_is_split() {
    let emu = Emulator::start();
    fast(&emu);
    emu.control("/_emulator/config", json!({"max_file_users": 4}));
    let c = client(&emu).await;
    let pool = pool(&c, "cm-limits").await;
    let dir = tempdir("ij-limits");
    let input = write_users(&dir, "l", 10, false);
    let state = dir.join("state.db");
    let (code, _stdout, stderr) = run(&emu, &run_args(&input, &pool, &state), &[]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stderr.contains("split into smaller files"), "{stderr}");
    let all = jobs(&emu);
    assert!(
        all[0]["Status"] == json!("Failed")
            && all[0]["CompletionMessage"]
                .as_str()
                .unwrap()
                .contains("the maximum is 4"),
        "{all:?}"
    );
    let succeeded: Vec<_> = all
        .iter()
        .filter(|j| j["Status"] == json!("Succeeded"))
        .collect();
    let imported: u64 = succeeded
        .iter()
        .map(|j| j["ImportedUsers"].as_u64().unwrap())
        .sum();
    assert_eq!(imported, 10, "{all:?}");
    let expected: Vec<String> = (0..10).map(|i| username("l", i)).collect();
    assert_pool_holds(&c, &pool, &expected, "after splitting").await;
    let st = emu.status(&state).1;
    assert_eq!(
        (n(&st, "imported"), n(&st, "pending"), n(&st, "failed")),
        (10, 0, 0),
        "{st}"
    );
    let files = std::fs::read_dir(dir.join("state.db.files"))
        .unwrap()
        .count();
    assert_eq!(files, 0, "every import file is deleted after its job");

    // The tool's own limit: 3 users per file, split before any job is created.
    emu.control("/_emulator/reset", json!({}));
    fast(&emu);
    let pool = crate::common::import_job::pool(&c, "cm-limits-2").await;
    let state = dir.join("state2.db");
    let (code, _stdout, stderr) = run(
        &emu,
        &run_args(&input, &pool, &state),
        &[("COGNITO_MIGRATE_MAX_FILE_USERS", "3")],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let all = jobs(&emu);
    assert!(all.len() >= 4, "{all:?}");
    assert!(
        all.iter().all(|j| j["Status"] == json!("Succeeded")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .all(|j| j["ImportedUsers"].as_u64().unwrap() <= 3),
        "{all:?}"
    );
    assert_pool_holds(&c, &pool, &expected, "after splitting before the jobs").await;
}
