//! `preflight`: everything that can be checked on the real user pool before a single user is
//! touched, each finding a line that is ok, warn or fail, with the fix.
//!
//! # Why it exists
//!
//! A migration that fails on its first import job (no auto-verified attribute, no log role), or
//! worse imports two million password hashes the pool never verifies, is found out too late.
//! The pool's settings are compared with what the plan needs ([`pool_checks`], a pure function of
//! [`PoolFacts`] and [`Needs`]), the CloudWatch Logs role is looked at ([`role_check`]), and the
//! `password_hash` notation is proved by the hash canary ([`canary`]): one throw-away user per
//! algorithm, imported by a one-row import job and signed in with its password.

pub mod canary;

use std::collections::BTreeMap;

use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType;
use aws_sdk_cognitoidentityprovider::Client;
use serde::Serialize;

use crate::password::ImportAlgorithm;
use crate::pool::PoolSchema;

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One finding: what was checked, what was found, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name: `auto-verified`, `username`, `trigger`, `canary ARGON2ID`, …
    pub name: String,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warn(
        name: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Check::ok(name, message)
        }
    }

    pub fn fail(
        name: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Check::ok(name, message)
        }
    }
}

/// What the migration needs of the pool: from `plan`'s summary of the input, or nothing known
/// (no input given: only the hash algorithms given by hand).
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// Users per route (`import:BCRYPT`, `import:none`, `admin-create`, `trigger`), when an input
    /// was planned.
    pub routes: Option<BTreeMap<String, u64>>,
    /// Rejections per reason code of that plan.
    pub rejections: BTreeMap<String, u64>,
    /// The algorithms whose notation the canary proves.
    pub algorithms: Vec<ImportAlgorithm>,
}

impl Needs {
    fn users(&self, route: &str) -> u64 {
        self.routes
            .as_ref()
            .and_then(|r| r.get(route))
            .copied()
            .unwrap_or(0)
    }

    /// Whether import jobs will run: some import route, a canary to run, or nothing known.
    pub fn import_jobs(&self) -> bool {
        !self.algorithms.is_empty()
            || match &self.routes {
                None => true,
                Some(r) => r.keys().any(|k| k.starts_with("import:")),
            }
    }

    /// The import algorithms the planned input needs, in API order.
    pub fn planned_algorithms(routes: &BTreeMap<String, u64>) -> Vec<ImportAlgorithm> {
        let mut algs: Vec<ImportAlgorithm> = routes
            .keys()
            .filter_map(|k| k.strip_prefix("import:"))
            .filter_map(|a| a.parse().ok())
            .collect();
        algs.sort();
        algs.dedup();
        algs
    }
}

/// The pool's settings that preflight compares with the plan (DescribeUserPool, its app clients).
#[derive(Clone, Debug, Default)]
pub struct PoolFacts {
    pub schema: Option<PoolSchema>,
    /// The UserMigration trigger's Lambda ARN, if one is attached.
    pub user_migration_trigger: Option<String>,
    /// `OFF`, `ON` or `OPTIONAL`.
    pub mfa: String,
    /// App clients: (client id, whether it allows USER_PASSWORD_AUTH).
    pub clients: Vec<(String, bool)>,
}

/// Why the pool could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{operation} on user pool {pool_id}: {message}")]
pub struct ReadError {
    pub operation: &'static str,
    pub pool_id: String,
    pub message: String,
}

fn read_error<E>(
    operation: &'static str,
    pool_id: &str,
    e: &aws_sdk_cognitoidentityprovider::error::SdkError<E>,
) -> ReadError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    ReadError {
        operation,
        pool_id: pool_id.to_owned(),
        message: e
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| DisplayErrorContext(e).to_string()),
    }
}

