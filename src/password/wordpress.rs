//! WordPress 6.8+ password hashes, `$wp$2y$10$…`.
//!
//! Since 6.8, `wp_hash_password` stores `'$wp' . password_hash(base64_encode(hash_hmac('sha384',
//! $password, 'wp-sha384', true)), PASSWORD_BCRYPT)`, and `wp_check_password` checks a `$wp`
//! hash with `password_verify(base64(HMAC-SHA384(key "wp-sha384", password)), substr($hash, 3))`.
//! The pre-hash lifts bcrypt's 72-byte limit. Older WordPress hashes are phpass `$P$`
//! ([`phpass`](super::phpass)).
//!
//! `verify` follows `wp_check_password` exactly and does not trim the password
//! (`wp_authenticate` trims it before, at the login form; `wp_hash_password` trims when
//! hashing): a caller that wants WordPress' login behaviour passes the trimmed password.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha384;

use super::bcrypt::{BcryptFlavor, BcryptHash};
use super::encoding::b64_pad;
use super::HashError;

/// Parses `$wp$2y$…`.
pub(crate) fn parse(s: &str) -> Result<BcryptHash, HashError> {
    let inner = s
        .strip_prefix("$wp")
        .filter(|rest| rest.starts_with("$2"))
        .ok_or(HashError::malformed(
            "wordpress-bcrypt",
            "expected $wp followed by a bcrypt hash",
        ))?;
    BcryptHash::parse_with(inner, BcryptFlavor::WordPress)
}

/// base64(HMAC-SHA384(key = "wp-sha384", message = password)), the bcrypt input.
pub(crate) fn prehash(password: &str) -> Option<Vec<u8>> {
    let mut mac = <Hmac<Sha384> as KeyInit>::new_from_slice(b"wp-sha384").ok()?;
    mac.update(password.as_bytes());
    Some(b64_pad(&mac.finalize().into_bytes()).into_bytes())
}
