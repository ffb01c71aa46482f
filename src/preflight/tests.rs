//! Tests of the pool and role checks on hand-made pool facts.

use super::*;
use crate::pool::{Attribute, DataType};

fn schema(auto_verified: &[&str], case_sensitive: bool, required: &[&str]) -> PoolSchema {
    PoolSchema {
        pool_id: "us-east-1_Test".into(),
        pool_name: "test".into(),
        csv_header: vec!["email".into(), "cognito:username".into()],
        attributes: ["email", "name", "birthdate"]
            .iter()
            .map(|n| Attribute {
                name: n.to_string(),
                data_type: DataType::String,
                required: required.contains(n),
                mutable: true,
                min_length: None,
                max_length: None,
                min_value: None,
                max_value: None,
            })
            .collect(),
        username_attributes: vec![],
        alias_attributes: vec![],
        username_case_sensitive: case_sensitive,
        auto_verified_attributes: auto_verified.iter().map(|s| s.to_string()).collect(),
        identity_providers: None,
    }
}

fn facts(schema: PoolSchema) -> PoolFacts {
    PoolFacts {
        schema: Some(schema),
        user_migration_trigger: None,
        mfa: "OFF".into(),
        clients: vec![],
    }
}

fn planned(routes: &[(&str, u64)]) -> Needs {
    let routes: BTreeMap<String, u64> = routes.iter().map(|(r, n)| (r.to_string(), *n)).collect();
    Needs {
        algorithms: Needs::planned_algorithms(&routes),
        routes: Some(routes),
        rejections: BTreeMap::new(),
    }
}

fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
}

#[test]
fn no_auto_verified_attribute_fails_when_import_jobs_run_and_only_warns_otherwise() {
    let f = facts(schema(&[], false, &[]));
    let checks = pool_checks(&f, &planned(&[("import:BCRYPT", 3)]), None);
    let c = find(&checks, "auto-verified");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.fix.as_deref().unwrap().contains("AutoVerifiedAttributes"),
        "{c:?}"
    );
    assert_eq!(worst(&checks), Status::Fail);
    let admin_only = pool_checks(&f, &planned(&[("admin-create", 3)]), None);
    assert_eq!(find(&admin_only, "auto-verified").status, Status::Warn);
    // Nothing known about the input: import jobs are the default, so it fails.
    let unknown = pool_checks(&f, &Needs::default(), None);
    assert_eq!(find(&unknown, "auto-verified").status, Status::Fail);
    let ok = pool_checks(
        &facts(schema(&["email"], false, &[])),
        &planned(&[("import:BCRYPT", 3)]),
        None,
    );
    assert_eq!(find(&ok, "auto-verified").status, Status::Ok);
}

#[test]
fn case_sensitive_usernames_warn_and_missing_required_attributes_fail() {
    let mut needs = planned(&[("import:none", 5)]);
    needs.rejections.insert("missing_required".into(), 2);
    let checks = pool_checks(&facts(schema(&["email"], true, &["name"])), &needs, None);
    assert_eq!(find(&checks, "username").status, Status::Warn);
    let req = find(&checks, "required attributes");
    assert_eq!(req.status, Status::Fail);
    assert!(
        req.message.starts_with("2 users") && req.message.contains("name"),
        "{req:?}"
    );
    let fine = pool_checks(
        &facts(schema(&["email"], false, &["name"])),
        &planned(&[("import:none", 5)]),
        None,
    );
    assert_eq!(find(&fine, "username").status, Status::Ok);
    assert_eq!(find(&fine, "required attributes").status, Status::Ok);
    assert_eq!(worst(&fine), Status::Ok);
}

