//! The matching key and the fingerprints: how a source record is recognised as a user the state
//! knows, and how "what was last written" is compared with "what the source says now" without
//! keeping any value.
//!
//! Digests are FNV-1a 64 over length-prefixed bytes: stable across builds and Rust versions (they
//! are stored in the state), fast enough for a million users in well under a second. They detect
//! change; they are not a security boundary (a collision would only skip one update).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::mapping::MappedUser;

/// Which value identifies a user across syncs, decided in one place.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum MatchKey {
    /// The mapped `cognito:username` (the default).
    #[default]
    Username,
    /// The mapped `email`, compared lowercased.
    Email,
    /// A mapped custom attribute, e.g. `custom:legacy_id`.
    Custom(String),
}

impl FromStr for MatchKey {
    type Err = String;

    fn from_str(s: &str) -> Result<MatchKey, String> {
        match s {
            "username" => Ok(MatchKey::Username),
            "email" => Ok(MatchKey::Email),
            s if s.starts_with("custom:") && s.len() > "custom:".len() => {
                Ok(MatchKey::Custom(s.to_string()))
            }
            s => Err(format!(
                "--match {s:?}: expected username, email or custom:ATTRIBUTE"
            )),
        }
    }
}

impl fmt::Display for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchKey::Username => f.write_str("username"),
            MatchKey::Email => f.write_str("email"),
            MatchKey::Custom(a) => f.write_str(a),
        }
    }
}

impl MatchKey {
    /// The field a record without a key is rejected on.
    pub fn field(&self) -> &str {
        match self {
            MatchKey::Username => "username",
            MatchKey::Email => "email",
            MatchKey::Custom(a) => a,
        }
    }

    /// The user's key, or `None` when the record has no value for it.
    pub fn of(&self, u: &MappedUser) -> Option<String> {
        self.key_of_parts(&u.username, |name| u.attribute(name))
    }

    /// The key from a user's username and attributes, normalised (trimmed; an email in lower
    /// case): one rule for a source record ([`MatchKey::of`]) and a pool user
    /// ([`MatchKey::of_pool`]).
    pub(super) fn key_of_parts<'a>(
        &self,
        username: &'a str,
        attribute: impl Fn(&str) -> Option<&'a str>,
    ) -> Option<String> {
        let v = match self {
            MatchKey::Username => Some(username),
            MatchKey::Email => attribute("email"),
            MatchKey::Custom(a) => attribute(a),
        }?;
        let v = v.trim();
        if v.is_empty() {
            return None;
        }
        Some(match self {
            MatchKey::Email => v.to_lowercase(),
            _ => v.to_string(),
        })
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An FNV-1a 64 digest builder.
#[derive(Clone, Copy)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(FNV_OFFSET)
    }
}

