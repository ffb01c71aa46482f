//! The mapping file: which source field becomes which Cognito attribute, through which transform.
//!
//! ```toml
//! username = "user_id"                     # or { from = "email", transform = "lowercase_email" }
//! password = "password_hash"               # generic formats: the field holding an encoded hash
//! password_scheme = "aspnet-identity"      # what that field holds: "auto" (default) or "aspnet-identity"
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
//!
//! `password_scheme` names the notation of the `password` field where it is not self-describing:
//! `"auto"` (the default) recognises every self-describing notation and a bare ASP.NET Identity
//! blob whose layout is unambiguous; `"aspnet-identity"` reads the field as ASP.NET Identity's
//! `PasswordHash` column (base64 of the v2 or v3 blob) whatever it looks like.
//!
//! Group names are checked against Cognito's `CreateGroup` rules at plan time (1–128 characters,
//! no white space or control characters; see [`super::groups`]); a `[groups]` table rewrites them
//! first, and takes the field as `from` (vendor formats, e.g. Keycloak's `/Cluster Admins` paths,
//! need no `from`):
//!
//! ```toml
//! [groups]
//! from = "roles"            # optional, as `groups = "roles"`
//! strip_prefix = "/"        # removed once from the start of each name
//! replace_spaces = "_"      # every white-space character becomes this ("" removes them)
//! ```
//! A user with a group name that still does not fit is rejected (`invalid_group`).

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

/// The `groups` key: the field with comma-separated group names, or a table that also rewrites
/// names (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum GroupsRule {
    Field(String),
    Table(GroupsTable),
}

/// The `[groups]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsTable {
    /// The source field, as `groups = "…"`.
    #[serde(default)]
    pub from: Option<String>,
    /// Removed once from the start of each name.
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// Replaces every white-space character of a name.
    #[serde(default)]
    pub replace_spaces: Option<String>,
}

impl GroupsRule {
    /// The rule as a table (`groups = "f"` is `{ from = "f" }`).
    pub fn table(&self) -> GroupsTable {
        match self {
            GroupsRule::Field(f) => GroupsTable {
                from: Some(f.clone()),
                ..GroupsTable::default()
            },
            GroupsRule::Table(t) => t.clone(),
        }
    }
}

/// The mapping file as written (before it is checked against a pool).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    #[serde(default)]
    pub username: Option<Rule>,
    #[serde(default)]
    pub password: Option<String>,
    /// What the `password` field holds: `auto` (default) or `aspnet-identity`.
    #[serde(default)]
    pub password_scheme: Option<String>,
    #[serde(default)]
    pub groups: Option<GroupsRule>,
    #[serde(default)]
    pub enabled: Option<Rule>,
    #[serde(default)]
    pub disabled: Option<Rule>,
    #[serde(default)]
    pub default_region: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, Rule>,
    /// `[providers]`: a vendor's provider name → the pool's identity provider name (see
    /// [`super::providers`]); laid over the defaults.
    #[serde(default)]
    pub providers: BTreeMap<String, String>,
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
        take!(password_scheme);
        // A `[groups]` table without `from` keeps the field the base names.
        if let Some(over_groups) = over.groups {
            let mut table = over_groups.table();
            if table.from.is_none() {
                table.from = self.groups.as_ref().and_then(|g| g.table().from);
            }
            self.groups = Some(GroupsRule::Table(table));
        }
        take!(default_region);
        if over.enabled.is_some() || over.disabled.is_some() {
            self.enabled = over.enabled;
            self.disabled = over.disabled;
        }
        self.attributes.extend(over.attributes);
        self.providers.extend(over.providers);
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