#[test]
fn trigger_routes_need_the_trigger_and_a_client_allowing_user_password_auth() {
    let needs = planned(&[("trigger", 4), ("import:none", 1)]);
    let mut f = facts(schema(&["email"], false, &[]));
    f.clients = vec![("c1".into(), false)];
    let checks = pool_checks(&f, &needs, None);
    assert_eq!(find(&checks, "trigger").status, Status::Fail);
    assert_eq!(find(&checks, "user-password-auth").status, Status::Fail);
    f.user_migration_trigger = Some("arn:aws:lambda:us-east-1:123456789012:function:t".into());
    f.clients.push(("c2".into(), true));
    let checks = pool_checks(&f, &needs, None);
    assert_eq!(find(&checks, "trigger").status, Status::Ok);
    assert_eq!(find(&checks, "user-password-auth").status, Status::Ok);
    // The named client is the one that counts.
    let checks = pool_checks(&f, &needs, Some("c1"));
    assert_eq!(find(&checks, "user-password-auth").status, Status::Fail);
    // No trigger route: no trigger checks.
    let checks = pool_checks(&f, &planned(&[("import:none", 1)]), None);
    assert!(checks.iter().all(|c| c.name != "trigger"), "{checks:?}");
}

#[test]
fn the_role_must_exist_and_trust_cognito_and_an_unreadable_iam_is_a_warning() {
    let imports = planned(&[("import:BCRYPT", 1)]);
    let arn = "arn:aws:iam::123456789012:role/CognitoImport";
    let found = |policy: &str| RoleLookup::Found {
        trust_policy: policy.to_string(),
    };
    let cognito = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","cognito-idp.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#;
    let lambda = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
    let denied = r#"{"Statement":[{"Effect":"Deny","Principal":{"Service":"cognito-idp.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    assert_eq!(
        role_check(None, &imports, &RoleLookup::NotLooked).status,
        Status::Fail
    );
    assert_eq!(
        role_check(
            None,
            &planned(&[("admin-create", 1)]),
            &RoleLookup::NotLooked
        )
        .status,
        Status::Ok
    );
    assert_eq!(
        role_check(
            Some("arn:aws:iam::12345:role/x"),
            &imports,
            &RoleLookup::NotLooked
        )
        .status,
        Status::Fail
    );
    assert_eq!(
        role_check(
            Some("arn:aws:s3:::bucket"),
            &imports,
            &RoleLookup::NotLooked
        )
        .status,
        Status::Fail
    );
    assert_eq!(
        role_check(Some(arn), &imports, &found(cognito)).status,
        Status::Ok
    );
    // IAM's answer is URL-encoded.
    let encoded: String = cognito
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    assert_eq!(
        role_check(Some(arn), &imports, &found(&percent_decode(&encoded))).status,
        Status::Ok
    );
    assert_eq!(percent_decode(&encoded), cognito);
    assert_eq!(
        role_check(Some(arn), &imports, &found(lambda)).status,
        Status::Fail
    );
    assert_eq!(
        role_check(Some(arn), &imports, &found(denied)).status,
        Status::Fail
    );
    assert_eq!(
        role_check(Some(arn), &imports, &found("not json")).status,
        Status::Fail
    );
    assert_eq!(
        role_check(Some(arn), &imports, &RoleLookup::NotFound).status,
        Status::Fail
    );
    let c = role_check(
        Some(arn),
        &imports,
        &RoleLookup::Unreadable("AccessDenied: no".into()),
    );
    assert_eq!(c.status, Status::Warn);
    assert!(c.message.contains("not checked") && c.fix.unwrap().contains("iam:GetRole"));
}

#[test]
fn planned_algorithms_come_from_the_import_routes() {
    let n = planned(&[
        ("import:SCRYPT", 1),
        ("import:BCRYPT", 2),
        ("import:none", 3),
        ("trigger", 1),
    ]);
    assert_eq!(
        n.algorithms,
        vec![ImportAlgorithm::Bcrypt, ImportAlgorithm::Scrypt]
    );
    assert!(n.import_jobs());
    assert!(!planned(&[("admin-create", 1)]).import_jobs());
}
