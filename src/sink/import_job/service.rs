//! The remote side of an import job: Cognito's six import-job operations and the presigned upload.
//!
//! Each function makes one attempt and reports a typed error with a [`Verdict`]; the driver decides
//! whether to retry. The presigned URL is a credential: it is never logged, never stored, and is
//! stripped from every error message (`reqwest::Error::without_url`).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{UserImportJobStatusType, UserImportJobType};
use aws_sdk_cognitoidentityprovider::Client;

use super::retry::{classify, Verdict};
use crate::password::ImportAlgorithm;

/// A failed remote step.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct ServiceError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub verdict: Verdict,
}

fn sdk_err<E>(operation: &'static str, e: SdkError<E, HttpResponse>) -> ServiceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    ServiceError {
        operation,
        verdict: classify(&e),
        code: e.code().map(str::to_string),
        message: e
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| DisplayErrorContext(&e).to_string()),
    }
}

/// What we need of a job.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub status: JobStatus,
    /// Only from Create/Describe; never logged or stored.
    pub presigned_url: Option<String>,
    pub imported: u64,
    pub skipped: u64,
    pub failed: u64,
    pub completion_message: Option<String>,
    pub created: Option<SystemTime>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Created,
    Pending,
    InProgress,
    Stopping,
    Expired,
    Stopped,
    Failed,
    Succeeded,
    Unknown,
}

impl JobStatus {
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobStatus::Pending | JobStatus::InProgress | JobStatus::Stopping
        )
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Expired | JobStatus::Stopped | JobStatus::Failed | JobStatus::Succeeded
        )
    }
}

fn job_from(j: &UserImportJobType) -> Job {
    use UserImportJobStatusType as S;
    let status = match j.status() {
        Some(S::Created) => JobStatus::Created,
        Some(S::Pending) => JobStatus::Pending,
        Some(S::InProgress) => JobStatus::InProgress,
        Some(S::Stopping) => JobStatus::Stopping,
        Some(S::Expired) => JobStatus::Expired,
        Some(S::Stopped) => JobStatus::Stopped,
        Some(S::Failed) => JobStatus::Failed,
        Some(S::Succeeded) => JobStatus::Succeeded,
        _ => JobStatus::Unknown,
    };
    Job {
        id: j.job_id().unwrap_or_default().to_string(),
        name: j.job_name().unwrap_or_default().to_string(),
        status,
        presigned_url: j.pre_signed_url().map(str::to_string),
        imported: j.imported_users().max(0) as u64,
        skipped: j.skipped_users().max(0) as u64,
        failed: j.failed_users().max(0) as u64,
        completion_message: j.completion_message().map(str::to_string),
        created: j
            .creation_date()
            .and_then(|d| u64::try_from(d.secs()).ok())
            .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
    }
}

fn missing(operation: &'static str) -> ServiceError {
    ServiceError {
        operation,
        code: None,
        message: "the answer has no UserImportJob".into(),
        verdict: Verdict::Retry,
    }
}

/// The import-job operations of one pool.
#[derive(Clone, Debug)]
pub struct ImportJobs {
    pub client: Client,
    pub pool_id: String,
    pub role_arn: String,
}

impl ImportJobs {
    pub async fn create(
        &self,
        name: &str,
        alg: Option<ImportAlgorithm>,
    ) -> Result<Job, ServiceError> {
        let mut req = self
            .client
            .create_user_import_job()
            .user_pool_id(&self.pool_id)
            .job_name(name)
            .cloud_watch_logs_role_arn(&self.role_arn);
        if let Some(a) = alg {
            req = req.password_hashing_algorithm(a.into());
        }
        let out = req
            .send()
            .await
            .map_err(|e| sdk_err("CreateUserImportJob", e))?;
        out.user_import_job()
            .map(job_from)
            .ok_or_else(|| missing("CreateUserImportJob"))
    }

    pub async fn describe(&self, job_id: &str) -> Result<Job, ServiceError> {
        let out = self
            .client
            .describe_user_import_job()
            .user_pool_id(&self.pool_id)
            .job_id(job_id)
            .send()
            .await
            .map_err(|e| sdk_err("DescribeUserImportJob", e))?;
        out.user_import_job()
            .map(job_from)
            .ok_or_else(|| missing("DescribeUserImportJob"))
    }

    pub async fn start(&self, job_id: &str) -> Result<Job, ServiceError> {
        let out = self
            .client
            .start_user_import_job()
            .user_pool_id(&self.pool_id)
            .job_id(job_id)
            .send()
            .await
            .map_err(|e| sdk_err("StartUserImportJob", e))?;
        out.user_import_job()
            .map(job_from)
            .ok_or_else(|| missing("StartUserImportJob"))
    }

