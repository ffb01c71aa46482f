//! The id map (`report --id-map`): for every user the run put in the pool and every user left to
//! the trigger, the legacy id, the Cognito username and the `sub` the pool gave them, so that an
//! app can rewrite the references its database holds to users.
//!
//! Cognito chooses every user's `sub`; it cannot be set, so the map is the next best thing. It is
//! read from the pool (not from the state, which never sees a `sub`), and it can be made again at
//! any time: trigger users get their `sub` when they sign in for the first time.
//!
//! The legacy id is the directory's `custom:legacy_id` (trigger users listed from a directory),
//! else the one the run recorded in its state (schema V6_IDMAP: the mapped `custom:legacy_id`,
//! else the vendor's id field such as Auth0's `user_id`, whether or not the pool declares the
//! attribute), else the pool's `custom:legacy_id` (states of earlier versions). Inputs
//! without one (generic formats whose mapping has no `custom:legacy_id`) leave the column empty,
//! and `legacy_username` (the name the run gave the user) is the key.

use std::io::{self, Write};

use serde::Serialize;

use super::date::iso;
use super::{Matched, Origin};
use crate::report::ReportCsv;

/// The id map's columns, in order.
pub const ID_MAP_COLUMNS: [&str; 9] = [
    "legacy_id",
    "legacy_username",
    "username",
    "sub",
    "status",
    "origin",
    "route",
    "record",
    "created",
];

/// Where a user stands in the id map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdStatus {
    /// Put in the pool by the run, and there.
    InPool,
    /// Put in the pool by the run (or its result unknown), but not there now (deleted since, or
    /// never created).
    Missing,
    /// Left to the trigger, and arrived (signed in).
    Arrived,
    /// Left to the trigger, not arrived yet: no `sub` yet.
    NotArrived,
}

impl IdStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IdStatus::InPool => "in_pool",
            IdStatus::Missing => "missing",
            IdStatus::Arrived => "arrived",
            IdStatus::NotArrived => "not_arrived",
        }
    }
}

/// One line of the id map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdMapRow {
    /// `custom:legacy_id` (empty when neither the directory nor the pool has one).
    pub legacy_id: String,
    /// The username the run or the directory gave the user (the mapped username: by default the
    /// vendor's user id, or the email address in email-as-username pools): the legacy key when
    /// there is no `custom:legacy_id`.
    pub legacy_username: String,
    /// The Cognito username when the user is in the pool (a UUID in pools whose usernames are
    /// email addresses or phone numbers), else the name the user will get.
    pub username: String,
    /// The user's `sub` (empty until the user is in the pool).
    pub sub: String,
    pub status: IdStatus,
    pub origin: Origin,
    pub route: String,
    /// 1-based record index in the input.
    pub record: u64,
    /// `UserCreateDate` (UTC, `YYYY-MM-DDTHH:MM:SSZ`), empty until the user is in the pool.
    pub created: String,
}

/// The id map: rows in record order, run users first, then trigger users (directory records).
#[derive(Clone, Debug, Default, Serialize)]
pub struct IdMap {
    pub rows: Vec<IdMapRow>,
}

/// Counts by status, for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IdMapCounts {
    pub in_pool: u64,
    pub missing: u64,
    pub arrived: u64,
    pub not_arrived: u64,
}

impl IdMap {
    pub fn from_matched(matched: &Matched) -> IdMap {
        let mut rows: Vec<IdMapRow> = matched
            .tracked
            .iter()
            .zip(&matched.found)
            .map(|(t, found)| {
                let status = match (t.origin, found.is_some()) {
                    (Origin::Run, true) => IdStatus::InPool,
                    (Origin::Run, false) => IdStatus::Missing,
                    (Origin::Trigger, true) => IdStatus::Arrived,
                    (Origin::Trigger, false) => IdStatus::NotArrived,
                };
                let legacy_id = t
                    .legacy_id
                    .clone()
                    .or_else(|| found.as_ref().and_then(|f| f.legacy_id.clone()))
                    .unwrap_or_default();
                IdMapRow {
                    legacy_id,
                    legacy_username: t.username.clone(),
                    username: found
                        .as_ref()
                        .map_or_else(|| t.username.clone(), |f| f.username.clone()),
                    sub: found.as_ref().map(|f| f.sub.clone()).unwrap_or_default(),
                    status,
                    origin: t.origin,
                    route: t.route.clone(),
                    record: t.record,
                    created: found
                        .as_ref()
                        .map(|f| iso(f.created_ms))
                        .unwrap_or_default(),
                }
            })
            .collect();
        rows.sort_by_key(|r| (r.origin == Origin::Trigger, r.record));
        IdMap { rows }
    }

    pub fn counts(&self) -> IdMapCounts {
        let mut c = IdMapCounts::default();
        for r in &self.rows {
            *match r.status {
                IdStatus::InPool => &mut c.in_pool,
                IdStatus::Missing => &mut c.missing,
                IdStatus::Arrived => &mut c.arrived,
                IdStatus::NotArrived => &mut c.not_arrived,
            } += 1;
        }
        c
    }

    /// Writes the map as CSV ([`ID_MAP_COLUMNS`]) through [`ReportCsv`]: a cell starting with `=`,
    /// `+`, `-`, `@`, TAB or CR gets a leading `'` (a phone number as username, say).
    pub fn write_csv<W: Write>(&self, out: W) -> io::Result<W> {
        let mut w = ReportCsv::new(out, &ID_MAP_COLUMNS)?;
        for r in &self.rows {
            w.row(&[
                r.legacy_id.as_str(),
                &r.legacy_username,
                &r.username,
                &r.sub,
                r.status.as_str(),
                match r.origin {
                    Origin::Run => "run",
                    Origin::Trigger => "trigger",
                },
                &r.route,
                &r.record.to_string(),
                &r.created,
            ])?;
        }
        w.flush()?;
        w.into_inner()
    }
}
