//! An encrypted IndexedDB store's life beyond single reads and writes: the key checked
//! at open, a plaintext database encrypted in place, and an index built over sealed
//! rows.
//!
//! **At open.** The metadata record [`CHECK_KEY`] holds a known text sealed with the
//! store's key. Found and opened: the key is right. Found and not opened: another key
//! (or another user's), refused with [`StoreError::Key`] before anything is read or
//! written. Found with no key given: refused the same way. Not found with a key: the
//! database is plaintext (or new), and is encrypted in place.
//!
//! **In place.** Everything is read in one read-only transaction, sealed, and written
//! back in one read-write transaction that ends with the check record: IndexedDB
//! commits all of it or none, so a tab closed half way leaves the plaintext database
//! as it was, pending writes included, and the next open starts again. Tabs of the app
//! take the writer Web Lock around it, so none writes between the read and the write.
//! The whole database is held in memory meanwhile (files included).
//!
//! **Indexes.** Building an index needs each row's values, which WebCrypto opens
//! asynchronously, and a transaction cannot wait for that. So the rows are read in
//! one transaction, opened, and their index keys written in a second one, only to
//! records that did not change between the two (compared by their sealed bytes);
//! writes made meanwhile by this tab already keep the new index's keys (the index is
//! "building"), and rows another tab changed are read again.

use std::collections::{BTreeMap, HashMap};

use js_sys::{Array, Uint8Array};
use supasync_core::index::IndexDef;
use supasync_core::store::StoreError;
use supasync_core::write_lock::SharedLock;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::IdbTransactionMode;

use super::cipher::{sealed_doc, StoreCipher, CHECK_KEY};
use super::idb::{commit, issue, request, IdbError};
use super::migrations::{BLOBS, HISTORY, INDEXED, META, OUTBOX, ROWS};
use super::records::{blob_aad, doc_to_seal, meta_aad, outbox_aad, row_aad};
use super::{field, index_entry, key, obj_store, set, store_err, table_range, tx, IdbStore};

/// A row record's document as bytes (sealed or plaintext), to tell whether it changed.
fn doc_bytes(rec: &JsValue) -> Option<Vec<u8>> {
    let d = field(rec, "d");
    match sealed_doc(&d) {
        Some(b) => Some(b.to_vec()),
        None => d.as_string().map(String::into_bytes),
    }
}

/// How many times an index build reads again the rows another tab changed under it.
const BUILD_ROUNDS: usize = 5;

impl IdbStore {
    /// Check the key against the database (see the module's docs).
    pub(super) async fn check_key(&self) -> Result<(), StoreError> {
        let found = self.read_check().await?;
        match (&self.cipher, found.is_undefined()) {
            (None, true) => Ok(()),
            (None, false) => Err(self.needs_key()),
            (Some(c), false) if c.opens_check(&found).await => Ok(()),
            (Some(_), false) => Err(StoreError::Key(format!(
                "this key does not open IndexedDB database `{}`: it was encrypted with another key (or for another user); nothing was read or changed",
                self.name
            ))),
            (Some(c), true) => {
                let lock = crate::web_lock::WebLock::new(format!("supasync-writer:{}", self.name));
                let _held = match &lock {
                    Some(l) => Some(l.acquire().await),
                    None => None,
                };
                // Another tab may have encrypted it while this one waited for the lock.
                let found = self.read_check().await?;
                if found.is_undefined() {
                    self.encrypt_in_place(c).await
                } else if c.opens_check(&found).await {
                    Ok(())
                } else {
                    Err(StoreError::Key(format!("this key does not open IndexedDB database `{}`: another tab encrypted it with another key just now; nothing was changed", self.name)))
                }
            }
        }
    }

    /// The key check record (`undefined`: none, a plaintext or new database).
    async fn read_check(&self) -> Result<JsValue, StoreError> {
        self.run(|db| async move { super::read(&db, META, |s| s.get(&JsValue::from_str(CHECK_KEY))).await }).await
    }

