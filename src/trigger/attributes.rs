//! Which attributes the trigger answers, and in what form.
//!
//! Cognito creates the migrated user from `response.userAttributes` and fails the whole migration
//! on an attribute it does not accept. What it accepts there (AWS's Migrate user trigger
//! documentation and the AdminCreateUser rules it mirrors):
//!
//! * standard attributes by their names, custom attributes with the `custom:` prefix — a name that
//!   is neither gets the prefix (a directory built for the pool already has it);
//! * not `sub` (Cognito assigns it), nor `cognito:*` (e.g. `cognito:mfa_enabled`, which a mapping
//!   may set for import CSVs), `identities` (federation links) or `dev:*` (developer-only
//!   attributes), which are left out;
//! * `email_verified` and `phone_number_verified` as the strings `"true"` / `"false"`; a flag
//!   without its email address or phone number is left out;
//! * `username` only as [`LegacyAccount::username_attribute`] says (see the [trigger
//!   documentation](super)).
//!
//! An optional allow-list (`COGNITO_MIGRATE_ATTRIBUTES`) keeps only the named attributes — useful
//! for pool-to-pool moves, where the old pool may have custom attributes the new one lacks.

use std::collections::{BTreeMap, BTreeSet};

use super::LegacyAccount;
use crate::mapping::transform::parse_bool;
use crate::pool::STANDARD_ATTRIBUTES;

const VERIFICATION_FLAGS: [(&str, &str); 2] = [
    ("email_verified", "email"),
    ("phone_number_verified", "phone_number"),
];

/// The attribute rules of one trigger deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributeRules {
    allow: Option<BTreeSet<String>>,
}

impl AttributeRules {
    /// `allow`: if given, only these attributes (by their answered names, e.g. `custom:tier`) are
    /// answered, plus `username` where needed.
    pub fn new(allow: Option<BTreeSet<String>>) -> AttributeRules {
        AttributeRules {
            allow: allow.map(|a| a.into_iter().filter_map(|n| answer_name(&n)).collect()),
        }
    }

    /// The `userAttributes` to answer for `account`.
    pub fn answer(&self, account: &LegacyAccount) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, value) in &account.attributes {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let Some(name) = answer_name(name) else {
                continue;
            };
            if self.allow.as_ref().is_some_and(|a| !a.contains(&name)) {
                continue;
            }
            let value = if VERIFICATION_FLAGS.iter().any(|(f, _)| *f == name) {
                match parse_bool(value) {
                    Some(b) => b.to_string(),
                    None => continue,
                }
            } else {
                value.to_string()
            };
            out.insert(name, value);
        }
        for (flag, attr) in VERIFICATION_FLAGS {
            if out.contains_key(flag) && !out.contains_key(attr) {
                out.remove(flag);
            }
        }
        if let Some(u) = account
            .username_attribute
            .as_ref()
            .filter(|u| !u.is_empty())
        {
            out.insert("username".to_string(), u.clone());
        }
        out
    }
}

/// The name under which an attribute is answered, or `None` if it is never answered.
pub fn answer_name(name: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty()
        || matches!(name, "sub" | "username" | "identities")
        || name.starts_with("cognito:")
        || name.starts_with("dev:")
    {
        return None;
    }
    if name.starts_with("custom:") {
        return (name.len() > "custom:".len()).then(|| name.to_string());
    }
    if STANDARD_ATTRIBUTES.iter().any(|(n, _)| *n == name) {
        return Some(name.to_string());
    }
    Some(format!("custom:{name}"))
}

/// Whether the answered attributes let Cognito deliver a reset code: a verified email address or
/// phone number.
pub fn has_verified_contact(attributes: &BTreeMap<String, String>) -> bool {
    VERIFICATION_FLAGS.iter().any(|(flag, attr)| {
        attributes.get(*flag).map(String::as_str) == Some("true") && attributes.contains_key(*attr)
    })
}
