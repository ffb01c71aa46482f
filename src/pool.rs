//! What the target user pool says about itself.
//!
//! The pool decides what a valid user is: its import CSV header (`GetCSVHeader`), its schema
//! (`DescribeUserPool`: standard and custom attributes, required, mutable, constraints), how users sign
//! in (`UsernameAttributes`, `AliasAttributes`, case sensitivity) and which attributes it verifies.
//! [`PoolSchema`] gathers that once per run. It can be saved to a file (`header --save`) and loaded
//! back, so a migration can be planned and reviewed offline, without credentials.

use std::path::Path;

use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::SchemaAttributeType;
use aws_sdk_cognitoidentityprovider::Client;
use serde::{Deserialize, Serialize};

/// Cognito's standard attributes with the constraints Cognito applies when the pool does not list
/// them (every standard attribute is a mutable string of at most 2048 characters, except the
/// booleans and `updated_at`, a number of epoch seconds).
pub const STANDARD_ATTRIBUTES: [(&str, DataType); 19] = [
    ("name", DataType::String),
    ("given_name", DataType::String),
    ("family_name", DataType::String),
    ("middle_name", DataType::String),
    ("nickname", DataType::String),
    ("preferred_username", DataType::String),
    ("profile", DataType::String),
    ("picture", DataType::String),
    ("website", DataType::String),
    ("email", DataType::String),
    ("email_verified", DataType::Boolean),
    ("gender", DataType::String),
    ("birthdate", DataType::String),
    ("zoneinfo", DataType::String),
    ("locale", DataType::String),
    ("phone_number", DataType::String),
    ("phone_number_verified", DataType::Boolean),
    ("address", DataType::String),
    ("updated_at", DataType::Number),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    String,
    Number,
    Boolean,
    DateTime,
}

/// One attribute of the pool's schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    /// As written in the import CSV: `email`, `custom:legacy_id`.
    pub name: String,
    pub data_type: DataType,
    pub required: bool,
    pub mutable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<i64>,
}

/// Everything about the target pool that mapping, validation and the writers need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolSchema {
    pub pool_id: String,
    pub pool_name: String,
    /// The import CSV columns, in the order `GetCSVHeader` gave them.
    pub csv_header: Vec<String>,
    pub attributes: Vec<Attribute>,
    /// `email` and/or `phone_number` when users sign in with those instead of a username.
    pub username_attributes: Vec<String>,
    /// `email`, `phone_number`, `preferred_username` when they are sign-in aliases.
    pub alias_attributes: Vec<String>,
    pub username_case_sensitive: bool,
    pub auto_verified_attributes: Vec<String>,
    /// The pool's identity providers (ListIdentityProviders: `Google`, `SignInWithApple`, SAML
    /// and OIDC providers by name), that federated identities are linked through. `None`: not
    /// known (a schema file saved without them, or the listing was not allowed): not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_providers: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("user pool {pool_id} was not found in region {region}")]
    NotFound { pool_id: String, region: String },
    #[error("not allowed to read user pool {pool_id}: {message}")]
    AccessDenied { pool_id: String, message: String },
    #[error("{operation} failed for user pool {pool_id}: {message}")]
    Aws {
        operation: &'static str,
        pool_id: String,
        message: String,
    },
    #[error("cannot read pool schema file {path}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("pool schema file {path} is not valid")]
    ParseFile {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write pool schema file {path}")]
    WriteFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl PoolError {
    /// Whether the error is the user's to fix (wrong id, region, permissions, file): exit code 2.
    pub fn is_configuration(&self) -> bool {
        !matches!(self, PoolError::Aws { .. })
    }

    pub fn hint(&self) -> Option<&'static str> {
        match self {
            PoolError::NotFound { .. } => Some(
                "check --pool-id and --region (pool ids look like us-east-1_AbCdEf123 and are regional)",
            ),
            PoolError::AccessDenied { .. } => Some(
                "the caller needs cognito-idp:GetCSVHeader and cognito-idp:DescribeUserPool on the pool",
            ),
            _ => None,
        }
    }
}

