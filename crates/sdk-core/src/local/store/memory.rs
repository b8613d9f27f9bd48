//! The in-memory store: for the engine's unit tests and as the reference the other
//! stores are held to by the shared suite. Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use super::{HistoryEntry, Store, StoreError, WriteBatch};
use crate::local::index::{IndexDef, KeyRange};
use crate::local::local_row::LocalRow;
use crate::local::outbox::OutboxEntry;

#[derive(Default)]
struct Data {
    rows: BTreeMap<(String, String), LocalRow>,
    outbox: BTreeMap<u64, OutboxEntry>,
    next_seq: u64,
    meta: BTreeMap<String, Value>,
    history: Vec<HistoryEntry>,
    /// Kept indexes per table.
    indexed: BTreeMap<String, Vec<IndexDef>>,
    blobs: BTreeMap<String, Vec<u8>>,
}

/// A store in memory.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
    /// Rows handed out by reads, for tests that check how much a query reads.
    rows_read: AtomicUsize,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many rows reads have handed out so far (`get_row`, `scan`,
    /// `rows_in_index`).
    pub fn rows_read(&self) -> usize {
        self.rows_read.load(Ordering::Relaxed)
    }

    fn counted(&self, rows: Vec<LocalRow>) -> Vec<LocalRow> {
        self.rows_read.fetch_add(rows.len(), Ordering::Relaxed);
        rows
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Data>, StoreError> {
        self.data.lock().map_err(|_| StoreError::Io("memory store lock poisoned".into()))
    }
}

crate::maybe_async_trait! {
    impl Store for MemoryStore {
        async fn get_row(&self, table: &str, local_id: &str) -> Result<Option<LocalRow>, StoreError> {
            let row = self.lock()?.rows.get(&(table.to_string(), local_id.to_string())).cloned();
            self.rows_read.fetch_add(row.is_some() as usize, Ordering::Relaxed);
            Ok(row)
        }

        async fn find_by_server_id(&self, table: &str, server_id: &Value) -> Result<Option<LocalRow>, StoreError> {
            Ok(self
                .lock()?
                .rows
                .values()
                .find(|r| r.table == table && r.server_id.as_ref() == Some(server_id))
                .cloned())
        }

        async fn scan(&self, table: &str) -> Result<Vec<LocalRow>, StoreError> {
            let rows = self.lock()?.rows.values().filter(|r| r.table == table).cloned().collect();
            Ok(self.counted(rows))
        }

        async fn ensure_index(&self, table: &str, index: &IndexDef) -> Result<(), StoreError> {
            let mut d = self.lock()?;
            let kept = d.indexed.entry(table.to_string()).or_default();
            if !kept.contains(index) {
                kept.push(index.clone());
            }
            Ok(())
        }

        async fn indexes(&self, table: &str) -> Result<Vec<IndexDef>, StoreError> {
            Ok(self.lock()?.indexed.get(table).cloned().unwrap_or_default())
        }

        async fn rows_in_index(&self, table: &str, index: &IndexDef, range: &KeyRange, descending: bool, limit: Option<usize>) -> Result<Vec<LocalRow>, StoreError> {
            let d = self.lock()?;
            if !d.indexed.get(table).is_some_and(|kept| kept.contains(index)) {
                return Err(StoreError::NotFound(format!("no index {} on {table}", index.name())));
            }
            // The reference store answers by scanning and sorting; what it answers is
            // the contract.
            let mut found: Vec<(String, &LocalRow)> = d
                .rows
                .values()
                .filter(|r| r.table == table)
                .filter_map(|r| index.key(r).filter(|k| range.contains(k)).map(|k| (k, r)))
                .collect();
            found.sort_by(|a, b| (&a.0, &a.1.local_id).cmp(&(&b.0, &b.1.local_id)));
            if descending {
                found.reverse();
            }
            let rows = found.into_iter().take(limit.unwrap_or(usize::MAX)).map(|(_, r)| r.clone()).collect();
            Ok(self.counted(rows))
        }

        async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
            Ok(self.lock()?.outbox.values().cloned().collect())
        }

        async fn last_outbox_entry(&self, table: &str, local_id: &str) -> Result<Option<OutboxEntry>, StoreError> {
            Ok(self
                .lock()?
                .outbox
                .values()
                .rev()
                .find(|e| e.table == table && e.local_id == local_id)
                .cloned())
        }

        async fn meta(&self, key: &str) -> Result<Option<Value>, StoreError> {
            Ok(self.lock()?.meta.get(key).cloned())
        }

        async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
            Ok(self.lock()?.history.iter().rev().take(limit).cloned().collect())
        }

        async fn read_blob(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.lock()?.blobs.get(key).map(|b| {
                let start = (offset as usize).min(b.len());
                let end = len.map_or(b.len(), |l| start.saturating_add(l as usize).min(b.len()));
                b[start..end].to_vec()
            }))
        }

        async fn blob_len(&self, key: &str) -> Result<Option<u64>, StoreError> {
            Ok(self.lock()?.blobs.get(key).map(|b| b.len() as u64))
        }

        async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
            let mut d = self.lock()?;
            // Check first, then change: all or nothing.
            if let Some(e) = batch.put_outbox.iter().find(|e| !d.outbox.contains_key(&e.seq)) {
                return Err(StoreError::NotFound(format!("outbox entry {}", e.seq)));
            }
            let mut adding = std::collections::HashSet::new();
            if let Some(r) = batch.new_rows.iter().map(|n| &n.row).find(|r| {
                let k = (r.table.clone(), r.local_id.clone());
                d.rows.contains_key(&k) || !adding.insert(k)
            }) {
                return Err(StoreError::Exists(format!("row `{}` of `{}`", r.local_id, r.table)));
            }
            // This store keeps rows as values: a row kept as text is built.
            let new_rows = batch
                .new_rows
                .into_iter()
                .map(|n| n.into_row().map_err(|e| StoreError::Corrupt(format!("a new row's mirror: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            for r in batch.put_rows.into_iter().chain(new_rows) {
                d.rows.insert((r.table.clone(), r.local_id.clone()), r);
            }
            for key in batch.delete_rows {
                d.rows.remove(&key);
            }
            for e in batch.put_outbox {
                d.outbox.insert(e.seq, e);
            }
            for seq in batch.delete_outbox {
                d.outbox.remove(&seq);
            }
            for n in batch.add_outbox {
                d.next_seq += 1;
                let seq = d.next_seq;
                d.outbox.insert(seq, OutboxEntry::new(seq, n));
            }
            for (k, v) in batch.meta {
                match v {
                    Some(v) => d.meta.insert(k, v),
                    None => d.meta.remove(&k),
                };
            }
            for mut h in batch.history {
                h.id = d.history.last().map_or(1, |l| l.id + 1);
                d.history.push(h);
            }
            for key in batch.delete_blobs {
                d.blobs.remove(&key);
            }
            for (key, bytes) in batch.put_blobs {
                d.blobs.insert(key, bytes);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    crate::store_suite!(crate::local::store::MemoryStore::new());
}
