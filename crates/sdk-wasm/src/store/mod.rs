//! The core's [`Store`] on IndexedDB: one database per replica, every
//! [`apply`](Store::apply) one `readwrite` transaction (all or nothing, and done when
//! the transaction's `complete` event has fired, which is when the browser has written
//! it), reads in `readonly` transactions: a single read joins the transaction of the
//! reads issued with it (see [`read`]).
//!
//! Records keep the same JSON documents the SQLite store keeps, as text in `d`, beside
//! the few fields IndexedDB must see to index them: `t`/`l` (table, local id), `s` (the
//! server id as index text), `ix` (the row's keys in the declared indexes, from the
//! core's [`IndexDef::key`]: ASCII, so IndexedDB's string order is the keys' byte
//! order and an ordered read is a key range of one index). See [`migrations`] for the
//! layout.
//!
//! Connections end under an app: WebKit closes IndexedDB connections of background
//! tabs, and a newer version of the app in another tab asks older connections to close
//! (`versionchange`, which this store obeys at once so the upgrade is never blocked by
//! it). Every operation that finds its connection closed (a new transaction refused
//! with `InvalidStateError`, one in flight aborted with `UnknownError`) opens a new one
//! and runs again, once; that is safe because a transaction that failed applied
//! nothing. Each reopening is counted and told to [`IdbStore::on_reopened`]'s listener
//! with why the old connection ended, for the app's status.

mod at_rest;
mod blobs;
pub mod cipher;
mod idb;
pub mod migrations;
mod reads;
mod records;
mod write;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use js_sys::{Array, Object, Reflect};
use serde_json::Value;
use supasync_core::local_row::LocalRow;
use supasync_core::outbox::OutboxEntry;
use supasync_core::index::{IndexDef, KeyRange};
use supasync_core::store::{Applying, HistoryEntry, OutboxSummary, Store, StoreError, WriteBatch};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{IdbCursorDirection, IdbDatabase, IdbKeyRange, IdbObjectStore, IdbTransaction, IdbTransactionMode};

pub use cipher::StoreCipher;
pub use idb::{delete_database, stored_version, IdbError};
use idb::{commit, committing, issue, request, Opened};
use migrations::*;

/// A replica's store in IndexedDB.
pub struct IdbStore {
    name: String,
    version: u32,
    db: Rc<RefCell<Option<IdbDatabase>>>,
    /// Kept indexes per table; persisted (by name) in `indexed_columns`.
    indexed: RefCell<BTreeMap<String, Vec<IndexDef>>>,
    /// Whether backwards reads may use `getAllRecords` where the browser has it (tests
    /// turn it off to check the path other browsers take).
    records: std::cell::Cell<bool>,
    /// Why the last connection ended, kept until the next one opens.
    lost: Rc<RefCell<Option<String>>>,
    reopened: Reopened,
    /// The keys of an encrypted store (see [`cipher`]); `None`: plaintext.
    cipher: Option<StoreCipher>,
    /// Indexes being built in an encrypted store: writes already keep their keys,
    /// reads wait until [`IdbStore::ensure_index`] has filled them in.
    building: RefCell<BTreeMap<String, Vec<IndexDef>>>,
}

/// How many times the connection was reopened after the browser (or another tab)
/// closed it, and who to tell.
#[derive(Default)]
struct Reopened {
    count: std::cell::Cell<u32>,
    listener: RefCell<Option<Box<dyn Fn(u32, &str)>>>,
}

/// Why an operation's connection was lost, if that is how it failed (see
/// [`IdbError::is_lost_connection`]); other failures are the operation's own.
fn lost_connection(e: &StoreError) -> Option<&str> {
    let StoreError::Io(m) = e else { return None };
    let e = m.strip_prefix("IndexedDB: ")?;
    let name = e.split(':').next()?;
    IdbError::new(name, "").is_lost_connection().then_some(e)
}

impl std::fmt::Debug for IdbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdbStore").field("name", &self.name).field("version", &self.version).finish()
    }
}

