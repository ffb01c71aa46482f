//! A starting mapping file, written from the pool's schema and the fields an export has
//! (`cognito-migrate mapping init`).
//!
//! Writing a mapping by hand means reading the export's field names and the pool's attributes side
//! by side; this does the obvious part. [`FieldStats`] counts, over a sample of records, which
//! fields are present and non-empty (names and counts only: no value is ever kept or printed), and
//! [`suggest`] matches them to the pool's attributes by name — exact (`email`, `custom:plan` ↔
//! `plan`), after normalising (`First Name` ↔ `first_name`), or through a short list of usual
//! synonyms (`first_name` → `given_name`, `mobile` → `phone_number`) — and picks the transform each
//! attribute needs (`lowercase_email`, `bool`, `e164`, `epoch_seconds`, `date`). The result is
//! TOML with comments: the fields left unmapped, the pool attributes nobody feeds, and the
//! attributes the pool requires but no field matched, which must be filled in before the mapping
//! is accepted. Nothing is guessed silently: every choice is a visible line to review.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::pool::{DataType, PoolSchema};
use crate::record::LegacyUser;

use super::config::{MappingFile, Rule};

/// Which fields a sample of records has, and how often they are non-empty.
#[derive(Clone, Debug, Default)]
pub struct FieldStats {
    pub records: u64,
    /// Field → records in which it is non-empty.
    pub present: BTreeMap<String, u64>,
    /// Records that carried password material the reader recognised (vendor formats).
    pub with_password: u64,
    /// Records with group membership.
    pub with_groups: u64,
    /// Federated identity providers (as the export names them) → records with one.
    pub providers: BTreeMap<String, u64>,
}

impl FieldStats {
    pub fn add(&mut self, user: &LegacyUser) {
        self.records += 1;
        for (k, v) in &user.fields {
            let n = self.present.entry(k.to_string()).or_default();
            if !v.trim().is_empty() {
                *n += 1;
            }
        }
        self.with_password += user.password.is_some() as u64;
        self.with_groups += (!user.groups.is_empty()) as u64;
        let mut seen = BTreeSet::new();
        for i in &user.identities {
            if seen.insert(i.provider.as_str()) {
                *self.providers.entry(i.provider.clone()).or_default() += 1;
            }
        }
    }

    fn share(&self, field: &str) -> String {
        let n = self.present.get(field).copied().unwrap_or(0);
        if self.records == 0 {
            return "0%".into();
        }
        format!("{}%", (n * 100 + self.records / 2) / self.records)
    }
}

/// Lower case, letters and digits only: `First Name`, `first_name` and `firstName` all become
/// `firstname`. The part after the last `.` of a nested field counts (`user_metadata.plan`).
fn norm(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    let last = last.strip_prefix("custom:").unwrap_or(last);
    last.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Usual names of standard attributes in exports, normalised.
const SYNONYMS: &[(&str, &[&str])] = &[
    (
        "email",
        &["email", "emailaddress", "mail", "email1", "primaryemail"],
    ),
    (
        "email_verified",
        &[
            "emailverified",
            "verifiedemail",
            "isemailverified",
            "emailconfirmed",
        ],
    ),
    (
        "phone_number",
        &[
            "phonenumber",
            "phone",
            "mobile",
            "mobilephone",
            "cellphone",
            "cell",
            "telephone",
            "msisdn",
        ],
    ),
    (
        "phone_number_verified",
        &[
            "phonenumberverified",
            "phoneverified",
            "phonenumberconfirmed",
            "phoneconfirmed",
        ],
    ),
    (
        "given_name",
        &["givenname", "firstname", "fname", "forename"],
    ),
    (
        "family_name",
        &["familyname", "lastname", "lname", "surname"],
    ),
    ("middle_name", &["middlename"]),
    ("name", &["name", "fullname", "displayname"]),
    ("nickname", &["nickname", "nick"]),
    ("preferred_username", &["preferredusername"]),
    (
        "picture",
        &[
            "picture",
            "avatar",
            "avatarurl",
            "photourl",
            "photo",
            "pictureurl",
        ],
    ),
    ("profile", &["profile", "profileurl"]),
    ("website", &["website", "homepage", "url"]),
    ("gender", &["gender", "sex"]),
    (
        "birthdate",
        &["birthdate", "birthday", "dateofbirth", "dob"],
    ),
    ("zoneinfo", &["zoneinfo", "timezone", "tz"]),
    ("locale", &["locale", "language", "lang"]),
    ("address", &["address", "postaladdress"]),
    (
        "updated_at",
        &[
            "updatedat",
            "modifiedat",
            "lastmodified",
            "dateupdated",
            "updated",
        ],
    ),
];

const ID_FIELDS: &[&str] = &["userid", "id", "uid", "localid", "pk", "id_", "oid"];
const USERNAME_FIELDS: &[&str] = &["username", "login", "userlogin", "username_"];
const PASSWORD_FIELDS: &[&str] = &[
    "passwordhash",
    "password",
    "passwd",
    "hash",
    "pwdhash",
    "encryptedpassword",
    "hashedpassword",
    "passwordhashed",
];
const GROUP_FIELDS: &[&str] = &["groups", "roles", "group", "role"];
const ENABLED_FIELDS: &[&str] = &["active", "enabled", "isactive", "isenabled"];
const DISABLED_FIELDS: &[&str] = &[
    "blocked",
    "disabled",
    "isblocked",
    "isdisabled",
    "locked",
    "suspended",
];

/// The transform an attribute needs, by name and type.
fn transform_for(attribute: &str, data_type: DataType) -> &'static str {
    match (attribute, data_type) {
        ("email", _) => "lowercase_email",
        ("phone_number", _) => "e164",
        ("updated_at", _) => "epoch_seconds",
        ("birthdate", _) => "date",
        (_, DataType::Boolean) => "bool",
        _ => "trim",
    }
}

