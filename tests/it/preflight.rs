//! `cognito-migrate preflight` against the emulator (tests/emulator): the hash canary in both
//! modes — the first notation accepted, and refused with the fallback found — each verdict
//! recorded in the state file and used by the `run` that follows; a pool without auto-verified
//! attributes failing the check; and the canary user and temporary app client removed even when
//! the sign-in fails.

use crate::common::{create_pool, run_args, run_cli, tempdir, Emulator, ROLE_ARN};
use aws_sdk_cognitoidentityprovider::types::{
    AuthFlowType, ExplicitAuthFlowsType, VerifiedAttributeType,
};
use aws_sdk_cognitoidentityprovider::Client;
use serde_json::{json, Value};

const DJANGO: &str = "samples/django/auth_user.csv";
/// Django has no "email verified" flag; an import job needs it (see the file).
const VERIFIED: &str = "tests/fixtures/preflight/django-email-verified.toml";

async fn pool(c: &Client, auto_verified: bool) -> String {
    let mut req = c.create_user_pool().pool_name("cm-preflight");
    if auto_verified {
        req = req.auto_verified_attributes(VerifiedAttributeType::Email);
    }
    create_pool(req).await
}

/// `preflight --json` on the Django sample: (exit code, findings, stderr).
fn preflight(emu: &Emulator, pool: &str, extra: &[&str]) -> (i32, Value, String) {
    let sample = crate::common::repo_root().join(DJANGO);
    let mapping = crate::common::repo_root().join(VERIFIED);
    let mut args = vec![
        "preflight",
        "--pool-id",
        pool,
        "--role-arn",
        ROLE_ARN,
        "-i",
        sample.to_str().unwrap(),
        "-f",
        "django",
        "--mapping",
        mapping.to_str().unwrap(),
        "--unimportable",
        "reset",
        "--json",
    ];
    args.extend_from_slice(extra);
    let mut env = emu.cli_env();
    env.push(("COGNITO_MIGRATE_POLL_MAX_SECONDS", "0.2".into()));
    let (code, out, err) = run_cli(&args, &env);
    let v = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("preflight --json: {e}: {out}\n{err}"));
    (code, v, err)
}

/// Creates the role `ROLE_ARN` names in the emulator's IAM (moto), trusting Cognito.
async fn create_log_role(emu: &Emulator) {
    let iam = aws_sdk_iam::Client::new(&emu.sdk_config().await);
    iam.create_role()
        .role_name("CognitoImport")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"cognito-idp.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("create the log role");
}

fn check<'a>(findings: &'a Value, name: &str) -> &'a Value {
    findings["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {findings}"))
}

fn canary<'a>(findings: &'a Value, alg: &str) -> &'a Value {
    findings["canaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["algorithm"] == alg)
        .unwrap_or_else(|| panic!("no {alg} canary in {findings}"))
}

