//! The engine's one-writer rule, across everything that shares a store. Every local
//! write, push and pulled page reads the store and then applies a batch; two of them
//! interleaved could coalesce into an entry that is being sent, or undo each other.
//! A push holds it for its whole run (its outbox must not change under it); a pull
//! only while it applies a page (see [`crate::pull`]), so writes go on during a restore.
//! Inside one process an async mutex serialises them. Where several processes share
//! one store (browser tabs on one IndexedDB database), the platform adds a
//! [`SharedLock`] (Web Locks in the browser) taken after the in-process mutex, so the
//! rule holds across them too.

use async_lock::{Mutex, MutexGuard};

use crate::maybe_send::{MaybeSend, MaybeSync};

/// Something held until dropped.
pub trait Held: MaybeSend {}
impl<T: MaybeSend> Held for T {}

crate::maybe_async_trait! {
    /// A lock shared with other processes using the same store.
    pub trait SharedLock: MaybeSend + MaybeSync {
        /// Wait for the lock; it is released when the returned value is dropped.
        async fn acquire(&self) -> Box<dyn Held>;
    }
}

/// The writer lock: in-process, plus the shared one when the platform has it.
#[derive(Default)]
pub struct WriterLock {
    local: Mutex<()>,
    shared: Option<Box<dyn SharedLock>>,
}

/// Held while one write runs.
pub struct WriterGuard<'a> {
    // Dropped first: the shared lock, then the local one.
    _shared: Option<Box<dyn Held>>,
    _local: MutexGuard<'a, ()>,
}

impl WriterLock {
    pub fn with_shared(shared: Box<dyn SharedLock>) -> WriterLock {
        WriterLock { local: Mutex::new(()), shared: Some(shared) }
    }

    /// Only the in-process part, for a write that reads nothing first: an insert under
    /// a fresh local id (UUIDv7) is one store batch, atomic by itself, and no other
    /// process's read-then-write can involve a row that did not exist. Skipping the
    /// shared lock there saves a Web Lock round (≈ 0.4 ms) on the most common write.
    pub async fn lock_local(&self) -> WriterGuard<'_> {
        WriterGuard { _shared: None, _local: self.local.lock().await }
    }

    pub async fn lock(&self) -> WriterGuard<'_> {
        let local = self.local.lock().await;
        let shared = match &self.shared {
            Some(s) => Some(s.acquire().await),
            None => None,
        };
        WriterGuard { _shared: shared, _local: local }
    }
}
