//! When the server deleted a row, the delete wins everywhere (docs/ARCHITECTURE.md,
//! "Writes that race a delete").
//!
//! A device learns that a row is gone on the server in five ways: a pulled tombstone, a
//! tombstone (or DELETE) over Realtime, an update whose PATCH matched nothing, a delete
//! whose DELETE matched nothing, and an insert the SQL kit skipped because the row had
//! been deleted after an earlier attempt landed (its answer lost). A child's insert
//! refused with a foreign-key violation may also mean its parent is gone. Every one of
//! them ends here, in [`Engine::server_deleted`], so they all converge the same way:
//! - the row leaves the replica, with every write of it still waiting (a write queued
//!   behind one the server found gone would otherwise wait forever);
//! - what this device changed and the server will never have goes to the history as a
//!   `conflict` line carrying the lost fields, so an app can tell the user;
//! - inserts of rows that reference it and never reached the server are rejected with
//!   the reason (they cannot be created: their parent is gone), and show in `rejected()`;
//! - the row is remembered for a while (the [`Graveyard`]): a Realtime change older
//!   than the delete, still queued or in flight, must not bring it back. Deleted rows
//!   never return (server ids are not reused, and the kit refuses to re-insert a
//!   tombstoned `local_id`), so any later change for such a row is stale.
//!
//! Before believing that a row is gone, the push asks for its tombstone: a PATCH or
//! DELETE can also match nothing because a policy hides the row, and that is a refusal
//! (rejected with its reason), not a delete.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::client::{enc, RequestError};
use crate::engine::{Engine, EngineError};
use crate::local_row::{id_text, server_key, LocalRow, Overlay};
use crate::outbox::{OutboxEntry, OutboxOp};
use crate::remote_change::TOMBSTONES;
use crate::store::{Store, WriteBatch};
use crate::transport::Http;
use crate::Row;

/// How many recently deleted rows a replica remembers (per process).
const GRAVEYARD_SIZE: usize = 20_000;

/// Rows this process saw deleted by the server, most recent last. Stale Realtime
/// changes can only be ones queued or in flight in this process, so memory suffices:
/// after a restart the channel is joined afresh and the pull is the truth.
#[derive(Default)]
pub(crate) struct Graveyard {
    rows: Mutex<Recent>,
}

/// (table, local id) of deleted rows: a set to look up, and their order to forget the
/// oldest.
#[derive(Default)]
struct Recent {
    set: HashSet<(String, String)>,
    order: VecDeque<(String, String)>,
}

impl Graveyard {
    pub(crate) fn bury(&self, table: &str, local_id: &str) {
        let mut g = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let key = (table.to_string(), local_id.to_string());
        if g.set.insert(key.clone()) {
            g.order.push_back(key);
            while g.order.len() > GRAVEYARD_SIZE {
                if let Some(old) = g.order.pop_front() {
                    g.set.remove(&old);
                }
            }
        }
    }

    /// Remember the row a tombstone names, whether this device holds it or not (a stale
    /// change may be about a row that never reached this device): by its local id and
    /// by its server id, as changes may carry either.
    pub(crate) fn bury_tombstone(&self, table: &str, tombstone: &Row) {
        if let Some(l) = tombstone.get("local_id").and_then(Value::as_str) {
            self.bury(table, l);
        }
        if let Some(id) = tombstone.get("row_id").and_then(Value::as_str) {
            self.bury(table, &server_key(id));
        }
    }

    /// Whether a change with this local key (and server id) is about a buried row.
    pub(crate) fn holds_change(&self, table: &str, local_key: Option<&str>, server_id: Option<&Value>) -> bool {
        local_key.is_some_and(|l| self.holds(table, l))
            || server_id.is_some_and(|id| self.holds(table, &server_key(&id_text(id))))
    }

    pub(crate) fn holds(&self, table: &str, local_id: &str) -> bool {
        let g = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        g.set.contains(&(table.to_string(), local_id.to_string()))
    }
}

