//! The trigger's configuration: environment variables, read once per cold start.
//!
//! Lambda functions are configured through their environment, so this is the trigger's only
//! configuration surface. Every variable is documented in the README ("The migration trigger") and
//! on [`env`]. Errors name the variable and what is wrong with it, never a secret's value.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::password::CostCap;

/// The environment variables the trigger reads.
pub mod env {
    /// Directory file: a local path or `s3://bucket/key`.
    pub const DIRECTORY: &str = "COGNITO_MIGRATE_DIRECTORY";
    /// The old user pool's id, for pool-to-pool moves (instead of a directory file).
    pub const LEGACY_POOL_ID: &str = "COGNITO_MIGRATE_LEGACY_POOL_ID";
    /// The old pool's app client that allows `ADMIN_USER_PASSWORD_AUTH`.
    pub const LEGACY_CLIENT_ID: &str = "COGNITO_MIGRATE_LEGACY_CLIENT_ID";
    /// That app client's secret, if it has one.
    pub const LEGACY_CLIENT_SECRET: &str = "COGNITO_MIGRATE_LEGACY_CLIENT_SECRET";
    /// The old pool's region (default: the pool id's prefix).
    pub const LEGACY_REGION: &str = "COGNITO_MIGRATE_LEGACY_REGION";
    /// With [`LEGACY_POOL_ID`]: the new pool's `UsernameAttributes` (`email`, `phone_number`, or
    /// `none`), which decide whether the trigger answers a `username` (default: as the old pool).
    pub const NEW_POOL_USERNAME_ATTRIBUTES: &str = "COGNITO_MIGRATE_NEW_POOL_USERNAME_ATTRIBUTES";
    /// Key of the log digest (default: random per cold start).
    pub const LOG_KEY: &str = "COGNITO_MIGRATE_LOG_KEY";
    /// Comma-separated allow-list of attributes to answer.
    pub const ATTRIBUTES: &str = "COGNITO_MIGRATE_ATTRIBUTES";
    /// Cost caps, e.g. `bcrypt=12,pbkdf2=1000000,memory_kib=65536`.
    pub const COST_CAP: &str = "COGNITO_MIGRATE_COST_CAP";
    /// Where an `s3://` directory is downloaded (default `/tmp`).
    pub const DOWNLOAD_DIR: &str = "COGNITO_MIGRATE_DOWNLOAD_DIR";
    /// `false` skips the checksum check of a downloaded directory (default `true`).
    pub const VERIFY_DOWNLOAD: &str = "COGNITO_MIGRATE_VERIFY_DOWNLOAD";
}

/// Where users are looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectorySource {
    /// A directory file on local disk.
    File(PathBuf),
    /// A directory file in S3, downloaded once per cold start.
    S3 { bucket: String, key: String },
    /// Another Cognito user pool.
    Pool(PoolSettings),
}

/// How to reach the old user pool.
#[derive(Clone, PartialEq, Eq)]
pub struct PoolSettings {
    pub pool_id: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub region: String,
    /// Whether the new pool generates usernames (email or phone number *as* username), so that the
    /// trigger must never answer one; `None`: the same as the old pool.
    pub new_pool_generates_usernames: Option<bool>,
}

impl std::fmt::Debug for PoolSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSettings")
            .field("pool_id", &self.pool_id)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .field(
                "new_pool_generates_usernames",
                &self.new_pool_generates_usernames,
            )
            .finish()
    }
}

/// Everything the trigger is configured with.
#[derive(Clone, PartialEq, Eq)]
pub struct TriggerSettings {
    pub source: DirectorySource,
    pub cost_cap: CostCap,
    pub log_key: Option<String>,
    pub attributes: Option<BTreeSet<String>>,
    pub download_dir: PathBuf,
    pub verify_download: bool,
}

impl std::fmt::Debug for TriggerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerSettings")
            .field("source", &self.source)
            .field("cost_cap", &self.cost_cap)
            .field("log_key", &self.log_key.as_ref().map(|_| "<redacted>"))
            .field("attributes", &self.attributes)
            .field("download_dir", &self.download_dir)
            .field("verify_download", &self.verify_download)
            .finish()
    }
}

/// A configuration error: which variable, and what is wrong (never its value if it is secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "set {} (a directory file: path or s3://bucket/key) or {} (another user pool)",
        env::DIRECTORY,
        env::LEGACY_POOL_ID
    )]
    NoSource,
    #[error("set only one of {} and {}", env::DIRECTORY, env::LEGACY_POOL_ID)]
    TwoSources,
    #[error("{variable}: {message}")]
    Invalid {
        variable: &'static str,
        message: String,
    },
}

fn invalid(variable: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        variable,
        message: message.into(),
    }
}

