//! Django user exports.
//!
//! Three shapes, told apart by the first non-blank byte:
//! - `[`: `manage.py dumpdata auth.user` (JSON array of `{"model", "pk", "fields": {...}}`);
//! - `{`: the same with `--format jsonl` (one entry per line);
//! - anything else: a CSV of the `auth_user` table with a header row (`id, password, last_login,
//!   is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined`, as
//!   written by `COPY auth_user TO ... CSV HEADER` or a MySQL/SQLite export; delimiter sniffed).
//!
//! Which JSON entries are users: with [`SourceOptions::django_model`] (`--django-model`) set,
//! exactly that model's; otherwise
//! `auth.user` and any model whose fields have a `password` (custom user models all inherit it
//! from `AbstractBaseUser`). Other entries (groups, permissions, content types of a whole-database
//! dump) are skipped with one closing warning counting them by model; they keep their place in
//! the record numbering.
//!
//! Fields are the model's field names, plus `id` from `pk` (CSV: the `id` column).
//! - `password` becomes [`RawPassword::Encoded`] (`pbkdf2_sha256$…`, `bcrypt_sha256$…`,
//!   `argon2$…`, …) and is removed from `fields`. An unusable password (`!…`, as set by
//!   `set_unusable_password()`) or an empty one gives no password and the field
//!   `password_unusable = "true"`.
//! - `groups` become [`LegacyUser::groups`]: group ids as text, or names with
//!   `--natural-foreign`. `user_permissions` are joined in a field (`app_label.codename` for
//!   natural keys).
//! - `is_active` false makes the user disabled; in CSV it may be written `true`/`false`, `t`/`f`
//!   or `1`/`0` (anything else is a `bad_value` error). In CSV, `\N` (SQL NULL) means absent.

use std::collections::BTreeMap;

use super::csv_reader::Row;
use super::error::{Reason, RecordError, SourceError};
use super::generic::{csv_rows_with_header, CsvColumns};
use super::input::Input;
use super::json::{flatten_members, get, take, Fields, Json, Obj};
use super::json_stream::JsonRecords;
use super::{parse_bool, CsvAdapter, CsvSource, JsonAdapter, JsonSource, Source, SourceOptions};
use crate::record::{LegacyUser, Position, RawPassword};

/// The columns of Django's `auth_user` table, for a CSV without a header row.
const AUTH_USER_COLUMNS: [&str; 11] = [
    "id",
    "password",
    "last_login",
    "is_superuser",
    "username",
    "first_name",
    "last_name",
    "email",
    "is_staff",
    "is_active",
    "date_joined",
];

pub(crate) fn open(
    mut input: Input,
    first: Option<u8>,
    opts: &SourceOptions,
    warnings: &mut Vec<String>,
) -> Result<Box<dyn Source>, SourceError> {
    let adapter = DjangoJson {
        model: opts.django_model.clone(),
        skipped: BTreeMap::new(),
    };
    match first {
        Some(b'[') => {
            let records = JsonRecords::array(input, opts.users_key(), opts.max_record_bytes())?;
            Ok(Box::new(JsonSource::new(records, adapter)))
        }
        Some(b'{') => {
            let records = JsonRecords::ndjson(input, opts.max_record_bytes());
            Ok(Box::new(JsonSource::new(records, adapter)))
        }
        _ => {
            let header = match opts.has_header {
                Some(h) => h,
                // A header names the password column; a data row does not.
                None => {
                    let location = input.location.clone();
                    let buf = input.fill().map_err(|e| SourceError::io(&location, e))?;
                    let line = &buf[..memchr::memchr(b'\n', buf).unwrap_or(buf.len())];
                    let named = line.windows(8).any(|w| w.eq_ignore_ascii_case(b"password"));
                    if !named && !line.is_empty() {
                        warnings.push(format!(
                            "no header row: columns taken in auth_user's order ({})",
                            AUTH_USER_COLUMNS.join(", ")
                        ));
                    }
                    named || line.is_empty()
                }
            };
            let (rows, names) = csv_rows_with_header(input, opts, header, warnings)?;
            let names = match names {
                Some(names) => names,
                None if header => Vec::new(),
                None => AUTH_USER_COLUMNS.iter().map(|c| c.to_string()).collect(),
            };
            if !names.is_empty() && !names.iter().any(|n| n == "password") {
                warnings.push("the CSV has no `password` column".to_string());
            }
            Ok(Box::new(CsvSource::new(
                rows,
                DjangoCsv {
                    columns: CsvColumns::new(names),
                },
            )))
        }
    }
}

