//! Auth0 exports.
//!
//! Reads both files Auth0 hands out: the user export job (`POST /api/v2/jobs/users-exports`, JSON
//! format, which is NDJSON: one user per line) and the password-hash export that Auth0 support
//! provides on request (also NDJSON, with `_id.$oid`, `alt_id`, `passwordHash` and `identifiers`).
//! A JSON array of users (e.g. the Management API's `GET /users` pages, or files in the bulk-import
//! format with `custom_password_hash`) is read too; the first non-blank byte decides.
//!
//! Fields keep Auth0's names (`user_id`, `email`, `email_verified`, `user_metadata.plan`, …).
//! Special cases:
//! - `passwordHash` (bcrypt) and `custom_password_hash.hash.value` for the self-describing
//!   algorithms (bcrypt, argon2, pbkdf2 in PHC form, ldap) become [`RawPassword::Encoded`]; other
//!   `custom_password_hash` algorithms (md5, sha*, hmac: their salt and encoding live in separate
//!   members) leave the password empty, with the algorithm in `custom_password_hash.algorithm`
//!   and a warning. No hash material is ever put in `fields`.
//! - `blocked: true` makes the user disabled.
//! - `identities` keeps `identities.0.connection`, `identities.0.provider`,
//!   `identities.0.user_id`, `identities.0.isSocial`, and all connections and providers joined in
//!   `identities.connections` / `identities.providers`; provider tokens are dropped.
//! - Password-hash export: `user_id` is derived as `auth0|<alt_id or _id.$oid>` when absent, and
//!   `email` / `email_verified` / `phone_number` / `phone_verified` / `username` are taken from
//!   `identifiers` when the root lacks them.
//!
//! A record with no `user_id` (nor `_id`) is a `missing_field` error.

use std::collections::BTreeMap;

use super::error::{Reason, RecordError, SourceError};
use super::input::Input;
use super::json::{flatten_value, Fields, Json, Obj};
use super::json_stream::JsonRecords;
use super::{JsonAdapter, JsonSource, Source, SourceOptions};
use crate::record::{Identity, LegacyUser, Position, RawPassword};

pub(crate) fn open(
    input: Input,
    first: Option<u8>,
    opts: &SourceOptions,
) -> Result<Box<dyn Source>, SourceError> {
    let records = match first {
        Some(b'[') => JsonRecords::array(input, opts.users_key(), opts.max_record_bytes())?,
        _ => JsonRecords::ndjson(input, opts.max_record_bytes()),
    };
    Ok(Box::new(JsonSource::new(records, Auth0::default())))
}

#[derive(Default)]
pub(crate) struct Auth0 {
    /// Users whose `custom_password_hash` algorithm is not self-describing, by algorithm.
    unsupported: BTreeMap<String, u64>,
}

/// The members kept from the first identity, and their field names.
const IDENTITY_FIELDS: [(&str, &str); 4] = [
    ("connection", "identities.0.connection"),
    ("provider", "identities.0.provider"),
    ("user_id", "identities.0.user_id"),
    ("isSocial", "identities.0.isSocial"),
];

/// Auth0 providers that are Auth0's own sign-in, not another identity provider: the database
/// connection (`auth0`) and passwordless by SMS or email.
const NOT_FEDERATED: [&str; 3] = ["auth0", "sms", "email"];

