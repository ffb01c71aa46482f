//! Firebase Authentication exports (`firebase auth:export`).
//!
//! Two shapes, told apart by the first non-blank byte:
//! - JSON (`{"users": [ {...}, ... ]}`, pretty-printed): the `users` array is streamed.
//! - CSV (`--format=csv`): no header row, columns by position, each row ending in a comma. Columns
//!   1–23 (UID, Email, Email Verified, Password Hash, Password Salt, Name, Photo URL, then Google,
//!   Facebook, Twitter and GitHub: ID, Email, Display Name, Photo URL each) are the same in every
//!   firebase-tools version; the columns after them changed five times (disabled, creation and
//!   sign-in times, phone number, custom claims, six more providers, in varying order). Each
//!   row's layout is recognised by its width and content, or set with `--firebase-layout`; see
//!   [`super::firebase_layout`]. A row that fits no layout is rejected with the reason. A first
//!   row starting with `UID` is taken as a header someone added.
//!
//! Both give the same field names (the JSON ones), so one mapping serves both: `localId`,
//! `email`, `emailVerified`, `displayName`, `photoUrl`, `phoneNumber`, `disabled`, `createdAt`,
//! `lastSignedInAt` (epoch milliseconds as text), `customAttributes` (the raw JSON text) plus its
//! top-level claims flattened as `customAttributes.<claim>`, and per linked provider
//! `google.rawId`, `google.email`, `google.displayName`, `google.photoUrl` (likewise `facebook`,
//! `twitter`, `github`; other provider ids lose a trailing `.com` and have dots made `_`, e.g.
//! `apple`, `gc_apple`, `playgames_google`) with all provider ids joined in `providers`.
//!
//! `passwordHash` + `salt` become [`RawPassword::Firebase`] (standard base64, as firebase-tools
//! writes them; URL-safe input is normalised). `disabled: true` makes the user disabled. A user
//! without `localId` is a `missing_field` error.

use super::csv_reader::{CsvRows, Row};
use super::error::{Reason, RecordError, SourceError};
use super::firebase_layout::LayoutPicker;
use super::input::Input;
use super::json::{flatten_members_at, flatten_value, get, parse, take, Fields, Json, Obj};
use super::json_stream::JsonRecords;
use super::{cell, CsvAdapter, CsvSource, JsonAdapter, JsonSource, Source, SourceOptions};
use crate::record::{Identity, LegacyUser, Position, RawPassword};

pub(crate) fn open(
    mut input: Input,
    first: Option<u8>,
    opts: &SourceOptions,
    warnings: &mut Vec<String>,
) -> Result<Box<dyn Source>, SourceError> {
    if matches!(first, Some(b'{' | b'[')) {
        let records = JsonRecords::array(input, opts.users_key(), opts.max_record_bytes())?;
        return Ok(Box::new(JsonSource::new(records, FirebaseJson::default())));
    }
    let location = input.location.clone();
    let header = match opts.has_header {
        Some(h) => h,
        None => {
            let buf = input.fill().map_err(|e| SourceError::io(&location, e))?;
            let starts_uid = buf.len() >= 4
                && buf[..3].eq_ignore_ascii_case(b"UID")
                && matches!(buf[3], b',' | b'\r' | b'\n');
            if starts_uid {
                warnings.push("first row looks like a header (UID,…): skipped".to_string());
            }
            starts_uid
        }
    };
    let mut rows = CsvRows::new(
        input,
        opts.delimiter.unwrap_or(b','),
        opts.max_record_bytes(),
    );
    if header {
        if let Some(Err(e)) = rows.next_header() {
            return Err(SourceError::invalid(&location, e.to_string()));
        }
    }
    Ok(Box::new(CsvSource::new(
        rows,
        FirebaseCsv {
            notes: Notes::default(),
            layouts: LayoutPicker::new(opts.firebase_layout),
        },
    )))
}

/// Counts of claims that could not be parsed, for the closing warning.
#[derive(Default)]
struct Notes {
    bad_custom_attributes: u64,
}

impl Notes {
    fn finish(&self, warnings: &mut Vec<String>) {
        if self.bad_custom_attributes > 0 {
            warnings.push(format!(
                "{} user(s) have customAttributes that are not a JSON object: kept as text only",
                self.bad_custom_attributes
            ));
        }
    }
}

