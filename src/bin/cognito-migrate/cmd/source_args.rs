//! The options that say where users come from and how they map, shared by `plan`, `run`,
//! `directory build` and `mapping init`, resolved once into library values.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use clap::Args;
use cognito_migrate::checkpoint;
use cognito_migrate::display_chain as chain;
use cognito_migrate::mapping::config::{MappingFile, Rule};
use cognito_migrate::mapping::Mapper;
use cognito_migrate::password::{FirebaseHashConfig, HashContext};
use cognito_migrate::pool::PoolSchema;
use cognito_migrate::source::s3::{S3Location, S3Object, S3ReadOptions};
use cognito_migrate::source::{self, cognito, Format, Source, SourceOptions};

use crate::exit::ConfigError;

#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Where the users are: a path, `-` for stdin, or s3://bucket/key (gzip is decompressed);
    /// for --format cognito, the id of the user pool to read.
    #[arg(long, short = 'i', value_name = "LOCATION")]
    pub input: String,
    /// The export's format.
    #[arg(long, short = 'f', value_enum)]
    pub format: Format,
    /// A TOML mapping file (required for csv, json and ndjson; laid over the built-in mapping of
    /// vendor formats). `cognito-migrate mapping init` writes a starting one.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Firebase: the project's password hash parameters, as the console shows them
    /// (`hash_config { algorithm: SCRYPT, base64_signer_key: …, … }`) or as JSON.
    #[arg(long, value_name = "FILE")]
    pub hash_config: Option<PathBuf>,
    /// CSV field delimiter (default: sniffed from the header: `,` `;` tab or `|`).
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<char>,
    /// Firebase CSV: the firebase-tools version whose column layout the export has (default:
    /// recognised per row by its width and content).
    #[arg(long, value_enum, value_name = "LAYOUT")]
    pub firebase_layout: Option<source::FirebaseLayout>,
    /// Keycloak: also read service-account users (skipped by default, with a warning).
    #[arg(long)]
    pub include_service_accounts: bool,
    /// A second export with the users' password hashes (e.g. Auth0's password-hash export),
    /// joined to --input by user id (--join-on); read in --format's reader. Users found in only
    /// one of the two files are reported.
    #[arg(long, value_name = "FILE")]
    pub hashes: Option<PathBuf>,
    /// The field --hashes joins on, in both files (default: user_id for auth0, localId for
    /// firebase, id for keycloak and django; required for csv, json and ndjson).
    #[arg(long, value_name = "FIELD", requires = "hashes")]
    pub join_on: Option<String>,
    /// Django JSON: read only the entries of this model (e.g. `accounts.customuser`); by default
    /// `auth.user` and every model with a `password` field.
    #[arg(long, value_name = "APP.MODEL")]
    pub django_model: Option<String>,
    /// The S3 object as first looked at (size, ETag): the run's fingerprint and what every read of
    /// it insists on (If-Match), so that a replaced object is refused.
    #[arg(skip)]
    pub s3_object: OnceLock<S3Object>,
}

impl SourceArgs {
    /// The reader options a run records in its state, so that `retry` reads the input the same
    /// way ([`SourceArgs::apply_recorded`]).
    pub fn recorded_options(&self) -> serde_json::Value {
        serde_json::json!({
            "firebase_layout": self.firebase_layout.map(|l| l.name()),
            "include_service_accounts": self.include_service_accounts,
            "django_model": self.django_model,
            "hashes": self.hashes.as_ref().map(|p| p.display().to_string()),
            "join_on": self.join_on,
        })
    }

    /// Sets the reader options from what [`SourceArgs::recorded_options`] wrote (absent members,
    /// as in states of older versions, leave the defaults).
    pub fn apply_recorded(&mut self, recorded: &serde_json::Value) {
        use clap::ValueEnum;
        self.firebase_layout = recorded["firebase_layout"]
            .as_str()
            .and_then(|s| source::FirebaseLayout::from_str(s, false).ok());
        self.include_service_accounts = recorded["include_service_accounts"] == true;
        self.django_model = recorded["django_model"].as_str().map(str::to_string);
        self.hashes = recorded["hashes"].as_str().map(PathBuf::from);
        self.join_on = recorded["join_on"].as_str().map(str::to_string);
    }

