//! `cognito-migrate preflight`: check the real pool before a user is touched (pool settings
//! against the plan, the import jobs' log role, and the hash canary). Glue: the checks and the
//! canary are in `cognito_migrate::preflight`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use cognito_migrate::checkpoint::Checkpoint;
use cognito_migrate::password::{ImportAlgorithm, Notation};
use cognito_migrate::plan::route::{Mode, Router, UnimportablePolicy};
use cognito_migrate::plan::{self, NoObserver, PlanConfig};
use cognito_migrate::pool::PoolSchema;
use cognito_migrate::preflight::canary::{self, CanaryOptions, CanaryResult};
use cognito_migrate::preflight::{self, Check, Needs, PoolFacts, Status};
use cognito_migrate::source::Format;

use super::args::hash_encodings;
use super::source_args::SourceArgs;
use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Check the target pool before migrating: its settings against what the input needs, the
/// CloudWatch Logs role of import jobs, and — the hash canary — whether Cognito verifies the
/// password_hash notation cognito-migrate writes, for each hash algorithm the input needs.
///
/// Each line is ok, warn or fail, with the fix. Exit code 0 when nothing failed (warnings
/// included), 1 when a check failed, 2 for usage errors.
///
/// The canary imports a throw-away user (random name and password) with a one-row import job,
/// signs it in with AdminInitiateAuth (ADMIN_USER_PASSWORD_AUTH) and deletes it; when the sign-in
/// fails it tries the other plausible notations. EACH ATTEMPT COSTS ONE IMPORT JOB: minutes on
/// AWS, and only one import job may be active per account. The verdicts go into --state, where
/// `run` finds them.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cognito-migrate preflight --pool-id us-east-1_AbCdEf123 -i users.ndjson -f auth0 \\
      --role-arn arn:aws:iam::123456789012:role/CognitoImportLogs --state migration.db
  cognito-migrate preflight --pool-id us-east-1_AbCdEf123 --algorithm PBKDF2_SHA256 \\
      --role-arn arn:aws:iam::123456789012:role/CognitoImportLogs --state migration.db --json")]
pub struct PreflightArgs {
    /// The target user pool id.
    #[arg(long, env = "COGNITO_MIGRATE_POOL_ID")]
    pub pool_id: String,
    /// App client for the canary's sign-in (needs ALLOW_ADMIN_USER_PASSWORD_AUTH); without it a
    /// temporary app client is created and deleted. Also the client checked for
    /// USER_PASSWORD_AUTH when users are left to the migration trigger.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The CloudWatch Logs role of import jobs (CloudWatchLogsRoleArn), as `run` will use it.
    #[arg(long, env = "COGNITO_MIGRATE_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The input to migrate, as for `plan` (path, `-` or s3://bucket/key): its routes decide
    /// what is checked and which hash algorithms get a canary.
    #[arg(long, short = 'i', value_name = "LOCATION", requires = "format")]
    pub input: Option<String>,
    /// The input's format, as for `plan`.
    #[arg(long, short = 'f', value_enum, requires = "input")]
    pub format: Option<Format>,
    /// A TOML mapping file, as for `plan`.
    #[arg(long, value_name = "FILE", requires = "input")]
    pub mapping: Option<PathBuf>,
    /// Firebase: the project's password hash parameters, as for `plan`.
    #[arg(long, value_name = "FILE", requires = "input")]
    pub hash_config: Option<PathBuf>,
    /// CSV field delimiter, as for `plan`.
    #[arg(long, value_name = "CHAR", requires = "input")]
    pub delimiter: Option<char>,
    /// Firebase CSV: the firebase-tools layout, as for `plan`.
    #[arg(long, value_enum, value_name = "LAYOUT", requires = "input")]
    pub firebase_layout: Option<cognito_migrate::source::FirebaseLayout>,
    /// Keycloak: read service-account users too, as for `plan`.
    #[arg(long, requires = "input")]
    pub include_service_accounts: bool,
    /// A second file with the users' password hashes, joined by id, as for `plan`.
    #[arg(long, value_name = "FILE", requires = "input")]
    pub hashes: Option<PathBuf>,
    /// The field of both files that joins them (with --hashes), as for `plan`.
    #[arg(long, value_name = "FIELD", requires = "hashes")]
    pub join_on: Option<String>,
    /// Django: the user model of a dumpdata export, as for `plan`.
    #[arg(long, value_name = "APP.MODEL", requires = "input")]
    pub django_model: Option<String>,
    /// How users will be written (as for `plan` and `run`).
    #[arg(long, value_enum, default_value = "import-job")]
    pub mode: Mode,
    /// What to do with password hashes Cognito cannot import (as for `plan` and `run`).
    #[arg(long, value_enum, default_value = "trigger")]
    pub unimportable: UnimportablePolicy,
    /// Run the canary for these algorithms too (BCRYPT, SCRYPT, ARGON2ID, PBKDF2_SHA256).
    #[arg(long = "algorithm", value_name = "ALGORITHM", value_delimiter = ',')]
    pub algorithms: Vec<String>,
    /// Try NOTATION first for ALGORITHM (e.g. PBKDF2_SHA256=passlib), then the others.
    #[arg(long = "hash-encoding", value_name = "ALGORITHM=NOTATION")]
    pub hash_encoding: Vec<String>,
    /// The state file `run` will use: the canary's verdicts are recorded there.
    #[arg(long, value_name = "DB")]
    pub state: Option<PathBuf>,
    /// Skip the hash canary (no import job, nothing written to the pool).
    #[arg(long)]
    pub no_canary: bool,
    /// Print the findings as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// For tests: the longest wait between two DescribeUserImportJob polls, in seconds.
    #[arg(
        long,
        hide = true,
        env = "COGNITO_MIGRATE_POLL_MAX_SECONDS",
        default_value_t = 20.0
    )]
    pub poll_max_seconds: f64,
    /// How long one canary job may take before it is stopped, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub canary_timeout: u64,
}