#[derive(Default)]
pub(crate) struct FirebaseJson {
    notes: Notes,
}

impl JsonAdapter for FirebaseJson {
    const CAPTURE: &'static [&'static str] = &[
        "passwordHash",
        "salt",
        "providerUserInfo",
        "customAttributes",
        "disabled",
    ];

    fn convert(
        &mut self,
        mut obj: Obj<'_>,
        mut fields: Fields,
        pos: Position,
    ) -> Result<Option<LegacyUser>, RecordError> {
        let mut user = LegacyUser::new(pos);
        let hash = take_string(&mut obj, "passwordHash", pos)?;
        let salt = take_string(&mut obj, "salt", pos)?;
        set_password(&mut user, hash.as_deref(), salt.as_deref());

        if let Some(Json::Arr(infos)) = take(&mut obj, "providerUserInfo") {
            let mut providers = String::new();
            for info in infos {
                let Json::Obj(mut members) = info else {
                    continue;
                };
                let Some(id) = take(&mut members, "providerId").and_then(Json::into_scalar_string)
                else {
                    continue;
                };
                // `password` and `phone` are Firebase's own sign-in, not a federated identity.
                if !NOT_FEDERATED.contains(&id.as_str()) {
                    if let Some(raw) = get(&members, "rawId").and_then(Json::scalar_text) {
                        if !raw.is_empty() {
                            user.identities.push(Identity::new(id.as_str(), raw));
                        }
                    }
                }
                if !providers.is_empty() {
                    providers.push(',');
                }
                providers.push_str(&id);
                let mut prefix = provider_prefix(&id);
                flatten_members_at(&mut prefix, members, &mut fields);
            }
            if !providers.is_empty() {
                fields.push("providers", &providers);
            }
        }
        if let Some(raw) = take_string(&mut obj, "customAttributes", pos)? {
            custom_attributes(&mut fields, &raw, &mut self.notes);
        }
        if let Some(disabled) = take(&mut obj, "disabled") {
            if disabled == Json::Bool(true) {
                user.enabled = false;
            }
            flatten_value(&mut "disabled".to_string(), disabled, &mut fields);
        }
        user.fields = fields;
        if !user.fields.contains_key("lastSignedInAt") {
            if let Some(v) = user.fields.get("lastLoginAt").map(str::to_string) {
                user.fields.push("lastSignedInAt", &v);
            }
        }
        if user.field("localId").is_none() {
            return Err(RecordError::missing(pos, "localId"));
        }
        Ok(Some(user))
    }

    fn finish(&mut self, warnings: &mut Vec<String>) {
        self.notes.finish(warnings);
    }
}

pub(crate) struct FirebaseCsv {
    notes: Notes,
    layouts: LayoutPicker,
}

impl CsvAdapter for FirebaseCsv {
    fn convert(&mut self, row: &Row<'_>) -> Result<Option<LegacyUser>, RecordError> {
        let pos = row.position;
        let layout = self.layouts.pick(row)?;
        let mut user = LegacyUser::new(pos);
        let mut fields = Fields::with_capacity(256, 16);
        let mut hash = None;
        let mut salt = None;
        for i in 0..layout.width() {
            if row.get(i).is_empty() {
                continue;
            }
            let name = layout.field(i);
            let v = cell(row, i, name)?;
            match name {
                "passwordHash" => hash = Some(v),
                "salt" => salt = Some(v),
                "customAttributes" => custom_attributes(&mut fields, v, &mut self.notes),
                _ => {
                    if name == "disabled" && v == "true" {
                        user.enabled = false;
                    }
                    fields.push(name, v);
                }
            }
        }
        set_password(&mut user, hash, salt);
        let mut providers = String::new();
        for (col, id) in layout.providers() {
            let raw = cell(row, col, id)?.trim();
            if !raw.is_empty() {
                user.identities.push(Identity::new(id, raw));
                if !providers.is_empty() {
                    providers.push(',');
                }
                providers.push_str(id);
            }
        }
        if !providers.is_empty() {
            fields.push("providers", &providers);
        }
        user.fields = fields;
        if user.field("localId").is_none() {
            return Err(RecordError::missing(pos, "localId"));
        }
        Ok(Some(user))
    }

