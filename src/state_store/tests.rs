use std::path::PathBuf;
use std::time::Duration;

use super::*;

#[test]
fn a_path_is_local_and_an_s3_url_is_remote() {
    assert_eq!(
        StateLocation::parse("migration.db").unwrap(),
        StateLocation::Local(PathBuf::from("migration.db"))
    );
    assert_eq!(
        StateLocation::parse("/var/lib/cm/s3.db").unwrap(),
        StateLocation::Local(PathBuf::from("/var/lib/cm/s3.db"))
    );
    // A relative path that merely starts with "s3" is a file name.
    assert_eq!(
        StateLocation::parse("s3state.db").unwrap(),
        StateLocation::Local(PathBuf::from("s3state.db"))
    );
    let loc = StateLocation::parse("s3://my-bucket.prod/sync/pool-1/state.db").unwrap();
    assert_eq!(
        loc,
        StateLocation::S3 {
            bucket: "my-bucket.prod".into(),
            key: "sync/pool-1/state.db".into()
        }
    );
    assert!(loc.is_remote());
    assert_eq!(loc.to_string(), "s3://my-bucket.prod/sync/pool-1/state.db");
    assert_eq!(
        StateLocation::lock_key("sync/state.db"),
        "sync/state.db.lock"
    );
    let parsed: StateLocation = "s3://abc/k".parse().unwrap();
    assert_eq!(parsed.to_string(), "s3://abc/k");
}

#[test]
fn malformed_s3_locations_are_refused_with_the_reason() {
    for (given, why) in [
        ("", "empty"),
        ("s3://", "key is missing"),
        ("s3://bucket", "key is missing"),
        ("s3://bucket/", "must name an object"),
        ("s3://bucket/dir/", "must name an object"),
        ("s3:/bucket/key", "s3://BUCKET/KEY"),
        ("S3://bucket/key", "lower-case"),
        ("s3:bucket/key", "s3://BUCKET/KEY"),
        ("s3://Bucket/key", "bucket name"),
        ("s3://ab/key", "bucket name"),
        ("s3://-bucket/key", "bucket name"),
        ("s3://bucket_x/key", "bucket name"),
        ("s3:///key", "bucket name"),
    ] {
        match StateLocation::parse(given) {
            Err(e @ StateStoreError::BadLocation { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(why), "{given:?}: {msg}");
                assert!(e.is_configuration());
                assert!(!e.is_busy());
            }
            other => panic!("{given:?}: expected BadLocation, got {other:?}"),
        }
    }
    let long = format!("s3://bucket/{}", "k".repeat(1020));
    assert!(StateLocation::parse(&long).is_err());
    let ok = format!("s3://bucket/{}", "k".repeat(1019));
    assert!(StateLocation::parse(&ok).is_ok());
}

#[test]
fn the_lease_record_round_trips_through_its_json() {
    let r = LeaseRecord::new("sync", Duration::from_secs(900));
    assert_eq!(r.holder.command, "sync");
    assert_eq!(r.holder.pid, std::process::id());
    assert_eq!(r.token.len(), 32, "128 random bits in hex");
    assert_eq!(r.expires_ms - r.holder.since_ms, 900_000);
    assert_eq!(r.renewed_ms, r.holder.since_ms);
    let json = r.to_json();
    assert_eq!(json.last(), Some(&b'\n'));
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    // The documented fields, flat.
    for field in [
        "host",
        "pid",
        "since_ms",
        "command",
        "token",
        "renewed_ms",
        "expires_ms",
    ] {
        assert!(v.get(field).is_some(), "{field} in {v}");
    }
    assert_eq!(LeaseRecord::from_json(&json).unwrap(), r);
    // Two leases never share a token.
    assert_ne!(LeaseRecord::new("sync", Duration::ZERO).token, r.token);
}

