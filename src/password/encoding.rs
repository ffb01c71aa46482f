//! The base64 dialects and small parsers that several notations share.
//!
//! PHC strings use standard base64 without padding, passlib's `pbkdf2` hashes its "adapted"
//! alphabet (`.` for `+`), Django, Keycloak and ASP.NET standard base64 with padding. Decoding
//! accepts padding or not and non-zero trailing bits, so that a hash another encoder wrote with
//! slight differences still reads; encoding always writes the dialect's canonical form.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine as _, GeneralPurpose, GeneralPurposeConfig};

use super::HashError;

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes standard base64, padded or not. `what` names the field for the error message.
pub(crate) fn b64_decode(
    s: &str,
    scheme: &'static str,
    what: &'static str,
) -> Result<Vec<u8>, HashError> {
    LENIENT
        .decode(s.trim())
        .map_err(|_| HashError::malformed(scheme, what))
}

/// Decodes passlib's adapted base64 (`.` instead of `+`, no padding).
pub(crate) fn ab64_decode(
    s: &str,
    scheme: &'static str,
    what: &'static str,
) -> Result<Vec<u8>, HashError> {
    if s.contains('+') {
        return Err(HashError::malformed(scheme, what));
    }
    b64_decode(&s.replace('.', "+"), scheme, what)
}

/// Standard base64 without padding (PHC).
pub(crate) fn b64_nopad(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Standard base64 with padding.
pub(crate) fn b64_pad(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// passlib's adapted base64.
pub(crate) fn ab64(bytes: &[u8]) -> String {
    b64_nopad(bytes).replace('+', ".")
}

/// A decimal `u32` without sign or leading `+`, as hash notations write them.
pub(crate) fn parse_u32(
    s: &str,
    scheme: &'static str,
    what: &'static str,
) -> Result<u32, HashError> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HashError::malformed(scheme, what));
    }
    s.parse::<u32>()
        .map_err(|_| HashError::malformed(scheme, what))
}

/// Parses a PHC parameter list `k=v,k=v` into pairs, in order.
pub(crate) fn phc_params<'a>(
    s: &'a str,
    scheme: &'static str,
) -> Result<Vec<(&'a str, &'a str)>, HashError> {
    s.split(',')
        .map(|kv| {
            kv.split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or(HashError::malformed(scheme, "bad parameter list"))
        })
        .collect()
}

/// The crypt(3) base64 alphabet used by MD5-crypt, phpass and SHA-crypt.
pub(crate) const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether every byte of `s` is in the crypt(3) alphabet.
pub(crate) fn is_crypt_b64(s: &str) -> bool {
    s.bytes().all(|b| CRYPT_ALPHABET.contains(&b))
}

/// Keeps a source-supplied name printable and short, for error messages.
pub(crate) fn sanitize_name(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(32)
        .collect()
}