/// An IndexedDB failure as a store error, with what the app can do about it.
fn store_err(e: IdbError) -> StoreError {
    match e.name.as_str() {
        "QuotaExceededError" => StoreError::Io(format!(
            "the browser's storage quota for this site is used up ({e}); nothing of this write was stored: free space (or ask for persistent storage) and write again"
        )),
        "NotSupportedError" => StoreError::Io(e.message),
        _ => StoreError::Io(format!("IndexedDB: {e}")),
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn key(parts: &[&str]) -> JsValue {
    parts.iter().map(|p| JsValue::from_str(p)).collect::<Array>().into()
}

/// All keys `[table, *]`: strings sort before arrays, so `[table, []]` bounds them.
fn table_range(table: &str) -> Result<IdbKeyRange, IdbError> {
    let upper: Array = [JsValue::from_str(table), Array::new().into()].into_iter().collect();
    IdbKeyRange::bound(&key(&[table]), &upper).map_err(|e| IdbError::from_js(&e))
}

fn field(rec: &JsValue, name: &str) -> JsValue {
    Reflect::get(rec, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn set(obj: &Object, name: &str, v: &JsValue) {
    // Setting a data property on a plain object cannot throw.
    let _ = Reflect::set(obj, &JsValue::from_str(name), v);
}

/// An `ix` entry: the table and the index's name before the key, so one multi-entry
/// IndexedDB index holds every declared index apart.
fn index_entry(table: &str, index: &str, key: &str) -> String {
    format!("{table}\0{index}\0{key}")
}

impl IdbStore {
    /// Open (or create) the database `name`, upgrading an older layout.
    pub async fn open(name: &str) -> Result<IdbStore, StoreError> {
        IdbStore::open_at_version(name, SCHEMA_VERSION).await
    }

    /// Open at an older layout version: for upgrade tests.
    #[doc(hidden)]
    pub async fn open_at_version(name: &str, version: u32) -> Result<IdbStore, StoreError> {
        IdbStore::open_with(name, version, None, None).await
    }

    /// [`IdbStore::open`], from a connection the page opened while the module compiled
    /// (so the browser's first-open latency overlaps the compile): used if it is this
    /// database at this build's layout, closed otherwise (the store then opens, creates
    /// or upgrades it itself). With `cipher`, the store is encrypted (see [`cipher`]):
    /// a plaintext database is encrypted in place first, and one encrypted with another
    /// key is refused with [`StoreError::Key`]; without it, an encrypted database is
    /// refused the same way.
    pub async fn open_from(name: &str, connection: Option<IdbDatabase>, cipher: Option<StoreCipher>) -> Result<IdbStore, StoreError> {
        IdbStore::open_with(name, SCHEMA_VERSION, connection, cipher).await
    }

    /// [`IdbStore::open`] of an encrypted store (see [`IdbStore::open_from`]).
    pub async fn open_encrypted(name: &str, cipher: StoreCipher) -> Result<IdbStore, StoreError> {
        IdbStore::open_with(name, SCHEMA_VERSION, None, Some(cipher)).await
    }

    async fn open_with(name: &str, version: u32, connection: Option<IdbDatabase>, cipher: Option<StoreCipher>) -> Result<IdbStore, StoreError> {
        let store = IdbStore {
            name: name.to_string(),
            version,
            db: Rc::new(RefCell::new(None)),
            indexed: RefCell::new(BTreeMap::new()),
            records: std::cell::Cell::new(true),
            lost: Rc::new(RefCell::new(None)),
            reopened: Reopened::default(),
            cipher,
            building: RefCell::new(BTreeMap::new()),
        };
        if let Some(db) = connection {
            if db.name() == name && db.version() == f64::from(version) {
                store.adopt(db);
            } else {
                db.close();
            }
        }
        let db = store.connect().await?;
        if version >= 3 {
            store.load_indexed(&db).await.map_err(store_err)?;
        }
        if version >= SCHEMA_VERSION {
            if let Err(e) = store.check_key().await {
                // Refused: let go of the database (a sign-out's wipe waits for every
                // connection to close).
                store.close_connection();
                return Err(e);
            }
        }
        Ok(store)
    }

    /// Read backwards pages as browsers without `getAllRecords` do: for tests.
    #[doc(hidden)]
    pub fn without_get_all_records(self) -> IdbStore {
        self.records.set(false);
        self
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Delete the database `name` (a wiped sign-out). Waits for other connections to
    /// close.
    pub async fn delete(name: &str) -> Result<(), StoreError> {
        delete_database(name).await.map_err(store_err)
    }

    /// Close the connection, as browsers do to background tabs; the next operation
    /// reopens it (and counts it as reopened).
    pub fn close_connection(&self) {
        if let Some(db) = self.db.borrow_mut().take() {
            db.close();
            self.lost.borrow_mut().get_or_insert_with(|| "the connection was closed".into());
        }
    }

    /// Call `listener(times, why)` each time the connection is reopened after it was
    /// lost, with why the old one ended.
    pub fn on_reopened(&self, listener: impl Fn(u32, &str) + 'static) {
        *self.reopened.listener.borrow_mut() = Some(Box::new(listener));
    }

    /// How many times the connection was reopened after it was lost.
    pub fn reopened(&self) -> u32 {
        self.reopened.count.get()
    }

    async fn connect(&self) -> Result<IdbDatabase, StoreError> {
        if let Some(db) = self.db.borrow().as_ref() {
            return Ok(db.clone());
        }
        let db = match idb::open(&self.name, self.version, upgrade).await {
            Ok(Opened::Db(db)) => db,
            Ok(Opened::Blocked) => {
                return Err(StoreError::Io(format!(
                    "IndexedDB database `{}` needs an upgrade, and another tab keeps it open with an older version of the app: reload or close the other tabs of this app",
                    self.name
                )))
            }
            Err(e) if e.name == "VersionError" => {
                let found = stored_version(&self.name).await.unwrap_or(0);
                return Err(StoreError::TooNew { found, supported: SCHEMA_VERSION });
            }
            // Private modes that refuse storage, storage turned off for the site, and
            // opaque origins (sandboxed frames) refuse the open itself.
            Err(e) if matches!(e.name.as_str(), "SecurityError" | "InvalidStateError" | "NotAllowedError") => {
                return Err(StoreError::Io(format!(
                    "IndexedDB cannot be used by this page ({e}): private browsing that refuses storage, storage turned off for this site, or a sandboxed frame; nothing was stored. Pass {{ store: 'memory' }} to openReplica for a replica kept in memory"
                )))
            }
            Err(e) => return Err(store_err(e)),
        };
        self.adopt(db.clone());
        let why = self.lost.borrow_mut().take();
        if let Some(why) = why {
            let n = self.reopened.count.get() + 1;
            self.reopened.count.set(n);
            if let Some(l) = self.reopened.listener.borrow().as_ref() {
                l(n, &why);
            }
        }
        Ok(db)
    }

    /// Use `db` from now on, giving it up when the browser closes it or a newer version
    /// of the app wants to upgrade.
    fn adopt(&self, db: IdbDatabase) {
        // A newer version of the app in another tab wants to upgrade: let it.
        let (cell, lost) = (self.db.clone(), self.lost.clone());
        let on_change = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(db) = cell.borrow_mut().take() {
                db.close();
                *lost.borrow_mut() = Some("another tab asked to upgrade the database (a newer version of the app)".into());
            }
        });
        db.set_onversionchange(Some(on_change.as_ref().unchecked_ref()));
        // The browser closed it (WebKit does so to background tabs; clearing the site's
        // data does too): reopen on next use.
        let (cell, lost, this) = (self.db.clone(), self.lost.clone(), db.clone());
        let on_close = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let mut current = cell.borrow_mut();
            if current.as_ref() == Some(&this) {
                current.take();
            }
            *lost.borrow_mut() = Some("the browser closed the IndexedDB connection".into());
        });
        db.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        // They live as long as the connection, which IndexedDB keeps alive itself.
        on_change.forget();
        on_close.forget();
        *self.db.borrow_mut() = Some(db);
    }

    /// The name of `index` on `table` if it is kept (built), or why not.
    fn kept_index(&self, table: &str, index: &IndexDef) -> Result<String, StoreError> {
        if self.indexed.borrow().get(table).is_some_and(|kept| kept.contains(index)) {
            Ok(index.name())
        } else {
            Err(StoreError::NotFound(format!("no index {} on {table}", index.name())))
        }
    }

    /// Run `op` on the open connection; if the connection turns out closed, reopen and
    /// run it once more.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(IdbDatabase) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let db = self.connect().await?;
        match op(db.clone()).await {
            Err(e) if lost_connection(&e).is_some() => {
                // Only forget the connection that failed (another call may have reopened).
                let stale = self.db.borrow().as_ref().map(|d| d == &db).unwrap_or(false);
                if stale {
                    self.db.borrow_mut().take();
                    db.close();
                    let why = format!("the IndexedDB connection was lost ({})", lost_connection(&e).unwrap_or_default());
                    self.lost.borrow_mut().get_or_insert(why);
                }
                let db = self.connect().await?;
                op(db).await
            }
            other => other,
        }
    }

    async fn load_indexed(&self, db: &IdbDatabase) -> Result<(), IdbError> {
        let t = tx(db, &[INDEXED], IdbTransactionMode::Readonly)?;
        let keys = request(issue(obj_store(&t, INDEXED)?.get_all_keys())?).await?;
        let mut m = self.indexed.borrow_mut();
        for k in Array::from(&keys).iter() {
            let k = Array::from(&k);
            // Every name is one `IndexDef::name` made: upgrade 5 cleared the
            // per-column names of older layouts.
            if let (Some(t), Some(def)) = (k.get(0).as_string(), k.get(1).as_string().and_then(|n| IndexDef::parse(&n))) {
                m.entry(t).or_default().push(def);
            }
        }
        Ok(())
    }
}

