//! One change pushed by Realtime, applied to the replica (DESIGN §2.6).
//!
//! It goes through the same path as a pulled row (mirror under any pending overlay,
//! references mapped to local ids, conflicts recorded), with one more rule: a change
//! older than what the device already holds is skipped. Versions are the kit's
//! `sync_txid` (the writing transaction); a change from the *same* transaction is
//! applied, because Realtime delivers a transaction's statements in order and the last
//! one is the row's final state. So the changes buffered during a catch-up can be
//! applied after the pull without ever regressing a row, and an echo of this device's
//! own write rewrites the mirror with identical values: nothing the app sees moves.
//!
//! Deletes arrive as inserts into `supasync_tombstones` (an owner-filtered DELETE event
//! carries only the key, so the server drops it before the filter; the tombstone is
//! how the delete reaches us), and as DELETE events where the server sends them.

use serde_json::Value;

use crate::engine::{Engine, EngineError};
use crate::local_row::{id_text, row_key, sync_txid};
use crate::realtime::PgChange;
use crate::store::{Store, WriteBatch};
use crate::transport::Http;

/// The table the SQL kit writes tombstones to.
pub const TOMBSTONES: &str = "supasync_tombstones";

/// What became of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The replica changed.
    Row,
    /// A row was deleted.
    Deleted,
    /// Already known, older than the replica, or about nothing this device holds.
    Skipped,
}

impl<S: Store, H: Http> Engine<S, H> {
    /// Apply one Realtime change; returns what it did.
    pub async fn apply_change(&self, c: &PgChange) -> Result<Applied, EngineError> {
        if c.errors.as_ref().is_some_and(|e| !e.is_null()) {
            tracing::warn!(target: "supasync::live", "skipped a {} change on {} that carries errors", c.kind, c.table);
            return Ok(Applied::Skipped);
        }
        let _w = self.writer.lock().await;
        let applied = if c.table == TOMBSTONES {
            match (c.kind.as_str(), c.record.get("table_name").and_then(Value::as_str)) {
                ("INSERT", Some(table)) => match self.schema.table(table) {
                    Ok(decl) => {
                        let decl = decl.clone();
                        self.delete_locally(&decl, &c.record).await?
                    }
                    Err(_) => Applied::Skipped,
                },
                _ => Applied::Skipped,
            }
        } else {
            let Ok(decl) = self.schema.table(&c.table) else { return Ok(Applied::Skipped) };
            let decl = decl.clone();
            match c.kind.as_str() {
                "DELETE" => {
                    let mut t = serde_json::Map::new();
                    if let Some(id) = c.old_record.get(&decl.key) {
                        t.insert("row_id".into(), Value::String(id_text(id)));
                    }
                    if let Some(l) = c.old_record.get(&decl.local_id) {
                        t.insert("local_id".into(), l.clone());
                    }
                    self.delete_locally(&decl, &t).await?
                }
                "INSERT" | "UPDATE" if !c.record.is_empty() => {
                    let local = row_key(&decl, &c.record);
                    let mut held = match &local {
                        Some(l) => self.store.get_row(&decl.name, l).await?,
                        None => None,
                    };
                    if held.is_none() {
                        if let Some(id) = c.record.get(&decl.key) {
                            held = self.store.find_by_server_id(&decl.name, id).await?;
                        }
                    }
                    let mine = held.as_ref().and_then(|r| sync_txid(r.mirror.as_ref()?));
                    let got = sync_txid(&c.record);
                    let stale = held.is_none()
                        && (self.graveyard.holds_change(&decl.name, local.as_deref(), c.record.get(&decl.key))
                            || self.pulled_past(&decl.name, got).await?);
                    match (mine, got) {
                        // A change from before the row's delete (queued during a
                        // catch-up, or in flight): deleted rows never come back.
                        _ if stale => Applied::Skipped,
                        (Some(have), Some(got)) if got < have => Applied::Skipped,
                        _ => {
                            self.apply_server_rows(&decl, vec![c.record.clone()], WriteBatch::default()).await?;
                            Applied::Row
                        }
                    }
                }
                _ => Applied::Skipped,
            }
        };
        if applied != Applied::Skipped {
            let table = c.record.get("table_name").and_then(Value::as_str).filter(|_| c.table == TOMBSTONES).unwrap_or(&c.table);
            self.events.changed(vec![table.to_string()], false);
        }
        Ok(applied)
    }

    /// Whether a change of transaction `txid` to a row this device does not hold is older
    /// than the last pull of `table`, which would have brought the row had it still
    /// existed then (transactions still running at that pull excepted): so the row was
    /// deleted since, or written again later (and that later change comes on its own).
    async fn pulled_past(&self, table: &str, txid: Option<i64>) -> Result<bool, EngineError> {
        let Some(t) = txid else { return Ok(false) };
        let cur = self.cursor(&format!("cursor:{table}")).await?;
        Ok(t < cur.next_txid && !cur.pending.contains(&t))
    }

    /// Remove the row a tombstone names, with any writes of it still waiting (the
    /// server's delete wins, as in a pull; see [`crate::server_delete`]).
    async fn delete_locally(&self, decl: &crate::schema::TableDecl, tombstone: &crate::Row) -> Result<Applied, EngineError> {
        self.graveyard.bury_tombstone(&decl.name, tombstone);
        let Some(r) = self.tombstone_target(decl, tombstone).await? else { return Ok(Applied::Skipped) };
        let mut wb = WriteBatch::default();
        let outbox = self.store.outbox().await?;
        self.server_deleted(&r, "deleted on the server", &outbox, &mut Default::default(), &mut wb).await?;
        self.store.apply(wb).await?;
        Ok(Applied::Deleted)
    }
}
