//! The run as a library API (`cognito_migrate::migrate`), driven in-process against the emulator
//! without the CLI: an AdminCreateUser run cancelled through its `CancelToken` while it writes,
//! then resumed to the end with each user in the pool exactly once; and a cancellation during the
//! reading pass, which writes nothing to the pool.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{create_pool, tempdir, Emulator};
use aws_sdk_cognitoidentityprovider::Client;
use cognito_migrate::aws::Clients;
use cognito_migrate::checkpoint::Checkpoint;
use cognito_migrate::lease::Lease;
use cognito_migrate::mapping::config::MappingFile;
use cognito_migrate::mapping::Mapper;
use cognito_migrate::migrate::{
    self, BoxError, CancelToken, InputSpec, MigrateConfig, MigrateError, Migration,
};
use cognito_migrate::password::{HashContext, Notations};
use cognito_migrate::plan::route::{Mode, UnimportablePolicy, UnknownHashPolicy};
use cognito_migrate::pool::PoolSchema;
use cognito_migrate::progress::Output;
use cognito_migrate::sink::admin_create::{AdminCreateConfig, Rates};
use cognito_migrate::sink::import_job::ImportJobConfig;
use cognito_migrate::source::{self, Format, Source, SourceOptions};

const MAPPING: &str = r#"
username = "username"

[attributes]
email = { from = "email", transform = "lowercase_email" }
email_verified = { from = "verified", transform = "bool" }
"#;

fn write_input(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut csv = String::from("username,email,verified\n");
    for i in 0..n {
        csv.push_str(&format!("user{i:04},User{i:04}@Example.com,true\n"));
    }
    let input = dir.join("users.csv");
    std::fs::write(&input, csv).unwrap();
    input
}

/// The usernames in the pool (ListUsers, every page).
async fn pool_usernames(c: &Client, pool: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_users()
            .user_pool_id(pool)
            .set_pagination_token(token)
            .send()
            .await
            .unwrap();
        names.extend(
            page.users()
                .iter()
                .filter_map(|u| u.username().map(String::from)),
        );
        token = page.pagination_token().map(String::from);
        if token.is_none() {
            return names;
        }
    }
}

/// A run of `input` into `pool` in mode admin-create at `rate` AdminCreateUser calls per second.
async fn migration(emu: &Emulator, pool: &str, state: &Path, input: &Path, rate: f64) -> Migration {
    let clients = Clients::from_sdk_config(emu.sdk_config().await, true);
    let schema = PoolSchema::fetch(&clients.cognito, pool).await.unwrap();
    let mapping = MappingFile::parse(MAPPING, "test mapping").unwrap();
    let mapper = Mapper::new(&mapping, &schema).unwrap();
    let config = MigrateConfig {
        pool_id: pool.to_string(),
        state: state.to_path_buf(),
        mode: Mode::AdminCreate,
        role_arn: String::new(),
        unimportable: UnimportablePolicy::Trigger,
        unknown_hash: UnknownHashPolicy::Reset,
        unknown_provider: Default::default(),
        work_dir: None,
        restart: false,
        fetch_job_logs: false,
        import_job: ImportJobConfig::default(),
        admin: AdminCreateConfig {
            rates: Rates {
                user_creation: rate,
                ..Rates::default()
            },
            concurrency: 2,
            ..AdminCreateConfig::default()
        },
        hash_encodings: Notations::default(),
        progress: Output::Off,
    };
    Migration {
        config,
        checkpoint: Arc::new(Checkpoint::open(state).unwrap()),
        clients,
        schema,
        mapper,
        hash_context: HashContext::default(),
        input: InputSpec {
            location: input.display().to_string(),
            format: Format::Csv.to_string(),
            size: std::fs::metadata(input).unwrap().len(),
            fingerprint: cognito_migrate::checkpoint::fingerprint_file(input).unwrap(),
            mapping: None,
            hash_config: false,
            reader: serde_json::json!({}),
        },
        say: Arc::new(|m: &str| eprintln!("{m}")),
    }
}

