//! phpass "portable" hashes: `$P$` (WordPress before 6.8, Drupal 7 imports, many PHP apps) and
//! `$H$` (phpBB3, same algorithm). Layout: `$P$` + one character giving log₂ of the iteration
//! count (crypt alphabet index, 7–30) + 8 salt characters + 22 checksum characters; the checksum
//! is `h = md5(salt . password)`, then `count` times `h = md5(h . password)`, encoded with
//! phpass' little-endian crypt64. Written out on the `md-5` crate, following Openwall's
//! `PasswordHash.php`.

use std::fmt;

use md5::{Digest, Md5};

use super::encoding::{is_crypt_b64, CRYPT_ALPHABET};
use super::{ct_eq, HashError};

const SCHEME: &str = "phpass";

/// A phpass portable hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PhpassHash {
    /// `P` or `H`.
    ident: char,
    log2_rounds: u8,
    salt: String,
    checksum: String,
}

impl PhpassHash {
    pub(crate) fn parse(s: &str) -> Result<Self, HashError> {
        let ident = match s.get(..3) {
            Some("$P$") => 'P',
            Some("$H$") => 'H',
            _ => return Err(HashError::UnknownFormat),
        };
        if s.len() != 34 || !s.is_ascii() {
            return Err(HashError::malformed(SCHEME, "expected 34 characters"));
        }
        let count_char = s.as_bytes().get(3).copied().unwrap_or_default();
        let log2 = CRYPT_ALPHABET
            .iter()
            .position(|c| *c == count_char)
            .and_then(|p| u8::try_from(p).ok())
            .filter(|p| (7..=30).contains(p))
            .ok_or(HashError::malformed(SCHEME, "bad iteration count"))?;
        let salt = s.get(4..12).unwrap_or_default();
        let checksum = s.get(12..).unwrap_or_default();
        if !is_crypt_b64(salt) || !is_crypt_b64(checksum) {
            return Err(HashError::malformed(
                SCHEME,
                "bad salt or checksum characters",
            ));
        }
        Ok(PhpassHash {
            ident,
            log2_rounds: log2,
            salt: salt.to_owned(),
            checksum: checksum.to_owned(),
        })
    }

    /// log₂ of the MD5 iteration count.
    pub fn log2_rounds(&self) -> u8 {
        self.log2_rounds
    }

    pub(crate) fn verify(&self, password: &str) -> bool {
        let pw = password.as_bytes();
        let mut h: [u8; 16] = Md5::new_with_prefix(self.salt.as_bytes())
            .chain_update(pw)
            .finalize()
            .into();
        for _ in 0..(1u64 << self.log2_rounds) {
            h = Md5::new_with_prefix(h).chain_update(pw).finalize().into();
        }
        ct_eq(encode64(&h).as_bytes(), self.checksum.as_bytes())
    }

    pub(crate) fn encode(&self) -> String {
        let count = CRYPT_ALPHABET
            .get(usize::from(self.log2_rounds))
            .copied()
            .map(char::from)
            .unwrap_or('.');
        format!("${}${count}{}{}", self.ident, self.salt, self.checksum)
    }
}

/// phpass' `encode64` of 16 bytes: 22 characters.
fn encode64(input: &[u8; 16]) -> String {
    let mut out = String::with_capacity(22);
    let c = |v: u32| char::from(CRYPT_ALPHABET[(v & 0x3f) as usize]);
    for chunk in input.chunks(3) {
        let mut v = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            v |= u32::from(*b) << (8 * i);
        }
        out.push(c(v));
        out.push(c(v >> 6));
        if chunk.len() > 1 {
            out.push(c(v >> 12));
        }
        if chunk.len() > 2 {
            out.push(c(v >> 18));
        }
    }
    out
}

impl fmt::Debug for PhpassHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhpassHash")
            .field("scheme", &SCHEME)
            .field("ident", &self.ident)
            .field("log2_rounds", &self.log2_rounds)
            .finish()
    }
}
