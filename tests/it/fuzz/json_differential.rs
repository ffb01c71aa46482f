//! Differential test of the JSON readers (`json`, `ndjson`) against serde_json.
//!
//! Generated user documents — nested objects and arrays, keys and strings with every kind of
//! character (quotes, backslashes, control characters, non-ASCII, astral characters), each
//! written raw or escaped (`\"`, `\/`, `\n`, `\u00e9`, surrogate pairs `\ud83d\ude00`, hex in
//! either case), strings long enough to cross the SIMD (16-byte) and SWAR (8-byte) blocks at
//! every alignment, numbers of every shape, whitespace of every kind — are written as NDJSON, as
//! a top-level array and as `{"meta": …, "users": [...]}`, then read twice: by our reader through
//! the public record API, and by serde_json, whose values are flattened by the documented rules
//! (nested names joined with `.`, arrays of scalars joined with `,`, other arrays indexed, null
//! and empty containers leave no field). Both must give the same records with the same fields
//! and values; a number must be text serde_json reads as the same number. Each record's position
//! must be the byte where the generator wrote its `{`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Cursor};

use cognito_migrate::record::LegacyUser;
use cognito_migrate::source::{self, Format};
use proptest::prelude::*;
use serde_json::{Number, Value};

use super::runner::run;

/// A generated JSON value (object keys are unique).
#[derive(Clone, Debug)]
enum Gen {
    Null,
    Bool(bool),
    /// The number's text.
    Num(String),
    Str(String),
    Arr(Vec<Gen>),
    Obj(Vec<(String, Gen)>),
}

/// How the records are laid out.
#[derive(Clone, Copy, Debug)]
enum Layout {
    Ndjson,
    Array,
    UsersMember,
}

fn json_char() -> impl Strategy<Value = char> {
    prop_oneof![
        10 => proptest::char::range('a', 'z'),
        2 => proptest::sample::select(vec!['.', '_', '-', ' ', '/', ',', '$', '[', '}', ':']),
        2 => proptest::sample::select(vec!['"', '\\']),
        2 => (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        2 => proptest::sample::select(vec![
            'é', '✓', '中', '\u{7f}', '\u{80}', '\u{7ff}', '\u{800}', '\u{2028}', '\u{e000}',
            '\u{fffd}', '\u{ffff}',
        ]),
        2 => proptest::sample::select(vec!['😀', '𝄞', '\u{10000}', '\u{10ffff}']),
        1 => any::<char>(),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(json_char(), 0..max).prop_map(String::from_iter)
}

fn number() -> impl Strategy<Value = String> {
    // Exponents of two digits at most: serde_json refuses numbers beyond f64's range.
    "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?"
}

fn unique(members: Vec<(String, Gen)>) -> Vec<(String, Gen)> {
    let mut seen = std::collections::HashSet::new();
    members
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect()
}

fn value() -> impl Strategy<Value = Gen> {
    let leaf = prop_oneof![
        1 => Just(Gen::Null),
        1 => any::<bool>().prop_map(Gen::Bool),
        2 => number().prop_map(Gen::Num),
        4 => prop_oneof![4 => text(40), 1 => text(300)].prop_map(Gen::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Gen::Arr),
            proptest::collection::vec((text(10), inner), 0..6).prop_map(|m| Gen::Obj(unique(m))),
        ]
    })
}

fn record() -> impl Strategy<Value = Vec<(String, Gen)>> {
    proptest::collection::vec((text(12), value()), 0..8).prop_map(unique)
}

/// A generated document and how to read it.
#[derive(Clone)]
struct Doc {
    layout: Layout,
    text: String,
    /// Byte offset of each record's `{`.
    starts: Vec<usize>,
    /// The reader's buffer size.
    buffer: usize,
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Doc {{ layout: {:?}, buffer: {}, starts: {:?}, text: {:?} }}",
            self.layout, self.buffer, self.starts, self.text
        )
    }
}

