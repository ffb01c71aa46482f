//! End-to-end tests against the project's local Cognito + S3 emulator (tests/emulator): the Rust
//! SDK sees the emulator's answers as Cognito's, and the CLI works against it.

use crate::common::{
    create_pool, run_args, run_cli, string_attribute, tempdir, Emulator, ROLE_ARN,
};
use aws_sdk_cognitoidentityprovider::error::SdkError;
use aws_sdk_cognitoidentityprovider::operation::admin_create_user::AdminCreateUserError;
use aws_sdk_cognitoidentityprovider::operation::start_user_import_job::StartUserImportJobError;
use aws_sdk_cognitoidentityprovider::types::{
    StringAttributeConstraintsType, VerifiedAttributeType,
};
use aws_sdk_cognitoidentityprovider::Client;
use serde_json::json;

async fn demo_pool(c: &Client) -> String {
    create_pool(
        c.create_user_pool()
            .pool_name("cm-test")
            .auto_verified_attributes(VerifiedAttributeType::Email)
            .schema(
                string_attribute("legacy_id")
                    .string_attribute_constraints(
                        StringAttributeConstraintsType::builder()
                            .min_length("1")
                            .max_length("64")
                            .build(),
                    )
                    .build(),
            ),
    )
    .await
}

#[tokio::test]
async fn header_prints_the_pools_import_columns_and_saves_its_schema() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = demo_pool(&c).await;
    let dir = tempdir("header");
    let saved = dir.join("pool.json");
    let (code, stdout, stderr) = run_cli(
        &[
            "header",
            "--pool-id",
            &pool,
            "--save",
            saved.to_str().unwrap(),
        ],
        &emu.cli_env(),
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let cols: Vec<&str> = stdout.lines().collect();
    assert_eq!(cols.first(), Some(&"name"));
    assert_eq!(cols.len(), 19 + 1 + 2, "{cols:?}");
    assert_eq!(
        &cols[18..],
        [
            "updated_at",
            "custom:legacy_id",
            "cognito:mfa_enabled",
            "cognito:username"
        ]
    );
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(schema["pool_id"], json!(pool));
    assert_eq!(schema["auto_verified_attributes"], json!(["email"]));
    let legacy = schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "custom:legacy_id")
        .expect("custom attribute in the schema");
    assert_eq!(legacy["max_length"], json!(64));
}

