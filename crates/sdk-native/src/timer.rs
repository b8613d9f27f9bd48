//! The core's [`Timer`] on tokio.

use supasync_core::timer::Timer;

/// Sleeps on the tokio runtime the caller runs in.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTimer;

supasync_core::maybe_async_trait! {
    impl Timer for TokioTimer {
        async fn sleep_ms(&self, ms: u64) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
}
