//! `--format cognito`: another user pool read with ListUsers (paginated) and group membership,
//! paced under the UserList quota and retrying throttles, against the emulator.

use std::collections::BTreeMap;

use crate::common::{attr, create_pool, run_cli, string_attribute, Emulator};
use aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType;
use aws_sdk_cognitoidentityprovider::Client;
use cognito_migrate::record::LegacyUser;
use cognito_migrate::source::cognito::{self, CognitoOptions};
use serde_json::json;

const USERS: usize = 130;

async fn pool_with_plan(c: &Client, name: &str) -> String {
    create_pool(
        c.create_user_pool()
            .pool_name(name)
            .auto_verified_attributes(VerifiedAttributeType::Email)
            .schema(string_attribute("plan").build()),
    )
    .await
}

/// The old pool: USERS users (every 10th without a verified email, every 25th disabled), group
/// `admins` (users 0-2) and `beta` (every even user: 65 members, two pages).
async fn old_pool(c: &Client) -> String {
    let pool = pool_with_plan(c, "old").await;
    for g in ["admins", "beta"] {
        crate::common::create_group(c, &pool, g).await;
    }
    for i in 0..USERS {
        let name = format!("user{i:03}");
        c.admin_create_user()
            .user_pool_id(&pool)
            .username(&name)
            .user_attributes(attr("email", &format!("User{i}@Example.com")))
            .user_attributes(attr(
                "email_verified",
                if i % 10 == 9 { "false" } else { "true" },
            ))
            .user_attributes(attr("given_name", &format!("Given{i}")))
            .user_attributes(attr("custom:plan", if i % 2 == 0 { "pro" } else { "free" }))
            .send()
            .await
            .unwrap();
        if i % 25 == 0 {
            c.admin_disable_user()
                .user_pool_id(&pool)
                .username(&name)
                .send()
                .await
                .unwrap();
        }
        let mut groups = Vec::new();
        if i < 3 {
            groups.push("admins");
        }
        if i % 2 == 0 {
            groups.push("beta");
        }
        for g in groups {
            c.admin_add_user_to_group()
                .user_pool_id(&pool)
                .username(&name)
                .group_name(g)
                .send()
                .await
                .unwrap();
        }
    }
    pool
}

async fn read_all(c: &Client, pool: &str, opts: CognitoOptions) -> (Vec<LegacyUser>, Vec<String>) {
    let mut source = cognito::open(c.clone(), pool, &opts).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut users = Vec::new();
        while let Some(item) = source.next_record() {
            users.push(item.expect("every user reads"));
        }
        (users, source.take_warnings())
    })
    .await
    .unwrap()
}