impl PoolFacts {
    /// Reads what [`pool_checks`] needs besides the schema: the trigger, MFA and the app clients'
    /// auth flows (DescribeUserPool, ListUserPoolClients, DescribeUserPoolClient).
    pub async fn fetch(client: &Client, schema: PoolSchema) -> Result<PoolFacts, ReadError> {
        let pool_id = schema.pool_id.clone();
        let described = client
            .describe_user_pool()
            .user_pool_id(&pool_id)
            .send()
            .await
            .map_err(|e| read_error("DescribeUserPool", &pool_id, &e))?;
        let pool = described.user_pool();
        let user_migration_trigger = pool
            .and_then(|p| p.lambda_config())
            .and_then(|l| l.user_migration())
            .map(str::to_owned);
        let mfa = pool
            .and_then(|p| p.mfa_configuration())
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| "OFF".into());
        let mut clients = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = client
                .list_user_pool_clients()
                .user_pool_id(&pool_id)
                .max_results(60)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| read_error("ListUserPoolClients", &pool_id, &e))?;
            for c in page.user_pool_clients() {
                let Some(id) = c.client_id() else { continue };
                let d = client
                    .describe_user_pool_client()
                    .user_pool_id(&pool_id)
                    .client_id(id)
                    .send()
                    .await
                    .map_err(|e| read_error("DescribeUserPoolClient", &pool_id, &e))?;
                let flows = d
                    .user_pool_client()
                    .map(|c| c.explicit_auth_flows().to_vec())
                    .unwrap_or_default();
                let user_password = flows.iter().any(|f| {
                    matches!(
                        f,
                        ExplicitAuthFlowsType::AllowUserPasswordAuth
                            | ExplicitAuthFlowsType::UserPasswordAuth
                    )
                });
                clients.push((id.to_owned(), user_password));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.into()),
                _ => break,
            }
        }
        Ok(PoolFacts {
            schema: Some(schema),
            user_migration_trigger,
            mfa,
            clients,
        })
    }
}

