//! The browser as the core's [`Runtime`]: `setTimeout` timers (gloo-timers), tasks on
//! the microtask queue (wasm-bindgen-futures), `Date.now()`, fetch and WebSocket.

use supasync_core::maybe_send::BoxTask;
use supasync_core::timer::Timer;
use supasync_core::Runtime;

use crate::ws::BrowserWs;

/// Sleeps with `setTimeout`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserTimer;

supasync_core::maybe_async_trait! {
    impl Timer for BrowserTimer {
        async fn sleep_ms(&self, ms: u64) {
            gloo_timers::future::TimeoutFuture::new(ms.min(u32::MAX as u64) as u32).await;
        }
    }
}

/// The browser's event loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserRuntime;

/// Milliseconds since the Unix epoch, from the browser's clock.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

impl Runtime for BrowserRuntime {
    type Timer = BrowserTimer;
    type Ws = BrowserWs;

    fn timer(&self) -> BrowserTimer {
        BrowserTimer
    }

    fn ws(&self) -> BrowserWs {
        BrowserWs
    }

    fn spawn(&self, task: BoxTask) {
        wasm_bindgen_futures::spawn_local(task);
    }

    fn now_ms() -> i64 {
        now_ms()
    }
}
