//! Views of the pool against what the migration expected: the id map (`report --id-map`: every
//! migrated user's legacy id, Cognito username and new `sub`) and the trigger's progress
//! (`progress`: of the users left to the migration trigger, how many have arrived, and when).
//!
//! # Why it exists
//!
//! Cognito gives every user a new `sub` that cannot be chosen, so an app whose database refers to
//! users by their legacy id needs an exact map to rewrite its references; and the owner of a
//! migration with a trigger needs to know how many users have signed in (and so arrived) to decide
//! when the trigger and the legacy directory can be retired. Both answers come from comparing the
//! users the run or the directory expected ([`Tracked`]) with the users the pool holds
//! ([`PoolEntry`]), matched the way the trigger names them ([`Matcher`]).
//!
//! # Reading the pool
//!
//! The pool is read either by one paced ListUsers pass (UserList quota, 30 RPS, 60 users a page) or
//! by AdminGetUser per expected user (UserRead quota, 120 RPS); [`Strategy::choose`] decides by
//! the counts (see there). Either way the views see [`PoolEntry`] values; [`read`] does the I/O.
//!
//! Nothing here reads or writes a password or hash.

pub mod arrivals;
pub mod date;
pub mod idmap;
pub mod read;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde::Serialize;

use crate::checkpoint::{Checkpoint, CheckpointError, Outcome, RecordSet, RunId};
use crate::directory::{DirectoryError, DirectoryFile, SignIn};
use crate::pool::{PoolError, PoolSchema};
use crate::sink::admin_create::FOLLOWUP_FAILED;

pub use arrivals::{DayCount, TriggerProgress};
pub use idmap::{IdMap, IdMapRow, IdStatus, ID_MAP_COLUMNS};
pub use read::{read_pool, ReadError, Strategy};

/// The attribute the built-in mappings write a user's legacy id to.
pub const LEGACY_ID_ATTRIBUTE: &str = "custom:legacy_id";

/// A user as the pool holds them, as far as the views need.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolEntry {
    /// The Cognito username (a UUID in pools whose usernames are email addresses or phone numbers).
    pub username: String,
    pub sub: String,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    /// `custom:legacy_id`, if the user has one.
    pub legacy_id: Option<String>,
    /// `UserCreateDate`, Unix milliseconds.
    pub created_ms: i64,
    /// `UserStatus` (`CONFIRMED`, `RESET_REQUIRED`, …).
    pub status: String,
}

impl PoolEntry {
    /// From a user's attribute list (ListUsers' `Attributes`, AdminGetUser's `UserAttributes`).
    pub fn from_attributes<'a>(
        username: &str,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
        created_ms: i64,
        status: &str,
    ) -> PoolEntry {
        let mut e = PoolEntry {
            username: username.to_string(),
            created_ms,
            status: status.to_string(),
            ..PoolEntry::default()
        };
        for (name, value) in attributes {
            match name {
                "sub" => e.sub = value.to_string(),
                "email" => e.email = Some(value.to_string()),
                "phone_number" => e.phone_number = Some(value.to_string()),
                LEGACY_ID_ATTRIBUTE => e.legacy_id = Some(value.to_string()),
                _ => {}
            }
        }
        e
    }
}

/// Where a tracked user comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The run put the user in the pool (imported, created, updated, skipped, or unknown).
    Run,
    /// The user was left to the migration trigger: in the pool once they sign in.
    Trigger,
}

/// A user the views expect in the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// 1-based record index in the input (of the run, or of the directory's build).
    pub record: u64,
    /// The username the run or the directory gave the user (the email address or phone number in
    /// pools whose usernames are those).
    pub username: String,
    /// The legacy id known before the pool is read: the directory's `custom:legacy_id`, else the
    /// one the run recorded in its state (schema V6_IDMAP).
    pub legacy_id: Option<String>,
    /// The route recorded for the user (`import:BCRYPT`, `admin-create`, `trigger`, …).
    pub route: String,
    pub origin: Origin,
}

/// Matches legacy users to pool users by the name Cognito gives them, which is how the trigger
/// names them (see [`crate::trigger`]): the legacy username, compared as the pool compares
/// usernames (case-folded unless the pool is case-sensitive) — the trigger answers the legacy
/// username as `userAttributes.username` when a user signs in with an alias, and Cognito keeps the
/// typed name otherwise. In pools whose usernames are email addresses or phone numbers Cognito
/// generates the username, so users are matched by the email address (lower case) or phone number
/// (E.164) that was their username.
#[derive(Clone, Debug)]
pub struct Matcher {
    sign_in: SignIn,
}