pub(crate) struct DjangoJson {
    model: Option<String>,
    /// Entries skipped, by model.
    skipped: BTreeMap<String, u64>,
}

impl JsonAdapter for DjangoJson {
    const CAPTURE: &'static [&'static str] = &["model", "pk", "fields"];

    /// Only `fields` (and `pk`) make the user; other top-level members are ignored.
    fn convert(
        &mut self,
        mut obj: Obj<'_>,
        _top_level: Fields,
        pos: Position,
    ) -> Result<Option<LegacyUser>, RecordError> {
        let model = get(&obj, "model")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let fields = match take(&mut obj, "fields") {
            Some(Json::Obj(f)) => f,
            _ => {
                return Err(RecordError::new(
                    pos,
                    Reason::MalformedRecord,
                    "a dumpdata entry needs a `fields` object",
                ))
            }
        };
        let is_user = match &self.model {
            Some(m) => model.eq_ignore_ascii_case(m),
            None => model == "auth.user" || get(&fields, "password").is_some(),
        };
        if !is_user {
            let name = if model.is_empty() {
                "(no model)"
            } else {
                &model
            };
            *self.skipped.entry(name.to_string()).or_default() += 1;
            return Ok(None);
        }
        let mut fields = fields;
        let mut user = LegacyUser::new(pos);
        let mut flat = Fields::with_capacity(256, 16);

        let password = take(&mut fields, "password");
        if let Some(Json::Arr(groups)) = take(&mut fields, "groups") {
            for g in groups {
                if let Some(name) = natural_key(g, "/") {
                    user.groups.push(name);
                }
            }
        }
        if let Some(Json::Arr(perms)) = take(&mut fields, "user_permissions") {
            let mut joined = String::new();
            for p in perms {
                // Natural key: [codename, app_label, model].
                let text = match p {
                    Json::Arr(parts) if parts.len() >= 2 => {
                        match (parts[1].scalar_text(), parts[0].scalar_text()) {
                            (Some(app), Some(code)) => Some(format!("{app}.{code}")),
                            _ => None,
                        }
                    }
                    other => natural_key(other, "."),
                };
                if let Some(t) = text {
                    if !joined.is_empty() {
                        joined.push(',');
                    }
                    joined.push_str(&t);
                }
            }
            if !joined.is_empty() {
                flat.push("user_permissions", &joined);
            }
        }
        if get(&fields, "is_active") == Some(&Json::Bool(false)) {
            user.enabled = false;
        }
        if let Some(pk) = take(&mut obj, "pk").and_then(Json::into_scalar_string) {
            flat.push("id", &pk);
        }
        flatten_members(fields, &mut flat);
        user.fields = flat;
        match password {
            None => {}
            Some(Json::Null) => mark_unusable(&mut user),
            Some(Json::Str(p)) => set_password(&mut user, &p),
            Some(_) => {
                return Err(RecordError::new(pos, Reason::BadValue, "expected a string")
                    .with_field("password"))
            }
        }
        Ok(Some(user))
    }

    fn finish(&mut self, warnings: &mut Vec<String>) {
        if !self.skipped.is_empty() {
            let total: u64 = self.skipped.values().sum();
            let by_model: Vec<String> = self
                .skipped
                .iter()
                .map(|(m, n)| format!("{m}: {n}"))
                .collect();
            warnings.push(format!(
                "{total} entries that are not users skipped ({})",
                by_model.join(", ")
            ));
        }
    }
}

/// A foreign key as dumped: a pk, or a natural key (list) joined with `sep`.
fn natural_key(v: Json<'_>, sep: &str) -> Option<String> {
    match v {
        Json::Arr(parts) => {
            let texts: Vec<&str> = parts.iter().filter_map(Json::scalar_text).collect();
            (!texts.is_empty()).then(|| texts.join(sep))
        }
        other => other.into_scalar_string(),
    }
}

fn mark_unusable(user: &mut LegacyUser) {
    user.fields.insert("password_unusable", "true");
}

fn set_password(user: &mut LegacyUser, encoded: &str) {
    if encoded.is_empty() || encoded.starts_with('!') {
        mark_unusable(user);
    } else {
        user.password = Some(RawPassword::Encoded(encoded.to_string()));
    }
}

pub(crate) struct DjangoCsv {
    columns: CsvColumns,
}

