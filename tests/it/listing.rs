//! `cognito_migrate::listing` against the emulator: every user exactly once across the sixteen
//! `sub`-prefix chains, paced under an enforced UserList quota, and group members.

use std::collections::BTreeMap;

use cognito_migrate::listing::{ListOptions, Lister, Partitions};
use serde_json::json;

use crate::common::{attr, Emulator};

async fn seed(c: &aws_sdk_cognitoidentityprovider::Client, pool: &str, n: usize) {
    for i in 0..n {
        c.admin_create_user()
            .user_pool_id(pool)
            .username(format!("user{i:04}"))
            .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
            .user_attributes(attr("email", &format!("user{i:04}@example.com")))
            .send()
            .await
            .expect("AdminCreateUser");
    }
}

async fn list(lister: &Lister) -> (BTreeMap<String, u32>, cognito_migrate::listing::ListStats) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<cognito_migrate::listing::PoolUser>(8);
    let collect = async {
        let mut seen = BTreeMap::new();
        while let Some(u) = rx.recv().await {
            assert!(u.sub.is_some(), "{} has no sub", u.username);
            assert_eq!(
                u.attribute("email"),
                Some(format!("{}@example.com", u.username).as_str())
            );
            *seen.entry(u.username).or_insert(0) += 1;
        }
        seen
    };
    let (stats, seen) = tokio::join!(lister.users(tx), collect);
    (seen, stats.expect("listing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_once_under_an_enforced_user_list_quota() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = crate::common::create_pool(c.create_user_pool().pool_name("listing")).await;
    seed(&c, &pool, 300).await;
    // A strict quota of 10 calls in any one-second window: the sixteen chains share one limiter.
    emu.control(
        "/_emulator/config",
        json!({"quotas": {"enabled": true, "mode": "sliding_window", "rates": {"UserList": 10}}}),
    );
    let options = ListOptions {
        rate: 10.0,
        ..ListOptions::default()
    };
    let lister = Lister::new(c.clone(), &pool, options);
    let (seen, stats) = list(&lister).await;
    assert_eq!(seen.len(), 300);
    assert!(seen.values().all(|&n| n == 1), "a user listed twice");
    assert_eq!(stats.users, 300);
    assert!(!stats.fell_back_to_single);
    // Sixteen chains, each at least one page; 300 users spread over them in pages of 60.
    assert!(stats.pages >= 16, "{stats:?}");
    assert!(
        stats.throttled * 20 <= stats.calls,
        "more than 5% of calls throttled: {stats:?}"
    );
    // Paced: never faster than the quota allows (the first window may hold 10 calls at once).
    let floor = (stats.calls.saturating_sub(10)) as f64 / 10.0;
    assert!(
        stats.elapsed.as_secs_f64() >= floor * 0.95,
        "{} calls in {:?}: faster than 10/s",
        stats.calls,
        stats.elapsed
    );

    // One chain lists the same users.
    let single = Lister::new(
        c.clone(),
        &pool,
        ListOptions {
            rate: 10.0,
            partitions: Partitions::Single,
            ..ListOptions::default()
        },
    );
    let (seen_single, stats_single) = list(&single).await;
    assert_eq!(seen_single, seen);
    assert_eq!(stats_single.pages, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_are_listed_across_pages() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = crate::common::create_pool(c.create_user_pool().pool_name("groups")).await;
    seed(&c, &pool, 70).await;
    crate::common::create_group(&c, &pool, "staff").await;
    for i in (0..70).step_by(1).filter(|i| i % 7 != 3) {
        c.admin_add_user_to_group()
            .user_pool_id(&pool)
            .group_name("staff")
            .username(format!("user{i:04}"))
            .send()
            .await
            .unwrap();
    }
    let lister = Lister::new(c.clone(), &pool, ListOptions::default());
    let mut members = lister
        .group_members("staff")
        .await
        .expect("ListUsersInGroup");
    members.sort();
    let expected: Vec<String> = (0..70)
        .filter(|i| i % 7 != 3)
        .map(|i| format!("user{i:04}"))
        .collect();
    assert_eq!(members, expected);
    let missing = lister.group_members("nobody").await.unwrap_err();
    assert_eq!(missing.code(), Some("ResourceNotFoundException"));
}
