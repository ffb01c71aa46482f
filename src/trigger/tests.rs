//! Unit tests of the trigger: AWS's documented events for both trigger sources through the
//! handler over a real directory file — right and wrong password, unknown and disabled users,
//! aliases, forgot-password rules, the cost cap, every hash family of the reference vectors —, the
//! attribute rules, the log digest, the settings, and that nothing secret reaches the logs.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsMigrateUser, CognitoEventUserPoolsMigrateUserTriggerSource,
};
use serde_json::Value;

use super::*;
use crate::directory::{DirectoryEntry, DirectoryFile, DirectoryWriter, SignIn};
use crate::logging::tests::Captured;
use crate::password::{CostCap, FirebaseHashConfig, HashContext, PasswordHash};
use crate::record::RawPassword;

const AUTH_EVENT: &str =
    include_str!("../../tests/fixtures/trigger/migrate-user-authentication.json");
const FORGOT_EVENT: &str =
    include_str!("../../tests/fixtures/trigger/migrate-user-forgot-password.json");
const VECTORS: &str = include_str!("../../tests/fixtures/passwords/vectors.json");

/// bcrypt cost 4 of "correct horse" (reference vector).
const BCRYPT4: &str = "$2b$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i";
const BCRYPT4_PASSWORD: &str = "correct horse";
/// bcrypt cost 5 of "Pässwörd-ünïcode" (reference vector).
const BCRYPT5: &str = "$2a$05$7m9Tz7X7DwJmlu/Y/lzhEeKyh2WCO//p6v0hxxWVK5nhrAvfluiAC";
const BCRYPT5_PASSWORD: &str = "Pässwörd-ünïcode";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cm-trigger-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn event(template: &str, user: &str, password: Option<&str>) -> CognitoEventUserPoolsMigrateUser {
    let mut v: Value = serde_json::from_str(template).unwrap();
    v["userName"] = user.into();
    match password {
        Some(p) => v["request"]["password"] = p.into(),
        None => {
            v["request"].as_object_mut().unwrap().remove("password");
        }
    }
    serde_json::from_value(v).unwrap()
}

fn auth(user: &str, password: &str) -> CognitoEventUserPoolsMigrateUser {
    event(AUTH_EVENT, user, Some(password))
}

fn forgot(user: &str) -> CognitoEventUserPoolsMigrateUser {
    event(FORGOT_EVENT, user, None)
}

fn entry(
    username: &str,
    attrs: &[(&str, &str)],
    hash: Option<&str>,
    enabled: bool,
) -> DirectoryEntry {
    DirectoryEntry {
        username: username.into(),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        enabled,
        groups: vec!["members".into()],
        password_hash: hash.map(str::to_string),
        record: 1,
    }
}

fn alias_pool() -> SignIn {
    SignIn {
        email: true,
        phone: true,
        preferred_username: false,
        username_attributes: false,
        case_sensitive: false,
    }
}

fn directory(name: &str, sign_in: SignIn, cap: CostCap) -> FileDirectory {
    let path = scratch(name).join("directory.db");
    let mut w = DirectoryWriter::create(&path, "us-east-1_EXAMPLE", sign_in).unwrap();
    let users = [
        entry(
            "alice",
            &[
                ("email", "alice.nguyen@example.com"),
                ("email_verified", "true"),
                ("given_name", "Alice"),
                ("custom:legacy_id", "1"),
                ("sub", "d2b6a3c1-0000-0000-0000-000000000001"),
                ("cognito:mfa_enabled", "false"),
            ],
            Some(BCRYPT4),
            true,
        ),
        entry(
            "mallory",
            &[("email", "mallory@example.com"), ("email_verified", "true")],
            Some(BCRYPT4),
            false,
        ),
        entry(
            "nopass",
            &[("email", "nopass@example.com"), ("email_verified", "yes")],
            None,
            true,
        ),
        entry(
            "unverified",
            &[
                ("email", "unverified@example.com"),
                ("email_verified", "false"),
            ],
            Some(BCRYPT4),
            true,
        ),
        entry(
            "costly",
            &[("email", "costly@example.com"), ("email_verified", "true")],
            Some(BCRYPT5),
            true,
        ),
        entry(
            "phoebe",
            &[
                ("phone_number", "+14155550123"),
                ("phone_number_verified", "1"),
            ],
            Some(BCRYPT4),
            true,
        ),
    ];
    for u in &users {
        w.add_entry(u).unwrap();
    }
    w.finish().unwrap();
    FileDirectory::open(&path, cap).unwrap()
}

fn handler(name: &str) -> Handler<FileDirectory> {
    Handler::new(
        directory(name, alias_pool(), CostCap::default()),
        AttributeRules::default(),
        LogDigest::with_key(b"test key"),
    )
}

fn attrs(e: &CognitoEventUserPoolsMigrateUser) -> BTreeMap<String, String> {
    e.cognito_event_user_pools_migrate_user_response
        .user_attributes
        .clone()
        .into_iter()
        .collect()
}

