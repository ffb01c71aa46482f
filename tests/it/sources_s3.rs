//! `s3://` inputs against the emulator's S3: streamed, gzip decompressed, resumed by range when
//! the body breaks off mid-way, refused when the object changes, and usable by `plan` and `run`.

use std::time::Duration;

use crate::common::{
    auth0_export, create_pool, gzip, run_args, run_cli, tempdir, Emulator, ROLE_ARN,
};
use aws_sdk_s3::primitives::ByteStream;
use cognito_migrate::aws::Clients;
use cognito_migrate::record::LegacyUser;
use cognito_migrate::source::s3::{S3Object, S3ReadOptions};
use cognito_migrate::source::{self, Format, RecordError, SourceOptions};
use serde_json::json;

const BUCKET: &str = "exports";

async fn clients(emu: &Emulator) -> Clients {
    Clients::from_sdk_config(emu.sdk_config().await, true)
}

async fn put(c: &Clients, key: &str, body: Vec<u8>) {
    let _ = c.s3.create_bucket().bucket(BUCKET).send().await;
    c.s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .expect("put the object");
}

fn read_local(bytes: &[u8]) -> Vec<Result<LegacyUser, RecordError>> {
    let reader = Box::new(std::io::Cursor::new(bytes.to_vec()));
    let mut s = source::from_reader(Format::Auth0, reader, &SourceOptions::default()).unwrap();
    std::iter::from_fn(|| s.next_record()).collect()
}

type Records = Vec<Result<LegacyUser, RecordError>>;

/// Reads `s3://exports/<key>` through the S3 source on a blocking thread.
async fn read_s3(
    c: &Clients,
    key: &str,
    read: S3ReadOptions,
) -> Result<Records, source::SourceError> {
    let object = S3Object::head(&c.s3, &format!("s3://{BUCKET}/{key}")).await?;
    let client = c.s3.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || read_object(client, &object, &read, &rt))
        .await
        .unwrap()
}

/// Reads an object through the S3 source (blocking: call it off the runtime's threads).
fn read_object(
    client: aws_sdk_s3::Client,
    object: &S3Object,
    read: &S3ReadOptions,
    rt: &tokio::runtime::Handle,
) -> Result<Records, source::SourceError> {
    let mut s = source::open_s3(
        Format::Auth0,
        client,
        object,
        read,
        &SourceOptions::default(),
        rt,
    )?;
    Ok(std::iter::from_fn(|| s.next_record()).collect())
}

