//! The engine's one-writer rule, across everything that shares a store. Every local
//! write, push step and pulled page reads the store and then applies a batch; two of
//! them interleaved could coalesce into an entry that is being sent, or undo each
//! other. Inside one process an async mutex serialises them. Where several processes
//! share one store (browser tabs on one IndexedDB database), the platform adds a
//! [`SharedLock`] (Web Locks in the browser), so the rule holds across them too.
//!
//! Nothing holds the lock while it waits for the network, so no write waits for a
//! server's answer:
//! - A pull takes it for each page it applies (see [`crate::sync::pull`]).
//! - A push takes it for each step between its requests (reading the outbox, marking
//!   entries sent, writing an answer). Between steps, writes of this process go on;
//!   the push never merges them into what it sends (see `crate::sync::push`) and reads back
//!   the rows they touched before confirming (`WriterLock::others`). Other processes
//!   wait for the whole push: it holds the shared lock from its first step to its last
//!   ([`WriterLock::hold_shared`]), as it always did.
//! - An insert under a fresh local id reads nothing first, and its row and outbox entry
//!   are one atomic store batch that no read-then-write can involve (no one else knows
//!   the row yet). It takes neither part, only a shared hold that a wipe (sign-out)
//!   takes exclusively.
//! - A server row from Realtime that no one on this device holds yet, of a table no
//!   other references, is written as a batch that only adds it (refused if the row
//!   exists after all): no other process knows it either, so it takes only this
//!   process's part ([`WriterLock::lock_new_server_row`]).
//!
//! Inside a process the shared lock is held on behalf of all of its holders at once
//! (counted): a write of this process during its own push needs no second Web Lock,
//! and the lock is released when the last holder drops it, whatever order they end in.

use std::sync::atomic::{AtomicU64, Ordering};

use async_lock::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::platform::maybe_send::{MaybeSend, MaybeSync};

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

/// The shared lock as this process holds it: once, for however many holders.
struct SharedHolders {
    lock: Box<dyn SharedLock>,
    /// Serialises acquiring it (two holders of this process must not both wait).
    acquiring: Mutex<()>,
    held: std::sync::Mutex<(usize, Option<Box<dyn Held>>)>,
}

impl SharedHolders {
    fn join(&self) -> bool {
        let mut h = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if h.0 > 0 {
            h.0 += 1;
            true
        } else {
            false
        }
    }

    async fn hold(&self) -> SharedRef<'_> {
        if !self.join() {
            let _one = self.acquiring.lock().await;
            if !self.join() {
                let held = self.lock.acquire().await;
                *self.held.lock().unwrap_or_else(|e| e.into_inner()) = (1, Some(held));
            }
        }
        SharedRef(self)
    }
}

/// One holder's share of the shared lock.
pub struct SharedRef<'a>(&'a SharedHolders);

impl Drop for SharedRef<'_> {
    fn drop(&mut self) {
        let mut h = self.0.held.lock().unwrap_or_else(|e| e.into_inner());
        h.0 = h.0.saturating_sub(1);
        if h.0 == 0 {
            h.1 = None;
        }
    }
}

/// The writer lock: in-process, plus the shared one when the platform has it.
#[derive(Default)]
pub struct WriterLock {
    local: Mutex<()>,
    /// Fresh inserts hold it shared; a wipe holds it exclusively.
    inserts: RwLock<()>,
    shared: Option<SharedHolders>,
    /// How many times anything but a push step took the lock: a push that sees it
    /// move knows rows it sent may have been written meanwhile.
    others: AtomicU64,
}

/// Held while a fresh insert is written.
pub struct InsertGuard<'a>(#[allow(dead_code)] RwLockReadGuard<'a, ()>);

/// Held while the store is wiped: no write of any kind runs meanwhile.
pub struct WipeGuard<'a> {
    _writer: WriterGuard<'a>,
    _inserts: RwLockWriteGuard<'a, ()>,
}

/// Held while one write runs.
pub struct WriterGuard<'a> {
    // Dropped first: the shared lock, then the local one.
    _shared: Option<SharedRef<'a>>,
    _local: MutexGuard<'a, ()>,
}

impl WriterLock {
    pub fn with_shared(shared: Box<dyn SharedLock>) -> WriterLock {
        WriterLock {
            shared: Some(SharedHolders { lock: shared, acquiring: Mutex::new(()), held: std::sync::Mutex::new((0, None)) }),
            ..Default::default()
        }
    }

    /// For an insert under a fresh local id (UUIDv7), a write that reads nothing first
    /// (see the module's docs): it waits only for a wipe. Skipping the shared lock also
    /// saves a Web Lock round (≈ 0.4 ms) on the most common write.
    pub async fn lock_fresh_insert(&self) -> InsertGuard<'_> {
        InsertGuard(self.inserts.read().await)
    }

    /// For applying a server row no process on this device holds yet, as a batch that
    /// only adds it (see `crate::sync::remote_change`): this process's writers wait,
    /// other processes need not (none knows the row). Counted in
    /// [`WriterLock::others`], as any write of this process.
    pub async fn lock_new_server_row(&self) -> WriterGuard<'_> {
        let local = self.local.lock().await;
        self.others.fetch_add(1, Ordering::SeqCst);
        WriterGuard { _shared: None, _local: local }
    }

    /// For a wipe of the store: every other write, fresh inserts included, waits.
    pub async fn lock_wipe(&self) -> WipeGuard<'_> {
        let writer = self.lock().await;
        WipeGuard { _writer: writer, _inserts: self.inserts.write().await }
    }

    /// For a write that reads the store first (anything but a push step).
    pub async fn lock(&self) -> WriterGuard<'_> {
        let local = self.local.lock().await;
        self.others.fetch_add(1, Ordering::SeqCst);
        let shared = match &self.shared {
            Some(s) => Some(s.hold().await),
            None => None,
        };
        WriterGuard { _shared: shared, _local: local }
    }

    /// For one step of a push, which holds the shared lock for its whole run
    /// ([`WriterLock::hold_shared`]) and is not counted in [`WriterLock::others`].
    pub async fn lock_step(&self) -> WriterGuard<'_> {
        WriterGuard { _shared: None, _local: self.local.lock().await }
    }

    /// Keep other processes out for a whole push (`None` where there are none).
    pub async fn hold_shared(&self) -> Option<SharedRef<'_>> {
        match &self.shared {
            Some(s) => Some(s.hold().await),
            None => None,
        }
    }

    /// How many times [`WriterLock::lock`] was taken so far.
    pub fn others(&self) -> u64 {
        self.others.load(Ordering::SeqCst)
    }
}
