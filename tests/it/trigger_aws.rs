//! The trigger against the project's local Cognito + S3 emulator (tests/emulator): a directory file
//! downloaded from S3 and checked against its checksum, and another user pool as the directory
//! (AdminInitiateAuth with ADMIN_USER_PASSWORD_AUTH, AdminGetUser, AdminListGroupsForUser) — both
//! through the real binary under the fake Lambda Runtime API, and the pool directory directly.
//!
//! Why: these are the two paths of the trigger that talk to AWS; the emulator answers as the real
//! services do, on loopback, so they are tested without an AWS account.

use std::path::Path;

use crate::common::tempdir;
use crate::common::trigger::{
    event, FakeRuntime, Trigger, AUTH_EVENT, BCRYPT4, BCRYPT4_PASSWORD, FORGOT_EVENT, WAIT,
};
use crate::common::Emulator;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, ExplicitAuthFlowsType, MessageActionType, UsernameAttributeType,
};
use aws_sdk_cognitoidentityprovider::Client;
use cognito_migrate::directory::{DirectoryEntry, DirectoryWriter, SignIn};
use cognito_migrate::trigger::{PoolDirectory, Refusal, UserDirectory, Verdict};
use serde_json::Value;

fn directory_bytes(dir: &Path) -> Vec<u8> {
    let path = dir.join("built.db");
    // The fixture events' pool: the trigger declines events from any other pool.
    let mut w = DirectoryWriter::create(&path, "us-east-1_EXAMPLE", SignIn::default()).unwrap();
    w.add_entry(&DirectoryEntry {
        username: "alice".into(),
        attributes: [
            ("email".to_string(), "alice@example.com".to_string()),
            ("email_verified".to_string(), "true".to_string()),
        ]
        .into(),
        enabled: true,
        groups: vec![],
        password_hash: Some(BCRYPT4.into()),
        record: 1,
    })
    .unwrap();
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

fn env_of(emu: &Emulator, extra: &[(&str, String)]) -> Vec<(String, String)> {
    emu.cli_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(extra.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .collect()
}

fn spawn(runtime: &FakeRuntime, env: &[(String, String)], log: &Path) -> Trigger {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Trigger::spawn(runtime, &pairs, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_directory_is_downloaded_checked_and_served() {
    let emu = Emulator::start();
    let sdk = emu.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket("directories")
        .send()
        .await
        .unwrap();
    let dir = tempdir("s3");
    let good = directory_bytes(&dir);
    // Same length, different content: SQLite reads it fine, only the checksum can tell.
    let text = String::from_utf8_lossy(&good).to_string();
    assert!(text.contains("alice@example.com"));
    let mut bad = good.clone();
    let needle = b"alice@example.com";
    let mut replaced = 0;
    for i in 0..bad.len().saturating_sub(needle.len()) {
        if &bad[i..i + needle.len()] == needle {
            bad[i + 4] = b'a'; // alica@example.com
            replaced += 1;
        }
    }
    assert!(replaced > 0);
    for (key, body) in [("prod/directory.db", good), ("prod/tampered.db", bad)] {
        s3.put_object()
            .bucket("directories")
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }

    let runtime = FakeRuntime::start();
    let download = dir.join("download");
    let env = env_of(
        &emu,
        &[
            (
                "COGNITO_MIGRATE_DIRECTORY",
                "s3://directories/prod/directory.db".into(),
            ),
            (
                "COGNITO_MIGRATE_DOWNLOAD_DIR",
                download.display().to_string(),
            ),
        ],
    );
    let trigger = spawn(&runtime, &env, &dir.join("good.log"));
    assert!(runtime.first_next(WAIT).is_some(), "{}", trigger.log());
    let a = runtime.call(&event(AUTH_EVENT, "alice", Some(BCRYPT4_PASSWORD)));
    assert_eq!(a.kind, "response", "{a:?}\n{}", trigger.log());
    let copy = download.join("cognito-migrate-directory.db");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(
        trigger.log().contains("directory file downloaded"),
        "{}",
        trigger.log()
    );
    drop(trigger);

    let env = env_of(
        &emu,
        &[
            (
                "COGNITO_MIGRATE_DIRECTORY",
                "s3://directories/prod/tampered.db".into(),
            ),
            (
                "COGNITO_MIGRATE_DOWNLOAD_DIR",
                dir.join("download2").display().to_string(),
            ),
        ],
    );
    let runtime = FakeRuntime::start();
    let mut trigger = spawn(&runtime, &env, &dir.join("bad.log"));
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = trigger.child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "{}", trigger.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    assert!(
        trigger.log().contains("does not match its checksum"),
        "{}",
        trigger.log()
    );
    assert!(runtime
        .first_next(std::time::Duration::from_millis(10))
        .is_none());
    // Reported to Lambda as the reason the init failed.
    let reported = runtime
        .init_error(std::time::Duration::from_secs(1))
        .unwrap_or_else(|| panic!("nothing posted to /runtime/init/error"));
    let v: serde_json::Value = serde_json::from_str(&reported.body).unwrap();
    assert_eq!(v["errorType"], "Runtime.LegacyDirectoryUnavailable", "{v}");
    let message = v["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("COGNITO_MIGRATE_DIRECTORY: ")
            && message.contains("does not match its checksum"),
        "{v}"
    );

    let env = env_of(
        &emu,
        &[(
            "COGNITO_MIGRATE_DIRECTORY",
            "s3://directories/prod/missing.db".into(),
        )],
    );
    let runtime = FakeRuntime::start();
    let mut trigger = spawn(&runtime, &env, &dir.join("missing.log"));
    let deadline = std::time::Instant::now() + WAIT;
    while trigger.child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "{}", trigger.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        trigger.log().contains("s3://directories/prod/missing.db"),
        "{}",
        trigger.log()
    );
}

/// A pool of the emulator (with email as username if `email_username`) and an app client of it
/// that allows ADMIN_USER_PASSWORD_AUTH: (pool id, client id).
async fn pool_with_client(c: &Client, name: &str, email_username: bool) -> (String, String) {
    let mut create = c.create_user_pool().pool_name(name);
    if email_username {
        create = create.username_attributes(UsernameAttributeType::Email);
    }
    let pool = create
        .send()
        .await
        .unwrap()
        .user_pool()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let client_id = c
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("migration")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .unwrap()
        .user_pool_client()
        .unwrap()
        .client_id()
        .unwrap()
        .to_string();
    (pool, client_id)
}

/// A confirmed user with a verified email and a permanent password.
async fn add_user(c: &Client, pool: &str, username: &str, email: &str, password: &str) {
    let attr = |n: &str, v: &str| AttributeType::builder().name(n).value(v).build().unwrap();
    c.admin_create_user()
        .user_pool_id(pool)
        .username(username)
        .user_attributes(attr("email", email))
        .user_attributes(attr("email_verified", "true"))
        .user_attributes(attr("given_name", "Legacy"))
        .message_action(MessageActionType::Suppress)
        .send()
        .await
        .unwrap();
    c.admin_set_user_password()
        .user_pool_id(pool)
        .username(username)
        .password(password)
        .permanent(true)
        .send()
        .await
        .unwrap();
}

async fn legacy_pool(c: &Client) -> (String, String) {
    let (pool, client_id) = pool_with_client(c, "legacy", false).await;
    for (name, email, password) in [
        ("alice", "alice@example.com", "Blue-Kettle-42"),
        ("mallory", "mallory@example.com", "Mallory-Pass-1"),
    ] {
        add_user(c, &pool, name, email, password).await;
    }
    c.create_group()
        .user_pool_id(&pool)
        .group_name("admins")
        .send()
        .await
        .unwrap();
    c.admin_add_user_to_group()
        .user_pool_id(&pool)
        .username("alice")
        .group_name("admins")
        .send()
        .await
        .unwrap();
    c.admin_disable_user()
        .user_pool_id(&pool)
        .username("mallory")
        .send()
        .await
        .unwrap();
    (pool, client_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_pool_is_the_directory() {
    let emu = Emulator::start();
    let c = Client::new(&emu.sdk_config().await);
    let (pool, client_id) = legacy_pool(&c).await;

    let d = PoolDirectory::new(c.clone(), &pool, &client_id, None);
    match d.authenticate("alice", "Blue-Kettle-42").await.unwrap() {
        Verdict::Accepted(a) => {
            assert_eq!(a.username, "alice");
            assert!(a.enabled);
            assert_eq!(a.groups, vec!["admins".to_string()]);
            assert_eq!(a.attributes["email"], "alice@example.com");
            assert_eq!(a.username_attribute, None, "signed in by username");
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(
        d.authenticate("alice", "wrong").await.unwrap(),
        Verdict::Refused(Refusal::WrongPassword)
    );
    match d.authenticate("nobody", "Blue-Kettle-42").await.unwrap() {
        Verdict::Refused(Refusal::UnknownUser | Refusal::WrongPassword) => {}
        v => panic!("{v:?}"),
    }
    match d.authenticate("mallory", "Mallory-Pass-1").await.unwrap() {
        Verdict::Refused(_) => {}
        Verdict::Accepted(a) => assert!(!a.enabled, "a disabled user must not migrate"),
    }
    assert!(d.lookup("alice").await.unwrap().is_some());
    assert!(d.lookup("nobody").await.unwrap().is_none());

    // The binary with COGNITO_MIGRATE_LEGACY_POOL_ID.
    let dir = tempdir("pool");
    let runtime = FakeRuntime::start();
    let env = env_of(
        &emu,
        &[
            ("COGNITO_MIGRATE_LEGACY_POOL_ID", pool.clone()),
            ("COGNITO_MIGRATE_LEGACY_CLIENT_ID", client_id.clone()),
        ],
    );
    let trigger = spawn(&runtime, &env, &dir.join("pool.log"));
    assert!(runtime.first_next(WAIT).is_some(), "{}", trigger.log());
    let ok = runtime.call(&event(AUTH_EVENT, "alice", Some("Blue-Kettle-42")));
    assert_eq!(ok.kind, "response", "{ok:?}\n{}", trigger.log());
    let v: Value = serde_json::from_str(&ok.body).unwrap();
    let attrs = &v["response"]["userAttributes"];
    assert_eq!(attrs["email"], "alice@example.com");
    assert_eq!(attrs["email_verified"], "true");
    assert_eq!(attrs["given_name"], "Legacy");
    assert!(attrs.get("sub").is_none(), "{attrs}");
    assert_eq!(v["response"]["finalUserStatus"], "CONFIRMED");

    let wrong = runtime.call(&event(AUTH_EVENT, "alice", Some("wrong")));
    let unknown = runtime.call(&event(AUTH_EVENT, "nobody", Some("Blue-Kettle-42")));
    let disabled = runtime.call(&event(AUTH_EVENT, "mallory", Some("Mallory-Pass-1")));
    for a in [&wrong, &unknown, &disabled] {
        assert_eq!(a.kind, "error", "{a:?}");
    }
    assert_eq!(wrong.body, unknown.body);
    let reset = runtime.call(&event(FORGOT_EVENT, "alice", None));
    assert_eq!(reset.kind, "response", "{reset:?}");
    let log = trigger.log();
    assert!(
        !log.contains("Blue-Kettle-42") && !log.contains("alice"),
        "{log}"
    );
}

/// Pool-to-pool: whether a `username` is answered follows the new pool (configured), or else the
/// old one. The old pool here has email as username, so its usernames are generated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_username_answer_follows_the_new_pools_sign_in() {
    let emu = Emulator::start();
    let c = Client::new(&emu.sdk_config().await);
    let (pool, client_id) = pool_with_client(&c, "legacy-email", true).await;
    add_user(
        &c,
        &pool,
        "carol@example.com",
        "carol@example.com",
        "Sesame-0pen!",
    )
    .await;

    let answered = |generates: Option<bool>| {
        let d = PoolDirectory::new(c.clone(), &pool, &client_id, None)
            .with_new_pool_generating_usernames(generates);
        async move {
            match d.authenticate("carol@example.com", "Sesame-0pen!").await {
                Ok(Verdict::Accepted(a)) => (a.username, a.username_attribute),
                other => panic!("{other:?}"),
            }
        }
    };
    let (old_name, same) = answered(None).await;
    assert_ne!(old_name, "carol@example.com", "the old pool generated it");
    assert_eq!(
        same, None,
        "a new pool like the old one generates usernames too"
    );
    assert_eq!(answered(Some(true)).await.1, None);
    assert_eq!(
        answered(Some(false)).await.1,
        Some(old_name),
        "a new pool with usernames (and an email alias) needs one for an email sign-in"
    );
}
