//! Fingerprints of an input: what a run's state file records to tell whether a later invocation
//! reads the same input (and may resume) or another one.
//!
//! They live with the sources because a source (the `s3://` reader) makes them, and the
//! checkpoint compares them; neither the checkpoint nor the sources import from the layers above.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::bytes::hex;

const MIB: u64 = 1024 * 1024;

/// Fingerprint of a file's content: `sha256:<hex>` of its size (8 bytes, little-endian), its first
/// MiB and its last MiB (the whole file, once, if it is at most 2 MiB). Cheap on any size, and it
/// changes when the file is replaced, appended to or truncated; an edit in the middle of a large file
/// goes unnoticed (the size usually changes too).
pub fn fingerprint_file(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let mut file = File::open(path).map_err(with_path)?;
    let size = file.metadata().map_err(with_path)?.len();
    let mut hasher = Sha256::new();
    hasher.update(size.to_le_bytes());
    let head = size.min(MIB);
    copy_into(&mut file, head, &mut hasher).map_err(with_path)?;
    let tail_start = head.max(size.saturating_sub(MIB));
    if tail_start < size {
        file.seek(SeekFrom::Start(tail_start)).map_err(with_path)?;
        copy_into(&mut file, size - tail_start, &mut hasher).map_err(with_path)?;
    }
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
}

/// Fingerprint of an S3 object: `s3-etag:<sha256 hex>` of its ETag, size and version id. S3 gives
/// a replaced object a new ETag (and, in a versioned bucket, a new version), so this changes
/// whenever the content can have changed, without reading the object.
pub fn fingerprint_s3(etag: &str, size: u64, version_id: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(size.to_le_bytes());
    hasher.update(etag.trim_matches('"').as_bytes());
    hasher.update([0u8]);
    hasher.update(version_id.unwrap_or_default().as_bytes());
    format!("s3-etag:{}", hex(&hasher.finalize()))
}

fn copy_into(file: &mut File, mut len: u64, hasher: &mut Sha256) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    while len > 0 {
        let want = len.min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while fingerprinting",
            ));
        }
        hasher.update(&buf[..n]);
        len -= n as u64;
    }
    Ok(())
}
