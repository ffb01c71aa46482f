//! `--state s3://bucket/key` against the emulator's S3 (issue #17, item 6): the emulator enforces
//! S3's conditional writes over HTTP (and atomically); a second writer is refused with exit 4
//! while the first runs and makes no Cognito call; `--break-lock` is refused on a live lease and
//! takes over an expired one; a run killed with SIGKILL resumes after its lease expired, each user
//! in the pool once; an upload over a state someone else wrote is refused and overwrites nothing;
//! a lease taken from under a holder is noticed; `status --state s3://…` reads the state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use cognito_migrate::state_store::{
    HeldState, LeaseRecord, StateLocation, StateOptions, StateStoreError,
};

use crate::common::import_job::{assert_pool_holds, client, env, n, pool, usernames, write_users};
use crate::common::{sigterm, tempdir, Emulator, TempDir};

const BUCKET: &str = "cm-state";

async fn s3(emu: &Emulator) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&emu.sdk_config().await)
        .force_path_style(true)
        .build();
    let c = aws_sdk_s3::Client::from_conf(conf);
    let _ = c.create_bucket().bucket(BUCKET).send().await;
    c
}

/// An emulator with the bucket, a pool `cm-{name}` and `total` users `prefix…` to migrate into it
/// with the state `s3://BUCKET/{key}`.
struct Migration {
    emu: Emulator,
    c: aws_sdk_cognitoidentityprovider::Client,
    s: aws_sdk_s3::Client,
    pool: String,
    dir: TempDir,
    input: PathBuf,
    state: String,
}

async fn migration(name: &str, prefix: &str, total: usize, key: &str) -> Migration {
    let emu = Emulator::start();
    let c = client(&emu).await;
    let s = s3(&emu).await;
    let pool = pool(&c, &format!("cm-{name}")).await;
    let dir = tempdir(name);
    let input = write_users(&dir, prefix, total, false);
    let state = format!("s3://{BUCKET}/{key}");
    Migration {
        emu,
        c,
        s,
        pool,
        dir,
        input,
        state,
    }
}

fn status_of<E>(e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0)
}

async fn object(c: &aws_sdk_s3::Client, key: &str) -> Option<(Vec<u8>, String)> {
    let out = c.get_object().bucket(BUCKET).key(key).send().await.ok()?;
    let etag = out.e_tag().unwrap_or_default().to_string();
    Some((out.body.collect().await.unwrap().to_vec(), etag))
}

