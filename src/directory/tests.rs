//! Unit tests of the directory file: writing and reading, lookups by every key and case rule, the
//! checksum, file mode, and the failure modes (duplicates, damage, wrong files, aborted builds).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::mapping::config::MappingFile;
use crate::mapping::Mapper;
use crate::password::{CostCap, HashContext};
use crate::plan::route::{Mode, Router, UnimportablePolicy};
use crate::source::{self, Format, SourceOptions};

pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cm-directory-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entry(
    username: &str,
    attrs: &[(&str, &str)],
    hash: Option<&str>,
    record: u64,
) -> DirectoryEntry {
    DirectoryEntry {
        username: username.to_string(),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        enabled: true,
        groups: vec!["staff".into()],
        password_hash: hash.map(str::to_string),
        record,
    }
}

fn alias_pool() -> SignIn {
    SignIn {
        email: true,
        phone: true,
        preferred_username: true,
        username_attributes: false,
        case_sensitive: false,
    }
}

fn write(path: &Path, sign_in: SignIn, entries: &[DirectoryEntry]) -> DirectoryMeta {
    let mut w = DirectoryWriter::create(path, "us-east-1_Test", sign_in).unwrap();
    for e in entries {
        w.add_entry(e).unwrap();
    }
    w.finish().unwrap()
}

fn sample_entries() -> Vec<DirectoryEntry> {
    vec![
        entry(
            "Alice",
            &[
                ("email", "Alice.Nguyen@Example.com"),
                ("email_verified", "true"),
                ("preferred_username", "Ally"),
            ],
            Some("$1$og1Qcvlc$viMBroUNEXuGQol.4YmGF/"),
            1,
        ),
        entry(
            "bob",
            &[
                ("phone_number", "+14155550123"),
                ("phone_number_verified", "true"),
            ],
            None,
            3,
        ),
    ]
}

#[test]
fn written_file_is_found_by_every_key_and_case() {
    let dir = scratch("keys");
    let path = dir.join("directory.db");
    let meta = write(&path, alias_pool(), &sample_entries());
    assert_eq!(meta.user_count, 2);
    assert!(meta.checksum.starts_with("sha256:") && meta.checksum.len() == 71);

    let file = DirectoryFile::open(&path).unwrap();
    assert_eq!(file.meta(), &meta);
    let by = |login: &str| {
        file.find(login)
            .unwrap()
            .map(|f| (f.entry.username, f.matched_by))
    };
    assert_eq!(by("alice"), Some(("Alice".into(), MatchedBy::Username)));
    assert_eq!(by("  ALICE "), Some(("Alice".into(), MatchedBy::Username)));
    assert_eq!(
        by("alice.nguyen@example.COM"),
        Some(("Alice".into(), MatchedBy::Email))
    );
    assert_eq!(
        by("ally"),
        Some(("Alice".into(), MatchedBy::PreferredUsername))
    );
    assert_eq!(
        by("+1 (415) 555-0123"),
        Some(("bob".into(), MatchedBy::Phone))
    );
    assert_eq!(by("nobody"), None);
    assert_eq!(by(""), None);

    let alice = file.find("alice").unwrap().unwrap().entry;
    assert_eq!(alice.groups, vec!["staff".to_string()]);
    assert_eq!(alice.record, 1);
    assert_eq!(alice.attributes["email"], "Alice.Nguyen@Example.com");
    assert!(
        !format!("{alice:?}").contains("og1Qcvlc"),
        "Debug shows the hash"
    );
    assert_eq!(
        file.hash_at(0).unwrap().as_deref(),
        Some("$1$og1Qcvlc$viMBroUNEXuGQol.4YmGF/")
    );
    assert_eq!(file.hash_at(3).unwrap(), None); // bob (3 mod 2 = 1), no hash
    file.verify_checksum().unwrap();
}

#[test]
fn keys_follow_the_pool_sign_in_settings() {
    let dir = scratch("settings");
    let path = dir.join("d.db");
    let username_only = SignIn {
        case_sensitive: true,
        ..SignIn::default()
    };
    write(&path, username_only, &sample_entries());
    let file = DirectoryFile::open(&path).unwrap();
    assert!(file.find("Alice").unwrap().is_some());
    assert!(file.find("alice").unwrap().is_none(), "case-sensitive pool");
    assert!(
        file.find("alice.nguyen@example.com").unwrap().is_none(),
        "no email sign-in"
    );
    assert!(
        file.find("+14155550123").unwrap().is_none(),
        "no phone sign-in"
    );
    assert!(
        file.find("Ally").unwrap().is_none(),
        "no preferred_username alias"
    );
}

#[test]
fn file_is_private_and_no_temporary_file_is_left() {
    let dir = scratch("mode");
    let path = dir.join("d.db");
    write(&path, alias_pool(), &sample_entries());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["d.db".to_string()]);
}

