//! Mapping and validation against a pool, case by case.

use std::collections::BTreeMap;

use super::config::{MappingError, MappingFile, Rule};
use super::mapper::apply;
use super::transform::Transform;
use super::*;
use crate::pool::{Attribute, DataType, PoolSchema};
use crate::record::{LegacyUser, Position, RawPassword};

fn schema(username_attributes: &[&str], aliases: &[&str]) -> PoolSchema {
    let custom = vec![
        Attribute {
            name: "custom:legacy_id".into(),
            data_type: DataType::String,
            required: false,
            mutable: true,
            min_length: Some(1),
            max_length: Some(20),
            min_value: None,
            max_value: None,
        },
        Attribute {
            name: "custom:age".into(),
            data_type: DataType::Number,
            required: false,
            mutable: true,
            min_length: None,
            max_length: None,
            min_value: Some(0),
            max_value: Some(150),
        },
    ];
    PoolSchema::assemble(
        "us-east-1_test",
        "test",
        vec![],
        custom,
        username_attributes.iter().map(|s| s.to_string()).collect(),
        aliases.iter().map(|s| s.to_string()).collect(),
        false,
        vec!["email".into()],
    )
}

const MAPPING: &str = r#"
username = "user"
password = "hash"
groups = "roles"
disabled = { from = "blocked", transform = "bool" }
default_region = "US"
[attributes]
email = { from = "mail", transform = "lowercase_email" }
email_verified = { from = "verified", transform = "bool" }
phone_number = { from = "phone", transform = "e164" }
given_name = { from = "full", transform = "split_name_first" }
family_name = { from = "full", transform = "split_name_last" }
updated_at = { from = "updated", transform = "epoch_seconds" }
"custom:legacy_id" = "id"
"custom:age" = "age"
"#;

fn user(record: u64, fields: &[(&str, &str)]) -> LegacyUser {
    let mut u = LegacyUser::new(Position {
        record,
        line: record + 1,
        byte_offset: 0,
    });
    for (k, v) in fields {
        u.fields.insert(k, v);
    }
    u
}

fn mapper(username_attributes: &[&str], aliases: &[&str]) -> Mapper {
    let m = MappingFile::parse(MAPPING, "test").unwrap();
    Mapper::new(&m, &schema(username_attributes, aliases)).unwrap()
}

#[test]
fn maps_a_full_record() {
    let mut m = mapper(&[], &["email"]);
    let u = m
        .map(user(
            1,
            &[
                ("user", "ada"),
                (
                    "hash",
                    "$2b$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE",
                ),
                ("roles", "admins, staff,"),
                ("blocked", "no"),
                ("mail", " Ada@Example.COM "),
                ("verified", "Y"),
                ("phone", "(415) 555-0123"),
                ("full", "Ada King Lovelace"),
                ("updated", "2023-11-14T22:13:20Z"),
                ("id", "42"),
                ("age", "36"),
            ],
        ))
        .unwrap();
    assert_eq!(u.username, "ada");
    assert_eq!(u.attribute("email"), Some("ada@example.com"));
    assert_eq!(u.attribute("email_verified"), Some("true"));
    assert_eq!(u.attribute("phone_number"), Some("+14155550123"));
    assert_eq!(u.attribute("given_name"), Some("Ada"));
    assert_eq!(u.attribute("family_name"), Some("King Lovelace"));
    assert_eq!(u.attribute("updated_at"), Some("1700000000"));
    assert_eq!(u.attribute("custom:legacy_id"), Some("42"));
    assert_eq!(u.groups, vec!["admins", "staff"]);
    assert!(u.enabled);
    assert!(matches!(u.password, Some(RawPassword::Encoded(_))));
}

#[test]
fn rejects_with_field_and_reason() {
    let mut m = mapper(&[], &["email"]);
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, Reason);
    let cases: Vec<Case> = vec![
        (
            vec![("user", "a"), ("mail", "not-an-email")],
            "mail",
            Reason::InvalidEmail,
        ),
        (
            vec![("user", "b"), ("phone", "12")],
            "phone",
            Reason::InvalidPhone,
        ),
        (
            vec![("user", "c"), ("verified", "perhaps")],
            "verified",
            Reason::InvalidBoolean,
        ),
        (
            vec![("user", "d"), ("age", "200")],
            "age",
            Reason::OutOfRange,
        ),
        (
            vec![("user", "e"), ("age", "old")],
            "age",
            Reason::InvalidNumber,
        ),
        (
            vec![("user", "f"), ("id", "x".repeat(21).leak())],
            "id",
            Reason::TooLong,
        ),
        (vec![("user", "g h")], "user", Reason::InvalidUsername),
        (
            vec![("mail", "x@example.com")],
            "user",
            Reason::MissingRequired,
        ),
        (
            vec![("user", "i"), ("verified", "true")],
            "email_verified",
            Reason::MissingRequired,
        ),
        (
            vec![("user", "j"), ("updated", "last tuesday")],
            "updated",
            Reason::InvalidDate,
        ),
    ];
    for (i, (fields, field, reason)) in cases.into_iter().enumerate() {
        let r = m.map(user(i as u64 + 1, &fields)).unwrap_err();
        assert_eq!(
            (r.field.as_str(), r.reason),
            (field, reason),
            "case {i}: {r}"
        );
        assert_eq!(r.position.record, i as u64 + 1);
    }
}

