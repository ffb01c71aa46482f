//! `cognito-migrate mapping init`: a starting mapping file from the pool's schema and the fields of
//! the input, so that nobody writes one from scratch.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use cognito_migrate::mapping::config::MappingFile;
use cognito_migrate::mapping::init::{self, FieldStats, InitContext};
use cognito_migrate::mapping::Mapper;
use cognito_migrate::source;

use super::source_args::{PoolArgs, SourceArgs};
use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Mapping files: `mapping init` writes a starting one.
#[derive(Debug, Args)]
pub struct MappingArgs {
    #[command(subcommand)]
    pub command: MappingCommand,
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    Init(InitArgs),
}

/// Write a starting mapping (TOML) for the pool and the input's fields.
///
/// Reads the pool's schema (or a file saved by `header --save`) and a sample of the input's
/// records, matches the input's field names to the pool's attributes (exact names, then usual
/// synonyms such as first_name → given_name, mobile → phone_number), picks each attribute's
/// transform, and lists in comments the fields left unmapped and the attributes the pool requires.
/// Only field names and counts are written, never a value. Review the file, then pass it to
/// `plan`/`run` with --mapping. Exit code 1 when a required attribute found no field.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cognito-migrate mapping init --pool-id us-east-1_AbCdEf123 --input users.csv --format csv --out mapping.toml
  cognito-migrate mapping init --pool-schema pool.json -i samples/csv/users.csv -f csv --out mapping.toml   # offline
  cognito-migrate plan -i users.csv -f csv --mapping mapping.toml --pool-id us-east-1_AbCdEf123 --out plan/")]
pub struct InitArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Write the mapping here (default: standard output). An existing file is kept unless --force.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// How many records to read for the field list.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub sample: u64,
}

pub async fn run(args: &MappingArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    match &args.command {
        MappingCommand::Init(a) => init_mapping(a, global).await,
    }
}

async fn init_mapping(args: &InitArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    if let Some(out) = &args.out {
        if out.exists() && !args.force {
            return Err(ConfigError::new(format!("{} exists", out.display()))
                .with_hint("pass --force to overwrite it, or another --out")
                .into());
        }
    }
    let schema = args.pool.schema(global).await?;
    let mut source = args.source.open_source(global).await?;
    let sample = args.sample.max(1);
    let (stats, unreadable) = tokio::task::spawn_blocking(move || {
        let mut stats = FieldStats::default();
        let mut unreadable = 0u64;
        while stats.records < sample {
            match source.next_record() {
                None => break,
                Some(Ok(user)) => stats.add(&user),
                Some(Err(e)) if e.fatal => break,
                Some(Err(_)) => unreadable += 1,
            }
        }
        (stats, unreadable)
    })
    .await?;
    if stats.records == 0 {
        return Err(ConfigError::new(format!(
            "no record could be read from {} as {}",
            args.source.input, args.source.format
        ))
        .with_hint("check --input and --format")
        .into());
    }
    // The built-in mapping of a vendor format, with the attributes the pool has.
    let builtin = match source::builtin_mapping(args.source.format) {
        Some(text) => {
            let mut m = MappingFile::parse(text, "built-in mapping")?;
            m.attributes.retain(|name, _| {
                schema.attribute(name).is_some() || name == "cognito:mfa_enabled"
            });
            Some(m)
        }
        None => None,
    };
    let location = args.source.input.clone();
    let format = args.source.format.to_string();
    let suggestion = init::suggest(
        &schema,
        &stats,
        &InitContext {
            format: &format,
            location: &location,
            builtin: builtin.as_ref(),
        },
    );
    // What was written must be a mapping the pool accepts (once required attributes are set).
    let written = MappingFile::parse(&suggestion.toml, "the generated mapping")
        .context("the generated mapping does not parse (a bug)")?;
    if suggestion.missing_required.is_empty() {
        let full = builtin.clone().unwrap_or_default().overlay(written);
        Mapper::new(&full, &schema).context("the generated mapping is not valid for the pool")?;
    }
    match &args.out {
        Some(path) => {
            std::fs::write(path, &suggestion.toml)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => std::io::stdout()
            .lock()
            .write_all(suggestion.toml.as_bytes())?,
    }
    eprintln!(
        "{} attributes mapped from {} fields of {} sampled records{}",
        suggestion.mapped.len(),
        stats.present.len(),
        stats.records,
        if unreadable > 0 {
            format!(" ({unreadable} unreadable records skipped)")
        } else {
            String::new()
        }
    );
    if suggestion.missing_required.is_empty() {
        Ok(Exit::Ok)
    } else {
        eprintln!(
            "the pool requires {} but no field matched: set them in the file before using it",
            suggestion.missing_required.join(", ")
        );
        Ok(Exit::SomeFailed)
    }
}
