//! References between rows: a server row's references are mapped to the parents'
//! local ids before it becomes a mirror ([`to_local`]), and late-bound ones are fixed
//! up ([`adopt_children`]). A row can arrive with a reference to a parent this device
//! holds but whose server id it does not know yet (the parent's insert committed, its
//! answer was lost; meanwhile another device wrote a child and Realtime delivered it).
//! The child's mirror then keeps the parent's server id. When the parent's server id
//! is learned (a confirmed push, a pulled row), such children are rewritten to the
//! parent's local id, in the same batch. Children are found through the reference's
//! index when it is declared, else by one scan of the child table per batch.

use std::collections::HashMap;

use serde_json::Value;

use super::error::SyncError;
use crate::local::local_row::Row;
use crate::local::schema::Schema;
use crate::local::store::{Store, WriteBatch};

/// (parent table, server id as JSON text) → the parent's local id, if this device has it.
pub type ParentLocalIds = HashMap<(String, String), Option<String>>;

/// A server row as the mirror keeps it: references as local ids. `known` holds the
/// local ids this device sent (no lookup needed); `seen` caches parent lookups
/// (parent table, server id) → local id across the rows of one page or batch.
pub async fn to_local<S: Store>(schema: &Schema, store: &S, table: &str, mut row: Row, known: &Row, seen: &mut ParentLocalIds) -> Result<Row, SyncError> {
    let decl = schema.table(table)?;
    for (col, parent) in &decl.references {
        let Some(v) = row.get(col).filter(|v| !v.is_null()) else { continue };
        if let Some(local) = known.get(col).filter(|k| !k.is_null()) {
            row.insert(col.clone(), local.clone());
            continue;
        }
        let key = (parent.clone(), v.to_string());
        let local = match seen.get(&key) {
            Some(l) => l.clone(),
            None => {
                let l = store.find_by_server_id(parent, v).await?.map(|p| p.local_id);
                seen.insert(key, l.clone());
                l
            }
        };
        if let Some(l) = local {
            row.insert(col.clone(), Value::String(l));
        }
    }
    Ok(row)
}

/// `learned`: (server id, local id) of rows of `parent` whose server id just became
/// known; children that hold such a server id are rewritten to the local id, in `wb`.
/// The parents' local ids a row's references need, read at once (what [`to_local`]
/// would look up one by one).
pub async fn parents_of<S: Store>(schema: &Schema, store: &S, table: &str, row: &Row) -> Result<ParentLocalIds, SyncError> {
    let decl = schema.table(table)?;
    let wanted: Vec<(String, &Value)> = decl.references.iter().filter_map(|(col, parent)| Some((parent.clone(), row.get(col).filter(|v| !v.is_null())?))).collect();
    let found = futures_util::future::try_join_all(wanted.iter().map(|(parent, v)| store.find_by_server_id(parent, v))).await?;
    Ok(wanted.into_iter().zip(found).map(|((parent, v), p)| ((parent, v.to_string()), p.map(|p| p.local_id))).collect())
}

pub async fn adopt_children<S: Store>(schema: &Schema, store: &S, parent: &str, learned: &[(Value, String)], wb: &mut WriteBatch) -> Result<(), SyncError> {
    // Most tables are nobody's parent: then there is nothing to adopt, and no map of
    // a restored page's thousand server ids to build.
    if learned.is_empty() || !schema.tables().iter().any(|child| child.references.iter().any(|(_, p)| p == parent)) {
        return Ok(());
    }
    let by_server: HashMap<String, &str> = learned.iter().map(|(s, l)| (s.to_string(), l.as_str())).collect();
    // Where each row already in the batch is (a restored page holds a thousand: one
    // search of the batch per candidate child was quadratic).
    let mut in_batch: HashMap<(String, String), usize> = wb.put_rows.iter().enumerate().map(|(i, r)| ((r.table.clone(), r.local_id.clone()), i)).collect();
    for child in schema.tables() {
        for (col, p) in &child.references {
            if p != parent {
                continue;
            }
            let candidates = if child.index_on(col).is_some() {
                let mut rows = vec![];
                for (sid, _) in learned {
                    rows.extend(store.rows_by(&child.name, col, sid).await?);
                }
                rows
            } else {
                store.scan(&child.name).await?
            };
            for stored in candidates {
                // The batch may already hold a newer version of this row.
                let key = (stored.table.clone(), stored.local_id.clone());
                let pos = in_batch.get(&key).copied();
                let row = match pos {
                    Some(i) => &mut wb.put_rows[i],
                    None => {
                        wb.put_rows.push(stored);
                        let last = wb.put_rows.len() - 1;
                        &mut wb.put_rows[last]
                    }
                };
                let local = row.mirror.as_ref().and_then(|m| m.get(col)).and_then(|v| by_server.get(&v.to_string()).copied());
                match (local, row.mirror.as_mut()) {
                    (Some(l), Some(mirror)) => {
                        mirror.insert(col.clone(), Value::String(l.to_string()));
                        if pos.is_none() {
                            in_batch.insert(key, wb.put_rows.len() - 1);
                        }
                    }
                    // Not ours to touch: take it back out of the batch.
                    _ if pos.is_none() => {
                        wb.put_rows.pop();
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