impl Matcher {
    pub fn new(sign_in: SignIn) -> Matcher {
        Matcher { sign_in }
    }

    pub fn sign_in(&self) -> &SignIn {
        &self.sign_in
    }

    /// The key a legacy user with this username is found under, if any.
    pub fn legacy_key(&self, username: &str) -> Option<String> {
        if self.sign_in.username_attributes {
            if username.contains('@') {
                Some(format!("e:{}", SignIn::email_key(username)))
            } else {
                SignIn::phone_key(username).map(|p| format!("p:{p}"))
            }
        } else if username.is_empty() {
            None
        } else {
            Some(format!("u:{}", self.sign_in.username_key(username)))
        }
    }

    /// The keys a pool user can be found under (at most two).
    pub fn pool_keys(&self, user: &PoolEntry) -> Vec<String> {
        let mut keys = Vec::with_capacity(2);
        if self.sign_in.username_attributes {
            if self.sign_in.email {
                if let Some(e) = user.email.as_deref().filter(|e| !e.is_empty()) {
                    keys.push(format!("e:{}", SignIn::email_key(e)));
                }
            }
            if self.sign_in.phone {
                if let Some(p) = user.phone_number.as_deref().and_then(SignIn::phone_key) {
                    keys.push(format!("p:{p}"));
                }
            }
        } else {
            keys.push(format!("u:{}", self.sign_in.username_key(&user.username)));
        }
        keys
    }
}

/// What the views keep of a matched pool user (not the whole [`PoolEntry`]: a million of them
/// are held at once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub username: String,
    pub sub: String,
    pub legacy_id: Option<String>,
    /// `UserCreateDate`, Unix milliseconds.
    pub created_ms: i64,
}

/// Tracked users and what the pool says about each: the one pass both views make.
///
/// Memory: the index holds a 64-bit hash of each tracked user's key, not the key (a hit is
/// confirmed by recomputing the tracked user's key, so a hash collision never matches the wrong
/// user; keys whose hash collides with another's go to a small exact map). About 250 bytes per
/// tracked user with its match.
#[derive(Debug)]
pub struct Matched {
    pub tracked: Vec<Tracked>,
    /// For each tracked user (same index), the pool user matched, if any.
    pub found: Vec<Option<Found>>,
    /// Pool users seen.
    pub pool_users_seen: u64,
    /// Tracked users that share a key with an earlier one (only the first is matched; Cognito
    /// cannot hold two users under one name).
    pub shadowed: u64,
    index: HashMap<u64, u32>,
    /// Keys whose hash is another key's.
    collided: HashMap<String, u32>,
}

#[cfg(not(test))]
fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// In unit tests, a hash that collides for every two keys of the same length, so that the tests
/// go through the collision path (the integration tests run the real one).
#[cfg(test)]
fn key_hash(key: &str) -> u64 {
    key.len() as u64
}

impl Matched {
    pub fn new(matcher: &Matcher, tracked: Vec<Tracked>) -> Matched {
        let mut index: HashMap<u64, u32> = HashMap::with_capacity(tracked.len());
        let mut collided: HashMap<String, u32> = HashMap::new();
        let mut shadowed = 0;
        for (i, t) in tracked.iter().enumerate() {
            let Some(k) = matcher.legacy_key(&t.username) else {
                continue;
            };
            match index.entry(key_hash(&k)) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i as u32);
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    let other = &tracked[*o.get() as usize].username;
                    if matcher.legacy_key(other).as_deref() == Some(k.as_str()) {
                        shadowed += 1;
                    } else if let std::collections::hash_map::Entry::Vacant(v) = collided.entry(k) {
                        v.insert(i as u32);
                    } else {
                        shadowed += 1;
                    }
                }
            }
        }
        Matched {
            found: vec![None; tracked.len()],
            tracked,
            pool_users_seen: 0,
            shadowed,
            index,
            collided,
        }
    }

    /// The tracked users' keys (for AdminGetUser lookups: the name to ask for).
    pub fn lookup_names(&self) -> impl Iterator<Item = &str> {
        self.tracked.iter().map(|t| t.username.as_str())
    }

    fn find(&self, matcher: &Matcher, key: &str) -> Option<usize> {
        if let Some(&i) = self.index.get(&key_hash(key)) {
            let i = i as usize;
            if matcher.legacy_key(&self.tracked[i].username).as_deref() == Some(key) {
                return Some(i);
            }
        }
        self.collided.get(key).map(|&i| i as usize)
    }

    /// Takes one pool user: records it for the tracked user it matches, if any.
    pub fn offer(&mut self, matcher: &Matcher, user: PoolEntry) {
        self.pool_users_seen += 1;
        for k in matcher.pool_keys(&user) {
            if let Some(i) = self.find(matcher, &k) {
                let slot = &mut self.found[i];
                if slot.is_none() {
                    *slot = Some(Found {
                        username: user.username,
                        sub: user.sub,
                        legacy_id: user.legacy_id,
                        created_ms: user.created_ms,
                    });
                }
                return;
            }
        }
    }
}

