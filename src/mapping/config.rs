//! The mapping file: which source field becomes which Cognito attribute, through which transform.
//!
//! ```toml
//! username = "user_id"                     # or { from = "email", transform = "lowercase_email" }
//! password = "password_hash"               # generic formats: the field holding an encoded hash
//! groups = "roles"                         # generic formats: comma-separated group names
//! enabled = { from = "active", transform = "bool" }   # or: disabled = { from = "blocked", transform = "bool" }
//! default_region = "US"                    # for the e164 transform
//! [attributes]
//! email = { from = "email", transform = "lowercase_email" }
//! given_name = "first_name"
//! name = { from = ["first_name", "last_name"], transform = "join" }
//! "custom:legacy_id" = "user_id"
//! "custom:tier" = { transform = "const", value = "gold" }
//! ```
//! Vendor formats carry a built-in mapping; a user's mapping file is laid over it (its keys win).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::transform::Transform;

/// Where a mapped value comes from: one field, several (for `join`), or none (for `const`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum From {
    One(String),
    Many(Vec<String>),
}

/// A mapping rule for one target.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Rule {
    /// Just the source field's name: the value is copied after trimming.
    Field(String),
    Detailed {
        #[serde(default)]
        from: Option<From>,
        #[serde(default)]
        transform: Option<String>,
        /// For `const`.
        #[serde(default)]
        value: Option<String>,
        /// For `join` (default: one space).
        #[serde(default)]
        separator: Option<String>,
    },
}

/// The mapping file as written (before it is checked against a pool).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    #[serde(default)]
    pub username: Option<Rule>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub groups: Option<String>,
    #[serde(default)]
    pub enabled: Option<Rule>,
    #[serde(default)]
    pub disabled: Option<Rule>,
    #[serde(default)]
    pub default_region: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, Rule>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read mapping file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mapping file {path} is not valid TOML for a mapping")]
    Parse {
        path: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("mapping: {target}: {message}")]
    Invalid { target: String, message: String },
    #[error("mapping: the pool has no attribute {attribute:?}")]
    UnknownAttribute { attribute: String },
    #[error("mapping: no username rule, and none can be derived")]
    NoUsername,
}

impl MappingFile {
    pub fn parse(text: &str, origin: &str) -> Result<MappingFile, MappingError> {
        toml::from_str(text).map_err(|e| MappingError::Parse {
            path: origin.to_string(),
            source: Box::new(e),
        })
    }

    pub fn load(path: &Path) -> Result<MappingFile, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: path.display().to_string(),
            source,
        })?;
        MappingFile::parse(&text, &path.display().to_string())
    }

    /// Lays `over` on top of `self`: every key `over` sets wins.
    pub fn overlay(mut self, over: MappingFile) -> MappingFile {
        macro_rules! take {
            ($f:ident) => {
                if over.$f.is_some() {
                    self.$f = over.$f;
                }
            };
        }
        take!(username);
        take!(password);
        take!(groups);
        take!(default_region);
        if over.enabled.is_some() || over.disabled.is_some() {
            self.enabled = over.enabled;
            self.disabled = over.disabled;
        }
        self.attributes.extend(over.attributes);
        self
    }
}

/// A rule checked and compiled: its transform resolved, its sources listed.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledRule {
    pub sources: Vec<String>,
    pub transform: Transform,
}

impl CompiledRule {
    pub fn compile(target: &str, rule: &Rule) -> Result<CompiledRule, MappingError> {
        let invalid = |message: String| MappingError::Invalid {
            target: target.to_string(),
            message,
        };
        match rule {
            Rule::Field(f) => Ok(CompiledRule {
                sources: vec![f.clone()],
                transform: Transform::Trim,
            }),
            Rule::Detailed {
                from,
                transform,
                value,
                separator,
            } => {
                let sources = match from {
                    Some(From::One(f)) => vec![f.clone()],
                    Some(From::Many(fs)) => fs.clone(),
                    None => Vec::new(),
                };
                let name = transform.as_deref().unwrap_or("trim");
                let transform = Transform::from_name(name, value.as_deref(), separator.as_deref())
                    .map_err(invalid)?;
                match (&transform, sources.len()) {
                    (Transform::Const(_), 0) => {}
                    (Transform::Const(_), _) => {
                        return Err(invalid("`const` takes `value`, not `from`".into()))
                    }
                    (Transform::Join(_), n) if n >= 1 => {}
                    (_, 1) => {}
                    (_, 0) => return Err(invalid("`from` is missing".into())),
                    (_, _) => {
                        return Err(invalid(format!(
                            "transform `{name}` takes one `from` field (use `join` for several)"
                        )))
                    }
                }
                Ok(CompiledRule { sources, transform })
            }
        }
    }
}
