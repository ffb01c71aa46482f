//! PBKDF2-HMAC (SHA-1, SHA-256, SHA-512), the function behind many notations:
//!
//! * PHC: `$pbkdf2-sha256$i=<iterations>,l=<length>$<salt>$<hash>`, standard base64 without
//!   padding (`l=` optional; `$pbkdf2-sha1$`, `$pbkdf2-sha512$`, `$pbkdf2$` = SHA-1);
//! * passlib: `$pbkdf2-sha256$<rounds>$<salt>$<hash>` in passlib's adapted base64 (`.` for `+`,
//!   no padding); passlib's SHA-1 variant is `$pbkdf2$<rounds>$…`;
//! * Django `pbkdf2_sha256$…` ([`django`](super::django)), Keycloak `pbkdf2*`
//!   ([`keycloak`](super::keycloak)), ASP.NET Identity v2/v3 ([`aspnet`](super::aspnet)).
//!
//! They all compute `PBKDF2(HMAC-<digest>, UTF-8 password, salt bytes, iterations, len(hash))`,
//! so one type holds them, with the notation remembered for `encode` and `scheme`.

use std::fmt;

use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::encoding::{ab64, ab64_decode, b64_decode, b64_nopad, b64_pad, parse_u32, phc_params};
use super::{ct_eq, HashError};

/// The HMAC digest of a PBKDF2 hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pbkdf2Digest {
    Sha1,
    Sha256,
    Sha512,
}

impl Pbkdf2Digest {
    /// `sha1`, `sha256`, `sha512`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pbkdf2Digest::Sha1 => "sha1",
            Pbkdf2Digest::Sha256 => "sha256",
            Pbkdf2Digest::Sha512 => "sha512",
        }
    }

    /// The digest's output size in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Pbkdf2Digest::Sha1 => 20,
            Pbkdf2Digest::Sha256 => 32,
            Pbkdf2Digest::Sha512 => 64,
        }
    }
}

/// The notation a PBKDF2 hash was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pbkdf2Flavor {
    Phc,
    Passlib,
    Django,
    Keycloak,
    AspNetV2,
    AspNetV3,
}

/// A PBKDF2 hash (see the [module documentation](self)).
#[derive(Clone, PartialEq, Eq)]
pub struct Pbkdf2Hash {
    flavor: Pbkdf2Flavor,
    digest: Pbkdf2Digest,
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

/// Shortest stored hash accepted: an empty or tiny hash would match (almost) any password.
const MIN_HASH_LEN: usize = 8;

impl Pbkdf2Hash {
    pub(crate) fn new(
        flavor: Pbkdf2Flavor,
        digest: Pbkdf2Digest,
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    ) -> Result<Self, HashError> {
        let h = Pbkdf2Hash {
            flavor,
            digest,
            iterations,
            salt,
            hash,
        };
        if iterations == 0 {
            return Err(HashError::malformed(h.scheme(), "zero iterations"));
        }
        if h.hash.len() < MIN_HASH_LEN {
            return Err(HashError::malformed(
                h.scheme(),
                "hash shorter than 8 bytes",
            ));
        }
        Ok(h)
    }

    /// Parses the `$pbkdf2…$` notations: PHC (`i=…,l=…`) and passlib (bare rounds).
    pub(crate) fn parse_dollar(s: &str) -> Result<Self, HashError> {
        let mut fields = s.split('$');
        let (Some(""), Some(ident), Some(params), Some(salt), Some(hash), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(HashError::malformed(
                "pbkdf2",
                "expected $<id>$<params>$<salt>$<hash>",
            ));
        };
        let digest = match ident {
            "pbkdf2" | "pbkdf2-sha1" => Pbkdf2Digest::Sha1,
            "pbkdf2-sha256" => Pbkdf2Digest::Sha256,
            "pbkdf2-sha512" => Pbkdf2Digest::Sha512,
            _ => return Err(HashError::UnknownFormat),
        };
        let scheme = phc_scheme(digest);
        if params.bytes().all(|b| b.is_ascii_digit()) {
            // passlib: $pbkdf2-sha256$29000$<ab64 salt>$<ab64 hash>
            let iterations = parse_u32(params, scheme, "bad rounds")?;
            let salt = ab64_decode(salt, scheme, "salt is not adapted base64")?;
            let hash = ab64_decode(hash, scheme, "hash is not adapted base64")?;
            return Self::new(Pbkdf2Flavor::Passlib, digest, iterations, salt, hash);
        }
        let mut iterations = None;
        let mut length = None;
        for (k, v) in phc_params(params, scheme)? {
            match k {
                "i" if iterations.is_none() => {
                    iterations = Some(parse_u32(v, scheme, "bad i= parameter")?)
                }
                "l" if length.is_none() => length = Some(parse_u32(v, scheme, "bad l= parameter")?),
                _ => {
                    return Err(HashError::malformed(
                        scheme,
                        "unknown or repeated parameter",
                    ))
                }
            }
        }
        let iterations = iterations.ok_or(HashError::malformed(scheme, "missing i= parameter"))?;
        let salt = b64_decode(salt, scheme, "salt is not base64")?;
        let hash = b64_decode(hash, scheme, "hash is not base64")?;
        if let Some(l) = length {
            if usize::try_from(l).ok() != Some(hash.len()) {
                return Err(HashError::malformed(
                    scheme,
                    "l= does not match the hash length",
                ));
            }
        }
        Self::new(Pbkdf2Flavor::Phc, digest, iterations, salt, hash)
    }

