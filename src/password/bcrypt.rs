//! bcrypt, the most common hash in exports (`$2a$`, `$2b$`, `$2y$`, `$2x$`), and the wrappers
//! that run it over a pre-hash of the password: Django's `bcrypt_sha256$` (hex SHA-256) and
//! WordPress 6.8's `$wp$` (base64 HMAC-SHA384). Django's plain `bcrypt$` is bcrypt unchanged.
//!
//! The bcrypt core is the `bcrypt` crate. Variants: `$2a$`, `$2b$` and `$2y$` compute the same
//! function for every password under 255 bytes (bcrypt reads at most 72); `$2x$` is
//! crypt_blowfish's marker for hashes made by its sign-extension bug, which differ from `$2a$`
//! only for passwords with bytes ≥ 0x80 — those are refused (verify fails closed) rather than
//! emulating the bug; 7-bit passwords verify normally.

use std::fmt;

use sha2::{Digest, Sha256};

use super::{wordpress, HashError};

/// Whether a byte is in bcrypt's base-64 alphabet (`./A-Za-z0-9`).
static BCRYPT_ALPHABET: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
        c += 1;
    }
    t
};

/// Whether the 53 characters after `$2b$cc$`, already known to be in bcrypt's base64 alphabet,
/// decode the way the `bcrypt` crate requires: the 22-character salt's last character carries
/// 2 data bits and the 31-character hash's last one 4, and the bits left over must be zero (the
/// crate's decoder refuses trailing bits). The same answer as parsing it into
/// `bcrypt::HashParts` (tested against it), without decoding: it runs for every user of a plan.
fn canonical_tail(body: &[u8]) -> bool {
    /// The position of a character in `./A-Za-z0-9`.
    fn index(c: u8) -> u8 {
        match c {
            b'.' => 0,
            b'/' => 1,
            b'A'..=b'Z' => c - b'A' + 2,
            b'a'..=b'z' => c - b'a' + 28,
            _ => c.wrapping_sub(b'0').wrapping_add(54),
        }
    }
    body.len() == 53 && index(body[21]) & 0x0f == 0 && index(body[52]) & 0x03 == 0
}

/// The bcrypt version marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BcryptVersion {
    TwoA,
    TwoB,
    TwoX,
    TwoY,
}

impl BcryptVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            BcryptVersion::TwoA => "2a",
            BcryptVersion::TwoB => "2b",
            BcryptVersion::TwoX => "2x",
            BcryptVersion::TwoY => "2y",
        }
    }
}

/// What the password goes through before bcrypt, i.e. which notation the hash came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BcryptFlavor {
    /// `$2b$…` as is.
    Plain,
    /// Django `bcrypt$$2b$…`: bcrypt of the password.
    Django,
    /// Django `bcrypt_sha256$$2b$…`: bcrypt of the lowercase hex SHA-256 of the password.
    DjangoSha256,
    /// WordPress 6.8 `$wp$2y$…`: bcrypt of base64(HMAC-SHA384(key "wp-sha384", password)).
    WordPress,
}

/// A bcrypt hash (see the [module documentation](self)).
#[derive(Clone, PartialEq, Eq)]
pub struct BcryptHash {
    flavor: BcryptFlavor,
    version: BcryptVersion,
    cost: u32,
    /// The 60-character modular crypt string `$2b$cc$<salt><hash>`.
    mcf: String,
}

const SCHEME: &str = "bcrypt";

impl BcryptHash {
    /// Parses a plain `$2?$cc$…` string.
    pub(crate) fn parse_plain(s: &str) -> Result<Self, HashError> {
        Self::parse_with(s, BcryptFlavor::Plain)
    }

    /// Parses the `$2?$cc$…` part of a wrapped notation.
    pub(crate) fn parse_with(s: &str, flavor: BcryptFlavor) -> Result<Self, HashError> {
        let scheme = scheme_of(flavor);
        if s.len() != 60 || !s.is_ascii() {
            return Err(HashError::malformed(scheme, "expected 60 characters"));
        }
        let version = match s.get(..4) {
            Some("$2a$") => BcryptVersion::TwoA,
            Some("$2b$") => BcryptVersion::TwoB,
            Some("$2x$") => BcryptVersion::TwoX,
            Some("$2y$") => BcryptVersion::TwoY,
            _ => return Err(HashError::malformed(scheme, "unknown version prefix")),
        };
        let cost = match (s.get(4..6), s.get(6..7)) {
            (Some(c), Some("$")) if c.bytes().all(|b| b.is_ascii_digit()) => {
                super::encoding::parse_u32(c, scheme, "bad cost")?
            }
            _ => return Err(HashError::malformed(scheme, "bad cost")),
        };
        if !(4..=31).contains(&cost) {
            return Err(HashError::malformed(scheme, "cost outside 4..=31"));
        }
        let body = s.get(7..).unwrap_or_default();
        // One table look-up per character and no early exit: this runs for every bcrypt user.
        if !body
            .bytes()
            .fold(true, |ok, b| ok & BCRYPT_ALPHABET[b as usize])
        {
            return Err(HashError::malformed(scheme, "bad salt or hash characters"));
        }
        if !canonical_tail(&s.as_bytes()[7..]) {
            return Err(HashError::malformed(scheme, "bad salt or hash encoding"));
        }
        Ok(BcryptHash {
            flavor,
            version,
            cost,
            mcf: s.to_owned(),
        })
    }

