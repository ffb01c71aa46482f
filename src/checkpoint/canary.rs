//! The hash canary's verdicts (schema V3): which `password_hash` notation Cognito verified for a
//! pool and algorithm. `preflight` records them; `run` reads the newest passed one so that it
//! writes hashes the way the real pool proved it reads them.

use std::time::SystemTime;

use rusqlite::params;

use super::{from_ms, now_ms, Checkpoint, Result, SqlContext};
use crate::password::{ImportAlgorithm, Notation, Notations};

/// One canary attempt's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CanaryVerdict {
    pub pool_id: String,
    #[serde(serialize_with = "as_display")]
    pub algorithm: ImportAlgorithm,
    #[serde(serialize_with = "as_display")]
    pub notation: Notation,
    pub passed: bool,
    pub job_id: Option<String>,
    /// Why it failed (never a password or hash).
    pub message: Option<String>,
    #[serde(skip)]
    pub checked_at: Option<SystemTime>,
}

fn as_display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Checkpoint {
    /// Records a canary verdict (durably: `run` relies on it).
    pub fn record_canary(&self, v: &CanaryVerdict) -> Result<()> {
        let at = v.checked_at.map(super::to_ms).unwrap_or_else(now_ms);
        self.write_tx(true, |tx| {
            tx.execute(
                "INSERT INTO canary_verdicts (pool_id, algorithm, notation, passed, job_id, message, checked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    v.pool_id,
                    v.algorithm.as_str(),
                    v.notation.as_str(),
                    v.passed,
                    v.job_id,
                    v.message,
                    at
                ],
            )
            .ctx(&self.path)?;
            Ok(())
        })
    }

    /// The newest passed verdict for `pool_id` and `algorithm`, if any.
    pub fn passed_canary(
        &self,
        pool_id: &str,
        algorithm: ImportAlgorithm,
    ) -> Result<Option<CanaryVerdict>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT notation, job_id, message, checked_at FROM canary_verdicts
                 WHERE pool_id = ?1 AND algorithm = ?2 AND passed = 1
                 ORDER BY checked_at DESC, id DESC LIMIT 1",
            )
            .ctx(&self.path)?;
        let mut rows = stmt
            .query(params![pool_id, algorithm.as_str()])
            .ctx(&self.path)?;
        let Some(row) = rows.next().ctx(&self.path)? else {
            return Ok(None);
        };
        let notation: String = row.get(0).ctx(&self.path)?;
        let notation = notation.parse().map_err(|_| {
            self.invalid(format!(
                "canary verdict for {pool_id} {algorithm}: unknown notation {notation:?}"
            ))
        })?;
        Ok(Some(CanaryVerdict {
            pool_id: pool_id.to_owned(),
            algorithm,
            notation,
            passed: true,
            job_id: row.get(1).ctx(&self.path)?,
            message: row.get(2).ctx(&self.path)?,
            checked_at: Some(from_ms(row.get(3).ctx(&self.path)?)),
        }))
    }

    /// The notations proved for `pool_id`: for each algorithm, that of its newest passed verdict.
    pub fn canary_notations(&self, pool_id: &str) -> Result<Notations> {
        let mut notations = Notations::default();
        for alg in ImportAlgorithm::ALL {
            if let Some(v) = self.passed_canary(pool_id, alg)? {
                notations
                    .set(alg, v.notation)
                    .map_err(|e| self.invalid(format!("canary verdict for {pool_id}: {e}")))?;
            }
        }
        Ok(notations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir().join(format!(
            "cognito-migrate-canary-{name}-{}-{nanos}.db",
            std::process::id()
        ))
    }

    fn verdict(
        pool: &str,
        alg: ImportAlgorithm,
        n: Notation,
        passed: bool,
        at: u64,
    ) -> CanaryVerdict {
        CanaryVerdict {
            pool_id: pool.into(),
            algorithm: alg,
            notation: n,
            passed,
            job_id: Some(format!("import-{at}")),
            message: (!passed).then(|| "sign-in refused".to_string()),
            checked_at: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(at)),
        }
    }

    #[test]
    fn the_newest_passed_verdict_per_pool_and_algorithm_wins() {
        let path = temp_db("newest");
        let cp = Checkpoint::open(&path).unwrap();
        let pbkdf2 = ImportAlgorithm::Pbkdf2Sha256;
        assert_eq!(cp.passed_canary("pool-a", pbkdf2).unwrap(), None);
        cp.record_canary(&verdict("pool-a", pbkdf2, Notation::Phc, false, 10))
            .unwrap();
        assert_eq!(
            cp.passed_canary("pool-a", pbkdf2).unwrap(),
            None,
            "a failed one is no proof"
        );
        cp.record_canary(&verdict("pool-a", pbkdf2, Notation::PhcNoLength, true, 20))
            .unwrap();
        cp.record_canary(&verdict("pool-a", pbkdf2, Notation::Passlib, true, 30))
            .unwrap();
        cp.record_canary(&verdict("pool-b", pbkdf2, Notation::PhcHex, true, 40))
            .unwrap();
        cp.record_canary(&verdict(
            "pool-a",
            ImportAlgorithm::Scrypt,
            Notation::PhcHex,
            false,
            50,
        ))
        .unwrap();
        let got = cp.passed_canary("pool-a", pbkdf2).unwrap().unwrap();
        assert_eq!(got, verdict("pool-a", pbkdf2, Notation::Passlib, true, 30));
        let notations = cp.canary_notations("pool-a").unwrap();
        assert_eq!(notations.get(pbkdf2), Notation::Passlib);
        assert!(!notations.is_set(ImportAlgorithm::Scrypt));
        assert_eq!(notations.get(ImportAlgorithm::Scrypt), Notation::Phc);
        assert_eq!(
            cp.canary_notations("pool-b").unwrap().get(pbkdf2),
            Notation::PhcHex
        );
        drop(cp);
        // Reopened (as `run` does), the verdicts are still there.
        let cp = Checkpoint::open(&path).unwrap();
        assert_eq!(
            cp.canary_notations("pool-a").unwrap().get(pbkdf2),
            Notation::Passlib
        );
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
