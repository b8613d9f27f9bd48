//! Late-bound references. A row can arrive with a reference to a parent this device
//! holds but whose server id it does not know yet (the parent's insert committed, its
//! answer was lost; meanwhile another device wrote a child and Realtime delivered it).
//! The child's mirror then keeps the parent's server id. When the parent's server id
//! is learned (a confirmed push, a pulled row), such children are rewritten to the
//! parent's local id, in the same batch. Children are found through the reference's
//! index when it is declared, else by one scan of the child table per batch.

use std::collections::HashMap;

use serde_json::Value;

use crate::engine::{Engine, EngineError};
use crate::store::{Store, WriteBatch};
use crate::transport::Http;

impl<S: Store, H: Http> Engine<S, H> {
    /// `learned`: (server id, local id) of rows of `parent` whose server id just became known.
    pub(crate) async fn adopt_children(&self, parent: &str, learned: &[(Value, String)], wb: &mut WriteBatch) -> Result<(), EngineError> {
        if learned.is_empty() {
            return Ok(());
        }
        let by_server: HashMap<String, &str> = learned.iter().map(|(s, l)| (s.to_string(), l.as_str())).collect();
        for child in self.schema.tables() {
            for (col, p) in &child.references {
                if p != parent {
                    continue;
                }
                let candidates = if child.indexes.contains(col) {
                    let mut rows = vec![];
                    for (sid, _) in learned {
                        rows.extend(self.store.rows_by(&child.name, col, sid).await?);
                    }
                    rows
                } else {
                    self.store.scan(&child.name).await?
                };
                for stored in candidates {
                    // The batch may already hold a newer version of this row.
                    let pos = wb.put_rows.iter().position(|r| r.table == stored.table && r.local_id == stored.local_id);
                    let row = match pos {
                        Some(i) => &mut wb.put_rows[i],
                        None => {
                            wb.put_rows.push(stored);
                            let last = wb.put_rows.len() - 1;
                            &mut wb.put_rows[last]
                        }
                    };
                    let Some(mirror) = row.mirror.as_mut() else { continue };
                    let local = mirror.get(col).and_then(|v| by_server.get(&v.to_string()).copied());
                    if let Some(l) = local {
                        mirror.insert(col.clone(), Value::String(l.to_string()));
                    } else if pos.is_none() {
                        // Not ours to touch: take it back out of the batch.
                        wb.put_rows.pop();
                    }
                }
            }
        }
        Ok(())
    }
}
