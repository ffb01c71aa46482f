//! The canonical legacy-user record.
//!
//! Every source (CSV, JSON, Auth0, Firebase, Keycloak, Django, another pool) turns its export into a
//! stream of [`LegacyUser`] values, so that mapping, validation, routing and the writers only ever see
//! one shape. Fields are kept flat and named as the source names them (`email`, `user_metadata.plan`);
//! the mapping decides what becomes which Cognito attribute. Password material, group membership and
//! the enabled flag are typed, because they are not attributes and need special handling.

use std::collections::BTreeMap;
use std::fmt;

use crate::bytes::same;

/// A record's flat fields: names and values side by side in one text buffer, in the order the
/// source found them.
///
/// Why not a `BTreeMap<String, String>`: reading a record used to allocate two `String`s per field
/// (~25 per user) and build a tree that the mapping then searched by string comparison, which made
/// record handling the bulk of `plan`'s time. Here a record costs two allocations (the text and the
/// entry list); a record read from one piece of text (a JSON line) starts with a copy of that text,
/// and names and values that are slices of it are kept as spans of the copy rather than copied one
/// by one ([`Fields::with_source`]). A lookup is one or two probes of a small open-addressed index
/// of the names (64 one-byte slots, by a cheap summary of the name), so the mapping's dozen lookups per record
/// no longer scan every entry. Records with more than [`MAX_INDEXED`] fields, or after a
/// [`Fields::remove`] or [`Fields::retain`], fall back to a scan that compares a summary of the
/// names first (a 128-bit set of the names' hashes answers most lookups of absent names without
/// a scan). Semantics are those of the map it replaces: a later field with the same name replaces
/// the earlier one ([`Fields::push`] and [`Fields::insert`] are the same operation), and iteration
/// is in name order with one entry per name.
#[derive(Default)]
pub struct Fields {
    /// The source text the record was read from, if it was attached ([`Fields::with_source`]),
    /// then every name and value pushed that is not a slice of it.
    text: String,
    /// Every field in push order: its name's and value's spans in `text`, and the name's [`tag`].
    entries: Vec<Entry>,
    /// The [`bit`] of every name pushed: a name whose bit is clear is absent (removals leave
    /// bits set, which only costs a scan).
    names: u128,
    /// By name (linear probing from [`index_slot`] of the tag): 1 + the index in `entries` of the
    /// name's current entry, or 0 for an empty slot. Not used once `unindexed`.
    index: Index,
    /// Whether `index` is not in use (past [`MAX_INDEXED`] entries, or after removals).
    unindexed: bool,
    /// Where the attached source text lives (address, length), while it is attached: a pushed
    /// slice inside it is kept as a span of its copy at the start of `text` instead of being
    /// copied again. Only ever compared as numbers, never read through.
    source: (usize, usize),
    /// Bytes of `text` that are the attached source's copy.
    source_len: usize,
    /// Whether a push was refused because the text would have passed [`MAX_FIELDS_TEXT`].
    overflowed: bool,
}

/// One field: spans of its name and value in the text, and the name's tag.
#[derive(Clone, Copy, Debug)]
struct Entry {
    name: (u32, u32),
    value: (u32, u32),
    tag: u32,
}

/// A record's name index (see [`Fields::index`]).
#[derive(Clone, Copy)]
struct Index([u8; INDEX_SLOTS]);

impl Default for Index {
    fn default() -> Index {
        Index([0; INDEX_SLOTS])
    }
}

/// Slots of a record's name index.
const INDEX_SLOTS: usize = 64;
/// The most entries the index takes (at most 5/8 full, so probes stay short); a record with more
/// fields is searched by a scan.
pub const MAX_INDEXED: usize = 40;

impl Clone for Fields {
    /// A copy with its own text; the source (if attached) is not: later pushes are copied.
    fn clone(&self) -> Fields {
        Fields {
            text: self.text.clone(),
            entries: self.entries.clone(),
            names: self.names,
            index: self.index,
            unindexed: self.unindexed,
            source: (0, 0),
            source_len: self.source_len,
            overflowed: self.overflowed,
        }
    }
}