/// The user's federated identities from Auth0's `identities[]`: social connections by their
/// `provider` (`google-oauth2`, `apple`, `facebook`, `github`, …), enterprise connections
/// (`isSocial: false`: SAML, OIDC, Azure AD, …) by their `connection` name, since the provider
/// (`samlp`, `oidc`) says nothing about which identity provider it is. `user_id` is the
/// provider's own id of the user (Google's `sub`, …).
fn federated_identities(identities: &[Json<'_>]) -> Vec<Identity> {
    let mut out = Vec::new();
    for i in identities {
        let provider = i.get("provider").and_then(Json::as_str).unwrap_or("");
        let Some(user_id) = i.get("user_id").and_then(Json::scalar_text) else {
            continue;
        };
        if provider.is_empty() || user_id.is_empty() || NOT_FEDERATED.contains(&provider) {
            continue;
        }
        let social = i.get("isSocial").and_then(Json::scalar_text) == Some("true");
        let name = match i.get("connection").and_then(Json::as_str) {
            Some(c) if !social && !c.is_empty() => c,
            _ => provider,
        };
        out.push(Identity::new(name, user_id));
    }
    out
}

/// `custom_password_hash` algorithms whose `hash.value` carries all its parameters.
const SELF_DESCRIBING: [&str; 4] = ["bcrypt", "argon2", "pbkdf2", "ldap"];

impl JsonAdapter for Auth0 {
    const CAPTURE: &'static [&'static str] = &[
        "passwordHash",
        "custom_password_hash",
        "identities",
        "identifiers",
        "blocked",
    ];

    fn convert(
        &mut self,
        obj: Obj<'_>,
        mut fields: Fields,
        pos: Position,
    ) -> Result<Option<LegacyUser>, RecordError> {
        let mut user = LegacyUser::new(pos);

        // One pass over the captured members; the last duplicate wins.
        let (mut password_hash, mut custom_hash, mut identities, mut blocked, mut identifiers) =
            (None, None, None, None, None);
        for (key, value) in obj {
            let slot = match key.as_ref() {
                "passwordHash" => &mut password_hash,
                "custom_password_hash" => &mut custom_hash,
                "identities" => &mut identities,
                "blocked" => &mut blocked,
                "identifiers" => &mut identifiers,
                _ => continue,
            };
            *slot = Some(value);
        }

        match password_hash {
            None | Some(Json::Null) => {}
            Some(Json::Str(s)) => {
                if !s.is_empty() {
                    user.password = Some(RawPassword::Encoded(s.into_owned()));
                }
            }
            Some(_) => {
                return Err(RecordError::new(pos, Reason::BadValue, "expected a string")
                    .with_field("passwordHash"))
            }
        }
        if let Some(custom) = custom_hash {
            let algorithm = custom.get("algorithm").and_then(Json::as_str);
            let value = custom
                .get("hash")
                .and_then(|h| h.get("value"))
                .and_then(Json::as_str);
            match (algorithm, value) {
                (Some(alg), Some(v)) if SELF_DESCRIBING.contains(&alg) => {
                    if user.password.is_none() && !v.is_empty() {
                        user.password = Some(RawPassword::Encoded(v.to_string()));
                    }
                }
                (Some(alg), _) => {
                    *self.unsupported.entry(alg.to_string()).or_default() += 1;
                    fields.push("custom_password_hash.algorithm", alg);
                }
                (None, _) if custom == Json::Null => {}
                (None, _) => {
                    return Err(RecordError::new(
                        pos,
                        Reason::BadValue,
                        "`custom_password_hash` has no `algorithm`",
                    )
                    .with_field("custom_password_hash"))
                }
            }
        }

        if let Some(Json::Arr(identities)) = identities {
            user.identities = federated_identities(&identities);
            if let Some(first) = identities.first() {
                for (key, field) in IDENTITY_FIELDS {
                    if let Some(v) = first.get(key).and_then(Json::scalar_text) {
                        fields.push(field, v);
                    }
                }
            }
            // Usually one identity: its values go in as they are, without building a list.
            let mut list = String::new();
            for (key, field) in [
                ("connection", "identities.connections"),
                ("provider", "identities.providers"),
            ] {
                let mut items = identities
                    .iter()
                    .filter_map(|i| i.get(key).and_then(Json::scalar_text));
                let joined = match (items.next(), items.next()) {
                    (None, _) => continue,
                    (Some(one), None) => one,
                    (Some(a), Some(b)) => {
                        list.clear();
                        for item in [a, b].into_iter().chain(items) {
                            push_joined(&mut list, item);
                        }
                        &list
                    }
                };
                if !joined.is_empty() {
                    fields.push(field, joined);
                }
            }
        }
        match blocked {
            None => {}
            Some(Json::Bool(b)) => {
                user.enabled = !b;
                fields.push("blocked", if b { "true" } else { "false" });
            }
            Some(other) => flatten_value(&mut "blocked".to_string(), other, &mut fields),
        }
        user.fields = fields;

        if let Some(Json::Arr(identifiers)) = identifiers {
            for ident in &identifiers {
                let kind = ident.get("type").and_then(Json::as_str);
                let value = ident.get("value").and_then(Json::scalar_text);
                let verified = ident.get("verified").and_then(Json::scalar_text);
                let (field, verified_field) = match kind {
                    Some("email") => ("email", Some("email_verified")),
                    Some("phone_number") => ("phone_number", Some("phone_verified")),
                    Some("username") => ("username", None),
                    _ => continue,
                };
                if let (Some(value), false) = (value, user.fields.contains_key(field)) {
                    user.fields.push(field, value);
                    if let (Some(vf), Some(v)) = (verified_field, verified) {
                        if !user.fields.contains_key(vf) {
                            user.fields.push(vf, v);
                        }
                    }
                }
            }
        }

        if !user.fields.contains_key("user_id") {
            let id = user
                .fields
                .get("alt_id")
                .or_else(|| user.fields.get("_id.$oid"))
                .or_else(|| user.fields.get("_id"))
                .map(str::to_string);
            match id {
                Some(id) => {
                    user.fields.push("user_id", &format!("auth0|{id}"));
                }
                None => return Err(RecordError::missing(pos, "user_id")),
            }
        }
        Ok(Some(user))
    }

    fn finish(&mut self, warnings: &mut Vec<String>) {
        for (alg, n) in &self.unsupported {
            warnings.push(format!(
                "{n} user(s) have a custom_password_hash of algorithm `{alg}`, whose salt and encoding are not self-describing: read without a password"
            ));
        }
    }
}

