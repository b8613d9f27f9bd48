//! The bytes of objects, on disk under the server's data directory.
//!
//! Each stored version is one file, `objects/<version>`, named by a version id the
//! server makes (never by the object's key, so no key can reach outside the folder).
//! An upload streams into `tmp/<id>` (memory flat in the file's size, MD5 and size
//! computed on the way), and only a complete, in-limit file is renamed into place, so
//! a reader never sees half an upload. Replacing an object writes a new version and
//! removes the old file once the database row points at the new one. Resumable
//! uploads grow `resumable/<upload id>` until they are complete.

use std::path::{Path, PathBuf};

use axum::body::Body;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use tokio::io::AsyncWriteExt;

use super::error::StorageError;

/// The largest object the server takes at all (buckets may set less).
pub const GLOBAL_LIMIT: u64 = 5 * 1024 * 1024 * 1024;

/// The folders of one server's files.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// An upload written to a temporary file, not yet in place.
#[derive(Debug)]
pub struct Staged {
    pub tmp: PathBuf,
    pub size: u64,
    /// Hex MD5 of the bytes (the object's ETag, as Supabase gives it).
    pub md5: String,
}

impl BlobStore {
    /// Use (and create) `root`.
    pub fn open(root: &Path) -> std::io::Result<BlobStore> {
        for sub in ["objects", "tmp", "resumable"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        Ok(BlobStore { root: root.to_path_buf() })
    }

    fn object_path(&self, version: &str) -> PathBuf {
        self.root.join("objects").join(version)
    }

    pub fn resumable_path(&self, upload_id: &str) -> PathBuf {
        self.root.join("resumable").join(upload_id)
    }

    /// Stream `body` into a temporary file, refusing it once it passes `limit` bytes.
    pub async fn stage<S, B, E>(&self, body: S, limit: u64) -> Result<Staged, StorageError>
    where
        S: futures_util::Stream<Item = Result<B, E>>,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let result = write_stream(&tmp, body, limit).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        let (size, md5) = result?;
        Ok(Staged { tmp, size, md5 })
    }

    /// Move a staged upload into place as `version`.
    pub async fn place(&self, staged: &Staged, version: &str) -> Result<(), StorageError> {
        tokio::fs::rename(&staged.tmp, self.object_path(version))
            .await
            .map_err(|e| StorageError::io("cannot store the upload", e))
    }

    /// Forget a staged upload that was refused.
    pub async fn discard(&self, staged: &Staged) {
        let _ = tokio::fs::remove_file(&staged.tmp).await;
    }

    /// Copy version `from` to a new version `to`.
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        tokio::fs::copy(self.object_path(from), self.object_path(to))
            .await
            .map(|_| ())
            .map_err(|e| StorageError::io("cannot copy the object's bytes", e))
    }

    /// Open a version for reading.
    pub async fn open_version(&self, version: &str) -> Result<tokio::fs::File, StorageError> {
        tokio::fs::File::open(self.object_path(version)).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StorageError::no_object()
            } else {
                StorageError::io("cannot read the object", e)
            }
        })
    }

    /// Remove versions no row points at any more (missing files are fine).
    pub async fn remove(&self, versions: impl IntoIterator<Item = String>) {
        for v in versions {
            if let Err(e) = tokio::fs::remove_file(self.object_path(&v)).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("storage: cannot remove version {v}: {e}");
                }
            }
        }
    }

    /// Append a body to a resumable upload's file at `offset` (which must be its
    /// length), up to `max` bytes in all. Returns the new length.
    pub async fn append(&self, upload_id: &str, offset: u64, body: Body, max: u64) -> Result<u64, StorageError> {
        let path = self.resumable_path(upload_id);
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|e| StorageError::io("cannot open the upload", e))?;
        let on_disk = file.metadata().await.map_err(|e| StorageError::io("cannot read the upload", e))?.len();
        if on_disk != offset {
            // A chunk cut off earlier left bytes the database never counted: drop them.
            file.set_len(offset).await.map_err(|e| StorageError::io("cannot trim the upload", e))?;
        }
        let mut len = offset;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| StorageError::invalid(format!("the upload was cut off: {e}")))?;
            len += chunk.len() as u64;
            if len > max {
                let _ = file.set_len(offset).await;
                return Err(StorageError::invalid("the chunk goes past the Upload-Length"));
            }
            file.write_all(&chunk).await.map_err(|e| StorageError::io("cannot write the upload", e))?;
        }
        file.flush().await.map_err(|e| StorageError::io("cannot write the upload", e))?;
        Ok(len)
    }

    /// Turn a finished resumable upload into a staged one (hashing it on the way).
    pub async fn stage_resumable(&self, upload_id: &str) -> Result<Staged, StorageError> {
        let from = self.resumable_path(upload_id);
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        tokio::fs::rename(&from, &tmp).await.map_err(|e| StorageError::io("cannot finish the upload", e))?;
        let (size, md5) = hash_file(&tmp).await.map_err(|e| StorageError::io("cannot read the upload", e))?;
        Ok(Staged { tmp, size, md5 })
    }

    /// Drop a resumable upload's bytes.
    pub async fn remove_resumable(&self, upload_id: &str) {
        let _ = tokio::fs::remove_file(self.resumable_path(upload_id)).await;
    }
}

async fn write_stream<S, B, E>(tmp: &Path, body: S, limit: u64) -> Result<(u64, String), StorageError>
where
    S: futures_util::Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(|e| StorageError::io("cannot write the upload", e))?;
    let mut hasher = Md5::new();
    let mut size = 0u64;
    futures_util::pin_mut!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StorageError::invalid(format!("the upload was cut off: {e}")))?;
        let chunk = chunk.as_ref();
        size += chunk.len() as u64;
        if size > limit {
            return Err(StorageError::too_large());
        }
        hasher.update(chunk);
        file.write_all(chunk).await.map_err(|e| StorageError::io("cannot write the upload", e))?;
    }
    file.flush().await.map_err(|e| StorageError::io("cannot write the upload", e))?;
    Ok((size, hex::encode(hasher.finalize())))
}

async fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(path).await?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}