fn tried(c: &Value) -> Vec<String> {
    c["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["notation"].as_str().unwrap().to_string())
        .collect()
}

fn verdict(algorithm: &str, notation: &str, passed: bool) -> (String, String, bool) {
    (algorithm.to_string(), notation.to_string(), passed)
}

/// The verdicts recorded in a state file: (algorithm, notation, passed), oldest first.
fn verdicts(state: &std::path::Path) -> Vec<(String, String, bool)> {
    let conn = rusqlite::Connection::open(state).unwrap();
    let mut stmt = conn
        .prepare("SELECT algorithm, notation, passed FROM canary_verdicts ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? == 1)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn users_and_clients(c: &Client, pool: &str) -> (usize, usize) {
    let users = c.list_users().user_pool_id(pool).send().await.unwrap();
    let clients = c
        .list_user_pool_clients()
        .user_pool_id(pool)
        .max_results(60)
        .send()
        .await
        .unwrap();
    (users.users().len(), clients.user_pool_clients().len())
}

/// `run` of the Django sample with the state file; returns its stderr.
fn run_django(emu: &Emulator, pool: &str, state: &std::path::Path) -> String {
    let sample = crate::common::repo_root().join(DJANGO);
    let mut args = run_args(
        sample.to_str().unwrap(),
        "django",
        pool,
        state.to_str().unwrap(),
        "import-job",
    );
    let mapping = crate::common::repo_root().join(VERIFIED);
    args.extend([
        "--role-arn",
        ROLE_ARN,
        "--unimportable",
        "reset",
        "--mapping",
        mapping.to_str().unwrap(),
    ]);
    let mut env = emu.cli_env();
    env.push(("COGNITO_MIGRATE_POLL_MAX_SECONDS", "0.2".into()));
    let (code, _out, err) = run_cli(&args, &env);
    assert!(code == 0 || code == 1, "run: {code}\n{err}");
    err
}

async fn signs_in(c: &Client, pool: &str, user: &str, password: &str) -> bool {
    let app = c
        .create_user_pool_client()
        .user_pool_id(pool)
        .client_name("test")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .send()
        .await
        .unwrap();
    let id = app
        .user_pool_client()
        .unwrap()
        .client_id()
        .unwrap()
        .to_string();
    c.admin_initiate_auth()
        .user_pool_id(pool)
        .client_id(id)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", user)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .is_ok_and(|o| o.authentication_result().is_some())
}

/// The password_hash values of the newest import job of an algorithm, as the emulator received them.
fn uploaded_hashes(emu: &Emulator, algorithm: &str) -> Vec<String> {
    let (_, jobs) = emu.get_json("/_emulator/import_jobs");
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|j| {
            j["PasswordHashingAlgorithm"] == algorithm
                && !j["JobName"].as_str().unwrap().contains("canary")
        })
        .unwrap_or_else(|| panic!("no {algorithm} job of run in {jobs}"));
    let (_, csv) = emu
        .http(
            "GET",
            &format!(
                "/_emulator/import_jobs/{}/csv",
                job["JobId"].as_str().unwrap()
            ),
            "",
        )
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|c| *c == "password_hash").unwrap();
    lines
        .map(|l| {
            // Cognito's CSV: commas inside values are written \, (PHC parameters).
            let fields: Vec<String> = l
                .replace("\\,", "\u{1}")
                .split(',')
                .map(|f| f.replace('\u{1}', ","))
                .collect();
            fields[at].clone()
        })
        .collect()
}

#[tokio::test]
async fn accepted_notation_passes_first_try_is_recorded_and_run_uses_it_without_warning() {
    let emu = Emulator::start_with(&[
        "--hash-notation",
        "PBKDF2_SHA256=phc",
        "--hash-notation",
        "ARGON2ID=phc",
    ]);
    let c = emu.cognito().await;
    let pool = pool(&c, true).await;
    create_log_role(&emu).await;
    let dir = tempdir("preflight-ok");
    let state = dir.join("state.db");
    let (code, findings, err) = preflight(&emu, &pool, &["--state", state.to_str().unwrap()]);
    assert_eq!(code, 0, "{findings:#}\n{err}");
    assert!(err.contains("each attempt costs one import job"), "{err}");
    let role = check(&findings, "log role");
    assert_eq!(
        role["status"],
        json!("ok"),
        "read from the emulator's IAM: {role:#}"
    );
    for alg in ["PBKDF2_SHA256", "ARGON2ID"] {
        let c = canary(&findings, alg);
        assert_eq!(c["found"], json!("phc"), "{c:#}");
        assert_eq!(tried(c), vec!["phc"]);
        assert!(
            c["attempts"][0]["job_id"]
                .as_str()
                .unwrap()
                .starts_with("import-"),
            "{c:#}"
        );
    }
    assert_eq!(
        verdicts(&state),
        vec![
            verdict("ARGON2ID", "phc", true),
            verdict("PBKDF2_SHA256", "phc", true)
        ]
    );
    // The canary users and the temporary app client are gone.
    assert_eq!(users_and_clients(&c, &pool).await, (0, 0));

    let err = run_django(&emu, &pool, &state);
    assert!(!err.contains("no hash canary has passed"), "{err}");
    assert!(
        signs_in(&c, &pool, "alice", "Blue-Kettle-42").await,
        "alice keeps her password"
    );
    assert!(!signs_in(&c, &pool, "alice", "Blue-Kettle-43").await);
    let hashes = uploaded_hashes(&emu, "PBKDF2_SHA256");
    assert!(
        hashes
            .iter()
            .all(|h| h.starts_with("$pbkdf2-sha256$i=") && h.contains(",l=")),
        "{hashes:?}"
    );
}

