//! Django's legacy hashers: what old Django sites still hold for users who have not signed in
//! since, and what Django still verifies while the hasher is listed in `PASSWORD_HASHERS`
//! (checked against Django 4.2's `django.contrib.auth.hashers`, the last version that ships them
//! all; `identify_hasher` decides the same way as [`parse`]):
//!
//! * `sha1$<salt>$<hex>`: SHA-1 of salt + password, lowercase hex (`SHA1PasswordHasher`);
//! * `md5$<salt>$<hex>`: MD5 of salt + password (`MD5PasswordHasher`);
//! * `sha1$$<hex>`: SHA-1 of the password alone (`UnsaltedSHA1PasswordHasher`, 46 characters);
//! * `md5$$<hex>` or a bare 32-character hex string: MD5 of the password alone
//!   (`UnsaltedMD5PasswordHasher` writes the bare form and reads both);
//! * `crypt$<salt>$<13 characters>`: traditional DES `crypt(3)` with a two-character salt
//!   (`CryptPasswordHasher`; the salt field is empty in what Django 1.4+ wrote, and the crypt
//!   string starts with the salt anyway), see [`des_crypt`](super::des_crypt).
//!
//! `pbkdf2_sha1$` is the PBKDF2 family ([`super::django`]). None of these is importable into
//! Cognito; the trigger verifies them (they are fast, so no cost cap applies).

use std::fmt;

use md5::{Digest, Md5};
use sha1::Sha1;

use crate::bytes::hex;

use super::des_crypt::{des_crypt, is_des_crypt};
use super::{ct_eq, HashError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sha1,
    Md5,
    UnsaltedSha1,
    /// `md5$$<hex>`.
    UnsaltedMd5,
    /// The bare hex digest.
    UnsaltedMd5Bare,
    Crypt,
}

/// A hash written by one of Django's legacy hashers. `Debug` shows the scheme only.
#[derive(Clone, PartialEq, Eq)]
pub struct DjangoLegacyHash {
    kind: Kind,
    /// The salt field as stored (empty for the unsalted kinds and for new-style `crypt$$`).
    salt: String,
    /// The lowercase hex digest, or the 13-character crypt string.
    hash: String,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `s` is Django's bare unsalted MD5 form: 32 lowercase hex characters.
pub(crate) fn is_bare_md5(s: &str) -> bool {
    is_lower_hex(s, 32)
}

/// Parses `sha1$…`, `md5$…`, `crypt$…` or a bare unsalted MD5 digest; `UnknownFormat` when `s`
/// is none of these.
pub(crate) fn parse(s: &str) -> Result<DjangoLegacyHash, HashError> {
    if is_bare_md5(s) {
        return Ok(DjangoLegacyHash {
            kind: Kind::UnsaltedMd5Bare,
            salt: String::new(),
            hash: s.to_string(),
        });
    }
    let mut fields = s.splitn(3, '$');
    let (Some(algorithm), Some(salt), Some(hash)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(HashError::UnknownFormat);
    };
    let (kind, hex_len) = match (algorithm, salt.is_empty()) {
        ("sha1", false) => (Kind::Sha1, 40),
        ("sha1", true) => (Kind::UnsaltedSha1, 40),
        ("md5", false) => (Kind::Md5, 32),
        ("md5", true) => (Kind::UnsaltedMd5, 32),
        ("crypt", _) => (Kind::Crypt, 0),
        _ => return Err(HashError::UnknownFormat),
    };
    let legacy = DjangoLegacyHash {
        kind,
        salt: salt.to_string(),
        hash: hash.to_string(),
    };
    if kind == Kind::Crypt {
        if !is_des_crypt(hash) {
            return Err(HashError::unsupported(
                legacy.scheme(),
                "only the traditional 13-character DES crypt is supported",
            ));
        }
        if !(salt.is_empty() || hash.starts_with(salt)) {
            return Err(HashError::malformed(
                legacy.scheme(),
                "the salt field does not match the crypt string",
            ));
        }
    } else if !is_lower_hex(hash, hex_len) {
        return Err(HashError::malformed(
            legacy.scheme(),
            "the digest is not lowercase hex of the right length",
        ));
    }
    Ok(legacy)
}

impl DjangoLegacyHash {
    /// `django-sha1`, `django-md5`, `django-unsalted-sha1`, `django-unsalted-md5` or
    /// `django-crypt`.
    pub fn scheme(&self) -> &'static str {
        match self.kind {
            Kind::Sha1 => "django-sha1",
            Kind::Md5 => "django-md5",
            Kind::UnsaltedSha1 => "django-unsalted-sha1",
            Kind::UnsaltedMd5 | Kind::UnsaltedMd5Bare => "django-unsalted-md5",
            Kind::Crypt => "django-crypt",
        }
    }

    /// Whether `password` matches; the final comparison is constant-time.
    pub fn verify(&self, password: &str) -> bool {
        let salted = [self.salt.as_bytes(), password.as_bytes()].concat();
        let computed = match self.kind {
            Kind::Sha1 => hex(&Sha1::digest(&salted)),
            Kind::Md5 => hex(&Md5::digest(&salted)),
            Kind::UnsaltedSha1 => hex(&Sha1::digest(password.as_bytes())),
            Kind::UnsaltedMd5 | Kind::UnsaltedMd5Bare => hex(&Md5::digest(password.as_bytes())),
            Kind::Crypt => match des_crypt(password.as_bytes(), self.hash.as_bytes()) {
                Some(c) => c,
                None => return false,
            },
        };
        ct_eq(computed.as_bytes(), self.hash.as_bytes())
    }

    /// The string as Django stored it.
    pub fn encode(&self) -> String {
        match self.kind {
            Kind::Sha1 | Kind::UnsaltedSha1 => format!("sha1${}${}", self.salt, self.hash),
            Kind::Md5 | Kind::UnsaltedMd5 => format!("md5${}${}", self.salt, self.hash),
            Kind::UnsaltedMd5Bare => self.hash.clone(),
            Kind::Crypt => format!("crypt${}${}", self.salt, self.hash),
        }
    }
}

impl fmt::Debug for DjangoLegacyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DjangoLegacyHash")
            .field("scheme", &self.scheme())
            .finish_non_exhaustive()
    }
}
