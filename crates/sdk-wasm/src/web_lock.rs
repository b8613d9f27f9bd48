//! The core's [`SharedLock`] on the Web Locks API (`navigator.locks`): tabs of one
//! origin that share a replica's IndexedDB database take the writer lock by the
//! database's name, so one tab's read-then-write never interleaves with another's.
//! A tab that closes or crashes releases what it held. Where the browser refuses locks
//! the write goes on unlocked: the tab works alone (the npm wrapper says so in the
//! status).

use futures_channel::oneshot;
use supasync_core::write_lock::{Held, SharedLock};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use futures_util::FutureExt;

/// A named Web Lock.
pub struct WebLock {
    name: String,
    locks: JsValue,
}

/// The page's (or worker's) `navigator.locks`, when it has one (secure contexts).
pub fn lock_manager() -> Option<JsValue> {
    let nav = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = js_sys::Reflect::get(&nav, &"locks".into()).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then_some(locks)
}

impl WebLock {
    pub fn new(name: String) -> Option<WebLock> {
        lock_manager().map(|locks| WebLock { name, locks })
    }
}

/// Releases the lock when dropped.
struct Release(js_sys::Function);

impl Drop for Release {
    fn drop(&mut self) {
        let _ = self.0.call0(&JsValue::NULL);
    }
}

supasync_core::maybe_async_trait! {
    impl SharedLock for WebLock {
        async fn acquire(&self) -> Box<dyn Held> {
            let (granted_tx, granted_rx) = oneshot::channel::<js_sys::Function>();
            let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
                // Held until `release` is called; if nobody waits any more (the caller
                // was cancelled), it is released at once.
                let mut release: Option<js_sys::Function> = None;
                let held = js_sys::Promise::new(&mut |resolve, _| release = Some(resolve));
                if let Some(r) = release {
                    if let Err(r) = granted_tx.send(r) {
                        let _ = r.call0(&JsValue::NULL);
                    }
                }
                held.into()
            });
            let request = js_sys::Reflect::get(&self.locks, &"request".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
            let Some(request) = request else { return Box::new(()) };
            let Ok(asked) = request.call2(&self.locks, &JsValue::from_str(&self.name), &callback) else {
                return Box::new(());
            };
            // The request's promise settles after the lock is released, or at once when
            // the browser refuses locks (a webview's `SecurityError`): then this tab
            // works alone, unlocked, rather than waiting for a grant that never comes.
            let refused = JsFuture::from(js_sys::Promise::resolve(&asked)).fuse();
            let mut granted = granted_rx.fuse();
            futures_util::pin_mut!(refused);
            futures_util::select! {
                g = granted => match g {
                    Ok(release) => Box::new(Release(release)),
                    Err(_) => Box::new(()),
                },
                _ = refused => Box::new(()),
            }
        }
    }
}