#[tokio::test]
async fn header_of_a_missing_pool_exits_2_with_a_clear_message() {
    let emu = Emulator::start();
    let (code, _out, stderr) = run_cli(
        &["header", "--pool-id", "us-east-1_Missing00"],
        &emu.cli_env(),
    );
    assert_eq!(code, 2, "stderr: {stderr}");
    assert!(
        stderr.contains("user pool us-east-1_Missing00 was not found"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[tokio::test]
async fn throttling_arrives_as_a_typed_too_many_requests_exception() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = demo_pool(&c).await;
    emu.control(
        "/_emulator/config",
        json!({"faults": {"seed": 7, "rules": {"AdminCreateUser": {"throttle": 1.0}}}}),
    );
    let err = c
        .admin_create_user()
        .user_pool_id(&pool)
        .username("ada")
        .send()
        .await
        .expect_err("throttled");
    match err {
        SdkError::ServiceError(se) => assert!(
            matches!(se.err(), AdminCreateUserError::TooManyRequestsException(_)),
            "{:?}",
            se.err()
        ),
        other => panic!("expected a service error, got {other:?}"),
    }
    // With Cognito's quota on (50 RPS for UserCreation) a burst beyond it is throttled too.
    emu.control("/_emulator/reset", json!({}));
    let pool = demo_pool(&c).await;
    emu.control("/_emulator/config", json!({"quotas": {"enabled": true}}));
    let mut throttled = 0;
    let mut created = 0;
    let calls = (0..120).map(|i| {
        let c = c.clone();
        let pool = pool.clone();
        async move {
            c.admin_create_user()
                .user_pool_id(pool)
                .username(format!("user{i}"))
                .send()
                .await
        }
    });
    for r in futures::future::join_all(calls).await {
        match r {
            Ok(_) => created += 1,
            Err(SdkError::ServiceError(se))
                if matches!(se.err(), AdminCreateUserError::TooManyRequestsException(_)) =>
            {
                throttled += 1
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert!(throttled > 0, "120 calls at once must exceed 50 RPS");
    assert!(
        created >= 40,
        "about the quota's burst must pass, got {created}"
    );
}

async fn put(url: &str, body: &str, sse: bool) -> u16 {
    let mut req = reqwest::Client::new().put(url).body(body.to_string());
    if sse {
        req = req.header("x-amz-server-side-encryption", "aws:kms");
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn upload_needs_the_sse_header_and_a_second_active_job_is_refused() {
    let emu = Emulator::start();
    emu.control("/_emulator/config", json!({"import_rows_per_second": 1.0}));
    let c = emu.cognito().await;
    let pool = demo_pool(&c).await;
    let header = c.get_csv_header().user_pool_id(&pool).send().await.unwrap();
    let cols = header.csv_header().join(",");
    let row = |u: &str| {
        header
            .csv_header()
            .iter()
            .map(|col| match col.as_str() {
                "cognito:username" => u.to_string(),
                "email" => format!("{u}@example.com"),
                "email_verified" => "true".into(),
                "cognito:mfa_enabled" | "phone_number_verified" => "false".into(),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let file = format!("{cols}\n{}\n{}\n", row("ada"), row("bob"));
    let mut jobs = Vec::new();
    for name in ["first", "second"] {
        let job = c
            .create_user_import_job()
            .user_pool_id(&pool)
            .job_name(name)
            .cloud_watch_logs_role_arn(ROLE_ARN)
            .send()
            .await
            .unwrap();
        let job = job.user_import_job().unwrap().clone();
        let url = job.pre_signed_url().unwrap().to_string();
        assert_eq!(
            put(&url, &file, false).await,
            403,
            "a PUT without the SSE header must fail"
        );
        assert_eq!(put(&url, &file, true).await, 200);
        jobs.push(job.job_id().unwrap().to_string());
    }
    c.start_user_import_job()
        .user_pool_id(&pool)
        .job_id(&jobs[0])
        .send()
        .await
        .expect("the first job starts");
    let err = c
        .start_user_import_job()
        .user_pool_id(&pool)
        .job_id(&jobs[1])
        .send()
        .await
        .expect_err("one active job per account");
    match err {
        // Cognito's model declares no LimitExceededException for StartUserImportJob, so the SDK
        // surfaces it as an unmodelled error carrying that code.
        SdkError::ServiceError(se) => {
            use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
            let e: &StartUserImportJobError = se.err();
            assert_eq!(e.code(), Some("LimitExceededException"), "{e:?}");
        }
        other => panic!("expected LimitExceededException, got {other:?}"),
    }
}

/// The `run --mode import-job` path end to end on the Auth0 sample: users with bcrypt hashes are
/// CONFIRMED and sign in with their known password (verified by the emulator with the reference
/// `bcrypt` package), users without one are RESET_REQUIRED, and `status` adds up to the pool.
#[tokio::test]
async fn run_import_job_keeps_passwords_and_status_matches_the_pool() {
    use aws_sdk_cognitoidentityprovider::types::{AuthFlowType, ExplicitAuthFlowsType};
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = demo_pool(&c).await;
    let app = c
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("test")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .unwrap();
    let client_id = app
        .user_pool_client()
        .unwrap()
        .client_id()
        .unwrap()
        .to_string();
    let dir = tempdir("run");
    let state = dir.join("state.db");
    let sample = crate::common::repo_root().join("samples/auth0/users.ndjson");
    let mut args = run_args(
        sample.to_str().unwrap(),
        "auth0",
        &pool,
        state.to_str().unwrap(),
        "import-job",
    );
    args.extend(["--role-arn", ROLE_ARN]);
    let (code, _stdout, stderr) = run_cli(&args, &emu.cli_env());
    assert_eq!(code, 1, "the sample has rejected records; stderr: {stderr}");
    assert!(
        !stderr.contains("X-Amz-Signature"),
        "no presigned URL in output"
    );

    let (code, status) = emu.status(&state);
    assert_eq!(code, 1, "{status}");
    let n = |k: &str| status[k].as_u64().unwrap();
    assert_eq!(n("pending"), 0, "{status}");
    assert_eq!(n("failed"), 0, "{status}");
    assert_eq!(n("rejected"), 2, "{status}");
    assert_eq!(n("total"), 12, "{status}");
    let users = c.list_users().user_pool_id(&pool).send().await.unwrap();
    assert_eq!(users.users().len() as u64, n("imported"), "{status}");
    assert_eq!(n("imported") + n("trigger") + n("rejected"), 12, "{status}");

    // alice's bcrypt hash was imported: she signs in with her legacy password, not another.
    let auth = |user: &'static str, password: &'static str| {
        let c = c.clone();
        let pool = pool.clone();
        let client_id = client_id.clone();
        async move {
            c.admin_initiate_auth()
                .user_pool_id(pool)
                .client_id(client_id)
                .auth_flow(AuthFlowType::AdminUserPasswordAuth)
                .auth_parameters("USERNAME", user)
                .auth_parameters("PASSWORD", password)
                .send()
                .await
        }
    };
    let alice = "auth0|64f1a2b3c4d5e6f708192a01";
    let ok = auth(alice, "Blue-Kettle-42")
        .await
        .expect("the known password signs in");
    assert!(ok.authentication_result().is_some());
    assert!(
        auth(alice, "Blue-Kettle-43").await.is_err(),
        "a wrong password must not"
    );
    let (_, u) = emu.get_json(&format!(
        "/_emulator/users/{pool}/{}",
        alice.replace('|', "%7C")
    ));
    assert_eq!(u["status"], json!("CONFIRMED"), "{u}");

    // Running the same command again resumes: nothing is imported twice.
    let (code, _stdout, stderr) = run_cli(&args, &emu.cli_env());
    assert_eq!(code, 1, "{stderr}");
    let again = c.list_users().user_pool_id(&pool).send().await.unwrap();
    assert_eq!(again.users().len(), users.users().len());
    let (_, jobs) = emu.get_json("/_emulator/import_jobs");
    let jobs_before = jobs.as_array().map(|a| a.len()).unwrap_or(0);
    assert!(jobs_before >= 1, "{jobs}");
    assert!(
        !state.with_extension("db.files").exists()
            || std::fs::read_dir(state.with_extension("db.files"))
                .unwrap()
                .count()
                == 0,
        "import files are deleted after their jobs"
    );
}