/// A tag's first slot in the name index.
#[inline]
fn index_slot(tag: u32) -> usize {
    (tag.wrapping_mul(0x9E37_79B1) >> 26) as usize
}

/// The most text (names and values) one record's fields may take. Records are bounded
/// (`max_record_bytes`, default 16 MiB), but flattening nested JSON repeats key paths, so a
/// hostile record could otherwise grow to many gigabytes (and wrap the 32-bit offsets). Past this,
/// pushes are refused and [`Fields::overflowed`] says so; the JSON reader then rejects the record
/// as malformed, and the run goes on.
pub const MAX_FIELDS_TEXT: usize = 256 << 20;

/// A name's bit in [`Fields::names`], from its [`tag`].
#[inline]
fn bit(tag: u32) -> u128 {
    1u128 << (tag.wrapping_mul(0x9E37_79B1) >> 25)
}

/// A cheap summary of a name (its length and a few bytes; equal names have equal tags), compared
/// before the names themselves so that a lookup rarely compares strings.
#[inline]
fn tag(name: &[u8]) -> u32 {
    let len = (name.len() as u32) << 24;
    match name {
        [] => 0,
        [b] => len | *b as u32,
        [f, .., b] => len | (*f as u32) << 16 | (name[name.len() - 2] as u32) << 8 | *b as u32,
    }
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Room for `text` bytes of names and values and `fields` fields.
    pub fn with_capacity(text: usize, fields: usize) -> Fields {
        Fields {
            text: String::with_capacity(text),
            entries: Vec::with_capacity(fields),
            ..Fields::default()
        }
    }

    /// Fields of a record read from `source` (e.g. one JSON line), with room for `extra` more
    /// bytes of names and values and `fields` fields. `source` is copied once, and every name or
    /// value pushed later that is a slice of `source` (most JSON strings and numbers) becomes a
    /// span of that copy instead of being copied itself, until [`Fields::detach_source`]. The
    /// copy also holds what the reader did not make a field (a password hash, say); only
    /// fields are ever read from it.
    pub fn with_source(source: &str, extra: usize, fields: usize) -> Fields {
        let mut text = String::with_capacity(source.len() + extra);
        text.push_str(source);
        Fields {
            text,
            entries: Vec::with_capacity(fields),
            source: (source.as_ptr() as usize, source.len()),
            source_len: source.len(),
            ..Fields::default()
        }
    }

    /// Stops recognising slices of the source text (it may be freed and its memory reused once
    /// the reader moves on); what was pushed stays as it is.
    #[inline]
    pub fn detach_source(&mut self) {
        self.source = (0, 0);
    }

    /// The span in `text` of `s`: its place in the source's copy if `s` is a slice of the
    /// attached source, else appended.
    #[inline]
    fn span_of(&mut self, s: &str) -> (u32, u32) {
        let (base, len) = self.source;
        let at = (s.as_ptr() as usize).wrapping_sub(base);
        if at <= len && s.len() <= len - at {
            return (at as u32, (at + s.len()) as u32);
        }
        let start = self.text.len();
        self.text.push_str(s);
        (start as u32, self.text.len() as u32)
    }

    /// Sets `name` to `value`, replacing an earlier value of `name`.
    #[inline]
    pub fn push(&mut self, name: &str, value: &str) {
        if self.text.len() - self.source_len + name.len() + value.len() > MAX_FIELDS_TEXT {
            self.overflowed = true;
            return;
        }
        let g = tag(name.as_bytes());
        self.names |= bit(g);
        if !self.unindexed {
            self.index_entry(self.entries.len(), g, name.as_bytes());
        }
        let name = self.span_of(name);
        let value = self.span_of(value);
        self.entries.push(Entry {
            name,
            value,
            tag: g,
        });
    }

    /// Whether a push was refused for passing [`MAX_FIELDS_TEXT`] (the fields are incomplete).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Sets `name` to `value`, replacing an earlier value (like `BTreeMap::insert`, without
    /// returning the old value).
    pub fn insert(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        self.push(name.as_ref(), value.as_ref());
    }

    #[inline]
    fn span(&self, (s, e): (u32, u32)) -> &str {
        &self.text[s as usize..e as usize]
    }

    /// Whether entry `e` has tag `g` and the name `name`.
    #[inline]
    fn is(&self, e: &Entry, g: u32, name: &[u8]) -> bool {
        e.tag == g
            && same(
                &self.text.as_bytes()[e.name.0 as usize..e.name.1 as usize],
                name,
            )
    }

    /// Puts entry `e` (about to be pushed, or already there) with tag `g` and `name` in the
    /// index, in place of an earlier entry of the same name; stops indexing past
    /// [`MAX_INDEXED`] entries.
    #[inline]
    fn index_entry(&mut self, e: usize, g: u32, name: &[u8]) {
        if e >= MAX_INDEXED {
            self.unindexed = true;
            return;
        }
        let mut h = index_slot(g);
        loop {
            let at = self.index.0[h] as usize;
            if at == 0 || self.is(&self.entries[at - 1], g, name) {
                break;
            }
            h = (h + 1) % INDEX_SLOTS;
        }
        self.index.0[h] = (e + 1) as u8;
    }

    /// Makes the index again after entries moved (or stops using it if there are too many).
    fn reindex(&mut self) {
        self.index = Index::default();
        self.unindexed = false;
        for e in 0..self.entries.len() {
            let entry = self.entries[e];
            let name = self.span(entry.name).as_bytes().to_vec();
            self.index_entry(e, entry.tag, &name);
            if self.unindexed {
                return;
            }
        }
    }

    /// Index in `entries` of the current (last) entry named `name`.
    #[inline]
    fn find(&self, name: &str) -> Option<usize> {
        let n = name.as_bytes();
        let g = tag(n);
        if !self.unindexed {
            let mut h = index_slot(g);
            loop {
                let at = self.index.0[h] as usize;
                if at == 0 {
                    return None;
                }
                if self.is(&self.entries[at - 1], g, n) {
                    return Some(at - 1);
                }
                h = (h + 1) % INDEX_SLOTS;
            }
        }
        if self.names & bit(g) == 0 {
            return None;
        }
        self.entries.iter().rposition(|e| self.is(e, g, n))
    }

    #[inline]
    fn value_at(&self, i: usize) -> &str {
        self.span(self.entries[i].value)
    }

    #[inline]
    fn name_at(&self, i: usize) -> &str {
        self.span(self.entries[i].name)
    }

    /// The value of `name` (possibly empty), if the record has that field.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).map(|i| self.value_at(i))
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Removes `name` and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.find(name)?;
        let v = self.value_at(i).to_string();
        let n = name.as_bytes();
        let g = tag(n);
        let mut entries = std::mem::take(&mut self.entries);
        entries.retain(|e| !self.is(e, g, n));
        self.entries = entries;
        self.reindex();
        Some(v)
    }

    /// Keeps only the entries for which `keep(name, value)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.retain(|e| keep(self.span(e.name), self.span(e.value)));
        self.entries = entries;
        self.reindex();
    }

    /// The current entries, one per name, in name order.
    pub fn iter(&self) -> std::vec::IntoIter<(&str, &str)> {
        let mut all: Vec<(&str, &str, usize)> = (0..self.entries.len())
            .map(|i| (self.name_at(i), self.value_at(i), i))
            .collect();
        // By name, the last pushed first, so that dedup keeps it.
        all.sort_by(|a, b| a.0.cmp(b.0).then(b.2.cmp(&a.2)));
        all.dedup_by(|b, a| a.0 == b.0);
        all.into_iter()
            .map(|(k, v, _)| (k, v))
            .collect::<Vec<_>>()
            .into_iter()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(_, v)| v)
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.iter().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fields as a map.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a str, &'a str);
    type IntoIter = std::vec::IntoIter<(&'a str, &'a str)>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Fields {
        let mut f = Fields::new();
        for (k, v) in iter {
            f.push(k.as_ref(), v.as_ref());
        }
        f
    }
}