#[test]
fn documented_events_parse() {
    let a: CognitoEventUserPoolsMigrateUser = serde_json::from_str(AUTH_EVENT).unwrap();
    let h = &a.cognito_event_user_pools_header;
    assert_eq!(
        h.trigger_source,
        Some(CognitoEventUserPoolsMigrateUserTriggerSource::Authentication)
    );
    assert_eq!(h.user_name.as_deref(), Some("alice"));
    assert_eq!(h.user_pool_id.as_deref(), Some("us-east-1_EXAMPLE"));
    assert_eq!(
        h.caller_context.client_id.as_deref(),
        Some("1example23456789")
    );
    assert!(a
        .cognito_event_user_pools_migrate_user_request
        .password
        .is_some());
    assert!(a
        .cognito_event_user_pools_migrate_user_response
        .user_attributes
        .is_empty());

    let f: CognitoEventUserPoolsMigrateUser = serde_json::from_str(FORGOT_EVENT).unwrap();
    assert_eq!(
        f.cognito_event_user_pools_header.trigger_source,
        Some(CognitoEventUserPoolsMigrateUserTriggerSource::ForgotPassword)
    );
    assert!(f
        .cognito_event_user_pools_migrate_user_request
        .password
        .is_none());
}

#[test]
fn right_password_migrates_confirmed_and_suppressed() {
    let h = handler("right");
    let out = block_on(h.handle(auth("alice", BCRYPT4_PASSWORD))).unwrap();
    let r = &out.cognito_event_user_pools_migrate_user_response;
    assert_eq!(r.final_user_status.as_deref(), Some("CONFIRMED"));
    assert_eq!(r.message_action.as_deref(), Some("SUPPRESS"));
    assert!(!r.force_alias_creation);
    let a = attrs(&out);
    let expected: BTreeMap<String, String> = [
        ("custom:legacy_id", "1"),
        ("email", "alice.nguyen@example.com"),
        ("email_verified", "true"),
        ("given_name", "Alice"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        a, expected,
        "no sub, no cognito:*, no username when signed in by username"
    );
    // The password is not echoed back, and the answer is what Cognito reads.
    assert!(out
        .cognito_event_user_pools_migrate_user_request
        .password
        .is_none());
    let json = serde_json::to_value(&out).unwrap();
    assert!(!json.to_string().contains(BCRYPT4_PASSWORD));
    assert_eq!(json["response"]["finalUserStatus"], "CONFIRMED");
    assert_eq!(json["response"]["messageAction"], "SUPPRESS");
    assert_eq!(json["response"]["userAttributes"]["email_verified"], "true");
    assert_eq!(json["userName"], "alice");
    assert_eq!(json["triggerSource"], "UserMigration_Authentication");
    // Case-insensitive pool: the typed case does not matter.
    assert!(block_on(h.handle(auth("ALICE", BCRYPT4_PASSWORD))).is_ok());
}

#[test]
fn wrong_password_unknown_and_disabled_users_get_the_same_answer() {
    let h = handler("wrong");
    let wrong = block_on(h.handle(auth("alice", "correct hors?"))).unwrap_err();
    let unknown = block_on(h.handle(auth("nobody", BCRYPT4_PASSWORD))).unwrap_err();
    let disabled = block_on(h.handle(auth("mallory", BCRYPT4_PASSWORD))).unwrap_err();
    let no_hash = block_on(h.handle(auth("nopass", "anything"))).unwrap_err();
    let empty = block_on(h.handle(auth("alice", ""))).unwrap_err();
    for e in [wrong, unknown, disabled, no_hash, empty] {
        assert_eq!(e, TriggerError::Declined);
        let d: lambda_runtime::Diagnostic = e.into();
        assert_eq!(d.error_type, "UserMigrationDeclined");
        assert_eq!(d.error_message, "user migration declined");
    }
    // A failure answers normally again afterwards.
    assert!(block_on(h.handle(auth("alice", BCRYPT4_PASSWORD))).is_ok());
}

#[test]
fn directory_verdicts_name_the_reason_for_logs() {
    let d = directory("verdicts", alias_pool(), CostCap::default());
    let refused = |login: &str, pw: &str| match d.authenticate_now(login, pw).unwrap() {
        Verdict::Refused(r) => r,
        Verdict::Accepted(a) => panic!("accepted {a:?}"),
    };
    assert_eq!(refused("alice", "nope"), Refusal::WrongPassword);
    assert_eq!(refused("nobody", "nope"), Refusal::UnknownUser);
    assert_eq!(refused("nopass", "nope"), Refusal::NoPassword);
    match d.authenticate_now("mallory", BCRYPT4_PASSWORD).unwrap() {
        Verdict::Accepted(a) => assert!(!a.enabled, "disabled users verify; the handler refuses"),
        v => panic!("{v:?}"),
    }
    match d.authenticate_now("alice", BCRYPT4_PASSWORD).unwrap() {
        Verdict::Accepted(a) => {
            assert_eq!(a.scheme, Some("bcrypt"));
            assert_eq!(a.groups, vec!["members".to_string()]);
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn the_cost_cap_refuses_expensive_hashes() {
    let cap = CostCap {
        bcrypt_max_cost: 4,
        ..CostCap::default()
    };
    let d = directory("cap", alias_pool(), cap);
    match d.authenticate_now("costly", BCRYPT5_PASSWORD).unwrap() {
        Verdict::Refused(Refusal::OverCostCap(why)) => assert!(why.contains("cost 5"), "{why}"),
        v => panic!("{v:?}"),
    }
    let h = Handler::new(d, AttributeRules::default(), LogDigest::random());
    assert_eq!(
        block_on(h.handle(auth("costly", BCRYPT5_PASSWORD))).unwrap_err(),
        TriggerError::Declined
    );
    // Within the cap, the same user migrates.
    let h = handler("cap-ok");
    assert!(block_on(h.handle(auth("costly", BCRYPT5_PASSWORD))).is_ok());
}

#[test]
fn alias_sign_in_answers_the_legacy_username() {
    let h = handler("alias");
    let by_email = block_on(h.handle(auth("Alice.Nguyen@example.com", BCRYPT4_PASSWORD))).unwrap();
    assert_eq!(attrs(&by_email)["username"], "alice");
    let by_phone = block_on(h.handle(auth("+14155550123", BCRYPT4_PASSWORD))).unwrap();
    let a = attrs(&by_phone);
    assert_eq!(a["username"], "phoebe");
    assert_eq!(
        a["phone_number_verified"], "true",
        "\"1\" is answered as \"true\""
    );

    // Email as username: Cognito generates the username, so none is answered.
    let email_pool = SignIn {
        email: true,
        username_attributes: true,
        ..SignIn::default()
    };
    let h = Handler::new(
        directory("email-username", email_pool, CostCap::default()),
        AttributeRules::default(),
        LogDigest::random(),
    );
    let out = block_on(h.handle(auth("alice.nguyen@example.com", BCRYPT4_PASSWORD))).unwrap();
    assert!(!attrs(&out).contains_key("username"));
}

#[test]
fn forgot_password_needs_an_enabled_user_with_a_verified_contact() {
    let h = handler("forgot");
    let out = block_on(h.handle(forgot("alice"))).unwrap();
    let r = &out.cognito_event_user_pools_migrate_user_response;
    assert_eq!(r.final_user_status, None);
    assert_eq!(r.message_action.as_deref(), Some("SUPPRESS"));
    assert_eq!(attrs(&out)["email_verified"], "true");
    // A user without any hash can still be migrated to reset their password.
    let out = block_on(h.handle(forgot("nopass"))).unwrap();
    assert_eq!(attrs(&out)["email_verified"], "true");
    // Phone verified is enough.
    assert!(block_on(h.handle(forgot("+14155550123"))).is_ok());
    for who in ["nobody", "mallory", "unverified"] {
        assert_eq!(
            block_on(h.handle(forgot(who))).unwrap_err(),
            TriggerError::Declined,
            "{who}"
        );
    }
}

#[test]
fn events_without_a_trigger_source_or_user_are_declined() {
    let h = handler("odd");
    let mut e = auth("alice", BCRYPT4_PASSWORD);
    e.cognito_event_user_pools_header.trigger_source = None;
    assert_eq!(block_on(h.handle(e)).unwrap_err(), TriggerError::Declined);
    assert_eq!(
        block_on(h.handle(auth("  ", BCRYPT4_PASSWORD))).unwrap_err(),
        TriggerError::Declined
    );
    let mut v: Value = serde_json::from_str(AUTH_EVENT).unwrap();
    v["triggerSource"] = "UserMigration_Somethingelse".into();
    assert!(serde_json::from_value::<CognitoEventUserPoolsMigrateUser>(v).is_err());
}

struct Broken;

impl UserDirectory for Broken {
    async fn authenticate(&self, _: &str, _: &str) -> Result<Verdict, DirectoryUnavailable> {
        Err(DirectoryUnavailable("disk on fire".into()))
    }
    async fn lookup(&self, _: &str) -> Result<Option<LegacyAccount>, DirectoryUnavailable> {
        Err(DirectoryUnavailable("disk on fire".into()))
    }
}

#[test]
fn an_unreadable_directory_is_an_unavailable_answer() {
    let h = Handler::new(Broken, AttributeRules::default(), LogDigest::random());
    let e = block_on(h.handle(auth("alice", "pw"))).unwrap_err();
    assert_eq!(e, TriggerError::Unavailable);
    let d: lambda_runtime::Diagnostic = e.into();
    assert_eq!(d.error_type, "LegacyDirectoryUnavailable");
    assert_eq!(
        block_on(h.handle(forgot("alice"))).unwrap_err(),
        TriggerError::Unavailable
    );
}

#[test]
fn logs_show_a_digest_never_the_user_password_or_hash() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let h = handler("logs");
    tracing::subscriber::with_default(subscriber, || {
        block_on(async {
            let _ = h.handle(auth("alice", BCRYPT4_PASSWORD)).await;
            let _ = h.handle(auth("alice", "Wr0ng-Secret!")).await;
            let _ = h
                .handle(auth("Alice.Nguyen@example.com", BCRYPT4_PASSWORD))
                .await;
            let _ = h.handle(auth("unknown-user", "Wr0ng-Secret!")).await;
            let _ = h.handle(forgot("alice")).await;
        })
    });
    let text = captured.text();
    assert_eq!(text.lines().count(), 5, "one line per invocation:\n{text}");
    let digest = LogDigest::with_key(b"test key").of("alice");
    assert!(text.contains(&digest), "{text}");
    // Each line's message is one JSON object (docs/trigger.md, "The log line").
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(&l[l.find('{').expect(l)..]).expect(l))
        .collect();
    let field = |i: usize, name: &str| lines[i][name].clone();
    let outcomes: Vec<_> = (0..5).map(|i| field(i, "outcome")).collect();
    assert_eq!(
        outcomes,
        ["migrated", "declined", "migrated", "declined", "migrated"],
        "{text}"
    );
    let reasons: Vec<_> = (0..5).map(|i| field(i, "reason")).collect();
    assert_eq!(
        reasons,
        ["ok", "wrong_password", "ok", "unknown_user", "ok"],
        "{text}"
    );
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["event"], "cognito-migrate-trigger.invocation");
        assert_eq!(line["version"], 1);
        assert_eq!(line["directory"], "file");
        assert!(line["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
        assert_eq!(line["cold_start"], i == 0, "{line}");
        assert_eq!(line["user"].as_str().unwrap().len(), 12, "{line}");
    }
    assert_eq!(field(0, "trigger"), "authentication");
    assert_eq!(field(4, "trigger"), "forgot_password");
    assert!(field(0, "scheme").is_string(), "{text}");
    assert_eq!(field(0, "error_type"), serde_json::Value::Null);
    assert_eq!(field(1, "error_type"), "UserMigrationDeclined");
    for secret in [
        "alice",
        "Alice",
        "unknown-user",
        "nguyen",
        BCRYPT4_PASSWORD,
        "Wr0ng-Secret!",
        "t/ab7kONqOqKnhfETA",
    ] {
        assert!(!text.contains(secret), "the log shows {secret:?}:\n{text}");
    }
}

#[test]
fn log_digest_is_keyed_short_and_case_insensitive() {
    let a = LogDigest::with_key(b"k1");
    let d = a.of("Alice");
    assert_eq!(d.len(), 12);
    assert!(d.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(d, a.of(" alice "));
    assert_ne!(d, a.of("bob"));
    assert_ne!(d, LogDigest::with_key(b"k2").of("alice"));
    assert_ne!(
        LogDigest::random().of("alice"),
        LogDigest::random().of("alice")
    );
    assert!(!format!("{a:?}").contains("k1"));
    // HMAC-SHA256(key "k1", "alice"), computed independently (Python hmac).
    assert_eq!(d, "aff3e2227d25");
}

#[test]
fn attribute_rules() {
    let account = LegacyAccount {
        username: "u".into(),
        username_attribute: Some("u".into()),
        attributes: [
            ("email", "e@example.com"),
            ("email_verified", "YES"),
            ("phone_number_verified", "true"),
            ("tier", "gold"),
            ("custom:plan", "pro"),
            ("custom:", "x"),
            ("sub", "s"),
            ("identities", "[]"),
            ("dev:custom:x", "y"),
            ("cognito:user_status", "CONFIRMED"),
            ("username", "other"),
            ("name", "  "),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        enabled: true,
        groups: vec![],
        scheme: None,
    };
    let all = AttributeRules::default().answer(&account);
    let keys: Vec<&str> = all.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "custom:plan",
            "custom:tier",
            "email",
            "email_verified",
            "username"
        ],
        "phone_number_verified without a phone number is dropped"
    );
    assert_eq!(all["email_verified"], "true");
    assert_eq!(all["username"], "u");
    assert!(attributes::has_verified_contact(&all));

    let allow: BTreeSet<String> = ["email", "tier"].iter().map(|s| s.to_string()).collect();
    let some = AttributeRules::new(Some(allow)).answer(&account);
    let keys: Vec<&str> = some.keys().map(String::as_str).collect();
    assert_eq!(keys, ["custom:tier", "email", "username"]);
    assert!(!attributes::has_verified_contact(&some));
}

/// The settings for an environment of `pairs`.
fn settings_of(pairs: &[(&str, &str)]) -> Result<TriggerSettings, SettingsError> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TriggerSettings::from_lookup(move |k| map.get(k).cloned())
}

#[test]
fn settings_from_the_environment() {
    let s = settings_of(&[(env::DIRECTORY, "/var/task/directory.db")]).unwrap();
    assert_eq!(
        s.source,
        DirectorySource::File("/var/task/directory.db".into())
    );
    assert_eq!(s.cost_cap, CostCap::default());
    assert_eq!(s.download_dir, PathBuf::from("/tmp"));
    assert!(s.verify_download);

    let s = settings_of(&[
        (env::DIRECTORY, "s3://my-bucket/path/to/directory.db"),
        (env::COST_CAP, "bcrypt=12, pbkdf2=1000000,memory_kib=65536"),
        (env::ATTRIBUTES, "email, email_verified,,custom:tier"),
        (env::LOG_KEY, "secret-log-key"),
        (env::VERIFY_DOWNLOAD, "false"),
    ])
    .unwrap();
    assert_eq!(
        s.source,
        DirectorySource::S3 {
            bucket: "my-bucket".into(),
            key: "path/to/directory.db".into()
        }
    );
    assert_eq!(s.cost_cap.bcrypt_max_cost, 12);
    assert_eq!(s.cost_cap.pbkdf2_max_iterations, 1_000_000);
    assert_eq!(s.cost_cap.max_memory_kib, 65536);
    assert_eq!(s.attributes.as_ref().unwrap().len(), 3);
    assert!(!s.verify_download);
    assert!(!format!("{s:?}").contains("secret-log-key"));

    let s = settings_of(&[
        (env::LEGACY_POOL_ID, "eu-west-1_Old"),
        (env::LEGACY_CLIENT_ID, "client"),
        (env::LEGACY_CLIENT_SECRET, "very-secret"),
    ])
    .unwrap();
    match &s.source {
        DirectorySource::Pool(p) => {
            assert_eq!(p.region, "eu-west-1");
            assert_eq!(p.client_secret.as_deref(), Some("very-secret"));
            assert!(!format!("{p:?}").contains("very-secret"));
        }
        other => panic!("{other:?}"),
    }

    assert_eq!(settings_of(&[]).unwrap_err(), SettingsError::NoSource);
    assert_eq!(
        settings_of(&[
            (env::DIRECTORY, "/d.db"),
            (env::LEGACY_POOL_ID, "us-east-1_x")
        ])
        .unwrap_err(),
        SettingsError::TwoSources
    );
    assert!(
        settings_of(&[(env::LEGACY_POOL_ID, "us-east-1_x")]).is_err(),
        "client id required"
    );
    assert!(settings_of(&[(env::DIRECTORY, "s3://bucket-only")]).is_err());
    assert!(settings_of(&[(env::DIRECTORY, "/d.db"), (env::COST_CAP, "bcrypt=x")]).is_err());
    assert!(settings_of(&[(env::DIRECTORY, "/d.db"), (env::COST_CAP, "nope=1")]).is_err());
}

/// Every reference vector (every hash family and notation), stored in a directory file through
/// `PasswordHash::encode` and verified by the trigger: right password in, wrong password out.
#[test]
fn every_hash_family_of_the_reference_vectors() {
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let path = scratch("vectors").join("directory.db");
    let mut w = DirectoryWriter::create(&path, "us-east-1_EXAMPLE", alias_pool()).unwrap();
    let mut cases = Vec::new();
    let mut families = BTreeSet::new();
    for (i, v) in vectors.iter().enumerate() {
        if v.get("verify").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let raw = &v["raw"];
        let mut ctx = HashContext::default();
        let rp = match s(raw, "kind").as_str() {
            "encoded" => RawPassword::Encoded(s(raw, "value")),
            "aspnet" => RawPassword::AspNetIdentity(s(raw, "value")),
            "keycloak" => RawPassword::Keycloak {
                secret_data: s(raw, "secret_data"),
                credential_data: s(raw, "credential_data"),
            },
            "firebase" => {
                let cfg = serde_json::to_string(&raw["hash_config"]).unwrap();
                ctx.firebase = Some(FirebaseHashConfig::from_json(&cfg).unwrap());
                RawPassword::Firebase {
                    hash: s(raw, "hash"),
                    salt: s(raw, "salt"),
                }
            }
            other => panic!("unknown kind {other}"),
        };
        let hash = PasswordHash::from_raw(&rp, &ctx).unwrap();
        families.insert(s(v, "scheme"));
        let username = format!("user{i}");
        w.add_entry(&DirectoryEntry {
            username: username.clone(),
            attributes: [("email".to_string(), format!("user{i}@example.com"))].into(),
            enabled: true,
            groups: vec![],
            password_hash: Some(hash.encode()),
            record: i as u64 + 1,
        })
        .unwrap();
        cases.push((
            username,
            s(v, "password"),
            s(v, "wrong_password"),
            s(v, "scheme"),
        ));
    }
    w.finish().unwrap();
    assert!(families.len() >= 20, "only {} families", families.len());
    for legacy in [
        "django-sha1",
        "django-md5",
        "django-unsalted-sha1",
        "django-unsalted-md5",
        "django-crypt",
    ] {
        assert!(families.contains(legacy), "no {legacy} vector");
    }
    let d = FileDirectory::new(DirectoryFile::open(&path).unwrap(), CostCap::default());
    let threads = 2;
    let chunk = cases.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for part in cases.chunks(chunk) {
            let d = &d;
            scope.spawn(move || {
                for (user, right, wrong, scheme) in part {
                    match d.authenticate_now(user, right).unwrap() {
                        Verdict::Accepted(a) => assert!(a.scheme.is_some(), "{scheme}"),
                        v => panic!("{scheme} ({user}): right password refused: {v:?}"),
                    }
                    assert_eq!(
                        d.authenticate_now(user, wrong).unwrap(),
                        Verdict::Refused(Refusal::WrongPassword),
                        "{scheme} ({user})"
                    );
                }
            });
        }
    });
}

