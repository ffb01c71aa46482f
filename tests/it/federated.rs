//! Federated identities end to end (issue #19, item 1): users who sign in with Google, Apple or
//! GitHub are created once, linked to the right provider and id (the emulator's `identities`
//! attribute), never RESET_REQUIRED for a password they never had; `plan` reports a provider the
//! pool lacks; a run killed between links resumes and makes each link exactly once.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_cognitoidentityprovider::types::{IdentityProviderTypeType, UserStatusType};
use aws_sdk_cognitoidentityprovider::Client;

use crate::common::*;

/// Auth0's user export: a database user with a bcrypt hash, a Google-only user, a user with a
/// password and Google, and one whose enterprise connection is not in the table (linked nowhere).
const AUTH0: &str = concat!(
    r#"{"user_id":"auth0|db1","email":"db1@example.com","email_verified":true,"identities":[{"connection":"Username-Password-Authentication","provider":"auth0","user_id":"db1","isSocial":false}],"passwordHash":"$2b$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i"}"#,
    "\n",
    r#"{"user_id":"google-oauth2|1049","email":"gonly@example.com","email_verified":true,"identities":[{"connection":"google-oauth2","provider":"google-oauth2","user_id":"1049","isSocial":true}]}"#,
    "\n",
    r#"{"user_id":"auth0|both1","email":"both1@example.com","email_verified":true,"identities":[{"connection":"Username-Password-Authentication","provider":"auth0","user_id":"both1","isSocial":false},{"connection":"google-oauth2","provider":"google-oauth2","user_id":"2077","isSocial":true}],"passwordHash":"$2b$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i"}"#,
    "\n",
);

/// Firebase's auth:export JSON: Google, Apple and GitHub users without passwords.
const FIREBASE: &str = r#"{"users":[
 {"localId":"fb-g","email":"fg@example.com","emailVerified":true,"providerUserInfo":[{"providerId":"google.com","rawId":"3001","email":"fg@example.com"}]},
 {"localId":"fb-a","email":"fa@example.com","emailVerified":true,"providerUserInfo":[{"providerId":"apple.com","rawId":"001234.abcd","email":"fa@example.com"}]},
 {"localId":"fb-gh","email":"fgh@example.com","emailVerified":true,"providerUserInfo":[{"providerId":"github.com","rawId":"77","email":"fgh@example.com"},{"providerId":"password","rawId":"fgh@example.com"}]}
]}"#;

/// GitHub has no Cognito social provider: the pool has it as an OIDC provider named `GitHub`.
const FIREBASE_MAPPING: &str = "[providers]\n\"github.com\" = \"GitHub\"\n";

async fn pool_with(
    c: &Client,
    name: &str,
    providers: &[(&str, IdentityProviderTypeType)],
) -> String {
    let pool = verified_email_pool(c, name).await;
    for (p, t) in providers {
        c.create_identity_provider()
            .user_pool_id(&pool)
            .provider_name(*p)
            .provider_type(t.clone())
            .provider_details("client_id", "x")
            .send()
            .await
            .expect("CreateIdentityProvider");
    }
    pool
}

