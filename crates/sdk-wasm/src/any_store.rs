//! The store a browser replica runs on, chosen at open: IndexedDB, or memory when the
//! app asks for it (tests, server-side rendering, Node without IndexedDB). One enum
//! rather than a type parameter keeps the exported JavaScript classes concrete.

use serde_json::Value;
use supasync_core::index::{IndexDef, KeyRange};
use supasync_core::local_row::LocalRow;
use supasync_core::outbox::OutboxEntry;
use supasync_core::store::{Applying, HistoryEntry, MemoryStore, OutboxSummary, Store, StoreError, WriteBatch};

use crate::IdbStore;

pub enum AnyStore {
    Idb(IdbStore),
    Memory(MemoryStore),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Idb($s) => $e,
            AnyStore::Memory($s) => $e,
        }
    };
}

supasync_core::maybe_async_trait! {
    impl Store for AnyStore {
        async fn get_row(&self, table: &str, local_id: &str) -> Result<Option<LocalRow>, StoreError> {
            each!(self, s => s.get_row(table, local_id).await)
        }
        async fn get_rows(&self, table: &str, local_ids: &[String]) -> Result<Vec<Option<LocalRow>>, StoreError> {
            each!(self, s => s.get_rows(table, local_ids).await)
        }
        async fn find_by_server_id(&self, table: &str, server_id: &Value) -> Result<Option<LocalRow>, StoreError> {
            each!(self, s => s.find_by_server_id(table, server_id).await)
        }
        async fn scan(&self, table: &str) -> Result<Vec<LocalRow>, StoreError> {
            each!(self, s => s.scan(table).await)
        }
        async fn ensure_index(&self, table: &str, index: &IndexDef) -> Result<(), StoreError> {
            each!(self, s => s.ensure_index(table, index).await)
        }
        async fn indexes(&self, table: &str) -> Result<Vec<IndexDef>, StoreError> {
            each!(self, s => s.indexes(table).await)
        }
        async fn rows_in_index(&self, table: &str, index: &IndexDef, range: &KeyRange, descending: bool, limit: Option<usize>) -> Result<Vec<LocalRow>, StoreError> {
            each!(self, s => s.rows_in_index(table, index, range, descending, limit).await)
        }
        async fn count_in_index(&self, table: &str, index: &IndexDef, ranges: &[KeyRange]) -> Result<Vec<usize>, StoreError> {
            each!(self, s => s.count_in_index(table, index, ranges).await)
        }
        async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
            each!(self, s => s.outbox().await)
        }
        async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
            each!(self, s => s.outbox_summary().await)
        }
        async fn last_outbox_entry(&self, table: &str, local_id: &str) -> Result<Option<OutboxEntry>, StoreError> {
            each!(self, s => s.last_outbox_entry(table, local_id).await)
        }

        async fn row_outbox(&self, table: &str, local_id: &str) -> Result<Vec<OutboxEntry>, StoreError> {
            each!(self, s => s.row_outbox(table, local_id).await)
        }
        async fn meta(&self, key: &str) -> Result<Option<Value>, StoreError> {
            each!(self, s => s.meta(key).await)
        }
        async fn metas(&self, keys: &[String]) -> Result<Vec<Option<Value>>, StoreError> {
            each!(self, s => s.metas(keys).await)
        }
        async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
            each!(self, s => s.history(limit).await)
        }
        async fn read_blob(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Option<Vec<u8>>, StoreError> {
            each!(self, s => s.read_blob(key, offset, len).await)
        }
        async fn blob_len(&self, key: &str) -> Result<Option<u64>, StoreError> {
            each!(self, s => s.blob_len(key).await)
        }
        async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
            each!(self, s => s.apply(batch).await)
        }
        async fn apply_queued(&self, batch: WriteBatch) -> Result<Applying, StoreError> {
            each!(self, s => s.apply_queued(batch).await)
        }
    }
}
