use super::date::{day_of, iso, ymd, DAY_MS};
use super::*;

fn sign_in(username_attributes: bool, case_sensitive: bool) -> SignIn {
    SignIn {
        email: true,
        phone: username_attributes,
        preferred_username: false,
        username_attributes,
        case_sensitive,
    }
}

fn tracked(record: u64, username: &str, origin: Origin) -> Tracked {
    Tracked {
        record,
        username: username.into(),
        legacy_id: None,
        route: match origin {
            Origin::Run => "import:BCRYPT".into(),
            Origin::Trigger => "trigger".into(),
        },
        origin,
    }
}

fn pool_user(username: &str, sub: &str, created_ms: i64) -> PoolEntry {
    PoolEntry {
        username: username.into(),
        sub: sub.into(),
        created_ms,
        status: "CONFIRMED".into(),
        ..PoolEntry::default()
    }
}

#[test]
fn dates_are_utc_calendar_days() {
    assert_eq!(ymd(0), "1970-01-01");
    assert_eq!(ymd(-1), "1969-12-31");
    // 2000-02-29 00:00:00 UTC and one millisecond before.
    assert_eq!(ymd(day_of(951_782_400_000)), "2000-02-29");
    assert_eq!(ymd(day_of(951_782_399_999)), "2000-02-28");
    assert_eq!(iso(1_796_601_599_000), "2026-12-06T23:59:59Z");
    assert_eq!(ymd(day_of(1_796_601_600_000)), "2026-12-07");
    // Every day of four centuries round-trips through its date's ordering.
    let mut prev = ymd(-200 * 365);
    for d in (-200 * 365 + 1)..(200 * 365) {
        let s = ymd(d);
        assert!(s > prev, "{prev} then {s}");
        prev = s;
    }
}

#[test]
fn users_match_as_the_pool_compares_usernames() {
    let m = Matcher::new(sign_in(false, false));
    assert_eq!(m.legacy_key("Ada").as_deref(), Some("u:ada"));
    assert_eq!(m.pool_keys(&pool_user("ADA", "s", 0)), vec!["u:ada"]);
    let cs = Matcher::new(sign_in(false, true));
    assert_ne!(
        cs.legacy_key("Ada"),
        cs.pool_keys(&pool_user("ada", "s", 0)).pop()
    );
}

#[test]
fn email_username_pools_match_by_the_email_not_the_generated_name() {
    let m = Matcher::new(sign_in(true, false));
    let mut u = pool_user("2f1c9e1a-uuid", "sub-1", 0);
    u.email = Some("Ada@Example.com".into());
    u.phone_number = Some("+15550100".into());
    let mut matched = Matched::new(
        &m,
        vec![
            tracked(1, "ada@example.COM", Origin::Trigger),
            tracked(2, "+1 555 0100", Origin::Trigger),
            tracked(3, "bob@example.com", Origin::Trigger),
        ],
    );
    matched.offer(&m, u.clone());
    assert_eq!(
        matched.found[0].as_ref().map(|f| f.sub.as_str()),
        Some("sub-1")
    );
    // One pool user is one legacy user: the first key that matches.
    assert_eq!(matched.found[1], None);
    assert_eq!(matched.found[2], None);
    let mut by_phone = Matched::new(&m, vec![tracked(2, "+1 555 0100", Origin::Trigger)]);
    u.email = None;
    by_phone.offer(&m, u);
    assert!(by_phone.found[0].is_some());
}

#[test]
fn progress_counts_arrivals_per_day_and_the_recent_ones() {
    let m = Matcher::new(sign_in(false, false));
    let now = 1_796_650_000_000; // 2026-12-07T13:26:40Z
    let mut t: Vec<Tracked> = (1..=10)
        .map(|i| tracked(i, &format!("user{i}"), Origin::Trigger))
        .collect();
    t.push(tracked(11, "runuser", Origin::Run));
    let mut matched = Matched::new(&m, t);
    let ages_days = [0.1, 0.2, 3.0, 10.0, 40.0];
    for (i, age) in ages_days.iter().enumerate() {
        let at = now - (age * DAY_MS as f64) as i64;
        matched.offer(
            &m,
            pool_user(&format!("USER{}", i + 1), &format!("s{i}"), at),
        );
    }
    matched.offer(&m, pool_user("runuser", "r", now - 50 * DAY_MS));
    matched.offer(&m, pool_user("stranger", "x", now));
    let p = TriggerProgress::compute("us-east-1_X", &matched, now, Some(now - 35 * DAY_MS));
    assert_eq!(p.left_to_trigger, 10);
    assert_eq!(p.arrived, 5);
    assert_eq!(p.remaining, 5);
    assert_eq!(p.percent_arrived, 50.0);
    assert_eq!(p.last_7_days, 3);
    assert_eq!(p.last_30_days, 4);
    assert_eq!(p.days_since_last_arrival, Some(0));
    assert_eq!(p.pool_users_seen, 7);
    // The one that arrived 40 days ago was there before the directory (35 days old).
    assert_eq!(p.in_pool_before_directory, Some(1));
    let days: Vec<(&str, u64)> = p
        .per_day
        .iter()
        .map(|d| (d.date.as_str(), d.arrivals))
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-10-28", 1),
            ("2026-11-27", 1),
            ("2026-12-04", 1),
            ("2026-12-07", 2)
        ]
    );
    assert_eq!(p.first_arrival.as_deref(), Some("2026-10-28"));
    assert!(p.table().contains("2026-12-07         2"), "{}", p.table());
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["remaining"], 5);
}