impl CsvAdapter for DjangoCsv {
    fn convert(&mut self, row: &Row<'_>) -> Result<Option<LegacyUser>, RecordError> {
        let mut fields = Fields::with_capacity(256, self.columns.names().len());
        self.columns.fill(row, &mut fields)?;
        // SQL NULL as MySQL and psql's text format write it.
        fields.retain(|_, v| v != "\\N");
        let mut user = LegacyUser::new(row.position);
        user.fields = fields;
        if let Some(p) = user.fields.remove("password") {
            set_password(&mut user, &p);
        } else if self.columns.names().iter().any(|n| n == "password") {
            mark_unusable(&mut user);
        }
        if let Some(active) = user.fields.get("is_active") {
            match parse_bool(active) {
                Some(true) => {}
                Some(false) => user.enabled = false,
                None => {
                    return Err(RecordError::new(
                        row.position,
                        Reason::BadValue,
                        "expected a boolean (true/false, t/f, 1/0)",
                    )
                    .with_field("is_active"))
                }
            }
        }
        Ok(Some(user))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::Format;
    use super::*;

    #[test]
    fn dumpdata_with_natural_keys_other_models_and_unusable_password() {
        let text = r#"[
{"model": "auth.permission", "pk": 1, "fields": {"name": "Can add", "content_type": 1, "codename": "add_x"}},
{"model": "auth.user", "pk": 7, "fields": {"password": "pbkdf2_sha256$600000$salt$hash=", "last_login": null, "is_superuser": false, "username": "ann", "first_name": "Ann", "email": "ann@x.io", "is_active": true, "groups": [["editors"], 3], "user_permissions": [["add_x", "blog", "post"]]}},
{"model": "auth.user", "pk": 8, "fields": {"password": "!Xyz", "username": "bob", "is_active": false, "groups": [], "user_permissions": []}},
{"model": "accounts.customuser", "pk": 9, "fields": {"password": "argon2$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", "email": "c@x.io"}},
{"model": "auth.user", "pk": 10}
]"#;
        let (users, errors, warnings) = read_all(Format::Django, text);
        assert_eq!(users.len(), 3);
        let ann = &users[0];
        assert_eq!(ann.position.record, 2);
        assert_eq!(ann.field("id"), Some("7"));
        assert_eq!(ann.groups, vec!["editors", "3"]);
        assert_eq!(ann.field("user_permissions"), Some("blog.add_x"));
        assert!(
            matches!(ann.password, Some(RawPassword::Encoded(ref p)) if p.starts_with("pbkdf2_sha256$"))
        );
        assert!(!ann.fields.contains_key("password"));
        assert!(!ann.fields.contains_key("last_login"));
        let bob = &users[1];
        assert!(!bob.enabled);
        assert!(bob.password.is_none());
        assert_eq!(bob.field("password_unusable"), Some("true"));
        assert_eq!(users[2].field("email"), Some("c@x.io"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].position.record, 5);
        assert_eq!(errors[0].position.line, 6);
        assert!(warnings.iter().any(|w| w.contains("auth.permission: 1")));
    }

    #[test]
    fn csv_of_auth_user_with_sql_nulls_and_booleans() {
        let text = "id;password;last_login;is_superuser;username;email;is_active\n\
                    1;pbkdf2_sha256$1$s$h;\\N;t;ann;ann@x.io;t\n\
                    2;!unusable;2024-01-01;f;bob;bob@x.io;0\n\
                    3;bcrypt_sha256$$2b$12$x;;f;cy;cy@x.io;maybe\n";
        let (users, errors, warnings) = read_all(Format::Django, text);
        assert_eq!(users.len(), 2);
        assert!(!users[0].fields.contains_key("last_login"));
        assert_eq!(users[0].field("id"), Some("1"));
        assert!(users[0].enabled);
        assert!(!users[1].enabled);
        assert_eq!(users[1].field("password_unusable"), Some("true"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field.as_deref(), Some("is_active"));
        assert_eq!(errors[0].position.line, 4);
        assert!(warnings.iter().any(|w| w.contains("delimiter")));
    }

    #[test]
    fn csv_without_header_uses_the_auth_user_columns() {
        let text = "1,pbkdf2_sha256$1$s$h,,t,ann,Ann,Lee,ann@x.io,t,t,2023-03-14 09:26:53+00\n";
        let (users, errors, warnings) = read_all(Format::Django, text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(users[0].field("username"), Some("ann"));
        assert_eq!(users[0].field("email"), Some("ann@x.io"));
        assert_eq!(users[0].position.line, 1);
        assert!(matches!(users[0].password, Some(RawPassword::Encoded(_))));
        assert!(
            warnings.iter().any(|w| w.contains("no header row")),
            "{warnings:?}"
        );
    }
}
