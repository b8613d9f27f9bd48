//! The optimistic write path: an app's insert, update or delete becomes, at once, the
//! row the app sees and an outbox entry, in one store batch (DESIGN §2.2-§2.4).
//!
//! Every row created on a device gets a time-ordered local id (UUIDv7) unless the app
//! gives one; it is the row's key on every device, because the server row carries it.
//! References between synced tables hold the parent's local id locally; the push maps
//! them to server ids. Updates record only the fields that change. The caller serialises
//! writes (the engine has one writer), so the read-then-write here cannot race.

use serde_json::Value;

use crate::local::local_row::{LocalRow, Overlay, RowStatus};
use crate::local::outbox::{coalesce, CoalesceError, Coalesced, OutboxOp};
use crate::local::schema::{Schema, SchemaError};
use crate::local::store::{sent_through, NewOutboxEntry, Store, StoreError, WriteBatch};
use crate::local::local_row::Row;

/// Why a local write was refused. Nothing was written when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no row `{local_id}` in `{table}`")]
    NotFound { table: String, local_id: String },
    #[error("a row `{local_id}` already exists in `{table}`")]
    AlreadyExists { table: String, local_id: String },
    #[error("row `{local_id}` of `{table}` is deleted")]
    Deleted { table: String, local_id: String },
    #[error("the local id of `{table}` rows is `{column}` and must be a non-empty string")]
    BadLocalId { table: String, column: String },
    #[error("the local id of row `{local_id}` cannot change")]
    LocalIdChange { local_id: String },
    /// A queued call that cannot be queued (see [`LocalWriter::call`]).
    #[error("bad call: {reason}")]
    BadCall { reason: String },
    /// A bucket or file path that Storage would refuse.
    #[error(transparent)]
    File(#[from] crate::local::files::FileError),
    /// The server refused the row's insert: retry or discard it before writing to it
    /// again (a write queued behind a refused insert could never be sent).
    #[error("row `{local_id}` of `{table}` was refused by the server ({reason}); retry or discard it first")]
    Rejected { table: String, local_id: String, reason: String },
}

/// A fresh local id: a UUIDv7, so ids sort by creation time.
pub fn new_local_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Local writes for one schema and store.
pub struct LocalWriter<'a, S: Store + ?Sized> {
    pub schema: &'a Schema,
    pub store: &'a S,
    /// Entries up to this `seq` are never merged into (a push is sending them); 0: none.
    pub no_merge_through: u64,
}

