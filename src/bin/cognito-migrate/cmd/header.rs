//! `cognito-migrate header`: print the pool's import CSV header, and save its schema for offline use.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use cognito_migrate::pool::PoolSchema;

use super::GlobalArgs;
use crate::exit::Exit;

/// Print the user pool's import CSV header (GetCSVHeader), one column per line.
///
/// With --save, also write the pool's header and schema (attributes, constraints, sign-in
/// settings) to a JSON file that `plan --pool-schema FILE` reads without credentials.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  cognito-migrate header --pool-id us-east-1_AbCdEf123 --save pool-schema.json"
)]
pub struct HeaderArgs {
    /// The target user pool id, e.g. us-east-1_AbCdEf123.
    #[arg(long, env = "COGNITO_MIGRATE_POOL_ID")]
    pub pool_id: String,
    /// Also save the header and schema to this JSON file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Print the header and schema as JSON instead of one column per line.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &HeaderArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let clients = global.clients().await?;
    let schema = PoolSchema::fetch(&clients.cognito, &args.pool_id).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &schema)?;
        writeln!(out)?;
    } else {
        for column in &schema.csv_header {
            writeln!(out, "{column}")?;
        }
    }
    if let Some(path) = &args.save {
        schema
            .save(path)
            .with_context(|| format!("saving the schema of pool {}", args.pool_id))?;
        eprintln!(
            "saved the header ({} columns) and schema of pool {} to {}",
            schema.csv_header.len(),
            args.pool_id,
            path.display()
        );
    }
    Ok(Exit::Ok)
}