#[test]
fn an_abandoned_build_leaves_nothing_and_keeps_the_old_file() {
    let dir = scratch("abandon");
    let path = dir.join("d.db");
    let old = write(&path, alias_pool(), &sample_entries());
    {
        let mut w = DirectoryWriter::create(&path, "us-east-1_Other", alias_pool()).unwrap();
        w.add_entry(&sample_entries()[0]).unwrap();
        // dropped without finish()
    }
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(names.len(), 1);
    assert_eq!(read_meta(&path).unwrap(), old);
}

#[test]
fn duplicate_keys_fail_the_build_without_showing_the_value() {
    let dir = scratch("dup");
    let path = dir.join("d.db");
    let mut w = DirectoryWriter::create(&path, "p", alias_pool()).unwrap();
    w.add_entry(&entry("carol", &[("email", "same@example.com")], None, 4))
        .unwrap();
    w.add_entry(&entry("dave", &[("email", "SAME@example.com")], None, 9))
        .unwrap();
    let err = w.finish().unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, DirectoryError::Duplicate { key: "email", .. }),
        "{msg}"
    );
    assert!(msg.contains("records 4 and 9"), "{msg}");
    assert!(!msg.to_lowercase().contains("same@example.com"), "{msg}");
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn altered_content_fails_the_checksum() {
    let dir = scratch("tamper");
    let path = dir.join("d.db");
    write(&path, alias_pool(), &sample_entries());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE users SET attributes = '{\"email\":\"mallory@example.com\"}' WHERE id = 1",
            [],
        )
        .unwrap();
    }
    let file = DirectoryFile::open(&path).unwrap();
    let err = file.verify_checksum().unwrap_err();
    assert!(
        matches!(err, DirectoryError::ChecksumMismatch { .. }),
        "{err}"
    );

    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("DELETE FROM users WHERE id = 2", []).unwrap();
    }
    let err = DirectoryFile::open(&path)
        .unwrap()
        .verify_checksum()
        .unwrap_err();
    assert!(matches!(err, DirectoryError::Damaged { .. }), "{err}");
}