#[test]
fn control_characters_in_attribute_values_are_rejected_with_field_and_position() {
    let mut m = mapper(&[], &["email"]);
    // NUL inside a name, TAB, ESC, DEL, a C1 character (NEL) and a line break inside an id;
    // each in its own record, each rejected with the source field and the character's place
    // (in the attribute's value). The name transforms split at white space, so TAB, NEL and
    // line breaks inside a full name never reach an attribute.
    let cases: [(&str, &str, &str); 6] = [
        ("full", "Ada\u{0}Lovelace", "U+0000 at character 4"),
        ("id", "4\t2", "U+0009 at character 2"),
        ("id", "4\u{1b}[31m2", "U+001B at character 2"),
        ("id", "42\u{7f}", "U+007F at character 3"),
        ("id", "4\u{85}2", "U+0085 at character 2"),
        ("id", "4\n2", "U+000A at character 2"),
    ];
    for (i, (field, value, what)) in cases.into_iter().enumerate() {
        let record = i as u64 + 1;
        let username = format!("u{record}");
        let r = m
            .map(user(record, &[("user", username.as_str()), (field, value)]))
            .unwrap_err();
        assert_eq!(
            (r.field.as_str(), r.reason, r.position.record),
            (field, Reason::ControlCharacter, record),
            "{r}"
        );
        assert!(r.message.contains(what), "{r}");
        assert_eq!(r.reason.as_str(), "control_character");
    }
    // Ordinary white space and non-ASCII letters pass.
    let ok = m
        .map(user(
            9,
            &[("user", "u9"), ("full", "Zoë  Ångström"), ("id", "a b")],
        ))
        .unwrap();
    assert_eq!(ok.attribute("family_name"), Some("Ångström"));
}

#[test]
fn duplicates_case_insensitive_and_aliases() {
    let mut m = mapper(&[], &["email"]);
    m.map(user(1, &[("user", "Ada"), ("mail", "ada@example.com")]))
        .unwrap();
    let r = m
        .map(user(2, &[("user", "ADA"), ("mail", "other@example.com")]))
        .unwrap_err();
    assert_eq!(r.reason, Reason::DuplicateUsername);
    assert!(r.message.contains("record 1"), "{}", r.message);
    let r = m
        .map(user(3, &[("user", "bob"), ("mail", "ADA@example.com")]))
        .unwrap_err();
    assert_eq!(r.reason, Reason::DuplicateEmail);
    // A rejected record does not claim its username.
    m.map(user(4, &[("user", "carol"), ("age", "x")]))
        .unwrap_err();
    m.map(user(5, &[("user", "carol")])).unwrap();
    // Emails need not be unique when email is neither alias nor username.
    let mut m = mapper(&[], &[]);
    m.map(user(1, &[("user", "a"), ("mail", "same@example.com")]))
        .unwrap();
    m.map(user(2, &[("user", "b"), ("mail", "same@example.com")]))
        .unwrap();
}

#[test]
fn email_username_pools_use_the_email() {
    let mut m = mapper(&["email"], &[]);
    let u = m
        .map(user(1, &[("user", "ada"), ("mail", "Ada@Example.com")]))
        .unwrap();
    assert_eq!(u.username, "ada@example.com");
    let r = m.map(user(2, &[("user", "bob")])).unwrap_err();
    assert_eq!(
        (r.field.as_str(), r.reason),
        ("email", Reason::MissingRequired)
    );
    let r = m
        .map(user(3, &[("user", "other"), ("mail", "ada@EXAMPLE.com")]))
        .unwrap_err();
    assert_eq!(r.reason, Reason::DuplicateUsername);
}

#[test]
fn configuration_errors() {
    let s = schema(&[], &[]);
    let bad = MappingFile::parse("[attributes]\n\"custom:nope\" = \"x\"\n", "t").unwrap();
    assert!(matches!(
        Mapper::new(&bad, &s),
        Err(MappingError::UnknownAttribute { .. })
    ));
    let bad = MappingFile::parse(
        "[attributes]\nemail = { from = \"x\", transform = \"shout\" }\n",
        "t",
    )
    .unwrap();
    let e = Mapper::new(&bad, &s).err().unwrap().to_string();
    assert!(e.contains("unknown transform `shout`"), "{e}");
    assert!(MappingFile::parse("usrname = \"x\"\n", "t").is_err());
    let mut req = s.clone();
    req.attributes
        .iter_mut()
        .find(|a| a.name == "family_name")
        .unwrap()
        .required = true;
    let m = MappingFile::parse("[attributes]\nemail = \"mail\"\n", "t").unwrap();
    let e = Mapper::new(&m, &req).err().unwrap().to_string();
    assert!(e.contains("family_name"), "{e}");
}

