//! Files as the replica keeps them: a file of Supabase Storage is a row of the
//! pseudo-table `files:<bucket>` whose local id is its path, and its bytes are the
//! store's blob of the same name (`<bucket>/<path>`).
//!
//! Being a row is what puts files in the same outbox as rows: an upload is an outbox
//! entry ([`crate::local::outbox::OutboxOp::Upload`]) committed in the same store batch
//! as its bytes, and a table that declares a column as holding a file's path
//! (`"files": {"attachment": "attachments"}`) makes that column a reference to the
//! file's row. So the push sends a row only once the file it names is stored (as a
//! child waits for its parent), and a refused upload refuses the rows that name it
//! (as a refused parent refuses its children), with the server's reason. Retry and
//! discard are the rows' own.
//!
//! A file row's fields: `bucket`, `path`, `size`, `content_type`, `md5`; `cached`
//! (the bytes are here), `used` (when it was last read, in microseconds, strictly
//! increasing within a process: the cache drops the least recently read first). Its server id is its path once Storage holds it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::local::local_row::Row;

/// The prefix of the pseudo-tables of files.
pub const FILES_PREFIX: &str = "files:";

/// The pseudo-table of `bucket`'s files.
pub fn files_table(bucket: &str) -> String {
    format!("{FILES_PREFIX}{bucket}")
}

/// The bucket a pseudo-table holds, if `table` is one.
pub fn bucket_of(table: &str) -> Option<&str> {
    table.strip_prefix(FILES_PREFIX)
}

/// The store's key for a file's bytes.
pub fn blob_key(bucket: &str, path: &str) -> String {
    format!("{bucket}/{path}")
}

/// What an upload sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub bucket: String,
    pub path: String,
    pub size: u64,
    pub content_type: String,
    /// Hex MD5 of the bytes: Storage's ETag, how a retried upload recognises its own
    /// earlier attempt.
    pub md5: String,
}

impl FileMeta {
    /// The row fields of this file.
    pub fn fields(&self) -> Row {
        match json!({
            "bucket": self.bucket, "path": self.path, "size": self.size,
            "content_type": self.content_type, "md5": self.md5,
        }) {
            Value::Object(m) => m,
            _ => Row::new(),
        }
    }
}

/// Why a file cannot be named or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("a bucket name cannot be empty or hold `/`: {0:?}")]
    BadBucket(String),
    #[error("a file path cannot be empty, start or end with `/`, or have an empty, `.` or `..` part: {0:?}")]
    BadPath(String),
}

/// Check a bucket and a path before anything is written (Storage refuses the same).
pub fn check_name(bucket: &str, path: &str) -> Result<(), FileError> {
    if bucket.is_empty() || bucket.contains('/') || bucket == "." || bucket == ".." {
        return Err(FileError::BadBucket(bucket.into()));
    }
    let bad = path.is_empty() || path.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") || path.contains('\\');
    if bad {
        return Err(FileError::BadPath(path.into()));
    }
    Ok(())
}

/// Hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("attachments", "u1/photo 1.jpg").is_ok());
        for bad in ["", "/a", "a/", "a//b", "../x", "a/./b", "a\\b"] {
            assert!(check_name("b", bad).is_err(), "{bad}");
        }
        assert!(check_name("a/b", "x").is_err());
        assert_eq!(bucket_of(&files_table("docs")), Some("docs"));
        assert_eq!(bucket_of("messages"), None);
    }

    #[test]
    fn md5_is_storages_etag() {
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
    }
}
