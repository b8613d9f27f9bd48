//! What the sync algorithms read and write through. The engine owns the replica's
//! parts (schema, store, client, session, locks, notifier) and lends each push, pull
//! or remote change a [`SyncContext`]: borrowed parts and a few helpers, and nothing
//! of the engine's app-facing surface. The algorithms never name the engine, so the
//! dependencies point one way: app → sync → local and net.

use std::sync::atomic::AtomicU64;

use serde_json::Value;

use super::error::SyncError;
use super::forecast::Forecast;
use super::graveyard::Graveyard;
use super::session::Sessions;
use crate::local::events::Notifier;
use crate::local::schema::{Schema, TableDecl};
use crate::local::store::{HistoryEntry, Store};
use crate::local::write_lock::WriterLock;
use crate::net::auth::Session;
use crate::net::classify::Failure;
use crate::net::client::{Client, RequestError};
use crate::net::transport::Http;

/// Tunables.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Rows per insert request.
    pub batch_size: usize,
    /// Rows per pull page. A page shorter than this ends a table's pull, so it must
    /// not exceed the project's `max_rows` (PostgREST cuts longer answers short):
    /// hosted Supabase's default is 1,000.
    pub page_size: usize,
    /// A restore of a table of several pages is split into at most this many ranges,
    /// walked at once: pages in flight together, which is what a restore over a
    /// network with a long round trip waits on (1: one walk, a page in flight while
    /// the last is stored).
    pub restore_ranges: u64,
    /// From how many rows (the server's count) a restore has the store set its lookups
    /// by server id aside and build them in order when the table is done
    /// ([`Store::filling`], told the count: the SQLite store builds a small table's
    /// from its rows at the end, a large one's from entries set aside in parts). Below
    /// it (a table of one page) they are kept as rows come.
    pub restore_fill_from: u64,
    /// A missing parent is waited for this many pushes, then the write is rejected.
    pub max_parent_waits: u32,
    /// Milliseconds since the Unix epoch (the platform's clock).
    pub now_ms: fn() -> i64,
    /// Bytes of downloaded files kept for reading offline; past it, the least
    /// recently read go first (files waiting to upload are never dropped).
    pub file_cache_bytes: u64,
}

impl EngineConfig {
    /// Defaults with the given clock.
    pub fn with_clock(now_ms: fn() -> i64) -> EngineConfig {
        EngineConfig {
            batch_size: 1000,
            page_size: 1000,
            restore_ranges: 3,
            restore_fill_from: 1_000,
            max_parent_waits: 5,
            now_ms,
            file_cache_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The parts of one replica a sync step works with, borrowed from the engine.
pub struct SyncContext<'a, S: Store, H: Http> {
    pub schema: &'a Schema,
    pub store: &'a S,
    pub client: &'a Client<H>,
    pub sessions: &'a Sessions,
    pub cfg: &'a EngineConfig,
    /// One writer: local writes, push results and pulls apply one at a time.
    pub writer: &'a WriterLock,
    /// While a push runs: the highest `seq` of the outbox it read. Local writes do not
    /// merge into those entries (it sends what it read); 0 when no push runs.
    pub push_floor: &'a AtomicU64,
    pub events: &'a Notifier,
    /// Rows the server deleted, so that stale Realtime changes cannot revive them.
    pub graveyard: &'a Graveyard,
    /// What this process knows of the rows a Realtime change may touch, to show a new
    /// row before the store is read.
    pub forecast: &'a Forecast,
}

impl<S: Store, H: Http> Clone for SyncContext<'_, S, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Store, H: Http> Copy for SyncContext<'_, S, H> {}

impl<'a, S: Store, H: Http> SyncContext<'a, S, H> {
    pub fn now_ms(&self) -> i64 {
        (self.cfg.now_ms)()
    }

    pub fn decl(&self, table: &str) -> Result<&'a TableDecl, SyncError> {
        Ok(self.schema.table(table)?)
    }

    /// The current session, refreshed first if it is about to expire.
    pub async fn session(&self) -> Result<Session, SyncError> {
        self.sessions.current(self.store, self.client, self.now_ms() / 1000).await
    }

    /// Run `f` with a token; on 401 refresh once and run it again.
    pub async fn authed<T, F, Fut>(&self, f: F) -> Result<T, RequestError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, RequestError>>,
    {
        let token = match self.session().await {
            Ok(s) => s.access_token,
            Err(SyncError::Request(e)) => return Err(e),
            Err(e) => return Err(RequestError::BadAnswer(e.to_string())),
        };
        match f(token.clone()).await {
            Err(e) if e.failure() == Failure::Unauthorized => {
                let fresh = match self.sessions.replace(self.store, self.client, self.now_ms() / 1000, &token).await {
                    Ok(s) => s.access_token,
                    Err(SyncError::Request(re)) => return Err(re),
                    Err(_) => return Err(e),
                };
                f(fresh).await
            }
            other => other,
        }
    }

    /// A line of the sync history, timed from `started_ms` to now.
    pub fn history_line(&self, kind: &str, table: Option<&str>, rows: u64, started_ms: i64, error: Option<String>, detail: Value) -> HistoryEntry {
        let now = self.now_ms();
        HistoryEntry {
            id: 0,
            at_ms: now,
            kind: kind.into(),
            table: table.map(str::to_string),
            rows,
            duration_ms: (now - started_ms).max(0) as u64,
            error,
            detail,
        }
    }
}
