//! Routing: the one decision of how each user reaches the pool.
//!
//! - `import:<ALGORITHM>`: an import job for that hash algorithm; the password is kept and the user
//!   is CONFIRMED. One algorithm per job, so each algorithm gets its own chunk files.
//! - `import:none`: an import job without hashes; the user is RESET_REQUIRED.
//! - `admin-create`: one AdminCreateUser call (and follow-ups for groups and disabled users).
//! - `federated`: a user who only signs in through identity providers (no password, at least one
//!   federated identity the pool can link): created by AdminCreateUser with `MessageAction=SUPPRESS`
//!   and no password in every mode, then linked (see below). Never an import job, which would
//!   make them RESET_REQUIRED for a password they never had. Recorded in the state under the
//!   writer it uses, `admin-create`.
//! - `trigger`: not written now; the user-migration trigger migrates them, password kept, at their
//!   first sign-in during the migration window.
//! - rejected, with a reason.
//!
//! The policy for hashes Cognito cannot import ([`UnimportablePolicy`]) defaults to `trigger`, so
//! that nobody has to reset a password that could have been kept; `reset` imports them without a
//! password, `reject` leaves them out. In `admin-create` mode no hash can be kept (AdminCreateUser
//! takes no hash), so every hash follows that policy. In `auto` mode users with importable hashes go
//! through import jobs and everyone else through AdminCreateUser.
//!
//! A hash that cannot be used at all — a format this tool does not recognise, a malformed one, an
//! unusable-password marker like Django's `!…` — does not reject the user
//! ([`UnknownHashPolicy::Reset`], the default): the user is migrated as one without a password
//! (`import:none`, RESET_REQUIRED, in `import-job` mode; AdminCreateUser, FORCE_CHANGE_PASSWORD,
//! otherwise), and [`Routed::unusable_hash`] says why, for the plan's counts and warning. The
//! trigger cannot verify such a hash either, so `--unimportable trigger` resets them too;
//! `--unimportable reject` rejects them, as every user whose password cannot be kept.
//! [`UnknownHashPolicy::Reject`] (`--unknown-hash reject`) rejects them as
//! `invalid_password_hash`. A missing or broken Firebase `--hash-config` is a configuration
//! error, not a property of the user's hash: those users are always rejected.
//!
//! Federated identities ([`MappedUser::links`]): a user with a password keeps its password route
//! and is linked too (a follow-up, after the user exists). An identity whose provider is not in
//! the `[providers]` table or not among the pool's identity providers is *unknown*:
//! [`UnknownProviderPolicy::LinkKnown`] (the default) migrates the user with the identities that
//! can be linked and counts the others per provider; [`UnknownProviderPolicy::Reject`] rejects the
//! user (`unknown_provider`). Cognito links at most five identities to a user: more is
//! `too_many_identities`.
//!
//! The user of the `federated` route is in the state Cognito gives AdminCreateUser without a
//! `TemporaryPassword`: FORCE_CHANGE_PASSWORD, which Cognito counts as confirmed ("the user is
//! confirmed and can sign in using a temporary password"), with a generated temporary password
//! nobody is sent (SUPPRESS) or told. A federated sign-in through a linked provider does not use
//! the password at all (the developer guide's "Linking federated users to an existing user
//! profile": the linked local profile is returned), so nothing more is needed, and the user is
//! never RESET_REQUIRED or asked to reset.
//!
//! Cognito's import job fails a row unless at least one of the pool's auto-verified attributes
//! (email, phone_number) is verified for that user. Such users cannot take the import route: in
//! `auto` mode they go the non-import way (AdminCreateUser, or the trigger for a kept password), in
//! `import-job` mode they are rejected as `not_verifiable`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::mapping::providers::{Link, MAX_LINKED_IDENTITIES};
use crate::mapping::{MappedUser, Reason, Rejection};
use crate::password::{HashContext, ImportAlgorithm, Notations, PasswordHash};
use crate::pool::PoolSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Everything through Cognito user import jobs.
    ImportJob,
    /// Everything through AdminCreateUser.
    AdminCreate,
    /// Importable hashes through import jobs, everyone else through AdminCreateUser.
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ImportJob => "import-job",
            Mode::AdminCreate => "admin-create",
            Mode::Auto => "auto",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UnimportablePolicy {
    /// Leave the user to the migration trigger, which keeps the password at first sign-in.
    #[default]
    Trigger,
    /// Create the user without a password: they reset it at first sign-in.
    Reset,
    /// Reject the user.
    Reject,
}