/// Outcomes of users the run put in the pool (or may have: `unknown` ones are looked up too).
pub const IN_POOL_OUTCOMES: [Outcome; 5] = [
    Outcome::Imported,
    Outcome::Created,
    Outcome::Updated,
    Outcome::Skipped,
    Outcome::Unknown,
];

/// The users of a run's state: those it put in the pool ([`Origin::Run`], with
/// [`IN_POOL_OUTCOMES`], and failed ones whose only failure was a follow-up) and, when `with_trigger`, those it left to the trigger
/// ([`Origin::Trigger`]), in record order.
pub fn tracked_from_state(
    cp: &Checkpoint,
    run: RunId,
    with_trigger: bool,
) -> Result<Vec<Tracked>, CheckpointError> {
    let mut out = Vec::new();
    let mut outcomes: Vec<(Outcome, Origin)> =
        IN_POOL_OUTCOMES.iter().map(|&o| (o, Origin::Run)).collect();
    if with_trigger {
        outcomes.push((Outcome::Trigger, Origin::Trigger));
    }
    // A user whose follow-ups failed (a link Cognito refused, a missing group) is in the pool all
    // the same: created or imported, with a `sub` the app needs.
    outcomes.push((Outcome::Failed, Origin::Run));
    for (outcome, origin) in outcomes {
        for u in cp.users_with_outcome(run, outcome) {
            let u = u?;
            if outcome == Outcome::Failed && u.reason.as_deref() != Some(FOLLOWUP_FAILED) {
                continue;
            }
            out.push(Tracked {
                record: u.record,
                username: u.username,
                legacy_id: None,
                route: u.route,
                origin,
            });
        }
    }
    out.sort_by_key(|t| t.record);
    fill_legacy_ids(cp, run, &mut out)?;
    Ok(out)
}

/// Fills the legacy ids the state recorded (schema V6_IDMAP) into `tracked` users that have none;
/// `tracked` is in record order (of the run's input).
pub fn fill_legacy_ids(
    cp: &Checkpoint,
    run: RunId,
    tracked: &mut [Tracked],
) -> Result<(), CheckpointError> {
    let mut i = 0;
    cp.for_each_legacy_id(run, |record, id| {
        while i < tracked.len() && tracked[i].record < record {
            i += 1;
        }
        while i < tracked.len() && tracked[i].record == record {
            tracked[i].legacy_id.get_or_insert_with(|| id.clone());
            i += 1;
        }
    })
}

/// The users of a directory file, left to the trigger ([`Origin::Trigger`]), except the records in
/// `exclude` (the users a run put in the pool itself, when the directory was built from the same
/// input as that run).
pub fn tracked_from_directory(
    dir: &DirectoryFile,
    exclude: Option<&RecordSet>,
) -> Result<Vec<Tracked>, DirectoryError> {
    Ok(dir
        .identities()?
        .into_iter()
        .filter(|d| !exclude.is_some_and(|x| x.contains(d.record)))
        .map(|d| Tracked {
            record: d.record,
            username: d.username,
            legacy_id: d.legacy_id,
            route: "trigger".into(),
            origin: Origin::Trigger,
        })
        .collect())
}