/// Username → (status, [(provider, user id)]) of every user in the pool.
async fn linked(c: &Client, pool: &str) -> BTreeMap<String, (String, Vec<(String, String)>)> {
    let mut out = BTreeMap::new();
    for u in pool_users(c, pool).await {
        let ids = u
            .attributes()
            .iter()
            .find(|a| a.name() == "identities")
            .and_then(|a| a.value())
            .map(|t| {
                let v: Vec<serde_json::Value> = serde_json::from_str(t).unwrap();
                v.iter()
                    .map(|i| {
                        (
                            i["providerName"].as_str().unwrap().to_string(),
                            i["userId"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let status = u
            .user_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        out.insert(u.username().unwrap().to_string(), (status, ids));
    }
    out
}

fn links_served(emu: &Emulator) -> u64 {
    emu.stats()["operations"]["AdminLinkProviderForUser"]["served"]
        .as_u64()
        .unwrap_or(0)
}

fn pair(p: &str, id: &str) -> (String, String) {
    (p.to_string(), id.to_string())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[tokio::test]
async fn auth0_and_firebase_users_are_linked_once_and_never_reset() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let dir = tempdir("federated");
    let env = emu.cli_env();

    // Auth0 in auto mode: bcrypt users through an import job, the Google-only user through
    // AdminCreateUser; links after the users exist.
    let pool = pool_with(&c, "auth0", &[("Google", IdentityProviderTypeType::Google)]).await;
    let input = write(&dir, "auth0.ndjson", AUTH0);
    let state = dir.join("auth0.db");
    let mut args = run_args(&input, "auth0", &pool, state.to_str().unwrap(), "auto");
    args.extend(["--role-arn", ROLE_ARN]);
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 0, "{out}\n{err}");
    let users = linked(&c, &pool).await;
    assert_eq!(users.len(), 3, "{users:?}");
    assert_eq!(
        users["auth0|db1"].1,
        vec![],
        "a database user is not linked"
    );
    assert_eq!(users["auth0|db1"].0, "CONFIRMED", "bcrypt hash imported");
    assert_eq!(users["google-oauth2|1049"].1, vec![pair("Google", "1049")]);
    assert_eq!(
        users["google-oauth2|1049"].0,
        UserStatusType::ForceChangePassword.as_str(),
        "created without a password, never RESET_REQUIRED"
    );
    assert_eq!(users["auth0|both1"].1, vec![pair("Google", "2077")]);
    assert_eq!(users["auth0|both1"].0, "CONFIRMED", "keeps its password");
    assert_eq!(links_served(&emu), 2);

    // Firebase in import-job mode: federated-only users still go through AdminCreateUser.
    let pool = pool_with(
        &c,
        "firebase",
        &[
            ("Google", IdentityProviderTypeType::Google),
            ("SignInWithApple", IdentityProviderTypeType::SignInWithApple),
            ("GitHub", IdentityProviderTypeType::Oidc),
        ],
    )
    .await;
    let input = write(&dir, "firebase.json", FIREBASE);
    let mapping = write(&dir, "firebase.toml", FIREBASE_MAPPING);
    let state = dir.join("firebase.db");
    let mut args = run_args(
        &input,
        "firebase",
        &pool,
        state.to_str().unwrap(),
        "import-job",
    );
    args.extend(["--role-arn", ROLE_ARN, "--mapping", &mapping]);
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 0, "{out}\n{err}");
    let users = linked(&c, &pool).await;
    assert_eq!(users.len(), 3, "{users:?}");
    assert_eq!(users["fb-g"].1, vec![pair("Google", "3001")]);
    assert_eq!(
        users["fb-a"].1,
        vec![pair("SignInWithApple", "001234.abcd")]
    );
    assert_eq!(users["fb-gh"].1, vec![pair("GitHub", "77")]);
    for (name, (status, _)) in &users {
        assert_ne!(status, "RESET_REQUIRED", "{name}");
    }
    assert_eq!(links_served(&emu), 2 + 3);

    // Running again links nothing twice.
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(links_served(&emu), 5);
}

#[tokio::test]
async fn plan_reports_a_provider_the_pool_lacks_and_reject_rejects() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let dir = tempdir("federated-plan");
    let env = emu.cli_env();
    // No SignInWithApple in this pool.
    let pool = pool_with(&c, "plan", &[("Google", IdentityProviderTypeType::Google)]).await;
    let input = write(&dir, "firebase.json", FIREBASE);
    let out_dir = dir.join("plan");
    let plan = |extra: &[&str]| {
        let mut args = vec![
            "plan",
            "-i",
            &input,
            "-f",
            "firebase",
            "--pool-id",
            &pool,
            "--out",
            out_dir.to_str().unwrap(),
            "--json",
        ];
        args.extend(extra);
        let (code, out, err) = run_cli(&args, &env);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
        (code, v)
    };
    let (code, s) = plan(&[]);
    assert_eq!(code, 0, "{s}");
    assert_eq!(
        s["unknown_providers"]["apple.com → SignInWithApple"], 1,
        "{s}"
    );
    assert_eq!(s["unknown_providers"]["github.com"], 1, "{s}");
    assert_eq!(s["links"]["Google"], 1, "{s}");
    assert_eq!(s["routes"]["federated"], 1, "{s}");
    let (code, s) = plan(&["--unknown-provider", "reject"]);
    assert_eq!(code, 1, "{s}");
    assert_eq!(s["rejections"]["unknown_provider"], 2, "{s}");
}

/// Kills the run after the third link (testing hook `linked`), runs it again, and checks that
/// every user holds its one identity and that AdminLinkProviderForUser was served exactly once per
/// identity (refused calls count too). `hash`: users also have a bcrypt password (imported by a
/// job, linked by the follow-ups after it), else they only sign in with Google.
async fn crash_between_links(mode: &str, hash: bool) {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let dir = tempdir("federated-crash");
    let env = emu.cli_env();
    let pool = pool_with(&c, "crash", &[("Google", IdentityProviderTypeType::Google)]).await;
    let n = 8;
    let password = if hash {
        r#","passwordHash":"$2b$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i""#
    } else {
        ""
    };
    let text: String = (0..n)
        .map(|i| {
            format!(
                r#"{{"user_id":"google-oauth2|{i}","email":"g{i}@example.com","email_verified":true,"identities":[{{"provider":"google-oauth2","connection":"google-oauth2","user_id":"90{i}","isSocial":true}}]{password}}}"#
            ) + "\n"
        })
        .collect();
    let input = write(&dir, "auth0.ndjson", &text);
    let state = dir.join("state.db");
    let mut args = run_args(&input, "auth0", &pool, state.to_str().unwrap(), mode);
    args.extend(["--concurrency", "1", "--role-arn", ROLE_ARN]);
    let mut killed_env = env.clone();
    killed_env.push(("COGNITO_MIGRATE_TEST_KILL_AT", "linked#3".to_string()));
    let (code, out, err) = run_cli(&args, &killed_env);
    assert_ne!(code, 0, "{mode}: the hook must kill the run: {out}\n{err}");
    assert!(err.contains("testing hook"), "{mode}: {err}");
    assert_eq!(links_served(&emu), 3, "{mode}");
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 0, "{mode}: {out}\n{err}");
    let users = linked(&c, &pool).await;
    assert_eq!(users.len(), n, "{mode}: {users:?}");
    for i in 0..n {
        let (status, ids) = &users[&format!("google-oauth2|{i}")];
        assert_eq!(
            ids,
            &vec![pair("Google", &format!("90{i}"))],
            "{mode}: user {i}"
        );
        let want = if hash {
            "CONFIRMED"
        } else {
            "FORCE_CHANGE_PASSWORD"
        };
        assert_eq!(status, want, "{mode}: user {i}");
    }
    assert_eq!(
        links_served(&emu),
        n as u64,
        "{mode}: each identity linked exactly once"
    );
    let st = emu.status(&state).1;
    assert_eq!(st["failed"], 0, "{mode}: {st}");
}

#[tokio::test]
async fn killed_between_links_the_resumed_run_links_each_identity_once() {
    // The AdminCreateUser writer's own follow-ups (federated-only users).
    crash_between_links("admin-create", false).await;
    // The follow-ups of users imported by a job.
    crash_between_links("import-job", true).await;
}

/// A Google user who signed in before the migration exists in the pool as `Google_<id>`: Cognito
/// refuses to link that identity. The user is created but fails `followup_failed`, with a message
/// that says why and names no secret; once that user is deleted, `retry` links it (once).
#[tokio::test]
async fn a_federated_user_already_in_the_pool_fails_the_link_and_retry_links_it() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let dir = tempdir("federated-retry");
    let env = emu.cli_env();
    let pool = pool_with(&c, "retry", &[("Google", IdentityProviderTypeType::Google)]).await;
    c.admin_create_user()
        .user_pool_id(&pool)
        .username("Google_1049")
        .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
        .send()
        .await
        .unwrap();
    let input = write(&dir, "auth0.ndjson", AUTH0);
    let state = dir.join("state.db");
    let state_s = state.to_str().unwrap();
    let mut args = run_args(&input, "auth0", &pool, state_s, "admin-create");
    // AdminCreateUser takes no hash: the password users are created to reset it (and linked).
    args.extend(["--unimportable", "reset"]);
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 1, "one user failed: {out}\n{err}");
    let failed = dir.join("failed.csv");
    let (_, _, _) = report_failed(&state, &failed, &env);
    let report = std::fs::read_to_string(&failed).unwrap();
    assert!(report.contains("followup_failed"), "{report}");
    assert!(report.contains("Google_1049"), "{report}");
    assert!(!report.contains("$2b$"), "{report}");
    let users = linked(&c, &pool).await;
    assert_eq!(users["google-oauth2|1049"].1, vec![], "{users:?}");
    assert_eq!(users["auth0|both1"].1, vec![pair("Google", "2077")]);
    // The user whose link failed is in the pool all the same: the id map has it, with its sub.
    let map = dir.join("id-map.csv");
    let args = [
        "report",
        "--state",
        state_s,
        "--id-map",
        map.to_str().unwrap(),
    ];
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 0, "{out}\n{err}");
    let text = std::fs::read_to_string(&map).unwrap();
    let sub = c
        .admin_get_user()
        .user_pool_id(&pool)
        .username("google-oauth2|1049")
        .send()
        .await
        .unwrap()
        .user_attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .unwrap()
        .to_string();
    let row = text
        .lines()
        .find(|l| l.starts_with("google-oauth2|1049,"))
        .unwrap_or_else(|| panic!("the user whose link failed is not in the id map:\n{text}"));
    assert!(row.contains(&format!(",{sub},in_pool,run,")), "{row}");
    assert_eq!(text.lines().count(), 1 + 3, "{text}");

    c.admin_delete_user()
        .user_pool_id(&pool)
        .username("Google_1049")
        .send()
        .await
        .unwrap();
    let (code, out, err) = run_cli(&["retry", "--state", state_s], &env);
    assert_eq!(code, 0, "{out}\n{err}");
    let users = linked(&c, &pool).await;
    assert_eq!(users.len(), 3, "{users:?}");
    assert_eq!(users["google-oauth2|1049"].1, vec![pair("Google", "1049")]);
    assert_eq!(users["auth0|both1"].1, vec![pair("Google", "2077")]);
    assert_eq!(emu.status(&state).1["failed"], 0);
    // The refused call, then one link each.
    assert_eq!(links_served(&emu), 3);
}

