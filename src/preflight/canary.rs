//! The hash canary: proves on the real pool that Cognito verifies the `password_hash` notation
//! cognito-migrate writes, before millions of hashes are imported in it.
//!
//! For one algorithm and notation, an attempt: a canary user with a random name and password
//! (placeholder values for the pool's required attributes) whose password is hashed here with
//! that algorithm and written in that notation — by the same encoder `run` uses — goes into a
//! one-row import job (the import-job writer's service: create, presigned upload with the SSE
//! header, start, poll); then `AdminInitiateAuth` with `ADMIN_USER_PASSWORD_AUTH` signs it in
//! (with the given app client, or a temporary one allowing that flow, created and deleted).
//! Tokens (or an MFA challenge, which Cognito only sends after the password verified) mean
//! Cognito verified the notation. The canary user is deleted after every attempt, whatever
//! happened. When an attempt fails, the next plausible notation is tried
//! ([`Notation::candidates`]). Every attempt costs one import job: minutes on AWS, and only one
//! job may be active per account.
//!
//! Verdicts go into the state file ([`Checkpoint::record_canary`]); `run` then writes the
//! notation that passed. The password, the hash and the presigned URL are never printed, logged
//! or stored.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{AuthFlowType, ExplicitAuthFlowsType};
use aws_sdk_cognitoidentityprovider::Client;
use base64::Engine as _;
use serde::Serialize;

use crate::bytes::hex;
use crate::checkpoint::{CanaryVerdict, Checkpoint, CheckpointError};
use crate::fs::create_private;
use crate::password::{ImportAlgorithm, Notation, Notations, PasswordHash};
use crate::plan::chunks::encode_row;
use crate::pool::{DataType, PoolSchema};
use crate::sink::import_job::logs;
use crate::sink::import_job::service::{upload, ImportJobs, JobStatus};

/// How the canary runs.
#[derive(Clone, Debug)]
pub struct CanaryOptions {
    pub role_arn: String,
    /// An app client that allows ADMIN_USER_PASSWORD_AUTH; else a temporary one is made.
    pub client_id: Option<String>,
    /// The pool's MFA setting (`ON` makes the canary's `cognito:mfa_enabled` true).
    pub mfa: String,
    /// Where the one-row CSV is written (and deleted after the upload).
    pub work_dir: PathBuf,
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// How long one job may take before the attempt gives up (the job is stopped).
    pub job_timeout: Duration,
    /// Reads a refused row's reason from the job's CloudWatch log (`logs:GetLogEvents`), when set.
    pub logs: Option<aws_sdk_cloudwatchlogs::Client>,
}

/// One notation tried.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    #[serde(serialize_with = "as_display")]
    pub notation: Notation,
    pub passed: bool,
    pub job_id: Option<String>,
    /// What happened (never the password, hash or URL).
    pub message: String,
    /// Whether the canary user is gone afterwards (deleted, or never created).
    pub cleaned_up: bool,
}

/// The canary of one algorithm: its attempts in order and the notation that passed, if any.
#[derive(Clone, Debug, Serialize)]
pub struct CanaryResult {
    #[serde(serialize_with = "as_display")]
    pub algorithm: ImportAlgorithm,
    pub attempts: Vec<Attempt>,
    #[serde(serialize_with = "as_display_opt")]
    pub found: Option<Notation>,
}

fn as_display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn as_display_opt<T: std::fmt::Display, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// A failure that stops the canary itself (not one attempt).
#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    #[error("recording the canary's verdict")]
    Checkpoint(#[from] CheckpointError),
    #[error("creating the temporary app client: {0}")]
    TemporaryClient(String),
}