/// The pool's settings against what the migration needs.
pub fn pool_checks(facts: &PoolFacts, needs: &Needs, client_id: Option<&str>) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(schema) = &facts.schema else {
        return out;
    };
    // Auto-verified attributes: an import job does not start without one.
    if schema.auto_verified_attributes.is_empty() {
        let message = "the pool has no auto-verified attribute (email or phone_number): Cognito \
                       does not start an import job in such a pool";
        let fix = "set AutoVerifiedAttributes (email or phone_number) on the pool \
                   (aws cognito-idp update-user-pool --auto-verified-attributes email …), or \
                   migrate with --mode admin-create";
        out.push(if needs.import_jobs() {
            Check::fail("auto-verified", message, fix)
        } else {
            Check::warn("auto-verified", message, fix)
        });
    } else {
        out.push(Check::ok(
            "auto-verified",
            format!(
                "auto-verified: {}; each imported user needs one of them verified (users without \
                 go the non-import way in --mode auto)",
                schema.auto_verified_attributes.join(", ")
            ),
        ));
    }
    // How users sign in.
    let sign_in = if schema.username_attributes.is_empty() {
        "users sign in with their username".to_string()
    } else {
        format!(
            "users sign in with {} instead of a username (cognito:username must be that value)",
            schema.username_attributes.join(" or ")
        )
    };
    let aliases = if schema.alias_attributes.is_empty() {
        String::new()
    } else {
        format!("; aliases: {}", schema.alias_attributes.join(", "))
    };
    if schema.username_case_sensitive {
        out.push(Check::warn(
            "username",
            format!("{sign_in}{aliases}; usernames are case-sensitive: `Alice` and `alice` become two users"),
            "AWS recommends case-insensitive usernames; this is fixed at pool creation \
             (UsernameConfiguration CaseSensitive=false), so decide before migrating",
        ));
    } else {
        out.push(Check::ok(
            "username",
            format!("{sign_in}{aliases}; usernames are case-insensitive"),
        ));
    }
    // Required attributes.
    let required = schema.required_attributes();
    // `missing_required` also counts records lacking a field their source needs; with no
    // required attribute in the pool those are not the pool's concern.
    let missing = needs
        .rejections
        .get("missing_required")
        .copied()
        .unwrap_or(0);
    if missing > 0 && !required.is_empty() {
        out.push(Check::fail(
            "required attributes",
            format!(
                "{missing} users of the input lack a value for a required attribute ({}); they are rejected",
                required.join(", ")
            ),
            "map the attribute in the mapping file (a default or a transform), or fix the export; \
             `plan` writes each one with its field in rejects.csv",
        ));
    } else if required.is_empty() {
        out.push(Check::ok(
            "required attributes",
            "the pool requires no attribute",
        ));
    } else {
        out.push(Check::ok(
            "required attributes",
            format!(
                "required: {}{}",
                required.join(", "),
                if needs.routes.is_some() {
                    " (every planned user has them)"
                } else {
                    ""
                }
            ),
        ));
    }
    // MFA: the import CSV's cognito:mfa_enabled must match.
    if facts.mfa == "ON" && needs.import_jobs() {
        out.push(Check::warn(
            "mfa",
            "MFA is required in the pool: every imported user must have cognito:mfa_enabled=true and a phone number",
            "map cognito:mfa_enabled and phone_number, or migrate with --mode admin-create",
        ));
    }
    // Users left to the migration trigger.
    let trigger_users = needs.users("trigger");
    if trigger_users > 0 {
        match &facts.user_migration_trigger {
            Some(_) => out.push(Check::ok(
                "trigger",
                format!("{trigger_users} users are left to the migration trigger, and the pool has a UserMigration trigger"),
            )),
            None => out.push(Check::fail(
                "trigger",
                format!("{trigger_users} users are left to the migration trigger, but the pool has no UserMigration trigger: they cannot sign in"),
                "deploy cognito-migrate-trigger (scripts/trigger) and attach it as the pool's UserMigration trigger, or choose --unimportable reset",
            )),
        }
        let allowing: Vec<&str> = facts
            .clients
            .iter()
            .filter(|(id, ok)| *ok && client_id.is_none_or(|c| c == id))
            .map(|(id, _)| id.as_str())
            .collect();
        if allowing.is_empty() {
            out.push(Check::fail(
                "user-password-auth",
                match client_id {
                    Some(c) => format!("app client {c} does not allow USER_PASSWORD_AUTH: the migration trigger runs only for password sign-ins (USER_PASSWORD_AUTH, ADMIN_USER_PASSWORD_AUTH)"),
                    None => "no app client allows USER_PASSWORD_AUTH: the migration trigger runs only for password sign-ins (USER_PASSWORD_AUTH, ADMIN_USER_PASSWORD_AUTH)".into(),
                },
                "enable ALLOW_USER_PASSWORD_AUTH on the app client your application signs in with (for the migration window)",
            ));
        } else {
            out.push(Check::ok(
                "user-password-auth",
                format!(
                    "app client(s) allowing USER_PASSWORD_AUTH: {}",
                    allowing.join(", ")
                ),
            ));
        }
    }
    out
}

/// What IAM said about the import jobs' CloudWatch Logs role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleLookup {
    /// GetRole answered: the role's trust policy document (JSON, URL-decoded).
    Found { trust_policy: String },
    /// IAM says the role does not exist.
    NotFound,
    /// IAM could not be read (no iam:GetRole permission, no endpoint): why.
    Unreadable(String),
    /// Not looked up (no well-formed role ARN).
    NotLooked,
}

/// Looks the role up with `iam:GetRole` (by the name after the last `/` of the ARN).
pub async fn lookup_role(iam: &aws_sdk_iam::Client, arn: &str) -> RoleLookup {
    if !is_role_arn(arn) {
        return RoleLookup::NotLooked;
    }
    let name = arn.rsplit('/').next().unwrap_or_default();
    match iam.get_role().role_name(name).send().await {
        Ok(out) => match out.role().and_then(|r| r.assume_role_policy_document()) {
            Some(doc) => RoleLookup::Found {
                trust_policy: percent_decode(doc),
            },
            None => RoleLookup::Found {
                trust_policy: String::new(),
            },
        },
        Err(e) if e.code() == Some("NoSuchEntity") => RoleLookup::NotFound,
        Err(e) => RoleLookup::Unreadable(match (e.code(), e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            _ => DisplayErrorContext(&e).to_string(),
        }),
    }
}

