//! Change detection: one pass over the source against the state's fingerprints, producing the
//! change set (creates, per-user ops, removals) without touching the pool.
//!
//! Memory and time are bounded for a million users: the state's keys are loaded as a map from a
//! 64-bit key digest to the user's 64-bit fingerprint (~30 bytes a user); a source record whose
//! fingerprint equals the stored one costs no query and keeps nothing. Only a changed or new user
//! is looked up (one primary-key read) and kept, with just the values of the attributes that
//! change. Users the source no longer has are found by streaming the keys once more.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

use crate::checkpoint::{Checkpoint, NewSyncOp, RecordSet, SyncCounts, SyncKeyRow};
use crate::mapping::{MappedUser, Mapper, Prepared, Rejection};
use crate::migrate::CancelToken;
use crate::plan::route::{Route, Router};
use crate::plan::source_rejection;
use crate::source::Source;

use super::key::{diff, fingerprint_of, key_hash, MatchKey, Target};
use super::{OnMissing, SyncError};

/// The keys are digests already: no second hash.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A known key's fingerprint with its lowest bit replaced by "seen in the source" (16 bytes a
/// key in the map instead of 24; a fingerprint of 63 bits is plenty to detect change).
#[derive(Clone, Copy)]
struct Slot(u64);

impl Slot {
    fn new(fp: i64, seen: bool) -> Slot {
        Slot((fp as u64 & !1) | u64::from(seen))
    }
    fn seen(self) -> bool {
        self.0 & 1 == 1
    }
    fn same(self, fp: i64) -> bool {
        self.0 & !1 == fp as u64 & !1
    }
}

/// The state's keys, as compared in memory.
pub(super) struct Known {
    map: HashMap<u64, Slot, BuildHasherDefault<PassThrough>>,
    /// Keys in the pool and not removed: what the brake's percentage is of.
    pub active: u64,
}

impl Known {
    pub fn load(cp: &Checkpoint) -> Result<Known, SyncError> {
        let mut map: HashMap<u64, Slot, BuildHasherDefault<PassThrough>> =
            HashMap::with_capacity_and_hasher(cp.sync_key_count()? as usize, Default::default());
        let mut active = 0;
        cp.sync_each_key(|key, fp, missing, in_pool| {
            map.insert(key_hash(key), Slot::new(fp, false));
            if in_pool && !missing {
                active += 1;
            }
        })?;
        Ok(Known { map, active })
    }
}

/// One user in `--plan --json`: what would be done, with attribute names only.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PlannedUser {
    pub username: String,
    /// `create`, `update` (attributes, enabled flag or groups), `disable`, `delete`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted_attributes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups_added: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups_removed: Vec<String>,
    /// A removal held back by the brake or an incomplete source.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub staged: bool,
}

/// The change set of one sync.
#[derive(Default)]
pub(super) struct ChangeSet {
    pub records: u64,
    pub rejected: u64,
    pub unchanged: u64,
    pub ops: Vec<NewSyncOp>,
    /// Key rows written without a call (users left to the trigger whose data changed).
    pub quiet: Vec<SyncKeyRow>,
    /// The records to create (`migrate::run`'s `only`).
    pub creates: RecordSet,
    pub planned: Vec<PlannedUser>,
    pub groups: BTreeSet<String>,
    pub warnings: Vec<String>,
    /// Removals found (before the brake).
    pub removals: u64,
    /// The ops found, by kind (`updated`: users with attribute changes); what `--plan` reports.
    pub tally: SyncCounts,
    /// All ops found (also those already written to the state).
    pub op_count: u64,
}

pub(super) struct Detect<'a> {
    pub cp: &'a Checkpoint,
    pub key: &'a MatchKey,
    pub known: Known,
    pub set: ChangeSet,
    /// The sync the ops belong to.
    pub sync_id: i64,
    /// `--plan`: only counts and the planned users are kept (and removals, for the brake).
    pub plan: bool,
}

/// Ops kept in memory before they are written to the state during the pass.
const OPS_BATCH: usize = 5000;

/// How many rejections are quoted one by one in warnings.
const QUOTED: u64 = 20;

