//! The driver against a fake Cognito on a loopback port (real HTTP through the SDK, awsJson 1.1
//! answers written here): order per user, concurrency across users, the mapping of Cognito's
//! answers to outcomes, retries, fatal errors and cancellation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials, Region};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::config::RetryPolicy;
use super::*;

/// One request the fake received.
#[derive(Clone, Debug)]
struct Req {
    op: String,
    body: Value,
}

impl Req {
    fn user(&self) -> &str {
        self.body["Username"].as_str().unwrap_or_default()
    }
}

/// The fake's answer: HTTP status, JSON body, and a delay before answering.
struct Reply(u16, Value, Duration);

fn ok() -> Reply {
    Reply(200, json!({}), Duration::ZERO)
}

fn err(status: u16, code: &str, message: &str) -> Reply {
    Reply(
        status,
        json!({"__type": code, "message": message}),
        Duration::ZERO,
    )
}

type Handler = Box<dyn FnMut(&Req) -> Reply + Send>;

struct Fake {
    endpoint: String,
    requests: Arc<Mutex<Vec<Req>>>,
    max_in_flight: Arc<Mutex<(usize, usize)>>,
}

impl Fake {
    async fn start(handler: Handler) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let max_in_flight = Arc::new(Mutex::new((0, 0)));
        let handler = Arc::new(Mutex::new(handler));
        let (reqs, inflight) = (requests.clone(), max_in_flight.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (reqs, inflight, handler) = (reqs.clone(), inflight.clone(), handler.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // Headers, then Content-Length bytes of body.
                        let end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let header = |name: &str| {
                            head.lines()
                                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                                .map(|v| v.trim().to_string())
                        };
                        let len: usize = header("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        // The target keeps its case in the original bytes.
                        let raw = String::from_utf8_lossy(&buf[..end]).to_string();
                        let op = raw
                            .lines()
                            .find(|l| l.to_lowercase().starts_with("x-amz-target:"))
                            .and_then(|l| l.rsplit('.').next())
                            .unwrap_or_default()
                            .trim()
                            .to_string();
                        while buf.len() < end + len {
                            let mut chunk = [0u8; 4096];
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body: Value =
                            serde_json::from_slice(&buf[end..end + len]).unwrap_or(Value::Null);
                        buf.drain(..end + len);
                        let req = Req { op, body };
                        {
                            let mut m = inflight.lock().unwrap();
                            m.0 += 1;
                            m.1 = m.1.max(m.0);
                        }
                        reqs.lock().unwrap().push(req.clone());
                        let Reply(status, body, delay) = (handler.lock().unwrap())(&req);
                        tokio::time::sleep(delay).await;
                        inflight.lock().unwrap().0 -= 1;
                        let body = body.to_string();
                        let response = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\n\
                             Content-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if sock.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Fake {
            endpoint,
            requests,
            max_in_flight,
        }
    }

    fn client(&self) -> aws_sdk_cognitoidentityprovider::Client {
        let conf = aws_sdk_cognitoidentityprovider::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&self.endpoint)
            .retry_config(aws_sdk_cognitoidentityprovider::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_cognitoidentityprovider::Client::from_conf(conf)
    }

    fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Event {
    Started(i64),
    Finished(i64, ChangeOutcome),
}

#[derive(Default)]
struct Log(Mutex<Vec<Event>>);

impl ChangeObserver for Log {
    fn started(&self, id: i64) {
        self.0.lock().unwrap().push(Event::Started(id));
    }
    fn finished(&self, id: i64, outcome: &ChangeOutcome) {
        self.0
            .lock()
            .unwrap()
            .push(Event::Finished(id, outcome.clone()));
    }
}

impl Log {
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    fn outcome(&self, id: i64) -> Option<ChangeOutcome> {
        self.events().into_iter().find_map(|e| match e {
            Event::Finished(i, o) if i == id => Some(o),
            _ => None,
        })
    }

    /// Every started change finished exactly once, after it started; nothing finished unstarted.
    fn assert_paired(&self) {
        let events = self.events();
        let mut open = std::collections::HashSet::new();
        let mut done = std::collections::HashSet::new();
        for e in &events {
            match e {
                Event::Started(id) => assert!(open.insert(*id) && !done.contains(id), "{e:?}"),
                Event::Finished(id, _) => {
                    assert!(open.remove(id), "finished before started: {e:?}");
                    assert!(done.insert(*id), "finished twice: {e:?}");
                }
            }
        }
        assert!(open.is_empty(), "started, never finished: {open:?}");
    }
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        max_throttled_attempts: 5,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        min_rate_fraction: 0.1,
    }
}

fn config(concurrency: usize) -> UserChangesConfig {
    UserChangesConfig {
        update_rate: 1000.0,
        resource_update_rate: 1000.0,
        concurrency,
        ..UserChangesConfig::default()
    }
}

async fn run(
    fake: &Fake,
    cfg: &UserChangesConfig,
    changes: Vec<Change>,
    log: &Log,
) -> Result<ApplyStats, UserChangesError> {
    let service = ChangeService::with_policy(fake.client(), "us-east-1_pool", cfg, fast_policy());
    let (tx, rx) = mpsc::channel(8);
    let (_cancel_tx, cancel) = watch::channel(false);
    let feed = async move {
        for c in changes {
            if tx.send(c).await.is_err() {
                break;
            }
        }
    };
    let (r, ()) = tokio::join!(drive(&service, cfg.concurrency, rx, log, cancel), feed);
    r
}

fn change(id: i64, user: &str, action: Action) -> Change {
    Change {
        id,
        username: user.into(),
        action,
    }
}

#[tokio::test]
async fn one_users_changes_go_in_order_while_users_run_side_by_side() {
    // The first call of every user is slow, so a writer that did not wait for it would send that
    // user's next call first.
    let fake = Fake::start(Box::new(|r: &Req| {
        let delay = if r.op == "AdminEnableUser" { 60 } else { 5 };
        Reply(200, json!({}), Duration::from_millis(delay))
    }))
    .await;
    let mut changes = Vec::new();
    for u in 0..8 {
        let user = format!("user{u}");
        let base = u * 10;
        changes.push(change(base, &user, Action::Enable));
        changes.push(change(
            base + 1,
            &user,
            Action::UpdateAttributes(vec![("name".into(), format!("N{u}"))]),
        ));
        changes.push(change(base + 2, &user, Action::AddToGroup("staff".into())));
    }
    let log = Log::default();
    let stats = run(&fake, &config(4), changes, &log).await.unwrap();
    assert_eq!((stats.received, stats.started, stats.done), (24, 24, 24));
    log.assert_paired();
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 24);
    for u in 0..8 {
        let user = format!("user{u}");
        let ops: Vec<&str> = reqs
            .iter()
            .filter(|r| r.user() == user)
            .map(|r| r.op.as_str())
            .collect();
        assert_eq!(
            ops,
            [
                "AdminEnableUser",
                "AdminUpdateUserAttributes",
                "AdminAddUserToGroup"
            ],
            "{user}"
        );
        // Each change of a user starts only after the one before it finished.
        let events = log.events();
        let pos = |e: Event| events.iter().position(|x| *x == e).unwrap();
        let base = u * 10;
        for k in 0..2 {
            assert!(
                pos(Event::Finished(base + k, ChangeOutcome::Done))
                    < pos(Event::Started(base + k + 1)),
                "{user}: change {k}"
            );
        }
    }
    let body = &reqs
        .iter()
        .find(|r| r.op == "AdminUpdateUserAttributes" && r.user() == "user3")
        .unwrap()
        .body;
    assert_eq!(
        body["UserAttributes"],
        json!([{"Name": "name", "Value": "N3"}])
    );
    assert_eq!(body["UserPoolId"], "us-east-1_pool");
    let (_, most) = *fake.max_in_flight.lock().unwrap();
    assert!((2..=4).contains(&most), "calls in flight at once: {most}");
    assert_eq!(stats.user_update.calls, 16);
    assert_eq!(stats.user_resource_update.calls, 8);
}

#[tokio::test]
async fn cognitos_answers_become_the_documented_outcomes() {
    let fake = Fake::start(Box::new(|r: &Req| {
        let group = r.body["GroupName"].as_str().unwrap_or_default();
        match r.user() {
            "gone" => err(400, "UserNotFoundException", "User does not exist."),
            "bad" => err(400, "InvalidParameterException", "Invalid attribute name"),
            _ if group == "nogroup" => err(400, "ResourceNotFoundException", "Group not found."),
            _ => ok(),
        }
    }))
    .await;
    let changes = vec![
        change(1, "gone", Action::Delete),
        change(2, "gone", Action::Disable),
        change(3, "gone2", Action::Delete),
        change(4, "alice", Action::RemoveFromGroup("nogroup".into())),
        change(5, "alice", Action::AddToGroup("nogroup".into())),
        change(
            6,
            "bad",
            Action::UpdateAttributes(vec![("x".into(), "1".into())]),
        ),
        change(7, "alice", Action::UpdateAttributes(vec![])),
        change(
            8,
            "alice",
            Action::DeleteAttributes(vec!["nickname".into()]),
        ),
        change(9, "alice", Action::RemoveFromGroup("staff".into())),
        change(10, "bob", Action::DeleteAttributes(vec![])),
    ];
    let log = Log::default();
    let stats = run(&fake, &config(3), changes, &log).await.unwrap();
    log.assert_paired();
    use ChangeOutcome::*;
    assert_eq!(log.outcome(1), Some(AlreadyDone));
    assert_eq!(log.outcome(2), Some(UserNotFound));
    assert_eq!(log.outcome(3), Some(Done), "gone2 exists for the fake");
    assert_eq!(log.outcome(4), Some(AlreadyDone));
    match log.outcome(5) {
        Some(Failed { code, message }) => {
            assert_eq!(code, "ResourceNotFoundException");
            assert!(message.contains("AdminAddUserToGroup"), "{message}");
        }
        o => panic!("{o:?}"),
    }
    match log.outcome(6) {
        Some(Failed { code, .. }) => assert_eq!(code, "InvalidParameterException"),
        o => panic!("{o:?}"),
    }
    for id in [7, 8, 9, 10] {
        assert_eq!(log.outcome(id), Some(Done), "{id}");
    }
    // Empty attribute lists make no call; nothing is retried.
    assert_eq!(fake.requests().len(), 8);
    assert_eq!(stats.retries, 0);
    assert_eq!(
        (
            stats.done,
            stats.already_done,
            stats.user_not_found,
            stats.failed
        ),
        (5, 2, 1, 2)
    );
    let del = fake
        .requests()
        .into_iter()
        .find(|r| r.op == "AdminDeleteUserAttributes")
        .unwrap();
    assert_eq!(del.body["UserAttributeNames"], json!(["nickname"]));
}

#[tokio::test]
async fn throttled_and_transient_failures_are_retried_then_given_up() {
    // Per user: throttled twice, one 500, then success; "flaky" always answers 500.
    let seen = Arc::new(Mutex::new(std::collections::HashMap::<String, u32>::new()));
    let fake = Fake::start(Box::new(move |r: &Req| {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(r.user().to_string()).or_default();
        *n += 1;
        if r.user() == "flaky" {
            return err(500, "InternalErrorException", "boom");
        }
        match *n {
            1 | 2 => err(400, "TooManyRequestsException", "Rate exceeded"),
            3 => err(500, "InternalErrorException", "boom"),
            _ => ok(),
        }
    }))
    .await;
    let mut changes: Vec<Change> = (0..5)
        .map(|i| change(i, &format!("u{i}"), Action::Disable))
        .collect();
    changes.push(change(5, "g", Action::AddToGroup("staff".into())));
    changes.push(change(6, "flaky", Action::Enable));
    let log = Log::default();
    let stats = run(&fake, &config(4), changes, &log).await.unwrap();
    log.assert_paired();
    for id in 0..6 {
        assert_eq!(log.outcome(id), Some(ChangeOutcome::Done), "{id}");
    }
    match log.outcome(6) {
        Some(ChangeOutcome::Failed { code, .. }) => assert_eq!(code, "InternalErrorException"),
        o => panic!("{o:?}"),
    }
    // 6 users × 4 attempts, and max_attempts (3) for the flaky one.
    assert_eq!(fake.requests().len(), 6 * 4 + 3);
    assert_eq!(stats.user_update.throttled, 10);
    assert_eq!(stats.user_resource_update.throttled, 2);
    assert_eq!(stats.user_update.calls, 5 * 4 + 3);
    assert_eq!(stats.user_resource_update.calls, 4);
    assert_eq!(stats.retries, 6 * 3 + 2);
}

#[tokio::test]
async fn a_missing_pool_stops_the_apply_and_settles_what_started() {
    let fake = Fake::start(Box::new(|_: &Req| {
        Reply(
            400,
            json!({"__type": "ResourceNotFoundException",
                   "message": "User pool us-east-1_pool does not exist."}),
            Duration::from_millis(5),
        )
    }))
    .await;
    let changes: Vec<Change> = (0..40)
        .map(|i| change(i, &format!("u{}", i % 10), Action::Disable))
        .collect();
    let log = Log::default();
    let e = run(&fake, &config(3), changes, &log).await.unwrap_err();
    assert!(
        matches!(&e, UserChangesError::PoolNotFound { pool_id, operation: "AdminDisableUser", .. }
            if pool_id == "us-east-1_pool"),
        "{e:?}"
    );
    log.assert_paired();
    // At most the changes in flight when the first answer came were sent.
    assert!(fake.requests().len() <= 3, "{}", fake.requests().len());

    let fake = Fake::start(Box::new(|_: &Req| {
        err(400, "AccessDeniedException", "not allowed")
    }))
    .await;
    let log = Log::default();
    let e = run(
        &fake,
        &config(2),
        vec![change(1, "a", Action::Delete)],
        &log,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, UserChangesError::Refused { code, .. } if code == "AccessDeniedException"),
        "{e:?}"
    );
    log.assert_paired();
}

#[tokio::test]
async fn cancelling_stops_new_changes_and_settles_the_calls_in_flight() {
    // Slow answers: the calls in flight when cancel comes finish normally.
    let fake = Fake::start(Box::new(|r: &Req| {
        if r.user() == "throttled" {
            err(400, "TooManyRequestsException", "Rate exceeded")
        } else {
            Reply(200, json!({}), Duration::from_millis(150))
        }
    }))
    .await;
    let cfg = config(2);
    let policy = RetryPolicy {
        max_throttled_attempts: 1_000_000,
        backoff_initial: Duration::from_millis(20),
        ..fast_policy()
    };
    let service = ChangeService::with_policy(fake.client(), "us-east-1_pool", &cfg, policy);
    let (tx, rx) = mpsc::channel(100);
    tx.send(change(0, "throttled", Action::Enable))
        .await
        .unwrap();
    for i in 1..30 {
        tx.send(change(i, &format!("u{i}"), Action::Enable))
            .await
            .unwrap();
    }
    let (cancel_tx, cancel) = watch::channel(false);
    let log = Log::default();
    let canceller = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel_tx.send(true).unwrap();
    };
    let t = std::time::Instant::now();
    let (r, ()) = tokio::join!(
        drive(&service, cfg.concurrency, rx, &log, cancel),
        canceller
    );
    let stats = r.unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(stats.cancelled);
    log.assert_paired();
    assert_eq!(stats.started, 2, "{stats:?}");
    assert_eq!(stats.received, stats.started + stats.not_started);
    // The throttled call gave up before its next attempt; the slow one finished.
    match log.outcome(0) {
        Some(ChangeOutcome::Failed { code, .. }) => assert_eq!(code, service::INTERRUPTED),
        o => panic!("{o:?}"),
    }
    assert_eq!(log.outcome(1), Some(ChangeOutcome::Done));
    assert_eq!(stats.done, 1);
    drop(tx);
}

