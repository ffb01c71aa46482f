//! Keycloak exports.
//!
//! Reads a realm export (`kc.sh export --realm R --file realm.json` with users in the same file:
//! `{"realm": "R", ..., "users": [...]}`), the split user files of a directory export
//! (`R-users-0.json`: `{"realm": "R", "users": [...]}`), or a bare array of user representations
//! (the admin API's `GET /admin/realms/R/users`). The `users` array is streamed; the rest of a
//! realm export (clients, roles…), however large, is skipped without being kept.
//!
//! Fields keep Keycloak's names: `id`, `username`, `email`, `emailVerified`, `firstName`,
//! `lastName`, `enabled`, `createdTimestamp` (epoch milliseconds), `attributes.<name>` (the value
//! list joined with `,`), `realmRoles` and `clientRoles.<client>` (joined), `requiredActions`,
//! `federatedIdentities.<i>.identityProvider`/`userId`/`userName`, and `credentials.types` (the
//! types of all credentials, e.g. `password,otp`).
//!
//! - The credential of type `password` becomes [`RawPassword::Keycloak`] with its `secretData`
//!   and `credentialData` JSON strings as exported; other credentials are not kept. Exports of
//!   Keycloak before 11 keep the hash in the credential itself (`hashedSaltedValue`, or `value`,
//!   with `salt`, `hashIterations`, `algorithm`): the same two strings are built from those. A
//!   password credential with a bare `value` (a realm import file's clear-text password) or
//!   without usable hash data leaves the user without a password, counted in a warning; the user
//!   is still read.
//! - `groups` (paths like `/staff/admins`) become [`LegacyUser::groups`] without the leading `/`
//!   (`staff/admins`): the full path is kept so that subgroups of the same name stay distinct.
//! - `enabled: false` makes the user disabled.
//! - Service-account users (with `serviceAccountClientId`) are skipped unless
//!   [`SourceOptions::include_service_accounts`] (`--include-service-accounts`), with a warning
//!   giving their number.
//!
//! A user without `username` is a `missing_field` error. Records are numbered by their place in
//! the `users` array, skipped ones included.

use super::error::{Reason, RecordError, SourceError};
use super::input::Input;
use super::json::{flatten_value, take, Fields, Json, Obj};
use super::json_stream::JsonRecords;
use super::{JsonAdapter, JsonSource, Source, SourceOptions};
use crate::record::{Identity, LegacyUser, Position, RawPassword};

pub(crate) fn open(
    input: Input,
    first: Option<u8>,
    opts: &SourceOptions,
) -> Result<Box<dyn Source>, SourceError> {
    if !matches!(first, Some(b'{' | b'[') | None) {
        return Err(SourceError::invalid(
            &input.location,
            "a Keycloak export is a JSON object with a `users` array, or an array of users",
        ));
    }
    let records = JsonRecords::array(input, opts.users_key(), opts.max_record_bytes())?;
    Ok(Box::new(JsonSource::new(
        records,
        Keycloak {
            include_service_accounts: opts.include_service_accounts,
            skipped_service_accounts: 0,
            clear_text: 0,
            no_hash_data: 0,
        },
    )))
}

pub(crate) struct Keycloak {
    include_service_accounts: bool,
    skipped_service_accounts: u64,
    /// Password credentials holding a clear-text `value` (realm import files).
    clear_text: u64,
    /// Password credentials without usable hash data.
    no_hash_data: u64,
}

