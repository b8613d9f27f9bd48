//! The engine: one user's replica on one device. It owns the schema, the store, the
//! Supabase client and the session, serialises local writes (one writer), and runs push
//! ([`crate::push`]) and pull ([`crate::pull`]). Platform crates wrap it with their
//! runtime (timers, Realtime) and their API style.

use async_lock::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{self, ProvidedToken, Session, TokenProvider, SESSION_KEY};
use crate::client::{Client, Project, RequestError};
use crate::classify::Failure;
use crate::local_row::{LocalRow, Overlay, RowStatus};
use crate::outbox::{OutboxEntry, OutboxOp};
use crate::schema::{Schema, SchemaError, TableDecl};
use crate::store::{HistoryEntry, Store, StoreError, WriteBatch};
use crate::transport::Http;
use crate::writer::{LocalWriter, WriteError};
use crate::Row;

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
    /// every language's error type: `invalid`, `store`, `server`, `auth`, `not_found`,
    /// `timeout`, `closed`.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineError::Store(_) | EngineError::Write(WriteError::Store(_)) => "store",
            EngineError::Schema(_) | EngineError::Write(_) => "invalid",
            EngineError::Request(_) => "server",
            EngineError::NotSignedIn | EngineError::Auth(_) => "auth",
            EngineError::NoRejected(_) => "not_found",
            EngineError::NotSettled { .. } => "timeout",
            EngineError::Closed | EngineError::Live(_) => "closed",
        }
    }
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Rows per insert request.
    pub batch_size: usize,
    /// Rows per pull page. A page shorter than this ends a table's pull, so it must
    /// not exceed the project's `max_rows` (PostgREST cuts longer answers short):
    /// hosted Supabase's default is 1,000.
    pub page_size: usize,
    /// A missing parent is waited for this many pushes, then the write is rejected.
    pub max_parent_waits: u32,
    /// Milliseconds since the Unix epoch (the platform's clock).
    pub now_ms: fn() -> i64,
}

impl EngineConfig {
    /// Defaults with the given clock.
    pub fn with_clock(now_ms: fn() -> i64) -> EngineConfig {
        EngineConfig {
            batch_size: 1000,
            page_size: 1000,
            max_parent_waits: 5,
            now_ms,
        }
    }
}

/// A row as queries return it: what the app sees, plus its sync status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowView {
    pub local_id: String,
    pub row: Row,
    pub status: RowStatus,
}

/// A local query: equality filters, one order, a limit.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filters: Vec<(String, Value)>,
    pub order: Option<(String, bool)>,
    pub limit: Option<usize>,
}