    pub async fn stop(&self, job_id: &str) -> Result<Job, ServiceError> {
        let out = self
            .client
            .stop_user_import_job()
            .user_pool_id(&self.pool_id)
            .job_id(job_id)
            .send()
            .await
            .map_err(|e| sdk_err("StopUserImportJob", e))?;
        out.user_import_job()
            .map(job_from)
            .ok_or_else(|| missing("StopUserImportJob"))
    }

    /// Every import job of the pool (all pages).
    pub async fn list(&self) -> Result<Vec<Job>, ServiceError> {
        let mut jobs = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_user_import_jobs()
                .user_pool_id(&self.pool_id)
                .max_results(60)
                .set_pagination_token(token.clone())
                .send()
                .await
                .map_err(|e| sdk_err("ListUserImportJobs", e))?;
            jobs.extend(out.user_import_jobs().iter().map(job_from));
            match out.pagination_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => {
                    token = Some(t.to_string())
                }
                _ => return Ok(jobs),
            }
        }
    }
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot read the import file {path}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The presigned URL has expired (or was refused): a new job is needed.
    #[error("the upload URL was refused (HTTP {status}): it has expired or is invalid")]
    Refused { status: u16 },
    /// Worth retrying: 5xx, timeouts, dropped connections.
    #[error("upload failed: {0}")]
    Transient(String),
    #[error("upload failed (HTTP {status})")]
    Permanent { status: u16 },
}

/// Told how many bytes of an upload have been sent so far.
pub type UploadProgress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// PUTs a file to a presigned URL, streamed from disk, with the server-side-encryption header
/// Cognito's URL is signed for. `progress` is told the bytes sent so far, per block.
pub async fn upload(
    http: &reqwest::Client,
    url: &str,
    path: &Path,
    progress: Option<UploadProgress>,
) -> Result<(), UploadError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| UploadError::File {
            path: path.display().to_string(),
            source,
        })?;
    let len = file
        .metadata()
        .await
        .map_err(|source| UploadError::File {
            path: path.display().to_string(),
            source,
        })?
        .len();
    let mut sent = 0u64;
    let stream = futures::StreamExt::inspect(
        tokio_util::io::ReaderStream::with_capacity(file, 1 << 20),
        move |block| {
            if let (Ok(b), Some(p)) = (block, &progress) {
                sent += b.len() as u64;
                p(sent);
            }
        },
    );
    let body = reqwest::Body::wrap_stream(stream);
    let resp = http
        .put(url)
        .header("x-amz-server-side-encryption", "aws:kms")
        .header("content-type", "text/csv")
        .header("content-length", len)
        .body(body)
        .send()
        .await
        .map_err(|e| UploadError::Transient(e.without_url().to_string()))?;
    let status = resp.status().as_u16();
    match status {
        200..=299 => Ok(()),
        403 => Err(UploadError::Refused { status }),
        408 | 429 | 500..=599 => Err(UploadError::Transient(format!("HTTP {status}"))),
        _ => Err(UploadError::Permanent { status }),
    }
}

/// The HTTP client for uploads (rustls; built once).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(15 * 60))
        .build()
        .expect("the HTTP client builds with rustls")
}

/// When a presigned URL expires, from its `X-Amz-Date`/`X-Amz-Expires` query parameters, else
/// `created + 15 min` (Cognito's documented validity), else now + 15 min.
pub fn url_expiry(url: &str, created: Option<SystemTime>) -> SystemTime {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let get = |k: &str| {
        query.split('&').find_map(|kv| {
            kv.split_once('=')
                .filter(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        })
    };
    let expires = get("X-Amz-Expires")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(900);
    let base = get("X-Amz-Date")
        .and_then(parse_amz_date)
        .or(created)
        .unwrap_or_else(SystemTime::now);
    base + Duration::from_secs(expires)
}

fn parse_amz_date(v: &str) -> Option<SystemTime> {
    // 20261122T060000Z
    if v.len() != 16 {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &v[0..4],
        &v[4..6],
        &v[6..8],
        &v[9..11],
        &v[11..13],
        &v[13..15]
    );
    let secs = crate::mapping::transform::to_epoch_seconds(&iso)?;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_from_the_url() {
        let t = url_expiry(
            "https://b.s3.amazonaws.com/k?X-Amz-Date=20231114T221320Z&X-Amz-Expires=900&X-Amz-Signature=x",
            None,
        );
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 900));
        let created = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(
            url_expiry("http://127.0.0.1/u?X-Amz-Expires=5", Some(created)),
            created + Duration::from_secs(5)
        );
    }
}