impl JsonAdapter for Keycloak {
    const CAPTURE: &'static [&'static str] =
        &["credentials", "groups", "enabled", "serviceAccountClientId"];

    fn convert(
        &mut self,
        mut obj: Obj<'_>,
        mut fields: Fields,
        pos: Position,
    ) -> Result<Option<LegacyUser>, RecordError> {
        let service_account = take(&mut obj, "serviceAccountClientId").filter(|v| *v != Json::Null);
        if service_account.is_some() && !self.include_service_accounts {
            self.skipped_service_accounts += 1;
            return Ok(None);
        }
        if let Some(client) = service_account {
            flatten_value(
                &mut "serviceAccountClientId".to_string(),
                client,
                &mut fields,
            );
        }
        let mut user = LegacyUser::new(pos);

        if let Some(creds) = take(&mut obj, "credentials") {
            let Json::Arr(creds) = creds else {
                return Err(RecordError::new(pos, Reason::BadValue, "expected an array")
                    .with_field("credentials"));
            };
            let mut types = String::new();
            for cred in &creds {
                let Some(kind) = cred.get("type").and_then(Json::as_str) else {
                    continue;
                };
                if !types.split(',').any(|t| t == kind) {
                    if !types.is_empty() {
                        types.push(',');
                    }
                    types.push_str(kind);
                }
                if kind == "password" && user.password.is_none() {
                    match password_credential(cred) {
                        Credential::Hash(p) => user.password = Some(p),
                        Credential::ClearText => self.clear_text += 1,
                        Credential::NoHashData => self.no_hash_data += 1,
                    }
                }
            }
            if !types.is_empty() {
                fields.push("credentials.types", &types);
            }
        }

        if let Some(groups) = take(&mut obj, "groups") {
            match groups {
                Json::Arr(items) => {
                    for g in items {
                        if let Some(path) = g.into_scalar_string() {
                            let name = path.strip_prefix('/').unwrap_or(&path);
                            if !name.is_empty() {
                                user.groups.push(name.to_string());
                            }
                        }
                    }
                }
                Json::Null => {}
                _ => {
                    return Err(RecordError::new(pos, Reason::BadValue, "expected an array")
                        .with_field("groups"))
                }
            }
        }
        if let Some(enabled) = take(&mut obj, "enabled") {
            if enabled == Json::Bool(false) {
                user.enabled = false;
            }
            flatten_value(&mut "enabled".to_string(), enabled, &mut fields);
        }
        user.fields = fields;
        // `federatedIdentities[]` (flattened with indexes): the identity provider's alias as the
        // realm names it, and the user's id at that provider.
        for i in 0.. {
            let Some(idp) = user
                .field(&format!("federatedIdentities.{i}.identityProvider"))
                .map(str::to_string)
            else {
                break;
            };
            if let Some(id) = user.field(&format!("federatedIdentities.{i}.userId")) {
                user.identities.push(Identity::new(idp, id));
            }
        }
        if user.field("username").is_none() {
            if user.field("realm").is_some() {
                // An array of whole realms (the migration files of Keycloak's own tests, or an
                // old export of all realms) read as an array of users.
                return Err(RecordError::new(
                    pos,
                    Reason::MalformedRecord,
                    "this entry is a realm, not a user: the file is an array of realms; export one realm (kc.sh export --realm NAME) or take one realm's object out of the array",
                )
                .with_field("realm"));
            }
            return Err(RecordError::missing(pos, "username"));
        }
        Ok(Some(user))
    }

    fn finish(&mut self, warnings: &mut Vec<String>) {
        if self.skipped_service_accounts > 0 {
            warnings.push(format!(
                "{} service-account user(s) skipped (--include-service-accounts reads them)",
                self.skipped_service_accounts
            ));
        }
        if self.clear_text > 0 {
            warnings.push(format!(
                "{} user(s) have a password credential with a clear-text `value` and no hash parameters (a realm import file): read without a password",
                self.clear_text
            ));
        }
        if self.no_hash_data > 0 {
            warnings.push(format!(
                "{} user(s) have a password credential without `secretData`/`credentialData` or `hashedSaltedValue`/`salt`/`algorithm`: read without a password",
                self.no_hash_data
            ));
        }
    }
}

enum Credential {
    Hash(RawPassword),
    ClearText,
    NoHashData,
}

