//! The full reconcile: the state's idea of the pool is replaced by what the pool really holds, so
//! that the ordinary comparison with the source then corrects every drift.
//!
//! Why: the state records what the tool wrote, but the pool changes behind its back (a console
//! edit, a user deleted by hand, users the migration trigger created at their first sign-in).
//! ListUsers has no "modified since" filter, so drift is found only by listing the whole pool
//! ([`crate::listing`], under the UserList quota) and the members of every managed group
//! (ListUsersInGroup). Each listed user is matched by its key ([`MatchKey::of_pool`]) and its
//! state row rewritten from the pool: the digests of the attributes the mapping manages, the
//! enabled flag, the managed groups it is in, its username and `sub`. A user the state did not
//! know is adopted (the trigger's users); a key whose user is no longer in the pool is forgotten,
//! so the source's record creates it again. Nothing is written to the pool here.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::checkpoint::{Checkpoint, SyncKeyRow};
use crate::listing::{ListOptions, Lister, PoolUser};
use crate::migrate::CancelToken;

use super::key::{attr_digest, is_managed_attribute, key_hash, MatchKey, Target};
use super::SyncError;

/// What a reconcile found.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReconcileStats {
    pub pool_users: u64,
    /// Pool users the state did not know (matched by key and adopted).
    pub adopted: u64,
    /// Known users whose pool data differed from the state's.
    pub drifted: u64,
    /// Known users no longer in the pool.
    pub gone: u64,
    /// Pool users without a value for the matching key (not managed).
    pub unkeyed: u64,
    pub calls: u64,
    pub throttled: u64,
    pub elapsed: Duration,
}

const BATCH: usize = 1000;

impl MatchKey {
    /// The key of a user as the pool lists it (the same normalisation as [`MatchKey::of`]).
    pub fn of_pool(&self, u: &PoolUser) -> Option<String> {
        self.key_of_parts(&u.username, |name| u.attribute(name))
    }
}

/// Lists the pool and rewrites the state from it. `managed` are the attribute names the mapping
/// writes.
pub async fn reconcile(
    cp: &Arc<Checkpoint>,
    client: aws_sdk_cognitoidentityprovider::Client,
    pool_id: &str,
    key: &MatchKey,
    managed: &HashSet<String>,
    options: ListOptions,
    cancel: &CancelToken,
) -> Result<ReconcileStats, SyncError> {
    let start = std::time::Instant::now();
    let lister = Lister::new(client, pool_id, options);
    let list_err = |e: crate::listing::ListError| SyncError::Reconcile(Box::new(e));
    // Managed group → its members, turned around: username → groups.
    let mut member_of: HashMap<String, BTreeSet<String>> = HashMap::new();
    for g in cp.sync_groups()? {
        match lister.group_members(&g).await {
            Ok(members) => {
                for m in members {
                    member_of.entry(m).or_default().insert(g.clone());
                }
            }
            // A managed group deleted in the pool has no members; adding to it fails later.
            Err(e) if e.code() == Some("ResourceNotFoundException") => {}
            Err(e) => return Err(list_err(e)),
        }
        if cancel.is_cancelled() {
            return Err(SyncError::Interrupted);
        }
    }
    let (tx, mut rx) = mpsc::channel::<PoolUser>(1024);
    let listing = lister.users(tx);
    let mut stats = ReconcileStats::default();
    let mut seen: HashSet<u64> = HashSet::new();
    let consume = async {
        let mut batch: Vec<SyncKeyRow> = Vec::with_capacity(BATCH);
        while let Some(u) = rx.recv().await {
            if cancel.is_cancelled() {
                return Err(SyncError::Interrupted);
            }
            stats.pool_users += 1;
            let Some(k) = key.of_pool(&u) else {
                stats.unkeyed += 1;
                continue;
            };
            let mut attrs: Vec<(String, u64)> = u
                .attributes
                .iter()
                .filter(|(n, _)| is_managed_attribute(n) && managed.contains(n))
                .map(|(n, v)| (n.clone(), attr_digest(n, v)))
                .collect();
            attrs.sort();
            let target = Target {
                attrs,
                enabled: u.enabled,
                groups: member_of.remove(&u.username).unwrap_or_default(),
            };
            let existing = cp.sync_key(&k)?;
            let fp = target.fingerprint();
            match &existing {
                None => stats.adopted += 1,
                Some(e) if e.fp != fp || !e.in_pool => stats.drifted += 1,
                Some(_) => {}
            }
            seen.insert(key_hash(&k));
            batch.push(SyncKeyRow {
                key: k,
                username: u.username,
                sub: u.sub,
                attrs: target.attrs_text(),
                enabled: target.enabled,
                groups: target.groups_text(),
                // Still removed if it is still disabled; re-enabled in the pool, it is not.
                missing: existing.is_some_and(|e| e.missing) && !target.enabled,
                in_pool: true,
                fp,
            });
            if batch.len() >= BATCH {
                cp.sync_put_keys(&batch)?;
                batch.clear();
            }
        }
        cp.sync_put_keys(&batch)?;
        Ok::<(), SyncError>(())
    };
    let (listed, consumed) = tokio::join!(listing, consume);
    consumed?;
    let listed = listed.map_err(list_err)?;
    // Known users the pool no longer has: forgotten, so that the source creates them again.
    let mut gone = Vec::new();
    cp.sync_each_key(|k, _, _, in_pool| {
        if in_pool && !seen.contains(&key_hash(k)) {
            gone.push(k.to_string());
        }
    })?;
    stats.gone = gone.len() as u64;
    cp.sync_forget_keys(&gone)?;
    stats.calls = listed.calls;
    stats.throttled = listed.throttled;
    stats.elapsed = start.elapsed();
    Ok(stats)
}