/// Runs the canary of each algorithm, trying `candidates(alg)` in order until one passes.
/// Every attempt is recorded in `state` (when given) and reported to `on_attempt` as it ends.
pub async fn run(
    client: &Client,
    schema: &PoolSchema,
    opts: &CanaryOptions,
    algorithms: &[ImportAlgorithm],
    candidates: &dyn Fn(ImportAlgorithm) -> Vec<Notation>,
    state: Option<&Checkpoint>,
    on_attempt: &mut dyn FnMut(ImportAlgorithm, &Attempt),
) -> Result<Vec<CanaryResult>, CanaryError> {
    let (client_id, temporary) = match &opts.client_id {
        Some(c) => (c.clone(), false),
        None => (temporary_client(client, &schema.pool_id).await?, true),
    };
    let canary = Canary {
        client,
        schema,
        opts,
        client_id: &client_id,
        jobs: ImportJobs {
            client: client.clone(),
            pool_id: schema.pool_id.clone(),
            role_arn: opts.role_arn.clone(),
        },
        http: crate::sink::import_job::service::http_client(),
    };
    let result = canary.all(algorithms, candidates, state, on_attempt).await;
    if temporary {
        // Always, also when an attempt or the state file failed.
        if let Err(e) = client
            .delete_user_pool_client()
            .user_pool_id(&schema.pool_id)
            .client_id(&client_id)
            .send()
            .await
        {
            tracing::warn!(
                "the temporary app client {client_id} could not be deleted ({}); delete it by hand",
                sdk_message(&e)
            );
        }
    }
    result
}

async fn temporary_client(client: &Client, pool_id: &str) -> Result<String, CanaryError> {
    let out = client
        .create_user_pool_client()
        .user_pool_id(pool_id)
        .client_name("cognito-migrate-preflight-canary")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .map_err(|e| CanaryError::TemporaryClient(sdk_message(&e)))?;
    out.user_pool_client()
        .and_then(|c| c.client_id())
        .map(str::to_owned)
        .ok_or_else(|| CanaryError::TemporaryClient("the answer has no client id".into()))
}