/// Why a view could not be made. Each cause is kept as the error's `source` (not flattened), so
/// that the CLI classifies it as it classifies that error elsewhere.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("cannot read the run's users")]
    State(#[from] CheckpointError),
    #[error("cannot read the directory's users")]
    Directory(#[from] DirectoryError),
    #[error("cannot read the pool's sign-in settings")]
    Pool(#[from] PoolError),
    #[error("cannot read the pool")]
    Read(#[from] ReadError),
}

/// How the pool names users: from the directory (which recorded it when it was built), else from
/// the pool itself (DescribeUserPool and GetCSVHeader).
pub async fn sign_in(
    clients: &crate::aws::Clients,
    pool_id: &str,
    directory: Option<&DirectoryFile>,
) -> Result<SignIn, ViewError> {
    Ok(match directory {
        Some(d) => d.meta().sign_in.clone(),
        None => SignIn::of_pool(&PoolSchema::fetch(&clients.cognito, pool_id).await?),
    })
}

/// The trigger's progress in one call (what `progress` prints and the HTML report renders): the
/// users left to the trigger ([`gather`]) matched against the pool, as of `now_ms`. Returns the
/// way the pool was read too.
pub async fn trigger_progress(
    clients: &crate::aws::Clients,
    pool_id: &str,
    state: Option<(&Checkpoint, RunId)>,
    directory: Option<&DirectoryFile>,
    lookup: Lookup,
    now_ms: i64,
) -> Result<(TriggerProgress, Strategy), ViewError> {
    let matcher = Matcher::new(sign_in(clients, pool_id, directory).await?);
    let tracked = gather(state, directory, false)?;
    let (matched, strategy) = match_pool(clients, pool_id, &matcher, tracked, lookup).await?;
    Ok((
        TriggerProgress::compute(
            pool_id,
            &matched,
            now_ms,
            // `built_at` is in whole seconds: a user created in that second counts as before.
            directory.map(|d| (d.meta().built_at as i64 + 1) * 1000),
        ),
        strategy,
    ))
}

/// The id map in one call (what `report --id-map` writes): the run's users and those left to the
/// trigger ([`gather`]) matched against the run's pool.
pub async fn id_map(
    clients: &crate::aws::Clients,
    cp: &Checkpoint,
    run: &crate::checkpoint::Run,
    directory: Option<&DirectoryFile>,
    lookup: Lookup,
) -> Result<(IdMap, Strategy), ViewError> {
    let pool_id = &run.spec.pool_id;
    let matcher = Matcher::new(sign_in(clients, pool_id, directory).await?);
    let tracked = gather(Some((cp, run.id)), directory, true)?;
    let (matched, strategy) = match_pool(clients, pool_id, &matcher, tracked, lookup).await?;
    Ok((IdMap::from_matched(&matched), strategy))
}

/// The users a view expects in the pool, from a run's state, a directory file, or both:
///
/// - the run's users in the pool ([`IN_POOL_OUTCOMES`]) when `include_run`;
/// - the users left to the trigger: the directory's users, except those the run put in the pool
///   itself (the directory must then be built from the run's input, as `directory build --state`
///   does); without a directory, the run's `trigger` users (their legacy id comes from the pool
///   once they arrive).
pub fn gather(
    state: Option<(&Checkpoint, RunId)>,
    directory: Option<&DirectoryFile>,
    include_run: bool,
) -> Result<Vec<Tracked>, ViewError> {
    let from_state = match state {
        Some((cp, run)) => tracked_from_state(cp, run, directory.is_none())?,
        None => Vec::new(),
    };
    let in_pool: RecordSet = from_state
        .iter()
        .filter(|t| t.origin == Origin::Run)
        .map(|t| t.record)
        .collect();
    let mut out: Vec<Tracked> = from_state
        .into_iter()
        .filter(|t| include_run || t.origin == Origin::Trigger)
        .collect();
    if let Some(dir) = directory {
        let exclude = state.is_some().then_some(&in_pool);
        let mut from_dir = tracked_from_directory(dir, exclude)?;
        if let Some((cp, run)) = state {
            // The directory's attributes hold custom:legacy_id only if the pool declares it; the
            // state recorded the id either way (same input, same records).
            fill_legacy_ids(cp, run, &mut from_dir)?;
        }
        out.extend(from_dir);
    }
    Ok(out)
}

/// How `read_pool` is chosen: by the counts ([`Strategy::choose`]) or as asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lookup {
    #[default]
    Auto,
    Forced(Strategy),
}

/// Matches `tracked` against the pool, read the cheaper way (or as `lookup` says). Returns the
/// matches and the way the pool was read.
pub async fn match_pool(
    clients: &crate::aws::Clients,
    pool_id: &str,
    matcher: &Matcher,
    tracked: Vec<Tracked>,
    lookup: Lookup,
) -> Result<(Matched, Strategy), ViewError> {
    let strategy = match lookup {
        Lookup::Forced(s) => s,
        Lookup::Auto => {
            let pool_users = read::estimated_users(&clients.cognito, pool_id).await?;
            Strategy::choose(tracked.len() as u64, pool_users)
        }
    };
    let mut matched = Matched::new(matcher, tracked);
    read_pool(clients, pool_id, matcher, &mut matched, strategy).await?;
    Ok((matched, strategy))
}
