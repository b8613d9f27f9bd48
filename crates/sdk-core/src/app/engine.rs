//! The engine: one user's replica on one device. It owns the schema, the store, the
//! Supabase client, the session and the locks; serves the app's local reads and
//! writes (one writer), status and rejected writes; and runs push, pull and Realtime
//! changes by lending the sync layer a [`SyncContext`] ([`crate::push`],
//! [`crate::pull`], [`crate::remote_change`]). Platform crates wrap it with their
//! runtime (timers, Realtime) and their API style.

use async_lock::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::query::{Query, RowView};
use crate::local::events::{EngineEvent, Notifier};
use crate::local::local_row::{LocalRow, Overlay, Row, RowStatus};
use crate::local::outbox::OutboxEntry;
use crate::local::schema::{Schema, SchemaError};
use crate::local::store::{HistoryEntry, Store, StoreError, WriteBatch};
use crate::local::write_lock::{SharedLock, WriterLock};
use crate::local::writer::{waiting_delta, LocalWriter, WriteError};
use crate::net::auth::{self, Session, TokenProvider, SESSION_KEY};
use crate::net::client::{Client, Project, RequestError};
use crate::net::transport::Http;
pub use crate::sync::context::EngineConfig;
use crate::sync::context::SyncContext;
use crate::sync::error::SyncError;
use crate::sync::forecast::Forecast;
use crate::sync::graveyard::Graveyard;
use crate::sync::pull::{Pull, PullReport};
use crate::sync::push::{Push, PushReport};
use crate::sync::reject::{may_have_children, reject_unsent_children};
use crate::sync::remote_change::{self, Applied};
use crate::sync::session::Sessions;
use crate::net::realtime::PgChange;
use crate::select::{self, QueryError, SelectError, SelectRequest, SelectResult};

/// Why an engine call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A local query the replica does not answer, in PostgREST's words.
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("not signed in")]
    NotSignedIn,
    /// Auth refused a sign-in or sign-up (wrong password, account exists, …).
    #[error("{0}")]
    Auth(RequestError),
    #[error("no rejected write for `{0}`")]
    NoRejected(String),
    /// The replica was closed; open it again to go on.
    #[error("the replica is closed")]
    Closed,
    /// Live sync stopped while a call waited for it.
    #[error("live sync: {0}")]
    Live(String),
    /// `sync_until_settled` ran out of time.
    #[error("{pending} writes still pending after {rounds} sync rounds{}", .last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotSettled {
        pending: usize,
        rounds: usize,
        last_error: Option<String>,
    },
}

impl EngineError {
    /// A stable name for the kind of failure, the same in the CLI's JSON errors and in
    /// every language's error type: `invalid`, `store`, `key`, `server`, `auth`,
    /// `not_found`, `timeout`, `closed`.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineError::Store(StoreError::Key(_)) | EngineError::Write(WriteError::Store(StoreError::Key(_))) => "key",
            EngineError::Store(_) | EngineError::Write(WriteError::Store(_)) => "store",
            EngineError::Schema(_) | EngineError::Write(_) | EngineError::Select(_) => "invalid",
            EngineError::Request(_) => "server",
            EngineError::NotSignedIn | EngineError::Auth(_) => "auth",
            EngineError::NoRejected(_) => "not_found",
            EngineError::NotSettled { .. } => "timeout",
            EngineError::Closed | EngineError::Live(_) => "closed",
        }
    }
}

/// What the app shows about sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub signed_in: Option<String>,
    pub pending: usize,
    pub rejected: usize,
    pub oldest_pending_ms: Option<i64>,
    pub last_sync: serde_json::Map<String, Value>,
}

impl From<SyncError> for EngineError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Schema(e) => EngineError::Schema(e),
            SyncError::Store(e) => EngineError::Store(e),
            SyncError::Request(e) => EngineError::Request(e),
            SyncError::NotSignedIn => EngineError::NotSignedIn,
        }
    }
}

/// What a local write returned, and how it changed the number of writes waiting to
/// be pushed (`Status::pending`): a caller that shows the count can add it instead
/// of reading the store again. `None` when the write also rejected other writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted<T> {
    pub value: T,
    pub waiting: Option<i64>,
}

