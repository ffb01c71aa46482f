//! The properties every fuzz input must keep, shared by the bounded proptest run (`tests/it/fuzz`,
//! part of `cargo test`) and the libFuzzer targets (`fuzz/`, for long campaigns), so that both
//! check exactly the same thing.
//!
//! Readers: never panic, always end (at most one item per input byte, plus one), nothing after a
//! fatal error or after the end, record numbers increase and byte offsets never go back, and every
//! position (of a record or of an error) lies inside the input with a line that agrees with its
//! byte offset; a record starts where its position says. Password material a reader hands out is
//! parsed too. Hash parsers: never panic, read back what they encode, verify cheaply parametrised
//! hashes without panicking, and never show salt or hash material in a message.

use std::io::{BufRead, BufReader, Cursor, Read};

use base64::Engine as _;

use cognito_migrate::password::{CostCap, FirebaseHashConfig, HashContext, PasswordHash};
use cognito_migrate::record::{Position, RawPassword};
use cognito_migrate::source::{self, Format, SourceOptions};

/// The file formats (everything but `cognito`, which reads a user pool).
pub const FORMATS: [Format; 7] = [
    Format::Csv,
    Format::Json,
    Format::Ndjson,
    Format::Auth0,
    Format::Firebase,
    Format::Keycloak,
    Format::Django,
];

/// The sample project's Firebase `hash_config`, for Firebase password material.
const FIREBASE_CONFIG: &str = include_str!("../../../samples/firebase/hash_config.json");

/// Caps under which verifying a fuzzed hash takes milliseconds, so that it can be tried.
const CHEAP: CostCap = CostCap {
    bcrypt_max_cost: 5,
    pbkdf2_max_iterations: 5_000,
    max_memory_kib: 1024,
    argon2_max_iterations: 3,
    argon2_max_parallelism: 4,
    scrypt_max_parallelism: 2,
    scrypt_max_total_kib: 1024,
    sha_crypt_max_rounds: 10_000,
    phpass_max_log2_rounds: 12,
};

/// What reading one input gave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the source opened (a `SourceError` otherwise).
    pub opened: bool,
    pub records: usize,
    pub errors: usize,
    /// Whether reading ended on a fatal error.
    pub fatal: bool,
}

/// Reading options from one byte, so that a fuzzer can vary them along with the input: bits 0–2
/// the CSV delimiter (sniffed, `,` `;` tab `|`), bits 3–4 the header setting, bit 5 a small record
/// cap (64 bytes), bit 6 service accounts, bit 7 another `users` key.
pub fn options_from_byte(b: u8) -> SourceOptions {
    SourceOptions {
        delimiter: match b & 7 {
            1 => Some(b','),
            2 => Some(b';'),
            3 => Some(b'\t'),
            4 => Some(b'|'),
            _ => None,
        },
        has_header: match (b >> 3) & 3 {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        },
        max_record_bytes: (b & 0x20 != 0).then_some(64),
        include_service_accounts: b & 0x40 != 0,
        users_key: (b & 0x80 != 0).then(|| "data".to_string()),
        django_model: None,
        firebase_layout: None,
    }
}

/// The reader's buffer size from one byte: 0 is the size real inputs get (256 KiB), anything else
/// that many bytes, so that records and tokens straddle buffer refills.
pub fn buffer_from_byte(b: u8) -> usize {
    if b == 0 {
        256 * 1024
    } else {
        usize::from(b)
    }
}

/// The libFuzzer entry point for a reader: byte 0 the options, byte 1 the buffer, the rest the
/// input. Panics (which is what libFuzzer reports) when a property fails.
#[allow(dead_code)] // called by the libFuzzer targets in fuzz/ only
pub fn fuzz_reader(format: Format, data: &[u8]) {
    let (opts, buffer, input) = match data {
        [o, b, rest @ ..] => (options_from_byte(*o), buffer_from_byte(*b), rest),
        _ => (SourceOptions::default(), buffer_from_byte(0), data),
    };
    if let Err(e) = read_checked(format, input, &opts, buffer) {
        panic!("{format}: {e}");
    }
}

