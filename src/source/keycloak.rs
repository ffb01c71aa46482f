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
//!   and `credentialData` JSON strings as exported; other credentials are not kept.
//! - `groups` (paths like `/staff/admins`) become [`LegacyUser::groups`] without the leading `/`
//!   (`staff/admins`): the full path is kept so that subgroups of the same name stay distinct.
//! - `enabled: false` makes the user disabled.
//! - Service-account users (with `serviceAccountClientId`) are skipped unless
//!   `include_service_accounts`, with a warning giving their number.
//!
//! A user without `username` is a `missing_field` error. Records are numbered by their place in
//! the `users` array, skipped ones included.

use super::error::{Reason, RecordError, SourceError};
use super::input::Input;
use super::json::{flatten_value, take, Fields, Json, Obj};
use super::json_stream::JsonRecords;
use super::{JsonAdapter, JsonSource, Source, SourceOptions};
use crate::record::{LegacyUser, Position, RawPassword};

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
        },
    )))
}

pub(crate) struct Keycloak {
    include_service_accounts: bool,
    skipped_service_accounts: u64,
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
                    let secret = cred.get("secretData");
                    let data = cred.get("credentialData");
                    match (secret.and_then(Json::as_str), data.and_then(Json::as_str)) {
                        (Some(s), Some(d)) => {
                            user.password = Some(RawPassword::Keycloak {
                                secret_data: s.to_string(),
                                credential_data: d.to_string(),
                            })
                        }
                        _ => {
                            return Err(RecordError::new(
                                pos,
                                Reason::BadValue,
                                "the password credential needs `secretData` and `credentialData` strings",
                            )
                            .with_field("credentials"))
                        }
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
        if user.field("username").is_none() {
            return Err(RecordError::missing(pos, "username"));
        }
        Ok(Some(user))
    }

    fn finish(&mut self, warnings: &mut Vec<String>) {
        if self.skipped_service_accounts > 0 {
            warnings.push(format!(
                "{} service-account user(s) skipped (set include_service_accounts to read them)",
                self.skipped_service_accounts
            ));
        }
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
}