#[test]
fn other_files_are_refused_clearly() {
    let dir = scratch("other");
    let missing = DirectoryFile::open(dir.join("missing.db")).unwrap_err();
    assert!(matches!(missing, DirectoryError::Io { .. }), "{missing}");

    let text = dir.join("text.db");
    std::fs::write(
        &text,
        "not sqlite at all, just some text that is long enough",
    )
    .unwrap();
    let err = DirectoryFile::open(&text).unwrap_err();
    assert!(matches!(err, DirectoryError::NotADirectory { .. }), "{err}");

    let other_sqlite = dir.join("other.db");
    rusqlite::Connection::open(&other_sqlite)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let err = DirectoryFile::open(&other_sqlite).unwrap_err();
    assert!(matches!(err, DirectoryError::NotADirectory { .. }), "{err}");

    let newer = dir.join("newer.db");
    write(&newer, alias_pool(), &sample_entries());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let err = DirectoryFile::open(&newer).unwrap_err();
    assert!(
        matches!(err, DirectoryError::Version { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn paths_with_uri_characters_open() {
    let dir = scratch("uri");
    let path = dir.join("a dir?#%").join("d b.db");
    write(&path, alias_pool(), &sample_entries());
    assert_eq!(DirectoryFile::open(&path).unwrap().meta().user_count, 2);
}

fn ndjson_schema(
    username_attributes: Vec<String>,
    alias: Vec<String>,
    auto_verified: Vec<String>,
) -> crate::pool::PoolSchema {
    crate::pool::PoolSchema::assemble(
        "us-east-1_Sample",
        "sample",
        vec![],
        vec![crate::pool::Attribute {
            name: "custom:legacy_id".into(),
            data_type: crate::pool::DataType::String,
            required: false,
            mutable: true,
            min_length: None,
            max_length: Some(64),
            min_value: None,
            max_value: None,
        }],
        username_attributes,
        alias,
        false,
        auto_verified,
    )
}

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn build_from_the_ndjson_sample_maps_rejects_and_writes() {
    let dir = scratch("build");
    let path = dir.join("d.db");
    let schema = ndjson_schema(vec![], vec!["email".into()], vec![]);
    let mapping = MappingFile::load(Path::new(&repo("samples/ndjson/mapping.toml"))).unwrap();
    let mut mapper = Mapper::new(&mapping, &schema).unwrap();
    let mut src = source::open(
        Format::Ndjson,
        &repo("samples/ndjson/users.ndjson"),
        &SourceOptions::default(),
    )
    .unwrap();
    let writer = DirectoryWriter::create(&path, &schema.pool_id, SignIn::of_pool(&schema)).unwrap();
    let mut rejected = Vec::new();
    let summary = build(
        src.as_mut(),
        &mut mapper,
        &HashContext::default(),
        &Selection::All,
        &CostCap::default(),
        writer,
        &mut |r| {
            rejected.push(r.clone());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(summary.rejected as usize, rejected.len());
    assert_eq!(summary.written + summary.rejected, summary.records);
    assert!(summary.written >= 6, "{summary:?}");
    assert!(
        rejected.iter().any(|r| r.position.record == 4),
        "the log line (record 4) is rejected: {rejected:?}"
    );
    assert!(
        rejected.iter().any(|r| r.field == "contact.phone"),
        "grace's phone is rejected: {rejected:?}"
    );
    for r in &rejected {
        assert!(!r.message.contains("$2b$"), "a rejection shows a hash: {r}");
    }
    assert_eq!(
        summary.schemes.get("bcrypt").copied(),
        Some(summary.with_password)
    );
    let file = DirectoryFile::open(&path).unwrap();
    assert_eq!(file.meta().user_count, summary.written);
    file.verify_checksum().unwrap();
    let alice = file.find("ALICE.NGUYEN@example.com").unwrap().unwrap();
    assert_eq!(alice.matched_by, MatchedBy::Email);
    assert_eq!(alice.entry.username, "alice");
    assert_eq!(alice.entry.groups, vec!["admin".to_string()]);
    assert!(alice
        .entry
        .password_hash
        .as_deref()
        .unwrap()
        .starts_with("$2b$10$"));

    // --only-unimported by routing, exactly as `plan` decides: bcrypt cost 10 is imported with
    // its hash (the pool verifies nothing, so every user may go through an import job).
    let path2 = dir.join("unimported.db");
    let mut mapper = Mapper::new(&mapping, &schema).unwrap();
    let mut src = source::open(
        Format::Ndjson,
        &repo("samples/ndjson/users.ndjson"),
        &SourceOptions::default(),
    )
    .unwrap();
    let router = Router::new(
        Mode::Auto,
        UnimportablePolicy::Trigger,
        HashContext::default(),
        &schema,
    );
    let writer =
        DirectoryWriter::create(&path2, &schema.pool_id, SignIn::of_pool(&schema)).unwrap();
    let s2 = build(
        src.as_mut(),
        &mut mapper,
        &HashContext::default(),
        &Selection::NotImportedWithHash(router),
        &CostCap::default(),
        writer,
        &mut |_| Ok(()),
    )
    .unwrap();
    assert!(s2.left_out_imported > 0, "{s2:?}");
    assert_eq!(s2.written + s2.left_out_imported + s2.rejected, s2.records);
    let file = DirectoryFile::open(&path2).unwrap();
    assert!(
        file.find("alice").unwrap().is_none(),
        "alice's bcrypt hash is imported"
    );

    // --only-unimported --state: records the checkpoint says were imported are left out.
    let path3 = dir.join("state.db");
    let mut mapper = Mapper::new(&mapping, &schema).unwrap();
    let mut src = source::open(
        Format::Ndjson,
        &repo("samples/ndjson/users.ndjson"),
        &SourceOptions::default(),
    )
    .unwrap();
    let imported: crate::checkpoint::RecordSet = [1u64].into_iter().collect();
    let writer =
        DirectoryWriter::create(&path3, &schema.pool_id, SignIn::of_pool(&schema)).unwrap();
    let s3 = build(
        src.as_mut(),
        &mut mapper,
        &HashContext::default(),
        &Selection::NotInSet(imported),
        &CostCap::default(),
        writer,
        &mut |_| Ok(()),
    )
    .unwrap();
    assert_eq!(s3.left_out_imported, 1);
    let file = DirectoryFile::open(&path3).unwrap();
    assert!(file.find("alice").unwrap().is_none());
    assert!(file.find("bob").unwrap().is_some());
}

#[test]
fn over_cap_hashes_are_counted() {
    let dir = scratch("cap");
    let schema = ndjson_schema(vec![], vec![], vec!["email".into()]);
    let mapping = MappingFile::load(Path::new(&repo("samples/ndjson/mapping.toml"))).unwrap();
    let mut mapper = Mapper::new(&mapping, &schema).unwrap();
    let mut src = source::open(
        Format::Ndjson,
        &repo("samples/ndjson/users.ndjson"),
        &SourceOptions::default(),
    )
    .unwrap();
    let writer =
        DirectoryWriter::create(dir.join("d.db"), &schema.pool_id, SignIn::of_pool(&schema))
            .unwrap();
    let cap = CostCap {
        bcrypt_max_cost: 8,
        ..CostCap::default()
    };
    let s = build(
        src.as_mut(),
        &mut mapper,
        &HashContext::default(),
        &Selection::All,
        &cap,
        writer,
        &mut |_| Ok(()),
    )
    .unwrap();
    let over: u64 = s.over_cost_cap.values().sum();
    assert_eq!(over, s.with_password, "{s:?}");
    let mut table = Vec::new();
    s.write_table(&mut table).unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("cost cap"), "{table}");
    let _ = BTreeMap::<String, String>::new();
}