/// In a pool whose usernames are email addresses, Cognito names each user by a generated id, and
/// AdminLinkProviderForUser's `DestinationUser` takes "the username in the user pool" (API
/// reference), which is that id, not the email address the run created the user with. Both
/// writers link there: the Google-only user created by AdminCreateUser and the password user
/// imported by a job (linked by the follow-ups after it).
#[tokio::test]
async fn email_as_username_pools_link_the_generated_username() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let dir = tempdir("federated-email");
    let env = emu.cli_env();
    let pool = create_pool(
        c.create_user_pool()
            .pool_name("federated-email")
            .username_attributes(
                aws_sdk_cognitoidentityprovider::types::UsernameAttributeType::Email,
            )
            .auto_verified_attributes(
                aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType::Email,
            ),
    )
    .await;
    c.create_identity_provider()
        .user_pool_id(&pool)
        .provider_name("Google")
        .provider_type(IdentityProviderTypeType::Google)
        .provider_details("client_id", "x")
        .send()
        .await
        .expect("CreateIdentityProvider");
    let input = write(&dir, "auth0.ndjson", AUTH0);
    let state = dir.join("state.db");
    let mut args = run_args(&input, "auth0", &pool, state.to_str().unwrap(), "auto");
    args.extend(["--role-arn", ROLE_ARN]);
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 0, "{out}\n{err}");
    let users = linked(&c, &pool).await;
    assert_eq!(users.len(), 3, "{users:?}");
    let mut links: Vec<_> = users.values().flat_map(|(_, ids)| ids.clone()).collect();
    links.sort();
    assert_eq!(links, vec![pair("Google", "1049"), pair("Google", "2077")]);
    for name in users.keys() {
        assert!(!name.contains('@'), "usernames are generated ids: {name}");
    }
    assert_eq!(links_served(&emu), 2, "one call per identity");
}