#[test]
fn overlay_prefers_the_user_file() {
    let base = MappingFile::parse(MAPPING, "base").unwrap();
    let over =
        MappingFile::parse("username = \"id\"\n[attributes]\nemail = \"other\"\n", "o").unwrap();
    let m = base.overlay(over);
    assert_eq!(m.username, Some(Rule::Field("id".into())));
    assert_eq!(m.attributes["email"], Rule::Field("other".into()));
    assert!(m.attributes.contains_key("phone_number"));
}

#[test]
fn attributes_keep_name_order_and_resolve_slots_per_table() {
    let mut a = Attributes::new();
    a.insert("phone_number", "+14155550123");
    a.insert("email", "a@x.io");
    a.insert("email", "b@x.io");
    assert_eq!(
        a.iter().collect::<Vec<_>>(),
        vec![("email", "b@x.io"), ("phone_number", "+14155550123")]
    );
    assert_eq!(a.len(), 2);
    assert_eq!(&a["email"], "b@x.io");
    assert!(a.contains_key("phone_number") && !a.contains_key("name"));
    let slot = a.slot("phone_number").unwrap();
    assert_eq!(a.get_slot(slot), Some("+14155550123"));
    let table = a.table();
    assert!(table.is(&a));
    let b: Attributes = BTreeMap::from([("email".to_string(), "b@x.io".to_string())]).into();
    assert!(!table.is(&b), "another user's own table is another table");
    assert_ne!(a, b);
    assert_eq!(b.to_map().len(), 1);
}

#[test]
fn quick_transforms_answer_as_the_general_ones() {
    // `apply` answers the usual single-source transforms itself; every answer (value or
    // rejection) must be the one `Transform::apply` gives.
    let transforms = [
        Transform::Trim,
        Transform::Lowercase,
        Transform::LowercaseEmail,
        Transform::Bool,
        Transform::NotBool,
        Transform::E164,
        Transform::EpochSeconds,
        Transform::Const("c".into()),
        Transform::Join("-".into()),
    ];
    let values = [
        None,
        Some(""),
        Some("  "),
        Some(" Ada "),
        Some("ADA@Example.COM"),
        Some("Émile"),
        Some("TRUE"),
        Some(" yes "),
        Some("maybe"),
        Some("+14155550123"),
        Some(" +1 (415) 555-0123 "),
        Some("2024-11-02T17:04:11.201Z"),
        Some("\u{a0}x\u{a0}"),
    ];
    for transform in &transforms {
        for value in values {
            let rule = config::CompiledRule {
                sources: vec!["src".into()],
                transform: transform.clone(),
            };
            let mut user = LegacyUser::new(Position::default());
            if let Some(v) = value {
                user.fields.push("src", v);
            }
            let quick = apply(&rule, "target", &user, Some("US"), Position::default());
            let general = rule
                .transform
                .apply(&[user.field("src")], Some("US"))
                .map_err(|(reason, message)| {
                    Rejection::new(
                        Position::default(),
                        "src",
                        reason,
                        format!("target: {message}"),
                    )
                });
            assert_eq!(quick, general, "{transform:?} of {value:?}");
        }
    }
}

/// In a pool that signs in with email, a user without any email hears about the email, not
/// about `email_verified` (which the mapping may set for everyone).
#[test]
fn missing_email_in_an_email_pool_names_the_email() {
    let text = "username = \"user\"\n[attributes]\nemail = \"mail\"\nemail_verified = { transform = \"const\", value = \"true\" }\n";
    let m = MappingFile::parse(text, "test").unwrap();
    let mut m = Mapper::new(&m, &schema(&["email"], &[])).unwrap();
    let e = m.map(user(3, &[("user", "nomail")])).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.position.record),
        ("email", Reason::MissingRequired, 3)
    );
    assert!(e.message.starts_with("missing email"), "{}", e.message);
    assert!(!e.message.contains("email_verified"), "{}", e.message);
}

