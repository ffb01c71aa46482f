//! Tests across the source readers: the sample exports in `samples/`, edge cases of the generic
//! formats, positions and byte offsets, gzip, and streaming in bounded memory.

use std::io::{self, BufRead, BufReader, Cursor, Read, Write};

use super::*;
use crate::record::RawPassword;

/// Reads everything from `text` as `format` with default options.
pub(crate) fn read_all(
    format: Format,
    text: &str,
) -> (Vec<LegacyUser>, Vec<RecordError>, Vec<String>) {
    read_all_with(format, text.as_bytes(), &SourceOptions::default())
}

pub(crate) fn read_all_with(
    format: Format,
    bytes: &[u8],
    opts: &SourceOptions,
) -> (Vec<LegacyUser>, Vec<RecordError>, Vec<String>) {
    let src = from_reader(format, Box::new(Cursor::new(bytes.to_vec())), opts).unwrap();
    drain(src)
}

fn drain(mut src: Box<dyn Source>) -> (Vec<LegacyUser>, Vec<RecordError>, Vec<String>) {
    let mut users = Vec::new();
    let mut errors = Vec::new();
    while let Some(r) = src.next_record() {
        match r {
            Ok(u) => users.push(u),
            Err(e) => errors.push(e),
        }
    }
    (users, errors, src.take_warnings())
}