/// What to do with a user whose password hash cannot be used at all (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownHashPolicy {
    /// Migrate the user without a password (they reset it), counted and warned in the summary;
    /// `--unimportable reject` rejects them instead.
    #[default]
    Reset,
    /// Reject the user (`invalid_password_hash`).
    Reject,
}

/// What to do with a user who has a federated identity that cannot be linked (its provider is
/// not in the `[providers]` table, or not in the pool).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownProviderPolicy {
    /// Migrate the user and link the identities that can be linked; the others are counted per
    /// provider.
    #[default]
    LinkKnown,
    /// Reject the user (`unknown_provider`).
    Reject,
}

/// How one user reaches the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    Import(Option<ImportAlgorithm>),
    AdminCreate,
    /// Only federated sign-ins: AdminCreateUser without a password, then linked.
    Federated,
    Trigger,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Import(Some(a)) => match a.as_str() {
                "BCRYPT" => "import:BCRYPT",
                "SCRYPT" => "import:SCRYPT",
                "ARGON2ID" => "import:ARGON2ID",
                _ => "import:PBKDF2_SHA256",
            },
            Route::Import(None) => "import:none",
            Route::AdminCreate => "admin-create",
            Route::Federated => "federated",
            Route::Trigger => "trigger",
        }
    }

    /// The route as the state records it: the writer it takes (`federated` users are created by
    /// the AdminCreateUser writer).
    pub fn state_str(self) -> &'static str {
        match self {
            Route::Federated => Route::AdminCreate.as_str(),
            r => r.as_str(),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Route {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "import:none" => Route::Import(None),
            "admin-create" => Route::AdminCreate,
            "federated" => Route::Federated,
            "trigger" => Route::Trigger,
            other => match other.strip_prefix("import:") {
                Some(a) => {
                    Route::Import(Some(a.parse().map_err(|_| format!("unknown route {s}"))?))
                }
                None => return Err(format!("unknown route {s}")),
            },
        })
    }
}

/// A mapped user with its route and, for `import:<ALG>`, the `password_hash` value for the CSV.
#[derive(Clone, Debug)]
pub struct Routed {
    pub user: MappedUser,
    pub route: Route,
    /// The hash in Cognito's import notation (only for `import:<ALG>`).
    pub import_hash: Option<String>,
    /// The legacy hash's scheme name, for the summary (`bcrypt`, `firebase-scrypt`, …).
    pub scheme: Option<&'static str>,
    /// Why the password could not be kept by an import, when it has a hash that is not imported.
    pub not_imported_because: Option<String>,
    /// Why the user's password hash could not be used at all (unrecognised format, malformed,
    /// unusable marker): the user is routed as one without a password, and `user.password` is
    /// cleared. Never contains any part of the hash.
    pub unusable_hash: Option<String>,
    /// Federated identities that will not be linked (provider not in the table or not in the
    /// pool), by [`Link::label`]; `user.links` holds only the ones that will be.
    pub unknown_providers: Vec<String>,
}

pub struct Router {
    mode: Mode,
    policy: UnimportablePolicy,
    unknown: UnknownHashPolicy,
    ctx: HashContext,
    /// `<attribute>_verified` for each of the pool's auto-verified attributes.
    verified_flags: Vec<String>,
    /// The `password_hash` notation per algorithm (see `cognito-migrate preflight`).
    notations: Notations,
    /// The pool's identity provider names (ListIdentityProviders); `None`: not checked (an
    /// offline plan), every provider in the table counts as present.
    pool_providers: Option<BTreeSet<String>>,
    unknown_provider: UnknownProviderPolicy,
}

