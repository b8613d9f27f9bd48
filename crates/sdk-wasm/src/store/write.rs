//! The write path: one [`WriteBatch`] as one `readwrite` transaction over the stores it
//! touches (rows, outbox, meta, history), done when the transaction's `complete` event
//! fires. Kept apart from the connection handling in the parent module, which runs it
//! again on a new connection when the browser closed the old one under it.

use super::records::{rows_of, Sealed};
use super::*;

impl IdbStore {
    pub(super) async fn apply_once(&self, db: &IdbDatabase, b: &WriteBatch, sealed: Option<&Sealed>) -> Result<(), StoreError> {
        self.issue_batch(db, b, sealed).await?.await
    }

    /// The batch's transaction, every request issued: returns the future of its end
    /// (see [`Store::apply_queued`]). `sealed`: the batch's values sealed beforehand
    /// (an encrypted store, see [`IdbStore::seal`]).
    pub(super) async fn issue_batch(&self, db: &IdbDatabase, b: &WriteBatch, sealed: Option<&Sealed>) -> Result<Applying, StoreError> {
        let mut names = Vec::with_capacity(4);
        if !b.put_rows.is_empty() || !b.new_rows.is_empty() || !b.delete_rows.is_empty() {
            names.push(ROWS);
        }
        if !b.add_outbox.is_empty() || !b.put_outbox.is_empty() || !b.delete_outbox.is_empty() {
            names.push(OUTBOX);
        }
        if !b.meta.is_empty() {
            names.push(META);
        }
        if !b.history.is_empty() {
            names.push(HISTORY);
        }
        if !b.put_blobs.is_empty() || !b.delete_blobs.is_empty() {
            names.push(BLOBS);
        }
        let t = tx(db, &names, IdbTransactionMode::Readwrite).map_err(store_err)?;
        let st = |n: &str| obj_store(&t, n).map_err(store_err);

        // Replaced outbox entries must exist: check first (nothing is written yet, so
        // failing here applies nothing).
        if !b.put_outbox.is_empty() {
            let outbox = st(OUTBOX)?;
            let checks = b
                .put_outbox
                .iter()
                .map(|e| issue(outbox.count_with_key(&JsValue::from_f64(e.seq as f64))).map(request))
                .collect::<Result<Vec<_>, _>>()?;
            for (req, e) in checks.into_iter().zip(&b.put_outbox) {
                if req.await.map_err(store_err)?.as_f64() != Some(1.0) {
                    let _ = t.abort();
                    return Err(StoreError::NotFound(format!("outbox entry {}", e.seq)));
                }
            }
        }
        if !b.put_rows.is_empty() || !b.new_rows.is_empty() || !b.delete_rows.is_empty() {
            let rows = st(ROWS)?;
            let records = self.with_write_indexes(|ix| self.row_records(rows_of(b), ix, sealed.map(|s| s.rows.as_slice())))?;
            for rec in records.iter().take(b.put_rows.len()) {
                issue(rows.put(&rec))?;
            }
            // `add` fails (and aborts the whole transaction) when the key is taken.
            for rec in records.iter().skip(b.put_rows.len()) {
                issue(rows.add(&rec))?;
            }
            for (table, local_id) in &b.delete_rows {
                issue(rows.delete(&key(&[table, local_id])))?;
            }
        }
        if !b.add_outbox.is_empty() || !b.put_outbox.is_empty() || !b.delete_outbox.is_empty() {
            let outbox = st(OUTBOX)?;
            for (i, e) in b.put_outbox.iter().enumerate() {
                issue(outbox.put(&IdbStore::outbox_record(e, true, sealed.map(|s| &s.put_outbox[i]))?))?;
            }
            for seq in &b.delete_outbox {
                issue(outbox.delete(&JsValue::from_f64(*seq as f64)))?;
            }
            for (i, n) in b.add_outbox.iter().enumerate() {
                // The key generator assigns the seq: increasing, never reused.
                issue(outbox.add(&IdbStore::outbox_record(&OutboxEntry::new(0, n.clone()), false, sealed.map(|s| &s.add_outbox[i]))?))?;
            }
        }
        if !b.meta.is_empty() {
            let meta = st(META)?;
            let mut sealed_values = sealed.map(|s| s.meta.iter());
            for (k, v) in &b.meta {
                let k = JsValue::from_str(k);
                match v {
                    Some(v) => {
                        let value = match sealed_values.as_mut().and_then(Iterator::next) {
                            Some(s) => s.clone(),
                            None => JsValue::from_str(&v.to_string()),
                        };
                        issue(meta.put_with_key(&value, &k))?
                    }
                    None => issue(meta.delete(&k))?,
                };
            }
        }
        if !b.history.is_empty() {
            let history = st(HISTORY)?;
            for (i, h) in b.history.iter().enumerate() {
                let o = Object::new();
                match sealed {
                    Some(s) => set(&o, "d", &s.history[i]),
                    None => set(&o, "d", &JsValue::from_str(&serde_json::to_string(h).map_err(|e| corrupt("history", e))?)),
                }
                issue(history.add(&o))?;
            }
        }
        if !b.put_blobs.is_empty() || !b.delete_blobs.is_empty() {
            let s = st(BLOBS)?;
            for k in &b.delete_blobs {
                blobs::delete(&s, k)?;
            }
            for (i, (k, bytes)) in b.put_blobs.iter().enumerate() {
                blobs::put(&s, k, bytes, sealed.map(|s| s.blobs[i].as_slice()))?;
            }
        }
        // A new row may find its key taken, which aborts the whole batch (see
        // [`committing`]: the transaction ends by itself, so a failed request aborts it).
        let adds = !b.new_rows.is_empty();
        let done = committing(&t);
        Ok(Box::pin(async move {
            done.await.map_err(|e| match e.name.as_str() {
                "ConstraintError" if adds => StoreError::Exists(format!("a new row's key is taken: {e}")),
                _ => store_err(e),
            })
        }))
    }
}