/// One device's replica of one user's data.
pub struct Engine<S: Store, H: Http> {
    pub schema: Schema,
    pub store: S,
    pub(super) client: Client<H>,
    pub(super) cfg: EngineConfig,
    sessions: Sessions,
    /// One writer: local writes, push results and pulls apply one at a time.
    pub(super) writer: WriterLock,
    /// One pull at a time. A pull takes `writer` only while it applies a page, so local
    /// writes go on while it waits for the server.
    puller: Mutex<()>,
    /// One push at a time.
    pusher: Mutex<()>,
    /// While a push runs: the highest `seq` of the outbox it read (see
    /// [`SyncContext::push_floor`]).
    push_floor: std::sync::atomic::AtomicU64,
    pub(super) events: Notifier,
    /// Rows the server deleted, so that stale Realtime changes cannot revive them.
    graveyard: Graveyard,
    /// What lets a new server row show before the store is read.
    forecast: Forecast,
    /// The last read-order stamp given to a kept file (see `files::Engine::use_stamp`).
    pub(super) file_uses: std::sync::atomic::AtomicI64,
}

impl<S: Store, H: Http> Engine<S, H> {
    /// Open a replica; a persisted session is picked up.
    pub async fn open(schema: Schema, store: S, http: H, project: Project, cfg: EngineConfig) -> Result<Self, EngineError> {
        let sessions = Sessions::load(&store).await?;
        for t in schema.tables() {
            for index in t.index_defs() {
                store.ensure_index(&t.name, &index).await?;
            }
        }
        Ok(Engine {
            schema,
            store,
            client: Client::new(project, http),
            cfg,
            sessions,
            writer: Default::default(),
            puller: Mutex::new(()),
            pusher: Mutex::new(()),
            push_floor: Default::default(),
            events: Default::default(),
            graveyard: Default::default(),
            forecast: Default::default(),
            file_uses: Default::default(),
        })
    }