/// Where a record was found in its input, for error messages and for resuming.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// 1-based index of the record in the input (header rows not counted).
    pub record: u64,
    /// 1-based line on which the record starts; 0 where the input has no lines (e.g. ListUsers).
    pub line: u64,
    /// Byte offset of the record's first byte in the (decompressed) input.
    pub byte_offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "record {} (line {})", self.record, self.line)
        } else {
            write!(f, "record {}", self.record)
        }
    }
}

/// Password material as the source holds it, before the password module parses it.
///
/// `Debug` never shows the material itself.
#[derive(Clone, PartialEq, Eq)]
pub enum RawPassword {
    /// A self-describing string: modular crypt (`$2b$…`, `$6$…`, `$P$…`), PHC (`$argon2id$…`,
    /// `$pbkdf2-sha256$…`), Django (`pbkdf2_sha256$…`, `bcrypt_sha256$…`, `argon2$…`) and the like.
    Encoded(String),
    /// Firebase's modified scrypt: base64 hash and salt of one user; the project's `hash_config`
    /// (signer key, salt separator, rounds, mem_cost) comes from the run's settings.
    Firebase { hash: String, salt: String },
    /// A Keycloak password credential: its `secretData` and `credentialData` JSON strings.
    Keycloak {
        secret_data: String,
        credential_data: String,
    },
    /// An ASP.NET Identity (v2 or v3) `PasswordHash` column: base64 of the versioned blob.
    AspNetIdentity(String),
}