/// Writes generated values as JSON text, choosing whitespace and escapes from its own small
/// random generator.
struct Writer {
    out: String,
    state: u64,
    /// Whether whitespace may hold line breaks (not inside an NDJSON line).
    newlines: bool,
}

impl Writer {
    fn next(&mut self) -> u64 {
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[(self.next() % options.len() as u64) as usize]
    }

    fn ws(&mut self) {
        let w = if self.newlines {
            self.pick(&["", "", "", " ", "\t", "\n", "\r\n", "  ", "\n\t  "])
        } else {
            self.pick(&["", "", "", " ", "\t", "  ", " \t"])
        };
        self.out.push_str(w);
    }

    fn hex4(&mut self, unit: u32) {
        let s = format!("\\u{unit:04x}");
        if self.next().is_multiple_of(2) {
            self.out.push_str(&s);
        } else {
            self.out.push_str(&s.to_uppercase().replace("\\U", "\\u"));
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            let escape = self.next().is_multiple_of(4);
            match c {
                '"' if escape => self.hex4(0x22),
                '"' => self.out.push_str("\\\""),
                '\\' if escape => self.hex4(0x5c),
                '\\' => self.out.push_str("\\\\"),
                '/' if escape => self.out.push_str("\\/"),
                '\u{8}' if !escape => self.out.push_str("\\b"),
                '\u{c}' if !escape => self.out.push_str("\\f"),
                '\n' if !escape => self.out.push_str("\\n"),
                '\r' if !escape => self.out.push_str("\\r"),
                '\t' if !escape => self.out.push_str("\\t"),
                c if (c as u32) < 0x20 => self.hex4(c as u32),
                c if escape => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        self.hex4(u32::from(*unit));
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn members(&mut self, members: &[(String, Gen)]) {
        self.out.push('{');
        for (i, (k, v)) in members.iter().enumerate() {
            if i > 0 {
                self.ws();
                self.out.push(',');
            }
            self.ws();
            self.string(k);
            self.ws();
            self.out.push(':');
            self.ws();
            self.value(v);
        }
        self.ws();
        self.out.push('}');
    }

    fn value(&mut self, v: &Gen) {
        match v {
            Gen::Null => self.out.push_str("null"),
            Gen::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Gen::Num(n) => self.out.push_str(n),
            Gen::Str(s) => self.string(s),
            Gen::Arr(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.out.push(',');
                    }
                    self.ws();
                    self.value(item);
                }
                self.ws();
                self.out.push(']');
            }
            Gen::Obj(members) => self.members(members),
        }
    }

    /// The records as a document of `layout`; the offsets of their `{`.
    fn document(
        &mut self,
        layout: Layout,
        records: &[Vec<(String, Gen)>],
        meta: &Gen,
    ) -> Vec<usize> {
        let mut starts = Vec::new();
        match layout {
            Layout::Ndjson => {
                for r in records {
                    let blank = self.pick(&["", "", "\n", "  \n", "\r\n", "\t\n\n"]);
                    self.out.push_str(blank);
                    self.ws();
                    starts.push(self.out.len());
                    self.members(r);
                    self.ws();
                    let end = self.pick(&["\n", "\r\n"]);
                    self.out.push_str(end);
                }
            }
            Layout::Array | Layout::UsersMember => {
                self.newlines = true;
                if let Layout::UsersMember = layout {
                    self.out.push('{');
                    self.ws();
                    self.out.push_str("\"meta\"");
                    self.ws();
                    self.out.push(':');
                    self.ws();
                    self.value(meta);
                    self.ws();
                    self.out.push_str(",\"users\":");
                    self.ws();
                }
                self.out.push('[');
                for (i, r) in records.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.out.push(',');
                    }
                    self.ws();
                    starts.push(self.out.len());
                    self.members(r);
                }
                self.ws();
                self.out.push(']');
                if let Layout::UsersMember = layout {
                    self.ws();
                    self.out.push_str(",\"after\":");
                    self.value(meta);
                    self.ws();
                    self.out.push('}');
                }
                self.ws();
            }
        }
        starts
    }
}

