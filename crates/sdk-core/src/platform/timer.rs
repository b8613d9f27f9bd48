//! Waiting, behind a trait: the core never sleeps by itself because each platform waits
//! differently (tokio natively, `setTimeout` in the browser, nothing at all in tests
//! that only count how long the engine asked to wait).

use crate::platform::maybe_send::{MaybeSend, MaybeSync};

crate::maybe_async_trait! {
    /// Sleeps.
    pub trait Timer: MaybeSend + MaybeSync {
        /// Return after about `ms` milliseconds.
        async fn sleep_ms(&self, ms: u64);
    }
}
