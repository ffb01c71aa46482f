//! The [`Mapper`]: applies a mapping file's rules to each record and validates the result for the
//! pool, remembering accepted usernames and aliases to reject later duplicates.

use std::borrow::Cow;
use std::sync::Arc;

use super::config::{CompiledRule, MappingError, MappingFile, Rule};
use super::groups::GroupRewrite;
use super::providers::{Link, ProviderTable};
use super::seen::Seen;
use super::transform::{
    bool_str, control_character, is_e164, is_email, lowercase, parse_bool, Transform,
};
use super::*;
use crate::pool::{DataType, PoolSchema};
use crate::record::{LegacyUser, Position, RawPassword};

/// A user ready for Cognito.
#[derive(Clone, Debug, PartialEq)]
pub struct MappedUser {
    pub position: Position,
    /// `cognito:username` / AdminCreateUser's `Username`.
    pub username: String,
    /// Cognito attribute name → value; only non-empty values. Includes `cognito:mfa_enabled` when
    /// mapped.
    pub attributes: Attributes,
    pub enabled: bool,
    pub groups: Vec<String>,
    pub password: Option<RawPassword>,
    /// Federated identities to link to the user once it is in the pool, each with the pool's
    /// identity provider from the `[providers]` table (see [`super::providers`]).
    pub links: Vec<Link>,
    /// The user's id in the legacy system, for the id map (`report --id-map`): the mapped
    /// `custom:legacy_id`, else the source's own id field ([`Mapper::set_legacy_id_field`]).
    /// Recorded in the state; not an attribute (the pool may not declare `custom:legacy_id`).
    pub legacy_id: Option<String>,
}

impl MappedUser {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)
    }

    pub fn is_true(&self, name: &str) -> bool {
        self.attribute(name) == Some("true")
    }
}

#[derive(Clone, Debug)]
struct Target {
    name: String,
    /// Index of `name` in the mapper's name table ([`Attributes`]).
    slot: usize,
    rule: CompiledRule,
    data_type: DataType,
    min_length: Option<u32>,
    max_length: Option<u32>,
    min_value: Option<i64>,
    max_value: Option<i64>,
    /// The format check this attribute gets, decided once from its name.
    format: Format,
}

/// Attributes whose value must have a format beyond their data type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Any,
    Email,
    Phone,
    Birthdate,
}

impl Format {
    fn of(attribute: &str) -> Format {
        match attribute {
            "email" => Format::Email,
            "phone_number" => Format::Phone,
            "birthdate" => Format::Birthdate,
            _ => Format::Any,
        }
    }
}

/// Which user keys the pool requires to be unique.
const KEY_USERNAME: u8 = 0;
const KEY_EMAIL: u8 = 1;
const KEY_PHONE: u8 = 2;
const KEY_PREFERRED: u8 = 3;

/// Maps and validates records for one pool. Stateful: it remembers usernames and aliases it has
/// accepted, to reject later duplicates.
pub struct Mapper {
    schema: PoolSchema,
    username: CompiledRule,
    username_from: UsernameFrom,
    password_field: Option<String>,
    /// `password_scheme = "aspnet-identity"`: the password field is an ASP.NET Identity blob.
    aspnet_password: bool,
    groups_field: Option<String>,
    /// The source field holding the user's legacy id ([`Mapper::set_legacy_id_field`]).
    legacy_id_field: Option<String>,
    group_rewrite: GroupRewrite,
    providers: ProviderTable,
    enabled: Option<CompiledRule>,
    default_region: Option<String>,
    targets: Vec<Target>,
    /// The sorted target names, shared by every [`MappedUser`]'s [`Attributes`].
    names: Arc<Vec<String>>,
    /// Slots in `names` of the attributes the checks below read, if mapped.
    slots: Slots,
    /// Attributes the pool requires, with their slots.
    required: Vec<(String, usize)>,
    unique_email: bool,
    unique_phone: bool,
    unique_preferred: bool,
    seen: Seen,
}