fn opener(input: &Path) -> impl Fn() -> Result<Box<dyn Source>, BoxError> + Sync {
    let location = input.display().to_string();
    move || {
        Ok(source::open(
            Format::Csv,
            &location,
            &SourceOptions::default(),
        )?)
    }
}

#[tokio::test]
async fn an_admin_create_run_cancelled_by_its_token_resumes_to_each_user_once() {
    const N: usize = 120;
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = create_pool(c.create_user_pool().pool_name("migrate-api")).await;
    let dir = tempdir("migrate-api-cancel");
    let input = write_input(&dir, N);
    let state = dir.join("state.db");
    let lease = Lease::acquire(&state, "test").unwrap();

    // 20 users/s: the run takes ~6 s, so a cancellation after the first users lands mid-write.
    let m = migration(&emu, &pool, &state, &input, 20.0).await;
    let cp = m.checkpoint.clone();
    let cancel = CancelToken::new();
    let canceller = {
        let cancel = cancel.clone();
        let c = c.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while pool_usernames(&c, &pool).await.len() < 10 {
                assert!(Instant::now() < deadline, "no users were created in 60 s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            cancel.cancel();
        })
    };
    let first = migrate::run(m, &opener(&input), None, &cancel, &lease).await;
    canceller.await.unwrap();
    assert!(
        matches!(first, Err(MigrateError::Interrupted)),
        "a cancelled run ends Interrupted: {first:?}"
    );
    let run = cp.current_run().unwrap().unwrap();
    let counts = cp.counts(run.id).unwrap();
    let in_pool = pool_usernames(&c, &pool).await.len() as u64;
    assert!(
        counts.created >= 10 && counts.created < N as u64,
        "cancelled mid-write: {counts:?}"
    );
    assert_eq!(
        in_pool, counts.created,
        "every user created before the cancellation was recorded"
    );
    assert!(counts.pending > 0, "{counts:?}");
    drop(cp);

    // The same run resumes (fast now) and ends with each user exactly once.
    let m = migration(&emu, &pool, &state, &input, 200.0).await;
    let cp = m.checkpoint.clone();
    let report = migrate::run(m, &opener(&input), None, &CancelToken::new(), &lease)
        .await
        .expect("the resumed run ends");
    assert!(report.run.resumed, "the second call resumed the first run");
    assert_eq!(report.unknown, 0);
    let counts = cp.counts(report.run.id).unwrap();
    assert_eq!(counts.total, N as u64, "{counts:?}");
    assert_eq!(counts.created, N as u64, "{counts:?}");
    assert_eq!(
        counts.pending + counts.failed + counts.rejected,
        0,
        "{counts:?}"
    );
    let names = pool_usernames(&c, &pool).await;
    assert_eq!(names.len(), N, "no user was created twice");
    let want: BTreeSet<String> = (0..N).map(|i| format!("user{i:04}")).collect();
    assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), want);
}

#[tokio::test]
async fn a_run_cancelled_before_it_starts_stops_in_the_reading_pass_and_writes_nothing() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = create_pool(c.create_user_pool().pool_name("migrate-api-read")).await;
    let dir = tempdir("migrate-api-read");
    let input = write_input(&dir, 20);
    let state = dir.join("state.db");
    let lease = Lease::acquire(&state, "test").unwrap();

    let cancel = CancelToken::new();
    cancel.cancel();
    let m = migration(&emu, &pool, &state, &input, 50.0).await;
    let cp = m.checkpoint.clone();
    let r = migrate::run(m, &opener(&input), None, &cancel, &lease).await;
    assert!(matches!(r, Err(MigrateError::Interrupted)), "{r:?}");
    assert!(
        pool_usernames(&c, &pool).await.is_empty(),
        "nothing written"
    );
    let run = cp.current_run().unwrap().unwrap();
    assert_eq!(cp.counts(run.id).unwrap().created, 0);
    let spills = std::fs::read_dir(dir.join("state.db.files"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".admin-create-")
        })
        .count();
    assert_eq!(
        spills, 0,
        "an interrupted reading pass leaves no spill file"
    );
}