fn classify<E, R>(
    e: SdkError<E, R>,
    operation: &'static str,
    pool_id: &str,
    region: &str,
) -> PoolError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or_default().to_string();
    let message = e.message().map(str::to_string).unwrap_or_else(|| {
        aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e).to_string()
    });
    match code.as_str() {
        "ResourceNotFoundException" => PoolError::NotFound {
            pool_id: pool_id.to_string(),
            region: region.to_string(),
        },
        "NotAuthorizedException" | "AccessDeniedException" | "UnrecognizedClientException" => {
            PoolError::AccessDenied {
                pool_id: pool_id.to_string(),
                message,
            }
        }
        _ => PoolError::Aws {
            operation,
            pool_id: pool_id.to_string(),
            message,
        },
    }
}

fn parse_u32(s: Option<&str>) -> Option<u32> {
    s.and_then(|v| v.trim().parse().ok())
}

fn parse_i64(s: Option<&str>) -> Option<i64> {
    s.and_then(|v| v.trim().parse().ok())
}

fn attribute_from_sdk(a: &SchemaAttributeType) -> Option<Attribute> {
    use aws_sdk_cognitoidentityprovider::types::AttributeDataType as T;
    let raw = a.name()?;
    let standard = STANDARD_ATTRIBUTES.iter().any(|(n, _)| *n == raw) || raw == "sub";
    let name = if standard || raw.starts_with("custom:") || raw.starts_with("dev:") {
        raw.to_string()
    } else {
        format!("custom:{raw}")
    };
    let data_type = match a.attribute_data_type() {
        Some(T::Number) => DataType::Number,
        Some(T::Boolean) => DataType::Boolean,
        Some(T::Datetime) => DataType::DateTime,
        _ => DataType::String,
    };
    let s = a.string_attribute_constraints();
    let n = a.number_attribute_constraints();
    Some(Attribute {
        name,
        data_type,
        required: a.required().unwrap_or(false),
        mutable: a.mutable().unwrap_or(true),
        min_length: parse_u32(s.and_then(|c| c.min_length())),
        max_length: parse_u32(s.and_then(|c| c.max_length())),
        min_value: parse_i64(n.and_then(|c| c.min_value())),
        max_value: parse_i64(n.and_then(|c| c.max_value())),
    })
}

/// The names of the pool's identity providers (ListIdentityProviders, every page). `None`, with
/// a warning, when they cannot be listed (e.g. the caller lacks
/// `cognito-idp:ListIdentityProviders`): federated identities are then not checked against the
/// pool, and a missing provider shows up as a failed link at run time.
pub async fn identity_providers(client: &Client, pool_id: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    // Bounded: a pool has at most a few hundred providers, 60 a page.
    for _ in 0..1000 {
        let out = match client
            .list_identity_providers()
            .user_pool_id(pool_id)
            .max_results(60)
            .set_next_token(token.take())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(
                    "cannot list the identity providers of pool {pool_id} ({}): federated \
                     identities are not checked against the pool",
                    aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e)
                );
                return None;
            }
        };
        names.extend(
            out.providers()
                .iter()
                .filter_map(|p| p.provider_name().map(str::to_string)),
        );
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Some(names),
        }
    }
    Some(names)
}

impl PoolSchema {
    /// The names of the attributes the pool requires, in schema order.
    pub fn required_attributes(&self) -> Vec<&str> {
        self.attributes
            .iter()
            .filter(|a| a.required)
            .map(|a| a.name.as_str())
            .collect()
    }