/// A link whose answer is lost (the connection drops after Cognito made it) is retried, and
/// Cognito refuses the retry: that identity is linked already, to this very user. The writer reads
/// the user back and finds the link there: done, not a failure, and no third call.
#[tokio::test]
async fn a_link_whose_answer_was_lost_is_found_made_not_failed() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let dir = tempdir("federated-lost");
    let env = emu.cli_env();
    let pool = pool_with(&c, "lost", &[("Google", IdentityProviderTypeType::Google)]).await;
    emu.control(
        "/_emulator/config",
        serde_json::json!({"faults": {"rules": {"AdminLinkProviderForUser":
            {"drop_after": 1.0, "max_faults": 1}}}}),
    );
    let input = write(&dir, "auth0.ndjson", AUTH0);
    let state = dir.join("state.db");
    let mut args = run_args(
        &input,
        "auth0",
        &pool,
        state.to_str().unwrap(),
        "admin-create",
    );
    args.extend(["--unimportable", "reset", "--concurrency", "1"]);
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 0, "{out}\n{err}");
    let users = linked(&c, &pool).await;
    assert_eq!(users["google-oauth2|1049"].1, vec![pair("Google", "1049")]);
    assert_eq!(users["auth0|both1"].1, vec![pair("Google", "2077")]);
    assert_eq!(emu.status(&state).1["failed"], 0);
    // Two identities, one answer lost: the made call, its refused retry, the other link.
    assert_eq!(links_served(&emu), 3);
}

