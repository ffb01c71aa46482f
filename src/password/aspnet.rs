//! ASP.NET Identity's `PasswordHash` column: base64 of a versioned binary blob, as written by
//! `Microsoft.AspNetCore.Identity.PasswordHasher<TUser>` (and ASP.NET Identity 2/3 before it);
//! the layout below is that of `HashPasswordV2`/`HashPasswordV3` and
//! `VerifyHashedPasswordV2`/`VerifyHashedPasswordV3` in dotnet/aspnetcore's
//! `src/Identity/Extensions.Core/src/PasswordHasher.cs`:
//!
//! * v2 (`0x00`): `0x00 | salt (16) | subkey (32)`, PBKDF2-HMAC-SHA1, 1000 iterations — 49 bytes;
//! * v3 (`0x01`): `0x01 | PRF (u32 BE: 0 = SHA-1, 1 = SHA-256, 2 = SHA-512) | iteration count
//!   (u32 BE) | salt length (u32 BE) | salt | subkey`; the subkey is the rest, at least 16 bytes
//!   (ASP.NET Core 7+ writes SHA-512 with 100,000 iterations; earlier, SHA-256 with 10,000).
//!
//! The blob has no self-describing text form, so [`encode`] writes `$cm-aspnet$<base64 of the
//! blob>`, which [`parse_project`] reads back. A v3 SHA-256 hash is plain PBKDF2-SHA256 and
//! imports into Cognito like any other.
//!
//! A generic source names the scheme of its password column with the mapping's
//! `password_scheme = "aspnet-identity"` ([`RawPassword::AspNetIdentity`]); without it, a bare
//! value is still read as a blob when its layout is unambiguous ([`detect`]).
//!
//! [`RawPassword::AspNetIdentity`]: crate::record::RawPassword::AspNetIdentity

use super::encoding::{b64_decode, b64_nopad};
use super::pbkdf2::{Pbkdf2Digest, Pbkdf2Flavor, Pbkdf2Hash};
use super::HashError;

const V2: &str = "aspnet-identity-v2";
const V3: &str = "aspnet-identity-v3";
const PROJECT_PREFIX: &str = "$cm-aspnet$";

/// Parses the base64 `PasswordHash` column value.
pub(crate) fn parse_blob(b64: &str) -> Result<Pbkdf2Hash, HashError> {
    let blob = b64_decode(b64, "aspnet-identity", "not base64")?;
    parse_bytes(&blob)
}

/// Reads a bare string as an ASP.NET Identity blob when that is unambiguous: canonical padded
/// base64 (what `Convert.ToBase64String` writes) whose bytes are exactly a v2 blob (49 bytes,
/// `0x00` first) or a v3 blob (`0x01`, a known PRF, a salt of at least 16 bytes and a subkey of
/// at least 16 bytes filling the rest). `None` for anything else, so that a generic source's
/// password column is recognised without naming its scheme.
pub(crate) fn detect(s: &str) -> Option<Pbkdf2Hash> {
    use base64::Engine as _;
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let blob = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    parse_bytes(&blob).ok()
}

/// Parses `$cm-aspnet$<base64 blob>`.
pub(crate) fn parse_project(s: &str) -> Result<Pbkdf2Hash, HashError> {
    let b64 = s
        .strip_prefix(PROJECT_PREFIX)
        .ok_or(HashError::UnknownFormat)?;
    parse_blob(b64)
}

fn parse_bytes(blob: &[u8]) -> Result<Pbkdf2Hash, HashError> {
    match blob.first() {
        Some(0x00) => {
            if blob.len() != 1 + 16 + 32 {
                return Err(HashError::malformed(V2, "expected 49 bytes"));
            }
            let salt = blob.get(1..17).unwrap_or_default().to_vec();
            let subkey = blob.get(17..).unwrap_or_default().to_vec();
            Pbkdf2Hash::new(
                Pbkdf2Flavor::AspNetV2,
                Pbkdf2Digest::Sha1,
                1000,
                salt,
                subkey,
            )
        }
        Some(0x01) => {
            let u32_at = |at: usize| -> Result<u32, HashError> {
                blob.get(at..at + 4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes)
                    .ok_or(HashError::malformed(V3, "truncated header"))
            };
            let digest = match u32_at(1)? {
                0 => Pbkdf2Digest::Sha1,
                1 => Pbkdf2Digest::Sha256,
                2 => Pbkdf2Digest::Sha512,
                other => {
                    return Err(HashError::unsupported(V3, format!("PRF {other}")));
                }
            };
            let iterations = u32_at(5)?;
            let salt_len = usize::try_from(u32_at(9)?)
                .map_err(|_| HashError::malformed(V3, "bad salt length"))?;
            if salt_len < 16 {
                return Err(HashError::malformed(V3, "salt shorter than 16 bytes"));
            }
            let salt_end = 13usize
                .checked_add(salt_len)
                .ok_or(HashError::malformed(V3, "bad salt length"))?;
            let salt = blob
                .get(13..salt_end)
                .ok_or(HashError::malformed(V3, "truncated salt"))?
                .to_vec();
            let subkey = blob.get(salt_end..).unwrap_or_default().to_vec();
            if subkey.len() < 16 {
                return Err(HashError::malformed(V3, "subkey shorter than 16 bytes"));
            }
            Pbkdf2Hash::new(Pbkdf2Flavor::AspNetV3, digest, iterations, salt, subkey)
        }
        Some(_) => Err(HashError::unsupported(
            "aspnet-identity",
            "unknown format marker",
        )),
        None => Err(HashError::malformed("aspnet-identity", "empty")),
    }
}

/// The original blob, re-assembled.
pub(crate) fn to_blob(h: &Pbkdf2Hash) -> Vec<u8> {
    let mut blob = Vec::with_capacity(13 + h.salt().len() + h.hash().len());
    if h.flavor() == Pbkdf2Flavor::AspNetV2 {
        blob.push(0x00);
    } else {
        blob.push(0x01);
        let prf: u32 = match h.digest() {
            Pbkdf2Digest::Sha1 => 0,
            Pbkdf2Digest::Sha256 => 1,
            Pbkdf2Digest::Sha512 => 2,
        };
        blob.extend_from_slice(&prf.to_be_bytes());
        blob.extend_from_slice(&h.iterations().to_be_bytes());
        let salt_len = u32::try_from(h.salt().len()).unwrap_or(u32::MAX);
        blob.extend_from_slice(&salt_len.to_be_bytes());
    }
    blob.extend_from_slice(h.salt());
    blob.extend_from_slice(h.hash());
    blob
}

/// `$cm-aspnet$<base64 of the blob>`.
pub(crate) fn encode(h: &Pbkdf2Hash) -> String {
    format!("{PROJECT_PREFIX}{}", b64_nopad(&to_blob(h)))
}
