//! Unit tests of the parts of `migrate` that need no pool: the settings a run records and
//! `retry` reads back, the role a mode needs, and the cancel token.

use std::path::PathBuf;

use super::*;
use crate::checkpoint::tests::TempDb;
use crate::checkpoint::RunSpec;

/// A run begun with `mode` and `options` as [`run`] records them, read back.
fn recorded(mode: &str, options: serde_json::Value) -> Result<RecordedRun, MigrateError> {
    let db = TempDb::new(mode);
    let cp = Checkpoint::open(&db.0).unwrap();
    let spec = RunSpec {
        input_location: "/data/users.csv".into(),
        input_format: "firebase".into(),
        input_size: 10,
        input_fingerprint: "sha256:abc".into(),
        pool_id: "eu-west-1_AAAA".into(),
        mode: mode.into(),
        options: options.to_string(),
    };
    let run = cp.begin_run(&spec, false).unwrap();
    RecordedRun::read(&run)
}

#[test]
fn a_recorded_run_gives_back_its_format_mode_policies_and_reader() {
    let r = recorded(
        "auto",
        serde_json::json!({
            "unimportable": format!("{:?}", UnimportablePolicy::Reset),
            "unknown_hash": format!("{:?}", UnknownHashPolicy::Reset),
            "mapping": "/m.toml",
            "hash_config": true,
            "reader": {"django_model": "auth.user"},
        }),
    )
    .unwrap();
    assert_eq!(r.format, crate::source::Format::Firebase);
    assert_eq!(r.mode, Mode::Auto);
    assert_eq!(r.unimportable, UnimportablePolicy::Reset);
    assert_eq!(r.unknown_hash, UnknownHashPolicy::Reset);
    assert_eq!(r.mapping, Some(PathBuf::from("/m.toml")));
    assert!(r.hash_config);
    assert_eq!(r.reader["django_model"], "auth.user");
}

#[test]
fn a_run_recorded_before_unknown_hash_existed_keeps_rejecting_such_users() {
    let r = recorded("import-job", serde_json::json!({"unimportable": "Trigger"})).unwrap();
    assert_eq!(r.unknown_hash, UnknownHashPolicy::Reject);
    assert_eq!(r.unimportable, UnimportablePolicy::Trigger);
    assert!(!r.hash_config);
}

#[test]
fn an_unknown_recorded_setting_is_a_configuration_error_naming_it() {
    let e = recorded(
        "import-job",
        serde_json::json!({"unimportable": "Sometimes"}),
    )
    .unwrap_err();
    assert!(e.is_configuration(), "{e}");
    assert!(e.to_string().contains("--unimportable"), "{e}");
}

#[test]
fn import_modes_need_a_role_and_admin_create_does_not() {
    assert_eq!(role_arn(Mode::AdminCreate, None).unwrap(), "");
    assert_eq!(role_arn(Mode::Auto, Some("arn:r".into())).unwrap(), "arn:r");
    let e = role_arn(Mode::ImportJob, None).unwrap_err();
    assert!(e.is_configuration());
    assert!(e.to_string().contains("--role-arn"), "{e}");
}

#[test]
fn a_cancel_token_reaches_every_clone_and_receivers_made_after_it() {
    let token = CancelToken::new();
    let before = token.subscribe();
    let clone = token.clone();
    assert!(!token.is_cancelled() && !*before.borrow());
    clone.cancel();
    assert!(token.is_cancelled());
    assert!(*before.borrow());
    assert!(
        *token.subscribe().borrow(),
        "a writer started later sees it too"
    );
}
