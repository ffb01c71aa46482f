//! Proptest strategies that make fuzz inputs for the readers: mutations of the seed corpus (the
//! way a mutational fuzzer starts from valid exports and breaks them a little), random bytes, and
//! "token soups" of the bytes that drive the readers' state machines.

use std::fmt;

use cognito_migrate::source::Format;
use proptest::prelude::*;
use proptest::sample::Index;

use super::check::FORMATS;
use super::corpus::seeds;

/// Byte strings that matter to the JSON and CSV state machines, the sniffers and the vendor
/// adapters.
pub const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"\r",
    b"\t",
    b" ",
    b";",
    b"|",
    b"\"\"",
    b"\\\"",
    b"\\u",
    b"\\u00e9",
    b"\\ud83d\\ude00",
    b"\\ud800",
    b"\\udc00x",
    b"\\/",
    b"\0",
    b"\x1f",
    b"\x7f",
    b"\xff",
    b"\xc3",
    b"\xc3\xa9",
    b"\xe2\x82",
    b"\xf0\x9f\x98\x80",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\x1f\x8b",
    b"null",
    b"true",
    b"false",
    b"-0",
    b"1e5",
    b"0.5",
    b"-",
    b"12345678901234567890",
    b"{}",
    b"[]",
    b"\"a\":",
    b"{\"users\":[",
    b"\"users\":",
    b"\\N",
    b"UID,",
    b"password,",
    b"$",
    b"{\"model\":\"auth.user\",\"fields\":{\"password\":\"x\"}}",
    b"\"passwordHash\":\"$2b$04$",
    b"\"custom_password_hash\":{\"algorithm\":\"bcrypt\",\"hash\":{\"value\":\"x\"}}",
    b"\"credentials\":[{\"type\":\"password\",\"secretData\":\"{}\",\"credentialData\":\"{}\"}]",
    b"\"serviceAccountClientId\":\"c\",",
    b"\"identities\":[{\"provider\":\"p\"},{}],",
    b"\"providerUserInfo\":[{\"providerId\":\"a.b.com\"}],",
    b"\"customAttributes\":\"{\\\"a\\\":[1]}\",",
];

/// Numbers worth putting where a number was: zero, edges of `u8`/`u32`/`u64`, and none.
pub const NUMBERS: &[&str] = &[
    "",
    "0",
    "1",
    "4",
    "31",
    "32",
    "255",
    "256",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "00",
];

/// One change to an input.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Sets one byte.
    Set(Index, u8),
    /// Inserts one of [`TOKENS`].
    Insert(Index, usize),
    /// Deletes up to this many bytes.
    Delete(Index, u8),
    /// Cuts the input off.
    Truncate(Index),
    /// Copies a slice of the input to another place.
    Copy(Index, u16, Index),
    /// Replaces the run of digits at or after a point with one of [`NUMBERS`].
    Number(Index, usize),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        4 => (any::<Index>(), 0..TOKENS.len()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        2 => (any::<Index>(), 1..32u8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1..512u16, any::<Index>()).prop_map(|(f, n, t)| Mutation::Copy(f, n, t)),
        2 => (any::<Index>(), 0..NUMBERS.len()).prop_map(|(i, n)| Mutation::Number(i, n)),
    ]
}

/// Applies `m` to `data`.
pub fn apply(data: &mut Vec<u8>, m: &Mutation) {
    let len = data.len();
    // A place in the input, end included.
    let at = |i: &Index| i.index(len + 1);
    match m {
        Mutation::Set(i, b) if len > 0 => {
            let i = i.index(len);
            data[i] = *b;
        }
        Mutation::Set(..) => data.push(0),
        Mutation::Insert(i, t) => {
            let i = at(i);
            data.splice(i..i, TOKENS[*t].iter().copied());
        }
        Mutation::Delete(i, n) => {
            let i = at(i);
            let end = (i + usize::from(*n)).min(len);
            data.drain(i..end);
        }
        Mutation::Truncate(i) => data.truncate(at(i)),
        Mutation::Copy(from, n, to) => {
            let from = at(from);
            let end = (from + usize::from(*n)).min(len);
            let piece = data[from..end].to_vec();
            let to = at(to);
            data.splice(to..to, piece);
        }
        Mutation::Number(i, n) => {
            let start = at(i);
            let Some(first) = data[start..].iter().position(u8::is_ascii_digit) else {
                return;
            };
            let first = start + first;
            let end = data[first..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(len, |k| first + k);
            data.splice(first..end, NUMBERS[*n].bytes());
        }
    }
}

/// One input for a reader, shown as an escaped byte string so that a failure prints a
/// reproducer.
#[derive(Clone)]
pub struct ReaderCase {
    pub format: Format,
    /// See [`super::check::options_from_byte`].
    pub options: u8,
    /// See [`super::check::buffer_from_byte`].
    pub buffer: u8,
    pub input: Vec<u8>,
    /// Where the input came from.
    pub origin: String,
}

impl fmt::Debug for ReaderCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ReaderCase {{ format: {}, options: {:#04x}, buffer: {}, origin: {}, input: b\"{}\" }}",
            self.format,
            self.options,
            self.buffer,
            self.origin,
            self.input.escape_ascii()
        )
    }
}

fn format() -> impl Strategy<Value = Format> {
    proptest::sample::select(FORMATS.to_vec())
}

/// Mostly the defaults, sometimes anything.
fn options() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(0u8), 1 => any::<u8>()]
}

/// Mostly real buffers, often tiny ones (refills inside tokens).
fn buffer() -> impl Strategy<Value = u8> {
    prop_oneof![2 => Just(0u8), 2 => 1..=16u8, 1 => any::<u8>()]
}

/// A seed with a few mutations, read mostly as its own format.
pub fn mutated_seed() -> impl Strategy<Value = ReaderCase> {
    let seeds = seeds();
    (
        0..seeds.len(),
        proptest::collection::vec(mutation(), 0..8),
        proptest::option::weighted(0.25, format()),
        options(),
        buffer(),
    )
        .prop_map(move |(i, mutations, other, options, buffer)| {
            let seed = &seeds[i];
            let mut input = seed.bytes.clone();
            for m in &mutations {
                apply(&mut input, m);
            }
            ReaderCase {
                format: other.unwrap_or(seed.format),
                options,
                buffer,
                input,
                origin: format!("{} with {} mutations", seed.name, mutations.len()),
            }
        })
}

/// Random bytes.
pub fn random_bytes() -> impl Strategy<Value = ReaderCase> {
    (
        format(),
        proptest::collection::vec(any::<u8>(), 0..300),
        options(),
        buffer(),
    )
        .prop_map(|(format, input, options, buffer)| ReaderCase {
            format,
            options,
            buffer,
            input,
            origin: "random bytes".into(),
        })
}

/// A concatenation of [`TOKENS`] and short words.
pub fn token_soup() -> impl Strategy<Value = ReaderCase> {
    let piece = prop_oneof![
        3 => (0..TOKENS.len()).prop_map(|t| TOKENS[t].to_vec()),
        1 => "[a-z0-9 ]{0,20}".prop_map(String::into_bytes),
    ];
    (
        format(),
        proptest::collection::vec(piece, 0..80),
        options(),
        buffer(),
    )
        .prop_map(|(format, pieces, options, buffer)| ReaderCase {
            format,
            options,
            buffer,
            input: pieces.concat(),
            origin: "token soup".into(),
        })
}