    /// The cost (log₂ of the key-expansion rounds).
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// The version marker.
    pub fn version(&self) -> BcryptVersion {
        self.version
    }

    pub(crate) fn flavor(&self) -> BcryptFlavor {
        self.flavor
    }

    /// The plain modular crypt string (without any wrapper prefix).
    pub(crate) fn mcf(&self) -> &str {
        &self.mcf
    }

    pub(crate) fn scheme(&self) -> &'static str {
        scheme_of(self.flavor)
    }

    pub(crate) fn verify(&self, password: &str) -> bool {
        let input: Vec<u8> = match self.flavor {
            BcryptFlavor::Plain | BcryptFlavor::Django => password.as_bytes().to_vec(),
            BcryptFlavor::DjangoSha256 => {
                crate::bytes::hex(&Sha256::digest(password.as_bytes())).into_bytes()
            }
            BcryptFlavor::WordPress => match wordpress::prehash(password) {
                Some(p) => p,
                None => return false,
            },
        };
        if self.version == BcryptVersion::TwoX && input.iter().any(|b| *b >= 0x80) {
            return false;
        }
        bcrypt_verify(&input, &self.mcf)
    }

    pub(crate) fn encode(&self) -> String {
        match self.flavor {
            BcryptFlavor::Plain => self.mcf.clone(),
            BcryptFlavor::Django => format!("bcrypt${}", self.mcf),
            BcryptFlavor::DjangoSha256 => format!("bcrypt_sha256${}", self.mcf),
            BcryptFlavor::WordPress => format!("$wp{}", self.mcf),
        }
    }
}

fn scheme_of(flavor: BcryptFlavor) -> &'static str {
    match flavor {
        BcryptFlavor::Plain => SCHEME,
        BcryptFlavor::Django => "django-bcrypt",
        BcryptFlavor::DjangoSha256 => "django-bcrypt-sha256",
        BcryptFlavor::WordPress => "wordpress-bcrypt",
    }
}

/// bcrypt of `input` (truncated at 72 bytes, like every bcrypt), compared with the stored hash
/// bytes in constant time by the `bcrypt` crate. The version marker does not enter the
/// computation.
fn bcrypt_verify(input: &[u8], mcf: &str) -> bool {
    ::bcrypt::verify(input, mcf).unwrap_or(false)
}

impl fmt::Debug for BcryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BcryptHash")
            .field("scheme", &self.scheme())
            .field("version", &self.version.as_str())
            .field("cost", &self.cost)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    /// `canonical_tail` must agree with the `bcrypt` crate's own parser for every character at
    /// the two positions whose spare bits matter, and elsewhere.
    #[test]
    fn canonical_tail_agrees_with_the_bcrypt_crate() {
        let base = "$2b$10$FlxkG14PWQhTEH3gKmpi0Oa9vK2jECS5RhkTVdt13nBIEiL2yIIkG";
        assert!(base.parse::<::bcrypt::HashParts>().is_ok());
        let mut accepted = 0;
        for at in [7 + 21, 7 + 52, 7, 7 + 22, 7 + 51] {
            for &c in ALPHABET {
                let mut h = base.as_bytes().to_vec();
                h[at] = c;
                let h = String::from_utf8(h).unwrap();
                let crate_ok = h.parse::<::bcrypt::HashParts>().is_ok();
                assert_eq!(
                    canonical_tail(&h.as_bytes()[7..]),
                    crate_ok,
                    "character {:?} at {at}",
                    c as char
                );
                assert_eq!(BcryptHash::parse_plain(&h).is_ok(), crate_ok);
                accepted += usize::from(crate_ok);
            }
        }
        // 4 of 64 characters end a salt, 16 end a hash; any fits elsewhere.
        assert_eq!(accepted, 4 + 16 + 3 * 64);
    }
}