/// What a tombstone lookup is keyed by.
pub(crate) enum TombstoneKey<'a> {
    /// Server ids (as text), for a PATCH or DELETE that matched nothing.
    RowIds(&'a [String]),
    /// Local ids, for inserts the kit skipped.
    LocalIds(&'a [String]),
}

impl<S: Store, H: Http> Engine<S, H> {
    /// Which of these rows of `table` have a tombstone on the server (the ids asked
    /// for, row ids or local ids).
    pub(crate) async fn tombstones_of(&self, table: &str, key: TombstoneKey<'_>) -> Result<HashSet<String>, RequestError> {
        let (col, ids) = match key {
            TombstoneKey::RowIds(ids) => ("row_id", ids),
            TombstoneKey::LocalIds(ids) => ("local_id", ids),
        };
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let list = crate::push::quoted_list(ids.iter().map(String::as_str));
        let q = format!("select={col}&table_name=eq.{}&{col}=in.({})", enc(table), enc(&list));
        let rows = self
            .authed(|t| {
                let q = q.clone();
                async move { self.client.select(TOMBSTONES, &q, &t).await }
            })
            .await?;
        rows.iter()
            .map(|r| match r.get(col).and_then(Value::as_str) {
                Some(id) => Ok(id.to_string()),
                None => Err(RequestError::BadAnswer(format!("a tombstone without `{col}`: {r}"))),
            })
            .collect()
    }

    /// The server deleted `row`: remove it here with every waiting write of it, record
    /// what was lost, reject the unsent inserts of its children, and remember it.
    /// `outbox` is the outbox as loaded by the caller; `settled` collects the rows whose
    /// remaining outbox entries the caller must skip (a push run loaded them earlier).
    pub(crate) async fn server_deleted(
        &self,
        row: &LocalRow,
        how: &str,
        outbox: &[OutboxEntry],
        settled: &mut HashSet<(String, String)>,
        wb: &mut WriteBatch,
    ) -> Result<(), EngineError> {
        let (table, local_id) = (row.table.as_str(), row.local_id.as_str());
        settled.insert((table.to_string(), local_id.to_string()));
        wb.delete_rows.push((table.to_string(), local_id.to_string()));
        let mut lost = Row::new();
        let mut lost_ops = 0;
        for e in outbox.iter().filter(|e| e.table == table && e.local_id == local_id) {
            wb.delete_outbox.push(e.seq);
            match &e.op {
                OutboxOp::Insert { row } => {
                    lost.extend(row.clone());
                    lost_ops += 1;
                }
                OutboxOp::Update { fields } => {
                    lost.extend(fields.clone());
                    lost_ops += 1;
                }
                OutboxOp::Delete => {}
            }
        }
        if let Some(Overlay::Fields { fields }) = &row.overlay {
            lost.extend(fields.clone());
            lost_ops = lost_ops.max(1);
        }
        if lost_ops > 0 {
            wb.history.push(self.history_line(
                "conflict",
                Some(table),
                1,
                self.now_ms(),
                None,
                json!({"local_id": local_id, "what": format!("changed here, {how}: the delete wins"),
                       "lost": lost, "was": row.mirror, "rule": "delete wins"}),
            ));
        }
        self.graveyard.bury(table, local_id);
        if let Some(id) = &row.server_id {
            self.graveyard.bury(table, &server_key(&id_text(id)));
        }
        // Children inserted here under it that never reached the server cannot be
        // created now: they are rejected, with the reason, for the app to show.
        let reason = format!("its parent {table}/{local_id} was deleted on the server ({how})");
        self.reject_unsent_children(table, local_id, &reason, outbox, settled, wb).await
    }

    /// Reject the waiting inserts of rows that reference `table`/`local_id` (and, through
    /// [`Engine::reject_into`], their own dependents), into `wb`.
    pub(crate) async fn reject_unsent_children(
        &self,
        table: &str,
        local_id: &str,
        reason: &str,
        outbox: &[OutboxEntry],
        settled: &mut HashSet<(String, String)>,
        wb: &mut WriteBatch,
    ) -> Result<(), EngineError> {
        for x in self.unsent_children(table, local_id, outbox) {
            self.reject_into(x, reason, settled, outbox, wb).await?;
        }
        Ok(())
    }

    /// The waiting (not rejected) inserts of rows whose references point at
    /// `table`/`local_id`.
    pub(crate) fn unsent_children<'a>(&self, table: &str, local_id: &str, outbox: &'a [OutboxEntry]) -> Vec<&'a OutboxEntry> {
        let mut out = vec![];
        for child in self.schema.tables() {
            for (col, parent) in &child.references {
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
}