    fn finish(&mut self, warnings: &mut Vec<String>) {
        self.layouts.finish(warnings);
        self.notes.finish(warnings);
    }
}

/// Firebase provider ids that are Firebase's own sign-in, not another identity provider.
const NOT_FEDERATED: [&str; 2] = ["password", "phone"];

/// `google.com` → `google`, `apple.com` → `apple`, `oidc.corp` → `oidc_corp`.
fn provider_prefix(id: &str) -> String {
    id.strip_suffix(".com").unwrap_or(id).replace('.', "_")
}

fn take_string(obj: &mut Obj<'_>, key: &str, pos: Position) -> Result<Option<String>, RecordError> {
    match take(obj, key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Str(s)) => Ok(Some(s.into_owned())),
        Some(_) => {
            Err(RecordError::new(pos, Reason::BadValue, "expected a string").with_field(key))
        }
    }
}

/// Standard base64 from either alphabet.
fn standard_base64(s: &str) -> String {
    if s.contains(['-', '_']) {
        s.replace('-', "+").replace('_', "/")
    } else {
        s.to_string()
    }
}

fn set_password(user: &mut LegacyUser, hash: Option<&str>, salt: Option<&str>) {
    if let Some(hash) = hash.filter(|h| !h.is_empty()) {
        user.password = Some(RawPassword::Firebase {
            hash: standard_base64(hash),
            salt: standard_base64(salt.unwrap_or("")),
        });
    }
}