impl Digest {
    pub fn bytes(mut self, b: &[u8]) -> Digest {
        for x in (b.len() as u64).to_le_bytes().iter().chain(b) {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
        self
    }

    pub fn str(self, s: &str) -> Digest {
        self.bytes(s.as_bytes())
    }

    pub fn u64(self, v: u64) -> Digest {
        self.bytes(&v.to_le_bytes())
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The in-memory identity of a key (its digest).
pub fn key_hash(key: &str) -> u64 {
    Digest::default().str(key).finish()
}

/// The digest of one attribute's value.
pub fn attr_digest(name: &str, value: &str) -> u64 {
    Digest::default().str(name).str(value).finish()
}

/// Whether a mapped attribute is one a sync writes with AdminUpdateUserAttributes (not the
/// `cognito:` pseudo-attributes such as `cognito:mfa_enabled`, nor `sub`).
pub fn is_managed_attribute(name: &str) -> bool {
    !name.starts_with("cognito:") && name != "sub"
}

/// What the pool should hold for one user: the digests of its attributes (sorted by name), its
/// enabled flag and its groups (sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub attrs: Vec<(String, u64)>,
    pub enabled: bool,
    pub groups: BTreeSet<String>,
}

impl Target {
    /// The target of a mapped user.
    pub fn of(u: &MappedUser) -> Target {
        let mut attrs: Vec<(String, u64)> = u
            .attributes
            .iter()
            .filter(|(n, _)| is_managed_attribute(n))
            .map(|(n, v)| (n.to_string(), attr_digest(n, v)))
            .collect();
        attrs.sort();
        Target {
            attrs,
            enabled: u.enabled,
            groups: u.groups.iter().cloned().collect(),
        }
    }

    /// Reads a stored row's parts back (the inverse of [`Target::attrs_text`] and
    /// [`Target::groups_text`]); malformed entries are dropped (they then count as changed).
    pub fn parse(attrs: &str, enabled: bool, groups: &str) -> Target {
        let attrs = attrs
            .split(';')
            .filter_map(|e| {
                let (n, h) = e.rsplit_once('=')?;
                Some((n.to_string(), u64::from_str_radix(h, 16).ok()?))
            })
            .collect::<Vec<_>>();
        let mut attrs = attrs;
        attrs.sort();
        Target {
            attrs,
            enabled,
            groups: groups
                .split('\n')
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// `name=hex16;…` as stored.
    pub fn attrs_text(&self) -> String {
        let mut s = String::with_capacity(self.attrs.len() * 24);
        for (n, h) in &self.attrs {
            s.push_str(n);
            s.push('=');
            s.push_str(&format!("{h:016x}"));
            s.push(';');
        }
        s
    }

    pub fn groups_text(&self) -> String {
        self.groups.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The one digest compared in memory.
    pub fn fingerprint(&self) -> i64 {
        fingerprint_parts(
            self.attrs.iter().map(|(n, h)| (n.as_str(), *h)),
            self.attrs.len(),
            self.enabled,
            self.groups.iter().map(String::as_str),
            self.groups.len(),
        )
    }

    pub fn attr(&self, name: &str) -> Option<u64> {
        self.attrs
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.attrs[i].1)
    }

    /// Sets (or with `None` removes) one attribute's digest.
    pub fn set_attr(&mut self, name: &str, digest: Option<u64>) {
        match (
            self.attrs.binary_search_by(|(n, _)| n.as_str().cmp(name)),
            digest,
        ) {
            (Ok(i), Some(d)) => self.attrs[i].1 = d,
            (Ok(i), None) => {
                self.attrs.remove(i);
            }
            (Err(i), Some(d)) => self.attrs.insert(i, (name.to_string(), d)),
            (Err(_), None) => {}
        }
    }
}

/// The one digest of sorted attribute digests, the enabled flag and sorted, distinct groups.
fn fingerprint_parts<'a>(
    attrs: impl Iterator<Item = (&'a str, u64)>,
    n_attrs: usize,
    enabled: bool,
    groups: impl Iterator<Item = &'a str>,
    n_groups: usize,
) -> i64 {
    let mut d = Digest::default().u64(n_attrs as u64);
    for (n, h) in attrs {
        d = d.str(n).u64(h);
    }
    d = d.u64(u64::from(enabled)).u64(n_groups as u64);
    for g in groups {
        d = d.str(g);
    }
    d.finish() as i64
}

/// The fingerprint of a mapped user, equal to `Target::of(u).fingerprint()` but without a
/// `String` per attribute: what an unchanged user costs in the detection pass.
pub fn fingerprint_of(u: &MappedUser) -> i64 {
    let mut attrs: Vec<(&str, u64)> = Vec::with_capacity(u.attributes.len());
    attrs.extend(
        u.attributes
            .iter()
            .filter(|(n, _)| is_managed_attribute(n))
            .map(|(n, v)| (n, attr_digest(n, v))),
    );
    attrs.sort_unstable();
    let mut groups: Vec<&str> = u.groups.iter().map(String::as_str).collect();
    groups.sort_unstable();
    groups.dedup();
    fingerprint_parts(
        attrs.iter().copied(),
        attrs.len(),
        u.enabled,
        groups.iter().copied(),
        groups.len(),
    )
}

/// What differs between the stored target and the source's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Attributes to write (their values are taken from the source record).
    pub set: Vec<String>,
    /// Attributes the source no longer has.
    pub delete: Vec<String>,
    /// `Some(true)`: enable, `Some(false)`: disable.
    pub enabled: Option<bool>,
    pub add_groups: Vec<String>,
    pub remove_groups: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.delete.is_empty()
            && self.enabled.is_none()
            && self.add_groups.is_empty()
            && self.remove_groups.is_empty()
    }
}

/// The difference from `stored` to `want`. When `email` (or `phone_number`) changes, its
/// `_verified` flag is sent along if the source maps it, because Cognito marks a changed email
/// unverified unless the flag comes in the same call.
pub fn diff(stored: &Target, want: &Target) -> Diff {
    let mut d = Diff::default();
    for (n, h) in &want.attrs {
        if stored.attr(n) != Some(*h) {
            d.set.push(n.clone());
        }
    }
    for (n, _) in &stored.attrs {
        if want.attr(n).is_none() {
            d.delete.push(n.clone());
        }
    }
    for (attr, flag) in [
        ("email", "email_verified"),
        ("phone_number", "phone_number_verified"),
    ] {
        if d.set.iter().any(|n| n == attr)
            && want.attr(flag).is_some()
            && !d.set.iter().any(|n| n == flag)
        {
            d.set.push(flag.to_string());
        }
    }
    if stored.enabled != want.enabled {
        d.enabled = Some(want.enabled);
    }
    d.add_groups = want.groups.difference(&stored.groups).cloned().collect();
    d.remove_groups = stored.groups.difference(&want.groups).cloned().collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(attrs: &[(&str, &str)], enabled: bool, groups: &[&str]) -> Target {
        let mut attrs: Vec<(String, u64)> = attrs
            .iter()
            .map(|(n, v)| (n.to_string(), attr_digest(n, v)))
            .collect();
        attrs.sort();
        Target {
            attrs,
            enabled,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn stored_text_reads_back_to_the_same_fingerprint() {
        let t = target(
            &[("email", "a@example.com"), ("name", "A"), ("custom:x", "1")],
            false,
            &["b", "a"],
        );
        let back = Target::parse(&t.attrs_text(), t.enabled, &t.groups_text());
        assert_eq!(back, t);
        assert_eq!(back.fingerprint(), t.fingerprint());
        // Any part changes the fingerprint.
        let mut other = t.clone();
        other.enabled = true;
        assert_ne!(other.fingerprint(), t.fingerprint());
        let mut other = t.clone();
        other.groups.insert("c".into());
        assert_ne!(other.fingerprint(), t.fingerprint());
        assert_ne!(
            target(&[("name", "ab")], true, &[]).fingerprint(),
            target(&[("name", "a"), ("b", "")], true, &[]).fingerprint()
        );
    }

    #[test]
    fn the_allocation_free_fingerprint_equals_the_targets() {
        let mut attributes = crate::mapping::Attributes::new();
        attributes.insert("name", "N");
        attributes.insert("email", "n@example.com");
        attributes.insert("cognito:mfa_enabled", "true");
        let u = MappedUser {
            position: crate::record::Position::default(),
            username: "n".into(),
            attributes,
            enabled: false,
            groups: vec!["b".into(), "a".into(), "b".into()],
            password: None,
            links: vec![],
            legacy_id: None,
        };
        let t = Target::of(&u);
        assert_eq!(fingerprint_of(&u), t.fingerprint());
        assert_eq!(
            t.attrs.len(),
            2,
            "cognito: pseudo-attributes are not compared"
        );
        assert_eq!(t.groups.len(), 2);
    }

    #[test]
    fn digests_are_stable_across_builds() {
        // Stored in states: a change here makes every user look changed once.
        assert_eq!(Digest::default().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(attr_digest("name", "A"), attr_digest("name", "A"));
        assert_ne!(attr_digest("name", "A"), attr_digest("nam", "eA"));
    }

    #[test]
    fn diff_sends_only_what_differs_and_carries_the_verified_flag() {
        let stored = target(
            &[
                ("email", "old@example.com"),
                ("email_verified", "true"),
                ("name", "A"),
                ("nickname", "x"),
            ],
            true,
            &["staff", "admins"],
        );
        let want = target(
            &[
                ("email", "new@example.com"),
                ("email_verified", "true"),
                ("name", "A"),
            ],
            false,
            &["staff", "ops"],
        );
        let d = diff(&stored, &want);
        assert_eq!(d.set, vec!["email", "email_verified"]);
        assert_eq!(d.delete, vec!["nickname"]);
        assert_eq!(d.enabled, Some(false));
        assert_eq!(d.add_groups, vec!["ops"]);
        assert_eq!(d.remove_groups, vec!["admins"]);
        assert!(diff(&want, &want).is_empty());
        // A name change alone sends the name alone.
        let renamed = target(
            &[
                ("email", "new@example.com"),
                ("email_verified", "true"),
                ("name", "B"),
            ],
            false,
            &["staff", "ops"],
        );
        assert_eq!(diff(&want, &renamed).set, vec!["name"]);
    }

    #[test]
    fn match_keys_parse_and_brakes_limit() {
        assert_eq!("email".parse::<MatchKey>(), Ok(MatchKey::Email));
        assert_eq!(
            "custom:legacy_id".parse::<MatchKey>(),
            Ok(MatchKey::Custom("custom:legacy_id".into()))
        );
        assert!("phone".parse::<MatchKey>().is_err());
        assert!("custom:".parse::<MatchKey>().is_err());
        use crate::sync::Brake;
        assert_eq!("5%".parse::<Brake>(), Ok(Brake::Percent(5.0)));
        assert_eq!("12".parse::<Brake>(), Ok(Brake::Count(12)));
        assert!("-1".parse::<Brake>().is_err());
        assert!("150%".parse::<Brake>().is_err());
        assert_eq!(Brake::Percent(5.0).limit(5), 1);
        assert_eq!(Brake::Percent(5.0).limit(1000), 50);
        assert_eq!(Brake::Percent(5.0).limit(10_000_000), 1000, "capped");
        assert_eq!(Brake::Count(7).limit(10_000_000), 7);
        assert_eq!(Brake::Percent(0.0).limit(100), 0);
    }
}