#[test]
fn a_lease_expires_at_its_expiry_and_a_renewal_moves_it() {
    let json = br#"{"host":"ip-10-0-0-1","pid":7,"since_ms":1700000000000,"command":"run","token":"ab","renewed_ms":1700000000000,"expires_ms":1700000900000}"#;
    let r = LeaseRecord::from_json(json).unwrap();
    assert!(!r.expired_at(1_700_000_899_999));
    assert!(r.expired_at(1_700_000_900_000));
    let renewed = r.renewed(1_700_000_300_000, Duration::from_secs(900));
    assert_eq!(renewed.expires_ms, 1_700_001_200_000);
    assert_eq!(renewed.renewed_ms, 1_700_000_300_000);
    assert_eq!(
        (renewed.token.as_str(), renewed.holder.since_ms),
        ("ab", 1_700_000_000_000),
        "a renewal keeps the holding's token and start"
    );
    assert!(LeaseRecord::from_json(b"not json").is_err());
    assert!(LeaseRecord::from_json(br#"{"host":"h"}"#).is_err());
}

#[test]
fn the_held_message_names_the_holder_and_the_expiry() {
    let json = br#"{"host":"ip-10-0-0-1","pid":7,"since_ms":1700000000000,"command":"sync","token":"ab","renewed_ms":1700000000000,"expires_ms":1700000900000}"#;
    let r = LeaseRecord::from_json(json).unwrap();
    let live = StateStoreError::Held {
        location: "s3://b/k.db".into(),
        holder: Some(r.holder.clone()),
        expires_ms: Some(r.expires_ms),
        expired: false,
    };
    let msg = live.to_string();
    assert!(
        msg.contains("s3://b/k.db is in use by another run")
            && msg.contains("`sync` with pid 7 on host ip-10-0-0-1 since 2023-11-14T22:13:20Z")
            && msg.contains("expires at 2023-11-14T22:28:20Z")
            && msg.contains("nothing was done"),
        "{msg}"
    );
    assert!(live.is_busy() && !live.is_configuration());
    assert!(live.hint().unwrap().contains("wait"));
    let expired = StateStoreError::Held {
        location: "s3://b/k.db".into(),
        holder: Some(r.holder),
        expires_ms: Some(r.expires_ms),
        expired: true,
    };
    assert!(expired
        .to_string()
        .contains("expired at 2023-11-14T22:28:20Z"));
    assert!(expired.hint().unwrap().contains("--break-lock"));
}

#[test]
fn the_local_file_of_a_remote_state_is_named_after_its_key() {
    assert_eq!(local_name("sync/pool/state.db"), "state.db");
    assert_eq!(local_name("a b.db"), "a_b.db");
    assert_eq!(local_name(".hidden"), "state.db");
    assert_eq!(local_name("x/"), "state.db");
}

#[tokio::test]
async fn a_local_location_is_held_with_the_flock_lease_and_persist_is_a_no_op() {
    let tmp = tempdir("local");
    let dir = tmp.path();
    let state = dir.join("state.db");
    let loc = StateLocation::Local(state.clone());
    let held = HeldState::acquire(&loc, "run", None, &StateOptions::default())
        .await
        .unwrap();
    assert_eq!(held.path(), state);
    assert!(held.is_new());
    match HeldState::acquire(&loc, "retry", None, &StateOptions::default()).await {
        Err(e @ StateStoreError::Local(LeaseError::Held { .. })) => assert!(e.is_busy()),
        other => panic!("expected the local lease to be held, got {other:?}"),
    }
    held.persist().await.unwrap();
    held.release().await.unwrap();
    let again = HeldState::acquire(&loc, "retry", None, &StateOptions::default())
        .await
        .unwrap();
    again.release().await.unwrap();
    assert!(matches!(
        fetch_read_only(&loc, None).await,
        Err(StateStoreError::NotFound { .. })
    ));
    let remote = StateLocation::parse("s3://bucket/k").unwrap();
    assert!(matches!(
        HeldState::acquire(&remote, "run", None, &StateOptions::default()).await,
        Err(StateStoreError::NoClient { .. })
    ));
}

#[test]
fn a_snapshot_is_a_consistent_copy_while_the_wal_holds_the_commits() {
    let tmp = tempdir("snap");
    let dir = tmp.path();
    let live = dir.join("live.db");
    let conn = rusqlite::Connection::open(&live).unwrap();
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    // Keep the commits in the WAL (no automatic checkpoint into the main file).
    conn.execute_batch("PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x INTEGER);")
        .unwrap();
    for i in 0..100 {
        conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
    }
    let wal = std::fs::metadata(dir.join("live.db-wal")).unwrap().len();
    assert!(wal > 0, "the commits are in the WAL");
    let out = dir.join("snap.db");
    let h1 = snapshot::snapshot(&live, &out).unwrap();
    let copy = rusqlite::Connection::open(&out).unwrap();
    let (n, sum): (i64, i64) = copy
        .query_row("SELECT COUNT(*), SUM(x) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, sum), (100, 4950));
    drop(copy);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Unchanged: the same hash (nothing to upload); changed: another.
    assert_eq!(snapshot::snapshot(&live, &out).unwrap(), h1);
    // A transaction still open in the live connection is not in the snapshot.
    conn.execute_batch("BEGIN; INSERT INTO t VALUES (1000);")
        .unwrap();
    assert_eq!(snapshot::snapshot(&live, &out).unwrap(), h1);
    conn.execute_batch("COMMIT;").unwrap();
    assert_ne!(snapshot::snapshot(&live, &out).unwrap(), h1);
}

/// A fresh directory, removed when dropped (also when the test fails).
fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("cognito-migrate-state-store-{name}-"))
        .tempdir()
        .unwrap()
}