/// Keeps the raw claims text and flattens a JSON object's members as `customAttributes.<k>`.
fn custom_attributes(fields: &mut Fields, raw: &str, notes: &mut Notes) {
    fields.push("customAttributes", raw);
    match parse(raw) {
        Ok(Json::Obj(members)) => {
            let mut prefix = String::from("customAttributes");
            flatten_members_at(&mut prefix, members, fields);
        }
        _ => notes.bad_custom_attributes += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read_all;
    use super::super::Format;
    use super::*;

    #[test]
    fn json_export_with_providers_claims_and_disabled() {
        let text = r#"{"users": [
{
  "localId": "uid1",
  "email": "a@x.io",
  "emailVerified": true,
  "passwordHash": "aGFz-aA_=",
  "salt": "c2FsdA==",
  "displayName": "Ann Lee",
  "lastLoginAt": "1690000000000",
  "createdAt": "1680000000000",
  "disabled": true,
  "customAttributes": "{\"role\":\"admin\",\"tier\":2}",
  "providerUserInfo": [
    {"providerId": "google.com", "rawId": "g-1", "email": "a@gmail.com", "displayName": "Ann"},
    {"providerId": "password", "rawId": "a@x.io"}
  ]
},
{"email": "no-uid@x.io"}
]}"#;
        let (users, errors, _) = read_all(Format::Firebase, text);
        assert_eq!(users.len(), 1);
        let u = &users[0];
        assert!(!u.enabled);
        assert_eq!(
            u.password,
            Some(RawPassword::Firebase {
                hash: "aGFz+aA/=".into(),
                salt: "c2FsdA==".into()
            })
        );
        assert_eq!(u.field("google.rawId"), Some("g-1"));
        assert_eq!(u.field("password.rawId"), Some("a@x.io"));
        assert_eq!(u.field("providers"), Some("google.com,password"));
        assert_eq!(u.field("customAttributes.role"), Some("admin"));
        assert_eq!(u.field("customAttributes.tier"), Some("2"));
        assert_eq!(u.field("lastSignedInAt"), Some("1690000000000"));
        assert_eq!(u.field("emailVerified"), Some("true"));
        assert!(!u.fields.contains_key("passwordHash") && !u.fields.contains_key("salt"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].position.line, 18);
        assert_eq!(errors[0].reason, Reason::MissingField);
    }

    #[test]
    fn csv_export_by_position_with_trailing_comma() {
        let row1 = "uid1,a@x.io,true,aGFzaA==,c2FsdA==,\"Lee, Ann\",,g-1,a@gmail.com,Ann,,,,,,,,,,,,,,1680000000000,1690000000000,+14155550100,false,\"{\"\"role\"\":\"\"admin\"\"}\",";
        let row2 = "uid2,b@x.io,false,,,Bob,,,,,,,,,,,,,,gh-2,,,,1680000000001,,,true,,";
        let row3 = "uid3,c@x.io,false,,,,,,,,,,,,,,,,,,,,,1680000000002,2,,,,extra";
        let text = format!("{row1}\r\n{row2}\r\n{row3}\r\n");
        let (users, errors, _) = read_all(Format::Firebase, &text);
        assert_eq!(users.len(), 2);
        let a = &users[0];
        assert_eq!(a.field("displayName"), Some("Lee, Ann"));
        assert_eq!(a.field("google.rawId"), Some("g-1"));
        assert_eq!(a.field("phoneNumber"), Some("+14155550100"));
        assert_eq!(a.field("customAttributes.role"), Some("admin"));
        assert_eq!(a.field("providers"), Some("google.com"));
        assert!(a.enabled);
        assert!(matches!(a.password, Some(RawPassword::Firebase { .. })));
        let b = &users[1];
        assert!(!b.enabled);
        assert!(b.password.is_none());
        assert_eq!(b.field("providers"), Some("github.com"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].position.record, 3);
        assert_eq!(errors[0].position.line, 3);
    }

    #[test]
    fn csv_with_an_added_header_row_skips_it() {
        let text = "UID,Email\nuid1,a@x.io,false,,,,,,,,,,,,,,,,,,,,,1,2,,,,\n";
        let (users, errors, warnings) = read_all(Format::Firebase, text);
        assert!(errors.is_empty());
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].position.record, 1);
        assert_eq!(users[0].position.line, 2);
        assert!(warnings.iter().any(|w| w.contains("header")));
    }

    fn real(name: &str) -> String {
        format!(
            "{}/tests/fixtures/real/firebase/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    fn read_real(
        name: &str,
        opts: &SourceOptions,
    ) -> (Vec<LegacyUser>, Vec<RecordError>, Vec<String>) {
        let bytes = std::fs::read(real(name)).unwrap();
        super::super::tests::read_all_with(Format::Firebase, &bytes, opts)
    }

    fn ids(users: &[LegacyUser]) -> Vec<&str> {
        users.iter().map(|u| u.field("localId").unwrap()).collect()
    }

    /// The rows each historical firebase-tools version wrote (generate.js runs their own row
    /// function): every layout is recognised, the fields land in the same names, and a display
    /// name with an unquoted comma (before v6.11) is rejected, not read shifted.
    #[test]
    fn every_historical_csv_layout_is_recognised() {
        let all = [
            "0",
            "1",
            "6",
            "scrypt-user",
            "phone-user",
            "google-user",
            "comma-user",
            "claims-user",
        ];
        for (file, layout, shifted) in [
            ("firebase-tools-v3.3.csv", "v3.3", true),
            ("firebase-tools-v3.12.csv", "v3.12", true),
            ("firebase-tools-v4.1.csv", "v4.1", true),
            ("firebase-tools-v7.12.csv", "v7.12", false),
            ("firebase-tools-v8.13.csv", "v8.13", false),
            ("firebase-tools-v15.19.csv", "v15.19", false),
        ] {
            let (users, errors, warnings) = read_real(file, &SourceOptions::default());
            let expected: Vec<&str> = all
                .iter()
                .copied()
                .filter(|id| !(shifted && *id == "comma-user"))
                .collect();
            assert_eq!(ids(&users), expected, "{file}");
            if shifted {
                assert_eq!(errors.len(), 1, "{file}: {errors:?}");
                assert_eq!(errors[0].position.record, 7, "{file}");
                assert_eq!(errors[0].reason, Reason::MalformedRecord, "{file}");
                assert!(
                    errors[0].message.contains("unquoted comma"),
                    "{file}: {}",
                    errors[0].message
                );
            } else {
                assert!(errors.is_empty(), "{file}: {errors:?}");
            }
            let by_id = |id: &str| {
                users
                    .iter()
                    .find(|u| u.field("localId") == Some(id))
                    .unwrap()
            };
            let scrypt = by_id("scrypt-user");
            assert_eq!(scrypt.field("createdAt"), Some("1486324027000"), "{file}");
            assert_eq!(
                scrypt.field("lastSignedInAt"),
                Some("1486324027001"),
                "{file}"
            );
            assert!(matches!(
                scrypt.password,
                Some(RawPassword::Firebase { .. })
            ));
            let google = by_id("google-user");
            assert_eq!(google.field("google.rawId"), Some("104857392018475619283"));
            assert_eq!(google.field("providers"), Some("google.com"));
            assert_eq!(google.field("createdAt"), Some("1600000000000"), "{file}");
            // v3.3 had no phone column; `disabled` was dropped from v4.1 to v7.12.
            let phone = by_id("phone-user").field("phoneNumber");
            assert_eq!(
                phone,
                (layout != "v3.3").then_some("+15555550100"),
                "{file}"
            );
            let has_disabled = layout != "v4.1";
            assert_eq!(by_id("0").enabled, !has_disabled, "{file}");
            assert!(by_id("1").enabled, "{file}");
            assert!(by_id("0").field("lastSignedInAt").is_none(), "{file}");
            let claims = by_id("claims-user").field("customAttributes.role");
            let has_claims = matches!(layout, "v8.13" | "v15.19");
            assert_eq!(claims, has_claims.then_some("admin"), "{file}");
            let microsoft = by_id("6").field("microsoft.rawId");
            assert_eq!(microsoft, (layout == "v15.19").then_some("123234234"));
            let noted = warnings.iter().any(|w| w.contains(layout));
            assert_eq!(
                noted, !has_claims,
                "{file}: older layouts are noted: {warnings:?}"
            );
        }
    }

    #[test]
    fn a_chosen_layout_is_used_and_a_row_that_does_not_fit_it_names_the_column() {
        let opts = SourceOptions {
            firebase_layout: Some(super::super::FirebaseLayout::V3_12),
            ..Default::default()
        };
        // v4.1 rows read as v3.12: 27 fields are v3.12 without its trailing comma, but the
        // creation time is not a boolean.
        let (users, errors, _) = read_real("firebase-tools-v4.1.csv", &opts);
        assert_eq!(ids(&users), ["0", "1", "6", "comma-user"]);
        let bad: Vec<(u64, Option<&str>)> = errors
            .iter()
            .map(|e| (e.position.record, e.field.as_deref()))
            .collect();
        assert_eq!(
            bad,
            [
                (4, Some("disabled")),
                (5, Some("disabled")),
                (6, Some("disabled")),
                (8, Some("disabled"))
            ]
        );
        assert!(errors[0].message.contains("column 24 is not true or false"));
        assert_eq!(users[3].field("phoneNumber"), None);
    }

    #[test]
    fn rows_of_another_layout_than_the_file_and_ambiguous_rows_are_rejected() {
        let v8 = "a,a@x.io,false,,,,,,,,,,,,,,,,,,,,,1600000000000,1600000000001,,false,,";
        let v3_12 = "b,b@x.io,false,,,,,,,,,,,,,,,,,,,,,true,1600000000000,1600000000001,,";
        // 27 fields: v3.12 (disabled, createdAt, lastLoginAt, phone) or v4.1 + trailing comma
        // would read column 25 as sign-in resp. creation time differently.
        let short = "c,c@x.io,false,,,,,,,,,,,,,,,,,,,,,,1600000000000,,";
        let text = format!("{v8}\n{v3_12}\n");
        let (users, errors, _) = read_all(Format::Firebase, &text);
        assert_eq!(users.len(), 1);
        assert_eq!(errors[0].position.record, 2);
        assert!(errors[0]
            .message
            .contains("up to record 1 fit only the v8.13"));
        let (users, errors, _) = read_all(Format::Firebase, &format!("{short}\n"));
        assert!(users.is_empty());
        assert!(
            errors[0].message.contains("read its columns differently"),
            "{}",
            errors[0].message
        );
        let (_, errors, _) = read_all(Format::Firebase, "a,b,c\n");
        assert!(errors[0].message.contains("row has 3 fields"));
    }
}