fn upgrade(db: &IdbDatabase, t: &IdbTransaction, old: u32, new: u32) -> Result<(), JsValue> {
    migrations::upgrade(db, t, old, new)
}

fn tx(db: &IdbDatabase, stores: &[&str], mode: IdbTransactionMode) -> Result<IdbTransaction, IdbError> {
    if mode == IdbTransactionMode::Readwrite {
        // A read issued from now on must see this write: it gets a transaction
        // created after this one, which IndexedDB runs after it.
        SHARED_READ.with(|c| c.borrow_mut().take());
    }
    let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
    db.transaction_with_str_sequence_and_mode(&names, mode).map_err(|e| IdbError::from_js(&e))
}

/// The stores a shared read transaction covers (see [`read`]): the ones a Realtime
/// change, a write and the status read together.
const SHARED_READ_STORES: [&str; 3] = [ROWS, META, OUTBOX];

thread_local! {
    /// The read-only transaction the last single read was issued in, and its
    /// connection (see [`read`]). wasm runs on one thread: this is the page's.
    static SHARED_READ: RefCell<Option<(IdbDatabase, IdbTransaction)>> = const { RefCell::new(None) };
}

fn obj_store(t: &IdbTransaction, name: &str) -> Result<IdbObjectStore, IdbError> {
    t.object_store(name).map_err(|e| IdbError::from_js(&e))
}