impl TriggerSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<TriggerSettings, SettingsError> {
        TriggerSettings::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests). Empty values count as
    /// unset.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<TriggerSettings, SettingsError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let source = match (get(env::DIRECTORY), get(env::LEGACY_POOL_ID)) {
            (None, None) => return Err(SettingsError::NoSource),
            (Some(_), Some(_)) => return Err(SettingsError::TwoSources),
            (Some(d), None) if d.starts_with("s3://") => {
                let (bucket, key) = super::s3::parse_s3_url(&d)
                    .map_err(|e| invalid(env::DIRECTORY, e.to_string()))?;
                DirectorySource::S3 { bucket, key }
            }
            (Some(d), None) => DirectorySource::File(PathBuf::from(d)),
            (None, Some(pool_id)) => {
                let client_id = get(env::LEGACY_CLIENT_ID).ok_or_else(|| {
                    invalid(
                        env::LEGACY_CLIENT_ID,
                        format!(
                            "required with {}: an app client of the old pool that allows \
                             ADMIN_USER_PASSWORD_AUTH",
                            env::LEGACY_POOL_ID
                        ),
                    )
                })?;
                let region = match get(env::LEGACY_REGION) {
                    Some(r) => r,
                    None => pool_id
                        .split_once('_')
                        .map(|(r, _)| r.to_string())
                        .filter(|r| !r.is_empty())
                        .ok_or_else(|| {
                            invalid(
                                env::LEGACY_POOL_ID,
                                "a pool id looks like us-east-1_AbCdEf123 (or set COGNITO_MIGRATE_LEGACY_REGION)",
                            )
                        })?,
                };
                DirectorySource::Pool(PoolSettings {
                    pool_id,
                    client_id,
                    client_secret: get(env::LEGACY_CLIENT_SECRET),
                    region,
                    new_pool_generates_usernames: get(env::NEW_POOL_USERNAME_ATTRIBUTES)
                        .map(|v| parse_username_attributes(&v))
                        .transpose()?,
                })
            }
        };
        if !matches!(source, DirectorySource::Pool(_))
            && get(env::NEW_POOL_USERNAME_ATTRIBUTES).is_some()
        {
            return Err(invalid(
                env::NEW_POOL_USERNAME_ATTRIBUTES,
                format!(
                    "only used with {} (a directory file records its pool's sign-in settings)",
                    env::LEGACY_POOL_ID
                ),
            ));
        }
        let cost_cap = match get(env::COST_CAP) {
            Some(spec) => parse_cost_cap(&spec)?,
            None => CostCap::default(),
        };
        let attributes = get(env::ATTRIBUTES).map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        });
        let verify_download = match get(env::VERIFY_DOWNLOAD) {
            None => true,
            Some(v) => crate::mapping::transform::parse_bool(&v)
                .ok_or_else(|| invalid(env::VERIFY_DOWNLOAD, "expected true or false"))?,
        };
        Ok(TriggerSettings {
            source,
            cost_cap,
            log_key: get(env::LOG_KEY),
            attributes,
            download_dir: get(env::DOWNLOAD_DIR)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp")),
            verify_download,
        })
    }
}

/// Parses the new pool's `UsernameAttributes`: `email`, `phone_number` or both (comma-separated)
/// mean Cognito generates usernames (`true`); `none` means usernames are chosen (`false`).
fn parse_username_attributes(v: &str) -> Result<bool, SettingsError> {
    let items: Vec<String> = v
        .split(',')
        .map(|i| i.trim().to_ascii_lowercase())
        .filter(|i| !i.is_empty())
        .collect();
    if items == ["none"] {
        return Ok(false);
    }
    if !items.is_empty() && items.iter().all(|i| i == "email" || i == "phone_number") {
        return Ok(true);
    }
    Err(invalid(
        env::NEW_POOL_USERNAME_ATTRIBUTES,
        format!("{v:?}: expected email, phone_number, both (comma-separated), or none"),
    ))
}

/// Parses `name=value,…` over [`CostCap::default`]. Names: `bcrypt` (max cost), `pbkdf2` (max
/// iterations × output blocks), `memory_kib` (argon2 and one scrypt lane), `argon2_t`, `argon2_p`,
/// `scrypt_p`, `scrypt_total_kib` (memory × p), `sha_crypt` (rounds), `phpass` (log2 rounds).
pub fn parse_cost_cap(spec: &str) -> Result<CostCap, SettingsError> {
    let mut cap = CostCap::default();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| invalid(env::COST_CAP, format!("{part:?} is not name=value")))?;
        let value: u64 = value.trim().parse().map_err(|_| {
            invalid(
                env::COST_CAP,
                format!("{name}: {value:?} is not a whole number"),
            )
        })?;
        let small = |v: u64| {
            u32::try_from(v)
                .map_err(|_| invalid(env::COST_CAP, format!("{name}: {v} is too large")))
        };
        match name.trim() {
            "bcrypt" => cap.bcrypt_max_cost = small(value)?,
            "pbkdf2" => cap.pbkdf2_max_iterations = value,
            "memory_kib" => cap.max_memory_kib = value,
            "argon2_t" => cap.argon2_max_iterations = small(value)?,
            "argon2_p" => cap.argon2_max_parallelism = small(value)?,
            "scrypt_p" => cap.scrypt_max_parallelism = small(value)?,
            "scrypt_total_kib" => cap.scrypt_max_total_kib = value,
            "sha_crypt" => cap.sha_crypt_max_rounds = small(value)?,
            "phpass" => {
                cap.phpass_max_log2_rounds = u8::try_from(value)
                    .map_err(|_| invalid(env::COST_CAP, format!("phpass: {value} is too large")))?
            }
            other => {
                return Err(invalid(
                    env::COST_CAP,
                    format!(
                        "unknown cap {other:?} (known: bcrypt, pbkdf2, memory_kib, argon2_t, \
                         argon2_p, scrypt_p, scrypt_total_kib, sha_crypt, phpass)"
                    ),
                ))
            }
        }
    }
    Ok(cap)
}
