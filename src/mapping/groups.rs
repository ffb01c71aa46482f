//! Group names as Cognito's `CreateGroup` takes them, checked at plan time.
//!
//! A `GroupName` is 1–128 characters matching `[\p{L}\p{M}\p{S}\p{N}\p{P}]+`: letters, marks,
//! symbols, numbers and punctuation, so no white space, control, format or private-use
//! characters. Legacy systems allow more (Keycloak's groups are paths like `/Cluster Admins`), and
//! a name Cognito refuses would only fail at `run` time, after the user exists. So names are
//! rewritten as the mapping says (`[groups] strip_prefix = "/"`, `replace_spaces = "_"`) and then
//! checked; a user with a name that still does not fit is rejected as `invalid_group` (the whole
//! user, not just that membership: a user created without one of their groups would hold other
//! rights than in the legacy system, and nothing would add the membership later).

use std::borrow::Cow;

use unicode_general_category::{get_general_category, GeneralCategory as C};

use super::config::{GroupsTable, MappingError};

/// The longest group name Cognito takes, in characters.
pub const MAX_GROUP_NAME: usize = 128;

/// Whether Cognito's group-name pattern admits `c`.
fn allowed(c: char) -> bool {
    if c.is_ascii() {
        // Every printable ASCII character but the space is a letter, number, symbol or
        // punctuation.
        return c.is_ascii_graphic();
    }
    !matches!(
        get_general_category(c),
        C::SpaceSeparator
            | C::LineSeparator
            | C::ParagraphSeparator
            | C::Control
            | C::Format
            | C::Surrogate
            | C::PrivateUse
            | C::Unassigned
    )
}

/// Why Cognito would refuse `name` as a group name, or `None` when it fits.
pub fn check(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty".into());
    }
    let len = name.chars().count();
    if len > MAX_GROUP_NAME {
        return Some(format!(
            "{len} characters, Cognito allows at most {MAX_GROUP_NAME}"
        ));
    }
    if name.chars().any(char::is_whitespace) {
        return Some(
            "contains white space, which Cognito does not allow in a group name \
             (the mapping's [groups] replace_spaces = \"_\" rewrites it)"
                .into(),
        );
    }
    name.chars().find(|c| !allowed(*c)).map(|c| {
        format!(
            "contains U+{:04X}, a control, format or unassigned character Cognito does not allow",
            u32::from(c)
        )
    })
}

/// The mapping's rewrites of group names, applied before the check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRewrite {
    strip_prefix: Option<String>,
    replace_spaces: Option<String>,
}

impl GroupRewrite {
    /// Reads the `[groups]` table's rewrites; `replace_spaces` must itself be allowed in a name
    /// (or empty, which removes white space).
    pub fn new(table: &GroupsTable) -> Result<GroupRewrite, MappingError> {
        if let Some(r) = &table.replace_spaces {
            if !r.is_empty() && check(r).is_some() {
                return Err(MappingError::Invalid {
                    target: "groups.replace_spaces".into(),
                    message: format!(
                        "{r:?} cannot be part of a Cognito group name (no white space or control \
                         characters)"
                    ),
                });
            }
        }
        Ok(GroupRewrite {
            strip_prefix: table.strip_prefix.clone().filter(|p| !p.is_empty()),
            replace_spaces: table.replace_spaces.clone(),
        })
    }

    /// `name` with the prefix stripped (once) and every white-space character replaced.
    pub fn apply<'a>(&self, name: &'a str) -> Cow<'a, str> {
        let name = match &self.strip_prefix {
            Some(p) => name.strip_prefix(p.as_str()).unwrap_or(name),
            None => name,
        };
        match &self.replace_spaces {
            Some(r) if name.chars().any(char::is_whitespace) => Cow::Owned(
                name.chars()
                    .map(|c| {
                        if c.is_whitespace() {
                            Cow::Borrowed(r.as_str())
                        } else {
                            Cow::Owned(c.to_string())
                        }
                    })
                    .collect(),
            ),
            _ => Cow::Borrowed(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cognito_pattern() {
        for ok in [
            "admins",
            "Cluster-Admins",
            "/staff/sales",
            "ärzte",
            "管理者",
            "a+b=c|d~e",
            "😀",
            &"x".repeat(128),
        ] {
            assert_eq!(check(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("Cluster Admins", "white space"),
            ("tab\there", "white space"),
            ("nbsp\u{a0}name", "white space"),
            ("zero\u{200b}width", "U+200B"),
            ("bell\u{7}", "U+0007"),
            ("private\u{e000}", "U+E000"),
        ] {
            let reason = check(bad).unwrap_or_default();
            assert!(reason.contains(why), "{bad:?}: {reason}");
        }
        let long = "é".repeat(129);
        assert!(check(&long).unwrap_or_default().contains("129 characters"));
    }

    #[test]
    fn rewrites() {
        let rw = GroupRewrite::new(&GroupsTable {
            from: None,
            strip_prefix: Some("/".into()),
            replace_spaces: Some("_".into()),
        })
        .unwrap();
        assert_eq!(rw.apply("/Cluster Admins"), "Cluster_Admins");
        assert_eq!(rw.apply("/parent/child group"), "parent/child_group");
        assert_eq!(rw.apply("plain"), "plain");
        assert_eq!(rw.apply("//twice"), "/twice");
        assert!(GroupRewrite::new(&GroupsTable {
            replace_spaces: Some(" ".into()),
            ..GroupsTable::default()
        })
        .is_err());
        let remove = GroupRewrite::new(&GroupsTable {
            replace_spaces: Some(String::new()),
            ..GroupsTable::default()
        })
        .unwrap();
        assert_eq!(remove.apply("a b\tc"), "abc");
    }
}