/// Unknown users (and users without a usable hash) spend a verification on another user's hash,
/// even when most rows have none, so "no such user" is not the fast answer.
#[test]
fn decoy_verification_finds_a_usable_hash_among_users_without_one() {
    let build = |name: &str, hashes: &[Option<&str>]| {
        let path = scratch(name).join("directory.db");
        let mut w = DirectoryWriter::create(&path, "us-east-1_EXAMPLE", alias_pool()).unwrap();
        for (i, h) in hashes.iter().enumerate() {
            let mut e = entry(&format!("user{i}"), &[], *h, true);
            e.record = i as u64 + 1;
            w.add_entry(&e).unwrap();
        }
        w.finish().unwrap();
        path
    };
    let mut mostly_without = vec![None; 9];
    mostly_without.push(Some(BCRYPT4));
    let d = FileDirectory::open(build("decoy-mixed", &mostly_without), CostCap::default()).unwrap();
    for i in 0..50 {
        let login = format!("nobody{i}");
        assert!(
            d.decoy(&login, "whatever"),
            "{login}: no decoy verification"
        );
        assert_eq!(
            d.authenticate_now(&login, "whatever").unwrap(),
            Verdict::Refused(Refusal::UnknownUser)
        );
    }
    // The user without a hash is refused after a decoy verification too.
    assert!(d.decoy("user0", BCRYPT4_PASSWORD));
    assert_eq!(
        d.authenticate_now("user0", BCRYPT4_PASSWORD).unwrap(),
        Verdict::Refused(Refusal::NoPassword)
    );

    // No usable hash at all (none, or only over the cap): nothing to verify, nobody can sign in.
    let none = FileDirectory::open(build("decoy-none", &[None, None]), CostCap::default()).unwrap();
    assert!(!none.decoy("nobody", "whatever"));
    let cap = CostCap {
        bcrypt_max_cost: 4,
        ..CostCap::default()
    };
    let over = FileDirectory::open(build("decoy-over", &[Some(BCRYPT5)]), cap).unwrap();
    assert!(!over.decoy("nobody", "whatever"));
}

