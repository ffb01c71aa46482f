//! Mapping and validation: legacy records become Cognito users of one specific pool, or rejections.
//!
//! The pool decides ([`PoolSchema`]): which attributes exist, their types and constraints, which are
//! required, how users sign in. The mapping file ([`config::MappingFile`]) decides which source field
//! feeds which attribute. Nothing is guessed: a value that does not fit is a [`Rejection`] with the
//! record's position, the field, a reason code from a small fixed set and a plain message — never a
//! password or hash.
//!
//! What Cognito requires in `cognito:username` (import CSV) or `Username` (AdminCreateUser):
//! - Pools without `UsernameAttributes`: any unique value of 1–128 characters without white space
//!   (Cognito's pattern `[\p{L}\p{M}\p{S}\p{N}\p{P}]+`). It cannot be changed later, so the mapping
//!   picks a stable legacy value (a username, or the legacy id). With `AliasAttributes`, users can also
//!   sign in with email/phone/preferred_username, which must then be unique in the pool.
//! - Pools with `UsernameAttributes` = email and/or phone_number: users sign in with that attribute,
//!   and Cognito generates the internal username itself (a UUID, the `sub`). AdminCreateUser takes the
//!   email (or phone) as `Username`, and an import CSV's `cognito:username` carries that same value. So
//!   for such pools the username is the (lower-cased) email, else the E.164 phone number, whatever the
//!   mapping's `username` rule says, and that value must be unique.
//! - Unless the pool was created case-sensitive (`UsernameConfiguration.CaseSensitive`), usernames
//!   and aliases compare case-insensitively, so duplicates are found case-insensitively.

mod attributes;
pub mod config;
pub mod groups;
pub mod init;
mod mapper;
pub mod providers;
mod rejection;
mod seen;
pub mod transform;

pub use attributes::{Attributes, NameTable};
pub use mapper::{MappedUser, Mapper, Prepared};
pub use rejection::{PositionJson, Reason, Rejection};

#[cfg(test)]
mod tests;