impl fmt::Debug for RawPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            RawPassword::Encoded(_) => "Encoded",
            RawPassword::Firebase { .. } => "Firebase",
            RawPassword::Keycloak { .. } => "Keycloak",
            RawPassword::AspNetIdentity(_) => "AspNetIdentity",
        };
        write!(f, "RawPassword::{kind}(<redacted>)")
    }
}

/// One user of the legacy system, as read from its export.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegacyUser {
    pub position: Position,
    /// Flat source fields by the source's own names; nested objects are joined with `.`
    /// (`user_metadata.plan`), arrays of scalars with `,`.
    pub fields: Fields,
    /// Group (or role) names the user belongs to.
    pub groups: Vec<String>,
    /// `false` for blocked / disabled / inactive users.
    pub enabled: bool,
    /// Password material, if the export has any for this user.
    pub password: Option<RawPassword>,
    /// The user's federated identities (social or enterprise sign-ins), as the vendor names them.
    /// Only identities through another identity provider: a vendor's own password database
    /// (Auth0's `auth0` provider, Firebase's `password` and `phone`) is not one.
    pub identities: Vec<Identity>,
}

/// One federated identity of a user: the provider as the vendor wrote it (`google-oauth2`,
/// `google.com`, `my-saml-connection`) and the provider's own id for the user (Google's `sub`,
/// …), which is what Cognito links (`Cognito_Subject`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    pub provider: String,
    pub user_id: String,
}

impl Identity {
    pub fn new(provider: impl Into<String>, user_id: impl Into<String>) -> Identity {
        Identity {
            provider: provider.into(),
            user_id: user_id.into(),
        }
    }
}

impl LegacyUser {
    pub fn new(position: Position) -> Self {
        LegacyUser {
            position,
            enabled: true,
            ..Default::default()
        }
    }