/// Cognito calls per operation (S3 calls left out: a refused run reads the lease).
fn cognito_calls(emu: &Emulator) -> BTreeMap<String, u64> {
    emu.stats()["operations"]
        .as_object()
        .map(|ops| {
            ops.iter()
                .filter(|(op, _)| !op.starts_with("S3."))
                .map(|(op, v)| (op.clone(), v["calls"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn admin_run_args(input: &Path, pool: &str, state: &str) -> Vec<String> {
    [
        "run",
        "-i",
        input.to_str().unwrap(),
        "-f",
        "auth0",
        "--pool-id",
        pool,
        "--state",
        state,
        "--mode",
        "admin-create",
        "--rate",
        "60",
        "--concurrency",
        "4",
    ]
    .map(String::from)
    .to_vec()
}

fn spawn(emu: &Emulator, args: &[String], extra: &[(&'static str, &str)], stderr: &Path) -> Child {
    crate::common::cli_command(args, &env(emu, extra))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("start cognito-migrate")
}

fn run(emu: &Emulator, args: &[String], extra: &[(&'static str, &str)]) -> (i32, String, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::common::run_cli(&args, &env(emu, extra))
}

#[tokio::test]
async fn the_emulator_enforces_s3_conditional_writes_over_http_and_atomically() {
    let emu = Emulator::start();
    let c = s3(&emu).await;
    let put = |key: &str, body: &str| {
        c.put_object()
            .bucket(BUCKET)
            .key(key.to_string())
            .body(ByteStream::from(body.as_bytes().to_vec()))
    };
    let first = put("k", "1").if_none_match("*").send().await.unwrap();
    let etag1 = first.e_tag().unwrap().to_string();
    let e = put("k", "2").if_none_match("*").send().await.unwrap_err();
    assert_eq!(status_of(&e), 412, "If-None-Match: * on an existing key");
    let e = put("k", "2").if_match("\"0123\"").send().await.unwrap_err();
    assert_eq!(status_of(&e), 412, "a wrong If-Match ETag");
    let e = put("missing", "2")
        .if_match(&etag1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 404, "If-Match on a missing key is NoSuchKey");
    let second = put("k", "2").if_match(&etag1).send().await.unwrap();
    let etag2 = second.e_tag().unwrap().to_string();
    assert_ne!(etag1, etag2);
    assert_eq!(object(&c, "k").await.unwrap().0, b"2");
    let e = c
        .delete_object()
        .bucket(BUCKET)
        .key("k")
        .if_match(&etag1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 412, "DeleteObject with a stale If-Match");
    assert!(object(&c, "k").await.is_some(), "not deleted");
    c.delete_object()
        .bucket(BUCKET)
        .key("k")
        .if_match(&etag2)
        .send()
        .await
        .unwrap();
    assert!(object(&c, "k").await.is_none(), "deleted");

    // Concurrent creators of one key: exactly one wins. (moto checks, then writes, in two steps;
    // the emulator runs conditional writes under one lock so that this holds by construction. The
    // race was not reproduced without the lock: moto's handler rarely yields in between.)
    let tries = (0..16u8).map(|i| {
        let c = c.clone();
        async move {
            c.put_object()
                .bucket(BUCKET)
                .key("race")
                .body(ByteStream::from(vec![i; 256 * 1024]))
                .if_none_match("*")
                .send()
                .await
                .map_err(|e| status_of(&e))
        }
    });
    let results = futures::future::join_all(tries).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(412) | Err(409))),
        "{results:?}"
    );
}

#[tokio::test]
async fn a_second_run_on_an_s3_state_is_refused_and_status_reads_the_state() {
    let Migration {
        emu,
        c,
        s,
        pool,
        dir,
        input,
        state,
    } = migration("s3-two", "t", 200, "states/two.db").await;
    let args = admin_run_args(&input, &pool, &state);

    let stderr = dir.join("first.stderr");
    let mut first = spawn(&emu, &args, &[], &stderr);
    wait_for(
        "the first run to create users",
        Duration::from_secs(60),
        || {
            cognito_calls(&emu)
                .get("AdminCreateUser")
                .copied()
                .unwrap_or(0)
                >= 20
        },
    );
    let lock: LeaseRecord =
        LeaseRecord::from_json(&object(&s, "states/two.db.lock").await.unwrap().0).unwrap();
    assert_eq!(lock.holder.pid, first.id(), "{lock:?}");
    assert_eq!(lock.holder.command, "run");

    for extra in [&[][..], &["--break-lock".to_string()][..]] {
        let mut second = args.clone();
        second.extend(extra.iter().cloned());
        let busy = ["AdminCreateUser", "AdminGetUser"];
        let before: BTreeMap<_, _> = cognito_calls(&emu)
            .into_iter()
            .filter(|(op, _)| !busy.contains(&op.as_str()))
            .collect();
        let (code, out, err) = run(&emu, &second, &[]);
        assert!(first.try_wait().unwrap().is_none(), "the first still runs");
        assert_eq!(code, 4, "refused {extra:?}: {out}{err}");
        assert!(
            err.contains(&format!("{state} is in use by another run"))
                && err.contains(&format!("pid {}", first.id()))
                && err.contains("the lease expires at")
                && err.contains("nothing was done"),
            "the message names the holder and the expiry: {err}"
        );
        let after: BTreeMap<_, _> = cognito_calls(&emu)
            .into_iter()
            .filter(|(op, _)| !busy.contains(&op.as_str()))
            .collect();
        assert_eq!(after, before, "the refused run made no Cognito call");
    }
    let exit = first.wait().unwrap();
    assert_eq!(
        exit.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&stderr).unwrap()
    );
    assert!(
        object(&s, "states/two.db.lock").await.is_none(),
        "the lease is deleted at the end"
    );
    let (body, _) = object(&s, "states/two.db").await.unwrap();
    assert!(body.starts_with(b"SQLite format 3\0"));

    let (code, st) = emu.status(Path::new(&state));
    assert_eq!(code, 0, "{st}");
    assert_eq!((n(&st, "total"), n(&st, "created")), (200, 200), "{st}");
    assert_pool_holds(&c, &pool, &usernames("t", 200), "after the run").await;
    let (code, out, err) = run(
        &emu,
        &["report", "--state", &state, "--failed", "-"].map(String::from),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().count(),
        1,
        "the header only: nobody failed: {out}"
    );
    assert!(err.contains("0 rejected or failed users written"), "{err}");
    // The HTML report names the state as given, not the temporary copy it read (gone by then).
    let html = dir.join("report.html");
    let (code, _, err) = run(
        &emu,
        &[
            "report",
            "--state",
            &state,
            "--html",
            html.to_str().unwrap(),
        ]
        .map(String::from),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains(&format!("From the state file {state} ·")),
        "the report names {state}: {}",
        page.lines()
            .find(|l| l.contains("From the state"))
            .unwrap_or("")
    );
    assert!(page.contains("<td class=\"n\" data-count=\"created\">200</td>"));
    // Reading took no lease and left nothing behind.
    assert!(object(&s, "states/two.db.lock").await.is_none());
    let (code, _, err) = run(
        &emu,
        &[
            "status",
            "--state",
            &format!("s3://{BUCKET}/states/none.db"),
        ]
        .map(String::from),
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no state at s3://"), "{err}");
}

#[tokio::test]
async fn a_killed_run_resumes_after_its_lease_expired_with_break_lock_each_user_once() {
    let total = 300;
    let Migration {
        emu,
        c,
        s,
        pool,
        dir,
        input,
        state,
    } = migration("s3-kill", "k", total, "kill.db").await;
    let args = admin_run_args(&input, &pool, &state);
    // A short lease (renewed every 2 s) and frequent uploads, so the test is quick.
    let fast = [
        ("COGNITO_MIGRATE_LEASE_SECONDS", "6"),
        ("COGNITO_MIGRATE_STATE_UPLOAD_SECONDS", "0.3"),
    ];
    let mut first = spawn(&emu, &args, &fast, &dir.join("first.stderr"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while cognito_calls(&emu)
        .get("AdminCreateUser")
        .copied()
        .unwrap_or(0)
        < 100
        || object(&s, "kill.db").await.is_none()
    {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for users created and the state uploaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap(); // SIGKILL: no upload, no lease release
    first.wait().unwrap();
    let (lock, _) = object(&s, "kill.db.lock").await.expect("the lease stays");
    let lock = LeaseRecord::from_json(&lock).unwrap();
    let created_before = crate::common::pool_users(&c, &pool).await.len();
    assert!(created_before < total, "killed mid-way: {created_before}");

    // Before expiry even --break-lock is refused, and nothing is called.
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = cognito_calls(&emu);
    let mut breaking = args.clone();
    breaking.push("--break-lock".into());
    let left = lock.expires_ms - now_ms();
    let (code, _, err) = run(&emu, &breaking, &fast);
    if left > 2_000 {
        assert_eq!(code, 4, "a live lease is never broken: {err}");
        assert!(err.contains("the lease expires at"), "{err}");
        assert_eq!(cognito_calls(&emu), before, "no call by a refused run");
    } else {
        eprintln!("only {left} ms of the lease were left: the live-lease check was skipped");
    }
    // After expiry: refused without --break-lock, taken over with it.
    let wait = (lock.expires_ms - now_ms()).max(0) as u64 + 200;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let (code, _, err) = run(&emu, &args, &fast);
    assert_eq!(code, 4, "an expired lease is not taken silently: {err}");
    assert!(
        err.contains("the lease expired at") && err.contains("--break-lock"),
        "{err}"
    );
    let (code, out, err) = run(&emu, &breaking, &fast);
    assert_eq!(code, 0, "the same command resumes: {out}{err}");
    assert!(
        err.contains("taking over the expired lease")
            && err.contains(&format!("pid {}", lock.holder.pid)),
        "the takeover is said: {err}"
    );
    assert!(err.contains("resuming run"), "{err}");
    assert_pool_holds(
        &c,
        &pool,
        &usernames("k", total),
        "after SIGKILL and resume",
    )
    .await;
    let (code, st) = emu.status(Path::new(&state));
    eprintln!("created before the kill: {created_before}; after the resume: {st}");
    assert_eq!(code, 0, "{st}");
    assert_eq!(n(&st, "total"), total as u64, "{st}");
    assert_eq!(n(&st, "pending") + n(&st, "failed"), 0, "{st}");
    // Users created after the last upload before the kill are found existing: `skipped`, never
    // created twice.
    assert_eq!(n(&st, "created") + n(&st, "skipped"), total as u64, "{st}");
    assert!(object(&s, "kill.db.lock").await.is_none());
}

fn options(lease_ms: u64) -> StateOptions {
    StateOptions {
        lease_duration: Duration::from_millis(lease_ms),
        break_lock: false,
        upload_every: Duration::from_secs(3600),
    }
}

fn write_marker(path: &Path, value: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS marker(v INTEGER)")
        .unwrap();
    conn.execute("INSERT INTO marker VALUES (?1)", [value])
        .unwrap();
}

fn markers(bytes: &[u8], dir: &Path) -> Vec<i64> {
    let p = dir.join(format!("read-{}.db", rand_suffix()));
    std::fs::write(&p, bytes).unwrap();
    let conn = rusqlite::Connection::open(&p).unwrap();
    let mut stmt = conn.prepare("SELECT v FROM marker ORDER BY v").unwrap();
    let v = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<i64>, _>>()
        .unwrap();
    v
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[tokio::test]
async fn uploads_over_a_state_written_by_someone_else_are_refused_and_a_lost_lease_is_noticed() {
    let emu = Emulator::start();
    let s = s3(&emu).await;
    let dir = tempdir("s3-conflict");
    let loc = StateLocation::parse(&format!("s3://{BUCKET}/conflict.db")).unwrap();

    // A new state: uploaded with If-None-Match, then with If-Match on each new ETag.
    let held = HeldState::acquire(&loc, "sync", Some(&s), &options(60_000))
        .await
        .unwrap();
    assert!(held.is_new());
    write_marker(held.path(), 1);
    held.persist().await.unwrap();
    write_marker(held.path(), 2);
    held.persist().await.unwrap();
    let (body, etag) = object(&s, "conflict.db").await.unwrap();
    assert_eq!(markers(&body, &dir), [1, 2]);

    // A second holder is refused; with --break-lock too (the lease is live).
    for break_lock in [false, true] {
        let o = StateOptions {
            break_lock,
            ..options(60_000)
        };
        match HeldState::acquire(&loc, "sync", Some(&s), &o).await {
            Err(e @ StateStoreError::Held { expired: false, .. }) => assert!(e.is_busy()),
            other => panic!("expected Held, got {other:?}"),
        }
    }

    // Someone writes the state behind our back: our next upload is refused, theirs stays.
    s.put_object()
        .bucket(BUCKET)
        .key("conflict.db")
        .body(ByteStream::from(b"someone else's state".to_vec()))
        .send()
        .await
        .unwrap();
    write_marker(held.path(), 3);
    match held.persist().await {
        Err(e @ StateStoreError::Conflict { .. }) => assert!(e.is_busy(), "{e}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    match held.release().await {
        Err(StateStoreError::Conflict { .. }) => {}
        other => panic!("the final upload is refused too, got {other:?}"),
    }
    let (body, now) = object(&s, "conflict.db").await.unwrap();
    assert_eq!(body, b"someone else's state", "nothing was overwritten");
    assert_ne!(now, etag);
    assert!(
        object(&s, "conflict.db.lock").await.is_none(),
        "the lease is given back all the same"
    );

    // Renewal keeps a short lease alive; a lease replaced behind its holder's back is lost.
    let loc2 = StateLocation::parse(&format!("s3://{BUCKET}/renew.db")).unwrap();
    let a = HeldState::acquire(&loc2, "run", Some(&s), &options(900))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let o = StateOptions {
        break_lock: true,
        ..options(900)
    };
    assert!(
        matches!(
            HeldState::acquire(&loc2, "run", Some(&s), &o).await,
            Err(StateStoreError::Held { expired: false, .. })
        ),
        "renewed every 300 ms, the lease never expired"
    );
    s.put_object()
        .bucket(BUCKET)
        .key("renew.db.lock")
        .body(ByteStream::from(b"{}".to_vec()))
        .send()
        .await
        .unwrap();
    let why = tokio::time::timeout(Duration::from_secs(5), a.lost())
        .await
        .expect("the loss is noticed within a renewal period");
    assert!(why.contains("lease object"), "{why}");
    write_marker(a.path(), 1);
    assert!(matches!(
        a.persist().await,
        Err(StateStoreError::Lost { .. })
    ));
    drop(a);

    // A holder gone without releasing (dropped: a crash): its lease expires; then only
    // --break-lock takes it, and says whose it was.
    let loc3 = StateLocation::parse(&format!("s3://{BUCKET}/expire.db")).unwrap();
    let gone = HeldState::acquire(&loc3, "run", Some(&s), &options(600))
        .await
        .unwrap();
    drop(gone);
    tokio::time::sleep(Duration::from_millis(800)).await;
    match HeldState::acquire(&loc3, "run", Some(&s), &options(600)).await {
        Err(e @ StateStoreError::Held { expired: true, .. }) => {
            assert!(e.hint().unwrap().contains("--break-lock"))
        }
        other => panic!("expected an expired Held, got {other:?}"),
    }
    let o = StateOptions {
        break_lock: true,
        ..options(60_000)
    };
    let taker = HeldState::acquire(&loc3, "sync", Some(&s), &o)
        .await
        .unwrap();
    assert_eq!(
        taker.taken_over().map(|h| (h.pid, h.command.as_str())),
        Some((std::process::id(), "run"))
    );
    taker.release().await.unwrap();
    assert!(object(&s, "expire.db.lock").await.is_none());
}

#[tokio::test]
async fn sigterm_uploads_what_was_recorded_and_gives_the_lease_back() {
    let total = 200;
    let Migration {
        emu,
        c,
        s,
        pool,
        dir,
        input,
        state,
    } = migration("s3-term", "s", total, "term.db").await;
    let args = admin_run_args(&input, &pool, &state);
    // No background upload during the run: only the one after SIGTERM can hold its records.
    let slow = [("COGNITO_MIGRATE_STATE_UPLOAD_SECONDS", "3600")];
    let stderr = dir.join("first.stderr");
    let mut first = spawn(&emu, &args, &slow, &stderr);
    wait_for("users created", Duration::from_secs(60), || {
        cognito_calls(&emu)
            .get("AdminCreateUser")
            .copied()
            .unwrap_or(0)
            >= 50
    });
    sigterm(&first);
    let exit = first.wait().unwrap();
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(exit.code(), Some(3), "SIGTERM: exit 3, resume later: {err}");
    assert!(
        object(&s, "term.db.lock").await.is_none(),
        "the lease is given back: {err}"
    );
    let in_pool = crate::common::pool_users(&c, &pool).await.len() as u64;
    assert!(in_pool < total as u64, "stopped mid-way: {in_pool}");
    let (_, st) = emu.status(Path::new(&state));
    assert_eq!(
        n(&st, "created"),
        in_pool,
        "every user created before SIGTERM is in the uploaded state: {st}"
    );

    // The same command resumes at once (no lease left), each user once.
    let (code, out, err) = run(&emu, &args, &slow);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("taking over"), "{err}");
    assert_pool_holds(
        &c,
        &pool,
        &usernames("s", total),
        "after SIGTERM and resume",
    )
    .await;
    let (code, st) = emu.status(Path::new(&state));
    assert_eq!((code, n(&st, "created")), (0, total as u64), "{st}");
}

#[tokio::test]
async fn an_import_job_run_stopped_by_sigterm_resumes_on_another_machine_each_user_once() {
    use crate::common::import_job::{jobs, run_args as import_args};
    use serde_json::json;
    let total = 120;
    let Migration {
        emu,
        c,
        pool,
        dir,
        input,
        state,
        ..
    } = migration("s3-import", "m", total, "import.db").await;
    // Slow processing, so that the job is still running when SIGTERM comes.
    emu.control(
        "/_emulator/config",
        json!({"import_rows_per_second": 20.0, "import_pending_delay_seconds": 0.05}),
    );
    let args = import_args(&input, &pool, Path::new(&state));
    // Each "machine" has its own temporary directory: the import files of the first are not
    // there for the second.
    let (tmp1, tmp2) = (dir.join("machine-1"), dir.join("machine-2"));
    std::fs::create_dir_all(&tmp1).unwrap();
    std::fs::create_dir_all(&tmp2).unwrap();
    let stderr = dir.join("first.stderr");
    let mut first = spawn(&emu, &args, &[("TMPDIR", tmp1.to_str().unwrap())], &stderr);
    wait_for("the import job to run", Duration::from_secs(60), || {
        jobs(&emu)
            .iter()
            .any(|j| j["Status"] == json!("InProgress"))
    });
    sigterm(&first);
    let exit = first.wait().unwrap();
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(exit.code(), Some(3), "{err}");
    assert_eq!(jobs(&emu)[0]["Status"], json!("Stopped"));
    let imported_before = crate::common::pool_users(&c, &pool).await.len();
    assert!(
        imported_before < total,
        "stopped mid-way: {imported_before}"
    );
    std::fs::remove_dir_all(&tmp1).unwrap(); // the first machine is gone

    emu.control(
        "/_emulator/config",
        json!({"import_rows_per_second": 5000.0}),
    );
    let mut resume = args.clone();
    resume.push("--fetch-job-logs".into());
    let (code, out, err) = run(&emu, &resume, &[("TMPDIR", tmp2.to_str().unwrap())]);
    assert_eq!(code, 0, "the same command resumes elsewhere: {out}{err}");
    assert!(err.contains("import files of this run are gone"), "{err}");
    assert_pool_holds(
        &c,
        &pool,
        &usernames("m", total),
        "after SIGTERM and resume elsewhere",
    )
    .await;
    let (code, st) = emu.status(Path::new(&state));
    assert_eq!(code, 0, "{st}");
    assert_eq!(n(&st, "total"), total as u64, "{st}");
    assert_eq!(
        n(&st, "imported") + n(&st, "skipped"),
        total as u64,
        "users the stopped job imported are skipped by the next, never imported twice: {st}"
    );
}