fn ops(emu: &Emulator) -> serde_json::Value {
    emu.stats()["operations"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_attributes_status_and_groups_are_read_page_by_page() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = old_pool(&c).await;
    emu.control("/_emulator/stats/reset", json!({}));

    let (users, warnings) = read_all(&c, &pool, CognitoOptions::default()).await;
    assert_eq!(users.len(), USERS);
    assert!(warnings.is_empty(), "{warnings:?}");
    let by_name: BTreeMap<&str, &LegacyUser> = users
        .iter()
        .map(|u| (u.field("username").unwrap(), u))
        .collect();
    assert_eq!(by_name.len(), USERS, "no user twice");
    let records: Vec<u64> = users.iter().map(|u| u.position.record).collect();
    assert_eq!(records, (1..=USERS as u64).collect::<Vec<_>>());

    let u0 = by_name["user000"];
    assert_eq!(u0.field("email"), Some("User0@Example.com"));
    assert_eq!(u0.field("email_verified"), Some("true"));
    assert_eq!(u0.field("custom:plan"), Some("pro"));
    assert_eq!(u0.field("given_name"), Some("Given0"));
    assert!(u0.field("sub").is_some());
    assert_eq!(u0.field("status"), Some("FORCE_CHANGE_PASSWORD"));
    assert!(
        u0.field("user_create_date")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 1_600_000_000
    );
    assert!(!u0.enabled, "user000 was disabled");
    assert_eq!(u0.field("enabled"), Some("false"));
    assert!(u0.password.is_none(), "Cognito gives no hashes");
    let mut g0 = u0.groups.clone();
    g0.sort();
    assert_eq!(g0, ["admins", "beta"]);
    assert!(by_name["user001"].enabled);
    assert_eq!(by_name["user001"].groups, ["admins"]);
    assert!(by_name["user003"].groups.is_empty());
    assert_eq!(by_name["user128"].groups, ["beta"]);
    assert_eq!(by_name["user009"].field("email_verified"), Some("false"));
    let disabled = users.iter().filter(|u| !u.enabled).count();
    assert_eq!(disabled, 6, "users 0, 25, 50, 75, 100, 125");

    let ops = ops(&emu);
    assert_eq!(
        ops["ListUsers"]["calls"],
        json!(3),
        "130 users in pages of 60: {ops}"
    );
    assert_eq!(ops["ListGroups"]["calls"], json!(1), "{ops}");
    assert_eq!(
        ops["ListUsersInGroup"]["calls"],
        json!(3),
        "admins 1 page, beta 2: {ops}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_are_retried_and_the_pace_stays_under_the_quota() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = old_pool(&c).await;

    // With the real quota (UserList 30/s) the default pace (25/s) is never throttled: read with
    // pages of 5 users (26 ListUsers calls + 14 ListUsersInGroup) in well under two seconds' quota.
    emu.control(
        "/_emulator/config",
        json!({"quotas": {"enabled": true, "burst_seconds": 1.0}}),
    );
    emu.control("/_emulator/stats/reset", json!({}));
    let small_pages = CognitoOptions {
        page_size: 5,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let (users, warnings) = read_all(&c, &pool, small_pages.clone()).await;
    assert_eq!(users.len(), USERS);
    assert!(warnings.is_empty(), "{warnings:?}");
    let s = ops(&emu);
    assert_eq!(s["ListUsers"]["calls"], json!(26), "{s}");
    assert_eq!(s["ListUsers"]["throttled"], json!(0), "{s}");
    assert_eq!(s["ListUsersInGroup"]["throttled"], json!(0), "{s}");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "40 UserList calls at 25/s take over a second: {:?}",
        started.elapsed()
    );

    // A quota far below our pace: throttled calls are retried until every user is read.
    emu.control(
        "/_emulator/config",
        json!({"quotas": {"enabled": true, "rates": {"UserList": 10}}}),
    );
    emu.control("/_emulator/stats/reset", json!({}));
    let opts = CognitoOptions {
        initial_backoff: std::time::Duration::from_millis(50),
        max_attempts: 30,
        ..small_pages
    };
    let (users, warnings) = read_all(&c, &pool, opts).await;
    assert_eq!(users.len(), USERS);
    let s = ops(&emu);
    let throttled = s["ListUsers"]["throttled"].as_u64().unwrap()
        + s["ListUsersInGroup"]["throttled"].as_u64().unwrap();
    assert!(throttled > 0, "the low quota throttled some calls: {s}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&format!("({throttled} throttled)"))),
        "{warnings:?} vs {throttled}"
    );
    let members: usize = users.iter().map(|u| u.groups.len()).sum();
    assert_eq!(members, 3 + 65, "no membership lost to throttling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_pool_is_a_clear_error_and_plan_moves_pool_to_pool() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let err = cognito::open(c.clone(), "us-east-1_Missing00", &CognitoOptions::default())
        .await
        .err()
        .expect("no such pool");
    let text = format!("{err:#}");
    assert!(text.contains("us-east-1_Missing00"), "{text}");

    let old = old_pool(&c).await;
    let new = pool_with_plan(&c, "new").await;
    let out = std::env::temp_dir().join(format!("cm-sources-cognito-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (code, stdout, stderr) = run_cli(
        &[
            "plan",
            "-i",
            &old,
            "-f",
            "cognito",
            "--pool-id",
            &new,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
        &emu.cli_env(),
    );
    assert_eq!(code, 1, "unverified emails are rejected: {stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["records"], json!(USERS));
    // Every 10th user has no verified email: Cognito's import needs one (auto-verified email).
    assert_eq!(
        summary["rejections"],
        json!({"not_verifiable": 13}),
        "{summary}"
    );
    assert_eq!(summary["routes"], json!({"import:none": 117}), "{summary}");
    assert_eq!(summary["followups"]["disable"], json!(6), "{summary}");
    let file = summary["files"][0]["path"].as_str().unwrap();
    let csv = std::fs::read_to_string(file).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.contains("user002"))
        .unwrap()
        .split(',')
        .collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("email"), "user2@example.com", "emails lower-cased");
    assert_eq!(
        col("custom:plan"),
        "pro",
        "custom attributes keep their name"
    );
    assert_eq!(col("given_name"), "Given2");
    assert_eq!(col("email_verified"), "true");
    let _ = std::fs::remove_dir_all(&out);
}
