//! Django's password notation, `<algorithm>$<fields>`, as `django.contrib.auth.hashers` writes it
//! (checked against Django 5.2):
//!
//! * `pbkdf2_sha256$<iterations>$<salt>$<b64 hash>` and `pbkdf2_sha1$…`: the salt is an ASCII
//!   string used *as is* (its bytes are the PBKDF2 salt, it is not base64), the hash standard
//!   base64 with padding, 32 (SHA-256) or 20 (SHA-1) bytes;
//! * `bcrypt_sha256$$2b$12$…`: bcrypt over the lowercase hex SHA-256 of the password — Django's
//!   current and its older (`$2a$`, from py-bcrypt) format differ only in the marker;
//! * `bcrypt$$2b$12$…`: plain bcrypt;
//! * `argon2$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`: `argon2` followed by a PHC string
//!   (argon2i/argon2d and the legacy string without `v=` too);
//! * `scrypt$<N>$<salt>$<r>$<p>$<b64 hash>`: salt used as is, like PBKDF2's;
//! * the legacy `sha1$`, `md5$`, unsalted MD5 (bare hex or `md5$$`), unsalted SHA-1 (`sha1$$`)
//!   and `crypt$` hashers: see [`django_legacy`](super::django_legacy).
//!
//! The parsed values are the shared family types with a Django flavour, so that `encode`
//! writes Django's notation back and `cognito_import` converts it like any other hash of the
//! same function.

use super::argon2::{Argon2Flavor, Argon2Hash};
use super::bcrypt::{BcryptFlavor, BcryptHash};
use super::pbkdf2::{Pbkdf2Digest, Pbkdf2Flavor, Pbkdf2Hash};
use super::scrypt::{ScryptFlavor, ScryptHash};
use super::{HashError, PasswordHash};

/// Parses a Django-notation string; `UnknownFormat` when it is not one.
pub(crate) fn parse(s: &str) -> Result<PasswordHash, HashError> {
    if super::django_legacy::is_bare_md5(s) {
        return super::django_legacy::parse(s).map(PasswordHash::DjangoLegacy);
    }
    let (algorithm, rest) = s.split_once('$').ok_or(HashError::UnknownFormat)?;
    match algorithm {
        "pbkdf2_sha256" => parse_pbkdf2(rest, Pbkdf2Digest::Sha256),
        "pbkdf2_sha1" => parse_pbkdf2(rest, Pbkdf2Digest::Sha1),
        "bcrypt_sha256" => parse_bcrypt(rest, BcryptFlavor::DjangoSha256),
        "bcrypt" => parse_bcrypt(rest, BcryptFlavor::Django),
        "argon2" => Argon2Hash::parse_phc_with(&format!("${rest}"), Argon2Flavor::Django)
            .map(PasswordHash::Argon2),
        "scrypt" => parse_scrypt(rest),
        "sha1" | "md5" | "crypt" => super::django_legacy::parse(s).map(PasswordHash::DjangoLegacy),
        _ => Err(HashError::UnknownFormat),
    }
}

fn parse_pbkdf2(rest: &str, digest: Pbkdf2Digest) -> Result<PasswordHash, HashError> {
    let scheme = match digest {
        Pbkdf2Digest::Sha1 => "django-pbkdf2-sha1",
        _ => "django-pbkdf2-sha256",
    };
    let mut fields = rest.split('$');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(HashError::malformed(
            scheme,
            "expected 4 $-separated fields",
        ));
    };
    let iterations = super::encoding::parse_u32(iterations, scheme, "bad iteration count")?;
    if salt.is_empty() {
        return Err(HashError::malformed(scheme, "empty salt"));
    }
    let hash = super::encoding::b64_decode(hash, scheme, "hash is not base64")?;
    Pbkdf2Hash::new(
        Pbkdf2Flavor::Django,
        digest,
        iterations,
        salt.as_bytes().to_vec(),
        hash,
    )
    .map(PasswordHash::Pbkdf2)
}

fn parse_bcrypt(rest: &str, flavor: BcryptFlavor) -> Result<PasswordHash, HashError> {
    let inner = rest.strip_prefix('$').ok_or(HashError::malformed(
        match flavor {
            BcryptFlavor::DjangoSha256 => "django-bcrypt-sha256",
            _ => "django-bcrypt",
        },
        "expected an empty field before the bcrypt hash",
    ))?;
    BcryptHash::parse_with(&format!("${inner}"), flavor).map(PasswordHash::Bcrypt)
}

fn parse_scrypt(rest: &str) -> Result<PasswordHash, HashError> {
    const SCHEME: &str = "django-scrypt";
    let mut fields = rest.split('$');
    let (Some(n), Some(salt), Some(r), Some(p), Some(hash), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(HashError::malformed(
            SCHEME,
            "expected 6 $-separated fields",
        ));
    };
    let n = super::encoding::parse_u32(n, SCHEME, "bad work factor")?;
    if !n.is_power_of_two() || n < 2 {
        return Err(HashError::malformed(
            SCHEME,
            "work factor is not a power of two",
        ));
    }
    let log_n = u8::try_from(n.trailing_zeros())
        .map_err(|_| HashError::malformed(SCHEME, "bad work factor"))?;
    let r = super::encoding::parse_u32(r, SCHEME, "bad block size")?;
    let p = super::encoding::parse_u32(p, SCHEME, "bad parallelism")?;
    if salt.is_empty() {
        return Err(HashError::malformed(SCHEME, "empty salt"));
    }
    let hash = super::encoding::b64_decode(hash, SCHEME, "hash is not base64")?;
    ScryptHash::new(
        ScryptFlavor::Django,
        log_n,
        r,
        p,
        salt.as_bytes().to_vec(),
        hash,
    )
    .map(PasswordHash::Scrypt)
}