/// A TOML key or string, quoted when needed.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        q(s)
    }
}

fn rule_text(from: &str, transform: &str) -> String {
    if transform == "trim" {
        q(from)
    } else {
        format!("{{ from = {}, transform = {} }}", q(from), q(transform))
    }
}

/// What [`suggest`] was given besides the fields.
pub struct InitContext<'a> {
    pub format: &'a str,
    pub location: &'a str,
    /// The format's built-in mapping, if it has one: its choices are kept (the file is laid over
    /// it) and shown.
    pub builtin: Option<&'a MappingFile>,
}

/// The result: the TOML text and what still needs a person.
pub struct Suggestion {
    pub toml: String,
    /// Required pool attributes no field matched (the mapping is not accepted until they are set).
    pub missing_required: Vec<String>,
    /// Pool attribute → source field chosen.
    pub mapped: BTreeMap<String, String>,
}

/// The `[providers]` table for the federated identity providers the sample has: social ones with
/// Cognito's name (the default, written out to be seen), others as a commented line to fill in
/// with the pool's SAML/OIDC provider name. Flags names the pool lacks when it is known.
fn providers_table(schema: &PoolSchema, stats: &FieldStats) -> String {
    if stats.providers.is_empty() {
        return String::new();
    }
    let table = super::providers::ProviderTable::default();
    let in_pool = |p: &str| {
        schema
            .identity_providers
            .as_ref()
            .is_none_or(|v| v.iter().any(|x| x == p))
    };
    let mut out = String::from(
        "\n# Federated identities: the export's provider → the pool's identity provider name.\n\
         # Users are linked to it (AdminLinkProviderForUser) once they are in the pool.\n[providers]\n",
    );
    for (vendor, n) in &stats.providers {
        let users = format!("{n} of {} sampled records", stats.records);
        match table.get(vendor) {
            Some(p) if in_pool(p) => {
                let _ = writeln!(out, "{} = {}   # {users}", q(vendor), q(p));
            }
            Some(p) => {
                let _ = writeln!(
                    out,
                    "{} = {}   # {users}; the pool has no identity provider {p} yet",
                    q(vendor),
                    q(p)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "# {} = \"PROVIDER NAME IN THE POOL\"   # {users}: not a Cognito social provider",
                    q(vendor)
                );
            }
        }
    }
    out
}