fn sample_path(rel: &str) -> String {
    format!("{}/samples/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn fixture_path(rel: &str) -> String {
    format!(
        "{}/tests/fixtures/sources/{rel}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Reads a sample file, checking on every record and error that its line is the one its byte
/// offset falls on and that the offset is where a record starts.
fn read_sample(format: Format, rel: &str) -> (Vec<LegacyUser>, Vec<RecordError>, Vec<String>) {
    let path = sample_path(rel);
    let bytes = std::fs::read(&path).unwrap();
    let (users, errors, warnings) = drain(open(format, &path, &SourceOptions::default()).unwrap());
    let positions = users
        .iter()
        .map(|u| u.position)
        .chain(errors.iter().map(|e| e.position));
    for p in positions {
        let off = p.byte_offset as usize;
        assert_eq!(
            p.line,
            1 + bytes[..off].iter().filter(|&&b| b == b'\n').count() as u64,
            "{rel}: {p:?}: line does not match the offset"
        );
        assert!(
            off == 0
                || bytes[off - 1] == b'\n'
                || bytes[off - 1] == b' '
                || bytes[off - 1] == b'\t',
            "{rel}: {p:?}: offset not at a record start"
        );
        let first = bytes[off];
        assert!(!first.is_ascii_whitespace(), "{rel}: {p:?}");
    }
    (users, errors, warnings)
}

fn summary(errors: &[RecordError]) -> Vec<(u64, u64, &'static str, Option<String>)> {
    errors
        .iter()
        .map(|e| {
            (
                e.position.record,
                e.position.line,
                e.reason.as_str(),
                e.field.clone(),
            )
        })
        .collect()
}

fn usernames<'a>(users: &'a [LegacyUser], field: &str) -> Vec<&'a str> {
    users
        .iter()
        .map(|u| u.field(field).unwrap_or("-"))
        .collect()
}

#[test]
fn sample_auth0() {
    let (users, errors, warnings) = read_sample(Format::Auth0, "auth0/users.ndjson");
    assert_eq!(users.len(), 11);
    assert_eq!(summary(&errors), vec![(5, 5, "invalid_json", None)]);
    assert!(!errors[0].fatal);
    assert!(warnings.is_empty(), "{warnings:?}");
    let with_password = users
        .iter()
        .filter(|u| matches!(u.password, Some(RawPassword::Encoded(_))))
        .count();
    assert_eq!(with_password, 9);
    let dave = &users[3];
    assert!(!dave.enabled);
    assert!(users.iter().filter(|u| !u.enabled).count() == 1);
    assert_eq!(
        users[2].field("identities.0.provider"),
        Some("google-oauth2")
    );
    assert_eq!(users[0].field("app_metadata.roles"), Some("admin,billing"));
    assert_eq!(users[4].field("email"), None, "frank has no email");
    assert_eq!(users[6].field("name"), Some("Héloïse Dubois"));
}

#[test]
fn sample_firebase_json_and_csv_give_the_same_fields() {
    let (users, errors, warnings) = read_sample(Format::Firebase, "firebase/users.json");
    assert_eq!(users.len(), 9);
    assert_eq!(
        summary(&errors),
        vec![(5, 53, "missing_field", Some("localId".into()))]
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let (csv_users, csv_errors, csv_warnings) = read_sample(Format::Firebase, "firebase/users.csv");
    assert_eq!(csv_users.len(), 8);
    assert_eq!(
        summary(&csv_errors),
        vec![
            (5, 5, "missing_field", Some("localId".into())),
            (9, 9, "malformed_record", None)
        ]
    );
    assert!(csv_warnings.is_empty(), "{csv_warnings:?}");
    // Same users (ivan's CSV row is the broken one), same field names and values.
    let json_by_id: std::collections::BTreeMap<_, _> = users
        .iter()
        .map(|u| (u.field("localId").unwrap(), u))
        .collect();
    for c in &csv_users {
        let j = json_by_id[c.field("localId").unwrap()];
        // firebase-tools writes `false` in the CSV where the JSON has no emailVerified.
        for (k, v) in c.fields.iter().filter(|(k, _)| *k != "emailVerified") {
            assert_eq!(
                j.fields.get(k),
                Some(v),
                "field {k} of {:?}",
                c.field("localId")
            );
        }
        for (k, v) in &j.fields {
            assert_eq!(
                c.fields.get(k),
                Some(v),
                "field {k} of {:?}",
                c.field("localId")
            );
        }
        assert_eq!(c.enabled, j.enabled);
        assert_eq!(c.password.is_some(), j.password.is_some());
    }
    let firebase_passwords = users
        .iter()
        .filter(|u| matches!(u.password, Some(RawPassword::Firebase { .. })))
        .count();
    assert_eq!(firebase_passwords, 7);
    assert!(
        !users
            .iter()
            .find(|u| u.field("displayName") == Some("Dave Okafor"))
            .unwrap()
            .enabled
    );
    let bob = users
        .iter()
        .find(|u| u.field("displayName") == Some("Bob Martin"))
        .unwrap();
    assert_eq!(bob.field("customAttributes.role"), Some("admin"));
    let carol = users
        .iter()
        .find(|u| u.field("displayName") == Some("Carol Smith"))
        .unwrap();
    assert_eq!(carol.field("google.rawId"), Some("104857392018475619283"));
    assert_eq!(carol.field("providers"), Some("google.com"));
}

#[test]
fn sample_keycloak() {
    let (users, errors, warnings) = read_sample(Format::Keycloak, "keycloak/realm-export.json");
    assert_eq!(users.len(), 9);
    // ivan's password credential has no secretData: he is read, without a password.
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        warnings,
        vec![
            "1 service-account user(s) skipped (--include-service-accounts reads them)",
            "1 user(s) have a password credential without `secretData`/`credentialData` or `hashedSaltedValue`/`salt`/`algorithm`: read without a password"
        ]
    );
    assert_eq!(
        usernames(&users, "username"),
        vec!["alice", "bob", "carol", "dave", "frank", "grace", "heidi", "ivan", "judy"]
    );
    assert!(users[7].password.is_none());
    let keycloak_passwords = users
        .iter()
        .filter(|u| matches!(u.password, Some(RawPassword::Keycloak { .. })))
        .count();
    assert_eq!(keycloak_passwords, 7);
    assert_eq!(users[1].groups, vec!["staff/admins"]);
    assert_eq!(users[6].groups, vec!["staff", "sales/emea"]);
    assert_eq!(users[6].field("credentials.types"), Some("password,otp"));
    assert!(!users[3].enabled);
    assert_eq!(
        users[1].field("attributes.phoneNumber"),
        Some("+14155550123")
    );
    assert_eq!(
        users[2].field("federatedIdentities.0.identityProvider"),
        Some("google")
    );

    let opts = SourceOptions {
        include_service_accounts: true,
        ..Default::default()
    };
    let (all, _, warnings) = drain(
        open(
            Format::Keycloak,
            &sample_path("keycloak/realm-export.json"),
            &opts,
        )
        .unwrap(),
    );
    assert_eq!(all.len(), 10);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("without `secretData`"));
}