#[test]
fn the_new_pools_username_attributes_for_pool_to_pool_moves() {
    let generates = |value: Option<&str>| {
        let mut pairs = vec![
            (env::LEGACY_POOL_ID, "eu-west-1_Old"),
            (env::LEGACY_CLIENT_ID, "client"),
        ];
        if let Some(v) = value {
            pairs.push((env::NEW_POOL_USERNAME_ATTRIBUTES, v));
        }
        match settings_of(&pairs).map(|s| s.source) {
            Ok(DirectorySource::Pool(p)) => Ok(p.new_pool_generates_usernames),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        }
    };
    assert_eq!(generates(None), Ok(None), "as the old pool");
    assert_eq!(generates(Some("email")), Ok(Some(true)));
    assert_eq!(generates(Some("Email, phone_number")), Ok(Some(true)));
    assert_eq!(generates(Some("none")), Ok(Some(false)));
    for bad in ["preferred_username", "email,none", "yes"] {
        let e = generates(Some(bad)).unwrap_err();
        assert!(
            e.to_string().contains(env::NEW_POOL_USERNAME_ATTRIBUTES),
            "{bad}: {e}"
        );
    }
    // A directory file records its own pool's settings: the variable is a mistake there.
    let e = settings_of(&[
        (env::DIRECTORY, "/d.db"),
        (env::NEW_POOL_USERNAME_ATTRIBUTES, "email"),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("only used with"), "{e}");
}

/// A directory that answers too late (a legacy pool that hangs).
struct Slow;

impl UserDirectory for Slow {
    async fn authenticate(&self, _: &str, _: &str) -> Result<Verdict, DirectoryUnavailable> {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        Ok(Verdict::Refused(Refusal::WrongPassword))
    }
    async fn lookup(&self, _: &str) -> Result<Option<LegacyAccount>, DirectoryUnavailable> {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        Ok(None)
    }
}

#[test]
fn a_directory_past_the_deadline_is_an_unavailable_answer_in_time() {
    assert!(
        DIRECTORY_DEADLINE < std::time::Duration::from_secs(5),
        "Cognito waits 5 s"
    );
    let h = Handler::new(Slow, AttributeRules::default(), LogDigest::random())
        .with_deadline(std::time::Duration::from_millis(50));
    let started = std::time::Instant::now();
    assert_eq!(
        block_on(h.handle(auth("alice", "pw"))).unwrap_err(),
        TriggerError::Unavailable
    );
    assert_eq!(
        block_on(h.handle(forgot("alice"))).unwrap_err(),
        TriggerError::Unavailable
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the deadline did not cut the wait short: {:?}",
        started.elapsed()
    );
}

// ------------------------------------------------------------------------------------------------
// Strict events, the user pool check, the local integrity check and init errors (issue 14).

fn raw(v: Value) -> RawEvent {
    RawEvent::Json(v)
}

fn auth_value() -> Value {
    let mut v: Value = serde_json::from_str(AUTH_EVENT).unwrap();
    v["request"]["password"] = BCRYPT4_PASSWORD.into();
    v
}

/// The authentication event for alice with the right password, changed by `edit`.
fn auth_edited(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = auth_value();
    edit(&mut v);
    v
}

#[test]
fn the_strict_reading_of_the_documented_events_is_serdes() {
    use serde_json::json;
    // The reference: aws_lambda_events' own serde reading of AWS's documented events.
    for text in [AUTH_EVENT, FORGOT_EVENT] {
        let strict = parse_event(raw(serde_json::from_str(text).unwrap())).unwrap();
        let serde: CognitoEventUserPoolsMigrateUser = serde_json::from_str(text).unwrap();
        assert_eq!(strict, serde);
    }
    // Nulls where AWS's documentation allows them, and no optional members at all.
    let minimal = json!({
        "triggerSource": "UserMigration_ForgotPassword", "userName": "alice",
        "userPoolId": "us-east-1_EXAMPLE", "request": {"password": null, "validationData": null},
        "callerContext": null, "response": null
    });
    let e = parse_event(raw(minimal)).unwrap();
    assert_eq!(
        e.cognito_event_user_pools_header.trigger_source,
        Some(CognitoEventUserPoolsMigrateUserTriggerSource::ForgotPassword)
    );
    assert!(e
        .cognito_event_user_pools_migrate_user_request
        .password
        .is_none());
}

#[test]
fn malformed_events_are_refused_naming_the_member_never_the_value() {
    use serde_json::json;
    let wrong = |member, expected, found| EventError::WrongType {
        member,
        expected,
        found,
    };
    let cases: Vec<(Value, EventError)> = vec![
        (
            auth_edited(|v| v["request"] = json!([BCRYPT4_PASSWORD])),
            wrong("request", "an object", "an array"),
        ),
        (
            auth_edited(|v| v["request"]["password"] = json!(12345)),
            wrong("request.password", "a string", "a number"),
        ),
        (
            auth_edited(|v| v["request"]["password"] = json!({"p": BCRYPT4_PASSWORD})),
            wrong("request.password", "a string", "an object"),
        ),
        (
            auth_edited(|v| v["userName"] = json!(98765)),
            wrong("userName", "a string", "a number"),
        ),
        (
            auth_edited(|v| v["userPoolId"] = json!(true)),
            wrong("userPoolId", "a string", "a boolean"),
        ),
        (
            auth_edited(|v| v["triggerSource"] = json!("UserMigration_Evil-4711")),
            EventError::UnknownTriggerSource,
        ),
        (
            auth_edited(|v| v["triggerSource"] = json!(["UserMigration_Authentication"])),
            wrong("triggerSource", "a string", "an array"),
        ),
        (
            auth_edited(|v| v["callerContext"]["clientId"] = json!(31337)),
            wrong("callerContext.clientId", "a string", "a number"),
        ),
        (
            auth_edited(|v| v["request"]["clientMetadata"] = json!({"k": [31337]})),
            wrong("request.clientMetadata.*", "a string", "an array"),
        ),
        (
            auth_edited(|v| v["response"] = json!("Evil-4711")),
            wrong("response", "an object", "a string"),
        ),
        (
            json!([BCRYPT4_PASSWORD]),
            wrong("the event", "an object", "an array"),
        ),
    ];
    let mut missing = Vec::new();
    for member in ["triggerSource", "userName", "userPoolId", "request"] {
        let mut v = auth_value();
        v.as_object_mut().unwrap().remove(member);
        missing.push((v, EventError::Missing { member }));
    }
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let h = handler("malformed");
    let all: Vec<_> = cases.into_iter().chain(missing).collect();
    for (v, expected) in &all {
        assert_eq!(&parse_event(raw(v.clone())).unwrap_err(), expected, "{v}");
    }
    let answers: Vec<_> = tracing::subscriber::with_default(subscriber, || {
        all.iter()
            .map(|(v, _)| block_on(h.handle_raw(raw(v.clone()))))
            .collect()
    });
    for a in answers {
        assert_eq!(a.unwrap_err(), TriggerError::Declined);
    }
    let text = captured.text();
    assert_eq!(text.lines().count(), all.len(), "one line each:\n{text}");
    assert_eq!(
        text.matches("malformed_event").count() + text.matches("unknown_trigger_source").count(),
        all.len(),
        "{text}"
    );
    for secret in [
        BCRYPT4_PASSWORD,
        "alice",
        "12345",
        "98765",
        "31337",
        "Evil-4711",
    ] {
        assert!(!text.contains(secret), "the log shows {secret:?}:\n{text}");
    }
}

#[test]
fn a_body_that_is_not_json_is_a_raw_event_not_an_error() {
    use serde::Deserialize;
    for body in [
        &b"{\"request\": {\"password\": \"correct horse\", 12345"[..],
        b"not json",
        b"",
    ] {
        // As lambda_runtime reads it: one value from the start of the body.
        let mut de = serde_json::Deserializer::from_slice(body);
        let event = RawEvent::deserialize(&mut de).expect("never an error");
        assert!(matches!(event, RawEvent::NotJson));
        assert_eq!(parse_event(event).unwrap_err(), EventError::NotJson);
    }
    let h = handler("not-json");
    assert_eq!(
        block_on(h.handle_raw(RawEvent::NotJson)).unwrap_err(),
        TriggerError::Declined
    );
}

#[test]
fn an_event_from_another_user_pool_is_declined() {
    let h = handler("other-pool");
    assert_eq!(h.directory().pool_id(), Some("us-east-1_EXAMPLE"));
    let mut e = auth("alice", BCRYPT4_PASSWORD);
    e.cognito_event_user_pools_header.user_pool_id = Some("us-east-1_OTHER".into());
    assert_eq!(block_on(h.handle(e)).unwrap_err(), TriggerError::Declined);
    let mut e = forgot("alice");
    e.cognito_event_user_pools_header.user_pool_id = None;
    assert_eq!(block_on(h.handle(e)).unwrap_err(), TriggerError::Declined);
    let other = auth_edited(|v| v["userPoolId"] = "us-east-1_OTHER".into());
    assert_eq!(
        block_on(h.handle_raw(raw(other))).unwrap_err(),
        TriggerError::Declined
    );
    // The directory's own pool migrates.
    assert!(block_on(h.handle(auth("alice", BCRYPT4_PASSWORD))).is_ok());
    // A directory bound to no pool (another pool as directory) checks nothing.
    assert_eq!(Broken.pool_id(), None);
}

#[test]
fn a_tampered_directory_file_fails_its_check_and_answers_unavailable() {
    let path = directory("tampered", alias_pool(), CostCap::default())
        .file()
        .path()
        .to_path_buf();
    match FileDirectory::open_checked(&path, CostCap::default()).unwrap() {
        CheckedDirectory::Intact(d) => assert_eq!(d.pool_id(), Some("us-east-1_EXAMPLE")),
        CheckedDirectory::Damaged(e) => panic!("an intact file failed: {e}"),
    }
    // One character of one row changed behind SQLite's back: SQLite reads it without complaint.
    let mut bytes = std::fs::read(&path).unwrap();
    let from = b"\"given_name\":\"Alice\"";
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    bytes[at + 14] = b'E';
    std::fs::write(&path, bytes).unwrap();
    let unchecked = FileDirectory::open(&path, CostCap::default()).unwrap();
    assert!(matches!(
        unchecked.authenticate_now("alice", BCRYPT4_PASSWORD),
        Ok(Verdict::Accepted(_))
    ));

    let checked = FileDirectory::open_checked(&path, CostCap::default()).unwrap();
    match &checked {
        CheckedDirectory::Damaged(crate::directory::DirectoryError::ChecksumMismatch {
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(checked.pool_id(), None);
    let h = Handler::new(checked, AttributeRules::default(), LogDigest::random());
    for e in [
        auth("alice", BCRYPT4_PASSWORD),
        auth("nobody", "x"),
        forgot("alice"),
    ] {
        assert_eq!(
            block_on(h.handle(e)).unwrap_err(),
            TriggerError::Unavailable
        );
    }
}

#[test]
fn init_errors_name_the_variable_and_their_type() {
    let e = InitError::from(SettingsError::NoSource);
    assert_eq!(e.error_type(), "Runtime.InvalidConfiguration");
    assert!(e.to_string().contains(env::DIRECTORY), "{e}");
    let e = InitError::from(
        settings_of(&[(env::DIRECTORY, "/d.db"), (env::COST_CAP, "x")]).unwrap_err(),
    );
    assert!(e.to_string().starts_with(env::COST_CAP), "{e}");
    let missing = FileDirectory::open_checked("/nonexistent/d.db", CostCap::default()).unwrap_err();
    let e = InitError::Directory(missing);
    assert_eq!(e.error_type(), "Runtime.LegacyDirectoryUnavailable");
    let d = e.diagnostic();
    assert_eq!(d.error_type, "Runtime.LegacyDirectoryUnavailable");
    assert!(
        d.error_message
            .starts_with("COGNITO_MIGRATE_DIRECTORY: directory file /nonexistent/d.db: "),
        "{}",
        d.error_message
    );
    // The cause is in the message once, not repeated as a source.
    assert!(std::error::Error::source(&e).is_none());
}
