//! [`UserDirectory`] over a directory file ([`crate::directory`]): lookups in SQLite, passwords
//! checked locally with the password module under a cost cap.
//!
//! It exists so that every sign-in costs one index lookup plus one verification. When the user's
//! own hash cannot be used (unknown user, no hash, unreadable hash, over the cost cap), the
//! password is verified against another user's hash (chosen from the login, within the cost cap) so that those answers
//! take about as long as "wrong password".
//!
//! A local file is checked against its content checksum at cold start
//! ([`FileDirectory::open_checked`]); one that fails the check answers every sign-in as
//! unavailable ([`CheckedDirectory`]) rather than answering from altered rows.

use std::hash::{Hash, Hasher};
use std::path::Path;

use super::{DirectoryKind, DirectoryUnavailable, LegacyAccount, Refusal, UserDirectory, Verdict};
use crate::directory::{DirectoryError, DirectoryFile, Found, MatchedBy};
use crate::password::{CostCap, PasswordHash};

/// How many rows [`FileDirectory`]'s decoy verification looks at for a usable hash (each look is
/// one rowid lookup: microseconds).
const DECOY_PROBES: u64 = 16;

/// The directory file as the trigger's user directory.
#[derive(Debug)]
pub struct FileDirectory {
    file: DirectoryFile,
    cap: CostCap,
}

impl FileDirectory {
    pub fn new(file: DirectoryFile, cap: CostCap) -> FileDirectory {
        FileDirectory { file, cap }
    }

    /// Opens a directory file on local disk (cheap: no scan).
    pub fn open(path: impl AsRef<Path>, cap: CostCap) -> Result<FileDirectory, DirectoryError> {
        Ok(FileDirectory::new(DirectoryFile::open(path)?, cap))
    }

    pub fn file(&self) -> &DirectoryFile {
        &self.file
    }

    pub fn cost_cap(&self) -> &CostCap {
        &self.cap
    }

    fn account(&self, found: Found, scheme: Option<&'static str>) -> LegacyAccount {
        let sign_in = &self.file.meta().sign_in;
        let username_attribute = (found.matched_by != MatchedBy::Username
            && !sign_in.username_attributes)
            .then(|| found.entry.username.clone());
        LegacyAccount {
            username: found.entry.username,
            username_attribute,
            attributes: found.entry.attributes,
            enabled: found.entry.enabled,
            groups: found.entry.groups,
            scheme,
        }
    }

    fn find(&self, login: &str) -> Result<Option<Found>, DirectoryUnavailable> {
        self.file
            .find(login)
            .map_err(|e| DirectoryUnavailable(e.to_string()))
    }

    /// Verifies `password` against another user's hash and throws the result away.
    ///
    /// The decoy is the first usable hash (readable, within the cost cap) among up to
    /// [`DECOY_PROBES`] rows starting at one chosen from the login, so that the same login always
    /// costs the same and a directory that mixes users with and without hashes still yields one.
    /// Only a directory with no usable hash at all spends nothing — and then nobody can sign in
    /// with a password, so there is nothing to tell apart. Returns whether a hash was verified.
    pub(super) fn decoy(&self, login: &str, password: &str) -> bool {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        login.trim().to_lowercase().hash(&mut h);
        let start = h.finish();
        for n in 0..DECOY_PROBES {
            let Ok(Some(encoded)) = self.file.hash_at(start.wrapping_add(n)) else {
                continue;
            };
            let Ok(hash) = PasswordHash::parse(&encoded) else {
                continue;
            };
            if hash.exceeds(&self.cap).is_none() {
                std::hint::black_box(hash.verify(password));
                return true;
            }
        }
        false
    }

