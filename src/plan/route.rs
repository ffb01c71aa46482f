//! Routing: the one decision of how each user reaches the pool.
//!
//! - `import:<ALGORITHM>`: an import job for that hash algorithm; the password is kept and the user
//!   is CONFIRMED. One algorithm per job, so each algorithm gets its own chunk files.
//! - `import:none`: an import job without hashes; the user is RESET_REQUIRED.
//! - `admin-create`: one AdminCreateUser call (and follow-ups for groups and disabled users).
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
//! Cognito's import job fails a row unless at least one of the pool's auto-verified attributes
//! (email, phone_number) is verified for that user. Such users cannot take the import route: in
//! `auto` mode they go the non-import way (AdminCreateUser, or the trigger for a kept password), in
//! `import-job` mode they are rejected as `not_verifiable`.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

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

/// How one user reaches the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    Import(Option<ImportAlgorithm>),
    AdminCreate,
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
            Route::Trigger => "trigger",
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
}

pub struct Router {
    mode: Mode,
    policy: UnimportablePolicy,
    ctx: HashContext,
    /// `<attribute>_verified` for each of the pool's auto-verified attributes.
    verified_flags: Vec<String>,
    /// The `password_hash` notation per algorithm (see `cognito-migrate preflight`).
    notations: Notations,
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
            ctx,
            verified_flags: schema
                .auto_verified_attributes
                .iter()
                .map(|a| format!("{a}_verified"))
                .collect(),
            notations: Notations::default(),
        }
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

    pub fn route(&self, user: MappedUser) -> Result<Routed, Rejection> {
        let parsed = match &user.password {
            None => None,
            Some(raw) => match PasswordHash::from_raw(raw, &self.ctx) {
                Ok(h) => Some(h),
                Err(e) => {
                    return Err(Rejection::new(
                        user.position,
                        "password",
                        Reason::InvalidPasswordHash,
                        format!("the password hash cannot be read: {e}"),
                    ))
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
        })
    }
}