    /// The HMAC digest.
    pub fn digest(&self) -> Pbkdf2Digest {
        self.digest
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Length of the stored hash (derived key) in bytes.
    pub fn hash_len(&self) -> usize {
        self.hash.len()
    }

    /// How many PBKDF2 output blocks the derived key needs (each costs `iterations` HMACs).
    pub fn output_blocks(&self) -> u32 {
        u32::try_from(self.hash.len().div_ceil(self.digest.output_len())).unwrap_or(u32::MAX)
    }

    pub(crate) fn flavor(&self) -> Pbkdf2Flavor {
        self.flavor
    }

    pub(crate) fn salt(&self) -> &[u8] {
        &self.salt
    }

    pub(crate) fn hash(&self) -> &[u8] {
        &self.hash
    }

    pub(crate) fn scheme(&self) -> &'static str {
        match (self.flavor, self.digest) {
            (Pbkdf2Flavor::Phc | Pbkdf2Flavor::Passlib, d) => phc_scheme(d),
            (Pbkdf2Flavor::Django, Pbkdf2Digest::Sha1) => "django-pbkdf2-sha1",
            (Pbkdf2Flavor::Django, Pbkdf2Digest::Sha256) => "django-pbkdf2-sha256",
            (Pbkdf2Flavor::Django, Pbkdf2Digest::Sha512) => "django-pbkdf2-sha512",
            (Pbkdf2Flavor::Keycloak, Pbkdf2Digest::Sha1) => "keycloak-pbkdf2",
            (Pbkdf2Flavor::Keycloak, Pbkdf2Digest::Sha256) => "keycloak-pbkdf2-sha256",
            (Pbkdf2Flavor::Keycloak, Pbkdf2Digest::Sha512) => "keycloak-pbkdf2-sha512",
            (Pbkdf2Flavor::AspNetV2, _) => "aspnet-identity-v2",
            (Pbkdf2Flavor::AspNetV3, _) => "aspnet-identity-v3",
        }
    }

    pub(crate) fn verify(&self, password: &str) -> bool {
        let mut out = vec![0u8; self.hash.len()];
        let (pw, salt, rounds) = (password.as_bytes(), self.salt.as_slice(), self.iterations);
        match self.digest {
            Pbkdf2Digest::Sha1 => ::pbkdf2::pbkdf2_hmac::<Sha1>(pw, salt, rounds, &mut out),
            Pbkdf2Digest::Sha256 => ::pbkdf2::pbkdf2_hmac::<Sha256>(pw, salt, rounds, &mut out),
            Pbkdf2Digest::Sha512 => ::pbkdf2::pbkdf2_hmac::<Sha512>(pw, salt, rounds, &mut out),
        }
        ct_eq(&out, &self.hash)
    }

    /// The PHC-standard string `$pbkdf2-<digest>$i=<n>,l=<len>$<salt>$<hash>`.
    pub(crate) fn to_phc(&self) -> String {
        format!(
            "$pbkdf2-{}$i={},l={}${}${}",
            self.digest.as_str(),
            self.iterations,
            self.hash.len(),
            b64_nopad(&self.salt),
            b64_nopad(&self.hash)
        )
    }

    pub(crate) fn encode(&self) -> String {
        match self.flavor {
            Pbkdf2Flavor::Phc => self.to_phc(),
            Pbkdf2Flavor::Passlib => {
                let ident = match self.digest {
                    Pbkdf2Digest::Sha1 => "pbkdf2",
                    Pbkdf2Digest::Sha256 => "pbkdf2-sha256",
                    Pbkdf2Digest::Sha512 => "pbkdf2-sha512",
                };
                format!(
                    "${ident}${}${}${}",
                    self.iterations,
                    ab64(&self.salt),
                    ab64(&self.hash)
                )
            }
            Pbkdf2Flavor::Django => format!(
                "pbkdf2_{}${}${}${}",
                self.digest.as_str(),
                self.iterations,
                String::from_utf8_lossy(&self.salt),
                b64_pad(&self.hash)
            ),
            Pbkdf2Flavor::Keycloak => super::keycloak::encode_pbkdf2(self),
            Pbkdf2Flavor::AspNetV2 | Pbkdf2Flavor::AspNetV3 => super::aspnet::encode(self),
        }
    }
}

fn phc_scheme(digest: Pbkdf2Digest) -> &'static str {
    match digest {
        Pbkdf2Digest::Sha1 => "pbkdf2-sha1",
        Pbkdf2Digest::Sha256 => "pbkdf2-sha256",
        Pbkdf2Digest::Sha512 => "pbkdf2-sha512",
    }
}

impl fmt::Debug for Pbkdf2Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pbkdf2Hash")
            .field("scheme", &self.scheme())
            .field("digest", &self.digest.as_str())
            .field("iterations", &self.iterations)
            .field("hash_len", &self.hash.len())
            .finish()
    }
}
