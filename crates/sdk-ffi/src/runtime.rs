//! The library's own tokio runtime. Foreign executors poll the exported futures; the
//! work itself (SQLite, HTTP, the Realtime socket, live sync) runs on these threads.

use std::future::Future;
use std::sync::LazyLock;

use crate::callback_gate::deliver;
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
///
/// The answer is handed over through the callback gate: handing it over wakes the
/// caller, and waking a foreign future calls into the foreign language (Python's
/// continuation takes the GIL), which must not happen once that language shuts down.
pub async fn run<T: Send + 'static>(fut: impl Future<Output = Result<T, SupaSyncError>> + Send + 'static) -> Result<T, SupaSyncError> {
    let rt = RUNTIME.as_ref().map_err(|e| SupaSyncError::new("runtime", format!("cannot start the tokio runtime: {e}")))?;
    let (tx, rx) = futures_channel::oneshot::channel();
    rt.spawn(async move {
        let out = fut.await;
        let mut tx = Some(tx);
        deliver(|| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(out);
            }
        });
        // Not delivered (shutting down): dropping the sender would wake the caller too.
        std::mem::forget(tx);
    });
    rx.await.map_err(|_| SupaSyncError::new("runtime", "the task failed before answering"))?
}

/// Start `fut` in the background on the library's runtime.
pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Result<(), SupaSyncError> {
    let rt = RUNTIME.as_ref().map_err(|e| SupaSyncError::new("runtime", format!("cannot start the tokio runtime: {e}")))?;
    rt.spawn(fut);
    Ok(())
}
