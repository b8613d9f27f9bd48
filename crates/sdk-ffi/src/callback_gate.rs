//! Foreign callbacks stop before the foreign language shuts down. Listener calls, and
//! the wake-ups that hand an async call's answer back, come from the library's threads; once Python's interpreter is finalizing, a thread
//! that takes the GIL is ended with `pthread_exit`, whose unwinding through Rust frames
//! aborts the process ("exception not rethrown", or a double free) when an app exits
//! with a live query still running. The language layer calls [`shutdown_callbacks`]
//! from its exit hook (Python's `atexit`): after it returns no listener is called
//! again, and the calls already under way have finished. Dropping a listener calls the
//! foreign side too (to free it), so listeners are dropped through the gate as well.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static CLOSING: AtomicBool = AtomicBool::new(false);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Call a foreign listener unless the process is shutting down; `false` if it was not called.
pub(crate) fn deliver(call: impl FnOnce()) -> bool {
    // Counted first, checked second: `shutdown_callbacks` sets the flag, then waits for
    // the count, so a call either sees the flag or is waited for.
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    let open = !CLOSING.load(Ordering::SeqCst);
    if open {
        call();
    }
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    open
}

/// Drop `value`, which holds foreign objects (a listener: dropping it calls the foreign
/// side to free it), through the gate; while shutting down it is leaked instead.
pub(crate) fn release<T>(value: T) {
    let mut value = Some(value);
    deliver(|| drop(value.take()));
    std::mem::forget(value);
}

/// Stop calling listeners, for good, and wait (up to 2 s) for calls under way. For a
/// language's exit hook; blocking, so the caller must not hold a lock the listeners
/// need (Python's ctypes releases the GIL for the call).
#[uniffi::export]
pub fn shutdown_callbacks() {
    CLOSING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(2);
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}