impl Router {
    pub fn new(
        mode: Mode,
        policy: UnimportablePolicy,
        ctx: HashContext,
        schema: &PoolSchema,
    ) -> Router {
        Router {
            mode,
            policy,
            unknown: UnknownHashPolicy::default(),
            ctx,
            verified_flags: schema
                .auto_verified_attributes
                .iter()
                .map(|a| format!("{a}_verified"))
                .collect(),
            notations: Notations::default(),
            pool_providers: schema
                .identity_providers
                .as_ref()
                .map(|v| v.iter().cloned().collect()),
            unknown_provider: UnknownProviderPolicy::default(),
        }
    }

    /// Checks links against the pool's identity providers (`None`: not known, not checked) and
    /// decides what unknown providers do.
    pub fn with_providers(
        mut self,
        pool_providers: Option<Vec<String>>,
        unknown: UnknownProviderPolicy,
    ) -> Router {
        self.pool_providers = pool_providers.map(|v| v.into_iter().collect());
        self.unknown_provider = unknown;
        self
    }

    /// Decides what users with identities that cannot be linked become (default: link the
    /// others).
    pub fn with_unknown_provider(mut self, unknown: UnknownProviderPolicy) -> Router {
        self.unknown_provider = unknown;
        self
    }

    /// Whether a link's provider is in the table and (when known) in the pool.
    fn linkable(&self, l: &Link) -> bool {
        match (&l.provider, &self.pool_providers) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(p), Some(pool)) => pool.contains(p),
        }
    }

    /// Splits the user's links into those that will be made and the labels of the others, or
    /// rejects the user (see the module docs).
    fn check_links(&self, user: &mut MappedUser) -> Result<Vec<String>, Rejection> {
        if user.links.is_empty() {
            return Ok(Vec::new());
        }
        let (known, unknown): (Vec<Link>, Vec<Link>) = std::mem::take(&mut user.links)
            .into_iter()
            .partition(|l| self.linkable(l));
        let labels: Vec<String> = unknown.iter().map(Link::label).collect();
        if !labels.is_empty() && self.unknown_provider == UnknownProviderPolicy::Reject {
            let why = unknown
                .iter()
                .map(|l| match &l.provider {
                    None => format!("{} (not in the [providers] table)", l.vendor),
                    Some(_) => format!("{} (the pool has no such identity provider)", l.label()),
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Rejection::new(
                user.position,
                "identities",
                Reason::UnknownProvider,
                format!(
                    "cannot link {why}; --unknown-provider link-known migrates the user with the \
                     identities that can be linked"
                ),
            ));
        }
        if known.len() > MAX_LINKED_IDENTITIES {
            return Err(Rejection::new(
                user.position,
                "identities",
                Reason::TooManyIdentities,
                format!(
                    "{} federated identities; Cognito links at most {MAX_LINKED_IDENTITIES} to a user",
                    known.len()
                ),
            ));
        }
        user.links = known;
        Ok(labels)
    }

    /// Sets what happens to users whose hash cannot be used (default: reset).
    pub fn with_unknown_hash(mut self, unknown: UnknownHashPolicy) -> Router {
        self.unknown = unknown;
        self
    }

    /// Writes imported hashes in these notations instead of the defaults.
    pub fn with_notations(mut self, notations: Notations) -> Router {
        self.notations = notations;
        self
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether Cognito's import job would accept this user's verification flags.
    fn importable_user(&self, user: &MappedUser) -> bool {
        self.verified_flags.is_empty() || self.verified_flags.iter().any(|f| user.is_true(f))
    }

    pub fn route(&self, mut user: MappedUser) -> Result<Routed, Rejection> {
        let unknown_providers = self.check_links(&mut user)?;
        let mut unusable_hash = None;
        let parsed = match &user.password {
            None => None,
            Some(raw) => match PasswordHash::from_raw(raw, &self.ctx) {
                Ok(h) => Some(h),
                Err(e) if e.needs_configuration() || self.unknown == UnknownHashPolicy::Reject => {
                    return Err(Rejection::new(
                        user.position,
                        "password",
                        Reason::InvalidPasswordHash,
                        format!("the password hash cannot be read: {e}"),
                    ))
                }
                Err(e) if self.policy == UnimportablePolicy::Reject => {
                    return Err(Rejection::new(
                        user.position,
                        "password",
                        Reason::UnimportablePasswordHash,
                        format!(
                            "the password hash cannot be used ({e}); --unimportable reject \
                             rejects users whose password cannot be kept"
                        ),
                    ))
                }
                Err(e) => {
                    unusable_hash = Some(e.to_string());
                    user.password = None;
                    None
                }
            },
        };
        let scheme = parsed.as_ref().map(|h| h.scheme());
        let importable_user = self.importable_user(&user);
        let mut import = None;
        let mut not_imported_because = None;
        if let Some(h) = &parsed {
            match h.cognito_import_with(&self.notations) {
                Ok(v) => import = Some(v),
                Err(e) => not_imported_because = Some(e.to_string()),
            }
        }
        if import.is_some() && !importable_user {
            not_imported_because = Some(
                "Cognito's import needs a verified email or phone number for this pool".into(),
            );
        }
        type Decision = (Route, Option<String>, Option<String>);
        let done = |route: Route, import_hash: Option<String>, why: Option<String>| -> Decision {
            (route, import_hash, why)
        };
        let not_verifiable = || {
            Rejection::new(
                user.position,
                "email_verified",
                Reason::NotVerifiable,
                format!(
                    "Cognito's import job needs one of {} verified for this pool; \
                     use --mode auto to create such users with AdminCreateUser",
                    self.verified_flags.join(", ")
                ),
            )
        };
        // A hash that will not be kept by this mode follows the policy.
        let unkept = |why: Option<String>, fallback: Route| -> Result<Decision, Rejection> {
            match self.policy {
                UnimportablePolicy::Trigger => Ok(done(Route::Trigger, None, why)),
                UnimportablePolicy::Reset => Ok(done(fallback, None, why)),
                UnimportablePolicy::Reject => Err(Rejection::new(
                    user.position,
                    "password",
                    Reason::UnimportablePasswordHash,
                    format!(
                        "the password cannot be kept by this mode ({}); --unimportable trigger or reset \
                         would keep or reset it",
                        why.as_deref().unwrap_or("no import")
                    ),
                )),
            }
        };
        let decision = match (self.mode, parsed.is_some()) {
            // Only federated sign-ins, in every mode: never an import (RESET_REQUIRED).
            (_, false) if !user.links.is_empty() => Ok(done(Route::Federated, None, None)),
            (Mode::ImportJob, false) => {
                if importable_user {
                    Ok(done(Route::Import(None), None, None))
                } else {
                    Err(not_verifiable())
                }
            }
            (Mode::ImportJob, true) => match (import, importable_user) {
                (Some((alg, s)), true) => Ok(done(Route::Import(Some(alg)), Some(s), None)),
                (_, false) => {
                    if self.policy == UnimportablePolicy::Trigger {
                        unkept(not_imported_because, Route::Import(None))
                    } else {
                        Err(not_verifiable())
                    }
                }
                (None, true) => unkept(not_imported_because, Route::Import(None)),
            },
            (Mode::AdminCreate, false) | (Mode::Auto, false) => {
                Ok(done(Route::AdminCreate, None, None))
            }
            (Mode::AdminCreate, true) => unkept(
                Some("AdminCreateUser cannot take a password hash".into()),
                Route::AdminCreate,
            ),
            (Mode::Auto, true) => match import {
                Some((alg, s)) if importable_user => {
                    Ok(done(Route::Import(Some(alg)), Some(s), None))
                }
                _ => unkept(not_imported_because, Route::AdminCreate),
            },
        };
        let (route, import_hash, not_imported_because) = decision?;
        Ok(Routed {
            user,
            route,
            import_hash,
            scheme,
            not_imported_because,
            unusable_hash,
            unknown_providers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Attributes;
    use crate::record::{Position, RawPassword};

    const BCRYPT4: &str = "$2b$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i";

    fn schema() -> PoolSchema {
        PoolSchema::assemble(
            "us-east-1_test",
            "test",
            vec!["email".into(), "email_verified".into()],
            vec![],
            vec![],
            vec![],
            false,
            vec!["email".into()],
        )
    }

    fn user(password: Option<RawPassword>) -> MappedUser {
        MappedUser {
            position: Position {
                record: 7,
                line: 8,
                byte_offset: 99,
            },
            username: "u7".into(),
            attributes: [("email", "u7@example.com"), ("email_verified", "true")]
                .into_iter()
                .collect::<Attributes>(),
            enabled: true,
            groups: vec![],
            password,
            links: vec![],
            legacy_id: None,
        }
    }

    fn link(vendor: &str, provider: Option<&str>, id: &str) -> Link {
        Link {
            vendor: vendor.into(),
            provider: provider.map(str::to_string),
            user_id: id.into(),
        }
    }

    /// Federated-only users take the `federated` route in every mode; users with a password keep
    /// theirs and keep their links; unknown providers follow the policy.
    #[test]
    fn federated_users_route_and_unknown_providers_follow_the_policy() {
        let pool = Some(vec!["Google".to_string(), "GitHub".to_string()]);
        for mode in [Mode::ImportJob, Mode::AdminCreate, Mode::Auto] {
            let r = router(mode, UnimportablePolicy::Trigger, UnknownHashPolicy::Reset)
                .with_providers(pool.clone(), UnknownProviderPolicy::LinkKnown);
            let mut u = user(None);
            u.links = vec![
                link("google.com", Some("Google"), "1"),
                link("apple.com", Some("SignInWithApple"), "2"),
                link("twitter.com", None, "3"),
            ];
            let routed = r.route(u).unwrap();
            assert_eq!(routed.route, Route::Federated, "{mode:?}");
            assert_eq!(routed.route.state_str(), "admin-create");
            assert_eq!(
                routed.user.links,
                vec![link("google.com", Some("Google"), "1")]
            );
            assert_eq!(
                routed.unknown_providers,
                vec![
                    "apple.com → SignInWithApple".to_string(),
                    "twitter.com".to_string()
                ]
            );
            // A password keeps its route, and the links.
            let mut u = user(encoded(BCRYPT4));
            u.links = vec![link("google.com", Some("Google"), "1")];
            let routed = r.route(u).unwrap();
            assert_ne!(routed.route, Route::Federated);
            assert_eq!(routed.user.links.len(), 1);
            // Only unknown providers and no password: the usual passwordless route.
            let mut u = user(None);
            u.links = vec![link("twitter.com", None, "3")];
            let routed = r.route(u).unwrap();
            assert_ne!(routed.route, Route::Federated);
            assert!(routed.user.links.is_empty());
        }
        let strict = router(
            Mode::Auto,
            UnimportablePolicy::Trigger,
            UnknownHashPolicy::Reset,
        )
        .with_providers(pool, UnknownProviderPolicy::Reject);
        let mut u = user(None);
        u.links = vec![
            link("google.com", Some("Google"), "1"),
            link("apple.com", Some("SignInWithApple"), "2"),
        ];
        let e = strict.route(u).unwrap_err();
        assert_eq!(e.reason, Reason::UnknownProvider);
        assert_eq!(e.field, "identities");
        assert!(
            e.message.contains("apple.com → SignInWithApple"),
            "{}",
            e.message
        );
        // Without the pool's list (offline), every provider in the table is linkable; more than
        // five identities is rejected.
        let offline = router(
            Mode::Auto,
            UnimportablePolicy::Trigger,
            UnknownHashPolicy::Reset,
        );
        let mut u = user(None);
        u.links = (0..6)
            .map(|i| link("google.com", Some("Google"), &i.to_string()))
            .collect();
        assert_eq!(
            offline.route(u).unwrap_err().reason,
            Reason::TooManyIdentities
        );
    }

    fn router(mode: Mode, policy: UnimportablePolicy, unknown: UnknownHashPolicy) -> Router {
        Router::new(mode, policy, HashContext::default(), &schema()).with_unknown_hash(unknown)
    }

    fn encoded(s: &str) -> Option<RawPassword> {
        Some(RawPassword::Encoded(s.into()))
    }

    /// Unknown formats, malformed hashes and unusable markers route the user as one without a
    /// password in every mode, with the reason and without the hash.
    #[test]
    fn unusable_hashes_route_without_a_password() {
        let cases = [
            (
                "{SSHA}c2VjcmV0c2FsdHNlY3JldA==",
                "unrecognised password hash format",
            ),
            (
                "!a8HxQ2mVt0ZkLwPq9sRbYc3NdJ7eFg4hUi5oKl6",
                "unusable-password marker",
            ),
            (
                "pbkdf2_sha256$abc$salt$aGFzaA==",
                "malformed django-pbkdf2-sha256",
            ),
        ];
        for (hash, why) in cases {
            for (mode, policy, route) in [
                (
                    Mode::ImportJob,
                    UnimportablePolicy::Trigger,
                    Route::Import(None),
                ),
                (
                    Mode::ImportJob,
                    UnimportablePolicy::Reset,
                    Route::Import(None),
                ),
                (
                    Mode::AdminCreate,
                    UnimportablePolicy::Trigger,
                    Route::AdminCreate,
                ),
                (Mode::Auto, UnimportablePolicy::Reset, Route::AdminCreate),
            ] {
                let r = router(mode, policy, UnknownHashPolicy::Reset)
                    .route(user(encoded(hash)))
                    .unwrap_or_else(|e| panic!("{hash} {mode:?}: rejected: {e}"));
                assert_eq!(r.route, route, "{hash} {mode:?} {policy:?}");
                let reason = r.unusable_hash.as_deref().unwrap_or_default();
                assert!(reason.contains(why), "{hash}: {reason}");
                assert!(
                    !reason.contains(&hash[2..10]),
                    "the reason shows the hash: {reason}"
                );
                assert_eq!(r.user.password, None);
                assert_eq!((r.scheme, r.import_hash), (None, None));
            }
        }
    }

    #[test]
    fn strict_policies_still_reject() {
        let hash = "{SSHA}c2VjcmV0c2FsdHNlY3JldA==";
        let e = router(
            Mode::ImportJob,
            UnimportablePolicy::Trigger,
            UnknownHashPolicy::Reject,
        )
        .route(user(encoded(hash)))
        .unwrap_err();
        assert_eq!(
            (e.reason, e.field.as_str(), e.position.record),
            (Reason::InvalidPasswordHash, "password", 7)
        );
        let e = router(
            Mode::AdminCreate,
            UnimportablePolicy::Reject,
            UnknownHashPolicy::Reset,
        )
        .route(user(encoded(hash)))
        .unwrap_err();
        assert_eq!(e.reason, Reason::UnimportablePasswordHash);
        assert!(e.message.contains("unrecognised"), "{}", e.message);
        assert!(!e.message.contains("c2VjcmV0"), "{}", e.message);
    }

    /// A Firebase hash without the project's hash_config is the run's configuration, not the
    /// user's hash: it is never silently dropped.
    #[test]
    fn missing_firebase_config_rejects() {
        let raw = Some(RawPassword::Firebase {
            hash: "aGFzaA==".into(),
            salt: "c2FsdA==".into(),
        });
        let e = router(
            Mode::ImportJob,
            UnimportablePolicy::Reset,
            UnknownHashPolicy::Reset,
        )
        .route(user(raw))
        .unwrap_err();
        assert_eq!(e.reason, Reason::InvalidPasswordHash);
    }

    /// Readable hashes are untouched by the new policy.
    #[test]
    fn readable_hashes_are_unaffected() {
        let r = router(
            Mode::ImportJob,
            UnimportablePolicy::Trigger,
            UnknownHashPolicy::Reset,
        )
        .route(user(encoded(BCRYPT4)))
        .unwrap();
        assert_eq!(r.route.as_str(), "import:BCRYPT");
        assert_eq!(r.unusable_hash, None);
        let r = router(
            Mode::ImportJob,
            UnimportablePolicy::Trigger,
            UnknownHashPolicy::Reset,
        )
        .route(user(encoded(
            "sha1$abc$7a75f31d83568c42ed517bd88866898c4628cf1b",
        )))
        .unwrap();
        assert_eq!((r.route, r.scheme), (Route::Trigger, Some("django-sha1")));
    }
}