#[tokio::test]
async fn refused_notation_falls_back_records_the_one_found_and_run_writes_it() {
    let emu = Emulator::start_with(&["--hash-notation", "PBKDF2_SHA256=passlib"]);
    let c = emu.cognito().await;
    let pool = pool(&c, true).await;
    create_log_role(&emu).await;
    let dir = tempdir("preflight-fallback");
    let state = dir.join("state.db");
    let (code, findings, err) = preflight(&emu, &pool, &["--state", state.to_str().unwrap()]);
    assert_eq!(code, 0, "{findings:#}\n{err}");
    let pbkdf2 = canary(&findings, "PBKDF2_SHA256");
    assert_eq!(pbkdf2["found"], json!("passlib"), "{pbkdf2:#}");
    assert_eq!(tried(pbkdf2), vec!["phc", "phc-no-length", "passlib"]);
    let first = &pbkdf2["attempts"][0];
    assert_eq!(first["passed"], json!(false));
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("did not take the row; the job's log says: The password_hash value is not a valid PBKDF2_SHA256 hash"),
        "{first:#}"
    );
    assert_eq!(
        verdicts(&state)
            .into_iter()
            .filter(|v| v.0 == "PBKDF2_SHA256")
            .collect::<Vec<_>>(),
        vec![
            verdict("PBKDF2_SHA256", "phc", false),
            verdict("PBKDF2_SHA256", "phc-no-length", false),
            verdict("PBKDF2_SHA256", "passlib", true)
        ]
    );
    let line = findings["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "canary PBKDF2_SHA256")
        .unwrap();
    assert_eq!(line["status"], json!("ok"), "{line:#}");
    assert_eq!(users_and_clients(&c, &pool).await, (0, 0));

    // `run` writes the notation found: the strict pool takes the rows and the users sign in.
    let err = run_django(&emu, &pool, &state);
    assert!(!err.contains("no hash canary has passed"), "{err}");
    let hashes = uploaded_hashes(&emu, "PBKDF2_SHA256");
    assert!(!hashes.is_empty());
    assert!(
        hashes.iter().all(|h| !h.contains("i=")),
        "passlib's form: {hashes:?}"
    );
    assert!(
        signs_in(&c, &pool, "alice", "Blue-Kettle-42").await,
        "alice keeps her password"
    );
    assert!(
        signs_in(&c, &pool, "carol", "Sesame-0pen!").await,
        "argon2id, phc"
    );
}

#[tokio::test]
async fn run_without_a_passed_canary_warns_and_hash_encoding_sets_the_notation_by_hand() {
    let emu = Emulator::start_with(&["--hash-notation", "PBKDF2_SHA256=passlib"]);
    let c = emu.cognito().await;
    let pool = pool(&c, true).await;
    let dir = tempdir("preflight-none");
    let state = dir.join("state.db");
    let err = run_django(&emu, &pool, &state);
    assert!(
        err.contains("no hash canary has passed for pool") && err.contains("PBKDF2_SHA256"),
        "{err}"
    );
    assert!(
        !signs_in(&c, &pool, "alice", "Blue-Kettle-42").await,
        "the default notation is refused here"
    );

    let pool2 = self::pool(&c, true).await;
    let state2 = dir.join("state2.db");
    let sample = crate::common::repo_root().join(DJANGO);
    let mut args = run_args(
        sample.to_str().unwrap(),
        "django",
        &pool2,
        state2.to_str().unwrap(),
        "import-job",
    );
    let mapping = crate::common::repo_root().join(VERIFIED);
    args.extend([
        "--role-arn",
        ROLE_ARN,
        "--unimportable",
        "reset",
        "--mapping",
        mapping.to_str().unwrap(),
        "--hash-encoding",
        "PBKDF2_SHA256=passlib",
    ]);
    let mut env = emu.cli_env();
    env.push(("COGNITO_MIGRATE_POLL_MAX_SECONDS", "0.2".into()));
    let (code, _out, err) = run_cli(&args, &env);
    assert!(code == 0 || code == 1, "{err}");
    assert!(
        !err.contains("PBKDF2_SHA256 in"),
        "set by hand: no warning for it: {err}"
    );
    assert!(signs_in(&c, &pool2, "alice", "Blue-Kettle-42").await);
    let (code, _out, err) = run_cli(
        &[
            "run",
            "-i",
            "x",
            "-f",
            "django",
            "--pool-id",
            &pool2,
            "--state",
            state2.to_str().unwrap(),
            "--role-arn",
            ROLE_ARN,
            "--hash-encoding",
            "BCRYPT=passlib",
        ],
        &env,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot write BCRYPT"), "{err}");
}

#[tokio::test]
async fn a_pool_without_auto_verified_attributes_fails_and_no_job_is_started() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = pool(&c, false).await;
    let (code, findings, err) = preflight(&emu, &pool, &[]);
    assert_eq!(code, 1, "{findings:#}\n{err}");
    assert_eq!(findings["status"], json!("fail"));
    let checks = findings["checks"].as_array().unwrap();
    let auto = checks
        .iter()
        .find(|c| c["name"] == "auto-verified")
        .unwrap();
    assert_eq!(auto["status"], json!("fail"), "{auto:#}");
    assert!(auto["fix"]
        .as_str()
        .unwrap()
        .contains("AutoVerifiedAttributes"));
    let canary = checks
        .iter()
        .find(|c| c["name"] == "canary PBKDF2_SHA256")
        .unwrap();
    assert_eq!(canary["status"], json!("fail"));
    assert!(
        canary["message"].as_str().unwrap().starts_with("not run"),
        "{canary:#}"
    );
    let (_, jobs) = emu.get_json("/_emulator/import_jobs");
    assert_eq!(
        jobs,
        json!([]),
        "no import job for a pool that cannot start one"
    );
    // The role was never created: IAM (moto) says so.
    let role = check(&findings, "log role");
    assert_eq!(role["status"], json!("fail"), "{role:#}");
    assert!(
        role["message"].as_str().unwrap().contains("does not exist"),
        "{role:#}"
    );
}