/// Slots of the attributes [`Mapper::map`] reads back, found once.
#[derive(Clone, Copy, Debug)]
struct Slots {
    email: Option<usize>,
    phone: Option<usize>,
    preferred: Option<usize>,
    email_verified: Option<usize>,
    phone_verified: Option<usize>,
}

/// The value in an optional slot.
#[inline]
fn at(a: &Attributes, slot: Option<usize>) -> Option<&str> {
    slot.and_then(|i| a.get_slot(i))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UsernameFrom {
    Rule,
    EmailOrPhone { email: bool, phone: bool },
}

/// A record mapped and validated on its own, waiting for its duplicate check
/// ([`Mapper::prepare`], [`Mapper::admit`]).
pub struct Prepared {
    user: LegacyUser,
    username: String,
    attributes: Attributes,
    /// The keys that must be unique: fingerprint, field and the reason if it is not.
    keys: [(u64, &'static str, Reason); 4],
    n: usize,
}

impl Prepared {
    /// The record's position in its input.
    pub fn position(&self) -> Position {
        self.user.position
    }
}

impl Mapper {
    /// Checks a mapping against the pool. Errors here are configuration errors: nothing has run.
    pub fn new(mapping: &MappingFile, schema: &PoolSchema) -> Result<Mapper, MappingError> {
        let username_rule = mapping
            .username
            .clone()
            .unwrap_or_else(|| Rule::Field("username".into()));
        let username = CompiledRule::compile("username", &username_rule)?;
        let email_login = schema.username_attributes.iter().any(|a| a == "email");
        let phone_login = schema
            .username_attributes
            .iter()
            .any(|a| a == "phone_number");
        let username_from = if email_login || phone_login {
            UsernameFrom::EmailOrPhone {
                email: email_login,
                phone: phone_login,
            }
        } else {
            UsernameFrom::Rule
        };
        let mut targets = Vec::new();
        for (name, rule) in &mapping.attributes {
            let name = name.as_str();
            let (data_type, min_length, max_length, min_value, max_value) =
                if name == "cognito:mfa_enabled" {
                    (DataType::Boolean, None, None, None, None)
                } else {
                    let a = schema
                        .attribute(name)
                        .filter(|_| name != "sub")
                        .ok_or_else(|| MappingError::UnknownAttribute {
                            attribute: name.to_string(),
                        })?;
                    (
                        a.data_type,
                        a.min_length,
                        a.max_length,
                        a.min_value,
                        a.max_value,
                    )
                };
            targets.push(Target {
                name: name.to_string(),
                slot: 0,
                format: Format::of(name),
                rule: CompiledRule::compile(name, rule)?,
                data_type,
                min_length,
                max_length,
                min_value,
                max_value,
            });
        }
        let enabled = match (&mapping.enabled, &mapping.disabled) {
            (Some(r), _) => Some(CompiledRule::compile("enabled", r)?),
            (None, Some(r)) => {
                let mut c = CompiledRule::compile("disabled", r)?;
                c.transform = match c.transform {
                    Transform::Bool | Transform::Trim => Transform::NotBool,
                    Transform::NotBool => Transform::Bool,
                    other => {
                        return Err(MappingError::Invalid {
                            target: "disabled".into(),
                            message: format!("takes the `bool` transform, not {other:?}"),
                        })
                    }
                };
                Some(c)
            }
            (None, None) => None,
        };
        let required = schema.required_attributes();
        for &r in &required {
            if !mapping.attributes.contains_key(r) {
                return Err(MappingError::Invalid {
                    target: r.to_string(),
                    message: "the pool requires this attribute but the mapping does not set it"
                        .into(),
                });
            }
        }
        let aspnet_password = match mapping.password_scheme.as_deref() {
            None | Some("auto") => false,
            Some("aspnet-identity") => true,
            Some(other) => {
                return Err(MappingError::Invalid {
                    target: "password_scheme".into(),
                    message: format!(
                        "unknown scheme {other:?}; known: \"auto\", \"aspnet-identity\""
                    ),
                })
            }
        };
        let groups = mapping
            .groups
            .as_ref()
            .map(|g| g.table())
            .unwrap_or_default();
        let group_rewrite = GroupRewrite::new(&groups)?;
        let mut names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
        names.sort();
        names.dedup();
        for t in &mut targets {
            t.slot = names.binary_search(&t.name).expect("listed");
        }
        let alias = |a: &str| schema.alias_attributes.iter().any(|x| x == a);
        let slot = |a: &str| names.binary_search_by(|n| n.as_str().cmp(a)).ok();
        // Every required attribute is a target (checked above), so it has a slot.
        let required = required
            .into_iter()
            .filter_map(|r| slot(r).map(|i| (r.to_string(), i)))
            .collect();
        let slots = Slots {
            email: slot("email"),
            phone: slot("phone_number"),
            preferred: slot("preferred_username"),
            email_verified: slot("email_verified"),
            phone_verified: slot("phone_number_verified"),
        };
        Ok(Mapper {
            slots,
            names: Arc::new(names),
            schema: schema.clone(),
            username,
            username_from,
            password_field: mapping.password.clone(),
            aspnet_password,
            groups_field: groups.from,
            legacy_id_field: None,
            group_rewrite,
            providers: ProviderTable::new(&mapping.providers),
            enabled,
            default_region: mapping.default_region.clone(),
            targets,
            required,
            unique_email: email_login || alias("email"),
            unique_phone: phone_login || alias("phone_number"),
            unique_preferred: alias("preferred_username"),
            seen: Seen::default(),
        })
    }

    /// The source field that holds the user's id in the legacy system (e.g. Auth0's `user_id`,
    /// see [`crate::source::legacy_id_field`]): [`MappedUser::legacy_id`] takes it when the mapping
    /// writes no `custom:legacy_id` (the pool need not declare the attribute for the id map).
    pub fn set_legacy_id_field(&mut self, field: Option<String>) {
        self.legacy_id_field = field;
    }

    pub fn schema(&self) -> &PoolSchema {
        &self.schema
    }

    /// The attribute names the mapping writes, in mapping order.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| t.name.as_str())
    }

    fn fold<'v>(&self, v: &'v str) -> Cow<'v, str> {
        if self.schema.username_case_sensitive {
            Cow::Borrowed(v)
        } else {
            lowercase(v)
        }
    }

    /// Maps one record, or says why it cannot be migrated: [`Mapper::prepare`] then
    /// [`Mapper::admit`].
    pub fn map(&mut self, user: LegacyUser) -> Result<MappedUser, Rejection> {
        let p = self.prepare(user)?;
        self.admit(p)
    }

    /// The first half of [`Mapper::map`]: maps and validates one record on its own (attributes,
    /// username, the keys that must be unique), without the duplicate check. It reads none of
    /// the mapper's state, so a caller may prepare the next record before admitting this one.
    pub fn prepare(&self, user: LegacyUser) -> Result<Prepared, Rejection> {
        let pos = user.position;
        let region = self.default_region.as_deref();

        let mut attributes = Attributes::with_names(self.names.clone(), 256);
        for t in &self.targets {
            let Some(mut v) = apply(&t.rule, &t.name, &user, region, pos)? else {
                continue;
            };
            let reject = |reason, message: String| {
                let field = t.rule.sources.first().unwrap_or(&t.name);
                Err(Rejection::new(
                    pos,
                    field,
                    reason,
                    format!("{}: {message}", t.name),
                ))
            };
            match t.data_type {
                DataType::Boolean => match parse_bool(&v) {
                    Some(b) => v = Cow::Borrowed(bool_str(b)),
                    None => {
                        return reject(Reason::InvalidBoolean, format!("{v:?} is not a boolean"))
                    }
                },
                DataType::Number => match v.parse::<i64>() {
                    Ok(n) => {
                        if t.min_value.is_some_and(|m| n < m) || t.max_value.is_some_and(|m| n > m)
                        {
                            return reject(
                                Reason::OutOfRange,
                                format!(
                                    "{n} is outside the pool's range {}..{}",
                                    t.min_value.map(|m| m.to_string()).unwrap_or_default(),
                                    t.max_value.map(|m| m.to_string()).unwrap_or_default()
                                ),
                            );
                        }
                    }
                    Err(_) => {
                        return reject(
                            Reason::InvalidNumber,
                            format!("{v:?} is not a whole number"),
                        )
                    }
                },
                DataType::String | DataType::DateTime => {
                    // A value never has more characters than bytes: most values are known to
                    // fit without counting.
                    let bytes = v.len() as u32;
                    if t.max_length.is_some_and(|m| bytes > m) || t.min_length.is_some() {
                        let len = v.chars().count() as u32;
                        if let Some(max) = t.max_length.filter(|m| len > *m) {
                            return reject(
                                Reason::TooLong,
                                format!("{len} characters, the pool allows at most {max}"),
                            );
                        }
                        if let Some(min) = t.min_length.filter(|m| len < *m) {
                            return reject(
                                Reason::TooShort,
                                format!("{len} characters, the pool requires at least {min}"),
                            );
                        }
                    }
                }
            }
            if let Some((at, c)) = control_character(&v) {
                return reject(
                    Reason::ControlCharacter,
                    format!(
                        "control character U+{:04X} at character {at} (control characters are not allowed in attribute values)",
                        c as u32
                    ),
                );
            }
            match t.format {
                Format::Any => {}
                Format::Email if !is_email(&v) => {
                    return reject(Reason::InvalidEmail, "not a valid email address".into())
                }
                Format::Phone if !is_e164(&v) => {
                    return reject(
                        Reason::InvalidPhone,
                        "not in E.164 (+ and up to 15 digits); the e164 transform with default_region converts national numbers".into(),
                    )
                }
                Format::Birthdate if transform::to_date(&v).as_deref() != Some(&*v) && !v.starts_with("0000-") => {
                    return reject(Reason::InvalidDate, "not a YYYY-MM-DD date".into())
                }
                _ => {}
            }
            attributes.set_slot(t.slot, &v);
        }
        for (r, slot) in &self.required {
            if attributes.get_slot(*slot).is_none() {
                let field = self
                    .targets
                    .iter()
                    .find(|t| &t.name == r)
                    .and_then(|t| t.rule.sources.first().cloned())
                    .unwrap_or_else(|| r.clone());
                return Err(Rejection::new(
                    pos,
                    &field,
                    Reason::MissingRequired,
                    format!("{r} is required by the pool and is empty"),
                ));
            }
        }
        let sl = self.slots;
        let username = match self.username_from {
            UsernameFrom::EmailOrPhone { email, phone } => {
                let e = at(&attributes, sl.email).filter(|_| email);
                let p = at(&attributes, sl.phone).filter(|_| phone);
                match e.or(p) {
                    Some(v) => v.to_string(),
                    None => {
                        let what = match (email, phone) {
                            (true, true) => "email or phone_number",
                            (true, false) => "email",
                            _ => "phone_number",
                        };
                        return Err(Rejection::new(
                            pos,
                            what,
                            Reason::MissingRequired,
                            format!(
                                "missing {what}: the pool signs users in with {what}, and this \
                                 user has none"
                            ),
                        ));
                    }
                }
            }
            UsernameFrom::Rule => match apply(&self.username, "username", &user, region, pos)? {
                Some(u) => u.into_owned(),
                None => {
                    let field = self.username.sources.first().cloned().unwrap_or_default();
                    return Err(Rejection::new(
                        pos,
                        &field,
                        Reason::MissingRequired,
                        "the username is empty",
                    ));
                }
            },
        };
        let bad = if username.is_ascii() {
            username.len() > 128
                // White space and control characters: below `!`, and DEL.
                || username.bytes().any(|b| b <= b' ' || b == 0x7f)
        } else {
            username.chars().count() > 128
                || username
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
        };
        if bad {
            let field = self
                .username
                .sources
                .first()
                .cloned()
                .unwrap_or_else(|| "username".into());
            return Err(Rejection::new(
                pos,
                &field,
                Reason::InvalidUsername,
                "a username must be 1 to 128 characters without white space",
            ));
        }

        // After the username: in a pool that signs in with email, a user without one is told
        // that, not that email_verified is true.
        for (flag, attr, flag_slot, attr_slot) in [
            ("email_verified", "email", sl.email_verified, sl.email),
            (
                "phone_number_verified",
                "phone_number",
                sl.phone_verified,
                sl.phone,
            ),
        ] {
            if at(&attributes, flag_slot) == Some("true") && at(&attributes, attr_slot).is_none() {
                return Err(Rejection::new(
                    pos,
                    flag,
                    Reason::MissingRequired,
                    format!("{flag} is true but {attr} is empty"),
                ));
            }
        }

        // Uniqueness, case-insensitively unless the pool is case-sensitive.
        // At most one key of each kind, fingerprinted up front (no allocation for ASCII keys).
        let mut keys = [(0u64, "", Reason::DuplicateUsername); 4];
        let mut n = 0;
        keys[n] = (
            Seen::fingerprint(KEY_USERNAME, &self.fold(&username)),
            "username",
            Reason::DuplicateUsername,
        );
        n += 1;
        if self.unique_email {
            if let Some(e) = at(&attributes, sl.email) {
                keys[n] = (
                    Seen::fingerprint(KEY_EMAIL, &lowercase(e)),
                    "email",
                    Reason::DuplicateEmail,
                );
                n += 1;
            }
        }
        if self.unique_phone {
            if let Some(p) = at(&attributes, sl.phone) {
                keys[n] = (
                    Seen::fingerprint(KEY_PHONE, p),
                    "phone_number",
                    Reason::DuplicatePhone,
                );
                n += 1;
            }
        }
        if self.unique_preferred {
            if let Some(p) = at(&attributes, sl.preferred) {
                keys[n] = (
                    Seen::fingerprint(KEY_PREFERRED, &self.fold(p)),
                    "preferred_username",
                    Reason::DuplicateAlias,
                );
                n += 1;
            }
        }
        Ok(Prepared {
            user,
            username,
            attributes,
            keys,
            n,
        })
    }

    /// The second half of [`Mapper::map`]: the duplicate check of a [`Prepared`] record (the
    /// first record with a key wins), then its enabled flag, password and groups. Records must
    /// be admitted in input order.
    pub fn admit(&mut self, prepared: Prepared) -> Result<MappedUser, Rejection> {
        let Prepared {
            mut user,
            username,
            attributes,
            keys,
            n,
        } = prepared;
        let pos = user.position;
        let region = self.default_region.as_deref();
        let record = pos.record;
        let keys = &keys[..n];
        for (fingerprint, field, reason) in keys {
            if let Some(first) = self.seen.check(*fingerprint) {
                let first = match first {
                    Some(r) => format!("record {r}"),
                    None => "an earlier record".to_string(),
                };
                return Err(Rejection::new(
                    pos,
                    field,
                    *reason,
                    format!("the same {field} as {first}, which is kept"),
                ));
            }
        }
        for (fingerprint, _, _) in keys {
            self.seen.insert(*fingerprint, record);
        }

        let enabled = match &self.enabled {
            Some(rule) => match apply(rule, "enabled", &user, region, pos)? {
                Some(v) => parse_bool(&v).unwrap_or(true),
                None => user.enabled,
            },
            None => user.enabled,
        };
        let password = match &self.password_field {
            Some(f) => user
                .fields
                .remove(f)
                .filter(|v| !v.trim().is_empty())
                .map(|v| RawPassword::Encoded(v.trim().to_string()))
                .or(user.password.take()),
            None => user.password.take(),
        };
        let password = match password {
            Some(RawPassword::Encoded(v)) if self.aspnet_password => {
                Some(RawPassword::AspNetIdentity(v))
            }
            other => other,
        };
        let mut groups = std::mem::take(&mut user.groups);
        if let Some(f) = &self.groups_field {
            if let Some(v) = user.field(f) {
                groups.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string),
                );
            }
        }
        let groups = self.check_groups(groups, pos)?;
        let links = self.providers.links(&user.identities);
        let legacy_id = attributes
            .get("custom:legacy_id")
            .or_else(|| self.legacy_id_field.as_deref().and_then(|f| user.field(f)))
            .map(str::to_string);
        Ok(MappedUser {
            position: pos,
            username,
            attributes,
            enabled,
            groups,
            password,
            links,
            legacy_id,
        })
    }
}