/// Writes a starting mapping for `schema` and the fields in `stats`.
pub fn suggest(schema: &PoolSchema, stats: &FieldStats, ctx: &InitContext<'_>) -> Suggestion {
    let fields: Vec<&String> = stats.present.keys().collect();
    let find = |names: &[&str]| -> Option<String> {
        // Most often non-empty first, among fields whose normalised name is listed (in list order).
        for n in names {
            let mut candidates: Vec<&&String> = fields.iter().filter(|f| norm(f) == *n).collect();
            candidates.sort_by_key(|f| {
                (
                    std::cmp::Reverse(stats.present.get(f.as_str()).copied().unwrap_or(0)),
                    f.contains('.'),
                )
            });
            if let Some(f) = candidates.first() {
                return Some((**f).clone());
            }
        }
        None
    };
    let builtin_attrs: BTreeMap<String, Rule> = ctx
        .builtin
        .map(|b| b.attributes.clone())
        .unwrap_or_default();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut mapped: BTreeMap<String, String> = BTreeMap::new();
    let mut lines: Vec<String> = Vec::new();
    let mut unfed: Vec<String> = Vec::new();
    let mut missing_required = Vec::new();

    for a in &schema.attributes {
        if a.name == "sub" || a.name.starts_with("dev:") {
            continue;
        }
        if let Some(rule) = builtin_attrs.get(&a.name) {
            let sources = match rule {
                Rule::Field(f) => vec![f.clone()],
                Rule::Detailed { from, .. } => match from {
                    Some(super::config::From::One(f)) => vec![f.clone()],
                    Some(super::config::From::Many(fs)) => fs.clone(),
                    None => vec![],
                },
            };
            used.extend(sources.iter().cloned());
            mapped.insert(a.name.clone(), sources.join("+"));
            lines.push(format!(
                "# {} comes from the built-in {} mapping ({})",
                key(&a.name),
                ctx.format,
                sources.join(", ")
            ));
            continue;
        }
        let candidates: Vec<String> = match a.name.strip_prefix("custom:") {
            Some(custom) => {
                let mut c = vec![norm(custom)];
                if custom == "legacy_id" || custom == "legacyid" {
                    c.extend(ID_FIELDS.iter().map(|s| s.to_string()));
                }
                c
            }
            None => SYNONYMS
                .iter()
                .find(|(attr, _)| *attr == a.name)
                .map(|(_, names)| names.iter().map(|s| s.to_string()).collect())
                .unwrap_or_else(|| vec![norm(&a.name)]),
        };
        let names: Vec<&str> = candidates.iter().map(String::as_str).collect();
        match find(&names) {
            Some(field) => {
                let transform = transform_for(&a.name, a.data_type);
                lines.push(format!(
                    "{} = {}{}",
                    key(&a.name),
                    rule_text(&field, transform),
                    if transform == "e164" {
                        "   # national numbers need default_region"
                    } else {
                        ""
                    }
                ));
                mapped.insert(a.name.clone(), field.clone());
                used.insert(field);
            }
            None if a.required => {
                missing_required.push(a.name.clone());
                lines.push(format!(
                    "# {} = \"FIELD\"   # REQUIRED by the pool, and no field matched: set it",
                    key(&a.name)
                ));
            }
            None => unfed.push(a.name.clone()),
        }
    }

    // Cognito's import needs each user verified on an auto-verified attribute.
    for (attr, flag) in [
        ("email", "email_verified"),
        ("phone_number", "phone_number_verified"),
    ] {
        if schema.auto_verified_attributes.iter().any(|a| a == attr)
            && mapped.contains_key(attr)
            && !mapped.contains_key(flag)
        {
            lines.push(format!(
                "# {flag} = {{ transform = \"const\", value = \"true\" }}   # only if the old system verified every {attr}"
            ));
        }
    }

    let mut head = String::new();
    let _ = writeln!(
        head,
        "# Starting mapping for the {} input {} and user pool {}{},",
        ctx.format,
        ctx.location,
        schema.pool_id,
        if schema.pool_name.is_empty() {
            String::new()
        } else {
            format!(" ({})", schema.pool_name)
        }
    );
    let _ = writeln!(
        head,
        "# written by `cognito-migrate mapping init` from {} sampled records. Fields were matched to",
        stats.records
    );
    let _ = writeln!(
        head,
        "# attributes by name: review every line, then run `cognito-migrate plan --mapping THIS_FILE`."
    );
    if ctx.builtin.is_some() {
        let _ = writeln!(
            head,
            "# The {} format has a built-in mapping; this file is laid over it (its keys win).",
            ctx.format
        );
    }
    head.push('\n');

    let mut top = String::new();
    // Username.
    let email_login = schema.username_attributes.iter().any(|a| a == "email");
    let phone_login = schema
        .username_attributes
        .iter()
        .any(|a| a == "phone_number");
    let builtin_username = ctx.builtin.and_then(|b| b.username.as_ref());
    if email_login || phone_login {
        let _ = writeln!(
            top,
            "# The pool signs users in with {}: that value becomes the username, whatever `username` says.",
            schema.username_attributes.join(" or ")
        );
    }
    match (
        builtin_username,
        find(USERNAME_FIELDS).or_else(|| find(ID_FIELDS)),
    ) {
        (Some(_), _) => {
            let _ = writeln!(top, "# username: from the built-in {} mapping", ctx.format);
        }
        (None, Some(f)) => {
            let _ = writeln!(
                top,
                "# The username cannot change later: pick a stable, unique value (a login name or legacy id)."
            );
            let _ = writeln!(top, "username = {}", q(&f));
            used.insert(f);
        }
        (None, None) => {
            let _ = writeln!(
                top,
                "# username = \"FIELD\"   # no username or id field matched: set one"
            );
        }
    }
    let builtin_has = |f: fn(&MappingFile) -> bool| ctx.builtin.is_some_and(f);
    if stats.with_password == 0 && !builtin_has(|b| b.password.is_some()) {
        match find(PASSWORD_FIELDS) {
            Some(f) => {
                let _ = writeln!(
                    top,
                    "# the field holding encoded password hashes ($2b$…, $argon2id$…, pbkdf2_sha256$…)"
                );
                let _ = writeln!(top, "password = {}", q(&f));
                used.insert(f);
            }
            None => {
                let _ = writeln!(
                    top,
                    "# no password hash field matched: users are imported without one (RESET_REQUIRED) unless set"
                );
            }
        }
    } else if stats.with_password > 0 {
        let _ = writeln!(
            top,
            "# password hashes: read by the {} reader ({} of {} sampled records have one)",
            ctx.format, stats.with_password, stats.records
        );
    }
    if stats.with_groups == 0 && !builtin_has(|b| b.groups.is_some()) {
        if let Some(f) = find(GROUP_FIELDS) {
            let _ = writeln!(top, "# comma-separated group names");
            let _ = writeln!(top, "groups = {}", q(&f));
            used.insert(f);
        }
    }
    if !builtin_has(|b| b.enabled.is_some() || b.disabled.is_some()) {
        if let Some(f) = find(ENABLED_FIELDS) {
            let _ = writeln!(top, "enabled = {}", rule_text(&f, "bool"));
            used.insert(f);
        } else if let Some(f) = find(DISABLED_FIELDS) {
            let _ = writeln!(top, "disabled = {}", rule_text(&f, "bool"));
            used.insert(f);
        }
    }
    if mapped.contains_key("phone_number") && !builtin_has(|b| b.default_region.is_some()) {
        let _ = writeln!(
            top,
            "# the country of phone numbers written without +country code (ISO 3166 code)\n# default_region = \"US\""
        );
    }

    let mut tail = String::new();
    let unused: Vec<String> = stats
        .present
        .keys()
        .filter(|f| !used.contains(*f))
        .map(|f| format!("{f} ({})", stats.share(f)))
        .collect();
    if !unused.is_empty() {
        let _ = writeln!(
            tail,
            "\n# Fields of the input not mapped (non-empty in that share of the sampled records):"
        );
        for chunk in unused.chunks(4) {
            let _ = writeln!(tail, "#   {}", chunk.join(", "));
        }
    }
    if !unfed.is_empty() {
        let _ = writeln!(tail, "\n# Pool attributes no field feeds (optional):");
        for chunk in unfed.chunks(6) {
            let _ = writeln!(tail, "#   {}", chunk.join(", "));
        }
    }
    let required = schema.required_attributes();
    let _ = writeln!(
        tail,
        "\n# Attributes the pool requires: {}",
        if required.is_empty() {
            "none".to_string()
        } else {
            required.join(", ")
        }
    );
    if !schema.auto_verified_attributes.is_empty() {
        let _ = writeln!(
            tail,
            "# The pool auto-verifies {}: Cognito's import needs one of them marked verified per user.",
            schema.auto_verified_attributes.join(" and ")
        );
    }

    let providers = providers_table(schema, stats);
    let toml = format!(
        "{head}{top}\n[attributes]\n{}\n{providers}{tail}",
        lines.join("\n")
    );
    Suggestion {
        toml,
        missing_required,
        mapped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::Attribute;
    use crate::record::Position;

    fn schema() -> PoolSchema {
        let custom = |name: &str, required| Attribute {
            name: name.into(),
            data_type: DataType::String,
            required,
            mutable: true,
            min_length: None,
            max_length: Some(64),
            min_value: None,
            max_value: None,
        };
        PoolSchema::assemble(
            "us-east-1_x",
            "demo",
            vec![],
            vec![
                custom("custom:legacy_id", false),
                custom("custom:tier", true),
            ],
            vec![],
            vec!["email".into()],
            false,
            vec!["email".into()],
        )
    }

    fn user(fields: &[(&str, &str)]) -> LegacyUser {
        let mut u = LegacyUser::new(Position::default());
        for (k, v) in fields {
            u.fields.insert(k, v);
        }
        u
    }

    #[test]
    fn the_providers_seen_get_a_table_the_mapping_reads() {
        let mut stats = FieldStats::default();
        let mut u = user(&[("ID", "1"), ("E-Mail", "a@x.io")]);
        u.identities = vec![
            crate::record::Identity::new("google-oauth2", "1"),
            crate::record::Identity::new("acme-saml", "jo"),
        ];
        stats.add(&u);
        stats.add(&user(&[("ID", "2"), ("E-Mail", "b@x.io")]));
        let schema = schema().with_identity_providers(Some(vec!["AcmeSAML".into()]));
        let s = suggest(
            &schema,
            &stats,
            &InitContext {
                format: "auth0",
                location: "users.ndjson",
                builtin: None,
            },
        );
        let t = &s.toml;
        assert!(
            t.contains("\"google-oauth2\" = \"Google\"   # 1 of 2 sampled records; the pool has no identity provider Google yet"),
            "{t}"
        );
        assert!(
            t.contains("# \"acme-saml\" = \"PROVIDER NAME IN THE POOL\""),
            "{t}"
        );
        let file = MappingFile::parse(t, "init").unwrap();
        assert_eq!(
            file.providers.get("google-oauth2").map(String::as_str),
            Some("Google")
        );
        assert!(!file.providers.contains_key("acme-saml"));
    }

    #[test]
    fn fields_are_matched_by_name_and_synonym_with_the_right_transforms() {
        let mut stats = FieldStats::default();
        stats.add(&user(&[
            ("ID", "1"),
            ("Login", "alice"),
            ("E-Mail", "A@x.io"),
            ("First Name", "Alice"),
            ("surname", "Nguyen"),
            ("Mobile", "+14155550101"),
            ("pwd_hash", "$2b$..."),
            ("is_active", "1"),
            ("roles", "admin"),
            ("user_metadata.favourite", "tea"),
        ]));
        stats.add(&user(&[("ID", "2"), ("Login", "bob"), ("E-Mail", "")]));
        let s = suggest(
            &schema(),
            &stats,
            &InitContext {
                format: "csv",
                location: "users.csv",
                builtin: None,
            },
        );
        let t = &s.toml;
        assert!(t.contains("username = \"Login\""), "{t}");
        assert!(t.contains("password = \"pwd_hash\""), "{t}");
        assert!(t.contains("groups = \"roles\""), "{t}");
        assert!(
            t.contains("enabled = { from = \"is_active\", transform = \"bool\" }"),
            "{t}"
        );
        assert!(
            t.contains("email = { from = \"E-Mail\", transform = \"lowercase_email\" }"),
            "{t}"
        );
        assert!(t.contains("given_name = \"First Name\""), "{t}");
        assert!(t.contains("family_name = \"surname\""), "{t}");
        assert!(
            t.contains("phone_number = { from = \"Mobile\", transform = \"e164\" }"),
            "{t}"
        );
        assert!(t.contains("\"custom:legacy_id\" = \"ID\""), "{t}");
        assert!(t.contains("REQUIRED by the pool"), "{t}");
        assert_eq!(s.missing_required, ["custom:tier"]);
        assert!(t.contains("user_metadata.favourite (50%)"), "{t}");
        assert!(
            t.contains("Attributes the pool requires: custom:tier"),
            "{t}"
        );
        assert!(
            !t.contains("A@x.io") && !t.contains("Alice\""),
            "no values: {t}"
        );
        // It is a valid mapping file.
        let parsed = MappingFile::parse(t, "init").unwrap();
        assert_eq!(parsed.attributes.len(), 5);
    }
}
