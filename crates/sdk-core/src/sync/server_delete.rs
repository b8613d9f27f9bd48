//! When the server deleted a row, the delete wins everywhere (docs/ARCHITECTURE.md,
//! "Writes that race a delete").
//!
//! A device learns that a row is gone on the server in five ways: a pulled tombstone, a
//! tombstone (or DELETE) over Realtime, an update whose PATCH matched nothing, a delete
//! whose DELETE matched nothing, and an insert the SQL kit skipped because the row had
//! been deleted after an earlier attempt landed (its answer lost). A child's insert
//! refused with a foreign-key violation may also mean its parent is gone. Every one of
//! them ends here, in [`server_deleted`], so they all converge the same way:
//! - the row leaves the replica, with every write of it still waiting (a write queued
//!   behind one the server found gone would otherwise wait forever);
//! - what this device changed and the server will never have goes to the history as a
//!   `conflict` line carrying the lost fields, so an app can tell the user;
//! - inserts of rows that reference it and never reached the server are rejected with
//!   the reason (they cannot be created: their parent is gone), and show in `rejected()`;
//! - the row is remembered for a while (the [`Graveyard`](super::graveyard::Graveyard)): a Realtime change older
//!   than the delete, still queued or in flight, must not bring it back. Deleted rows
//!   never return (server ids are not reused, and the kit refuses to re-insert a
//!   tombstoned `local_id`), so any later change for such a row is stale.
//!
//! Before believing that a row is gone, the push asks for its tombstone: a PATCH or
//! DELETE can also match nothing because a policy hides the row, and that is a refusal
//! (rejected with its reason), not a delete.

use std::collections::HashSet;

use serde_json::json;

use super::context::SyncContext;
use super::error::SyncError;
use super::reject::reject_unsent_children;
use crate::local::local_row::{id_text, server_key, LocalRow, Overlay, Row};
use crate::local::outbox::OutboxEntry;
use crate::local::store::{Store, WriteBatch};
use crate::net::transport::Http;

/// The server deleted `row`: remove it here with every waiting write of it, record
/// what was lost, reject the unsent inserts of its children, and remember it.
/// `outbox` is the outbox as loaded by the caller; `settled` collects the rows whose
/// remaining outbox entries the caller must skip (a push run loaded them earlier).
pub async fn server_deleted<S: Store, H: Http>(
    cx: &SyncContext<'_, S, H>,
    row: &LocalRow,
    how: &str,
    outbox: &[OutboxEntry],
    settled: &mut HashSet<(String, String)>,
    wb: &mut WriteBatch,
) -> Result<(), SyncError> {
    let (table, local_id) = (row.table.as_str(), row.local_id.as_str());
    settled.insert((table.to_string(), local_id.to_string()));
    wb.delete_rows.push((table.to_string(), local_id.to_string()));
    let mut lost = Row::new();
    let mut lost_ops = 0;
    for e in outbox.iter().filter(|e| e.table == table && e.local_id == local_id) {
        wb.delete_outbox.push(e.seq);
        if let Some(f) = e.op.shown_fields() {
            lost.extend(f);
            lost_ops += 1;
        }
    }
    if let Some(Overlay::Fields { fields }) = &row.overlay {
        lost.extend(fields.clone());
        lost_ops = lost_ops.max(1);
    }
    if lost_ops > 0 {
        wb.history.push(cx.history_line(
            "conflict",
            Some(table),
            1,
            cx.now_ms(),
            None,
            json!({"local_id": local_id, "what": format!("changed here, {how}: the delete wins"),
                   "lost": lost, "was": row.mirror, "rule": "delete wins"}),
        ));
    }
    cx.graveyard.bury(table, local_id);
    if let Some(id) = &row.server_id {
        cx.graveyard.bury(table, &server_key(&id_text(id)));
    }
    // Children inserted here under it that never reached the server cannot be
    // created now: they are rejected, with the reason, for the app to show.
    let reason = format!("its parent {table}/{local_id} was deleted on the server ({how})");
    reject_unsent_children(cx, table, local_id, &reason, outbox, settled, wb).await
}