fn sdk_message<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (e.code(), e.message()) {
        (Some(code), Some(m)) => format!("{code}: {m}"),
        (Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

struct Canary<'a> {
    client: &'a Client,
    schema: &'a PoolSchema,
    opts: &'a CanaryOptions,
    client_id: &'a str,
    jobs: ImportJobs,
    http: reqwest::Client,
}

impl Canary<'_> {
    async fn all(
        &self,
        algorithms: &[ImportAlgorithm],
        candidates: &dyn Fn(ImportAlgorithm) -> Vec<Notation>,
        state: Option<&Checkpoint>,
        on_attempt: &mut dyn FnMut(ImportAlgorithm, &Attempt),
    ) -> Result<Vec<CanaryResult>, CanaryError> {
        let mut results = Vec::new();
        for &alg in algorithms {
            let mut result = CanaryResult {
                algorithm: alg,
                attempts: Vec::new(),
                found: None,
            };
            for notation in candidates(alg) {
                let attempt = self.attempt(alg, notation).await;
                if let Some(cp) = state {
                    cp.record_canary(&CanaryVerdict {
                        pool_id: self.schema.pool_id.clone(),
                        algorithm: alg,
                        notation,
                        passed: attempt.passed,
                        job_id: attempt.job_id.clone(),
                        message: (!attempt.passed).then(|| attempt.message.clone()),
                        checked_at: None,
                    })?;
                }
                on_attempt(alg, &attempt);
                let passed = attempt.passed;
                result.attempts.push(attempt);
                if passed {
                    result.found = Some(notation);
                    break;
                }
            }
            results.push(result);
        }
        Ok(results)
    }

    /// One canary user through import and sign-in, then deleted whatever happened.
    async fn attempt(&self, alg: ImportAlgorithm, notation: Notation) -> Attempt {
        let user = CanaryUser::new(self.schema, &self.opts.mfa);
        let mut job_id = None;
        let outcome = self
            .import_and_sign_in(&user, alg, notation, &mut job_id)
            .await;
        let (cleaned_up, cleanup_note) = self.delete(&user).await;
        let (passed, mut message) = match outcome {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        if let Some(note) = cleanup_note {
            message.push_str("; ");
            message.push_str(&note);
        }
        Attempt {
            notation,
            passed,
            job_id,
            message,
            cleaned_up,
        }
    }

    async fn import_and_sign_in(
        &self,
        user: &CanaryUser,
        alg: ImportAlgorithm,
        notation: Notation,
        job_id: &mut Option<String>,
    ) -> Result<String, String> {
        let mut notations = Notations::default();
        notations.set(alg, notation).map_err(|e| e.to_string())?;
        let default = canary_hash(alg, &user.password)?;
        let parsed = PasswordHash::parse(&default)
            .map_err(|e| format!("the canary's own {alg} hash does not parse: {e}"))?;
        let (_, text) = parsed
            .cognito_import_with(&notations)
            .map_err(|e| e.to_string())?;
        let path = self.write_csv(user, &text).map_err(|e| {
            format!(
                "cannot write the canary's import file in {}: {e}",
                self.opts.work_dir.display()
            )
        })?;
        let imported = self.import(alg, &path, job_id).await;
        let _ = std::fs::remove_file(&path);
        imported?;
        self.sign_in(user, notation).await
    }

    fn write_csv(&self, user: &CanaryUser, hash: &str) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.opts.work_dir)?;
        let path = self.opts.work_dir.join(format!("{}.csv", user.name));
        let mut header: Vec<&str> = self.schema.csv_header.iter().map(String::as_str).collect();
        header.push("password_hash");
        let mut buf = Vec::new();
        encode_row(&mut buf, header.iter().copied());
        let values: Vec<String> = header
            .iter()
            .map(|col| match *col {
                "password_hash" => hash.to_owned(),
                other => user.value(self.schema, other),
            })
            .collect();
        encode_row(&mut buf, values.iter().map(String::as_str));
        let mut file = create_private(&path)?;
        file.write_all(&buf)?;
        file.sync_all()?;
        Ok(path)
    }

    /// Create, upload, start, poll: Ok when the job imported the one row.
    async fn import(
        &self,
        alg: ImportAlgorithm,
        path: &std::path::Path,
        job_id: &mut Option<String>,
    ) -> Result<(), String> {
        let name = format!(
            "cognito-migrate-canary-{}-{}",
            alg.as_str().to_ascii_lowercase().replace('_', "-"),
            hex(&rand::random::<[u8; 4]>())
        );
        let job = self
            .jobs
            .create(&name, Some(alg))
            .await
            .map_err(|e| e.to_string())?;
        *job_id = Some(job.id.clone());
        let url = job
            .presigned_url
            .as_deref()
            .ok_or("CreateUserImportJob answered no upload URL")?;
        upload(&self.http, url, path, None)
            .await
            .map_err(|e| e.to_string())?;
        self.jobs.start(&job.id).await.map_err(|e| {
            if e.code.as_deref() == Some("LimitExceededException") {
                format!("{e} (another import job is active in this account; run preflight again when it has ended)")
            } else {
                e.to_string()
            }
        })?;
        let deadline = Instant::now() + self.opts.job_timeout;
        let mut wait = self.opts.poll_min;
        loop {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.opts.poll_max);
            let now = self
                .jobs
                .describe(&job.id)
                .await
                .map_err(|e| e.to_string())?;
            if now.status.is_final() {
                return if now.status == JobStatus::Succeeded && now.imported == 1 {
                    Ok(())
                } else {
                    Err(format!(
                        "the import job ended {:?} ({} imported, {} skipped, {} failed{}): Cognito \
                         did not take the row{}",
                        now.status,
                        now.imported,
                        now.skipped,
                        now.failed,
                        now.completion_message
                            .as_deref()
                            .map(|m| format!("; {m}"))
                            .unwrap_or_default(),
                        self.row_reason(&now).await
                    ))
                };
            }
            if Instant::now() >= deadline {
                let _ = self.jobs.stop(&job.id).await;
                return Err(format!(
                    "the import job did not end within {:?}; it was stopped",
                    self.opts.job_timeout
                ));
            }
        }
    }

    /// `; the job's log says: <reason>` for the canary's row (line 2; `logs::parse_line` scrubs
    /// anything hash-like); empty when there is no logs client or no such line.
    async fn row_reason(&self, job: &crate::sink::import_job::service::Job) -> String {
        let Some(client) = &self.opts.logs else {
            return String::new();
        };
        let group = logs::log_group(&self.schema.pool_id, &self.schema.pool_name);
        let stream = logs::log_stream(&job.id, &job.name);
        match logs::fetch_results(client, &group, &stream).await {
            Ok(lines) => lines
                .iter()
                .find(|l| l.file_line == 2)
                .map(|l| format!("; the job's log says: {}", l.reason))
                .unwrap_or_default(),
            Err(e) => format!("; its log could not be read ({e})"),
        }
    }

    async fn sign_in(&self, user: &CanaryUser, notation: Notation) -> Result<String, String> {
        let answer = self
            .client
            .admin_initiate_auth()
            .user_pool_id(&self.schema.pool_id)
            .client_id(self.client_id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", &user.login)
            .auth_parameters("PASSWORD", &user.password)
            .send()
            .await;
        match answer {
            Ok(out) if out.authentication_result().is_some() => Ok(format!(
                "imported and signed in with its password: Cognito verifies the {notation} notation"
            )),
            Ok(out) => match out.challenge_name() {
                Some(c) => Ok(format!(
                    "imported; the password was accepted and Cognito asked for {} next: it verifies the {notation} notation",
                    c.as_str()
                )),
                None => Err("AdminInitiateAuth answered neither tokens nor a challenge".into()),
            },
            Err(e) => Err(match e.code() {
                Some("NotAuthorizedException") => format!(
                    "imported, but its password does not sign in: Cognito does not read the {notation} notation as this hash ({})",
                    sdk_message(&e)
                ),
                Some("PasswordResetRequiredException") => {
                    "imported without a usable password (RESET_REQUIRED): Cognito ignored the hash".into()
                }
                Some("InvalidParameterException") => format!(
                    "sign-in refused ({}): the app client must allow ALLOW_ADMIN_USER_PASSWORD_AUTH",
                    sdk_message(&e)
                ),
                _ => format!("AdminInitiateAuth: {}", sdk_message(&e)),
            }),
        }
    }

    /// Deletes the canary user: (gone, a note when it could not be deleted).
    async fn delete(&self, user: &CanaryUser) -> (bool, Option<String>) {
        match self
            .client
            .admin_delete_user()
            .user_pool_id(&self.schema.pool_id)
            .username(&user.login)
            .send()
            .await
        {
            Ok(_) => (true, None),
            Err(e) if e.code() == Some("UserNotFoundException") => (true, None),
            Err(e) => (
                false,
                Some(format!(
                    "the canary user {} could not be deleted ({}); delete it by hand",
                    user.login,
                    sdk_message(&e)
                )),
            ),
        }
    }
}