/// One read, in the read-only transaction of the reads issued with it.
///
/// A transaction is a round trip of its own to the browser's storage (in Chromium, to
/// another process): a Realtime change needs four reads at once (the row by local and
/// by server id, the pull cursor, its parent), and as four transactions they were most
/// of its latency. So a read joins the last read's transaction while that one still
/// takes requests (IndexedDB's rule: in the turn that created it, or in a callback of
/// one of its requests) and otherwise starts one over [`SHARED_READ_STORES`]. What a
/// read sees is unchanged: [`tx`] drops the shared transaction whenever a write
/// begins, so a read issued after a write is ordered after it, and one issued before
/// it was before it anyway. A failed read does not end the transaction for the others
/// ([`request`] handles its error event).
async fn read(db: &IdbDatabase, store: &str, f: impl Fn(&IdbObjectStore) -> Result<web_sys::IdbRequest, JsValue>) -> Result<JsValue, StoreError> {
    let req = if SHARED_READ_STORES.contains(&store) {
        let shared = SHARED_READ.with(|c| c.borrow().as_ref().filter(|(d, _)| d == db).map(|(_, t)| t.clone()));
        // Refused when it no longer takes requests (TransactionInactiveError,
        // InvalidStateError): then a new one.
        match shared.and_then(|t| t.object_store(store).and_then(|s| f(&s)).ok()) {
            Some(req) => req,
            None => {
                let t = tx(db, &SHARED_READ_STORES, IdbTransactionMode::Readonly).map_err(store_err)?;
                let req = issue(f(&obj_store(&t, store).map_err(store_err)?))?;
                SHARED_READ.with(|c| *c.borrow_mut() = Some((db.clone(), t)));
                req
            }
        }
    } else {
        let t = tx(db, &[store], IdbTransactionMode::Readonly).map_err(store_err)?;
        issue(f(&obj_store(&t, store).map_err(store_err)?))?
    };
    request(req).await.map_err(store_err)
}

