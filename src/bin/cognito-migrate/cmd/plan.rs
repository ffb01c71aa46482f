//! `cognito-migrate plan`: what will happen to every user, before anything touches the pool.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use cognito_migrate::plan::route::{
    Mode, Router, UnimportablePolicy, UnknownHashPolicy, UnknownProviderPolicy,
};
use cognito_migrate::plan::{self, NoObserver, PlanConfig};

use super::source_args::{PoolArgs, SourceArgs};
use super::GlobalArgs;
use crate::exit::Exit;

/// Read an export, map and validate every user for the pool, route each one, and write the import
/// CSV files (one set per hash algorithm, split at Cognito's limits) and rejects.csv.
///
/// Prints counts per route and per rejection reason. Nothing is written to the pool. Exit code 1
/// when some records were rejected.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cognito-migrate plan --input users.ndjson --format auth0 --pool-id us-east-1_AbCdEf123 --out plan/
  cognito-migrate header --pool-id us-east-1_AbCdEf123 --save pool.json   # once, with credentials
  cognito-migrate plan -i users.json -f firebase --hash-config hash_config.json --pool-schema pool.json --out plan/ --json
  cognito-migrate plan -i s3://exports/users.ndjson.gz -f auth0 --pool-id us-east-1_AbCdEf123 --out plan/
  cognito-migrate plan -i users.ndjson -f auth0 --hashes password-hashes.ndjson --pool-schema pool.json --out plan/
  cognito-migrate plan -i us-east-1_OldPool12 -f cognito --pool-id us-east-1_AbCdEf123 --out plan/")]
pub struct PlanArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Directory for the import files and rejects.csv (created; files are mode 0600).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How users will be written.
    #[arg(long, value_enum, default_value = "import-job")]
    pub mode: Mode,
    /// What to do with password hashes Cognito cannot import.
    #[arg(long, value_enum, default_value = "trigger")]
    pub unimportable: UnimportablePolicy,
    /// What to do with a password hash that cannot be used at all (an unrecognised format, a
    /// malformed hash, an unusable marker like Django's `!…`): `reset` migrates the user without a
    /// password (counted and warned; `--unimportable reject` rejects them), `reject` rejects them.
    #[arg(long, value_enum, default_value = "reset")]
    pub unknown_hash: UnknownHashPolicy,
    /// What to do with a user who has a federated identity that cannot be linked (its provider
    /// is not in the mapping's `[providers]` table, or the pool has no such identity provider):
    /// `link-known` migrates the user and links the identities that can be linked (the others
    /// are counted per provider), `reject` rejects the user (`unknown_provider`).
    #[arg(long, value_enum, default_value = "link-known")]
    pub unknown_provider: UnknownProviderPolicy,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &PlanArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let schema = args.pool.schema(global).await?;
    let mut mapper = args.source.mapper(&schema)?;
    let router = Router::new(
        args.mode,
        args.unimportable,
        args.source.hash_context()?,
        &schema,
    )
    .with_unknown_hash(args.unknown_hash)
    .with_unknown_provider(args.unknown_provider);
    let mut source = args.source.open_source(global).await?;
    let cfg = PlanConfig::new(&args.out);
    let summary = tokio::task::spawn_blocking(move || {
        plan::execute(source.as_mut(), &mut mapper, &router, &cfg, &mut NoObserver)
    })
    .await?
    .context("planning")?;
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        summary.write_table(&mut out)?;
    }
    Ok(if summary.rejected > 0 {
        Exit::SomeFailed
    } else {
        Exit::Ok
    })
}