impl<S: Store + ?Sized> LocalWriter<'_, S> {
    /// Insert a row; returns it as stored (status `pending`).
    pub async fn insert(&self, table: &str, value: &Value, now_ms: i64) -> Result<LocalRow, WriteError> {
        let mut batch = WriteBatch::default();
        let row = self.queue_insert(table, value, now_ms, &mut std::collections::HashSet::new(), &mut batch).await?;
        self.store.apply(batch).await?;
        Ok(row)
    }

    /// Insert many rows as one store batch (an import): all of them, or, when any does
    /// not fit the schema, none, with every misfit and its line. Rows may carry their
    /// own local ids (other rows of the import reference them); an id taken, or given
    /// twice, is a misfit.
    /// An unknown table, or a store failure, fails the whole call (the outer error).
    pub async fn insert_all(&self, table: &str, rows: Vec<(usize, Value)>, now_ms: i64) -> Result<Result<usize, Vec<(usize, WriteError)>>, WriteError> {
        self.schema.table(table)?;
        let mut batch = WriteBatch::default();
        let mut bad = vec![];
        let mut given = std::collections::HashSet::new();
        for (line, value) in rows {
            match self.queue_insert(table, &value, now_ms, &mut given, &mut batch).await {
                Ok(_) => {}
                Err(e @ WriteError::Store(_)) => return Err(e),
                Err(e) => bad.push((line, e)),
            }
        }
        if !bad.is_empty() {
            return Ok(Err(bad));
        }
        let n = batch.put_rows.len();
        self.store.apply(batch).await?;
        Ok(Ok(n))
    }

    /// Check a new row and add it, with its outbox entry, to `batch`. Its local id is
    /// generated unless the row gives one, which must be free in the store and not in
    /// `given` (the ids given earlier in the same batch).
    async fn queue_insert(
        &self,
        table: &str,
        value: &Value,
        now_ms: i64,
        given: &mut std::collections::HashSet<String>,
        batch: &mut WriteBatch,
    ) -> Result<LocalRow, WriteError> {
        let decl = self.schema.table(table)?;
        let mut fields = self.schema.check_write(table, value)?;
        let local_id = match fields.get(&decl.local_id) {
            None | Some(Value::Null) => new_local_id(),
            // A generated UUIDv7 cannot clash; only an id the app chose needs the check.
            Some(Value::String(s)) if !s.trim().is_empty() => {
                if !given.insert(s.clone()) || self.store.get_row(table, s).await?.is_some() {
                    return Err(WriteError::AlreadyExists { table: table.into(), local_id: s.clone() });
                }
                s.clone()
            }
            Some(_) => return Err(WriteError::BadLocalId { table: table.into(), column: decl.local_id.clone() }),
        };
        fields.insert(decl.local_id.clone(), Value::String(local_id.clone()));
        let row = LocalRow {
            table: table.into(),
            local_id: local_id.clone(),
            server_id: None,
            mirror: None,
            overlay: Some(Overlay::Fields { fields: fields.clone() }),
            status: RowStatus::Pending,
            last_pushed: None,
        };
        batch.put_rows.push(row.clone());
        batch.add_outbox.push(NewOutboxEntry { table: table.into(), local_id, op: OutboxOp::Insert { row: fields }, created_at_ms: now_ms });
        Ok(row)
    }

    async fn live_row(&self, table: &str, local_id: &str) -> Result<LocalRow, WriteError> {
        let row = self.store.get_row(table, local_id).await?.ok_or_else(|| WriteError::NotFound {
            table: table.into(),
            local_id: local_id.into(),
        })?;
        if matches!(row.overlay, Some(Overlay::Deleted)) {
            return Err(WriteError::Deleted {
                table: table.into(),
                local_id: local_id.into(),
            });
        }
        if let (None, RowStatus::Rejected { reason }) = (&row.mirror, &row.status) {
            return Err(WriteError::Rejected {
                table: table.into(),
                local_id: local_id.into(),
                reason: reason.clone(),
            });
        }
        Ok(row)
    }

    /// Change fields of a row; only fields whose value differs are recorded and pushed.
    pub async fn update(&self, table: &str, local_id: &str, value: &Value, now_ms: i64) -> Result<LocalRow, WriteError> {
        let (row, batch) = self.update_batch(table, local_id, value, now_ms).await?;
        if !batch.is_empty() {
            self.store.apply(batch).await?;
        }
        Ok(row)
    }

    /// The batch an update writes (empty when no field changes), and the row after it.
    pub async fn update_batch(&self, table: &str, local_id: &str, value: &Value, now_ms: i64) -> Result<(LocalRow, WriteBatch), WriteError> {
        let decl = self.schema.table(table)?;
        let mut fields = self.schema.check_write(table, value)?;
        match fields.remove(&decl.local_id) {
            None => {}
            Some(Value::String(s)) if s == local_id => {}
            Some(_) => return Err(WriteError::LocalIdChange { local_id: local_id.into() }),
        }
        let mut row = self.live_row(table, local_id).await?;
        let visible = row.visible(&decl.local_id).unwrap_or_default();
        let changed: Row = fields.into_iter().filter(|(k, v)| visible.get(k) != Some(v)).collect();
        let mut batch = WriteBatch::default();
        if changed.is_empty() {
            return Ok((row, batch));
        }
        self.queue(table, local_id, OutboxOp::Update { fields: changed.clone() }, now_ms, &mut batch).await?;
        let mut overlay = match row.overlay.take() {
            Some(Overlay::Fields { fields }) => fields,
            _ => Row::new(),
        };
        overlay.extend(changed);
        row.overlay = Some(Overlay::Fields { fields: overlay });
        row.status = RowStatus::Pending;
        batch.put_rows.push(row.clone());
        Ok((row, batch))
    }

    /// Queue a call of `function` (allowed by the SQL kit) on a row: the server runs it
    /// once, in order with the row's other writes. `effect` (fields, checked like an
    /// update's) is what the app sees until the server's result replaces it.
    pub async fn call(&self, table: &str, local_id: &str, function: &str, args: &Value, effect: &Value, now_ms: i64) -> Result<LocalRow, WriteError> {
        let (row, batch) = self.call_batch(table, local_id, function, args, effect, now_ms).await?;
        self.store.apply(batch).await?;
        Ok(row)
    }

    /// The batch a call writes, and the row after it.
    pub async fn call_batch(&self, table: &str, local_id: &str, function: &str, args: &Value, effect: &Value, now_ms: i64) -> Result<(LocalRow, WriteBatch), WriteError> {
        let decl = self.schema.table(table)?;
        if function.trim().is_empty() {
            return Err(WriteError::BadCall { reason: "the function name is empty".into() });
        }
        if !args.is_object() {
            return Err(WriteError::BadCall { reason: format!("the arguments of {function} must be a JSON object") });
        }
        let effect = self.schema.check_write(table, effect)?;
        if effect.contains_key(&decl.local_id) {
            return Err(WriteError::LocalIdChange { local_id: local_id.into() });
        }
        let mut row = self.live_row(table, local_id).await?;
        let mut batch = WriteBatch::default();
        let op = OutboxOp::Call { call_id: new_local_id(), function: function.into(), args: args.clone(), effect: effect.clone() };
        self.queue(table, local_id, op, now_ms, &mut batch).await?;
        let mut overlay = match row.overlay.take() {
            Some(Overlay::Fields { fields }) => fields,
            _ => Row::new(),
        };
        overlay.extend(effect);
        row.overlay = Some(Overlay::Fields { fields: overlay });
        row.status = RowStatus::Pending;
        batch.put_rows.push(row.clone());
        Ok((row, batch))
    }

    /// Delete a row. A row never pushed disappears with its queued insert; otherwise it
    /// is hidden at once and its delete waits in the outbox.
    pub async fn delete(&self, table: &str, local_id: &str, now_ms: i64) -> Result<(), WriteError> {
        let (batch, _) = self.delete_batch(table, local_id, now_ms).await?;
        self.store.apply(batch).await?;
        Ok(())
    }

    /// The batch a delete writes, and whether it cancelled an insert that was never
    /// sent (the row is then gone for good, and so is any chance for children written
    /// under it to reach the server).
    pub async fn delete_batch(&self, table: &str, local_id: &str, now_ms: i64) -> Result<(WriteBatch, bool), WriteError> {
        self.schema.table(table)?;
        let mut row = self.live_row(table, local_id).await?;
        let mut batch = WriteBatch::default();
        if self.queue(table, local_id, OutboxOp::Delete, now_ms, &mut batch).await? {
            // The queued insert and this delete cancelled out: the row never existed
            // for the server, so it goes locally too.
            batch.delete_rows.push((table.into(), local_id.into()));
            return Ok((batch, true));
        }
        row.overlay = Some(Overlay::Deleted);
        row.status = RowStatus::Pending;
        batch.put_rows.push(row);
        Ok((batch, false))
    }
}