/// Group names Cognito's CreateGroup refuses reject the user at plan time, with the field, the
/// position and the reason; the `[groups]` rewrites make Keycloak-style paths fit.
#[test]
fn group_names_are_checked_and_rewritten() {
    let mut m = mapper(&[], &[]);
    let e = m
        .map(user(
            4,
            &[("user", "kc"), ("roles", "staff, Cluster Admins")],
        ))
        .unwrap_err();
    assert_eq!(
        (
            e.field.as_str(),
            e.reason,
            e.position.record,
            e.position.line
        ),
        ("roles", Reason::InvalidGroup, 4, 5)
    );
    assert!(e.message.contains("group 2 of 2"), "{}", e.message);
    assert!(e.message.contains("white space"), "{}", e.message);

    let rewrite = "[groups]\nstrip_prefix = \"/\"\nreplace_spaces = \"_\"\n";
    let over = MappingFile::parse(rewrite, "test").unwrap();
    let mapping = MappingFile::parse(MAPPING, "test").unwrap().overlay(over);
    let mut m = Mapper::new(&mapping, &schema(&[], &[])).unwrap();
    let mut legacy = user(5, &[("user", "kc2"), ("roles", "/Cluster Admins, extra")]);
    legacy.groups = vec!["/Cluster Admins".into(), "/ops".into()];
    let u = m.map(legacy).unwrap();
    // The `[groups]` table without `from` kept the base mapping's field; repeats are dropped.
    assert_eq!(u.groups, vec!["Cluster_Admins", "ops", "extra"]);

    let bad = MappingFile::parse("[groups]\nreplace_spaces = \" \"\n", "test").unwrap();
    assert!(Mapper::new(&bad, &schema(&[], &[])).is_err());
    assert!(MappingFile::parse("[groups]\nstrip = \"/\"\n", "test").is_err());
}

/// `password_scheme = "aspnet-identity"` hands the field to the ASP.NET Identity parser.
#[test]
fn password_scheme_names_aspnet_identity() {
    const BLOB: &str =
        "AQAAAAEAACcQAAAAEAABAgMEBQYHCAkKCwwNDg+yWU7rLgUwPZb1Itsmra7cbxw2EFpwpVFIEtP+JIuUEw==";
    let text = format!("{MAPPING}\n");
    let text = text.replacen(
        "password = \"hash\"",
        "password = \"hash\"\npassword_scheme = \"aspnet-identity\"",
        1,
    );
    let m = MappingFile::parse(&text, "test").unwrap();
    let mut m = Mapper::new(&m, &schema(&[], &[])).unwrap();
    let u = m.map(user(1, &[("user", "asp"), ("hash", BLOB)])).unwrap();
    assert_eq!(u.password, Some(RawPassword::AspNetIdentity(BLOB.into())));

    let bad = MAPPING.replacen(
        "password = \"hash\"",
        "password = \"hash\"\npassword_scheme = \"md4\"",
        1,
    );
    let bad = MappingFile::parse(&bad, "test").unwrap();
    let e = Mapper::new(&bad, &schema(&[], &[]))
        .err()
        .expect("unknown scheme refused");
    assert!(e.to_string().contains("password_scheme"), "{e}");
}

#[test]
fn the_legacy_id_is_the_mapped_attribute_else_the_sources_id_field() {
    let fields = [
        ("user", "ada"),
        ("mail", "ada@example.com"),
        ("verified", "y"),
    ];
    // Mapped to custom:legacy_id: that value, whatever the id field says.
    let mut m = mapper(&[], &[]);
    m.set_legacy_id_field(Some("uid".into()));
    let mut with_id = fields.to_vec();
    with_id.extend([("id", "42"), ("uid", "auth0|x")]);
    assert_eq!(
        m.map(user(1, &with_id)).unwrap().legacy_id.as_deref(),
        Some("42")
    );
    // A mapping without custom:legacy_id (or a pool without it): the source's id field.
    let plain = MappingFile::parse(
        "username = \"user\"\n[attributes]\nemail = \"mail\"\nemail_verified = { from = \"verified\", transform = \"bool\" }\n",
        "test",
    )
    .unwrap();
    let mut m = Mapper::new(&plain, &schema(&[], &[])).unwrap();
    let mut with_uid = fields.to_vec();
    with_uid.push(("uid", "auth0|x"));
    assert_eq!(m.map(user(1, &with_uid)).unwrap().legacy_id, None);
    m.set_legacy_id_field(Some("uid".into()));
    with_uid[0] = ("user", "cyd");
    with_uid[1] = ("mail", "cyd@example.com");
    let mapped = m.map(user(2, &with_uid)).unwrap();
    assert_eq!(mapped.legacy_id.as_deref(), Some("auth0|x"));
    assert_eq!(
        mapped.attribute("custom:legacy_id"),
        None,
        "not an attribute"
    );
    // An empty field is no id.
    let mut empty = fields.to_vec();
    empty[0] = ("user", "bob");
    empty[1] = ("mail", "bob@example.com");
    empty.push(("uid", ""));
    assert_eq!(m.map(user(3, &empty)).unwrap().legacy_id, None);
}
