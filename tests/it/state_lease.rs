//! One writer per state, signals and final advice, with real CLI processes against the emulator
//! (issue #14, findings 1 and 7): a second `run` on a state in use is refused at once with exit 4,
//! naming the holder, and makes no call; a lease left by a killed run is taken over; SIGTERM
//! stops a running import job like Ctrl-C and the same command resumes; a run given
//! --fetch-job-logs does not advise running again with it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::import_job::*;
use crate::common::Emulator;
use serde_json::{json, Value};

/// Starts `cognito-migrate` in the background, its stderr in `stderr_file`.
fn spawn(emu: &Emulator, args: &[String], stderr_file: &Path) -> Child {
    crate::common::cli_command(args, &env(emu, &[]))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr_file).unwrap())
        .spawn()
        .expect("start cognito-migrate")
}

/// Waits (at most 60 s) until `done` holds, failing with `what`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Calls per operation, from the emulator's counters.
fn calls(emu: &Emulator) -> BTreeMap<String, u64> {
    let stats = emu.stats();
    stats["operations"]
        .as_object()
        .map(|ops| {
            ops.iter()
                .map(|(op, v)| (op.clone(), v["calls"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The counters without the operations a running writer keeps calling.
fn calls_except(emu: &Emulator, busy: &[&str]) -> BTreeMap<String, u64> {
    let mut c = calls(emu);
    c.retain(|op, _| !busy.contains(&op.as_str()));
    c
}

/// Runs a second writer on the state held by `holder`: it must be refused at once (exit 4) with
/// the holder in its message, and make no call.
fn assert_refused(emu: &Emulator, args: &[String], holder: &Child, busy: &[&str]) {
    let before = calls_except(emu, busy);
    let started = Instant::now();
    let (code, stdout, stderr) = run(emu, args, &[]);
    let took = started.elapsed();
    assert_eq!(
        code, 4,
        "the second writer must be refused: {stdout}{stderr}"
    );
    assert!(
        stderr.contains("is in use by another run")
            && stderr.contains(&format!("pid {}", holder.id()))
            && stderr.contains("nothing was done"),
        "the message names the holder: {stderr}"
    );
    assert!(
        took < Duration::from_secs(5),
        "refused at once, not after {took:?}"
    );
    assert_eq!(
        calls_except(emu, busy),
        before,
        "the refused run called the emulator"
    );
}

#[tokio::test]
async fn admin_create_a_second_run_is_refused_and_a_killed_runs_lease_is_taken_over() {
    let emu = Emulator::start();
    let c = client(&emu).await;
    let pool = pool(&c, "cm-lease-admin").await;
    let dir = tempdir("lease-admin");
    let input = write_users(&dir, "a", 500, false);
    let state = dir.join("state.db");
    let mut args = run_args(&input, &pool, &state);
    let mode = args.iter().position(|a| a == "import-job").unwrap();
    args[mode] = "admin-create".into();
    args.extend(["--rate", "60", "--concurrency", "4"].map(String::from));

    let mut first = spawn(&emu, &args, &dir.join("first.stderr"));
    wait_for("the first run to create users", || {
        calls(&emu).get("AdminCreateUser").copied().unwrap_or(0) >= 30
    });
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run is still running"
    );
    let busy = ["AdminCreateUser", "AdminGetUser"];
    assert_refused(&emu, &args, &first, &busy);
    let retry = ["retry", "--state", state.to_str().unwrap()].map(String::from);
    assert_refused(&emu, &retry, &first, &busy);
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run is still running"
    );

    // Killed: the kernel drops its lock; the lock file still says who held it.
    let first_pid = first.id();
    first.kill().unwrap();
    first.wait().unwrap();
    let (code, stdout, stderr) = run(&emu, &args, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("taking over the lease") && stderr.contains(&format!("pid {first_pid}")),
        "the takeover is said: {stderr}"
    );
    let expected: Vec<String> = (0..500).map(|i| username("a", i)).collect();
    assert_pool_holds(&c, &pool, &expected, "after the takeover").await;
    let st = emu.status(&state).1;
    assert_eq!(n(&st, "total"), 500, "{st}");
    assert_eq!(n(&st, "pending") + n(&st, "failed"), 0, "{st}");
}

#[tokio::test]
async fn import_job_a_second_run_is_refused_and_sigterm_stops_the_job_then_it_resumes() {
    let emu = Emulator::start();
    let c = client(&emu).await;
    let pool = pool(&c, "cm-lease-import").await;
    // Slow processing, so that the job is still running while the test acts.
    emu.control(
        "/_emulator/config",
        json!({"import_rows_per_second": 20.0, "import_pending_delay_seconds": 0.05}),
    );
    let dir = tempdir("lease-import");
    let input = write_users(&dir, "i", 400, false);
    let state = dir.join("state.db");
    let args = run_args(&input, &pool, &state);

    let stderr_file = dir.join("first.stderr");
    let mut first = spawn(&emu, &args, &stderr_file);
    wait_for("the import job to run", || {
        jobs(&emu)
            .iter()
            .any(|j| j["Status"] == json!("InProgress"))
    });
    // The first run keeps polling DescribeUserImportJob; nothing else may move.
    assert_refused(&emu, &args, &first, &["DescribeUserImportJob"]);
    assert_eq!(jobs(&emu).len(), 1, "the refused run created no job");

    crate::common::sigterm(&first);
    let exit = first.wait().unwrap();
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert_eq!(
        exit.code(),
        Some(3),
        "SIGTERM ends the run like Ctrl-C, with exit 3 (run again to resume): {stderr}"
    );
    assert!(stderr.contains("interrupted (SIGTERM)"), "{stderr}");
    let all = jobs(&emu);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        all[0]["Status"],
        json!("Stopped"),
        "the job was stopped: {all:?}"
    );
    let st: Value = emu.status(&state).1;
    assert!(n(&st, "pending") > 0, "{st}");

    emu.control(
        "/_emulator/config",
        json!({"import_rows_per_second": 5000.0}),
    );
    // The users the stopped job imported are skipped by the next job: its log tells who.
    let mut resume = args.clone();
    resume.push("--fetch-job-logs".into());
    let (code, stdout, stderr) = run(&emu, &resume, &[]);
    assert_eq!(code, 0, "the same command resumes: {stdout}{stderr}");
    assert!(
        !stderr.contains("taking over"),
        "a run ended by a signal released its lease: {stderr}"
    );
    let expected: Vec<String> = (0..400).map(|i| username("i", i)).collect();
    assert_pool_holds(&c, &pool, &expected, "after SIGTERM and resume").await;
}

#[tokio::test]
async fn a_run_given_fetch_job_logs_does_not_advise_running_again_with_it() {
    let emu = Emulator::start();
    fast(&emu);
    let c = client(&emu).await;
    let pool = pool(&c, "cm-logs-advice").await;
    let dir = tempdir("logs-advice");
    let input = write_users(&dir, "l", 6, false);
    // One failed row: counts only, so the job's users are `unknown` without its log.
    emu.control(
        "/_emulator/config",
        json!({"import_row_failures": {username("l", 2): "Something is wrong with this row."}}),
    );
    let state = dir.join("state.db");
    let args = run_args(&input, &pool, &state);
    let (code, _, stderr) = run(&emu, &args, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("run again with --fetch-job-logs"),
        "without the flag, the advice is right: {stderr}"
    );

    // Resumed with the flag, but the log cannot be read: the users stay unknown, and the advice
    // must not be the flag just given.
    emu.control(
        "/_emulator/config",
        json!({"faults": {"rules": {"GetLogEvents": {"internal_error": 1.0}}}}),
    );
    let mut with_logs = args.clone();
    with_logs.push("--fetch-job-logs".into());
    let (code, _, stderr) = run(&emu, &with_logs, &[]);
    assert_eq!(code, 1, "{stderr}");
    let st = emu.status(&state).1;
    assert!(n(&st, "unknown") > 0, "{st}");
    assert!(
        !stderr.contains("run again with --fetch-job-logs"),
        "the flag was given: {stderr}"
    );
    assert!(stderr.contains("users are `unknown`"), "{stderr}");
}