    /// Reads the pool's header and schema (`GetCSVHeader`, `DescribeUserPool`).
    pub async fn fetch(client: &Client, pool_id: &str) -> Result<PoolSchema, PoolError> {
        let region = client
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let header = client
            .get_csv_header()
            .user_pool_id(pool_id)
            .send()
            .await
            .map_err(|e| classify(e, "GetCSVHeader", pool_id, &region))?;
        let described = client
            .describe_user_pool()
            .user_pool_id(pool_id)
            .send()
            .await
            .map_err(|e| classify(e, "DescribeUserPool", pool_id, &region))?;
        let pool = described.user_pool();
        let listed: Vec<Attribute> = pool
            .map(|p| p.schema_attributes())
            .unwrap_or_default()
            .iter()
            .filter_map(attribute_from_sdk)
            .collect();
        Ok(PoolSchema::assemble(
            pool_id,
            pool.and_then(|p| p.name()).unwrap_or_default(),
            header.csv_header().to_vec(),
            listed,
            pool.map(|p| {
                p.username_attributes()
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
            pool.map(|p| {
                p.alias_attributes()
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
            pool.and_then(|p| p.username_configuration())
                .map(|c| c.case_sensitive())
                .unwrap_or(false),
            pool.map(|p| {
                p.auto_verified_attributes()
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        )
        .with_identity_providers(identity_providers(client, pool_id).await))
    }

    /// Sets the pool's identity provider names.
    pub fn with_identity_providers(mut self, names: Option<Vec<String>>) -> PoolSchema {
        self.identity_providers = names;
        self
    }

    /// Completes a schema from what the pool listed: standard attributes the pool did not describe
    /// get Cognito's defaults (some implementations list only custom attributes).
    #[allow(clippy::too_many_arguments)]
    pub fn assemble(
        pool_id: &str,
        pool_name: &str,
        csv_header: Vec<String>,
        listed: Vec<Attribute>,
        username_attributes: Vec<String>,
        alias_attributes: Vec<String>,
        username_case_sensitive: bool,
        auto_verified_attributes: Vec<String>,
    ) -> PoolSchema {
        let mut attributes: Vec<Attribute> = STANDARD_ATTRIBUTES
            .iter()
            .map(|(name, data_type)| {
                listed
                    .iter()
                    .find(|a| a.name == *name)
                    .cloned()
                    .unwrap_or_else(|| Attribute {
                        name: name.to_string(),
                        data_type: *data_type,
                        required: false,
                        mutable: true,
                        min_length: None,
                        max_length: (*data_type == DataType::String).then_some(2048),
                        min_value: None,
                        max_value: None,
                    })
            })
            .collect();
        attributes.extend(
            listed
                .into_iter()
                .filter(|a| a.name.starts_with("custom:") || a.name.starts_with("dev:")),
        );
        PoolSchema {
            pool_id: pool_id.to_string(),
            pool_name: pool_name.to_string(),
            csv_header,
            attributes,
            username_attributes,
            alias_attributes,
            username_case_sensitive,
            auto_verified_attributes,
            identity_providers: None,
        }
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Saves the schema as pretty JSON (no personal data in it).
    pub fn save(&self, path: &Path) -> Result<(), PoolError> {
        let text = serde_json::to_string_pretty(self).expect("schema serializes");
        std::fs::write(path, text + "\n").map_err(|source| PoolError::WriteFile {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn load(path: &Path) -> Result<PoolSchema, PoolError> {
        let text = std::fs::read_to_string(path).map_err(|source| PoolError::ReadFile {
            path: path.display().to_string(),
            source,
        })?;
        let s: PoolSchema = serde_json::from_str(&text).map_err(|source| PoolError::ParseFile {
            path: path.display().to_string(),
            source,
        })?;
        // A hand-written file may list only custom attributes: complete it as the pool would.
        Ok(PoolSchema::assemble(
            &s.pool_id,
            &s.pool_name,
            s.csv_header,
            s.attributes,
            s.username_attributes,
            s.alias_attributes,
            s.username_case_sensitive,
            s.auto_verified_attributes,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assemble_fills_standard_attributes_and_keeps_custom_ones() {
        let listed = vec![Attribute {
            name: "custom:legacy_id".into(),
            data_type: DataType::String,
            required: false,
            mutable: true,
            min_length: Some(1),
            max_length: Some(64),
            min_value: None,
            max_value: None,
        }];
        let s = PoolSchema::assemble(
            "us-east-1_x",
            "demo",
            vec!["name".into()],
            listed,
            vec!["email".into()],
            vec![],
            false,
            vec!["email".into()],
        );
        assert_eq!(s.attributes.len(), STANDARD_ATTRIBUTES.len() + 1);
        assert_eq!(s.attribute("email").unwrap().max_length, Some(2048));
        assert_eq!(
            s.attribute("updated_at").unwrap().data_type,
            DataType::Number
        );
        assert_eq!(
            s.attribute("custom:legacy_id").unwrap().max_length,
            Some(64)
        );
        let dir = std::env::temp_dir().join(format!("pool-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("schema.json");
        s.save(&path).unwrap();
        assert_eq!(PoolSchema::load(&path).unwrap(), s);
    }
}
