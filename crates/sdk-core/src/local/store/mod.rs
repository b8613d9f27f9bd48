//! Persistence behind one small trait, implemented per platform: SQLite natively
//! (`supasync-native`), IndexedDB in the browser (`supasync-wasm`), memory here for the
//! engine's own tests. Every store runs the same test suite ([`store_suite!`]).
//!
//! Writes go through [`Store::apply`], which applies a whole [`WriteBatch`] or nothing:
//! that is how a row change and its outbox entry (or a pulled page and its cursor) land
//! together. Reads are plain lookups; the engine serialises writes (one writer).

mod memory;
#[doc(hidden)]
pub mod suite;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use memory::MemoryStore;

use crate::local::index::{visible, IndexDef, KeyRange};
use crate::local::local_row::LocalRow;
pub use crate::local::new_row::NewRow;
use crate::platform::maybe_send::{MaybeSend, MaybeSync};
pub use crate::local::outbox::NewOutboxEntry;
use crate::local::outbox::OutboxEntry;

/// What a store can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The storage itself failed (disk, quota, a closed database).
    #[error("storage failed: {0}")]
    Io(String),
    /// What is stored cannot be read back (a corrupt or foreign file).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A batch names something that is not there (nothing of the batch was applied).
    #[error("not found: {0}")]
    NotFound(String),
    /// A batch adds a new row under a key that is taken (nothing of it was applied).
    #[error("already stored: {0}")]
    Exists(String),
    /// An encrypted store and the key given do not go together: a wrong or missing
    /// key, or a key that is not a key (nothing was read or changed).
    #[error("encryption key: {0}")]
    Key(String),
    /// The store was written by a newer version of supasync.
    #[error("the store's format version {found} is newer than this build understands ({supported})")]
    TooNew { found: u32, supported: u32 },
}

/// The highest outbox `seq` a push may have sent (0 if none): see
/// [`SENT_THROUGH`](crate::local::outbox::SENT_THROUGH).
pub async fn sent_through<S: Store + ?Sized>(store: &S) -> Result<u64, StoreError> {
    Ok(store.meta(crate::local::outbox::SENT_THROUGH).await?.and_then(|v| v.as_u64()).unwrap_or(0))
}

/// One line of the sync history (what happened, when, how many rows, how long, errors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Assigned by the store, increasing.
    pub id: u64,
    pub at_ms: i64,
    /// `push`, `pull`, `reject`, `conflict`, …
    pub kind: String,
    pub table: Option<String>,
    pub rows: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Anything else worth keeping (e.g. the overwritten value of a conflict).
    pub detail: Value,
}

/// What the status line needs of the outbox, without reading every entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxSummary {
    /// Entries waiting to be pushed (not refused).
    pub pending: usize,
    /// Entries the server refused.
    pub rejected: usize,
    /// When the oldest waiting entry was written.
    pub oldest_pending_ms: Option<i64>,
}

impl OutboxSummary {
    /// The summary of a whole outbox (what every store's answer must equal).
    pub fn of(outbox: &[OutboxEntry]) -> OutboxSummary {
        let pending = outbox.iter().filter(|e| e.rejected.is_none());
        OutboxSummary {
            pending: pending.clone().count(),
            rejected: outbox.iter().filter(|e| e.rejected.is_some()).count(),
            oldest_pending_ms: pending.map(|e| e.created_at_ms).min(),
        }
    }
}

/// Everything one atomic write changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    /// Rows to store, replacing what is stored under their keys.
    pub put_rows: Vec<LocalRow>,
    /// Rows new to the store (a restored page): a store may write them without looking
    /// for an old version or its index entries. One whose key is taken fails the batch
    /// with [`StoreError::Exists`]. A restored row may come as the server's text
    /// ([`NewRow::mirror_json`]).
    pub new_rows: Vec<NewRow>,
    pub delete_rows: Vec<(String, String)>,
    pub add_outbox: Vec<NewOutboxEntry>,
    /// Replace existing entries (matched by `seq`; a missing one fails the batch).
    pub put_outbox: Vec<OutboxEntry>,
    pub delete_outbox: Vec<u64>,
    /// Key/value metadata: cursors, the session, settings. `None` deletes.
    pub meta: Vec<(String, Option<Value>)>,
    /// History lines; `id` is ignored and assigned by the store.
    pub history: Vec<HistoryEntry>,
    /// Files' bytes to keep, by key ([`crate::local::files::blob_key`]), replacing
    /// what is kept under the key: with the row and outbox entry of their upload, so a
    /// file is queued with its bytes or not at all.
    pub put_blobs: Vec<(String, Vec<u8>)>,
    /// Files' bytes to drop (missing ones are fine).
    pub delete_blobs: Vec<String>,
}