impl Query {
    /// A query as every binding passes it: `{"where": {col: value}, "order": "col.desc",
    /// "limit": N}`, each part optional.
    pub fn from_json(v: &Value) -> Result<Query, String> {
        let mut q = Query::default();
        let Some(o) = v.as_object() else {
            return if v.is_null() { Ok(q) } else { Err("a query is an object: {where, order, limit}".into()) };
        };
        for k in o.keys() {
            if !matches!(k.as_str(), "where" | "order" | "limit") {
                return Err(format!("unknown query option `{k}` (where, order, limit)"));
            }
        }
        match o.get("where") {
            None | Some(Value::Null) => {}
            Some(Value::Object(w)) => q.filters = w.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(_) => return Err("`where` is an object of column: value".into()),
        }
        match o.get("order") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => q = q.order_by(s),
            Some(_) => return Err("`order` is a column name, optionally with .asc or .desc".into()),
        }
        match o.get("limit") {
            None | Some(Value::Null) => {}
            Some(n) => match n.as_u64() {
                Some(n) => q.limit = Some(n as usize),
                None => return Err("`limit` is a whole number ≥ 0".into()),
            },
        }
        Ok(q)
    }

    /// The order as the CLI and the JavaScript API spell it: `col`, `col.asc` or
    /// `col.desc` (PostgREST's spelling).
    pub fn order_by(mut self, spec: &str) -> Query {
        self.order = Some(match spec.strip_suffix(".desc") {
            Some(c) => (c.into(), true),
            None => (spec.trim_end_matches(".asc").into(), false),
        });
        self
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

/// One device's replica of one user's data.
pub struct Engine<S: Store, H: Http> {
    pub schema: Schema,
    pub store: S,
    pub(crate) client: Client<H>,
    pub(crate) cfg: EngineConfig,
    pub(crate) session: Mutex<Option<Session>>,
    /// When set, tokens come from the app's own auth instead of `session`.
    pub(crate) provider: Option<Box<dyn TokenProvider>>,
    /// One writer: local writes, push results and pulls apply one at a time.
    pub(crate) writer: crate::write_lock::WriterLock,
    /// One pull at a time. A pull takes `writer` only while it applies a page, so local
    /// writes go on while it waits for the server.
    pub(crate) puller: Mutex<()>,
    /// One push at a time.
    pub(crate) pusher: Mutex<()>,
    /// While a push runs: the highest `seq` of the outbox it read. Local writes do not
    /// merge into those entries (it sends what it read); 0 when no push runs.
    pub(crate) push_floor: std::sync::atomic::AtomicU64,
    pub(crate) events: crate::events::Notifier,
    /// Rows the server deleted, so that stale Realtime changes cannot revive them.
    pub(crate) graveyard: crate::server_delete::Graveyard,
}

impl<S: Store, H: Http> Engine<S, H> {
    /// Open a replica; a persisted session is picked up.
    pub async fn open(schema: Schema, store: S, http: H, project: Project, cfg: EngineConfig) -> Result<Self, EngineError> {
        let session = match store.meta(SESSION_KEY).await? {
            Some(v) => Some(serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("session: {e}")))?),
            None => None,
        };
        for t in schema.tables() {
            for col in &t.indexes {
                store.ensure_index(&t.name, col).await?;
            }
        }
        Ok(Engine {
            schema,
            store,
            client: Client::new(project, http),
            cfg,
            session: Mutex::new(session),
            provider: None,
            writer: Default::default(),
            puller: Mutex::new(()),
            pusher: Mutex::new(()),
            push_floor: Default::default(),
            events: Default::default(),
            graveyard: Default::default(),
        })
    }

    /// Take tokens from the app's own auth (e.g. supabase-js) instead of the built-in
    /// client. The engine then never stores a token.
    pub fn with_token_provider(mut self, provider: impl TokenProvider + 'static) -> Self {
        self.provider = Some(Box::new(provider));
        self
    }

    /// Share the one-writer rule with other processes using the same store (browser
    /// tabs on one IndexedDB database): see [`crate::write_lock`].
    pub fn with_shared_writer_lock(mut self, lock: Box<dyn crate::write_lock::SharedLock>) -> Self {
        self.writer = crate::write_lock::WriterLock::with_shared(lock);
        self
    }

    /// Read the session again from the store: another process sharing it (the tab
    /// that led before) may have refreshed it, and its old refresh token is spent.
    pub async fn reload_session(&self) -> Result<(), EngineError> {
        if self.provider.is_some() {
            return Ok(());
        }
        let s = match self.store.meta(SESSION_KEY).await? {
            Some(v) => Some(serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("session: {e}")))?),
            None => None,
        };
        *self.session.lock().await = s;
        Ok(())
    }

    /// [`Engine::with_token_provider`] for a provider already boxed.
    pub fn with_boxed_token_provider(mut self, provider: Box<dyn TokenProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Tell this engine's subscribers that `tables` changed elsewhere (another tab of
    /// the same replica wrote them): live queries re-run, and with `local` live sync
    /// pushes as after a local write.
    pub fn notify_changed(&self, tables: Vec<String>, local: bool) {
        self.events.changed_elsewhere(tables, local);
    }

    fn provided(t: ProvidedToken) -> Session {
        Session {
            access_token: t.access_token,
            refresh_token: String::new(),
            expires_at: i64::MAX,
            user_id: t.user_id,
            email: None,
        }
    }

    /// Change notifications (see [`crate::events`]).
    pub fn subscribe(&self) -> futures_channel::mpsc::UnboundedReceiver<crate::events::EngineEvent> {
        self.events.subscribe()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.cfg.now_ms)()
    }

    // ---- auth ----

    async fn keep_session(&self, s: Session) -> Result<Session, EngineError> {
        self.store
            .apply(WriteBatch {
                meta: vec![(SESSION_KEY.into(), Some(json!(s)))],
                ..Default::default()
            })
            .await?;
        *self.session.lock().await = Some(s.clone());
        Ok(s)
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
        let s = self.session.lock().await.clone();
        if let Some(s) = s {
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
        *self.session.lock().await = None;
        if wipe {
            self.events.changed(self.schema.tables().iter().map(|t| t.name.clone()).collect(), false);
        }
        Ok(())
    }

    /// The current session, refreshed first if it expires within a minute.
    pub async fn session(&self) -> Result<Session, EngineError> {
        if let Some(p) = &self.provider {
            return p.current().await.map(Self::provided).ok_or(EngineError::NotSignedIn);
        }
        let s = self.session.lock().await.clone().ok_or(EngineError::NotSignedIn)?;
        if s.expires_at - self.now_ms() / 1000 > 60 {
            return Ok(s);
        }
        self.refresh().await
    }

    /// Refresh the access token now (refresh-token rotation).
    pub async fn refresh(&self) -> Result<Session, EngineError> {
        if let Some(p) = &self.provider {
            return p.refresh().await.map(Self::provided).ok_or(EngineError::NotSignedIn);
        }
        let s = self.session.lock().await.clone().ok_or(EngineError::NotSignedIn)?;
        let fresh = auth::refresh(&self.client, &s.refresh_token, self.now_ms() / 1000).await?;
        self.keep_session(fresh).await
    }

    /// Run `f` with a token; on 401 refresh once and run it again.
    pub(crate) async fn authed<T, F, Fut>(&self, f: F) -> Result<T, RequestError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, RequestError>>,
    {
        let token = match self.session().await {
            Ok(s) => s.access_token,
            Err(EngineError::Request(e)) => return Err(e),
            Err(e) => return Err(RequestError::BadAnswer(e.to_string())),
        };
        match f(token).await {
            Err(e) if e.failure() == Failure::Unauthorized => {
                let fresh = match self.refresh().await {
                    Ok(s) => s.access_token,
                    Err(EngineError::Request(re)) => return Err(re),
                    Err(_) => return Err(e),
                };
                f(fresh).await
            }
            other => other,
        }
    }

    // ---- local data ----

    /// Insert a row locally (seen at once; pushed later). Returns its view.
    pub async fn insert(&self, table: &str, row: &Value) -> Result<RowView, EngineError> {
        // Only an id the app chose is looked up first; an insert under a fresh id waits
        // for no push or pull (see `WriterLock::lock_fresh_insert`).
        let reads_first = self.schema.table(table).ok().and_then(|d| row.get(&d.local_id)).is_some_and(|v| !v.is_null());
        let w = self.local_writer();
        let r = if reads_first {
            let _w = self.writer.lock().await;
            w.insert(table, row, self.now_ms()).await?
        } else {
            let _w = self.writer.lock_fresh_insert().await;
            w.insert(table, row, self.now_ms()).await?
        };
        self.events.changed(vec![table.to_string()], true);
        self.view(&r).ok_or_else(|| StoreError::NotFound(r.local_id.clone()).into())
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
        let _w = self.writer.lock().await;
        let w = self.local_writer();
        let r = w.update(table, local_id, fields, self.now_ms()).await?;
        self.events.changed(vec![table.to_string()], true);
        self.view(&r).ok_or_else(|| StoreError::NotFound(r.local_id.clone()).into())
    }

    /// Delete a row.
    pub async fn delete(&self, table: &str, local_id: &str) -> Result<(), EngineError> {
        let _w = self.writer.lock().await;
        let w = self.local_writer();
        let (mut batch, cancelled) = w.delete_batch(table, local_id, self.now_ms()).await?;
        if cancelled {
            // Children written under a row that never reached the server cannot reach
            // it either: rejected with the reason, in the same batch.
            let outbox = self.store.outbox().await?;
            let reason = format!("its parent {table}/{local_id} was deleted on this device before it reached the server");
            self.reject_unsent_children(table, local_id, &reason, &outbox, &mut Default::default(), &mut batch).await?;
        }
        self.store.apply(batch).await?;
        self.events.changed(vec![table.to_string()], true);
        Ok(())
    }

    /// The local write path, never merging into what a running push read.
    fn local_writer(&self) -> LocalWriter<'_, S> {
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

    /// Rows of a table matching equality filters, ordered and limited. A filter on the
    /// local id reads one row; a filter on a declared index reads through the index;
    /// otherwise the table is scanned.
    pub async fn query(&self, table: &str, q: &Query) -> Result<Vec<RowView>, EngineError> {
        let decl = self.schema.table(table)?;
        let by_local_id = q.filters.iter().find(|(k, _)| *k == decl.local_id);
        let by_index = q.filters.iter().find(|(k, _)| decl.indexes.contains(k));
        let candidates = match (by_local_id, by_index) {
            (Some((_, Value::String(id))), _) => self.store.get_row(table, id).await?.into_iter().collect(),
            (Some(_), _) => vec![],
            (None, Some((col, v))) => self.store.rows_by(table, col, v).await?,
            (None, None) => self.store.scan(table).await?,
        };
        let mut out: Vec<RowView> = candidates
            .iter()
            .filter_map(|r| self.view(r))
            .filter(|v| q.filters.iter().all(|(k, want)| v.row.get(k).unwrap_or(&Value::Null) == want))
            .collect();
        if let Some((col, desc)) = &q.order {
            out.sort_by(|a, b| {
                let o = compare(a.row.get(col), b.row.get(col));
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        if let Some(l) = q.limit {
            out.truncate(l);
        }
        Ok(out)
    }

    /// Pending and rejected counts, the oldest pending write, last sync per table.
    pub async fn status(&self) -> Result<Status, EngineError> {
        let ob = self.store.outbox_summary().await?;
        let mut last_sync = serde_json::Map::new();
        for t in self.schema.tables() {
            if let Some(v) = self.store.meta(&format!("last_sync:{}", t.name)).await? {
                last_sync.insert(t.name.clone(), v);
            }
        }
        let signed_in = match &self.provider {
            Some(p) => p.current().await.map(|t| t.user_id),
            None => self.session.lock().await.as_ref().map(|s| s.user_id.clone()),
        };
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
        let mut overlay = Row::new();
        let mut deleted = false;
        for mut e in es {
            match &e.op {
                OutboxOp::Insert { row } => overlay.extend(row.clone()),
                OutboxOp::Update { fields } => overlay.extend(fields.clone()),
                OutboxOp::Delete => deleted = true,
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

    /// Push, then pull.
    pub async fn sync(&self) -> Result<(crate::push::PushReport, crate::pull::PullReport), EngineError> {
        let push = self.push().await?;
        let pull = self.pull().await?;
        Ok((push, pull))
    }

    pub(crate) fn decl(&self, table: &str) -> Result<&TableDecl, EngineError> {
        Ok(self.schema.table(table)?)
    }

    pub(crate) fn history_line(&self, kind: &str, table: Option<&str>, rows: u64, started_ms: i64, error: Option<String>, detail: Value) -> HistoryEntry {
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

/// Order JSON values for local queries: null first, then numbers, strings, others.
fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    use Value::*;
    match (a.unwrap_or(&Null), b.unwrap_or(&Null)) {
        (Null, Null) => Equal,
        (Null, _) => Less,
        (_, Null) => Greater,
        (Number(x), Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Equal),
        (String(x), String(y)) => x.cmp(y),
        (Bool(x), Bool(y)) => x.cmp(y),
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}