    /// The synchronous work of [`UserDirectory::authenticate`].
    pub fn authenticate_now(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Verdict, DirectoryUnavailable> {
        let Some(found) = self.find(login)? else {
            self.decoy(login, password);
            return Ok(Verdict::Refused(Refusal::UnknownUser));
        };
        // Refusals that need no verification still spend one (on another user's hash), so that
        // the time taken does not tell them apart from a wrong password.
        let Some(encoded) = found.entry.password_hash.as_deref() else {
            self.decoy(login, password);
            return Ok(Verdict::Refused(Refusal::NoPassword));
        };
        let hash = match PasswordHash::parse(encoded) {
            Ok(h) => h,
            Err(_) => {
                self.decoy(login, password);
                return Ok(Verdict::Refused(Refusal::UnreadableHash));
            }
        };
        if let Some(why) = hash.exceeds(&self.cap) {
            self.decoy(login, password);
            return Ok(Verdict::Refused(Refusal::OverCostCap(why)));
        }
        if !hash.verify(password) {
            return Ok(Verdict::Refused(Refusal::WrongPassword));
        }
        Ok(Verdict::Accepted(self.account(found, Some(hash.scheme()))))
    }

    /// The synchronous work of [`UserDirectory::lookup`].
    pub fn lookup_now(&self, login: &str) -> Result<Option<LegacyAccount>, DirectoryUnavailable> {
        Ok(self.find(login)?.map(|f| self.account(f, None)))
    }
}

impl UserDirectory for FileDirectory {
    fn pool_id(&self) -> Option<&str> {
        Some(self.file.meta().pool_id.as_str()).filter(|p| !p.is_empty())
    }

    fn kind(&self) -> DirectoryKind {
        DirectoryKind::File
    }

    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Verdict, DirectoryUnavailable> {
        self.authenticate_now(login, password)
    }

    async fn lookup(&self, login: &str) -> Result<Option<LegacyAccount>, DirectoryUnavailable> {
        self.lookup_now(login)
    }
}

/// A local directory file after its cold-start integrity check.
#[derive(Debug)]
// One value per execution environment: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum CheckedDirectory {
    /// Its rows match its content checksum.
    Intact(FileDirectory),
    /// They do not, or could not all be read: every sign-in is answered
    /// [`TriggerError::Unavailable`](super::TriggerError::Unavailable). The error is for one log
    /// line at cold start; each invocation's line says only [`DAMAGED`].
    Damaged(DirectoryError),
}

/// What a [`CheckedDirectory::Damaged`] answers each lookup (for the invocation's log line).
pub const DAMAGED: &str = "the directory file failed its integrity check at cold start";

impl FileDirectory {
    /// Opens a directory file on local disk and checks it against its content checksum before
    /// anything is answered from it, as a download from S3 is checked: SQLite itself does not
    /// notice altered bytes inside a row, the checksum does. The check reads every row (about
    /// 1.2 s per million users in a release build). An error opening the file (missing, not a
    /// directory file, another format version) is returned; a failed check is not an error here
    /// but a [`CheckedDirectory::Damaged`] directory.
    pub fn open_checked(
        path: impl AsRef<Path>,
        cap: CostCap,
    ) -> Result<CheckedDirectory, DirectoryError> {
        let file = DirectoryFile::open(path)?;
        Ok(match file.verify_checksum() {
            Ok(()) => CheckedDirectory::Intact(FileDirectory::new(file, cap)),
            Err(e) => CheckedDirectory::Damaged(e),
        })
    }
}

impl UserDirectory for CheckedDirectory {
    fn kind(&self) -> DirectoryKind {
        DirectoryKind::File
    }

    fn pool_id(&self) -> Option<&str> {
        match self {
            CheckedDirectory::Intact(d) => d.pool_id(),
            // Its metadata cannot be trusted; every answer is "unavailable" anyway.
            CheckedDirectory::Damaged(_) => None,
        }
    }

    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Verdict, DirectoryUnavailable> {
        match self {
            CheckedDirectory::Intact(d) => d.authenticate_now(login, password),
            CheckedDirectory::Damaged(_) => Err(DirectoryUnavailable(DAMAGED.to_string())),
        }
    }

    async fn lookup(&self, login: &str) -> Result<Option<LegacyAccount>, DirectoryUnavailable> {
        match self {
            CheckedDirectory::Intact(d) => d.lookup_now(login),
            CheckedDirectory::Damaged(_) => Err(DirectoryUnavailable(DAMAGED.to_string())),
        }
    }
}

/// Why a directory file from S3 could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Download(#[from] super::DownloadError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl FileDirectory {
    /// Downloads `s3://bucket/key` into `dir`, opens it, and (with `verify`) checks it against its
    /// content checksum before anything is answered from it.
    pub async fn fetch(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        dir: &Path,
        verify: bool,
        cap: CostCap,
    ) -> Result<FileDirectory, OpenError> {
        let (path, _bytes) = super::download(client, bucket, key, dir).await?;
        let file = DirectoryFile::open(&path)?;
        if verify {
            file.verify_checksum()?;
        }
        Ok(FileDirectory::new(file, cap))
    }
}
