//! The library's own tokio runtime. Foreign executors poll the exported futures; the
//! work itself (SQLite, HTTP, the Realtime socket, live sync) runs on these threads.

use std::future::Future;
use std::sync::LazyLock;

use crate::SupaSyncError;

static RUNTIME: LazyLock<Result<tokio::runtime::Runtime, String>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("supasync")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
});

/// Run `fut` on the library's runtime and wait for it from any executor.
pub async fn run<T: Send + 'static>(fut: impl Future<Output = Result<T, SupaSyncError>> + Send + 'static) -> Result<T, SupaSyncError> {
    let rt = RUNTIME.as_ref().map_err(|e| SupaSyncError::new("runtime", format!("cannot start the tokio runtime: {e}")))?;
    rt.spawn(fut)
        .await
        .map_err(|e| SupaSyncError::new("runtime", format!("the task failed: {e}")))?
}

/// Start `fut` in the background on the library's runtime.
pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Result<(), SupaSyncError> {
    let rt = RUNTIME.as_ref().map_err(|e| SupaSyncError::new("runtime", format!("cannot start the tokio runtime: {e}")))?;
    rt.spawn(fut);
    Ok(())
}