/// The hash of a `password` credential in today's form (`secretData` + `credentialData`) or
/// that of Keycloak before 11 (`hashedSaltedValue` or `value`, `salt`, `hashIterations`,
/// `algorithm` as members of the credential).
fn password_credential(cred: &Json<'_>) -> Credential {
    let text = |key: &str| cred.get(key).and_then(Json::as_str);
    if let (Some(secret), Some(data)) = (text("secretData"), text("credentialData")) {
        return Credential::Hash(RawPassword::Keycloak {
            secret_data: secret.to_string(),
            credential_data: data.to_string(),
        });
    }
    let value = text("hashedSaltedValue").or(text("value"));
    match (value, text("salt"), text("algorithm")) {
        (Some(value), Some(salt), Some(algorithm)) => {
            let mut data = serde_json::Map::new();
            if let Some(n) = cred.get("hashIterations").and_then(Json::scalar_text) {
                if let Ok(n) = n.parse::<u64>() {
                    data.insert("hashIterations".into(), n.into());
                }
            }
            data.insert("algorithm".into(), algorithm.into());
            data.insert("additionalParameters".into(), serde_json::Map::new().into());
            let secret = serde_json::json!({
                "value": value,
                "salt": salt,
                "additionalParameters": {},
            });
            Credential::Hash(RawPassword::Keycloak {
                secret_data: secret.to_string(),
                credential_data: serde_json::Value::Object(data).to_string(),
            })
        }
        (Some(_), None, None) if cred.get("hashedSaltedValue").is_none() => Credential::ClearText,
        _ => Credential::NoHashData,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::Format;
    use super::*;

    #[test]
    fn realm_export_users_with_credentials_groups_and_attributes() {
        let text = r#"{
  "realm": "acme",
  "clients": [{"clientId": "app", "users": "not this one"}],
  "users": [
    {
      "id": "1", "username": "ann", "email": "ann@x.io", "emailVerified": true, "enabled": false,
      "createdTimestamp": 1690000000000,
      "attributes": {"phoneNumber": ["+14155550100"], "tags": ["a", "b"]},
      "credentials": [
        {"type": "password", "createdDate": 1690000000000,
         "secretData": "{\"value\":\"aGFzaA==\",\"salt\":\"c2FsdA==\",\"additionalParameters\":{}}",
         "credentialData": "{\"hashIterations\":27500,\"algorithm\":\"pbkdf2-sha256\",\"additionalParameters\":{}}"},
        {"type": "otp", "secretData": "{\"value\":\"x\"}", "credentialData": "{}"}
      ],
      "realmRoles": ["offline_access", "user"],
      "clientRoles": {"account": ["view-profile"]},
      "groups": ["/staff/admins", "/sales"]
    },
    {"id": "2", "username": "service-account-app", "serviceAccountClientId": "app"},
    {"id": "3", "email": "nouser@x.io"}
  ]
}"#;
        let (users, errors, warnings) = read_all(Format::Keycloak, text);
        assert_eq!(users.len(), 1);
        let u = &users[0];
        assert!(!u.enabled);
        assert_eq!(u.groups, vec!["staff/admins", "sales"]);
        match &u.password {
            Some(RawPassword::Keycloak {
                secret_data,
                credential_data,
            }) => {
                assert!(secret_data.contains("\"salt\":\"c2FsdA==\""));
                assert!(credential_data.contains("pbkdf2-sha256"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(u.field("credentials.types"), Some("password,otp"));
        assert_eq!(u.field("attributes.phoneNumber"), Some("+14155550100"));
        assert_eq!(u.field("attributes.tags"), Some("a,b"));
        assert_eq!(u.field("realmRoles"), Some("offline_access,user"));
        assert_eq!(u.field("clientRoles.account"), Some("view-profile"));
        assert_eq!(u.field("createdTimestamp"), Some("1690000000000"));
        assert!(u
            .fields
            .keys()
            .all(|k| !k.starts_with("credentials.") || k == "credentials.types"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].position.record, 3);
        assert_eq!(errors[0].position.line, 20);
        assert!(warnings.iter().any(|w| w.contains("1 service-account")));
    }

    /// Keycloak before 11 exported the hash in the credential itself (CredentialRepresentation's
    /// deprecated `hashedSaltedValue`, `salt`, `hashIterations`, `algorithm`); realm import
    /// files carry a clear-text `value`. The hash below is Python's
    /// `hashlib.pbkdf2_hmac("sha256", b"Blue-Kettle-42", b"keycloak-old-salt", 27500, 64)`
    /// (512 bits, as Keycloak derived them then).
    #[test]
    fn pre_11_credentials_and_clear_text_values_keep_the_user() {
        use crate::password::{HashContext, PasswordHash};
        let text = r#"{"users": [
  {"username": "old", "credentials": [{"type": "password",
    "hashedSaltedValue": "FMw81Mhe8/P+y5rGA+0rJxhe49iKZUlsOEIRLFxZvj0rrw7jP7pru3FfMMNuG6zH3wrrUi/pvacJPr/wPXw+BA==",
    "salt": "a2V5Y2xvYWstb2xkLXNhbHQ=", "hashIterations": 27500, "algorithm": "pbkdf2-sha256",
    "digits": 0, "period": 0, "createdDate": 1500000000000, "config": {}}]},
  {"username": "older", "credentials": [{"type": "password",
    "value": "FMw81Mhe8/P+y5rGA+0rJxhe49iKZUlsOEIRLFxZvj0rrw7jP7pru3FfMMNuG6zH3wrrUi/pvacJPr/wPXw+BA==",
    "salt": "a2V5Y2xvYWstb2xkLXNhbHQ=", "hashIterations": 27500, "algorithm": "pbkdf2-sha256"}]},
  {"username": "imported", "credentials": [{"type": "password", "value": "password", "temporary": false}]},
  {"username": "half", "credentials": [{"type": "password", "secretData": "{}"}]}
]}"#;
        let (users, errors, warnings) = read_all(Format::Keycloak, text);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<_> = users.iter().map(|u| u.field("username").unwrap()).collect();
        assert_eq!(names, ["old", "older", "imported", "half"]);
        for u in &users[..2] {
            let raw = u.password.as_ref().expect("a hash");
            let hash = PasswordHash::from_raw(raw, &HashContext::default()).unwrap();
            assert!(hash.verify("Blue-Kettle-42"), "{:?}", u.field("username"));
            assert!(!hash.verify("blue-kettle-42"));
        }
        assert!(users[2].password.is_none() && users[3].password.is_none());
        assert_eq!(users[2].field("credentials.types"), Some("password"));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("1 user(s) have a password credential with a clear-text"));
        assert!(warnings[1].starts_with("1 user(s) have a password credential without"));
        assert!(warnings.iter().all(|w| !w.contains("password\"")));
    }

    /// Keycloak 1.9.8's own export (tests/fixtures/real/keycloak): its `admin` user's
    /// `hashedSaltedValue` (pbkdf2, HMAC-SHA1, 20000 iterations, 512 bits) verifies `admin`.
    #[test]
    fn keycloak_1_9_8_export_admin_password_verifies() {
        use crate::password::{HashContext, PasswordHash};
        let path = format!(
            "{}/tests/fixtures/real/keycloak/migration-realm-1.9.8.Final-master-users.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        let (users, errors, _) = read_all(Format::Keycloak, &text);
        assert!(errors.is_empty());
        assert_eq!(users[0].field("username"), Some("admin"));
        let raw = users[0].password.as_ref().expect("a hash");
        let hash = PasswordHash::from_raw(raw, &HashContext::default()).unwrap();
        assert!(hash.verify("admin"));
        assert!(!hash.verify("Admin"));
        assert!(users[1].password.is_none());
        assert_eq!(users[1].groups, ["master-test-group"]);
    }

    #[test]
    fn an_array_of_realms_is_named_as_such() {
        let text = r#"[ {"id": "master", "realm": "master", "users": [{"username": "admin"}]},
  {"id": "Migration", "realm": "Migration", "users": []} ]"#;
        let (users, errors, _) = read_all(Format::Keycloak, text);
        assert!(users.is_empty());
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| e.reason == Reason::MalformedRecord
            && e.message.contains("array of realms")
            && e.field.as_deref() == Some("realm")));
    }
}
