//! `retry`'s part of the library: a run read back from its state (how its input was read and
//! routed), and its failed users split into those to write again and those that only need their
//! follow-ups.

use std::path::PathBuf;

use crate::checkpoint::{Checkpoint, RecordSet, Run};
use crate::plan::route::{Mode, UnimportablePolicy, UnknownHashPolicy, UnknownProviderPolicy};
use crate::sink::admin_create::FOLLOWUP_FAILED;
use crate::source::Format;

use super::MigrateError;

/// The settings a run recorded in its state file, for a `retry` to read its input the same way.
#[derive(Clone, Debug)]
pub struct RecordedRun {
    pub format: Format,
    pub mode: Mode,
    pub unimportable: UnimportablePolicy,
    pub unknown_hash: UnknownHashPolicy,
    pub unknown_provider: UnknownProviderPolicy,
    pub mapping: Option<PathBuf>,
    /// The run was given Firebase hash parameters (they are not recorded: pass them again).
    pub hash_config: bool,
    /// The reader options ([`super::InputSpec::reader`]).
    pub reader: serde_json::Value,
}

fn policy(s: &str) -> Option<UnimportablePolicy> {
    match s {
        "Trigger" => Some(UnimportablePolicy::Trigger),
        "Reset" => Some(UnimportablePolicy::Reset),
        "Reject" => Some(UnimportablePolicy::Reject),
        _ => None,
    }
}

impl RecordedRun {
    pub fn read(run: &Run) -> Result<RecordedRun, MigrateError> {
        use clap::ValueEnum;
        let spec = &run.spec;
        let options: serde_json::Value = serde_json::from_str(&spec.options).unwrap_or_default();
        let unrecorded =
            |what: &str| MigrateError::Config(format!("the state file records an unknown {what}"));
        let format: Format = spec
            .input_format
            .parse()
            .map_err(|_| unrecorded("format"))?;
        let mode =
            <Mode as ValueEnum>::from_str(&spec.mode, true).map_err(|_| unrecorded("mode"))?;
        let unimportable = options["unimportable"]
            .as_str()
            .and_then(policy)
            .ok_or_else(|| unrecorded("--unimportable"))?;
        // Runs recorded before --unknown-hash existed rejected such users: keep that.
        let unknown_hash = match options["unknown_hash"].as_str() {
            None | Some("Reject") => UnknownHashPolicy::Reject,
            Some("Reset") => UnknownHashPolicy::Reset,
            Some(_) => return Err(unrecorded("--unknown-hash")),
        };
        // Runs recorded before --unknown-provider existed linked nothing: the default.
        let unknown_provider = match options["unknown_provider"].as_str() {
            None | Some("LinkKnown") => UnknownProviderPolicy::LinkKnown,
            Some("Reject") => UnknownProviderPolicy::Reject,
            Some(_) => return Err(unrecorded("--unknown-provider")),
        };
        Ok(RecordedRun {
            format,
            mode,
            unimportable,
            unknown_hash,
            unknown_provider,
            mapping: options["mapping"].as_str().map(PathBuf::from),
            hash_config: options["hash_config"].as_bool() == Some(true),
            reader: options["reader"].clone(),
        })
    }
}

/// A run's failed users, as `retry` treats them.
#[derive(Debug, Default)]
pub struct RetrySplit {
    /// Records to read again and write again.
    pub only: RecordSet,
    /// Users in the pool whose follow-ups (disable, groups) failed: only those again.
    pub followup_failed: u64,
}

/// Splits the run's retryable failures ([`Checkpoint::retryable_failures`]).
pub fn retry_split(cp: &Checkpoint, run: &Run) -> Result<RetrySplit, MigrateError> {
    let mut split = RetrySplit::default();
    for u in cp.retryable_failures(run.id) {
        let u = u?;
        if u.reason.as_deref() == Some(FOLLOWUP_FAILED) {
            split.followup_failed += 1;
        } else {
            split.only.insert(u.record);
        }
    }
    Ok(split)
}
