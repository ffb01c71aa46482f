//! One minimal reproducer per finding of the fuzz campaigns and the differential test, each
//! failing before its fix.

use std::io::Cursor;

use cognito_migrate::record::LegacyUser;
use cognito_migrate::source::{self, Format, SourceOptions};

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