/// Reads `data` as `format` through a buffer of `buffer` bytes and checks every property (see the
/// module documentation); `Err` says which one failed.
pub fn read_checked(
    format: Format,
    data: &[u8],
    opts: &SourceOptions,
    buffer: usize,
) -> Result<Outcome, String> {
    let text = decompressed(data);
    let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
        buffer.max(1),
        Cursor::new(data.to_vec()),
    ));
    // Messages never quote record content: no run of salt- or hash-like text from the input.
    let secrets = secret_runs(&String::from_utf8_lossy(&text));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let mut out = Outcome::default();
    let mut src = match source::from_reader(format, reader, opts) {
        Ok(src) => src,
        Err(e) => {
            if e.to_string().is_empty() {
                return Err("a source error with no message".into());
            }
            not_shown(&e.to_string(), &secrets, "a source error")?;
            return Ok(out);
        }
    };
    out.opened = true;
    let json = json_shaped(format, &text);
    let limit = text.len() + 1;
    let mut last: Option<Position> = None;
    while let Some(item) = src.next_record() {
        if out.records + out.errors == limit {
            return Err(format!(
                "more than {limit} items from {} bytes: the reader does not move on",
                text.len()
            ));
        }
        let pos = match &item {
            Ok(user) => user.position,
            Err(e) => e.position,
        };
        check_position(&text, pos)?;
        if let Some(prev) = last {
            if pos.record <= prev.record || pos.byte_offset < prev.byte_offset {
                return Err(format!("position {pos:?} does not come after {prev:?}"));
            }
        }
        last = Some(pos);
        match item {
            Ok(user) => {
                out.records += 1;
                let first = text[pos.byte_offset as usize..].first().copied();
                let starts_right = match first {
                    None | Some(b'\n' | b'\r') => false,
                    Some(b) => !json || b == b'{',
                };
                if !starts_right {
                    return Err(format!(
                        "record at {pos:?} starts with {first:?}, not with the record"
                    ));
                }
                // The fields' name index agrees with their list.
                if let Some((name, _)) = user
                    .fields
                    .iter()
                    .find(|(name, value)| user.fields.get(name) != Some(*value))
                {
                    return Err(format!(
                        "at {pos:?} field {name:?} is not found by its name"
                    ));
                }
                if let Some(raw) = &user.password {
                    check_raw_password(raw, &[])?;
                }
            }
            Err(e) => {
                out.errors += 1;
                if e.message.is_empty() || e.to_string().is_empty() {
                    return Err(format!("an error with no message at {pos:?}"));
                }
                not_shown(&e.message, &secrets, "a record error")?;
                if e.fatal {
                    out.fatal = true;
                    if src.next_record().is_some() {
                        return Err(format!("an item after the fatal error at {pos:?}"));
                    }
                    break;
                }
            }
        }
    }
    if src.next_record().is_some() {
        return Err("an item after the end".into());
    }
    let _ = src.take_warnings();
    Ok(out)
}

/// The bytes positions refer to: the input, gunzipped if it is gzip. A broken gzip stream
/// gives as much as decompresses before the break, which depends on how it is read: here a byte
/// in and a byte out at a time, for the longest such prefix (a reader sees a prefix of it).
fn decompressed(data: &[u8]) -> Vec<u8> {
    if !data.starts_with(&[0x1f, 0x8b]) {
        return data.to_vec();
    }
    let mut decoder = flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(1, data));
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while out.len() < 64 << 20 {
        match decoder.read(&mut byte) {
            Ok(1) => out.push(byte[0]),
            _ => break,
        }
    }
    out
}

/// Whether `format` reads `text` as JSON (where a record's first byte is its `{`).
fn json_shaped(format: Format, text: &[u8]) -> bool {
    let body = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    match format {
        Format::Csv => false,
        Format::Firebase | Format::Django => matches!(first, Some(b'{' | b'[')),
        _ => true,
    }
}

