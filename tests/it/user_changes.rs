//! The user-changes writer (`sink::user_changes`, what `sync` writes with) against the emulator
//! with Cognito's quotas enforced as strict one-second sliding windows at 10 calls per second:
//! 200+ changes of every kind, several per user in a fixed order, end with exactly the pool asked
//! for, every outcome as documented, and each quota category paced under its quota as the
//! emulator's own counters saw it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use cognito_migrate::sink::user_changes::{
    self, Action, Change, ChangeObserver, ChangeOutcome, UserChangesConfig,
};
use serde_json::json;

use crate::common::{attr, create_group, create_pool, group_members, pool_users, Emulator};

const QUOTA: f64 = 10.0;

#[derive(Default)]
struct Outcomes {
    started: Mutex<Vec<i64>>,
    finished: Mutex<BTreeMap<i64, ChangeOutcome>>,
}

impl ChangeObserver for Outcomes {
    fn started(&self, id: i64) {
        self.started.lock().unwrap().push(id);
    }
    fn finished(&self, id: i64, outcome: &ChangeOutcome) {
        let prev = self.finished.lock().unwrap().insert(id, outcome.clone());
        assert!(prev.is_none(), "change {id} finished twice");
    }
}

fn name(i: usize) -> String {
    format!("u{i:02}")
}

