//! One pass from a legacy export to a directory file: read, map and validate exactly as `plan`
//! does, pick the users the trigger needs, parse their hashes, and stream them into a
//! [`DirectoryWriter`].
//!
//! Rejections (bad records, unreadable hashes, mapping errors) are counted and handed to a callback
//! with their position, field and reason — never a password or hash. Memory stays flat apart from
//! the mapping's duplicate check (about 16 bytes per unique key, see [`crate::mapping`]).

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

use super::{DirectoryError, DirectoryMeta, DirectoryWriter};
use crate::checkpoint::RecordSet;
use crate::mapping::{Mapper, Reason, Rejection};
use crate::password::{CostCap, HashContext, PasswordHash};
use crate::plan::route::{Route, Router};
use crate::plan::{count_rejection, source_rejection};
use crate::source::{RecordError, Source};

/// Which mapped users go into the directory.
pub enum Selection {
    /// Every user the mapping accepts.
    All,
    /// Users the router would not import with their hash (`Route::Import(Some(_))` is left out):
    /// the trigger is the only way they keep their password.
    NotImportedWithHash(Router),
    /// Users not in this set of record indexes — the records a run's checkpoint says were imported
    /// with their hash.
    NotInSet(RecordSet),
}

impl std::fmt::Debug for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::All => f.write_str("All"),
            Selection::NotImportedWithHash(r) => {
                write!(f, "NotImportedWithHash({})", r.mode().as_str())
            }
            Selection::NotInSet(s) => write!(f, "NotInSet({} records)", s.len()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the input broke off, so the rest of it was not read")]
    Source(#[source] RecordError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("cannot record a rejected record")]
    Rejects(#[source] io::Error),
}

/// What a build did, for people (table) and scripts (JSON).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BuildSummary {
    pub records: u64,
    /// Users written to the directory.
    pub written: u64,
    pub rejected: u64,
    /// Rejections per reason code.
    pub rejections: BTreeMap<String, u64>,
    /// Users left out because their hash is (or was) imported with them.
    pub left_out_imported: u64,
    pub with_password: u64,
    pub without_password: u64,
    /// Disabled users (written, so the trigger can refuse them knowingly).
    pub disabled: u64,
    /// Written users per hash scheme.
    pub schemes: BTreeMap<String, u64>,
    /// Users whose hash exceeds the trigger's cost cap: the trigger will refuse their password
    /// (they can still reset it), with the reason and a count.
    pub over_cost_cap: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
    pub path: PathBuf,
    pub bytes: u64,
    pub meta: Option<DirectoryMeta>,
}

/// Reads `source` to the end and writes the selected users to `writer`, which is finished (moved
/// into place) on success. `cap` is the trigger's cost cap, to count the hashes it will refuse.
pub fn build(
    source: &mut dyn Source,
    mapper: &mut Mapper,
    ctx: &HashContext,
    selection: &Selection,
    cap: &CostCap,
    mut writer: DirectoryWriter,
    rejected: &mut dyn FnMut(&Rejection) -> io::Result<()>,
) -> Result<BuildSummary, BuildError> {
    let mut summary = BuildSummary::default();
    let mut reject = |r: Rejection, summary: &mut BuildSummary| -> Result<(), BuildError> {
        count_rejection(&mut summary.rejected, &mut summary.rejections, &r);
        rejected(&r).map_err(BuildError::Rejects)
    };
    while let Some(item) = source.next_record() {
        summary.warnings.extend(source.take_warnings());
        summary.records += 1;
        if summary.records % 250_000 == 0 {
            tracing::info!(
                records = summary.records,
                written = writer.count(),
                "building the directory"
            );
        }
        let legacy = match item {
            Ok(u) => u,
            Err(e) if e.fatal => return Err(BuildError::Source(e)),
            Err(e) => {
                reject(source_rejection(&e), &mut summary)?;
                continue;
            }
        };
        let user = match mapper.map(legacy) {
            Ok(u) => u,
            Err(r) => {
                reject(r, &mut summary)?;
                continue;
            }
        };
        let user = match selection {
            Selection::All => user,
            Selection::NotImportedWithHash(router) => match router.route(user) {
                Ok(routed) if matches!(routed.route, Route::Import(Some(_))) => {
                    summary.left_out_imported += 1;
                    continue;
                }
                Ok(routed) => routed.user,
                Err(r) => {
                    reject(r, &mut summary)?;
                    continue;
                }
            },
            Selection::NotInSet(imported) => {
                if imported.contains(user.position.record) {
                    summary.left_out_imported += 1;
                    continue;
                }
                user
            }
        };
        let hash = match &user.password {
            None => None,
            Some(raw) => match PasswordHash::from_raw(raw, ctx) {
                Ok(h) => Some(h),
                Err(e) => {
                    reject(
                        Rejection::new(
                            user.position,
                            "password",
                            Reason::InvalidPasswordHash,
                            format!("the password hash cannot be read: {e}"),
                        ),
                        &mut summary,
                    )?;
                    continue;
                }
            },
        };
        match &hash {
            Some(h) => {
                summary.with_password += 1;
                *summary.schemes.entry(h.scheme().to_string()).or_default() += 1;
                if let Some(why) = h.exceeds(cap) {
                    *summary.over_cost_cap.entry(why).or_default() += 1;
                }
            }
            None => summary.without_password += 1,
        }
        if !user.enabled {
            summary.disabled += 1;
        }
        writer.add(&user, hash.as_ref())?;
        summary.written += 1;
    }
    summary.warnings.extend(source.take_warnings());
    let path = writer.path().to_path_buf();
    let meta = writer.finish()?;
    summary.bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    summary.path = path;
    summary.meta = Some(meta);
    Ok(summary)
}

impl BuildSummary {
    /// The summary as a table for people.
    pub fn write_table(&self, out: &mut dyn io::Write) -> io::Result<()> {
        writeln!(out, "records read         {:>10}", self.records)?;
        writeln!(out, "written              {:>10}", self.written)?;
        writeln!(out, "  with a password    {:>10}", self.with_password)?;
        writeln!(
            out,
            "  without a password {:>10}  (forgot-password migration only)",
            self.without_password
        )?;
        writeln!(
            out,
            "  disabled           {:>10}  (the trigger refuses them)",
            self.disabled
        )?;
        if self.left_out_imported > 0 {
            writeln!(
                out,
                "left out             {:>10}  (imported with their password hash)",
                self.left_out_imported
            )?;
        }
        writeln!(out, "rejected             {:>10}", self.rejected)?;
        for (reason, n) in &self.rejections {
            writeln!(out, "  {reason:<26}{n:>8}")?;
        }
        if !self.schemes.is_empty() {
            writeln!(out, "password hashes")?;
            for (scheme, n) in &self.schemes {
                writeln!(out, "  {scheme:<26}{n:>8}")?;
            }
        }
        for (why, n) in &self.over_cost_cap {
            writeln!(
                out,
                "  over the trigger's cost cap ({n}): {why} — these users must reset their password"
            )?;
        }
        if let Some(meta) = &self.meta {
            writeln!(
                out,
                "wrote {} ({} users, {} bytes, {})",
                self.path.display(),
                meta.user_count,
                self.bytes,
                meta.checksum
            )?;
        }
        Ok(())
    }
}