impl Mapper {
    /// Rewrites the user's group names as the mapping says, drops repeats, and rejects the user
    /// if a name still does not fit Cognito's rules (see [`groups`]).
    fn check_groups(&self, groups: Vec<String>, pos: Position) -> Result<Vec<String>, Rejection> {
        if groups.is_empty() {
            return Ok(groups);
        }
        let n = groups.len();
        let mut out: Vec<String> = Vec::with_capacity(n);
        for (i, g) in groups.iter().enumerate() {
            let name = self.group_rewrite.apply(g);
            if let Some(why) = groups::check(&name) {
                let field = self.groups_field.as_deref().unwrap_or("groups");
                return Err(Rejection::new(
                    pos,
                    field,
                    Reason::InvalidGroup,
                    format!("group {} of {n} ({name:?}): {why}", i + 1),
                ));
            }
            if !out.iter().any(|o| *o == *name) {
                out.push(name.into_owned());
            }
        }
        Ok(out)
    }
}

/// Applies one rule to a record: the source values are borrowed from the record (no `Vec` for the
/// usual single source), and so is the result where the transform keeps the text. Inlined: as a
/// call, its result went back through memory, and reading it stalled on every attribute.
#[inline(always)]
pub(super) fn apply<'a>(
    rule: &'a CompiledRule,
    target: &str,
    user: &'a LegacyUser,
    region: Option<&str>,
    pos: Position,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    let result = match rule.sources.as_slice() {
        [] => rule.transform.apply(&[], region),
        [one] => {
            let value = user.field(one);
            // The transforms of nearly every attribute, answered here without the general
            // `Transform::apply` (whose large result came back through memory and stalled the
            // loop on every attribute); anything else, and every error, goes the general way.
            let quick = match (&rule.transform, value.map(transform::trim)) {
                // These two do not read the first value alone.
                (Transform::Const(_) | Transform::Join(_), _) => None,
                (_, None | Some("")) => Some(None),
                (Transform::Trim, Some(v)) => Some(Some(Cow::Borrowed(v))),
                (Transform::Lowercase | Transform::LowercaseEmail, Some(v)) => {
                    Some(Some(lowercase(v)))
                }
                (Transform::Bool, Some(v)) => {
                    parse_bool(v).map(|b| Some(Cow::Borrowed(bool_str(b))))
                }
                (Transform::E164, Some(v)) if is_e164(v) => Some(Some(Cow::Borrowed(v))),
                _ => None,
            };
            if let Some(q) = quick {
                return Ok(q);
            }
            rule.transform.apply(&[value], region)
        }
        many => {
            let refs: Vec<Option<&'a str>> = many.iter().map(|s| user.field(s)).collect();
            rule.transform.apply(&refs, region)
        }
    };
    result.map_err(|(reason, message)| {
        let field = rule.sources.first().map(String::as_str).unwrap_or(target);
        Rejection::new(pos, field, reason, format!("{target}: {message}"))
    })
}
