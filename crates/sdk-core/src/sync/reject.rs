//! A write the server refused for good is rolled back with its dependents: its row
//! goes back to the server's version (or, never having reached the server, stays as a
//! marker with status `rejected` that queries hide), its entries stay in the outbox
//! with the reason for the app to show, retry or discard, and so do the row's later
//! writes and the unsent inserts of rows that reference it (they could never be
//! sent). Push refusals, a parent deleted on this device before it was pushed and a
//! parent the server deleted all reject through here.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::context::SyncContext;
use super::error::SyncError;
use crate::local::local_row::{Overlay, RowStatus};
use crate::local::outbox::{OutboxEntry, OutboxOp};
use crate::local::schema::Schema;
use crate::local::store::{Store, WriteBatch};
use crate::net::transport::Http;

/// Refuse a write for good: keep it (with the reason) in the rejected list, roll the
/// row back to the server's version, and reject the writes that depend on it (the
/// row's later writes, and inserts of rows that reference it).
/// Returns how many rows were rejected (the row and its dependents).
pub async fn reject<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, e: &OutboxEntry, reason: &str, refused: &mut HashSet<(String, String)>) -> Result<usize, SyncError> {
    let outbox = cx.store.outbox().await?;
    let mut wb = WriteBatch::default();
    let n = reject_into(cx, e, reason, refused, &outbox, &mut wb).await?;
    cx.store.apply(wb).await?;
    Ok(n)
}

/// [`reject`] into a batch the caller applies, with the outbox it loaded.
pub async fn reject_into<S: Store, H: Http>(
    cx: &SyncContext<'_, S, H>,
    e: &OutboxEntry,
    reason: &str,
    refused: &mut HashSet<(String, String)>,
    outbox: &[OutboxEntry],
    wb: &mut WriteBatch,
) -> Result<usize, SyncError> {
    let started = cx.now_ms();
    let mut queue = vec![(e.table.clone(), e.local_id.clone(), reason.to_string())];
    let mut done: HashSet<(String, String)> = HashSet::new();
    while let Some((table, local_id, why)) = queue.pop() {
        if !done.insert((table.clone(), local_id.clone())) {
            continue;
        }
        refused.insert((table.clone(), local_id.clone()));
        for entry in outbox.iter().filter(|x| x.table == table && x.local_id == local_id && x.rejected.is_none()) {
            if wb.delete_outbox.contains(&entry.seq) {
                continue;
            }
            let mut x = entry.clone();
            x.rejected = Some(why.clone());
            x.in_flight = false;
            wb.put_outbox.push(x);
        }
        if let Some(mut row) = cx.store.get_row(&table, &local_id).await? {
            row.overlay = None;
            row.status = RowStatus::Rejected { reason: why.clone() };
            wb.put_rows.push(row);
        }
        wb.history.push(cx.history_line(
            "reject",
            Some(&table),
            1,
            started,
            Some(why.clone()),
            json!({"local_id": local_id}),
        ));
        // Dependents: waiting inserts whose references point at this row.
        for x in unsent_children(cx.schema, &table, &local_id, outbox) {
            queue.push((x.table.clone(), x.local_id.clone(), format!("its parent {table}/{local_id} was rejected: {why}")));
        }
    }
    // A rolled-back insert keeps its row as a marker (status rejected, no mirror):
    // queries hide it, `rejected()` lists its entry with the reason.
    Ok(done.len())
}

/// Refuse a queued call alone: it changes nothing the row's other writes or its
/// children depend on, so they stay queued. Its entry is kept with the reason, and its
/// effect leaves what the app sees: the overlay is rebuilt from the row's writes still
/// waiting (none: the server's version shows, with the row marked rejected until the
/// call is discarded or retried).
pub async fn reject_call<S: Store, H: Http>(cx: &SyncContext<'_, S, H>, e: &OutboxEntry, reason: &str) -> Result<(), SyncError> {
    let outbox = cx.store.outbox().await?;
    let mut wb = WriteBatch::default();
    let mut x = e.clone();
    x.rejected = Some(reason.to_string());
    x.in_flight = false;
    wb.put_outbox.push(x);
    if let Some(mut row) = cx.store.get_row(&e.table, &e.local_id).await? {
        let waiting: Vec<&OutboxEntry> =
            outbox.iter().filter(|w| w.table == e.table && w.local_id == e.local_id && w.seq != e.seq && w.rejected.is_none()).collect();
        let mut fields = crate::local::local_row::Row::new();
        let mut deleted = false;
        for w in &waiting {
            match w.op.shown_fields() {
                Some(f) => fields.extend(f),
                None => deleted = true,
            }
        }
        row.overlay = if deleted {
            Some(Overlay::Deleted)
        } else if fields.is_empty() {
            None
        } else {
            Some(Overlay::Fields { fields })
        };
        row.status = if waiting.is_empty() { RowStatus::Rejected { reason: reason.to_string() } } else { RowStatus::Pending };
        wb.put_rows.push(row);
    }
    wb.history.push(cx.history_line("reject", Some(&e.table), 1, cx.now_ms(), Some(reason.to_string()), json!({"local_id": e.local_id})));
    cx.store.apply(wb).await?;
    Ok(())
}

/// Reject the waiting inserts of rows that reference `table`/`local_id` (and, through
/// [`reject_into`], their own dependents), into `wb`.
pub async fn reject_unsent_children<S: Store, H: Http>(
    cx: &SyncContext<'_, S, H>,
    table: &str,
    local_id: &str,
    reason: &str,
    outbox: &[OutboxEntry],
    settled: &mut HashSet<(String, String)>,
    wb: &mut WriteBatch,
) -> Result<(), SyncError> {
    for x in unsent_children(cx.schema, table, local_id, outbox) {
        reject_into(cx, x, reason, settled, outbox, wb).await?;
    }
    Ok(())
}

/// Whether rows of some table (or files) can reference rows of `table`: where none
/// can, no row of it has children to look for in the outbox.
pub fn may_have_children(schema: &Schema, table: &str) -> bool {
    schema.tables().iter().any(|child| child.dependencies().any(|(_, parent)| parent == table))
}

/// The waiting (not rejected) inserts of rows whose references point at
/// `table`/`local_id`.
pub fn unsent_children<'a>(schema: &Schema, table: &str, local_id: &str, outbox: &'a [OutboxEntry]) -> Vec<&'a OutboxEntry> {
    let mut out = vec![];
    for child in schema.tables() {
        for (col, parent) in child.dependencies() {
            if parent != table {
                continue;
            }
            out.extend(outbox.iter().filter(|x| {
                x.table == child.name
                    && x.rejected.is_none()
                    && matches!(&x.op, OutboxOp::Insert { row } if row.get(col).and_then(Value::as_str) == Some(local_id))
            }));
        }
    }
    out
}