    /// A field's value, if present and not empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_behave_like_the_map_they_replace() {
        let mut f = Fields::with_capacity(8, 2);
        f.push("email", "a@x.io");
        f.push("name", "Ann");
        f.push("email", "b@x.io");
        f.insert("empty", "");
        assert_eq!(f.get("email"), Some("b@x.io"), "the last value wins");
        assert_eq!(f.get("emai"), None);
        assert_eq!(f.get("empty"), Some(""));
        assert!(f.contains_key("name") && !f.contains_key("Name"));
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            vec![("email", "b@x.io"), ("empty", ""), ("name", "Ann")],
            "one entry per name, in name order"
        );
        assert_eq!(f.len(), 3);
        assert_eq!(f.remove("email").as_deref(), Some("b@x.io"));
        assert_eq!(
            f.get("email"),
            None,
            "every value of a removed name is gone"
        );
        assert_eq!(f.remove("email"), None);
        f.retain(|k, _| k != "empty");
        assert_eq!(f.keys().collect::<Vec<_>>(), vec!["name"]);
        let same: Fields = [("name", "Ann")].into_iter().collect();
        assert_eq!(f, same);
        assert_eq!(format!("{f:?}"), r#"{"name": "Ann"}"#);
        assert_eq!(
            f.to_map(),
            BTreeMap::from([("name".to_string(), "Ann".to_string())])
        );

        // Enough names that their bits in the summary collide: every one is still found, and
        // absent ones are not.
        let mut many = Fields::new();
        for i in 0..300 {
            many.push(&format!("f{i}"), &i.to_string());
        }
        for i in 0..300 {
            assert_eq!(many.get(&format!("f{i}")), Some(i.to_string().as_str()));
        }
        assert!((300..600).all(|i| !many.contains_key(&format!("f{i}"))));

        // The name index: later values win, removals and retains re-index, and a record that
        // passes MAX_INDEXED fields (and so is scanned) still finds every name, in either order.
        for n in [3, MAX_INDEXED - 1, MAX_INDEXED, MAX_INDEXED + 1, 100] {
            let mut f = Fields::new();
            for i in 0..n {
                f.push(&format!("name{i}"), "first");
            }
            for i in (0..n).step_by(2) {
                f.push(&format!("name{i}"), &format!("second{i}"));
            }
            for i in 0..n {
                let want = if i % 2 == 0 {
                    format!("second{i}")
                } else {
                    "first".into()
                };
                assert_eq!(
                    f.get(&format!("name{i}")),
                    Some(want.as_str()),
                    "{n} fields, {i}"
                );
            }
            assert_eq!(f.get("name"), None);
            assert_eq!(f.get(&format!("name{n}")), None);
            assert_eq!(f.remove("name0").as_deref(), Some("second0"));
            f.retain(|k, _| k != "name1");
            for i in 2..n {
                assert!(f.contains_key(&format!("name{i}")), "{n} fields, {i}");
            }
            assert!(!f.contains_key("name0") && !f.contains_key("name1"));
            f.push("name0", "back");
            assert_eq!(f.get("name0"), Some("back"));
            assert_eq!(f.len(), n - 1);
        }
        // Fields read from a source text: slices of it are spans of its copy, other text is
        // appended, and both read back the same; after detaching, slices are copied.
        let line = String::from(r#"{"email":"a@x.io","name":"Ann"}"#);
        let mut f = Fields::with_source(&line, 16, 4);
        f.push(&line[2..7], &line[10..16]);
        f.push("name", &line[26..29]);
        assert_eq!(f.get("email"), Some("a@x.io"));
        assert_eq!(
            f.text.len(),
            line.len() + 4,
            "only the name not in the line was copied"
        );
        f.push("user_metadata.plan", "pro");
        f.detach_source();
        f.push(&line[2..7], &line[26..29]);
        drop(line);
        assert_eq!(f.get("email"), Some("Ann"), "the later push wins");
        assert_eq!(f.get("name"), Some("Ann"));
        assert_eq!(f.get("user_metadata.plan"), Some("pro"));
        assert_eq!(f.len(), 3);
        let copy = f.clone();
        assert_eq!(copy, f);

        let mut u = LegacyUser::new(Position::default());
        u.fields = f;
        u.fields.push("blank", "");
        assert_eq!(u.field("name"), Some("Ann"));
        assert_eq!(u.field("blank"), None, "field() hides empty values");
    }
}