#[test]
fn nobody_left_to_the_trigger_is_zero_percent_not_a_division_by_zero() {
    let m = Matcher::new(sign_in(false, false));
    let p = TriggerProgress::compute("p", &Matched::new(&m, vec![]), 0, None);
    assert_eq!((p.left_to_trigger, p.percent_arrived), (0, 0.0));
    assert_eq!(p.days_since_last_arrival, None);
}

#[test]
fn the_cheaper_read_is_chosen_by_counts() {
    assert_eq!(Strategy::choose(100, 1_000_000), Strategy::Get);
    assert_eq!(Strategy::choose(1_000_000, 1_000_000), Strategy::List);
    assert_eq!(Strategy::choose(50, 100), Strategy::List);
    // The break-even: 15 pool users per user looked up.
    assert_eq!(Strategy::choose(66_000, 1_000_000), Strategy::Get);
    assert_eq!(Strategy::choose(67_000, 1_000_000), Strategy::List);
}

#[test]
fn the_id_map_says_where_each_user_stands_and_is_formula_safe() {
    let m = Matcher::new(sign_in(false, false));
    let mut dir_user = tracked(2, "=cmd", Origin::Trigger);
    dir_user.legacy_id = Some("L-2".into());
    let mut matched = Matched::new(
        &m,
        vec![
            tracked(5, "ada", Origin::Run),
            tracked(1, "gone", Origin::Run),
            dir_user,
            tracked(3, "later", Origin::Trigger),
        ],
    );
    let mut ada = pool_user("ada", "sub-ada", 0);
    ada.legacy_id = Some("A-5".into());
    matched.offer(&m, ada);
    let mut cmd = pool_user("=CMD", "sub-cmd", DAY_MS);
    cmd.legacy_id = Some("pool-value".into());
    matched.offer(&m, cmd);
    let map = IdMap::from_matched(&matched);
    let c = map.counts();
    assert_eq!(
        (c.in_pool, c.missing, c.arrived, c.not_arrived),
        (1, 1, 1, 1)
    );
    let text = String::from_utf8(map.write_csv(Vec::new()).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "legacy_id,legacy_username,username,sub,status,origin,route,record,created",
            ",gone,gone,,missing,run,import:BCRYPT,1,",
            "A-5,ada,ada,sub-ada,in_pool,run,import:BCRYPT,5,1970-01-01T00:00:00Z",
            "L-2,'=cmd,'=CMD,sub-cmd,arrived,trigger,trigger,2,1970-01-02T00:00:00Z",
            ",later,later,,not_arrived,trigger,trigger,3,",
        ]
    );
}

#[test]
fn keys_whose_hashes_collide_still_match_exactly_and_duplicates_are_shadowed() {
    // In unit tests the index hashes keys by length: "u:ann" and "u:bob" collide.
    let m = Matcher::new(sign_in(false, false));
    let mut matched = Matched::new(
        &m,
        vec![
            tracked(1, "ann", Origin::Trigger),
            tracked(2, "bob", Origin::Trigger),
            tracked(3, "cyd", Origin::Trigger),
            tracked(4, "BOB", Origin::Trigger),
        ],
    );
    assert_eq!(matched.shadowed, 1, "BOB is bob in a case-insensitive pool");
    matched.offer(&m, pool_user("Bob", "sub-bob", 1));
    matched.offer(&m, pool_user("cyd", "sub-cyd", 2));
    matched.offer(&m, pool_user("dan", "sub-dan", 3));
    let subs: Vec<Option<&str>> = matched
        .found
        .iter()
        .map(|f| f.as_ref().map(|f| f.sub.as_str()))
        .collect();
    assert_eq!(subs, vec![None, Some("sub-bob"), Some("sub-cyd"), None]);
    assert_eq!(matched.pool_users_seen, 3);
}