/// The real export shapes (tests/fixtures/real/) through a whole run: the Auth0 user export's
/// Google user and the Firebase export's Google user exist once, linked to Google with the
/// provider's id, FORCE_CHANGE_PASSWORD (never RESET_REQUIRED); Firebase's microsoft.com user,
/// whose provider the pool lacks, is migrated unlinked.
#[tokio::test]
async fn the_real_auth0_and_firebase_exports_link_their_google_users() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let dir = tempdir("federated-real");
    let env = emu.cli_env();
    let real = "tests/fixtures/real";
    for (name, format, input, extra) in [
        (
            "auth0",
            "auth0",
            format!("{real}/auth0/users-export.ndjson"),
            [
                "--hashes".to_string(),
                format!("{real}/auth0/password-hashes.ndjson"),
            ],
        ),
        (
            "firebase",
            "firebase",
            format!("{real}/firebase/accounts.json"),
            [
                "--hash-config".to_string(),
                format!("{real}/firebase/hash_config.txt"),
            ],
        ),
    ] {
        let pool = pool_with(&c, name, &[("Google", IdentityProviderTypeType::Google)]).await;
        let state = dir.join(format!("{name}.db"));
        let mut args = run_args(&input, format, &pool, state.to_str().unwrap(), "auto");
        args.extend(["--role-arn", ROLE_ARN, &extra[0], &extra[1]]);
        let (code, out, err) = run_cli(&args, &env);
        assert_eq!(code, 0, "{name}: {out}\n{err}");
        let users = linked(&c, &pool).await;
        let google: Vec<_> = users
            .iter()
            .filter(|(_, (_, ids))| !ids.is_empty())
            .collect();
        assert_eq!(google.len(), 1, "{name}: {users:?}");
        let (_, (status, ids)) = google[0];
        assert_eq!(
            ids,
            &vec![pair("Google", "104857392018475619283")],
            "{name}"
        );
        assert_eq!(status, "FORCE_CHANGE_PASSWORD", "{name}");
        for (u, (status, _)) in &users {
            assert_ne!(status, "RESET_REQUIRED", "{name}: {u}");
        }
        if name == "firebase" {
            assert_eq!(
                users["6"].1,
                vec![],
                "microsoft.com is not linked: {users:?}"
            );
        }
    }
    assert_eq!(links_served(&emu), 2);
}

/// AdminLinkProviderForUser's API reference: "All attributes in the DestinationUser profile must be
/// mutable. If you have assigned the user any immutable custom attributes, the operation won't
/// succeed." A pool whose `custom:legacy_id` is immutable (a natural choice for an id) cannot take
/// the links of users the mapping gives one: `plan` says so before anything is written.
#[tokio::test]
async fn plan_warns_that_an_immutable_custom_attribute_blocks_links() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let dir = tempdir("federated-immutable");
    let env = emu.cli_env();
    let pool = create_pool(
        c.create_user_pool()
            .pool_name("immutable")
            .auto_verified_attributes(
                aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType::Email,
            )
            .schema(string_attribute("legacy_id").mutable(false).build()),
    )
    .await;
    c.create_identity_provider()
        .user_pool_id(&pool)
        .provider_name("Google")
        .provider_type(IdentityProviderTypeType::Google)
        .provider_details("client_id", "x")
        .send()
        .await
        .expect("CreateIdentityProvider");
    let input = write(&dir, "auth0.ndjson", AUTH0);
    let out_dir = dir.join("plan");
    let args = [
        "plan",
        "-i",
        &input,
        "-f",
        "auth0",
        "--pool-id",
        &pool,
        "--out",
        out_dir.to_str().unwrap(),
        "--mode",
        "auto",
        "--json",
    ];
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 0, "{out}\n{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warnings = s["warnings"].to_string();
    assert!(
        warnings.contains(
            "2 users with identities to link have the immutable custom attribute custom:legacy_id"
        ),
        "{s}"
    );
    // Run anyway: both users are created or imported, and both links fail with a reason that
    // names the cause.
    let state = dir.join("state.db");
    let mut args = run_args(&input, "auth0", &pool, state.to_str().unwrap(), "auto");
    args.extend(["--role-arn", ROLE_ARN]);
    let (code, out, err) = run_cli(&args, &env);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(linked(&c, &pool).await.len(), 3);
    let failed = dir.join("failed.csv");
    report_failed(&state, &failed, &env);
    let report = std::fs::read_to_string(&failed).unwrap();
    assert_eq!(report.matches("followup_failed").count(), 2, "{report}");
    assert!(report.contains("immutable custom attribute"), "{report}");
}