    /// The --hashes file opened in --format's reader, with the field to join on.
    fn open_hashes(&self) -> anyhow::Result<Option<HashesInput>> {
        let Some(path) = &self.hashes else {
            return Ok(None);
        };
        let key = match (&self.join_on, source::join::default_key(self.format)) {
            (Some(k), _) => k.clone(),
            (None, Some(k)) => k.to_string(),
            (None, None) => {
                return Err(ConfigError::new(format!(
                    "--hashes with --format {} needs --join-on FIELD",
                    self.format
                ))
                .into())
            }
        };
        let name = path.display().to_string();
        let source = source::open(self.format, &name, &self.source_options()?).map_err(|e| {
            ConfigError::new(format!("--hashes: {e:#}")).with_hint("check the --hashes path")
        })?;
        Ok(Some(HashesInput { source, key, name }))
    }

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
            firebase_layout: self.firebase_layout,
            include_service_accounts: self.include_service_accounts,
            django_model: self.django_model.clone(),
            ..Default::default()
        })
    }

    /// Opens a local input (a path or `-`). `s3://` and `--format cognito` need
    /// [`SourceArgs::open_source`].
    pub fn open(&self) -> anyhow::Result<Box<dyn Source>> {
        if S3Location::is_s3(&self.input) || self.format == Format::Cognito {
            return Err(ConfigError::new(format!(
                "this command reads local inputs only, not {}",
                if self.format == Format::Cognito {
                    "a user pool (--format cognito)"
                } else {
                    "s3:// objects"
                }
            ))
            .with_hint("download the object and pass its path (or - for stdin)")
            .into());
        }
        let opts = self.source_options()?;
        let users = source::open(self.format, &self.input, &opts).map_err(|e| {
            let hint = match &e {
                source::SourceError::Io { .. } => "check the --input path",
                _ => "check --format",
            };
            anyhow::Error::new(ConfigError::new(chain(&e)).with_hint(hint))
        })?;
        join(users, self.open_hashes()?)
    }

    /// The S3 object named by --input, looked up once (HeadObject) and then kept.
    async fn s3_object(&self, global: &super::GlobalArgs) -> anyhow::Result<S3Object> {
        if let Some(o) = self.s3_object.get() {
            return Ok(o.clone());
        }
        let clients = global.clients().await?;
        let object = S3Object::head(&clients.s3, &self.input)
            .await
            .map_err(|e| {
                ConfigError::new(chain(&e))
                    .with_hint("check --input (s3://BUCKET/KEY), the region and the credentials")
            })?;
        Ok(self.s3_object.get_or_init(|| object).clone())
    }

    /// Opens the input wherever it is: a path or `-`, an `s3://` object (streamed, resumed by
    /// range if the connection breaks, refused if the object changes), or a user pool.
    pub async fn open_source(&self, global: &super::GlobalArgs) -> anyhow::Result<Box<dyn Source>> {
        if self.format == Format::Cognito {
            if self.hashes.is_some() {
                return Err(ConfigError::new(
                    "--hashes does not apply to --format cognito (a pool gives out no hashes)",
                )
                .into());
            }
            let clients = global.clients().await?;
            return cognito::open(
                clients.cognito_without_sdk_retries(),
                &self.input,
                &cognito::CognitoOptions::default(),
            )
            .await
            .map_err(|e| {
                ConfigError::new(chain(&e))
                    .with_hint("--input is the old pool's id; the caller needs cognito-idp:ListUsers, ListGroups and ListUsersInGroup on it")
                    .into()
            });
        }
        if !S3Location::is_s3(&self.input) {
            return self.open();
        }
        let object = self.s3_object(global).await?;
        let client = global.clients().await?.s3;
        let format = self.format;
        let opts = self.source_options()?;
        let hashes = self.open_hashes()?;
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let users = source::open_s3(
                format,
                client,
                &object,
                &S3ReadOptions::default(),
                &opts,
                &runtime,
            )
            .map_err(|e| {
                anyhow::Error::new(
                    ConfigError::new(chain(&e)).with_hint("check --input and --format"),
                )
            })?;
            join(users, hashes)
        })
        .await?
    }

    /// The input's size and content fingerprint, for a run's state file: a file's size and
    /// [`checkpoint::fingerprint_file`], an S3 object's size and ETag
    /// ([`checkpoint::fingerprint_s3`]), `stdin` for `-`, the pool id for `--format cognito`.
    pub async fn input_fingerprint(
        &self,
        global: &super::GlobalArgs,
    ) -> anyhow::Result<(u64, String)> {
        if self.format == Format::Cognito {
            return Ok((0, format!("cognito-pool:{}", self.input)));
        }
        if self.input == "-" {
            return Ok((0, "stdin".into()));
        }
        if S3Location::is_s3(&self.input) {
            let o = self.s3_object(global).await?;
            return Ok((o.size, o.fingerprint()));
        }
        let path = Path::new(&self.input);
        let size = std::fs::metadata(path)
            .map_err(|e| ConfigError::new(format!("cannot read --input {}: {e}", self.input)))?
            .len();
        let mut fingerprint = checkpoint::fingerprint_file(path)?;
        if let Some(hashes) = &self.hashes {
            // A run's passwords come from this file too: a changed one is another input.
            fingerprint = format!(
                "{fingerprint}+hashes:{}",
                checkpoint::fingerprint_file(hashes)?
            );
        }
        Ok((size, fingerprint))
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
                if self.format == Format::Cognito {
                    // Pool to pool: a custom attribute the new pool also has keeps its name.
                    for a in &schema.attributes {
                        if a.name.starts_with("custom:") && !m.attributes.contains_key(&a.name) {
                            m.attributes
                                .insert(a.name.clone(), Rule::Field(a.name.clone()));
                        }
                    }
                }
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
            Some(path) => {
                base.overlay(MappingFile::load(path).map_err(|e| ConfigError::new(chain(&e)))?)
            }
            None => base,
        })
    }

    pub fn mapper(&self, schema: &PoolSchema) -> anyhow::Result<Mapper> {
        let mapping = self.mapping(schema)?;
        let mut mapper = Mapper::new(&mapping, schema).map_err(|e| {
            ConfigError::new(chain(&e))
                .with_hint("fix the mapping file; `cognito-migrate header --pool-id ID` lists the pool's attributes")
        })?;
        // The vendor's id is recorded for the id map even if the pool has no custom:legacy_id.
        mapper.set_legacy_id_field(source::legacy_id_field(self.format).map(str::to_string));
        Ok(mapper)
    }

    pub fn hash_context(&self) -> anyhow::Result<HashContext> {
        let firebase = match &self.hash_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --hash-config {}", path.display()))
                    .map_err(|e| ConfigError::new(format!("{e:#}")))?;
                Some(FirebaseHashConfig::parse(&text).map_err(|e| {
                    ConfigError::new(format!("--hash-config {}: {e}", path.display())).with_hint(
                        "paste the console's Password hash parameters (hash_config { algorithm: SCRYPT, base64_signer_key: …, base64_salt_separator: …, rounds: …, mem_cost: … }) or the same keys as JSON",
                    )
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

/// An opened --hashes file.
struct HashesInput {
    source: Box<dyn Source>,
    key: String,
    name: String,
}

/// `users` joined with the --hashes file, if there is one.
fn join(users: Box<dyn Source>, hashes: Option<HashesInput>) -> anyhow::Result<Box<dyn Source>> {
    let Some(h) = hashes else {
        return Ok(users);
    };
    let joined = source::join::Joined::new(users, h.source, &h.key, &h.name)
        .map_err(|e| ConfigError::new(format!("--hashes {}: {e:#}", h.name)))?;
    Ok(Box::new(joined))
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