/// A position is inside the input, and its line is the one its byte offset is on.
pub fn check_position(text: &[u8], pos: Position) -> Result<(), String> {
    if pos.record == 0 || pos.line == 0 {
        return Err(format!("{pos:?}: records and lines count from 1"));
    }
    let Ok(offset) = usize::try_from(pos.byte_offset) else {
        return Err(format!("{pos:?}: offset out of range"));
    };
    if offset > text.len() {
        return Err(format!(
            "{pos:?}: offset past the end of {} bytes",
            text.len()
        ));
    }
    let line = 1 + text[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
    if line != pos.line {
        return Err(format!("{pos:?}: byte {offset} is on line {line}"));
    }
    Ok(())
}

/// The libFuzzer entry point for the hash parsers: byte 0 picks how the rest is handed over (a
/// hash string, a Keycloak credential, an ASP.NET blob, a Firebase hash and salt, or a Firebase
/// `hash_config`).
#[allow(dead_code)] // called by the libFuzzer targets in fuzz/ only
pub fn fuzz_hash(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let result = match kind % 5 {
        0 => check_hash_text(&text, &[]),
        1 => {
            let (secret_data, credential_data) = text.split_once('\0').unwrap_or((&text, ""));
            check_raw_password(
                &RawPassword::Keycloak {
                    secret_data: secret_data.to_string(),
                    credential_data: credential_data.to_string(),
                },
                &[],
            )
        }
        2 => check_raw_password(&RawPassword::AspNetIdentity(text.to_string()), &[]),
        3 => {
            let (hash, salt) = text.split_once('\0').unwrap_or((&text, ""));
            check_raw_password(
                &RawPassword::Firebase {
                    hash: hash.to_string(),
                    salt: salt.to_string(),
                },
                &[],
            )
        }
        _ => check_firebase_config(&text),
    };
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Parses `s` as a hash string and checks the result (see [`check_parsed`]); `secrets` are
/// pieces of salt or hash in `s` that no message may show.
pub fn check_hash_text(s: &str, secrets: &[&str]) -> Result<(), String> {
    match PasswordHash::parse(s) {
        Ok(h) => check_parsed(&h, secrets),
        Err(e) => not_shown(&format!("{e} {e:?}"), secrets, "a parse error"),
    }
}

/// Parses password material as a reader hands it out (Firebase with the sample project's
/// configuration) and checks the result.
pub fn check_raw_password(raw: &RawPassword, secrets: &[&str]) -> Result<(), String> {
    let ctx = HashContext {
        firebase: Some(FirebaseHashConfig::from_json(FIREBASE_CONFIG).map_err(|e| e.to_string())?),
    };
    not_shown(&format!("{raw:?}"), secrets, "RawPassword's Debug")?;
    match PasswordHash::from_raw(raw, &ctx) {
        Ok(h) => check_parsed(&h, secrets),
        Err(e) => not_shown(&format!("{e} {e:?}"), secrets, "a parse error"),
    }
}

/// Reads a Firebase `hash_config`; a hash made with an accepted one must pass [`check_parsed`].
pub fn check_firebase_config(json: &str) -> Result<(), String> {
    let config = match FirebaseHashConfig::from_json(json) {
        Ok(config) => config,
        // Its messages are fixed texts.
        Err(_) => return Ok(()),
    };
    // A Firebase hash is as long as the project's signer key.
    let engine = base64::engine::general_purpose::STANDARD;
    let raw = RawPassword::Firebase {
        hash: engine.encode(vec![0x5a; config.signer_key.len()]),
        salt: engine.encode(b"salt"),
    };
    let ctx = HashContext {
        firebase: Some(config),
    };
    match PasswordHash::from_raw(&raw, &ctx) {
        Ok(h) => check_parsed(&h, &[]),
        Err(e) => Err(format!("a valid configuration refused a valid hash: {e}")),
    }
}

/// A parsed hash: its encoding parses back to the same value, its descriptions and refusals show
/// no secret, and it verifies without panicking when that is cheap.
pub fn check_parsed(h: &PasswordHash, secrets: &[&str]) -> Result<(), String> {
    let encoded = h.encode();
    match PasswordHash::parse(&encoded) {
        Ok(back) if back == *h => {}
        Ok(back) => {
            return Err(format!(
                "{} parses back as a different hash: {h:?} became {back:?}",
                h.scheme()
            ))
        }
        Err(e) => return Err(format!("the encoding of a {h:?} does not parse: {e}")),
    }
    not_shown(
        &format!("{h} {h:?} {}", h.scheme()),
        secrets,
        "a hash's Display",
    )?;
    let _ = h.work_estimate().memory_kib();
    if let Err(e) = h.cognito_import() {
        not_shown(&e.to_string(), secrets, "a refused import")?;
    }
    if let Some(reason) = h.exceeds(&CostCap::default()) {
        not_shown(&reason, secrets, "a cost refusal")?;
    }
    if h.exceeds(&CHEAP).is_none() {
        let _ = h.verify("fuzz");
    }
    Ok(())
}

fn not_shown(text: &str, secrets: &[&str], what: &str) -> Result<(), String> {
    match secrets.iter().find(|s| text.contains(**s)) {
        Some(s) => Err(format!(
            "{what} shows {} characters of salt or hash",
            s.len()
        )),
        None => Ok(()),
    }
}

/// The salt and hash material of a valid hash string: its base64-like runs of 16 or more
/// characters that are neither all digits (a parameter) nor all letters (a word such as
/// `additionalParameters`).
pub fn secret_runs(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || "+/".contains(c)))
        .filter(|run| {
            run.len() >= 16
                && !run.bytes().all(|b| b.is_ascii_digit())
                && !run.bytes().all(|b| b.is_ascii_alphabetic())
        })
        .map(str::to_string)
        .collect()
}