#[tokio::test]
async fn two_hundred_changes_at_a_10_rps_quota_end_in_the_exact_pool_paced_under_the_quota() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = create_pool(c.create_user_pool().pool_name("user-changes")).await;
    for g in ["old", "staff"] {
        create_group(&c, &pool, g).await;
    }
    for i in 0..60 {
        c.admin_create_user()
            .user_pool_id(&pool)
            .username(name(i))
            .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
            .user_attributes(attr("name", &format!("Old {i}")))
            .user_attributes(attr("nickname", &format!("nick{i}")))
            .send()
            .await
            .unwrap();
        if i < 30 {
            c.admin_add_user_to_group()
                .user_pool_id(&pool)
                .username(name(i))
                .group_name("old")
                .send()
                .await
                .unwrap();
        }
    }
    // Quotas on only now: the seeding above is not what is measured.
    emu.control(
        "/_emulator/config",
        json!({"quotas": {"enabled": true,
                          "rates": {"UserUpdate": QUOTA, "UserResourceUpdate": QUOTA},
                          "mode": "sliding_window"}}),
    );
    emu.control("/_emulator/stats/reset", json!({}));

    // The changes, user by user, each user's in this order; `want` is each change's outcome.
    let mut changes = Vec::new();
    let mut want = BTreeMap::new();
    let mut push = |user: String, action: Action, outcome: ChangeOutcome| {
        let id = changes.len() as i64 + 1;
        changes.push(Change {
            id,
            username: user,
            action,
        });
        want.insert(id, outcome);
    };
    use ChangeOutcome::*;
    for i in 0..60 {
        let u = name(i);
        push(
            u.clone(),
            Action::UpdateAttributes(vec![("name".into(), format!("New {i}"))]),
            Done,
        );
        if i < 20 {
            push(u.clone(), Action::Disable, Done);
        }
        if (10..20).contains(&i) {
            push(u.clone(), Action::Enable, Done);
        }
        if (20..30).contains(&i) {
            // Twice: deleting an attribute the user no longer has succeeds.
            push(
                u.clone(),
                Action::DeleteAttributes(vec!["nickname".into()]),
                Done,
            );
            push(
                u.clone(),
                Action::DeleteAttributes(vec!["nickname".into()]),
                Done,
            );
        }
        push(u.clone(), Action::AddToGroup("staff".into()), Done);
        if i < 35 {
            // 30..35 are not members of "old": still Done, as Cognito answers.
            push(u.clone(), Action::RemoveFromGroup("old".into()), Done);
        }
        if i == 35 {
            let failed = Failed {
                code: "ResourceNotFoundException".into(),
                message: String::new(),
            };
            push(u.clone(), Action::AddToGroup("nogroup".into()), failed);
            push(
                u.clone(),
                Action::RemoveFromGroup("nogroup".into()),
                AlreadyDone,
            );
        }
        if (50..55).contains(&i) {
            push(u.clone(), Action::Delete, Done);
        }
    }
    for g in 0..3 {
        push(format!("ghost{g}"), Action::Delete, AlreadyDone);
    }
    push("ghost3".into(), Action::Disable, UserNotFound);
    push(
        "ghost4".into(),
        Action::AddToGroup("staff".into()),
        UserNotFound,
    );
    assert!(changes.len() >= 200, "{}", changes.len());
    let total = changes.len() as u64;

    let cfg = UserChangesConfig {
        update_rate: QUOTA,
        resource_update_rate: QUOTA,
        concurrency: 8,
        ..UserChangesConfig::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let (_cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let observer = Outcomes::default();
    let feed = async move {
        for ch in changes {
            tx.send(ch).await.unwrap();
        }
    };
    let t = Instant::now();
    let (stats, ()) = tokio::join!(
        user_changes::apply(&c, &pool, &cfg, rx, &observer, cancel),
        feed
    );
    let seconds = t.elapsed().as_secs_f64();
    let stats = stats.unwrap();
    eprintln!("{total} changes in {seconds:.1} s: {stats:?}");

    // Every change started once and finished once, with the documented outcome.
    let finished = observer.finished.lock().unwrap().clone();
    assert_eq!(observer.started.lock().unwrap().len() as u64, total);
    assert_eq!(finished.len() as u64, total);
    for (id, want) in &want {
        match (want, &finished[id]) {
            (Failed { code: w, .. }, Failed { code: g, .. }) => assert_eq!(w, g, "change {id}"),
            (w, g) => assert_eq!(w, g, "change {id}"),
        }
    }
    assert_eq!((stats.received, stats.started), (total, total));
    assert_eq!(
        (stats.already_done, stats.user_not_found, stats.failed),
        (4, 2, 1)
    );

    // The pool is exactly as asked.
    let users = pool_users(&c, &pool).await;
    let by_name: BTreeMap<String, _> = users
        .iter()
        .map(|u| (u.username().unwrap().to_string(), u))
        .collect();
    let expected: BTreeSet<String> = (0..60)
        .filter(|i| !(50..55).contains(i))
        .map(name)
        .collect();
    assert_eq!(by_name.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for (n, u) in &by_name {
        let i: usize = n[1..].parse().unwrap();
        let attrs: BTreeMap<&str, &str> = u
            .attributes()
            .iter()
            .map(|a| (a.name(), a.value().unwrap_or_default()))
            .collect();
        assert_eq!(attrs.get("name"), Some(&format!("New {i}").as_str()), "{n}");
        assert_eq!(
            attrs.contains_key("nickname"),
            !(20..30).contains(&i),
            "{n}"
        );
        assert_eq!(u.enabled(), i >= 10, "{n}");
    }
    assert_eq!(group_members(&c, &pool, "staff").await, expected);
    assert!(group_members(&c, &pool, "old").await.is_empty());

    // Paced under the quota, as the server counted: no more than the quota's calls in any
    // second (one more allowed for arrival jitter on a loaded machine), few throttled, and not
    // much slower than the quota either.
    let s = emu.stats();
    for (cat, mine) in [
        ("UserUpdate", stats.user_update),
        ("UserResourceUpdate", stats.user_resource_update),
    ] {
        let e = &s["categories"][cat];
        let calls = e["calls"].as_u64().unwrap();
        let throttled = e["throttled"].as_u64().unwrap();
        let peak = e["max_calls_per_second"].as_u64().unwrap();
        eprintln!("{cat}: {calls} calls, {throttled} throttled, at most {peak} in one second");
        assert_eq!(
            calls, mine.calls,
            "{cat}: the writer's count and the server's"
        );
        assert_eq!(throttled, mine.throttled, "{cat}");
        assert!(
            peak <= QUOTA as u64 + 1,
            "{cat}: {peak} calls in one second: {e}"
        );
        assert!((throttled as f64) <= 0.03 * calls as f64, "{cat}: {e}");
    }
    let update_calls = s["categories"]["UserUpdate"]["served"].as_u64().unwrap();
    let floor = update_calls as f64 / QUOTA;
    assert!(
        seconds < 1.5 * floor + 2.0,
        "{update_calls} UserUpdate calls at {QUOTA}/s took {seconds:.1} s"
    );
}
