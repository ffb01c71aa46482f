//! The options that say where users come from and how they map, shared by `plan`, `run`,
//! `directory build` and `mapping init`, resolved once into library values.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use cognito_migrate::mapping::config::MappingFile;
use cognito_migrate::mapping::Mapper;
use cognito_migrate::password::{FirebaseHashConfig, HashContext};
use cognito_migrate::pool::PoolSchema;
use cognito_migrate::source::{self, Format, Source, SourceOptions};

use crate::exit::ConfigError;

#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Where the users are: a path, `-` for stdin, or s3://bucket/key (`.gz` is decompressed).
    #[arg(long, short = 'i', value_name = "LOCATION")]
    pub input: String,
    /// The export's format.
    #[arg(long, short = 'f', value_enum)]
    pub format: Format,
    /// A TOML mapping file (required for csv, json and ndjson; laid over the built-in mapping of
    /// vendor formats). `cognito-migrate mapping init` writes a starting one.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Firebase: the project's password hash parameters (the `hash_config` JSON from the console).
    #[arg(long, value_name = "FILE")]
    pub hash_config: Option<PathBuf>,
    /// CSV field delimiter (default: sniffed from the header: `,` `;` tab or `|`).
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<char>,
}

impl SourceArgs {
    pub fn source_options(&self) -> anyhow::Result<SourceOptions> {
        let delimiter = match self.delimiter {
            None => None,
            Some(c) if c.is_ascii() => Some(c as u8),
            Some(c) => {
                return Err(ConfigError::new(format!(
                    "--delimiter {c:?} is not an ASCII character"
                ))
                .into())
            }
        };
        Ok(SourceOptions {
            delimiter,
            ..Default::default()
        })
    }

    pub fn open(&self) -> anyhow::Result<Box<dyn Source>> {
        if self.input.starts_with("s3://") {
            return Err(ConfigError::new("reading from s3:// is not built yet")
                .with_hint("download the object and pass its path (or - for stdin)")
                .into());
        }
        let opts = self.source_options()?;
        source::open(self.format, &self.input, &opts).map_err(|e| {
            let hint = match &e {
                source::SourceError::Io { .. } => "check the --input path",
                _ => "check --format",
            };
            anyhow::Error::new(ConfigError::new(format!("{e:#}")).with_hint(hint))
        })
    }

    /// The built-in mapping of the format with the user's file laid over it. Attributes of the
    /// built-in mapping that the pool does not have (e.g. `custom:legacy_id`) are left out with a
    /// warning; the user's own file is taken as written.
    pub fn mapping(&self, schema: &PoolSchema) -> anyhow::Result<MappingFile> {
        let base = match source::builtin_mapping(self.format) {
            Some(text) => {
                let mut m = MappingFile::parse(text, &format!("built-in {} mapping", self.format))?;
                m.attributes.retain(|name, _| {
                    let keep = name == "cognito:mfa_enabled" || schema.attribute(name).is_some();
                    if !keep {
                        tracing::warn!(
                            "the pool has no attribute {name}: the built-in {} mapping leaves it out",
                            self.format
                        );
                    }
                    keep
                });
                m
            }
            None if self.mapping.is_none() => {
                return Err(ConfigError::new(format!(
                    "the {} format needs a mapping file (--mapping)",
                    self.format
                ))
                .with_hint("`cognito-migrate mapping init` writes one from the pool and the input's fields; see samples/csv/mapping.toml")
                .into())
            }
            None => MappingFile::default(),
        };
        Ok(match &self.mapping {
            Some(path) => base
                .overlay(MappingFile::load(path).map_err(|e| ConfigError::new(format!("{e:#}")))?),
            None => base,
        })
    }

    pub fn mapper(&self, schema: &PoolSchema) -> anyhow::Result<Mapper> {
        let mapping = self.mapping(schema)?;
        Mapper::new(&mapping, schema).map_err(|e| {
            ConfigError::new(format!("{e:#}"))
                .with_hint("fix the mapping file; `cognito-migrate header --pool-id ID` lists the pool's attributes")
                .into()
        })
    }

    pub fn hash_context(&self) -> anyhow::Result<HashContext> {
        let firebase = match &self.hash_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --hash-config {}", path.display()))
                    .map_err(|e| ConfigError::new(format!("{e:#}")))?;
                Some(FirebaseHashConfig::from_json(&text).map_err(|e| {
                    ConfigError::new(format!("--hash-config {}: {e}", path.display()))
                })?)
            }
            None => None,
        };
        if self.format == Format::Firebase && firebase.is_none() {
            tracing::warn!(
                "no --hash-config: Firebase password hashes cannot be checked or kept without the project's hash parameters"
            );
        }
        Ok(HashContext { firebase })
    }
}

/// The pool's schema, from the pool itself or from a file saved with `header --save`.
#[derive(Debug, Args)]
pub struct PoolArgs {
    /// The target user pool id, e.g. us-east-1_AbCdEf123.
    #[arg(
        long,
        env = "COGNITO_MIGRATE_POOL_ID",
        required_unless_present = "pool_schema"
    )]
    pub pool_id: Option<String>,
    /// Work offline from a schema saved by `header --save` instead of asking the pool.
    #[arg(long, value_name = "FILE", conflicts_with = "pool_id")]
    pub pool_schema: Option<PathBuf>,
}

impl PoolArgs {
    pub async fn schema(&self, global: &super::GlobalArgs) -> anyhow::Result<PoolSchema> {
        if let Some(path) = &self.pool_schema {
            return Ok(PoolSchema::load(path)?);
        }
        let pool_id = self
            .pool_id
            .as_deref()
            .expect("clap requires one of the two");
        let clients = global.clients().await?;
        Ok(PoolSchema::fetch(&clients.cognito, pool_id).await?)
    }
}