#[tokio::test]
async fn the_canary_user_and_temporary_client_are_removed_when_the_sign_in_fails() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = pool(&c, true).await;
    emu.control(
        "/_emulator/config",
        json!({"faults": {"rules": {"AdminInitiateAuth": {"internal_error": 1.0}}}}),
    );
    create_log_role(&emu).await;
    let dir = tempdir("preflight-cleanup");
    let state = dir.join("state.db");
    let mut env = emu.cli_env();
    env.push(("COGNITO_MIGRATE_POLL_MAX_SECONDS", "0.2".into()));
    env.push(("AWS_MAX_ATTEMPTS", "1".into()));
    let (code, out, err) = run_cli(
        &[
            "preflight",
            "--pool-id",
            &pool,
            "--role-arn",
            ROLE_ARN,
            "--algorithm",
            "BCRYPT",
            "--state",
            state.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("fail  canary BCRYPT: no notation signed in (tried: mcf)"),
        "{out}"
    );
    // The import did create the user; it was deleted although the sign-in failed.
    let (_, jobs) = emu.get_json("/_emulator/import_jobs");
    assert_eq!(jobs[0]["ImportedUsers"], json!(1), "{jobs}");
    assert_eq!(users_and_clients(&c, &pool).await, (0, 0));
    assert_eq!(verdicts(&state), vec![verdict("BCRYPT", "mcf", false)]);
    assert!(!err.contains("X-Amz-Signature"), "no presigned URL: {err}");
}

#[tokio::test]
async fn the_canary_signs_in_and_is_deleted_in_a_pool_with_email_as_username() {
    use aws_sdk_cognitoidentityprovider::types::UsernameAttributeType;
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = create_pool(
        c.create_user_pool()
            .pool_name("cm-email-username")
            .username_attributes(UsernameAttributeType::Email)
            .auto_verified_attributes(VerifiedAttributeType::Email),
    )
    .await;
    create_log_role(&emu).await;
    let mut env = emu.cli_env();
    env.push(("COGNITO_MIGRATE_POLL_MAX_SECONDS", "0.2".into()));
    let (code, out, err) = run_cli(
        &[
            "preflight",
            "--pool-id",
            &pool,
            "--role-arn",
            ROLE_ARN,
            "--algorithm",
            "BCRYPT",
            "--json",
        ],
        &env,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let findings: Value = serde_json::from_str(&out).unwrap();
    let bcrypt = canary(&findings, "BCRYPT");
    assert_eq!(bcrypt["found"], json!("mcf"), "{bcrypt:#}");
    assert!(bcrypt["attempts"][0]["cleaned_up"].as_bool().unwrap());
    // No --state: the verdict is reported, and the line says nothing recorded it.
    let line = check(&findings, "canary BCRYPT");
    assert_eq!(line["status"], json!("warn"), "{line:#}");
    assert!(
        line["fix"].as_str().unwrap().contains("--state"),
        "{line:#}"
    );
    assert_eq!(users_and_clients(&c, &pool).await, (0, 0));
}