impl Detect<'_> {
    /// Reads the whole source: map, route, compare. A source that breaks off is an error
    /// (nothing is recorded, nothing written).
    pub fn read(
        &mut self,
        source: &mut dyn Source,
        mapper: &mut Mapper,
        router: &Router,
        cancel: &CancelToken,
    ) -> Result<(), SyncError> {
        // Mapped one ahead, as `plan::execute` does: record N is prepared before record N-1 is
        // admitted, so that the duplicate check's memory is loaded by then.
        let mut pending: Option<Prepared> = None;
        loop {
            if self.set.records.is_multiple_of(1024) && cancel.is_cancelled() {
                // Nothing is recorded or written yet.
                return Err(SyncError::Interrupted);
            }
            let item = source.next_record();
            self.set.warnings.extend(source.take_warnings());
            let next = match item {
                None => None,
                Some(Ok(user)) => Some(Ok(mapper.prepare(user))),
                Some(Err(e)) => Some(Err(e)),
            };
            if let Some(p) = pending.take() {
                match mapper.admit(p).and_then(|m| router.route(m)) {
                    Err(r) => self.reject(&r),
                    Ok(r) => self.user(r.user, r.route)?,
                }
            }
            match next {
                None => break,
                Some(Err(e)) if e.fatal => return Err(SyncError::SourceBroke(e)),
                Some(Err(e)) => {
                    self.set.records += 1;
                    self.reject(&source_rejection(&e));
                }
                Some(Ok(Err(r))) => {
                    self.set.records += 1;
                    self.reject(&r);
                }
                Some(Ok(Ok(p))) => {
                    self.set.records += 1;
                    pending = Some(p);
                }
            }
        }
        self.set.warnings.extend(source.take_warnings());
        Ok(())
    }

    /// Takes one op: counted; kept for the brake (removals), dropped (`--plan`), or batched
    /// into the state (a sync's ops need not fit in memory).
    fn push(&mut self, op: NewSyncOp) -> Result<(), SyncError> {
        self.set.op_count += 1;
        let t = &mut self.set.tally;
        match op.kind {
            "create" => t.created += 1,
            "disable" => t.disabled += 1,
            "enable" => t.enabled += 1,
            "delete" => t.deleted += 1,
            "group_add" => t.group_adds += 1,
            "group_remove" => t.group_removes += 1,
            _ => {}
        }
        if self.plan && !op.removal {
            return Ok(());
        }
        // Removals come last (after the pass) and stay in memory for the brake; a batch before
        // them holds none.
        let removal = op.removal;
        self.set.ops.push(op);
        if !self.plan && !removal && self.set.ops.len() >= OPS_BATCH {
            self.cp.sync_add_ops(self.sync_id, &self.set.ops)?;
            self.set.ops.clear();
        }
        Ok(())
    }

    fn plan_user(&mut self, p: PlannedUser) {
        if self.plan {
            self.set.planned.push(p);
        }
    }

    fn reject(&mut self, r: &Rejection) {
        self.set.rejected += 1;
        if self.set.rejected <= QUOTED {
            self.set.warnings.push(format!(
                "record {} (line {}): {}: {} ({})",
                r.position.record,
                r.position.line,
                r.field,
                r.message,
                r.reason.as_str()
            ));
        }
    }

    fn reject_key(&mut self, u: &MappedUser, why: &str) {
        self.set.rejected += 1;
        if self.set.rejected <= QUOTED {
            self.set.warnings.push(format!(
                "record {} (line {}): {}: {why}",
                u.position.record,
                u.position.line,
                self.key.field()
            ));
        }
    }

    fn user(&mut self, u: MappedUser, route: Route) -> Result<(), SyncError> {
        let Some(key) = self.key.of(&u) else {
            self.reject_key(&u, "no value for the matching key (--match)");
            return Ok(());
        };
        let fp = fingerprint_of(&u);
        for g in &u.groups {
            if !self.set.groups.contains(g) {
                self.set.groups.insert(g.clone());
            }
        }
        let h = key_hash(&key);
        match self.known.map.get_mut(&h) {
            Some(slot) if slot.seen() => {
                self.reject_key(&u, "another record has the same matching key");
            }
            Some(slot) => {
                let same = slot.same(fp);
                slot.0 |= 1;
                if same {
                    self.set.unchanged += 1;
                } else {
                    self.changed(key, &u, Target::of(&u))?;
                }
            }
            None => {
                self.known.map.insert(h, Slot::new(fp, true));
                let target = Target::of(&u);
                let arg = serde_json::json!({
                    "attrs": target.attrs_text(),
                    "enabled": target.enabled,
                    "groups": target.groups,
                    "trigger": route == Route::Trigger,
                });
                self.set.creates.insert(u.position.record);
                self.plan_user(PlannedUser {
                    username: u.username.clone(),
                    action: "create",
                    attributes: target.attrs.iter().map(|(n, _)| n.clone()).collect(),
                    deleted_attributes: vec![],
                    enabled: (!u.enabled).then_some(false),
                    groups_added: target.groups.iter().cloned().collect(),
                    groups_removed: vec![],
                    staged: false,
                });
                self.push(NewSyncOp {
                    key,
                    username: u.username,
                    kind: "create",
                    arg: Some(arg.to_string()),
                    record: Some(u.position.record),
                    removal: false,
                    status: "pending",
                })?;
            }
        }
        Ok(())
    }

    fn changed(&mut self, key: String, u: &MappedUser, want: Target) -> Result<(), SyncError> {
        let Some(row) = self.cp.sync_key(&key)? else {
            // The map came from the same table a moment ago: only a digest collision gets here.
            return Err(SyncError::Internal(format!(
                "record {}: its key's fingerprint is known but its row is not",
                u.position.record
            )));
        };
        if !row.in_pool {
            // Left to the migration trigger, not created yet: nothing to write, the state
            // follows the source.
            self.set.unchanged += 1;
            self.set.quiet.push(SyncKeyRow {
                attrs: want.attrs_text(),
                enabled: want.enabled,
                groups: want.groups_text(),
                fp: want.fingerprint(),
                missing: false,
                ..row
            });
            return Ok(());
        }
        let stored = Target::parse(&row.attrs, row.enabled, &row.groups);
        let d = diff(&stored, &want);
        if d.is_empty() {
            // Only the digest differs (e.g. an older encoding): record the source's, no call.
            self.set.unchanged += 1;
            self.set.quiet.push(SyncKeyRow {
                fp: want.fingerprint(),
                missing: false,
                ..row
            });
            return Ok(());
        }
        let op = |kind: &'static str, arg: Option<String>| NewSyncOp {
            key: key.clone(),
            username: row.username.clone(),
            kind,
            arg,
            record: None,
            removal: false,
            status: "pending",
        };
        if !d.set.is_empty() || !d.delete.is_empty() {
            self.set.tally.updated += 1;
        }
        if !d.set.is_empty() {
            let values: Vec<(&str, &str)> = d
                .set
                .iter()
                .filter_map(|n| u.attribute(n).map(|v| (n.as_str(), v)))
                .collect();
            self.push(op("update", Some(serde_json::to_string(&values)?)))?;
        }
        if !d.delete.is_empty() {
            self.push(op(
                "delete_attributes",
                Some(serde_json::to_string(&d.delete)?),
            ))?;
        }
        match d.enabled {
            Some(true) => self.push(op("enable", None))?,
            Some(false) => self.push(op("disable", None))?,
            None => {}
        }
        for g in &d.add_groups {
            self.push(op("group_add", Some(g.clone())))?;
        }
        for g in &d.remove_groups {
            self.push(op("group_remove", Some(g.clone())))?;
        }
        self.plan_user(PlannedUser {
            username: row.username.clone(),
            action: "update",
            attributes: d.set,
            deleted_attributes: d.delete,
            enabled: d.enabled,
            groups_added: d.add_groups,
            groups_removed: d.remove_groups,
            staged: false,
        });
        Ok(())
    }

    /// The users the state knows that the source did not name: their removal ops per
    /// `on_missing` (users left to the trigger are only forgotten by a later full reconcile).
    pub fn removals(&mut self, on_missing: OnMissing) -> Result<(), SyncError> {
        if on_missing == OnMissing::Ignore {
            return Ok(());
        }
        let mut gone = Vec::new();
        let map = &self.known.map;
        self.cp.sync_each_key(|key, _, missing, in_pool| {
            let seen = map.get(&key_hash(key)).is_some_and(|s| s.seen());
            if !seen && in_pool && (!missing || on_missing == OnMissing::Delete) {
                gone.push(key.to_string());
            }
        })?;
        for key in gone {
            let Some(row) = self.cp.sync_key(&key)? else {
                continue;
            };
            let kind = match on_missing {
                OnMissing::Delete => "delete",
                _ => "disable",
            };
            self.set.removals += 1;
            self.plan_user(PlannedUser {
                username: row.username.clone(),
                action: kind,
                attributes: vec![],
                deleted_attributes: vec![],
                enabled: None,
                groups_added: vec![],
                groups_removed: vec![],
                staged: false,
            });
            self.push(NewSyncOp {
                key,
                username: row.username,
                kind,
                arg: None,
                record: None,
                removal: true,
                status: "pending",
            })?;
        }
        Ok(())
    }

    /// Holds every removal back (listed as `staged`).
    pub fn stage_removals(&mut self) {
        for op in self.set.ops.iter_mut().filter(|o| o.removal) {
            op.status = "staged";
            let t = &mut self.set.tally;
            match op.kind {
                "delete" => t.deleted -= 1,
                _ => t.disabled -= 1,
            }
            t.staged_removals += 1;
        }
        for p in self
            .set
            .planned
            .iter_mut()
            .filter(|p| matches!(p.action, "disable" | "delete"))
        {
            p.staged = true;
        }
    }
}