supasync_core::maybe_async_trait! {
    impl Store for IdbStore {
        async fn get_row(&self, table: &str, local_id: &str) -> Result<Option<LocalRow>, StoreError> {
            self.run(|db| async move {
                let rec = read(&db, ROWS, |s| s.get(&key(&[table, local_id]))).await?;
                Ok(self.rows_of(&[rec]).await?.pop().flatten())
            }).await
        }

        async fn get_rows(&self, table: &str, local_ids: &[String]) -> Result<Vec<Option<LocalRow>>, StoreError> {
            if local_ids.is_empty() {
                return Ok(vec![]);
            }
            self.run(|db| async move {
                // One transaction: every get issued at once, answered in order.
                let t = tx(&db, &[ROWS], IdbTransactionMode::Readonly).map_err(store_err)?;
                let s = obj_store(&t, ROWS).map_err(store_err)?;
                let reqs = local_ids
                    .iter()
                    .map(|l| issue(s.get(&key(&[table, l]))).map(request))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut recs = Vec::with_capacity(reqs.len());
                for req in reqs {
                    recs.push(req.await.map_err(store_err)?);
                }
                self.rows_of(&recs).await
            }).await
        }

        async fn find_by_server_id(&self, table: &str, server_id: &Value) -> Result<Option<LocalRow>, StoreError> {
            let sid = self.server_id_text(server_id);
            self.run(|db| { let sid = sid.clone(); async move {
                let rec = read(&db, ROWS, |s| s.index(ROWS_BY_SERVER_ID)?.get(&key(&[table, &sid]))).await?;
                Ok(self.rows_of(&[rec]).await?.pop().flatten())
            }}).await
        }

        async fn scan(&self, table: &str) -> Result<Vec<LocalRow>, StoreError> {
            self.run(|db| async move {
                let range = table_range(table).map_err(store_err)?;
                let all = read(&db, ROWS, |s| s.get_all_with_key(&range)).await?;
                self.all_rows_of(&Array::from(&all)).await
            }).await
        }

        async fn ensure_index(&self, table: &str, index: &IndexDef) -> Result<(), StoreError> {
            if self.indexed.borrow().get(table).is_some_and(|kept| kept.contains(index)) {
                return Ok(());
            }
            if self.cipher.is_some() {
                return self.build_sealed_index(table, index).await;
            }
            let mut kept = self.indexed.borrow().get(table).cloned().unwrap_or_default();
            kept.push(index.clone());
            let (kept, name) = (&kept, index.name());
            let name = &name;
            self.run(|db| async move {
                let t = tx(&db, &[ROWS, INDEXED], IdbTransactionMode::Readwrite).map_err(store_err)?;
                let rows = obj_store(&t, ROWS).map_err(store_err)?;
                issue(obj_store(&t, INDEXED).map_err(store_err)?.put_with_key(&JsValue::from(1), &key(&[table, name])))?;
                let range = table_range(table).map_err(store_err)?;
                let all = request(issue(rows.get_all_with_key(&range))?).await.map_err(store_err)?;
                // Plaintext: nothing here waits on anything but IndexedDB.
                let held = self.all_rows_of(&Array::from(&all)).await?;
                let with_it = BTreeMap::from([(table.to_string(), kept.clone())]);
                for rec in self.row_records(held.iter().map(|r| (r, None)), &with_it, None)?.iter() {
                    issue(rows.put(&rec))?;
                }
                commit(&t).await.map_err(store_err)
            }).await?;
            self.indexed.borrow_mut().insert(table.to_string(), kept.clone());
            Ok(())
        }

        async fn indexes(&self, table: &str) -> Result<Vec<IndexDef>, StoreError> {
            Ok(self.indexed.borrow().get(table).cloned().unwrap_or_default())
        }

        async fn rows_in_index(&self, table: &str, index: &IndexDef, range: &KeyRange, descending: bool, limit: Option<usize>) -> Result<Vec<LocalRow>, StoreError> {
            let name = self.kept_index(table, index)?;
            let ((lower, lower_open), (upper, upper_open)) = range.closed();
            let bounds = ((index_entry(table, &name, &lower), lower_open), (index_entry(table, &name, &upper), upper_open));
            let bounds = &bounds;
            let records = self.records.get();
            let recs = self.run(|db| reads::rows_in_index(db, &bounds.0, &bounds.1, descending, limit, records)).await?;
            Ok(self.rows_of(&recs).await?.into_iter().flatten().collect())
        }

        async fn count_in_index(&self, table: &str, index: &IndexDef, ranges: &[KeyRange]) -> Result<Vec<usize>, StoreError> {
            let name = self.kept_index(table, index)?;
            let bounds: Vec<(reads::Bound, reads::Bound)> = ranges
                .iter()
                .map(|r| {
                    let ((lower, lower_open), (upper, upper_open)) = r.closed();
                    ((index_entry(table, &name, &lower), lower_open), (index_entry(table, &name, &upper), upper_open))
                })
                .collect();
            let bounds = &bounds;
            self.run(|db| reads::count_in_index(db, bounds)).await
        }

        async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
            self.run(|db| async move {
                let all = read(&db, OUTBOX, |s| s.get_all()).await?;
                self.outbox_of(&Array::from(&all).iter().collect::<Vec<_>>()).await
            }).await
        }

        async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
            if self.version < 4 {
                return Ok(OutboxSummary::of(&self.outbox().await?));
            }
            self.run(|db| async move {
                let t = tx(&db, &[OUTBOX], IdbTransactionMode::Readonly).map_err(store_err)?;
                let s = obj_store(&t, OUTBOX).map_err(store_err)?;
                let all = request(issue(s.count())?);
                let refused = request(issue(s.index(OUTBOX_REJECTED).and_then(|i| i.count()))?);
                // The oldest waiting entry is almost always the first: read that one
                // alone, with the counts (a cursor would have Firefox decode the next 64
                // records ahead), and only if it was refused walk on past refused ones.
                let one = request(issue(s.get_all_with_key_and_limit(&JsValue::UNDEFINED, 1))?);
                let (all, refused) = (all.await?.as_f64().unwrap_or(0.0) as usize, refused.await?.as_f64().unwrap_or(0.0) as usize);
                let one = Array::from(&one.await?).get(0);
                let mut oldest = None;
                let mut first = (all > refused && !one.is_undefined() && field(&one, "r").is_undefined()).then_some(one);
                if all > refused && first.is_none() {
                    let req = issue(s.open_cursor())?;
                    loop {
                        let c = request(req.clone()).await?;
                        let Some(c) = c.dyn_ref::<web_sys::IdbCursorWithValue>() else { break };
                        let rec = c.value().map_err(|e| IdbError::from_js(&e))?;
                        if field(&rec, "r").is_undefined() {
                            first = Some(rec);
                            break;
                        }
                        c.continue_().map_err(|e| IdbError::from_js(&e))?;
                    }
                }
                // Opened once the walk is over (a sealed entry's opening waits on
                // WebCrypto, which would end the transaction under the cursor).
                if let Some(rec) = first {
                    oldest = self.outbox_of(&[rec]).await?.pop().map(|e| e.created_at_ms);
                }
                Ok(OutboxSummary { pending: all - refused, rejected: refused, oldest_pending_ms: oldest })
            }).await
        }

        async fn last_outbox_entry(&self, table: &str, local_id: &str) -> Result<Option<OutboxEntry>, StoreError> {
            self.run(|db| async move {
                let all = read(&db, OUTBOX, |s| s.index(OUTBOX_BY_ROW)?.get_all_with_key(&key(&[table, local_id]))).await?;
                let all = Array::from(&all);
                match all.length() {
                    0 => Ok(None),
                    n => Ok(self.outbox_of(&[all.get(n - 1)]).await?.pop()),
                }
            }).await
        }

        async fn row_outbox(&self, table: &str, local_id: &str) -> Result<Vec<OutboxEntry>, StoreError> {
            self.run(|db| async move {
                let all = read(&db, OUTBOX, |s| s.index(OUTBOX_BY_ROW)?.get_all_with_key(&key(&[table, local_id]))).await?;
                self.outbox_of(&Array::from(&all).to_vec()).await
            }).await
        }

        async fn meta(&self, name: &str) -> Result<Option<Value>, StoreError> {
            self.run(|db| async move {
                let v = read(&db, META, |s| s.get(&JsValue::from_str(name))).await?;
                Ok(self.metas_of(&[name], &[v]).await?.pop().flatten())
            }).await
        }

        async fn metas(&self, keys: &[String]) -> Result<Vec<Option<Value>>, StoreError> {
            self.run(|db| async move {
                let values = reads::metas(db, keys).await?;
                self.metas_of(&keys.iter().map(String::as_str).collect::<Vec<_>>(), &values).await
            }).await
        }

        async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
            self.run(|db| async move {
                let t = tx(&db, &[HISTORY], IdbTransactionMode::Readonly).map_err(store_err)?;
                let s = obj_store(&t, HISTORY).map_err(store_err)?;
                let req = issue(s.open_cursor_with_range_and_direction(&JsValue::UNDEFINED, IdbCursorDirection::Prev))?;
                let mut recs = Vec::new();
                while recs.len() < limit {
                    let c = request(req.clone()).await.map_err(store_err)?;
                    let Some(c) = c.dyn_ref::<web_sys::IdbCursorWithValue>() else { break };
                    recs.push(c.value().map_err(|e| store_err(IdbError::from_js(&e)))?);
                    if recs.len() < limit {
                        c.continue_().map_err(|e| store_err(IdbError::from_js(&e)))?;
                    }
                }
                self.history_of(&recs).await
            }).await
        }

        async fn read_blob(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Option<Vec<u8>>, StoreError> {
            self.run(|db| async move { blobs::read(self, &db, key, offset, len).await }).await
        }

        async fn blob_len(&self, key: &str) -> Result<Option<u64>, StoreError> {
            self.run(|db| async move { blobs::len(&db, key).await }).await
        }

        async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
            if batch.is_empty() {
                return Ok(());
            }
            let batch = &batch;
            let sealed = self.seal(batch).await?;
            let sealed = sealed.as_ref();
            self.run(|db| async move { self.apply_once(&db, batch, sealed).await }).await
        }

        /// The transaction commits in the background. A connection lost while the
        /// requests are issued is reopened and the batch issued again, as in `apply`;
        /// lost while it commits, the returned future fails and the caller starts over
        /// (a pull re-walks the table: its cursor had not moved).
        async fn apply_queued(&self, batch: WriteBatch) -> Result<Applying, StoreError> {
            if batch.is_empty() {
                return Ok(Box::pin(std::future::ready(Ok(()))));
            }
            let batch = &batch;
            let sealed = self.seal(batch).await?;
            let sealed = sealed.as_ref();
            self.run(|db| async move { self.issue_batch(&db, batch, sealed).await }).await
        }
    }
}


impl From<IdbError> for StoreError {
    fn from(e: IdbError) -> StoreError {
        store_err(e)
    }
}