/// A throw-away user: random name and password, placeholder attributes.
struct CanaryUser {
    /// Random, also the CSV file's name.
    name: String,
    /// What `cognito:username` and sign-in use: the name, or the email/phone in pools that use
    /// those as usernames.
    login: String,
    email: String,
    phone: Option<String>,
    mfa: bool,
    password: String,
}

impl CanaryUser {
    fn new(schema: &PoolSchema, mfa: &str) -> CanaryUser {
        let id = hex(&rand::random::<[u8; 6]>());
        let name = format!("cm-canary-{id}");
        let email = format!("{name}@example.com");
        let uses = |a: &str| schema.username_attributes.iter().any(|x| x == a);
        let needs_phone = uses("phone_number")
            || mfa == "ON"
            || schema.attribute("phone_number").is_some_and(|a| a.required)
            || (!schema.auto_verified_attributes.iter().any(|a| a == "email")
                && schema
                    .auto_verified_attributes
                    .iter()
                    .any(|a| a == "phone_number"));
        let digits: u32 = rand::random::<u32>() % 10_000_000;
        let phone = needs_phone.then(|| format!("+1555{digits:07}"));
        let login = if uses("email") {
            email.clone()
        } else if let (true, Some(p)) = (uses("phone_number"), &phone) {
            p.clone()
        } else {
            name.clone()
        };
        let secret =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>());
        CanaryUser {
            name,
            login,
            email,
            phone,
            mfa: mfa == "ON",
            password: format!("Cm{secret}-9!"),
        }
    }

    /// The canary's value for one import CSV column.
    fn value(&self, schema: &PoolSchema, column: &str) -> String {
        match column {
            "cognito:username" => self.login.clone(),
            "cognito:mfa_enabled" => self.mfa.to_string(),
            "email" => self.email.clone(),
            "email_verified" => "true".into(),
            "phone_number" => self.phone.clone().unwrap_or_default(),
            "phone_number_verified" => self.phone.is_some().to_string(),
            other => match schema.attribute(other) {
                Some(a) if a.required => placeholder(other, a),
                _ => String::new(),
            },
        }
    }
}