/// How a batch made by one of [`LocalWriter`]'s updates, calls or deletes changes the
/// number of writes waiting to be pushed: its new entries wait, and the one it may
/// cancel was waiting (coalescing never merges into or cancels a rejected entry).
/// Not for batches that also reject writes (a cancelled parent's children).
pub fn waiting_delta(batch: &WriteBatch) -> i64 {
    batch.add_outbox.len() as i64 - batch.delete_outbox.len() as i64
}

impl<S: Store + ?Sized> LocalWriter<'_, S> {
    /// Add `op` to the outbox, coalesced with the row's waiting entry, into `batch`.
    /// Returns true when the two cancel out (an unpushed insert, then a delete).
    pub(crate) async fn queue(&self, table: &str, local_id: &str, op: OutboxOp, now_ms: i64, batch: &mut WriteBatch) -> Result<bool, WriteError> {
        let waiting = self.store.last_outbox_entry(table, local_id).await?;
        let sent = match &waiting {
            Some(_) => sent_through(self.store).await?,
            None => 0,
        };
        // An entry a running push read is being sent, as far as merging goes.
        let as_merged = waiting.clone().map(|mut w| {
            w.in_flight |= w.seq <= self.no_merge_through;
            w
        });
        match coalesce(as_merged.as_ref(), sent, op).map_err(|e| coalesce_error(e, table, local_id))? {
            Coalesced::Replace(op) => {
                let mut e = waiting.ok_or_else(|| WriteError::NotFound {
                    table: table.into(),
                    local_id: local_id.into(),
                })?;
                e.op = op;
                batch.put_outbox.push(e);
                Ok(false)
            }
            Coalesced::Append(op) => {
                batch.add_outbox.push(NewOutboxEntry {
                    table: table.into(),
                    local_id: local_id.into(),
                    op,
                    created_at_ms: now_ms,
                });
                Ok(false)
            }
            Coalesced::Cancel => {
                if let Some(w) = waiting {
                    batch.delete_outbox.push(w.seq);
                }
                Ok(true)
            }
        }
    }
}

