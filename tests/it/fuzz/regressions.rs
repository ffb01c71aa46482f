//! One minimal reproducer per finding of the fuzz campaigns and the differential test, each
//! failing before its fix.

use std::io::Cursor;

use cognito_migrate::record::LegacyUser;
use cognito_migrate::source::{self, Format, RecordError, SourceOptions};

/// All records of `text` read as `format` (panics on an error).
fn read(format: Format, text: &str, opts: &SourceOptions) -> Vec<LegacyUser> {
    let reader = Box::new(Cursor::new(text.as_bytes().to_vec()));
    let mut src = source::from_reader(format, reader, opts).expect("opens");
    let mut users = Vec::new();
    while let Some(item) = src.next_record() {
        users.push(item.expect("a record"));
    }
    users
}

/// Differential finding: an array of scalars starting with empty strings lost them (`["",
/// false]` became `false`, the same as `[false]`), while `["a", ""]` kept its comma (`a,`).
#[test]
fn leading_empty_strings_keep_their_place_in_a_joined_array() {
    let users = read(
        Format::Ndjson,
        r#"{"a":["",false],"b":["x","",null,"y"],"c":[""],"d":["",""],"e":[null,"",null]}"#,
        &SourceOptions::default(),
    );
    let u = &users[0];
    assert_eq!(u.fields.get("a"), Some(",false"));
    assert_eq!(u.fields.get("b"), Some("x,,y"), "nulls are left out");
    assert_eq!(u.fields.get("c"), None, "one empty string joins to nothing");
    assert_eq!(u.fields.get("d"), Some(","));
    assert_eq!(u.fields.get("e"), None);
}

/// All items (records and errors) of `bytes` read as `format` through reads of at most `chunk`
/// bytes.
fn read_in_pieces(
    format: Format,
    bytes: &[u8],
    chunk: usize,
) -> Vec<Result<LegacyUser, RecordError>> {
    let reader = Box::new(std::io::BufReader::with_capacity(
        chunk,
        Cursor::new(bytes.to_vec()),
    ));
    let mut src = source::from_reader(format, reader, &SourceOptions::default()).expect("opens");
    std::iter::from_fn(|| src.next_record()).collect()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/sources/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

/// Fuzz finding: formats are recognised by an input's first bytes, but a stream whose first
/// read returned one byte (a pipe, a network body) hid them: a gzip file was read as text, a
/// byte-order mark and the CSV delimiter went unseen.
#[test]
fn formats_are_recognised_when_the_input_arrives_a_byte_at_a_time() {
    for (format, name) in [
        (Format::Ndjson, "users.ndjson.gz"),
        (Format::Csv, "bom_semicolon.csv"),
    ] {
        let bytes = fixture(name);
        let whole = read_in_pieces(format, &bytes, 1 << 16);
        assert!(whole.iter().filter(|r| r.is_ok()).count() >= 2, "{whole:?}");
        for chunk in [1, 2, 3] {
            assert_eq!(
                read_in_pieces(format, &bytes, chunk),
                whole,
                "{name} by {chunk}"
            );
        }
    }
    let utf16 = Box::new(std::io::BufReader::with_capacity(
        1,
        Cursor::new(b"\xff\xfe{\0}\0".to_vec()),
    ));
    let err = source::from_reader(Format::Json, utf16, &SourceOptions::default())
        .err()
        .expect("UTF-16 is refused");
    assert!(err.to_string().contains("UTF-16"), "{err}");
}

/// Fuzz finding: scrypt parameters whose product r·p passes 2^32 overflowed inside the scrypt
/// crate's own check (a panic in debug builds, a wrong answer in release).
#[test]
fn scrypt_parameters_whose_product_overflows_are_refused() {
    use cognito_migrate::password::{HashError, PasswordHash};
    for s in [
        "$scrypt$ln=4,r=8,p=4294967295$6XF/43pn5lEhQ2tutuU8AQ$PMWCb8rvH4RW1zQZlIxa/TqlwJZgBWdu7whI8PVaR3A",
        "$scrypt$ln=4,r=65536,p=65536$6XF/43pn5lEhQ2tutuU8AQ$PMWCb8rvH4RW1zQZlIxa/TqlwJZgBWdu7whI8PVaR3A",
        "scrypt$16384$salt$4294967295$2$PMWCb8rvH4RW1zQZlIxa/TqlwJZgBWdu7whI8PVaR3A=",
    ] {
        assert!(
            matches!(PasswordHash::parse(s), Err(HashError::Malformed { .. })),
            "{s}"
        );
    }
}

/// Fuzz finding: a Firebase `hash_config` whose signer key is shorter than 8 bytes was accepted,
/// although every hash made with it is refused (a hash is as long as the key, and at least 8
/// bytes): one clear configuration error instead of one per user.
#[test]
fn a_firebase_signer_key_shorter_than_a_hash_can_be_is_refused() {
    use cognito_migrate::password::{FirebaseHashConfig, HashError};
    let config = |key: &str| {
        format!(
            r#"{{"base64_signer_key":"{key}","base64_salt_separator":"Bw==","rounds":8,"mem_cost":14}}"#
        )
    };
    assert!(matches!(
        FirebaseHashConfig::from_json(&config("c2hvcnQ=")),
        Err(HashError::FirebaseConfig(_))
    ));
    assert!(FirebaseHashConfig::from_json(&config("ZWlnaHRieXQ=")).is_ok());
}