    async fn encrypt_in_place(&self, c: &StoreCipher) -> Result<(), StoreError> {
        let all = |store: &'static str, keys: bool| {
            self.run(move |db| async move {
                let t = tx(&db, &[store], IdbTransactionMode::Readonly).map_err(store_err)?;
                let s = obj_store(&t, store).map_err(store_err)?;
                let values = issue(s.get_all())?;
                let keys = if keys { Some(issue(s.get_all_keys())?) } else { None };
                let values = Array::from(&request(values).await.map_err(store_err)?);
                let keys = match keys {
                    Some(k) => Array::from(&request(k).await.map_err(store_err)?),
                    None => Array::new(),
                };
                Ok::<_, StoreError>((values, keys))
            })
        };
        let (rows, _) = all(ROWS, false).await?;
        let (outbox, _) = all(OUTBOX, false).await?;
        let (history, _) = all(HISTORY, false).await?;
        let (meta, meta_keys) = all(META, true).await?;
        let (blobs, blob_keys) = all(BLOBS, true).await?;
        let text = |rec: &JsValue| field(rec, "d").as_string();
        let s = |v: JsValue| v.as_string().unwrap_or_default();

        // What to seal, with where each goes back.
        enum Back {
            Row(JsValue),
            Outbox(JsValue),
            History(JsValue),
            Meta(JsValue),
        }
        let mut texts: Vec<(String, String, Back)> = Vec::new();
        for rec in rows.iter() {
            if let Some(d) = text(&rec) {
                let (table, local_id) = (s(field(&rec, "t")), s(field(&rec, "l")));
                let d = match field(&rec, "s").as_string() {
                    Some(sid) => {
                        set(rec.unchecked_ref(), "s", &JsValue::from_str(&c.hash(&sid)));
                        doc_to_seal(&table, &local_id, &sid, &d)?
                    }
                    None => d,
                };
                texts.push((row_aad(&table, &local_id), d, Back::Row(rec)));
            }
        }
        for rec in outbox.iter() {
            if let Some(d) = text(&rec) {
                texts.push((outbox_aad(&s(field(&rec, "t")), &s(field(&rec, "l"))), d, Back::Outbox(rec)));
            }
        }
        for rec in history.iter() {
            if let Some(d) = text(&rec) {
                texts.push(("h".into(), d, Back::History(rec)));
            }
        }
        for (v, k) in meta.iter().zip(meta_keys.iter()) {
            if let (Some(v), Some(name)) = (v.as_string(), k.as_string()) {
                texts.push((meta_aad(&name), v, Back::Meta(k)));
            }
        }
        let mut chunks: Vec<(String, Vec<u8>, JsValue)> = Vec::new();
        for (v, k) in blobs.iter().zip(blob_keys.iter()) {
            if v.is_instance_of::<Uint8Array>() {
                let k2 = Array::from(&k);
                let n = k2.get(1).as_f64().unwrap_or(0.0) as usize;
                chunks.push((blob_aad(&s(k2.get(0)), n), Uint8Array::new(&v).to_vec(), k));
            }
        }
        let mut items: Vec<(String, &[u8])> = texts.iter().map(|(a, t, _)| (a.clone(), t.as_bytes())).collect();
        items.extend(chunks.iter().map(|(a, b, _)| (a.clone(), b.as_slice())));
        let mut sealed_values = c.seal_all(&items).await?.into_iter();
        let check = c.check_value().await?;