fn document() -> impl Strategy<Value = Doc> {
    (
        proptest::sample::select(vec![Layout::Ndjson, Layout::Array, Layout::UsersMember]),
        proptest::collection::vec(record(), 1..5),
        value(),
        any::<u64>(),
        prop_oneof![1 => Just(256 * 1024), 2 => 1..64usize],
    )
        .prop_map(|(layout, records, meta, style, buffer)| {
            let mut w = Writer {
                out: String::new(),
                state: style | 1,
                newlines: false,
            };
            let starts = w.document(layout, &records, &meta);
            Doc {
                layout,
                text: w.out,
                starts,
                buffer,
            }
        })
}

/// What serde_json says a field must hold.
#[derive(Debug, PartialEq)]
enum Expected {
    Text(String),
    Number(Number),
    /// An array of scalars: its items (nulls left out), joined with `,`.
    Joined(Vec<Value>),
    /// Two paths give this field name (e.g. `a.b` and `a` → `b`): only its presence is checked.
    Ambiguous,
}

fn put(out: &mut BTreeMap<String, Expected>, name: String, e: Expected) {
    if out.insert(name.clone(), e).is_some() {
        out.insert(name, Expected::Ambiguous);
    }
}

/// serde_json's value flattened by the documented rules (`top`: `name` is a top-level member).
fn flatten(name: &str, top: bool, v: &Value, out: &mut BTreeMap<String, Expected>) {
    match v {
        Value::Null => {}
        Value::Bool(b) => put(out, name.into(), Expected::Text(b.to_string())),
        Value::Number(n) => put(out, name.into(), Expected::Number(n.clone())),
        Value::String(s) => put(out, name.into(), Expected::Text(s.clone())),
        Value::Object(members) => {
            for (k, v) in members {
                let inner = if top {
                    k.clone()
                } else {
                    format!("{name}.{k}")
                };
                flatten(&inner, false, v, out);
            }
        }
        Value::Array(items) => {
            if items.iter().all(|i| !i.is_array() && !i.is_object()) {
                let scalars: Vec<Value> = items.iter().filter(|i| !i.is_null()).cloned().collect();
                // No field where the joined text would be empty: no items, or one empty string.
                let joined_is_empty = scalars.is_empty()
                    || (scalars.len() == 1 && scalars[0] == Value::String(String::new()));
                if !joined_is_empty {
                    put(out, name.into(), Expected::Joined(scalars));
                }
            } else {
                for (i, item) in items.iter().enumerate() {
                    flatten(&format!("{name}.{i}"), false, item, out);
                }
            }
        }
    }
}

/// Whether `text` is exactly a JSON number that serde_json reads as `n`.
fn same_number(text: &str, n: &Number) -> bool {
    text.trim() == text
        && text.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
        && serde_json::from_str::<Value>(text).ok() == Some(Value::Number(n.clone()))
}

/// Whether `field` is `items` joined with `,` (numbers compared as numbers).
fn same_join(field: &str, items: &[Value]) -> bool {
    let mut rest = field;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            let Some(r) = rest.strip_prefix(',') else {
                return false;
            };
            rest = r;
        }
        match item {
            Value::String(s) => match rest.strip_prefix(s.as_str()) {
                Some(r) => rest = r,
                None => return false,
            },
            Value::Bool(b) => match rest.strip_prefix(if *b { "true" } else { "false" }) {
                Some(r) => rest = r,
                None => return false,
            },
            Value::Number(n) => {
                let end = rest.find(',').unwrap_or(rest.len());
                if !same_number(&rest[..end], n) {
                    return false;
                }
                rest = &rest[end..];
            }
            _ => return false,
        }
    }
    rest.is_empty()
}