impl WriteBatch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.put_rows.is_empty()
            && self.new_rows.is_empty()
            && self.delete_rows.is_empty()
            && self.add_outbox.is_empty()
            && self.put_outbox.is_empty()
            && self.delete_outbox.is_empty()
            && self.meta.is_empty()
            && self.history.is_empty()
            && self.put_blobs.is_empty()
            && self.delete_blobs.is_empty()
    }
}

/// A value as lookup text: how stores key server ids, and what [`Store::rows_by`]
/// compares.
pub fn index_value(value: &Value) -> String {
    value.to_string()
}

crate::maybe_async_trait! {
    /// A device's local database for one user.
    pub trait Store: MaybeSend + MaybeSync {
        /// One row by its local id.
        async fn get_row(&self, table: &str, local_id: &str) -> Result<Option<LocalRow>, StoreError>;
        /// Several rows by local id (in the order asked, `None` where missing). Stores
        /// that pay per read (IndexedDB: one transaction each) answer in one read;
        /// a pulled page asks for all its rows at once.
        async fn get_rows(&self, table: &str, local_ids: &[String]) -> Result<Vec<Option<LocalRow>>, StoreError> {
            let mut out = Vec::with_capacity(local_ids.len());
            for l in local_ids {
                out.push(self.get_row(table, l).await?);
            }
            Ok(out)
        }
        /// The row whose server id is `server_id` (the id map, server → local).
        async fn find_by_server_id(&self, table: &str, server_id: &Value) -> Result<Option<LocalRow>, StoreError>;
        /// Every row of a table, in local-id order.
        async fn scan(&self, table: &str) -> Result<Vec<LocalRow>, StoreError>;
        /// Keep `index` of `table` from now on (idempotent; rows already stored are
        /// indexed at once). Indexes survive reopening a persistent store.
        async fn ensure_index(&self, table: &str, index: &IndexDef) -> Result<(), StoreError>;
        /// The indexes kept for `table`.
        async fn indexes(&self, table: &str) -> Result<Vec<IndexDef>, StoreError>;
        /// The visible rows whose key in `index` ([`IndexDef::key`]) is in `range`,
        /// ordered by (key, local id), or the reverse when `descending`; at most
        /// `limit` of them. An index that is not kept is `NotFound`, never a silent scan.
        async fn rows_in_index(&self, table: &str, index: &IndexDef, range: &KeyRange, descending: bool, limit: Option<usize>) -> Result<Vec<LocalRow>, StoreError>;
        /// How many rows [`Store::rows_in_index`] would give for each of `ranges`
        /// (`messages(count)` for a page of conversations). Stores answer from the
        /// index alone, in one read where they can.
        async fn count_in_index(&self, table: &str, index: &IndexDef, ranges: &[KeyRange]) -> Result<Vec<usize>, StoreError> {
            let mut out = Vec::with_capacity(ranges.len());
            for r in ranges {
                out.push(self.rows_in_index(table, index, r, false, None).await?.len());
            }
            Ok(out)
        }
        /// The rows whose visible `column` (absent counts as null) equals `value` as
        /// JSON, in local-id order, through the narrowest index that starts with
        /// `column`. A column no index starts with is `NotFound`, never a silent scan.
        async fn rows_by(&self, table: &str, column: &str, value: &Value) -> Result<Vec<LocalRow>, StoreError> {
            let index = self
                .indexes(table)
                .await?
                .into_iter()
                .filter(|i| i.parts()[0].name == column)
                .min_by_key(|i| i.parts().len())
                .ok_or_else(|| StoreError::NotFound(format!("no index on {table}.{column}")))?;
            let want = index_value(value);
            let range = KeyRange::prefix(&index.prefix(&[value]));
            let mut rows: Vec<LocalRow> = self
                .rows_in_index(table, &index, &range, false, None)
                .await?
                .into_iter()
                .filter(|r| visible(r, column).is_some_and(|v| index_value(v.unwrap_or(&Value::Null)) == want))
                .collect();
            rows.sort_by(|a, b| a.local_id.cmp(&b.local_id));
            Ok(rows)
        }
        /// The outbox in `seq` order.
        async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError>;
        /// Counts for the status line. Asked after every write while live, so stores
        /// where reading the whole outbox is slow (IndexedDB) answer from indexes.
        async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
            Ok(OutboxSummary::of(&self.outbox().await?))
        }
        /// The newest outbox entry of one row (what a new write coalesces with).
        async fn last_outbox_entry(&self, table: &str, local_id: &str) -> Result<Option<OutboxEntry>, StoreError>;
        /// One row's outbox entries in `seq` order (what a server delete of the row
        /// settles, without reading every waiting write).
        async fn row_outbox(&self, table: &str, local_id: &str) -> Result<Vec<OutboxEntry>, StoreError> {
            Ok(self.outbox().await?.into_iter().filter(|e| e.table == table && e.local_id == local_id).collect())
        }
        /// A metadata value.
        async fn meta(&self, key: &str) -> Result<Option<Value>, StoreError>;
        /// Several metadata values, in the order of `keys` (the status reads one per
        /// table: stores where each read is a round trip, IndexedDB, read them in one).
        async fn metas(&self, keys: &[String]) -> Result<Vec<Option<Value>>, StoreError> {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                out.push(self.meta(k).await?);
            }
            Ok(out)
        }
        /// The newest `limit` history lines, newest first.
        async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;
        /// Part of a file's bytes kept under `key`: from `offset`, at most `len` bytes
        /// (`None`: to the end). `None` when nothing is kept under the key. An upload
        /// reads a large file a chunk at a time, so memory stays flat in its size.
        async fn read_blob(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Option<Vec<u8>>, StoreError>;
        /// How many bytes are kept under `key` (`None`: nothing is).
        async fn blob_len(&self, key: &str) -> Result<Option<u64>, StoreError>;
        /// Apply a whole batch, or nothing of it.
        async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError>;
        /// [`Store::apply`], handed over without waiting until it is durable: returns
        /// once the store has the batch, with a future that ends when it is applied
        /// (or failed, and then nothing of it is). What is read or written after this
        /// call comes after the batch (it sees all of it or, if it failed, none), and
        /// batches handed over one after another are applied in that order; one that
        /// fails does not stop those after it (the caller decides what they mean
        /// without it: a pull's cursor, say, moves only once every page is applied).
        /// A store whose writes are done when `apply` returns (SQLite, memory) keeps
        /// this default; IndexedDB commits in the background, so a restore builds its
        /// next page while the last one commits.
        async fn apply_queued(&self, batch: WriteBatch) -> Result<Applying, StoreError> {
            self.apply(batch).await?;
            Ok(Box::pin(std::future::ready(Ok(()))))
        }

        /// A restore is about to fill `table`, of which this device holds nothing, with
        /// about `expected_rows` rows (the server's count): the store may keep the
        /// table's lookups by server id aside until [`Store::filled`] and build them then
        /// in one go, in order (kept as rows come, a server id index is written at random
        /// places, and its pages are written again with every page of rows: at a million
        /// rows that was most of a restore's time, and at 20k rows half the store's).
        /// [`Store::find_by_server_id`] must still answer for the table meanwhile, and
        /// after a crash. Stores without such upkeep keep this default.
        async fn filling(&self, _table: &str, _expected_rows: u64) -> Result<(), StoreError> {
            Ok(())
        }

        /// The walk that filled `table` is over (called after every walk of a table,
        /// so that a fill a crash cut short is finished too): lookups kept aside by
        /// [`Store::filling`] are built. Called without the writer lock: a store that
        /// builds them in several steps lets the app's writes in between (and a new row
        /// meanwhile must still be found once this returns).
        async fn filled(&self, _table: &str) -> Result<(), StoreError> {
            Ok(())
        }
    }
}

/// A batch on its way into the store ([`Store::apply_queued`]): ends when it is applied.
pub type Applying = crate::platform::maybe_send::BoxFuture<Result<(), StoreError>>;