        let texts = &texts;
        let chunks = &chunks;
        let sealed_values: Vec<JsValue> = sealed_values.by_ref().collect();
        let sealed_values = &sealed_values;
        let check = &check;
        self.run(|db| async move {
            let t = tx(&db, &[ROWS, OUTBOX, HISTORY, META, BLOBS], IdbTransactionMode::Readwrite).map_err(store_err)?;
            let st = |n: &str| obj_store(&t, n).map_err(store_err);
            let (rows, outbox, history, meta, blobs) = (st(ROWS)?, st(OUTBOX)?, st(HISTORY)?, st(META)?, st(BLOBS)?);
            for ((_, _, back), v) in texts.iter().zip(sealed_values) {
                match back {
                    Back::Row(rec) | Back::Outbox(rec) | Back::History(rec) => {
                        set(rec.unchecked_ref(), "d", v);
                        let target = match back {
                            Back::Row(_) => &rows,
                            Back::Outbox(_) => &outbox,
                            _ => &history,
                        };
                        issue(target.put(rec))?;
                    }
                    Back::Meta(k) => {
                        issue(meta.put_with_key(v, k))?;
                    }
                }
            }
            for ((_, _, k), v) in chunks.iter().zip(&sealed_values[texts.len()..]) {
                issue(blobs.put_with_key(v, k))?;
            }
            issue(meta.put_with_key(check, &JsValue::from_str(CHECK_KEY)))?;
            commit(&t).await.map_err(store_err)
        })
        .await
    }

    /// `f` with the indexes a write keeps keys of: the kept ones and those being built.
    pub(super) fn with_write_indexes<R>(&self, f: impl FnOnce(&BTreeMap<String, Vec<IndexDef>>) -> R) -> R {
        let building = self.building.borrow();
        if building.is_empty() {
            return f(&self.indexed.borrow());
        }
        let mut all = self.indexed.borrow().clone();
        for (t, defs) in building.iter() {
            all.entry(t.clone()).or_default().extend(defs.iter().cloned());
        }
        f(&all)
    }

    /// [`Store::ensure_index`](supasync_core::store::Store::ensure_index) over sealed rows
    /// (see the module's docs).
    pub(super) async fn build_sealed_index(&self, table: &str, index: &IndexDef) -> Result<(), StoreError> {
        self.building.borrow_mut().entry(table.to_string()).or_default().push(index.clone());
        let built = self.fill_sealed_index(table, index).await;
        if let Some(b) = self.building.borrow_mut().get_mut(table) {
            b.retain(|i| i != index);
        }
        self.building.borrow_mut().retain(|_, b| !b.is_empty());
        built?;
        // Two queries may have asked for it at once: keep it once.
        let mut indexed = self.indexed.borrow_mut();
        let kept = indexed.entry(table.to_string()).or_default();
        if !kept.contains(index) {
            kept.push(index.clone());
        }
        Ok(())
    }

    async fn fill_sealed_index(&self, table: &str, index: &IndexDef) -> Result<(), StoreError> {
        let name = index.name();
        let mut kept = self.indexed.borrow().get(table).cloned().unwrap_or_default();
        kept.push(index.clone());
        let (kept, name) = (&kept, &name);
        // `None`: every row of the table; then only the ones changed under the build.
        let mut todo: Option<Vec<String>> = None;
        for _ in 0..BUILD_ROUNDS {
            let recs = self
                .run(|db| async move {
                    let range = table_range(table).map_err(store_err)?;
                    let all = super::read(&db, ROWS, |s| s.get_all_with_key(&range)).await?;
                    Ok(Array::from(&all).iter().collect::<Vec<_>>())
                })
                .await?;
            let recs: Vec<JsValue> = match &todo {
                None => recs,
                Some(ids) => recs.into_iter().filter(|r| field(r, "l").as_string().is_some_and(|l| ids.contains(&l))).collect(),
            };
            let rows = self.rows_of(&recs).await?;
            // Each row's index keys, and the sealed bytes they were computed from.
            let mut fresh: HashMap<String, (Vec<u8>, Array)> = HashMap::new();
            for (rec, row) in recs.iter().zip(rows) {
                let (Some(row), Some(bytes)) = (row, doc_bytes(rec)) else { continue };
                let ix: Array = kept.iter().filter_map(|i| i.key(&row).map(|k| JsValue::from_str(&index_entry(table, &i.name(), &k)))).collect();
                fresh.insert(row.local_id.clone(), (bytes, ix));
            }
            let fresh = &fresh;
            let changed = self
                .run(|db| async move {
                    let t = tx(&db, &[ROWS, INDEXED], IdbTransactionMode::Readwrite).map_err(store_err)?;
                    issue(obj_store(&t, INDEXED).map_err(store_err)?.put_with_key(&JsValue::from(1), &key(&[table, name])))?;
                    let rows = obj_store(&t, ROWS).map_err(store_err)?;
                    let range = table_range(table).map_err(store_err)?;
                    let req = issue(rows.open_cursor_with_range(&range))?;
                    let mut changed = Vec::new();
                    loop {
                        let c = request(req.clone()).await.map_err(store_err)?;
                        let Some(c) = c.dyn_ref::<web_sys::IdbCursorWithValue>() else { break };
                        let rec = c.value().map_err(|e| store_err(IdbError::from_js(&e)))?;
                        let l = field(&rec, "l").as_string().unwrap_or_default();
                        if let Some((bytes, ix)) = fresh.get(&l) {
                            match doc_bytes(&rec) {
                                Some(now) if now == *bytes => {
                                    set(rec.unchecked_ref(), "ix", ix);
                                    issue(c.update(&rec))?;
                                }
                                // Written since the read: by this tab (its keys are
                                // there) or by another (read it again).
                                _ => changed.push(l),
                            }
                        }
                        c.continue_().map_err(|e| store_err(IdbError::from_js(&e)))?;
                    }
                    commit(&t).await.map_err(store_err)?;
                    Ok(changed)
                })
                .await?;
            if changed.is_empty() {
                return Ok(());
            }
            todo = Some(changed);
        }
        Err(StoreError::Io(format!("index {} on {table}: its rows kept changing under the build ({BUILD_ROUNDS} rounds); try again", index.name())))
    }
}