fn push_joined(list: &mut String, item: &str) {
    if !list.is_empty() {
        list.push(',');
    }
    list.push_str(item);
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::Format;
    use super::*;

    #[test]
    fn enterprise_identities_are_named_by_connection_and_passwordless_is_not_federated() {
        let text = concat!(
            r#"{"user_id":"samlp|acme|jo@acme.io","identities":[{"connection":"acme-saml","provider":"samlp","user_id":"acme|jo@acme.io","isSocial":false}]}"#,
            "\n",
            r#"{"user_id":"sms|1","identities":[{"connection":"sms","provider":"sms","user_id":"5f1","isSocial":false}]}"#,
            "\n",
            r#"{"user_id":"apple|001","identities":[{"connection":"apple","provider":"apple","user_id":"001.abc","isSocial":true},{"provider":"github","connection":"github","user_id":1234,"isSocial":true}]}"#,
        );
        let (users, errors, _) = read_all(Format::Auth0, text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            users[0].identities,
            vec![Identity::new("acme-saml", "acme|jo@acme.io")]
        );
        assert!(users[1].identities.is_empty());
        assert_eq!(
            users[2].identities,
            vec![
                Identity::new("apple", "001.abc"),
                Identity::new("github", "1234")
            ]
        );
    }

    #[test]
    fn user_export_line_with_identities_metadata_and_blocked() {
        let text = r#"{"user_id":"auth0|1","email":"a@x.io","email_verified":true,"blocked":true,"logins_count":3,"identities":[{"connection":"Username-Password-Authentication","provider":"auth0","user_id":"1","isSocial":false,"access_token":"secret"},{"connection":"google-oauth2","provider":"google-oauth2","user_id":"g1"}],"app_metadata":{"roles":["admin","ops"]},"user_metadata":{"plan":"pro"},"passwordHash":"$2b$10$abcdefghijklmnopqrstuu4JqzHGVVAzH4/Wx2.Ni3GvGUy.DZmBO"}"#;
        let (users, errors, _) = read_all(Format::Auth0, text);
        assert!(errors.is_empty());
        let u = &users[0];
        assert!(!u.enabled);
        assert!(
            matches!(u.password, Some(RawPassword::Encoded(ref h)) if h.starts_with("$2b$10$"))
        );
        assert_eq!(
            u.field("identities.0.connection"),
            Some("Username-Password-Authentication")
        );
        assert_eq!(u.field("identities.0.isSocial"), Some("false"));
        assert_eq!(
            u.field("identities.connections"),
            Some("Username-Password-Authentication,google-oauth2")
        );
        assert_eq!(u.field("identities.providers"), Some("auth0,google-oauth2"));
        assert_eq!(
            u.identities,
            vec![Identity::new("google-oauth2", "g1")],
            "the database connection `auth0` is not a federated identity"
        );
        assert_eq!(u.field("app_metadata.roles"), Some("admin,ops"));
        assert_eq!(u.field("user_metadata.plan"), Some("pro"));
        assert_eq!(u.field("logins_count"), Some("3"));
        assert!(u
            .fields
            .keys()
            .all(|k| !k.contains("access_token") && k != "passwordHash"));
    }

    #[test]
    fn password_hash_export_derives_user_id_and_email() {
        let text = concat!(
            r#"{"_id":{"$oid":"5dea9f9c82dd7c0e76e4ec93"},"passwordHash":"$2b$10$x","password_set_date":{"$date":"2019-12-06T18:36:12.412Z"},"tenant":"t","connection":"Username-Password-Authentication","identifiers":[{"type":"email","value":"u@x.io","verified":false}]}"#,
            "\n",
            r#"{"_id":{"$oid":"5dea"},"alt_id":"euclid","email":"e@x.io"}"#,
            "\n",
            r#"{"email":"nobody@x.io"}"#,
        );
        let (users, errors, _) = read_all(Format::Auth0, text);
        assert_eq!(users.len(), 2);
        assert_eq!(
            users[0].field("user_id"),
            Some("auth0|5dea9f9c82dd7c0e76e4ec93")
        );
        assert_eq!(users[0].field("email"), Some("u@x.io"));
        assert_eq!(users[0].field("email_verified"), Some("false"));
        assert_eq!(users[1].field("user_id"), Some("auth0|euclid"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].reason, Reason::MissingField);
        assert_eq!(errors[0].position.line, 3);
    }

    #[test]
    fn array_with_custom_password_hash() {
        let text = r#"[
          {"user_id":"auth0|a","custom_password_hash":{"algorithm":"argon2","hash":{"value":"$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA"}}},
          {"user_id":"auth0|b","custom_password_hash":{"algorithm":"sha256","hash":{"value":"abc","encoding":"hex"},"salt":{"value":"s","position":"prefix"}}}
        ]"#;
        let mut src = super::super::from_reader(
            Format::Auth0,
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            &Default::default(),
        )
        .unwrap();
        let a = src.next_record().unwrap().unwrap();
        assert!(
            matches!(a.password, Some(RawPassword::Encoded(ref h)) if h.starts_with("$argon2id$"))
        );
        let b = src.next_record().unwrap().unwrap();
        assert!(b.password.is_none());
        assert_eq!(b.field("custom_password_hash.algorithm"), Some("sha256"));
        assert!(b.fields.values().all(|v| v != "abc"));
        assert!(src.next_record().is_none());
        let w = src.take_warnings();
        assert!(w.iter().any(|w| w.contains("sha256")), "{w:?}");
    }
}