#[tokio::test]
async fn apply_is_the_only_layer_that_retries_even_with_a_retrying_client() {
    // Each user's first call is throttled. Were the SDK retrying by itself, the limiter would
    // never hear of the throttles (and a 5xx storm would multiply the attempts).
    let seen = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
    let fake = Fake::start(Box::new(move |r: &Req| {
        if seen.lock().unwrap().insert(r.user().to_string()) {
            err(400, "TooManyRequestsException", "Rate exceeded")
        } else {
            ok()
        }
    }))
    .await;
    let conf = fake
        .client()
        .config()
        .to_builder()
        .retry_config(
            aws_sdk_cognitoidentityprovider::config::retry::RetryConfig::standard()
                .with_max_attempts(5),
        )
        .build();
    let client = aws_sdk_cognitoidentityprovider::Client::from_conf(conf);
    let (tx, rx) = mpsc::channel(8);
    for i in 0..3 {
        tx.send(change(i, &format!("u{i}"), Action::Enable))
            .await
            .unwrap();
    }
    drop(tx);
    let (_cancel_tx, cancel) = watch::channel(false);
    let log = Log::default();
    let stats = apply(&client, "us-east-1_pool", &config(4), rx, &log, cancel)
        .await
        .unwrap();
    log.assert_paired();
    assert_eq!(stats.done, 3);
    assert_eq!(stats.user_update.throttled, 3, "{stats:?}");
    assert_eq!(stats.retries, 3);
    assert_eq!(fake.requests().len(), 6);
}
