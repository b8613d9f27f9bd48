//! A replica's file as a file on disk, for what native views take (an image view, a
//! PDF viewer, a webview's asset URL): `files/<bucket>/<path>` under a directory the
//! app owns, written from the replica's copy (downloaded first if it is not kept), so
//! it shows offline too. Bucket and path are checked by the core before any of this
//! (no empty, `.` or `..` part), so the file stays inside `files/`.

use std::path::{Path, PathBuf};

use supasync_core::EngineError;
use supasync_core::StoreError;

use crate::device::NativeReplica;

/// Where `bucket/path` is on disk under `root`, written (or rewritten, if its bytes
/// changed) from the replica; as a `file://` URL.
pub async fn file_url(replica: &NativeReplica, root: &Path, bucket: &str, path: &str) -> Result<String, EngineError> {
    let bytes = replica.read_file(bucket, path).await?;
    let target: PathBuf = path.split('/').fold(root.join("files").join(bucket), |p, part| p.join(part));
    let io = |e: std::io::Error| EngineError::Store(StoreError::Io(format!("{}: {e}", target.display())));
    if tokio::fs::read(&target).await.ok().as_deref() != Some(&bytes[..]) {
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        // Written beside, then renamed: a view never reads half a file.
        let tmp = target.with_extension(format!("{}.part", supasync_core::writer::new_local_id()));
        tokio::fs::write(&tmp, &bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &target).await.map_err(io)?;
    }
    Ok(format!("file://{}", target.display()))
}
