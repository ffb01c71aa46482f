//! Fetching the directory file from S3 once per cold start.
//!
//! A directory too large for the deployment package (or rebuilt more often than the function is
//! deployed) lives in S3; `COGNITO_MIGRATE_DIRECTORY=s3://bucket/key` makes the trigger stream it
//! to local storage (`/tmp` by default, mode 0600) during its init phase. The caller then checks the
//! copy against its content checksum ([`crate::directory::DirectoryFile::verify_checksum`]) before
//! answering anything, so a truncated or altered copy is never used.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the directory could not be fetched. No user data in any message.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{0:?} is not an s3://bucket/key location")]
    BadUrl(String),
    #[error("cannot download s3://{bucket}/{key}: {message}")]
    S3 {
        bucket: String,
        key: String,
        message: String,
    },
    #[error(
        "cannot write the directory to {path}: {error} (is the function's ephemeral storage \
         large enough?)"
    )]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Splits `s3://bucket/key` into bucket and key.
pub fn parse_s3_url(url: &str) -> Result<(String, String), DownloadError> {
    let bad = || DownloadError::BadUrl(url.to_string());
    let rest = url.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, key) = rest.split_once('/').ok_or_else(bad)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(bad());
    }
    Ok((bucket.to_string(), key.to_string()))
}

/// Streams `s3://bucket/key` into `dir/cognito-migrate-directory.db` (through a `.part` file renamed
/// when complete). Returns the path and the number of bytes.
pub async fn download(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    dir: &Path,
) -> Result<(PathBuf, u64), DownloadError> {
    let s3_err = |message: String| DownloadError::S3 {
        bucket: bucket.to_string(),
        key: key.to_string(),
        message,
    };
    let path = dir.join("cognito-migrate-directory.db");
    let part = dir.join("cognito-migrate-directory.db.part");
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |error| DownloadError::Io { path: p, error }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| s3_err(aws_sdk_s3::error::DisplayErrorContext(&e).to_string()))?;
    let mut file = std::io::BufWriter::with_capacity(
        1 << 20,
        crate::fs::create_private(&part).map_err(io(&part))?,
    );
    let mut body = out.body;
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| s3_err(format!("the download broke off: {e}")))?;
        file.write_all(&chunk).map_err(io(&part))?;
        bytes += chunk.len() as u64;
    }
    let file = file.into_inner().map_err(|e| DownloadError::Io {
        path: part.clone(),
        error: e.into_error(),
    })?;
    file.sync_all().map_err(io(&part))?;
    drop(file);
    std::fs::rename(&part, &path).map_err(io(&path))?;
    Ok((path, bytes))
}
