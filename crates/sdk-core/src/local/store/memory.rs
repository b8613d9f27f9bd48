//! The in-memory store: for the engine's unit tests and as the reference the other
//! stores are held to by the shared suite. Nothing survives the process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::Value;

use super::{index_key, index_value, HistoryEntry, Store, StoreError, WriteBatch};
use crate::local::local_row::LocalRow;
use crate::local::outbox::OutboxEntry;

#[derive(Default)]
struct Data {
    rows: BTreeMap<(String, String), LocalRow>,
    outbox: BTreeMap<u64, OutboxEntry>,
    next_seq: u64,
    meta: BTreeMap<String, Value>,
    history: Vec<HistoryEntry>,
    /// Indexed (table, column) pairs.
    indexed: BTreeSet<(String, String)>,
}

/// A store in memory.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Data>, StoreError> {
        self.data.lock().map_err(|_| StoreError::Io("memory store lock poisoned".into()))
    }
}

crate::maybe_async_trait! {
    impl Store for MemoryStore {
        async fn get_row(&self, table: &str, local_id: &str) -> Result<Option<LocalRow>, StoreError> {
            Ok(self.lock()?.rows.get(&(table.to_string(), local_id.to_string())).cloned())
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
            Ok(self.lock()?.rows.values().filter(|r| r.table == table).cloned().collect())
        }

        async fn ensure_index(&self, table: &str, column: &str) -> Result<(), StoreError> {
            self.lock()?.indexed.insert((table.to_string(), column.to_string()));
            Ok(())
        }

        async fn rows_by(&self, table: &str, column: &str, value: &Value) -> Result<Vec<LocalRow>, StoreError> {
            let d = self.lock()?;
            if !d.indexed.contains(&(table.to_string(), column.to_string())) {
                return Err(StoreError::NotFound(format!("no index on {table}.{column}")));
            }
            // The reference store answers by scanning; what it answers is the contract.
            let want = index_value(value);
            Ok(d.rows
                .values()
                .filter(|r| r.table == table && index_key(r, column).as_deref() == Some(want.as_str()))
                .cloned()
                .collect())
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

        async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
            let mut d = self.lock()?;
            // Check first, then change: all or nothing.
            if let Some(e) = batch.put_outbox.iter().find(|e| !d.outbox.contains_key(&e.seq)) {
                return Err(StoreError::NotFound(format!("outbox entry {}", e.seq)));
            }
            let mut adding = std::collections::HashSet::new();
            if let Some(r) = batch.new_rows.iter().find(|r| {
                let k = (r.table.clone(), r.local_id.clone());
                d.rows.contains_key(&k) || !adding.insert(k)
            }) {
                return Err(StoreError::Exists(format!("row `{}` of `{}`", r.local_id, r.table)));
            }
            for r in batch.put_rows.into_iter().chain(batch.new_rows) {
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
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    crate::store_suite!(crate::local::store::MemoryStore::new());
}