fn coalesce_error(e: CoalesceError, table: &str, local_id: &str) -> WriteError {
    match e {
        CoalesceError::AfterDelete => WriteError::Deleted {
            table: table.into(),
            local_id: local_id.into(),
        },
        CoalesceError::InsertOverExisting => WriteError::AlreadyExists {
            table: table.into(),
            local_id: local_id.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::schema::TableDecl;
    use crate::local::store::suite::block_on;
    use crate::local::store::MemoryStore;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(vec![
            TableDecl::new("conversations"),
            TableDecl::new("messages").references("conversation_id", "conversations"),
        ])
        .unwrap()
    }

    #[test]
    fn insert_is_visible_at_once_with_its_outbox_entry() {
        block_on(async {
            let (schema, store) = (schema(), MemoryStore::new());
            let w = LocalWriter { schema: &schema, store: &store, no_merge_through: 0 };
            let c = w.insert("conversations", &json!({"title": "trip"}), 1).await.unwrap();
            assert_eq!(c.status, RowStatus::Pending);
            assert_eq!(uuid::Uuid::parse_str(&c.local_id).unwrap().get_version_num(), 7);
            let m = w
                .insert("messages", &json!({"body": "hi", "conversation_id": c.local_id}), 2)
                .await
                .unwrap();
            let seen = store.get_row("messages", &m.local_id).await.unwrap().unwrap();
            assert_eq!(seen.visible("local_id").unwrap()["conversation_id"], json!(c.local_id));
            let ob = store.outbox().await.unwrap();
            assert_eq!(ob.len(), 2);
            assert!(matches!(&ob[1].op, OutboxOp::Insert { row } if row["local_id"] == json!(m.local_id)));
            // Local ids sort by creation time.
            assert!(c.local_id < m.local_id);
        });
    }

    #[test]
    fn updates_record_changed_fields_and_coalesce() {
        block_on(async {
            let (schema, store) = (schema(), MemoryStore::new());
            let w = LocalWriter { schema: &schema, store: &store, no_merge_through: 0 };
            let c = w.insert("conversations", &json!({"title": "a", "n": 1}), 1).await.unwrap();
            w.update("conversations", &c.local_id, &json!({"title": "b", "n": 1}), 2).await.unwrap();
            let ob = store.outbox().await.unwrap();
            assert_eq!(ob.len(), 1, "merged into the waiting insert");
            assert!(matches!(&ob[0].op, OutboxOp::Insert { row } if row["title"] == json!("b")));
            // Once the insert is in flight, an update queues behind it with changed fields only.
            let mut e = ob[0].clone();
            e.in_flight = true;
            store.apply(WriteBatch { put_outbox: vec![e], ..Default::default() }).await.unwrap();
            w.update("conversations", &c.local_id, &json!({"title": "c", "n": 1}), 3).await.unwrap();
            let ob = store.outbox().await.unwrap();
            assert_eq!(ob.len(), 2);
            assert_eq!(ob[1].op, OutboxOp::Update { fields: json!({"title": "c"}).as_object().unwrap().clone() });
            // No change, no entry.
            w.update("conversations", &c.local_id, &json!({"title": "c"}), 4).await.unwrap();
            assert_eq!(store.outbox().await.unwrap().len(), 2);
        });
    }

    #[test]
    fn a_write_says_how_it_moves_the_count_of_waiting_writes() {
        block_on(async {
            let (schema, store) = (schema(), MemoryStore::new());
            let w = LocalWriter { schema: &schema, store: &store, no_merge_through: 0 };
            // Applies the batch and checks its delta against the store's own count.
            async fn check(store: &MemoryStore, batch: WriteBatch, want: i64) {
                let summary = || async { crate::local::store::OutboxSummary::of(&store.outbox().await.unwrap()) };
                let before = summary().await;
                let delta = waiting_delta(&batch);
                store.apply(batch).await.unwrap();
                let after = summary().await;
                assert_eq!(delta, want);
                assert_eq!(after.pending as i64 - before.pending as i64, delta, "{before:?} → {after:?}");
                assert_eq!(after.rejected, before.rejected);
            }
            let c = w.insert("conversations", &json!({"title": "a"}), 1).await.unwrap();
            let mut sent = store.outbox().await.unwrap()[0].clone();
            sent.in_flight = true;
            store.apply(WriteBatch { put_outbox: vec![sent], ..Default::default() }).await.unwrap();
            check(&store, w.update_batch("conversations", &c.local_id, &json!({"title": "b"}), 2).await.unwrap().1, 1).await;
            check(&store, w.update_batch("conversations", &c.local_id, &json!({"title": "c"}), 3).await.unwrap().1, 0).await;
            // A refused entry is never merged into: the next update waits on its own.
            let mut refused = store.outbox().await.unwrap()[1].clone();
            refused.rejected = Some("no".into());
            store.apply(WriteBatch { put_outbox: vec![refused], ..Default::default() }).await.unwrap();
            check(&store, w.update_batch("conversations", &c.local_id, &json!({"title": "f"}), 4).await.unwrap().1, 1).await;
            check(&store, w.call_batch("conversations", &c.local_id, "bump", &json!({}), &json!({}), 4).await.unwrap().1, 1).await;
            let d = w.insert("conversations", &json!({"title": "d"}), 5).await.unwrap();
            check(&store, w.update_batch("conversations", &d.local_id, &json!({"title": "e"}), 6).await.unwrap().1, 0).await;
            check(&store, w.delete_batch("conversations", &d.local_id, 7).await.unwrap().0, -1).await;
            check(&store, w.delete_batch("conversations", &c.local_id, 8).await.unwrap().0, 1).await;
        });
    }

    #[test]
    fn deleting_an_unpushed_insert_sends_nothing() {
        block_on(async {
            let (schema, store) = (schema(), MemoryStore::new());
            let w = LocalWriter { schema: &schema, store: &store, no_merge_through: 0 };
            let c = w.insert("conversations", &json!({"title": "gone"}), 1).await.unwrap();
            w.delete("conversations", &c.local_id, 2).await.unwrap();
            assert!(store.outbox().await.unwrap().is_empty());
            assert_eq!(store.get_row("conversations", &c.local_id).await.unwrap(), None);
        });
    }

    #[test]
    fn bad_writes_are_refused_and_write_nothing() {
        block_on(async {
            let (schema, store) = (schema(), MemoryStore::new());
            let w = LocalWriter { schema: &schema, store: &store, no_merge_through: 0 };
            assert!(matches!(w.insert("nope", &json!({}), 1).await, Err(WriteError::Schema(SchemaError::UnknownTable(_)))));
            assert!(matches!(w.insert("messages", &json!("text"), 1).await, Err(WriteError::Schema(_))));
            assert!(matches!(w.insert("messages", &json!({"local_id": 5}), 1).await, Err(WriteError::BadLocalId { .. })));
            let c = w.insert("conversations", &json!({"local_id": "mine"}), 1).await.unwrap();
            assert_eq!(c.local_id, "mine");
            assert!(matches!(w.insert("conversations", &json!({"local_id": "mine"}), 1).await, Err(WriteError::AlreadyExists { .. })));
            assert!(matches!(w.update("conversations", "other", &json!({"a": 1}), 1).await, Err(WriteError::NotFound { .. })));
            assert!(matches!(
                w.update("conversations", "mine", &json!({"local_id": "changed"}), 1).await,
                Err(WriteError::LocalIdChange { .. })
            ));
            // A pushed row deleted locally: hidden, and no more writes to it.
            let mut e = store.outbox().await.unwrap()[0].clone();
            e.in_flight = true;
            store.apply(WriteBatch { put_outbox: vec![e], ..Default::default() }).await.unwrap();
            w.delete("conversations", "mine", 2).await.unwrap();
            let r = store.get_row("conversations", "mine").await.unwrap().unwrap();
            assert_eq!(r.visible("local_id"), None);
            assert!(matches!(w.update("conversations", "mine", &json!({"a": 1}), 3).await, Err(WriteError::Deleted { .. })));
            assert!(matches!(w.delete("conversations", "mine", 3).await, Err(WriteError::Deleted { .. })));
            assert_eq!(store.outbox().await.unwrap().len(), 2, "the insert in flight, then the delete");
        });
    }
}