fn compare(ours: &LegacyUser, reference: &Value) -> Result<(), String> {
    let mut expected = BTreeMap::new();
    flatten("", true, reference, &mut expected);
    let got = ours.fields.to_map();
    let names: Vec<&String> = got.keys().collect();
    let wanted: Vec<&String> = expected.keys().collect();
    if names != wanted {
        return Err(format!(
            "record {}: field names differ: ours {names:?}, serde_json's {wanted:?}",
            ours.position.record
        ));
    }
    for (name, e) in &expected {
        let v = &got[name];
        let same = match e {
            Expected::Text(t) => v == t,
            Expected::Number(n) => same_number(v, n),
            Expected::Joined(items) => same_join(v, items),
            Expected::Ambiguous => true,
        };
        if !same {
            return Err(format!(
                "record {} field {name:?}: ours {v:?}, serde_json's {e:?}",
                ours.position.record
            ));
        }
    }
    Ok(())
}

/// serde_json's records of the document.
fn reference(doc: &Doc) -> Result<Vec<Value>, String> {
    let err = |e: serde_json::Error| format!("serde_json refuses the document: {e}");
    match doc.layout {
        Layout::Ndjson => serde_json::Deserializer::from_str(&doc.text)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .map_err(err),
        Layout::Array => match serde_json::from_str::<Value>(&doc.text).map_err(err)? {
            Value::Array(items) => Ok(items),
            other => Err(format!("not an array: {other}")),
        },
        Layout::UsersMember => match serde_json::from_str::<Value>(&doc.text).map_err(err)? {
            Value::Object(mut m) => match m.remove("users") {
                Some(Value::Array(items)) => Ok(items),
                _ => Err("no users array".into()),
            },
            other => Err(format!("not an object: {other}")),
        },
    }
}

fn check_document(doc: Doc) -> Result<(), String> {
    let expected = reference(&doc)?;
    let format = match doc.layout {
        Layout::Ndjson => Format::Ndjson,
        _ => Format::Json,
    };
    let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
        doc.buffer,
        Cursor::new(doc.text.clone().into_bytes()),
    ));
    let mut src = source::from_reader(format, reader, &Default::default())
        .map_err(|e| format!("the source does not open: {e}"))?;
    let mut ours = Vec::new();
    while let Some(item) = src.next_record() {
        ours.push(item.map_err(|e| format!("a valid document gives an error: {e}"))?);
    }
    if ours.len() != expected.len() {
        return Err(format!(
            "{} records, serde_json reads {}",
            ours.len(),
            expected.len()
        ));
    }
    for (i, (user, value)) in ours.iter().zip(&expected).enumerate() {
        let start = doc.starts[i];
        let line = 1 + doc.text[..start].matches('\n').count() as u64;
        let pos = user.position;
        if (pos.record, pos.line, pos.byte_offset) != (i as u64 + 1, line, start as u64) {
            return Err(format!(
                "record {} at {pos:?}, written at byte {start} on line {line}",
                i + 1
            ));
        }
        compare(user, value)?;
    }
    Ok(())
}

#[test]
fn json_reader_agrees_with_serde_json_on_valid_documents() {
    run("JSON differential", 300, document(), check_document);
}

#[test]
fn the_comparison_sees_a_difference() {
    // The comparison itself must not be blind: a field that differs, a number that differs
    // and a join that differs are all caught.
    let reference: Value = serde_json::from_str(r#"{"a":"x","n":1.5,"l":["p",2,true]}"#).unwrap();
    let mut user = LegacyUser::default();
    user.fields.push("a", "x");
    user.fields.push("n", "1.50");
    user.fields.push("l", "p,2,true");
    compare(&user, &reference).unwrap();
    user.fields.push("n", "1.49");
    assert!(compare(&user, &reference).is_err());
    user.fields.push("n", "15e-1");
    compare(&user, &reference).unwrap();
    user.fields.push("l", "p,2,false");
    assert!(compare(&user, &reference).is_err());
    user.fields.push("l", "p,2.0,true");
    assert!(
        compare(&user, &reference).is_err(),
        "2.0 is not the integer 2"
    );
    user.fields.push("l", "p,2,true");
    user.fields.push("extra", "1");
    assert!(compare(&user, &reference).is_err());
}