/// A value a required attribute accepts.
fn placeholder(name: &str, a: &crate::pool::Attribute) -> String {
    match (name, a.data_type) {
        ("birthdate", _) => "01/01/2000".into(),
        ("updated_at", _) => "0".into(),
        ("locale", _) => "en".into(),
        ("zoneinfo", _) => "UTC".into(),
        ("website" | "profile" | "picture", _) => "https://example.com/".into(),
        (_, DataType::Number) => a.min_value.unwrap_or(0).max(0).to_string(),
        (_, DataType::Boolean) => "false".into(),
        (_, DataType::DateTime) => "2000-01-01T00:00:00Z".into(),
        (_, DataType::String) => {
            let min = a.min_length.unwrap_or(0).max(6) as usize;
            let max = a.max_length.map(|m| m as usize).unwrap_or(usize::MAX);
            "canary"
                .chars()
                .chain(std::iter::repeat('x'))
                .take(min.min(max).max(1))
                .collect()
        }
    }
}

/// A fresh hash of `password` with `alg`, in the default notation (what `PasswordHash::parse`
/// reads): bcrypt cost 10, argon2id m=19456 t=2 p=1, PBKDF2-SHA256 100,000 iterations, scrypt
/// N=2^14 r=8 p=1 — within Cognito's caps.
fn canary_hash(alg: ImportAlgorithm, password: &str) -> Result<String, String> {
    let salt: [u8; 16] = rand::random();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(b);
    let mut out = [0u8; 32];
    match alg {
        ImportAlgorithm::Bcrypt => bcrypt::hash(password, 10).map_err(|e| format!("bcrypt: {e}")),
        ImportAlgorithm::Argon2id => {
            let params = argon2::Params::new(19_456, 2, 1, Some(32))
                .map_err(|e| format!("argon2 parameters: {e}"))?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(password.as_bytes(), &salt, &mut out)
                .map_err(|e| format!("argon2: {e}"))?;
            Ok(format!(
                "$argon2id$v=19$m=19456,t=2,p=1${}${}",
                b64(&salt),
                b64(&out)
            ))
        }
        ImportAlgorithm::Pbkdf2Sha256 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, 100_000, &mut out);
            Ok(format!(
                "$pbkdf2-sha256$i=100000,l=32${}${}",
                b64(&salt),
                b64(&out)
            ))
        }
        ImportAlgorithm::Scrypt => {
            let params =
                scrypt::Params::new(14, 8, 1).map_err(|e| format!("scrypt parameters: {e}"))?;
            scrypt::scrypt(password.as_bytes(), &salt, &params, &mut out)
                .map_err(|e| format!("scrypt: {e}"))?;
            Ok(format!(
                "$scrypt$ln=14,r=8,p=1${}${}",
                b64(&salt),
                b64(&out)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_hashes_verify_their_password_in_every_notation_parse() {
        for alg in ImportAlgorithm::ALL {
            let h = canary_hash(alg, "Cm-secret-9!").unwrap();
            let parsed = PasswordHash::parse(&h).unwrap();
            assert!(parsed.verify("Cm-secret-9!"), "{alg}");
            assert!(!parsed.verify("Cm-secret-8!"), "{alg}");
            let (got, default) = parsed.cognito_import().unwrap();
            assert_eq!(got, alg);
            assert_eq!(
                default, h,
                "the canary's hash is already in the default notation"
            );
        }
    }
}