/// IAM answers policy documents URL-encoded; a document that already is JSON is kept.
fn percent_decode(s: &str) -> String {
    if s.trim_start().starts_with('{') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a trust policy lets `cognito-idp.amazonaws.com` assume the role (an Allow statement
/// naming that service principal for `sts:AssumeRole`).
fn trusts_cognito(policy: &str) -> Result<bool, String> {
    let doc: serde_json::Value =
        serde_json::from_str(policy).map_err(|e| format!("the trust policy is not JSON: {e}"))?;
    let list = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        }
    };
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        s @ serde_json::Value::Object(_) => vec![s.clone()],
        _ => vec![],
    };
    Ok(statements.iter().any(|st| {
        st["Effect"] == "Allow"
            && list(&st["Principal"]["Service"])
                .iter()
                .any(|p| p == "cognito-idp.amazonaws.com")
            && list(&st["Action"])
                .iter()
                .any(|a| a == "sts:AssumeRole" || a == "sts:*" || a == "*")
    }))
}

/// The CloudWatch Logs role an import job needs (`CloudWatchLogsRoleArn`): present, an IAM role
/// ARN, existing, and trusting `cognito-idp.amazonaws.com` (when IAM can be read; a warn when
/// it cannot). Its permissions (logs:CreateLogGroup, …) are not evaluated.
pub fn role_check(role_arn: Option<&str>, needs: &Needs, lookup: &RoleLookup) -> Check {
    let what = "trust policy allowing cognito-idp.amazonaws.com to sts:AssumeRole, and \
                logs:CreateLogGroup, logs:CreateLogStream, logs:DescribeLogStreams, logs:PutLogEvents";
    let arn = match role_arn {
        None if needs.import_jobs() => return Check::fail(
            "log role",
            "no --role-arn: every import job (and the hash canary) needs a CloudWatch Logs role",
            format!("create a role with a {what}, and pass it with --role-arn"),
        ),
        None => {
            return Check::ok(
                "log role",
                "no import jobs planned: no CloudWatch Logs role needed",
            )
        }
        Some(arn) if !is_role_arn(arn) => {
            return Check::fail(
                "log role",
                format!(
                    "--role-arn {arn} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
                ),
                "pass the role's ARN as IAM shows it",
            )
        }
        Some(arn) => arn,
    };
    match lookup {
        RoleLookup::Found { trust_policy } => match trusts_cognito(trust_policy) {
            Ok(true) => Check::ok(
                "log role",
                format!("{arn} trusts cognito-idp.amazonaws.com (its logs: permissions are not evaluated)"),
            ),
            Ok(false) => Check::fail(
                "log role",
                format!("{arn}: its trust policy does not let cognito-idp.amazonaws.com assume it; import jobs cannot log"),
                format!("give the role a {what}"),
            ),
            Err(e) => Check::fail("log role", format!("{arn}: {e}"), format!("give the role a {what}")),
        },
        RoleLookup::NotFound => Check::fail(
            "log role",
            format!("{arn} does not exist in this account"),
            format!("create it with a {what}, or pass the right ARN"),
        ),
        RoleLookup::Unreadable(why) => Check::warn(
            "log role",
            format!("{arn}: IAM could not be read ({why}), so its trust policy was not checked"),
            format!("allow iam:GetRole on it, or check by hand that it has a {what}"),
        ),
        RoleLookup::NotLooked => Check::warn(
            "log role",
            format!("{arn}: not looked up in IAM"),
            format!("check by hand that it has a {what}"),
        ),
    }
}

fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|n| !n.is_empty()))
}

/// The exit status a report's checks call for: any fail → failed.
pub fn worst(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
}

#[cfg(test)]
mod tests;