    /// What push, pull and remote changes read and write through.
    pub(super) fn cx(&self) -> SyncContext<'_, S, H> {
        SyncContext {
            schema: &self.schema,
            store: &self.store,
            client: &self.client,
            sessions: &self.sessions,
            cfg: &self.cfg,
            writer: &self.writer,
            push_floor: &self.push_floor,
            events: &self.events,
            graveyard: &self.graveyard,
            forecast: &self.forecast,
        }
    }

    /// Take tokens from the app's own auth (e.g. supabase-js) instead of the built-in
    /// client. The engine then never stores a token.
    pub fn with_token_provider(self, provider: impl TokenProvider + 'static) -> Self {
        self.with_boxed_token_provider(Box::new(provider))
    }

    /// [`Engine::with_token_provider`] for a provider already boxed.
    pub fn with_boxed_token_provider(mut self, provider: Box<dyn TokenProvider>) -> Self {
        self.sessions.set_provider(provider);
        self
    }

    /// Share the one-writer rule with other processes using the same store (browser
    /// tabs on one IndexedDB database): see [`crate::write_lock`].
    pub fn with_shared_writer_lock(mut self, lock: Box<dyn SharedLock>) -> Self {
        self.writer = WriterLock::with_shared(lock);
        self
    }

    /// Read the session again from the store: another process sharing it (the tab
    /// that led before) may have refreshed it, and its old refresh token is spent.
    pub async fn reload_session(&self) -> Result<(), EngineError> {
        Ok(self.sessions.reload(&self.store).await?)
    }

    /// Tell this engine's subscribers that `tables` changed elsewhere (another tab of
    /// the same replica wrote them): live queries re-run, and with `local` live sync
    /// pushes as after a local write.
    pub fn notify_changed(&self, tables: Vec<String>, local: bool) {
        self.events.changed_elsewhere(tables, local);
    }

    /// Change notifications (see [`crate::events`]).
    pub fn subscribe(&self) -> futures_channel::mpsc::UnboundedReceiver<EngineEvent> {
        self.events.subscribe()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.cfg.now_ms)()
    }

    // ---- auth ----

    async fn keep_session(&self, s: Session) -> Result<Session, EngineError> {
        Ok(self.sessions.keep(&self.store, s).await?)
    }

    /// Adopt a session obtained elsewhere (a CLI that signed in before opening the
    /// user's store, or an app whose own auth hands tokens over).
    pub async fn set_session(&self, s: Session) -> Result<Session, EngineError> {
        self.keep_session(s).await
    }

    /// Create an account (confirmed at once on projects without email confirmation).
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<Session, EngineError> {
        let s = auth::sign_up(&self.client, email, password, self.now_ms() / 1000).await.map_err(EngineError::Auth)?;
        self.keep_session(s).await
    }

    /// Sign in with a password.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Session, EngineError> {
        let s = auth::sign_in(&self.client, email, password, self.now_ms() / 1000).await.map_err(EngineError::Auth)?;
        self.keep_session(s).await
    }

    /// Sign out; `wipe` also deletes this user's local data (rows, outbox, cursors).
    pub async fn sign_out(&self, wipe: bool) -> Result<(), EngineError> {
        if let Some(s) = self.sessions.held().await {
            // A network failure must not keep the user signed in locally.
            let _ = auth::sign_out(&self.client, &s.access_token).await;
        }
        // A fresh insert landing between the scan and the wipe would outlive it.
        let _w = self.writer.lock_wipe().await;
        let mut batch = WriteBatch {
            meta: vec![(SESSION_KEY.into(), None)],
            ..Default::default()
        };
        if wipe {
            for t in self.schema.tables() {
                for r in self.store.scan(&t.name).await? {
                    batch.delete_rows.push((r.table, r.local_id));
                }
                batch.meta.push((format!("cursor:{}", t.name), None));
                batch.meta.push((format!("tombstones:{}", t.name), None));
            }
            batch.delete_outbox = self.store.outbox().await?.iter().map(|e| e.seq).collect();
        }
        self.store.apply(batch).await?;
        self.sessions.forget().await;
        if wipe {
            // Its cursors start again from nothing.
            self.forecast.forget();
            self.events.changed(self.schema.tables().iter().map(|t| t.name.clone()).collect(), false);
        }
        Ok(())
    }

    /// The current session, refreshed first if it expires within a minute.
    pub async fn session(&self) -> Result<Session, EngineError> {
        Ok(self.cx().session().await?)
    }

    /// Refresh the access token now (refresh-token rotation).
    pub async fn refresh(&self) -> Result<Session, EngineError> {
        Ok(self.sessions.refresh(&self.store, &self.client, self.now_ms() / 1000).await?)
    }

    // ---- local data ----

    /// Insert a row locally (seen at once; pushed later). Returns its view.
    pub async fn insert(&self, table: &str, row: &Value) -> Result<RowView, EngineError> {
        // Only an id the app chose is looked up first; an insert under a fresh id waits
        // for no push or pull (see `WriterLock::lock_fresh_insert`).
        let reads_first = self.schema.table(table).ok().and_then(|d| row.get(&d.local_id)).is_some_and(|v| !v.is_null());
        let w = self.local_writer();
        // The change is announced before the writer lock goes, so announcements come in
        // the order of the writes (live queries apply the rows they carry in that order).
        let announce = |r: LocalRow| {
            let view = self.view(&r).ok_or_else(|| StoreError::NotFound(r.local_id.clone()).into());
            self.events.changed_rows(table, true, vec![r]);
            view
        };
        if reads_first {
            let _w = self.writer.lock().await;
            announce(w.insert(table, row, self.now_ms()).await?)
        } else {
            let _w = self.writer.lock_fresh_insert().await;
            announce(w.insert(table, row, self.now_ms()).await?)
        }
    }

    /// Append many rows to `table` as local inserts in one transaction (an import: a
    /// user seeding data offline, an operator moving a dataset in). `rows` pairs each
    /// row with its line number. If any row does not fit the schema, nothing is
    /// written and every misfit comes back with its line; else the count written.
    /// `sync` then pushes them, in order, like any other inserts.
    pub async fn import(&self, table: &str, rows: Vec<(usize, Value)>) -> Result<Result<usize, Vec<(usize, String)>>, EngineError> {
        let _w = self.writer.lock().await;
        let w = self.local_writer();
        match w.insert_all(table, rows, self.now_ms()).await? {
            Ok(n) => {
                if n > 0 {
                    self.events.changed(vec![table.to_string()], true);
                }
                Ok(Ok(n))
            }
            Err(bad) => Ok(Err(bad.into_iter().map(|(line, e)| (line, e.to_string())).collect())),
        }
    }

    /// Change fields of a row.
    pub async fn update(&self, table: &str, local_id: &str, fields: &Value) -> Result<RowView, EngineError> {
        Ok(self.update_counted(table, local_id, fields).await?.value)
    }

    /// [`Engine::update`], with how it changed the count of waiting writes.
    pub async fn update_counted(&self, table: &str, local_id: &str, fields: &Value) -> Result<Counted<RowView>, EngineError> {
        let _w = self.writer.lock().await;
        let (r, batch) = self.local_writer().update_batch(table, local_id, fields, self.now_ms()).await?;
        self.apply_row_write(table, r, batch).await
    }

    /// Queue a call of a server function on a row (a write that combines on the server,
    /// such as a counter): `effect` shows at once, the server's result replaces it. See
    /// [`LocalWriter::call`].
    pub async fn call(&self, table: &str, local_id: &str, function: &str, args: &Value, effect: &Value) -> Result<RowView, EngineError> {
        Ok(self.call_counted(table, local_id, function, args, effect).await?.value)
    }

    /// [`Engine::call`], with how it changed the count of waiting writes.
    pub async fn call_counted(&self, table: &str, local_id: &str, function: &str, args: &Value, effect: &Value) -> Result<Counted<RowView>, EngineError> {
        let _w = self.writer.lock().await;
        let (r, batch) = self.local_writer().call_batch(table, local_id, function, args, effect, self.now_ms()).await?;
        self.apply_row_write(table, r, batch).await
    }

    /// Store an update's or call's batch (none when it changes nothing), announce the
    /// row, and say how the count of waiting writes moved.
    async fn apply_row_write(&self, table: &str, r: LocalRow, batch: WriteBatch) -> Result<Counted<RowView>, EngineError> {
        let waiting = Some(waiting_delta(&batch));
        if !batch.is_empty() {
            self.store.apply(batch).await?;
        }
        let view = self.view(&r).ok_or_else(|| EngineError::from(StoreError::NotFound(r.local_id.clone())));
        self.events.changed_rows(table, true, vec![r]);
        Ok(Counted { value: view?, waiting })
    }

    /// Delete a row.
    pub async fn delete(&self, table: &str, local_id: &str) -> Result<(), EngineError> {
        self.delete_counted(table, local_id).await.map(|_| ())
    }

    /// [`Engine::delete`], with how it changed the count of waiting writes (unknown when
    /// it rejected the unsent children of a row that never reached the server).
    pub async fn delete_counted(&self, table: &str, local_id: &str) -> Result<Counted<()>, EngineError> {
        let _w = self.writer.lock().await;
        let w = self.local_writer();
        let (mut batch, cancelled) = w.delete_batch(table, local_id, self.now_ms()).await?;
        let mut waiting = Some(waiting_delta(&batch));
        if cancelled && may_have_children(&self.schema, table) {
            // Children written under a row that never reached the server cannot reach
            // it either: rejected with the reason, in the same batch. (A table no
            // other references has none: its deletes read no outbox.)
            let outbox = self.store.outbox().await?;
            let reason = format!("its parent {table}/{local_id} was deleted on this device before it reached the server");
            reject_unsent_children(&self.cx(), table, local_id, &reason, &outbox, &mut Default::default(), &mut batch).await?;
            waiting = None;
        }
        self.store.apply(batch).await?;
        self.events.changed(vec![table.to_string()], true);
        Ok(Counted { value: (), waiting })
    }

    /// The local write path, never merging into what a running push read.
    pub(super) fn local_writer(&self) -> LocalWriter<'_, S> {
        LocalWriter {
            schema: &self.schema,
            store: &self.store,
            no_merge_through: self.push_floor.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    pub(crate) fn view(&self, r: &LocalRow) -> Option<RowView> {
        let decl = self.schema.table(&r.table).ok()?;
        Some(RowView {
            local_id: r.local_id.clone(),
            row: r.visible(&decl.local_id)?,
            status: r.status.clone(),
        })
    }

    /// One row, as the app sees it.
    pub async fn get(&self, table: &str, local_id: &str) -> Result<Option<RowView>, EngineError> {
        self.schema.table(table)?;
        Ok(self.store.get_row(table, local_id).await?.and_then(|r| self.view(&r)))
    }

    /// A query in PostgREST's language (embeds, aggregates, every filter), answered
    /// from the replica: see [`crate::select`].
    pub async fn select(&self, req: &SelectRequest) -> Result<SelectResult, EngineError> {
        select::select(&self.schema, &self.store, req).await.map_err(query_error)
    }

    /// [`Engine::select`], with the page's rows when the answer can be updated from
    /// changed rows alone (what a live select keeps).
    pub(crate) async fn select_keeping(&self, req: &SelectRequest) -> Result<(SelectResult, Option<select::PageRows>), EngineError> {
        select::select_keeping(&self.schema, &self.store, req).await.map_err(query_error)
    }

    /// Rows of a table matching equality filters, ordered and limited. A filter on the
    /// local id reads one row; a filter on a declared index reads through the index;
    /// otherwise the table is scanned.
    pub async fn query(&self, table: &str, q: &Query) -> Result<Vec<RowView>, EngineError> {
        let decl = self.schema.table(table)?;
        let by_local_id = q.filters.iter().find(|(k, _)| *k == decl.local_id);
        let by_index = q.filters.iter().find(|(k, _)| decl.index_on(k).is_some());
        let candidates = match (by_local_id, by_index) {
            (Some((_, Value::String(id))), _) => self.store.get_row(table, id).await?.into_iter().collect(),
            (Some(_), _) => vec![],
            (None, Some((col, v))) => self.store.rows_by(table, col, v).await?,
            (None, None) => self.store.scan(table).await?,
        };
        Ok(q.arrange(candidates.iter().filter_map(|r| self.view(r)).collect()))
    }

    /// The scope ids whose rows this replica holds, per shared table (see
    /// [`crate::sync::scopes`]); empty when no table is shared.
    pub async fn held_scopes(&self) -> Result<crate::app::listeners::HeldScopes, EngineError> {
        let mut out = crate::app::listeners::HeldScopes::new();
        for t in self.schema.tables().iter().filter(|t| t.shared_by.is_some()) {
            out.insert(t.name.clone(), crate::sync::scopes::held(&self.store, &t.name).await?);
        }
        Ok(out)
    }

    /// Pending and rejected counts, the oldest pending write, last sync per table.
    pub async fn status(&self) -> Result<Status, EngineError> {
        let keys: Vec<String> = self.schema.tables().iter().map(|t| format!("last_sync:{}", t.name)).collect();
        // Both reads at once: on IndexedDB each is a round trip to the browser's store.
        let (ob, synced) = futures_util::join!(self.store.outbox_summary(), self.store.metas(&keys));
        let (ob, synced) = (ob?, synced?);
        let mut last_sync = serde_json::Map::new();
        for (t, v) in self.schema.tables().iter().zip(synced) {
            if let Some(v) = v {
                last_sync.insert(t.name.clone(), v);
            }
        }
        let signed_in = self.sessions.user_id().await;
        Ok(Status {
            signed_in,
            pending: ob.pending,
            rejected: ob.rejected,
            oldest_pending_ms: ob.oldest_pending_ms,
            last_sync,
        })
    }

    /// Writes the server refused, with their reasons.
    pub async fn rejected(&self) -> Result<Vec<OutboxEntry>, EngineError> {
        Ok(self.store.outbox().await?.into_iter().filter(|e| e.rejected.is_some()).collect())
    }

    /// The sync history, newest first.
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, EngineError> {
        Ok(self.store.history(limit).await?)
    }

    async fn rejected_entries(&self, local_id: &str) -> Result<Vec<OutboxEntry>, EngineError> {
        let es: Vec<OutboxEntry> = self
            .store
            .outbox()
            .await?
            .into_iter()
            .filter(|e| e.local_id == local_id && e.rejected.is_some())
            .collect();
        if es.is_empty() {
            return Err(EngineError::NoRejected(local_id.into()));
        }
        Ok(es)
    }

    /// Queue a rejected write again (after the cause was fixed, e.g. a policy).
    pub async fn retry(&self, local_id: &str) -> Result<(), EngineError> {
        let _w = self.writer.lock().await;
        let es = self.rejected_entries(local_id).await?;
        let mut batch = WriteBatch::default();
        let table = es[0].table.clone();
        let mut row = self
            .store
            .get_row(&table, local_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(local_id.into()))?;
        // Writes of the row still waiting keep their part of what the app sees.
        let mut overlay = match &row.overlay {
            Some(Overlay::Fields { fields }) => fields.clone(),
            _ => Row::new(),
        };
        let mut deleted = matches!(row.overlay, Some(Overlay::Deleted));
        for mut e in es {
            match e.op.shown_fields() {
                Some(f) => overlay.extend(f),
                None => deleted = true,
            }
            e.rejected = None;
            e.attempts = 0;
            e.last_error = None;
            e.known_unsent = true;
            batch.put_outbox.push(e);
        }
        row.overlay = Some(if deleted { Overlay::Deleted } else { Overlay::Fields { fields: overlay } });
        row.status = RowStatus::Pending;
        batch.put_rows.push(row);
        self.store.apply(batch).await?;
        self.events.changed(vec![table], true);
        Ok(())
    }

    /// Drop a rejected write for good: the row shows the server's version again (or
    /// disappears if it never reached the server).
    pub async fn discard(&self, local_id: &str) -> Result<(), EngineError> {
        let _w = self.writer.lock().await;
        let es = self.rejected_entries(local_id).await?;
        let table = es[0].table.clone();
        let mut batch = WriteBatch {
            delete_outbox: es.iter().map(|e| e.seq).collect(),
            ..Default::default()
        };
        if let Some(mut row) = self.store.get_row(&table, local_id).await? {
            if row.mirror.is_none() {
                batch.delete_rows.push((table.clone(), local_id.into()));
                // A file that never reached Storage: its bytes go too.
                if let Some(bucket) = crate::local::files::bucket_of(&table) {
                    batch.delete_blobs.push(crate::local::files::blob_key(bucket, local_id));
                }
            } else {
                row.overlay = None;
                row.status = RowStatus::Synced;
                batch.put_rows.push(row);
            }
        }
        self.store.apply(batch).await?;
        self.events.changed(vec![table], false);
        Ok(())
    }

    /// Push every waiting write that can go now (see [`crate::push`]).
    pub async fn push(&self) -> Result<PushReport, EngineError> {
        let _one_push = self.pusher.lock().await;
        Ok(Push::new(self.cx()).run().await?)
    }

    /// Pull every table, parents first (see [`crate::pull`]).
    pub async fn pull(&self) -> Result<PullReport, EngineError> {
        let _one_pull = self.puller.lock().await;
        Ok(Pull::new(self.cx()).run().await?)
    }

    /// Apply one Realtime change; returns what it did (see [`crate::remote_change`]).
    pub async fn apply_change(&self, c: &PgChange) -> Result<Applied, EngineError> {
        Ok(remote_change::apply_change(&self.cx(), c).await?)
    }

    /// Push, then pull.
    pub async fn sync(&self) -> Result<(PushReport, PullReport), EngineError> {
        let push = self.push().await?;
        let pull = self.pull().await?;
        Ok((push, pull))
    }

}

fn query_error(e: QueryError) -> EngineError {
    match e {
        QueryError::Invalid(e) => EngineError::Select(e),
        QueryError::Store(e) => EngineError::Store(e),
    }
}