#[test]
fn sample_django_json_and_csv() {
    let (users, errors, warnings) = read_sample(Format::Django, "django/auth_user.json");
    assert_eq!(users.len(), 9);
    assert_eq!(summary(&errors), vec![(9, 153, "malformed_record", None)]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let kinds: Vec<&str> = users
        .iter()
        .map(|u| match &u.password {
            Some(RawPassword::Encoded(p)) => p.split('$').next().unwrap(),
            None => "none",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "pbkdf2_sha256",
            "bcrypt_sha256",
            "argon2",
            "none",
            "pbkdf2_sha256",
            "pbkdf2_sha256",
            "pbkdf2_sha256",
            "pbkdf2_sha256",
            "pbkdf2_sha256"
        ]
    );
    assert_eq!(users[3].field("password_unusable"), Some("true"));
    assert!(!users[4].enabled);
    assert_eq!(users[0].groups, vec!["1"]);
    assert_eq!(users[6].groups, vec!["1", "2"]);
    assert_eq!(users[0].field("id"), Some("1"));
    assert_eq!(users[5].field("email"), None, "frank's email is empty");

    let (csv_users, csv_errors, csv_warnings) = read_sample(Format::Django, "django/auth_user.csv");
    assert_eq!(csv_users.len(), 9);
    assert_eq!(summary(&csv_errors), vec![(7, 8, "malformed_record", None)]);
    assert!(csv_warnings.is_empty(), "{csv_warnings:?}");
    assert_eq!(
        usernames(&csv_users, "username"),
        vec!["alice", "bob", "carol", "dave", "erin", "frank", "grace", "alice", "heidi"]
    );
    assert!(!csv_users[4].enabled);
    assert_eq!(csv_users[3].field("password_unusable"), Some("true"));
    assert_eq!(csv_users[6].field("last_name"), Some("O'Hara, Hopper"));
}

#[test]
fn sample_generic_csv() {
    let (users, errors, warnings) = read_sample(Format::Csv, "csv/users.csv");
    assert_eq!(users.len(), 11);
    assert_eq!(summary(&errors), vec![(8, 10, "malformed_record", None)]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let erin = &users[4];
    assert_eq!(
        erin.field("notes"),
        Some("Prefers phone contact.\nVIP since 2019")
    );
    assert_eq!(erin.position.line, 6);
    assert_eq!(users[5].position.line, 8);
    assert_eq!(users[0].field("roles"), Some("admin,staff"));
    assert!(
        users.iter().all(|u| u.password.is_none()),
        "generic formats leave passwords in fields"
    );
    let prefixes: Vec<&str> = users
        .iter()
        .map(|u| u.field("password_hash").map(|h| &h[..3]).unwrap_or("-"))
        .collect();
    assert_eq!(
        prefixes,
        vec!["$2y", "$6$", "$ar", "$P$", "$2y", "$6$", "$ar", "$P$", "-", "$2y", "$6$"]
    );
    assert_eq!(
        users[7].field("notes"),
        Some("Paris, France; says \"bonjour\"")
    );
}

#[test]
fn sample_generic_json_and_ndjson() {
    let (users, errors, warnings) = read_sample(Format::Json, "json/users.json");
    assert_eq!(users.len(), 9);
    assert_eq!(summary(&errors), vec![(5, 69, "invalid_json", None)]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(users[0].field("roles"), Some("admin,staff"));
    assert_eq!(
        users[1].field("notes"),
        Some("likes [brackets], {braces} and \"quotes\" \\o/")
    );
    assert_eq!(users[2].field("profile.first_name"), Some("Héloïse"));
    assert_eq!(users[2].field("address.geo.lat"), Some("48.8566"));
    assert_eq!(users[3].field("legacy_id"), Some("98765432109876543210987"));
    assert_eq!(users[3].field("active"), Some("false"));
    assert_eq!(users[5].field("tags"), Some("early-adopter,beta"));
    assert!(!users[5].fields.contains_key("manager"));
    assert_eq!(users[7].field("emoji"), Some("😀"));

    let (users, errors, warnings) = read_sample(Format::Ndjson, "ndjson/users.ndjson");
    assert_eq!(users.len(), 9);
    assert_eq!(summary(&errors), vec![(4, 4, "invalid_json", None)]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(users[3].position.record, 5);
    assert_eq!(users[4].position.line, 7, "after the blank line");
    assert_eq!(users[1].field("contact.phone"), Some("+14155550123"));
}

#[test]
fn every_vendor_format_has_a_builtin_mapping_naming_its_fields() {
    for f in [
        Format::Auth0,
        Format::Firebase,
        Format::Keycloak,
        Format::Django,
        Format::Cognito,
    ] {
        let m = builtin_mapping(f).unwrap();
        assert!(
            m.contains("username = ") && m.contains("[attributes]"),
            "{f}"
        );
    }
    for f in [Format::Csv, Format::Json, Format::Ndjson] {
        assert!(builtin_mapping(f).is_none());
    }
    assert!(builtin_mapping(Format::Auth0)
        .unwrap()
        .contains("username = \"user_id\""));
    assert!(builtin_mapping(Format::Firebase)
        .unwrap()
        .contains("\"emailVerified\""));
}

#[test]
fn format_names_round_trip() {
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        assert_eq!(
            <Format as clap::ValueEnum>::to_possible_value(&f)
                .unwrap()
                .get_name(),
            f.name()
        );
    }
    assert_eq!("NDJSON".parse::<Format>().unwrap(), Format::Ndjson);
    assert_eq!("jsonl".parse::<Format>().unwrap(), Format::Ndjson);
    assert!("xml".parse::<Format>().is_err());
}

#[test]
fn cognito_and_s3_are_unsupported_here() {
    let opts = SourceOptions::default();
    assert!(matches!(
        open(Format::Cognito, "-", &opts),
        Err(SourceError::Unsupported(_))
    ));
    assert!(matches!(
        open(Format::Csv, "s3://b/k.csv", &opts),
        Err(SourceError::Unsupported(_))
    ));
    assert!(matches!(
        from_reader(Format::Cognito, Box::new(Cursor::new(Vec::new())), &opts),
        Err(SourceError::Unsupported(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// CSV edge cases

#[test]
fn csv_bom_is_stripped_with_a_warning_and_offsets_stay_exact() {
    let text = "\u{feff}email,name\r\na@x.io,Ann\r\n";
    let (users, errors, warnings) = read_all(Format::Csv, text);
    assert!(errors.is_empty());
    assert_eq!(users[0].field("email"), Some("a@x.io"));
    assert!(
        warnings.iter().any(|w| w.contains("byte-order mark")),
        "{warnings:?}"
    );
    let off = users[0].position.byte_offset as usize;
    assert!(text.as_bytes()[off..].starts_with(b"a@x.io"));
}

#[test]
fn csv_semicolon_and_tab_are_sniffed_or_given() {
    let (users, _, warnings) = read_all(Format::Csv, "email;name\na@x.io;\"Lee; Ann\"\n");
    assert_eq!(users[0].field("name"), Some("Lee; Ann"));
    assert!(warnings.iter().any(|w| w.contains("`;`")), "{warnings:?}");
    let (users, _, warnings) = read_all(Format::Csv, "email\tname\na@x.io\tAnn\n");
    assert_eq!(users[0].field("name"), Some("Ann"));
    assert!(warnings.iter().any(|w| w.contains("tab")));
    let opts = SourceOptions {
        delimiter: Some(b'|'),
        ..Default::default()
    };
    let (users, _, warnings) = read_all_with(Format::Csv, b"email|name,x\na@x.io|Ann,B\n", &opts);
    assert_eq!(users[0].field("name,x"), Some("Ann,B"));
    assert!(warnings.is_empty());
}

#[test]
fn csv_fixture_with_bom_semicolons_crlf_and_quoted_newlines() {
    let (users, errors, warnings) = drain(
        open(
            Format::Csv,
            &fixture_path("bom_semicolon.csv"),
            &SourceOptions::default(),
        )
        .unwrap(),
    );
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_eq!(users.len(), 3);
    assert_eq!(
        users[1].field("address"),
        Some("1 Main St\r\nSpringfield; IL")
    );
    assert_eq!(users[2].position.line, 5);
    assert_eq!(summary(&errors), vec![(4, 6, "malformed_record", None)]);
}

#[test]
fn csv_ragged_rows_are_record_errors_and_reading_goes_on() {
    let text = "a,b,c\n1,2,3\n4,5\n6,7,8,9\n\n10,11,12\n";
    let (users, errors, _) = read_all(Format::Csv, text);
    assert_eq!(users.len(), 2);
    assert_eq!(
        users[1].position,
        Position {
            record: 4,
            line: 6,
            byte_offset: 25
        }
    );
    assert_eq!(
        summary(&errors),
        vec![
            (2, 3, "malformed_record", None),
            (3, 4, "malformed_record", None)
        ]
    );
    assert_eq!(errors[0].message, "row has 2 fields, the header has 3");
}

#[test]
fn csv_header_names_are_trimmed_deduplicated_and_filled_in() {
    let (users, _, warnings) = read_all(Format::Csv, " email ,name,,name\na@x.io,A,x,B\n");
    let keys: Vec<&str> = users[0].fields.keys().collect();
    assert_eq!(keys, vec!["col3", "email", "name", "name_2"]);
    assert!(warnings
        .iter()
        .any(|w| w.contains("duplicate column `name`")));
}

#[test]
fn csv_without_header_and_with_bad_utf8() {
    let opts = SourceOptions {
        has_header: Some(false),
        ..Default::default()
    };
    let (users, errors, _) = read_all_with(Format::Csv, b"a@x.io,Ann\nb@x.io,\xff\xfe\n", &opts);
    assert_eq!(users[0].field("col1"), Some("a@x.io"));
    assert_eq!(users[0].position.record, 1);
    assert_eq!(errors[0].reason, Reason::BadValue);
    assert_eq!(errors[0].field.as_deref(), Some("col2"));
    let (users, errors, warnings) = read_all(Format::Csv, "");
    assert!(users.is_empty() && errors.is_empty());
    assert_eq!(warnings, vec!["the input is empty"]);
}

// ---------------------------------------------------------------------------------------------
// JSON edge cases

#[test]
fn json_records_with_brackets_escapes_unicode_and_nesting() {
    let text = "[{\"a\":\"]}[{\",\"b\":\"say \\\"hi\\\"\",\"c\":{\"d\":{\"e\":[true,false]}},\"u\":\"\\u00e9t\\u00e9 ✓\"},\n {\"a\":\"\\\\\"}]";
    let (users, errors, _) = read_all(Format::Json, text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(users[0].field("a"), Some("]}[{"));
    assert_eq!(users[0].field("b"), Some("say \"hi\""));
    assert_eq!(users[0].field("c.d.e"), Some("true,false"));
    assert_eq!(users[0].field("u"), Some("été ✓"));
    assert_eq!(users[1].field("a"), Some("\\"));
    assert_eq!(
        users[1].position,
        Position {
            record: 2,
            line: 2,
            byte_offset: 86
        }
    );
    assert_eq!(&text[86..87], "{");
}

#[test]
fn json_invalid_record_is_reported_with_its_line_and_reading_goes_on() {
    let text = "[\n{\"a\":1},\n{\"a\":\n  tru},\n{\"a\":3},\n42\n]";
    let (users, errors, _) = read_all(Format::Json, text);
    assert_eq!(users.len(), 2);
    assert_eq!(
        summary(&errors),
        vec![
            (2, 3, "invalid_json", None),
            (4, 6, "malformed_record", None)
        ]
    );
    assert_eq!(
        errors[0].message,
        "invalid JSON at line 4, column 3: invalid literal"
    );
    assert!(!errors[0].fatal);
}

#[test]
fn json_object_input_needs_a_users_array_or_the_ndjson_format() {
    let err = from_reader(
        Format::Json,
        Box::new(Cursor::new(b"{\"a\":1}\n{\"a\":2}\n".to_vec())),
        &SourceOptions::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("ndjson"), "{err}");
    let opts = SourceOptions {
        users_key: Some("members".into()),
        ..Default::default()
    };
    let (users, _, _) = read_all_with(Format::Json, b"{\"members\":[{\"a\":1}]}", &opts);
    assert_eq!(users.len(), 1);
}

#[test]
fn ndjson_reads_an_array_with_a_warning() {
    let (users, _, warnings) = read_all(Format::Ndjson, "[{\"a\":1},{\"a\":2}]");
    assert_eq!(users.len(), 2);
    assert!(warnings[0].contains("JSON array"));
}

#[test]
fn truncated_json_ends_with_a_fatal_error() {
    let (users, errors, _) = read_all(
        Format::Firebase,
        "{\"users\": [\n{\"localId\":\"a\"},\n{\"localId\":\"b\"",
    );
    assert_eq!(users.len(), 1);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].fatal);
    assert_eq!(errors[0].position.line, 3);
}

// ---------------------------------------------------------------------------------------------
// Gzip

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_input_is_decompressed_and_offsets_refer_to_the_decompressed_stream() {
    let plain = std::fs::read(sample_path("auth0/users.ndjson")).unwrap();
    let (plain_users, _, _) = read_all_with(Format::Auth0, &plain, &SourceOptions::default());
    let (gz_users, gz_errors, _) =
        read_all_with(Format::Auth0, &gzip(&plain), &SourceOptions::default());
    assert_eq!(gz_users, plain_users);
    assert_eq!(gz_errors.len(), 1);

    // The fixture is two gzip members (a multi-member file), opened by path.
    let (users, errors, _) = drain(
        open(
            Format::Ndjson,
            &fixture_path("users.ndjson.gz"),
            &SourceOptions::default(),
        )
        .unwrap(),
    );
    assert_eq!(users.len(), 4);
    assert!(errors.is_empty());
    assert_eq!(
        users[3].position,
        Position {
            record: 4,
            line: 4,
            byte_offset: 57
        }
    );
}

#[test]
fn a_truncated_gzip_stream_ends_with_a_fatal_read_error() {
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!(
            "{{\"email\":\"user{i}@example.com\",\"n\":{i}}}\n"
        ));
    }
    let gz = gzip(text.as_bytes());
    let cut = &gz[..gz.len() / 2];
    let (users, errors, _) = read_all_with(Format::Ndjson, cut, &SourceOptions::default());
    assert!(!users.is_empty() && users.len() < 20_000);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].fatal);
    assert_eq!(errors[0].reason, Reason::ReadError);
    assert_eq!(errors[0].position.record, users.len() as u64 + 1);
}

#[test]
fn utf16_input_is_refused_with_a_hint() {
    let err = from_reader(
        Format::Csv,
        Box::new(Cursor::new(vec![0xff, 0xfe, b'a', 0])),
        &SourceOptions::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("UTF-16"), "{err}");
}

#[test]
fn a_gz_name_without_gzip_content_is_refused() {
    let dir = std::env::temp_dir().join(format!("cm-source-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.csv.gz");
    std::fs::write(&path, "email\na@x.io\n").unwrap();
    let err = open(
        Format::Csv,
        path.to_str().unwrap(),
        &SourceOptions::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, SourceError::InvalidInput { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Streaming in bounded memory

/// Generates `n` records on the fly and counts the bytes handed out, so a test can check that
/// the source never reads far ahead of the record it returns (it would have to, to load the input
/// whole).
struct Generator {
    n: u64,
    next: u64,
    pending: Vec<u8>,
    pos: usize,
    make: fn(u64, u64) -> Vec<u8>,
    delivered: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Read for Generator {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.pending.len() {
            if self.next > self.n + 1 {
                return Ok(0);
            }
            self.pending = (self.make)(self.next, self.n);
            self.pos = 0;
            self.next += 1;
        }
        let k = out.len().min(self.pending.len() - self.pos);
        out[..k].copy_from_slice(&self.pending[self.pos..self.pos + k]);
        self.pos += k;
        self.delivered
            .fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}

/// Record `i` of `n` of an Auth0 JSON array: `[` before the first, `]` after the last.
fn auth0_array_record(i: u64, n: u64) -> Vec<u8> {
    match i {
        0 => b"[\n".to_vec(),
        i if i > n => b"]\n".to_vec(),
        i => format!(
            "{}{{\"user_id\":\"auth0|{i:024}\",\"email\":\"user{i}@example.com\",\"email_verified\":true,\"name\":\"User {i}\",\"identities\":[{{\"connection\":\"Username-Password-Authentication\",\"provider\":\"auth0\",\"user_id\":\"{i:024}\",\"isSocial\":false}}],\"app_metadata\":{{\"roles\":[\"a\",\"b\"]}},\"passwordHash\":\"$2b$10$abcdefghijklmnopqrstuuKOqyGkR1XJuCmELc3b5qUQ1.Hx8Ipjm\"}}\n",
            if i > 1 { "," } else { "" }
        )
        .into_bytes(),
    }
}

fn csv_record(i: u64, n: u64) -> Vec<u8> {
    match i {
        0 => b"id,email,name,notes\r\n".to_vec(),
        i if i > n => Vec::new(),
        i => format!("{i},user{i}@example.com,User {i},\"line one\r\nline two, {i}\"\r\n")
            .into_bytes(),
    }
}

fn stream_and_check(format: Format, make: fn(u64, u64) -> Vec<u8>, n: u64, lines_per_record: u64) {
    let delivered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let generator = Generator {
        n,
        next: 0,
        pending: Vec::new(),
        pos: 0,
        make,
        delivered: delivered.clone(),
    };
    let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(64 * 1024, generator));
    let mut src = from_reader(format, reader, &SourceOptions::default()).unwrap();
    let mut count = 0;
    let mut max_ahead = 0;
    while let Some(r) = src.next_record() {
        let u = r.unwrap();
        count += 1;
        assert_eq!(u.position.record, count);
        assert_eq!(u.position.line, 2 + (count - 1) * lines_per_record);
        let ahead = delivered.load(std::sync::atomic::Ordering::Relaxed) - u.position.byte_offset;
        max_ahead = max_ahead.max(ahead);
    }
    assert_eq!(count, n);
    // Never more than the two buffers (input + decompression sniffing) ahead of the record.
    assert!(
        max_ahead <= 2 * 64 * 1024 + 1024,
        "read {max_ahead} bytes ahead"
    );
}

#[test]
fn a_large_json_array_streams_in_bounded_memory() {
    // ~70 MB if it were held whole; the check below shows it never is.
    stream_and_check(Format::Auth0, auth0_array_record, 200_000, 1);
}

#[test]
fn a_large_csv_streams_in_bounded_memory() {
    stream_and_check(Format::Csv, csv_record, 200_000, 2);
}

// ---------------------------------------------------------------------------------------------
// Throughput (run in release: `cargo test --release --lib source::tests::throughput -- --ignored --nocapture`)

fn auth0_realistic(i: u64) -> String {
    format!(
        "{{\"user_id\":\"auth0|{i:024x}\",\"email\":\"user{i}@example.com\",\"email_verified\":true,\"name\":\"User Number {i}\",\"given_name\":\"User\",\"family_name\":\"Number {i}\",\"nickname\":\"user{i}\",\"picture\":\"https://s.gravatar.com/avatar/{i:032x}?s=480&r=pg&d=identicon\",\"created_at\":\"2023-03-14T09:26:53.589Z\",\"updated_at\":\"2024-11-02T17:04:11.201Z\",\"last_login\":\"2024-11-02T17:04:11.198Z\",\"logins_count\":{},\"identities\":[{{\"connection\":\"Username-Password-Authentication\",\"provider\":\"auth0\",\"user_id\":\"{i:024x}\",\"isSocial\":false}}],\"app_metadata\":{{\"roles\":[\"member\",\"beta\"]}},\"user_metadata\":{{\"plan\":\"pro\",\"locale\":\"en-US\"}},\"passwordHash\":\"$2b$10$abcdefghijklmnopqrstuuKOqyGkR1XJuCmELc3b5qUQ1.Hx8Ipjm\"}}",
        i % 977
    )
}

#[test]
#[ignore = "a benchmark: run in release with --ignored --nocapture"]
fn throughput() {
    let n: u64 = 300_000;
    let mut ndjson = Vec::new();
    let mut array = b"[\n".to_vec();
    for i in 0..n {
        let r = auth0_realistic(i);
        ndjson.extend_from_slice(r.as_bytes());
        ndjson.push(b'\n');
        if i > 0 {
            array.extend_from_slice(b",\n");
        }
        array.extend_from_slice(r.as_bytes());
    }
    array.extend_from_slice(b"\n]\n");
    let mut csv = b"user_id,email,email_verified,name,given_name,family_name,created_at,logins_count,password_hash\n".to_vec();
    for i in 0..n {
        csv.extend_from_slice(format!("auth0|{i:024x},user{i}@example.com,true,\"Number, User {i}\",User,Number {i},2023-03-14T09:26:53.589Z,{},$2b$10$abcdefghijklmnopqrstuuKOqyGkR1XJuCmELc3b5qUQ1.Hx8Ipjm\n", i % 977).as_bytes());
    }
    for (label, format, bytes) in [
        ("auth0 ndjson", Format::Auth0, &ndjson),
        ("auth0 array", Format::Auth0, &array),
        ("csv", Format::Csv, &csv),
    ] {
        // Best of three, in CPU time of this thread: a busy machine distorts wall time.
        let mut secs = f64::MAX;
        let mut wall = f64::MAX;
        let (mut count, mut fields) = (0u64, 0usize);
        for _ in 0..3 {
            let input = Box::new(Cursor::new(bytes.clone()));
            let start = std::time::Instant::now();
            let cpu_start = thread_cpu_ns();
            let mut src = from_reader(format, input, &SourceOptions::default()).unwrap();
            count = 0;
            fields = 0;
            while let Some(r) = src.next_record() {
                fields += r.unwrap().fields.len();
                count += 1;
            }
            let w = start.elapsed().as_secs_f64();
            wall = wall.min(w);
            secs = secs.min(
                cpu_start
                    .zip(thread_cpu_ns())
                    .map_or(w, |(a, b)| (b - a) as f64 / 1e9),
            );
        }
        assert_eq!(count, n);
        println!(
            "{label}: {count} records, {fields} fields, {:.0} records/s, {:.0} MB/s (per CPU second; wall {wall:.2} s)",
            count as f64 / secs,
            bytes.len() as f64 / secs / 1e6
        );
    }
}

/// Nanoseconds this thread has run on a CPU (Linux), if known.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The samples' hashes are real: each verifies, through the password module, against the password
// listed for its user in samples/README.md.

fn sample_password(first_name: &str) -> &'static str {
    match first_name.split_whitespace().next().unwrap_or("") {
        "Alice" => "Blue-Kettle-42",
        "Bob" => "hunter2-but-longer",
        "Carol" => "Sesame-0pen!",
        "Dave" => "Tr0ub4dor&3",
        "Erin" => "correct horse battery staple",
        "Frank" => "Fr4nk-Ops-2023",
        "Grace" => "Gr@ce-Hopper-1906",
        "Héloïse" => "Mot-de-passe-2024",
        "Ivan" => "ivan-the-terrible",
        "Judy" => "Judy#Secure9",
        "Kim" => "K1m-Park!",
        other => panic!("no sample password for {other:?}"),
    }
}

#[test]
fn sample_hashes_verify_against_the_listed_passwords() {
    use crate::password::{FirebaseHashConfig, HashContext, PasswordHash};
    let config = std::fs::read_to_string(sample_path("firebase/hash_config.json")).unwrap();
    let ctx = HashContext {
        firebase: Some(FirebaseHashConfig::from_json(&config).unwrap()),
    };
    // (format, file, field with the first name, field with the hash for generic formats,
    // number of users with a password among those read)
    let cases: [(Format, &str, &str, Option<&str>, usize); 9] = [
        (Format::Auth0, "auth0/users.ndjson", "given_name", None, 9),
        (
            Format::Firebase,
            "firebase/users.json",
            "displayName",
            None,
            7,
        ),
        (
            Format::Firebase,
            "firebase/users.csv",
            "displayName",
            None,
            6,
        ),
        (
            Format::Keycloak,
            "keycloak/realm-export.json",
            "firstName",
            None,
            7,
        ),
        (
            Format::Django,
            "django/auth_user.json",
            "first_name",
            None,
            8,
        ),
        (
            Format::Django,
            "django/auth_user.csv",
            "first_name",
            None,
            8,
        ),
        (
            Format::Csv,
            "csv/users.csv",
            "first_name",
            Some("password_hash"),
            10,
        ),
        (
            Format::Json,
            "json/users.json",
            "profile.first_name",
            Some("password_hash"),
            8,
        ),
        (
            Format::Ndjson,
            "ndjson/users.ndjson",
            "profile.first_name",
            Some("password_hash"),
            9,
        ),
    ];
    for (format, rel, name_field, hash_field, expected) in cases {
        let (users, _, _) = read_sample(format, rel);
        let mut verified = 0;
        for u in &users {
            let raw = match hash_field {
                Some(f) => u.field(f).map(|h| RawPassword::Encoded(h.to_string())),
                None => u.password.clone(),
            };
            let Some(raw) = raw else { continue };
            let name = u
                .field(name_field)
                .unwrap_or_else(|| panic!("{rel}: no {name_field}"));
            let hash =
                PasswordHash::from_raw(&raw, &ctx).unwrap_or_else(|e| panic!("{rel}: {name}: {e}"));
            assert!(
                hash.verify(sample_password(name)),
                "{rel}: {name}'s hash does not verify"
            );
            assert!(!hash.verify("not the password"), "{rel}: {name}");
            verified += 1;
        }
        assert_eq!(verified, expected, "{rel}");
    }
}

#[test]
fn builtin_and_sample_mappings_parse_with_the_mapping_module() {
    use crate::mapping::config::{CompiledRule, MappingFile};
    let mut texts: Vec<(String, String)> = [
        Format::Auth0,
        Format::Firebase,
        Format::Keycloak,
        Format::Django,
    ]
    .into_iter()
    .map(|f| (f.to_string(), builtin_mapping(f).unwrap().to_string()))
    .collect();
    for rel in [
        "csv/mapping.toml",
        "json/mapping.toml",
        "ndjson/mapping.toml",
    ] {
        texts.push((
            rel.to_string(),
            std::fs::read_to_string(sample_path(rel)).unwrap(),
        ));
    }
    for (origin, text) in texts {
        let m = MappingFile::parse(&text, &origin).unwrap_or_else(|e| panic!("{origin}: {e}"));
        assert!(m.username.is_some(), "{origin}");
        for (target, rule) in &m.attributes {
            CompiledRule::compile(target, rule)
                .unwrap_or_else(|e| panic!("{origin}: {target}: {e}"));
        }
    }
}

/// A record small enough to read whose nested members would flatten into more than
/// `MAX_FIELDS_TEXT` (a long key repeated in every leaf's name) is rejected as malformed, naming
/// its position, and the next record is read as usual.
#[test]
fn a_record_that_would_flatten_past_the_fields_limit_is_rejected_and_the_run_goes_on() {
    let key = "k".repeat(1 << 20);
    let leaves = (crate::record::MAX_FIELDS_TEXT >> 20) + 8;
    let members: Vec<String> = (0..leaves).map(|i| format!("\"a{i}\":1")).collect();
    let text = format!(
        "{{\"user_id\":\"auth0|big\",\"{key}\":{{{}}}}}\n{{\"user_id\":\"auth0|next\"}}\n",
        members.join(",")
    );
    assert!(text.len() < 4 << 20, "the record itself is small");
    let (users, errors, _) = read_all(Format::Auth0, &text);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason, Reason::MalformedRecord);
    assert_eq!(errors[0].position.line, 1);
    assert!(
        errors[0].message.contains("flattened"),
        "{}",
        errors[0].message
    );
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].field("user_id"), Some("auth0|next"));
}

/// A file many times the local reader's 1 MiB buffer, with part of it out of the page cache,
/// gives exactly the records, errors and positions that the same bytes give from memory:
/// records that straddle buffer refills included.
#[test]
fn a_large_partly_cached_file_reads_like_the_same_bytes_in_memory() {
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < 6 << 20 {
        if i % 1000 == 999 {
            text.push_str("{\"user_id\": \"broken\n");
        } else {
            // Lengths vary, so records end at every offset relative to the chunks.
            let pad = "x".repeat((i * 37 % 700) as usize);
            text.push_str(&format!(
                "{{\"user_id\":\"auth0|{i}\",\"email\":\"u{i}@example.com\",\"note\":\"{pad}\"}}\r\n"
            ));
        }
        i += 1;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("cm-source-large-{}.ndjson", std::process::id()));
    {
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }
    let opts = SourceOptions::default();
    let from_file = drain(open(Format::Ndjson, path.to_str().unwrap(), &opts).unwrap());
    let from_memory = read_all_with(Format::Ndjson, text.as_bytes(), &opts);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from_file.0.len() as u64 + from_file.1.len() as u64, i);
    assert_eq!(
        from_file.1.len() as u64,
        i / 1000,
        "the broken lines are the errors"
    );
    assert!(from_file.0 == from_memory.0, "records differ");
    let key = |e: &RecordError| (e.position, e.reason, e.field.clone(), e.message.clone());
    assert_eq!(
        from_file.1.iter().map(key).collect::<Vec<_>>(),
        from_memory.1.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(from_file.2, from_memory.2);
}
