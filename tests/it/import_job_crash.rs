//! Crash safety of `run --mode import-job`: the CLI is killed with SIGKILL at every step boundary
//! of the import-job writer (through the testing hook `COGNITO_MIGRATE_TEST_KILL_AT`, see
//! `src/testing_hook.rs`) and at random moments, then the same command is run
//! again. Each time the pool must end with exactly the input's users, each once, and `status`
//! must add up.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::import_job::*;
use crate::common::Emulator;
use serde_json::json;

const USERS: usize = 15;

/// The points, in the order the writer passes them (see the testing hook's table).
const POINTS: [&str; 12] = [
    // While reading: users committed into chunks still `writing` (one transaction per user
    // message, see `COGNITO_MIGRATE_TEST_CHUNK_COMMIT_ROWS` below), before their files are done.
    "chunk-writing",
    "create-sent",
    "created",
    "upload-sent",
    "uploaded",
    "start-sent",
    "started",
    "polling",
    "finished",
    "settled",
    // The second chunk (the input has two routes: bcrypt hashes and none).
    "created#2",
    "finished#2",
];

fn expected() -> Vec<String> {
    (0..USERS).map(|i| username("k", i)).collect()
}

/// After the final (unkilled) run: exit 0, the pool holds each user once, status adds up.
async fn check_end(
    emu: &Emulator,
    c: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    state: &std::path::Path,
    context: &str,
) {
    assert_pool_holds(c, pool, &expected(), context).await;
    let st = emu.status(state).1;
    assert_eq!(n(&st, "total"), USERS as u64, "{context}: {st}");
    assert_eq!(n(&st, "pending"), 0, "{context}: {st}");
    assert_eq!(n(&st, "unknown"), 0, "{context}: {st}");
    assert_eq!(n(&st, "failed"), 0, "{context}: {st}");
    // Every user is in the pool; a user imported by a job whose end was not seen before the
    // crash is still `imported` (the resumed run polls that same job).
    assert_eq!(
        n(&st, "imported") + n(&st, "skipped"),
        USERS as u64,
        "{context}: {st}"
    );
    assert_eq!(
        n(&st, "imported"),
        USERS as u64,
        "{context}: no job ran twice: {st}"
    );
    // Each chunk ended in exactly one succeeded job.
    let jobs = jobs(emu);
    assert_eq!(jobs.len(), 2, "{context}: one job per chunk: {jobs:?}");
    let succeeded = jobs
        .iter()
        .filter(|j| j["Status"] == json!("Succeeded"))
        .count();
    assert_eq!(succeeded, 2, "{context}: {jobs:?}");
    let started = jobs.iter().filter(|j| j["StartDate"].is_number()).count();
    assert_eq!(
        started, 2,
        "{context}: a chunk's job was never started twice: {jobs:?}"
    );
}

#[tokio::test]
async fn killed_at_each_step_boundary_then_resumed() {
    let emu = Emulator::start();
    let c = client(&emu).await;
    let dir = tempdir("ij-crash-steps");
    let input = write_users(&dir, "k", USERS, true);
    // CRASH_POINTS=a,b runs only those points (to replay one).
    let only = std::env::var("CRASH_POINTS").unwrap_or_default();
    for point in POINTS {
        if !only.is_empty() && !only.split(',').any(|p| p == point) {
            continue;
        }
        eprintln!("kill at {point}");
        emu.control("/_emulator/reset", json!({}));
        fast(&emu);
        let pool = pool(&c, "cm-crash").await;
        let state = dir.join(format!("{}.db", point.replace('#', "-")));
        let args = run_args(&input, &pool, &state);
        let (code, _o, stderr) = run(
            &emu,
            &args,
            &[
                ("COGNITO_MIGRATE_TEST_KILL_AT", point),
                ("COGNITO_MIGRATE_TEST_CHUNK_COMMIT_ROWS", "1"),
            ],
        );
        assert_eq!(code, -1, "{point}: the run must die by SIGKILL: {stderr}");
        assert!(stderr.contains("testing hook"), "{point}: {stderr}");
        if point == "chunk-writing" {
            // The users recorded into chunks still writing count nowhere, and no job exists.
            let st = emu.status(&state).1;
            assert_eq!(n(&st, "total"), 0, "{point}: {st}");
            assert!(jobs(&emu).is_empty(), "{point}");
        }
        let (code, _o, stderr) = run(&emu, &args, &[]);
        assert_eq!(code, 0, "{point}: the resumed run: {stderr}");
        assert!(stderr.contains("resuming run"), "{point}: {stderr}");
        check_end(&emu, &c, &pool, &state, point).await;
        // A third run finds nothing to do and changes nothing.
        let before = jobs(&emu).len();
        let (code, _o, stderr) = run(&emu, &args, &[]);
        assert_eq!(code, 0, "{point}: {stderr}");
        assert_eq!(
            jobs(&emu).len(),
            before,
            "{point}: no new job after the end"
        );
    }
}

/// A tiny xorshift generator: the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test]
async fn killed_at_random_moments_then_resumed() {
    let emu = Emulator::start();
    let c = client(&emu).await;
    let dir = tempdir("ij-crash-random");
    let input = write_users(&dir, "k", USERS, true);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("random kills: CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    for round in 0..6 {
        emu.control("/_emulator/reset", json!({}));
        // Slower jobs so that kills land in every phase, polling included.
        emu.control(
            "/_emulator/config",
            json!({"import_rows_per_second": 20.0, "import_pending_delay_seconds": 0.1}),
        );
        let pool = pool(&c, "cm-crash-random").await;
        let state = dir.join(format!("random-{round}.db"));
        let args = run_args(&input, &pool, &state);
        let mut kills = 0;
        // Up to three kills per round, each after a random delay, then a run to the end.
        for _ in 0..3 {
            let delay = Duration::from_millis(rng.below(1500));
            // Chunk users committed per user message: kills also land in chunks still writing.
            let env = env(&emu, &[("COGNITO_MIGRATE_TEST_CHUNK_COMMIT_ROWS", "1")]);
            let mut child = crate::common::cli_command(&args, &env)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let began = Instant::now();
            let mut finished = false;
            while began.elapsed() < delay {
                if child.try_wait().unwrap().is_some() {
                    finished = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if finished {
                break;
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
        }
        let context = format!("round {round} (seed {seed}, {kills} kills)");
        let (code, _o, stderr) = run(&emu, &args, &[]);
        assert_eq!(code, 0, "{context}: the final run: {stderr}");
        check_end(&emu, &c, &pool, &state, &context).await;
    }
}