pub async fn run(args: &PreflightArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let by_hand = hash_encodings(&args.hash_encoding)?;
    let mut algorithms = Vec::new();
    for a in &args.algorithms {
        let alg: ImportAlgorithm = a
            .parse()
            .map_err(|e| ConfigError::new(format!("--algorithm {a}: {e}")))?;
        algorithms.push(alg);
    }
    let clients = global.clients().await?;
    let schema = PoolSchema::fetch(&clients.cognito, &args.pool_id).await?;
    let mut needs = Needs::default();
    if let (Some(input), Some(format)) = (&args.input, args.format) {
        let source = SourceArgs {
            input: input.clone(),
            format,
            mapping: args.mapping.clone(),
            hash_config: args.hash_config.clone(),
            delimiter: args.delimiter,
            firebase_layout: args.firebase_layout,
            include_service_accounts: args.include_service_accounts,
            hashes: args.hashes.clone(),
            join_on: args.join_on.clone(),
            django_model: args.django_model.clone(),
            s3_object: Default::default(),
        };
        let summary = plan_input(args, &source, &schema, global).await?;
        algorithms.extend(Needs::planned_algorithms(&summary.routes));
        needs.routes = Some(summary.routes);
        needs.rejections = summary.rejections;
    }
    algorithms.sort();
    algorithms.dedup();
    needs.algorithms = algorithms.clone();

    let facts = PoolFacts::fetch(&clients.cognito, schema.clone())
        .await
        .map_err(|e| ConfigError::new(e.to_string()))?;
    let mut checks = preflight::pool_checks(&facts, &needs, args.client_id.as_deref());
    let lookup = match &args.role_arn {
        Some(arn) => preflight::lookup_role(&aws_sdk_iam::Client::new(&clients.sdk), arn).await,
        None => preflight::RoleLookup::NotLooked,
    };
    checks.push(preflight::role_check(
        args.role_arn.as_deref(),
        &needs,
        &lookup,
    ));

    let mut canaries: Vec<CanaryResult> = Vec::new();
    if !algorithms.is_empty() && !args.no_canary {
        let blocked: Vec<String> = checks
            .iter()
            .filter(|c| {
                c.status == Status::Fail && (c.name == "auto-verified" || c.name == "log role")
            })
            .map(|c| c.name.clone())
            .collect();
        if !blocked.is_empty() {
            for alg in &algorithms {
                checks.push(Check::fail(
                    format!("canary {alg}"),
                    format!(
                        "not run: the {} check failed, so no import job can run",
                        blocked.join(" and ")
                    ),
                    "fix that first, then run preflight again",
                ));
            }
        } else {
            let state = args.state.as_ref().map(Checkpoint::open).transpose()?;
            eprintln!(
                "hash canary for {}: each attempt costs one import job (minutes on AWS; one active job per account)",
                algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
            );
            let poll_max = Duration::from_secs_f64(args.poll_max_seconds.max(0.05));
            let opts = CanaryOptions {
                role_arn: args.role_arn.clone().unwrap_or_default(),
                client_id: args.client_id.clone(),
                mfa: facts.mfa.clone(),
                work_dir: std::env::temp_dir().join("cognito-migrate-canary"),
                poll_min: Duration::from_millis(500).min(poll_max),
                poll_max,
                job_timeout: Duration::from_secs(args.canary_timeout.max(1)),
                logs: Some(clients.logs.clone()),
            };
            let candidates = |alg: ImportAlgorithm| {
                let mut list = Notation::candidates(alg);
                if by_hand.is_set(alg) {
                    let first = by_hand.get(alg);
                    list.retain(|n| *n != first);
                    list.insert(0, first);
                }
                list
            };
            let mut report = |alg: ImportAlgorithm, a: &canary::Attempt| {
                eprintln!(
                    "  canary {alg} {}: {} ({})",
                    a.notation,
                    if a.passed { "passed" } else { "failed" },
                    a.message
                );
            };
            canaries = canary::run(
                &clients.cognito,
                &schema,
                &opts,
                &algorithms,
                &candidates,
                state.as_ref(),
                &mut report,
            )
            .await
            .context("the hash canary")?;
            for c in &canaries {
                checks.push(canary_check(c, args.state.is_some()));
            }
        }
    }

    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({
                "pool_id": args.pool_id,
                "status": preflight::worst(&checks),
                "checks": checks,
                "canaries": canaries,
            }),
        )?;
        writeln!(out)?;
    } else {
        for c in &checks {
            writeln!(out, "{:<5} {}: {}", c.status.as_str(), c.name, c.message)?;
            if let Some(fix) = &c.fix {
                writeln!(out, "      fix: {fix}")?;
            }
        }
    }
    Ok(match preflight::worst(&checks) {
        Status::Fail => Exit::SomeFailed,
        _ => Exit::Ok,
    })
}