fn fault_stats(emu: &Emulator) -> (u64, u64) {
    let stats = emu.stats();
    let get = &stats["operations"]["S3.GET"];
    (
        get["calls"].as_u64().unwrap_or(0),
        get["faults"]["truncate_body"].as_u64().unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_gzipped_objects_read_like_the_local_file() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let bytes = auth0_export(500);
    put(&c, "users.ndjson", bytes.clone()).await;
    put(&c, "users.ndjson.gz", gzip(&bytes)).await;
    let expected = read_local(&bytes);
    assert_eq!(expected.len(), 500);
    assert!(expected.iter().all(|r| r.is_ok()));

    let plain = read_s3(&c, "users.ndjson", S3ReadOptions::default())
        .await
        .unwrap();
    assert_eq!(plain, expected);
    let gz = read_s3(&c, "users.ndjson.gz", S3ReadOptions::default())
        .await
        .unwrap();
    assert_eq!(gz, expected, "positions count decompressed bytes");
    let last = gz.last().unwrap().as_ref().unwrap();
    assert_eq!(last.position.record, 500);
    assert_eq!(last.field("email"), Some("user499@example.com"));
    assert!(!gz[0].as_ref().unwrap().enabled, "user 0 is blocked");

    // A name ending in .gz with plain content is refused; a missing key is a clear error.
    put(&c, "fake.ndjson.gz", bytes[..2000].to_vec()).await;
    let err = read_s3(&c, "fake.ndjson.gz", S3ReadOptions::default())
        .await
        .unwrap_err();
    assert!(
        cognito_migrate::display_chain(&err).contains("not gzip"),
        "{}",
        cognito_migrate::display_chain(&err)
    );
    let err = read_s3(&c, "missing.ndjson", S3ReadOptions::default())
        .await
        .unwrap_err();
    assert!(
        cognito_migrate::display_chain(&err).contains("no such object"),
        "{}",
        cognito_migrate::display_chain(&err)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_breaks_mid_way_is_resumed_by_range() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let bytes = auth0_export(3000); // ~1 MB
    let compressed = gzip(&bytes);
    put(&c, "big.ndjson", bytes.clone()).await;
    put(&c, "big.ndjson.gz", compressed.clone()).await;
    let expected = read_local(&bytes);

    for (key, size) in [
        ("big.ndjson", bytes.len()),
        ("big.ndjson.gz", compressed.len()),
    ] {
        emu.control("/_emulator/stats/reset", json!({}));
        // The first two downloads stop after a third of the object, then a third more.
        emu.control(
            "/_emulator/config",
            json!({"faults": {"rules": {"S3.GET": {
                "truncate_body": 1.0, "truncate_after_bytes": size / 3, "max_faults": 2}}}}),
        );
        let read = S3ReadOptions {
            initial_backoff: Duration::from_millis(20),
            ..Default::default()
        };
        let got = read_s3(&c, key, read).await.unwrap();
        assert_eq!(got.len(), expected.len(), "{key}");
        assert!(got == expected, "{key}: the resumed read differs");
        let (calls, truncated) = fault_stats(&emu);
        assert_eq!(truncated, 2, "{key}: both faults were injected");
        assert_eq!(calls, 3, "{key}: one GET and two ranged reopens");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_bounded_and_a_changed_object_is_refused() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let bytes = auth0_export(1000);
    put(&c, "users.ndjson", bytes.clone()).await;

    // Every download breaks before its first byte: give up after max_attempts.
    emu.control(
        "/_emulator/config",
        json!({"faults": {"rules": {"S3.GET": {"truncate_body": 1.0, "truncate_after_bytes": 0}}}}),
    );
    let read = S3ReadOptions {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    };
    let err = read_s3(&c, "users.ndjson", read).await.unwrap_err();
    assert!(
        cognito_migrate::display_chain(&err).contains("giving up after 3 attempts"),
        "{err}"
    );
    assert_eq!(fault_stats(&emu).0, 3, "exactly three GETs");

    // The first download breaks; while the reader waits to reopen, the object is replaced: the
    // reopen (If-Match on the old ETag) is refused instead of splicing two versions.
    emu.control(
        "/_emulator/config",
        json!({"faults": {"rules": {"S3.GET": {
            "truncate_body": 1.0, "truncate_after_bytes": 30000, "max_faults": 1}}}}),
    );
    let object = S3Object::head(&c.s3, &format!("s3://{BUCKET}/users.ndjson"))
        .await
        .unwrap();
    let client = c.s3.clone();
    let rt = tokio::runtime::Handle::current();
    let reading = tokio::task::spawn_blocking(move || {
        let read = S3ReadOptions {
            initial_backoff: Duration::from_millis(1500),
            ..Default::default()
        };
        read_object(client, &object, &read, &rt).unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    put(&c, "users.ndjson", auth0_export(1001)).await;
    let got = reading.await.unwrap();
    let last = got.last().unwrap().as_ref().unwrap_err();
    assert!(last.fatal, "{last}");
    assert!(last.message.contains("changed while it was read"), "{last}");
    assert!(got.len() < 1000, "the read stopped at the break");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_can_start_at_a_byte_offset() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let bytes = auth0_export(200);
    put(&c, "users.ndjson", bytes.clone()).await;
    let expected = read_local(&bytes);
    let from = expected[150].as_ref().unwrap().position.byte_offset;
    let read = S3ReadOptions {
        start_offset: from,
        ..Default::default()
    };
    let got = read_s3(&c, "users.ndjson", read).await.unwrap();
    assert_eq!(got.len(), 50);
    let first = got[0].as_ref().unwrap();
    let want = expected[150].as_ref().unwrap();
    assert_eq!(first.fields, want.fields);
    assert_eq!(
        first.position.byte_offset, 0,
        "offsets count from the start offset"
    );

    let read = S3ReadOptions {
        start_offset: bytes.len() as u64 + 1,
        ..Default::default()
    };
    let err = read_s3(&c, "users.ndjson", read).await.unwrap_err();
    assert!(
        cognito_migrate::display_chain(&err).contains("cannot start at byte"),
        "{}",
        cognito_migrate::display_chain(&err)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_run_read_s3_inputs_end_to_end() {
    use aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType;
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let sample = crate::common::repo_root().join("samples/auth0/users.ndjson");
    let bytes = std::fs::read(&sample).unwrap();
    put(&c, "auth0/users.ndjson.gz", gzip(&bytes)).await;
    let pool = create_pool(
        c.cognito
            .create_user_pool()
            .pool_name("s3-target")
            .auto_verified_attributes(VerifiedAttributeType::Email),
    )
    .await;
    let dir = tempdir("sources-s3-plan");
    let plan = |input: &str, out: &str| {
        run_cli(
            &[
                "plan",
                "-i",
                input,
                "-f",
                "auth0",
                "--pool-id",
                &pool,
                "--out",
                out,
                "--json",
            ],
            &emu.cli_env(),
        )
    };
    let local_out = dir.join("local");
    let s3_out = dir.join("s3");
    let (code_local, local, stderr) = plan(sample.to_str().unwrap(), local_out.to_str().unwrap());
    assert_eq!(code_local, 1, "the sample has rejects: {stderr}");
    let (code, remote, stderr) = plan(
        &format!("s3://{BUCKET}/auth0/users.ndjson.gz"),
        s3_out.to_str().unwrap(),
    );
    assert_eq!(code, code_local, "{stderr}");
    let local: serde_json::Value = serde_json::from_str(&local).unwrap();
    let remote: serde_json::Value = serde_json::from_str(&remote).unwrap();
    for k in ["records", "routed", "rejected", "routes", "rejections"] {
        assert_eq!(local[k], remote[k], "{k}");
    }
    assert_eq!(remote["records"], json!(12));
    assert_eq!(
        std::fs::read(local_out.join("rejects.csv")).unwrap(),
        std::fs::read(s3_out.join("rejects.csv")).unwrap()
    );

    // `run` fingerprints the object by its ETag and resumes with the same one.
    let state = dir.join("state.db");
    let input = format!("s3://{BUCKET}/auth0/users.ndjson.gz");
    let mut args = run_args(
        &input,
        "auth0",
        &pool,
        state.to_str().unwrap(),
        "import-job",
    );
    args.extend(["--role-arn", ROLE_ARN]);
    let (code, _, stderr) = run_cli(&args, &emu.cli_env());
    assert_eq!(code, 1, "rejected records only: {stderr}");
    let cp = cognito_migrate::checkpoint::Checkpoint::open(&state).unwrap();
    let run = cp.current_run().unwrap().unwrap();
    assert!(
        run.spec.input_fingerprint.starts_with("s3-etag:"),
        "{run:?}"
    );
    assert_eq!(run.spec.input_size, gzip(&bytes).len() as u64);
    drop(cp);
    let imported = c
        .cognito
        .list_users()
        .user_pool_id(&pool)
        .send()
        .await
        .unwrap()
        .users()
        .len();
    assert!(imported >= 5, "{imported} users imported");
    let (code, _, stderr) = run_cli(&args, &emu.cli_env());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("resuming run"), "{stderr}");

    // A replaced object is a different input: the state file refuses it.
    put(&c, "auth0/users.ndjson.gz", gzip(&bytes[..bytes.len() / 2])).await;
    let (code, _, stderr) = run_cli(&args, &emu.cli_env());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("input"), "{stderr}");
}
