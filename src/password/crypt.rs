//! The glibc `crypt(3)` hashes found in Unix-era user tables and LDAP/`/etc/shadow` dumps:
//!
//! * SHA-crypt, `$5$` (SHA-256) and `$6$` (SHA-512): `$6$[rounds=<n>$]<salt>$<checksum>`, salt up
//!   to 16 characters, default 5000 rounds when `rounds=` is absent; as glibc does, a rounds value
//!   below 1000 is computed as 1000 (and above 999,999,999 as that). Computed by the `sha-crypt`
//!   crate.
//! * MD5-crypt, `$1$<salt>$<checksum>`, salt up to 8 characters, 1000 fixed rounds; Poul-Henning
//!   Kamp's algorithm, written out below on the `md-5` crate.
//!
//! Neither is importable into Cognito; the trigger verifies them.

use std::fmt;

use md5::{Digest, Md5};
use sha_crypt::PasswordVerifier;

use super::encoding::{is_crypt_b64, parse_u32, CRYPT_ALPHABET};
use super::{ct_eq, HashError};

/// SHA-crypt's variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ShaVariant {
    Sha256,
    Sha512,
}

/// A SHA-crypt hash `$5$…` / `$6$…`.
#[derive(Clone, PartialEq, Eq)]
pub struct ShaCryptHash {
    variant: ShaVariant,
    /// `Some(n)` when the string had `rounds=n`.
    rounds: Option<u32>,
    salt: String,
    checksum: String,
}

const SHA_DEFAULT_ROUNDS: u32 = 5_000;

impl ShaCryptHash {
    pub(crate) fn parse(s: &str) -> Result<Self, HashError> {
        let (variant, scheme, checksum_len) = match s.get(..3) {
            Some("$5$") => (ShaVariant::Sha256, "sha256-crypt", 43),
            Some("$6$") => (ShaVariant::Sha512, "sha512-crypt", 86),
            _ => return Err(HashError::UnknownFormat),
        };
        let fields: Vec<&str> = s.get(3..).unwrap_or_default().split('$').collect();
        let (rounds, salt, checksum) = match fields.as_slice() {
            [r, salt, checksum] if r.starts_with("rounds=") => {
                let n = parse_u32(
                    r.strip_prefix("rounds=").unwrap_or_default(),
                    scheme,
                    "bad rounds",
                )?;
                (Some(n), *salt, *checksum)
            }
            [salt, checksum] => (None, *salt, *checksum),
            _ => {
                return Err(HashError::malformed(
                    scheme,
                    "expected $<id>$[rounds=<n>$]<salt>$<checksum>",
                ))
            }
        };
        if salt.len() > 16 || !salt.is_ascii() || salt.contains([':', '\n']) {
            return Err(HashError::malformed(scheme, "bad salt"));
        }
        if checksum.len() != checksum_len || !is_crypt_b64(checksum) {
            return Err(HashError::malformed(scheme, "bad checksum"));
        }
        Ok(ShaCryptHash {
            variant,
            rounds,
            salt: salt.to_owned(),
            checksum: checksum.to_owned(),
        })
    }

    /// Rounds as computed (glibc's clamping applied).
    pub fn rounds(&self) -> u32 {
        self.rounds
            .unwrap_or(SHA_DEFAULT_ROUNDS)
            .clamp(1_000, 999_999_999)
    }

    fn ident(&self) -> &'static str {
        match self.variant {
            ShaVariant::Sha256 => "5",
            ShaVariant::Sha512 => "6",
        }
    }

    pub(crate) fn scheme(&self) -> &'static str {
        match self.variant {
            ShaVariant::Sha256 => "sha256-crypt",
            ShaVariant::Sha512 => "sha512-crypt",
        }
    }

    pub(crate) fn verify(&self, password: &str) -> bool {
        // The crate reads the same notation; give it the effective rounds explicitly.
        let normalized = format!(
            "${}$rounds={}${}${}",
            self.ident(),
            self.rounds(),
            self.salt,
            self.checksum
        );
        sha_crypt::ShaCrypt::default()
            .verify_password(password.as_bytes(), normalized.as_str())
            .is_ok()
    }

    pub(crate) fn encode(&self) -> String {
        match self.rounds {
            Some(n) => format!(
                "${}$rounds={n}${}${}",
                self.ident(),
                self.salt,
                self.checksum
            ),
            None => format!("${}${}${}", self.ident(), self.salt, self.checksum),
        }
    }
}

impl fmt::Debug for ShaCryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShaCryptHash")
            .field("scheme", &self.scheme())
            .field("rounds", &self.rounds())
            .finish()
    }
}

/// An MD5-crypt hash `$1$…`.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5CryptHash {
    salt: String,
    checksum: String,
}

impl Md5CryptHash {
    pub(crate) fn parse(s: &str) -> Result<Self, HashError> {
        const SCHEME: &str = "md5-crypt";
        let rest = s.strip_prefix("$1$").ok_or(HashError::UnknownFormat)?;
        let (salt, checksum) = rest.split_once('$').ok_or(HashError::malformed(
            SCHEME,
            "expected $1$<salt>$<checksum>",
        ))?;
        if salt.len() > 8 || !salt.is_ascii() || salt.contains([':', '\n']) {
            return Err(HashError::malformed(SCHEME, "bad salt"));
        }
        if checksum.len() != 22 || !is_crypt_b64(checksum) {
            return Err(HashError::malformed(SCHEME, "bad checksum"));
        }
        Ok(Md5CryptHash {
            salt: salt.to_owned(),
            checksum: checksum.to_owned(),
        })
    }

    pub(crate) fn verify(&self, password: &str) -> bool {
        let computed = md5_crypt_checksum(password.as_bytes(), self.salt.as_bytes());
        ct_eq(computed.as_bytes(), self.checksum.as_bytes())
    }

    pub(crate) fn encode(&self) -> String {
        format!("$1${}${}", self.salt, self.checksum)
    }
}

impl fmt::Debug for Md5CryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Md5CryptHash")
            .field("scheme", &"md5-crypt")
            .field("rounds", &1000)
            .finish()
    }
}

/// The 22-character MD5-crypt checksum of `password` with `salt` (at most 8 bytes used).
fn md5_crypt_checksum(password: &[u8], salt: &[u8]) -> String {
    let salt = salt.get(..salt.len().min(8)).unwrap_or(salt);
    let alternate = {
        let mut h = Md5::new();
        h.update(password);
        h.update(salt);
        h.update(password);
        h.finalize()
    };
    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(b"$1$");
    ctx.update(salt);
    let mut remaining = password.len();
    while remaining > 0 {
        let n = remaining.min(16);
        ctx.update(alternate.get(..n).unwrap_or_default());
        remaining -= n;
    }
    let first = [password.first().copied().unwrap_or(0)];
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(first);
        }
        i >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut h = Md5::new();
        if round & 1 == 1 {
            h.update(password);
        } else {
            h.update(digest);
        }
        if round % 3 != 0 {
            h.update(salt);
        }
        if round % 7 != 0 {
            h.update(password);
        }
        if round & 1 == 1 {
            h.update(digest);
        } else {
            h.update(password);
        }
        digest = h.finalize();
    }
    let d: [u8; 16] = digest.into();
    let mut out = String::with_capacity(22);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let v = (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]);
        push_crypt64(&mut out, v, 4);
    }
    push_crypt64(&mut out, u32::from(d[11]), 2);
    out
}

/// Appends `n` crypt(3)-alphabet characters of `v`, least significant 6 bits first.
fn push_crypt64(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(CRYPT_ALPHABET[(v & 0x3f) as usize]));
        v >>= 6;
    }
}