/// The line for one algorithm's canary.
fn canary_check(c: &CanaryResult, recorded: bool) -> Check {
    let name = format!("canary {}", c.algorithm);
    let tried: Vec<String> = c.attempts.iter().map(|a| a.notation.to_string()).collect();
    let leftovers = c.attempts.iter().any(|a| !a.cleaned_up);
    match c.found {
        Some(n) if leftovers => Check::warn(
            name,
            format!("the {n} notation signed in, but a canary user was left in the pool"),
            "delete the cognito-migrate canary user named in the output above",
        ),
        Some(n) if !recorded => Check::warn(
            name,
            format!("Cognito verified the {n} notation (tried: {}), but nothing recorded it", tried.join(", ")),
            format!("pass --state with the file `run` will use, or give `run` --hash-encoding {}={n}", c.algorithm),
        ),
        Some(n) if c.attempts.len() == 1 => Check::ok(
            name,
            format!("Cognito verified the {n} notation; recorded, `run` writes it"),
        ),
        Some(n) => Check::ok(
            name,
            format!(
                "the default notation did not sign in; {n} did (tried: {}); recorded, `run` writes {n}",
                tried.join(", ")
            ),
        ),
        None => Check::fail(
            name,
            format!(
                "no notation signed in (tried: {}); importing {} hashes would leave passwords that never verify",
                tried.join(", "),
                c.algorithm
            ),
            "do not import these hashes: migrate with --mode admin-create --unimportable trigger (the migration trigger keeps the passwords), and report the pool's answer",
        ),
    }
}

/// Plans the input into a private temporary directory (deleted after) for its routes.
async fn plan_input(
    args: &PreflightArgs,
    source_args: &SourceArgs,
    schema: &PoolSchema,
    global: &GlobalArgs,
) -> anyhow::Result<plan::Summary> {
    let mut mapper = source_args.mapper(schema)?;
    let router = Router::new(
        args.mode,
        args.unimportable,
        source_args.hash_context()?,
        schema,
    );
    let mut source = source_args.open_source(global).await?;
    let dir = std::env::temp_dir().join(format!(
        "cognito-migrate-preflight-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let cfg = PlanConfig::new(&dir);
    let summary = tokio::task::spawn_blocking(move || {
        plan::execute(source.as_mut(), &mut mapper, &router, &cfg, &mut NoObserver)
    })
    .await?;
    // The plan's files hold personal data and hashes: never left behind.
    let _ = std::fs::remove_dir_all(&dir);
    let summary = summary.context("planning the input")?;
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    Ok(summary)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
