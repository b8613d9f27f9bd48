//! What the store's records hold, both ways: the core's values made into IndexedDB
//! records (rows, outbox entries, history, metadata, file chunks) and records read
//! back into the core's values, in plaintext or sealed with the store's
//! [`StoreCipher`].
//!
//! A plaintext document is JSON text in `d`. A sealed one is its counter block,
//! ciphertext and tag in one `Uint8Array` in the same place (a file chunk's is
//! `[counter block, ciphertext and tag]`), bound to where it is kept (see
//! [`cipher`](super::cipher)): a row's is `r\0table\0local id`, an outbox entry's `o\0table\0local id` (its seq is given
//! by IndexedDB's key generator only once it is added), a history entry's `h`, a
//! metadata value's `m\0key`, a file chunk's `b\0key\0chunk`. Reading accepts both
//! forms, so a store being encrypted in place (see [`at_rest`](super::at_rest)) reads
//! the same throughout.
//!
//! Writes are sealed before their transaction opens ([`IdbStore::seal`]): WebCrypto's
//! promises would let the transaction commit half issued (sealing waits for WebCrypto
//! only when the cipher's keystream runs out).

use js_sys::{Array, Object, Uint8Array};
use serde_json::Value;
use supasync_core::index::IndexDef;
use supasync_core::local_row::LocalRow;
use supasync_core::outbox::OutboxEntry;
use supasync_core::row_doc::{decode, Doc};
use supasync_core::store::{index_value, HistoryEntry, NewRow, StoreError, WriteBatch};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use std::collections::BTreeMap;

use super::blobs::chunks;
use super::cipher::{sealed, sealed_doc, Sealed as SealedValue, META_PLACE};
use super::idb::IdbError;
use super::{corrupt, field, index_entry, set, store_err, IdbStore};

/// A batch's values, sealed, in the order [`WriteBatch`] holds them.
#[derive(Default)]
pub(super) struct Sealed {
    /// `put_rows` then `new_rows`.
    pub rows: Vec<JsValue>,
    pub put_outbox: Vec<JsValue>,
    pub add_outbox: Vec<JsValue>,
    /// The `Some` values of `meta`, in order.
    pub meta: Vec<JsValue>,
    pub history: Vec<JsValue>,
    /// Each of `put_blobs`: its chunks.
    pub blobs: Vec<Vec<JsValue>>,
}

pub(super) fn row_aad(table: &str, local_id: &str) -> String {
    format!("r\0{table}\0{local_id}")
}

pub(super) fn outbox_aad(table: &str, local_id: &str) -> String {
    format!("o\0{table}\0{local_id}")
}

pub(super) fn meta_aad(key: &str) -> String {
    format!("{META_PLACE}{key}")
}

pub(super) fn blob_aad(key: &str, n: usize) -> String {
    format!("b\0{key}\0{n}")
}

fn to_json<T: serde::Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt(what, e))
}

/// A batch's rows, `put_rows` then `new_rows` (each new row with its text, if kept so).
pub(super) fn rows_of(b: &WriteBatch) -> impl Iterator<Item = (&LocalRow, Option<&NewRow>)> {
    b.put_rows.iter().map(|r| (r, None)).chain(b.new_rows.iter().map(|n| (&n.row, Some(n))))
}

/// How the store writes row documents: a sealed store keeps the server id in the
/// document (beside it, `s` is only a keyed hash of it).
fn doc_form(sealed: bool) -> Doc {
    Doc { with_server_id: sealed }
}

/// A plaintext row's document as a sealed store writes it: with the server id that
/// its record's `s` held (`s` becomes a hash). For encrypting a store in place.
pub(super) fn doc_to_seal(table: &str, local_id: &str, server_id: &str, doc: &str) -> Result<String, StoreError> {
    let server_id: Value = serde_json::from_str(server_id).map_err(|e| corrupt("row's server id", e))?;
    let row = decode(table.into(), local_id.into(), Some(server_id), doc).map_err(|e| corrupt("row", e))?;
    doc_form(true).encode(&row).map_err(|e| corrupt("row", e))
}

/// A row's document (see `supasync_core::row_doc`).
fn row_json(r: &LocalRow, new: Option<&NewRow>, sealed: bool) -> Result<String, StoreError> {
    let form = doc_form(sealed);
    match new {
        Some(n) => form.encode_new(n),
        None => form.encode(r),
    }
    .map_err(|e| corrupt("row", e))
}

impl IdbStore {
    /// The error for sealed values met by a store opened without a key.
    pub(super) fn needs_key(&self) -> StoreError {
        StoreError::Key(format!("IndexedDB database `{}` is encrypted: open it with its key (openReplica's encryptionKey)", self.name))
    }

    /// The batch's values sealed, or `None` for a plaintext store.
    pub(super) async fn seal(&self, b: &WriteBatch) -> Result<Option<Sealed>, StoreError> {
        let Some(cipher) = self.cipher.as_ref() else { return Ok(None) };
        let mut texts: Vec<(String, String)> = Vec::new();
        for (r, new) in rows_of(b) {
            texts.push((row_aad(&r.table, &r.local_id), row_json(r, new, true)?));
        }
        for e in &b.put_outbox {
            texts.push((outbox_aad(&e.table, &e.local_id), to_json(e, "outbox entry")?));
        }
        for n in &b.add_outbox {
            texts.push((outbox_aad(&n.table, &n.local_id), to_json(&OutboxEntry::new(0, n.clone()), "outbox entry")?));
        }
        for (k, v) in &b.meta {
            if let Some(v) = v {
                texts.push((meta_aad(k), v.to_string()));
            }
        }
        for h in &b.history {
            texts.push(("h".to_string(), to_json(h, "history")?));
        }
        let mut items: Vec<(String, &[u8])> = texts.iter().map(|(a, t)| (a.clone(), t.as_bytes())).collect();
        for (k, bytes) in &b.put_blobs {
            items.extend(chunks(bytes).into_iter().enumerate().map(|(n, c)| (blob_aad(k, n), c)));
        }
        let mut all = cipher.seal_all(&items).await?.into_iter();
        let mut take = |n: usize| all.by_ref().take(n).collect::<Vec<_>>();
        Ok(Some(Sealed {
            rows: take(b.put_rows.len() + b.new_rows.len()),
            put_outbox: take(b.put_outbox.len()),
            add_outbox: take(b.add_outbox.len()),
            meta: take(b.meta.iter().filter(|(_, v)| v.is_some()).count()),
            history: take(b.history.len()),
            blobs: b.put_blobs.iter().map(|(_, bytes)| take(chunks(bytes).len())).collect(),
        }))
    }

    /// A server id as its `s` index text: a keyed hash in a sealed store.
    pub(super) fn server_id_text(&self, server_id: &Value) -> String {
        let text = index_value(server_id);
        match &self.cipher {
            Some(c) => c.hash(&text),
            None => text,
        }
    }

    /// Rows as their records, `{t, l, s?, ix?, d}` (`ix` when the table has indexes),
    /// in order, with `docs` as their `d` when they are sealed. Built as one JSON text
    /// that `JSON.parse` turns into every object at once: a restore's page of 1,000
    /// rows built field by field across the boundary spent more time turning Rust
    /// strings into JavaScript ones than anything else it did on the page's thread
    /// but `add` itself.
    /// A new row kept as the server's text (`NewRow::mirror_json`) comes with it.
    pub(super) fn row_records<'r>(&self, rows: impl Iterator<Item = (&'r LocalRow, Option<&'r NewRow>)>, indexes: &BTreeMap<String, Vec<IndexDef>>, docs: Option<&[JsValue]>) -> Result<Array, StoreError> {
        #[derive(serde::Serialize)]
        struct Record<'a> {
            t: &'a str,
            l: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            s: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            ix: Option<Vec<String>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            d: Option<String>,
        }
        let mut records = Vec::with_capacity(rows.size_hint().0);
        for (r, new) in rows {
            let ix = indexes.get(&r.table).map(|kept| kept.iter().filter_map(|i| i.key(r).map(|k| index_entry(&r.table, &i.name(), &k))).collect());
            let d = if docs.is_some() { None } else { Some(row_json(r, new, self.cipher.is_some())?) };
            records.push(Record { t: &r.table, l: &r.local_id, s: r.server_id.as_ref().map(|s| self.server_id_text(s)), ix, d });
        }
        let parsed: Array = js_sys::JSON::parse(&to_json(&records, "row")?).map_err(|e| store_err(IdbError::from_js(&e)))?.unchecked_into();
        if let Some(docs) = docs {
            for (rec, d) in parsed.iter().zip(docs) {
                set(rec.unchecked_ref(), "d", d);
            }
        }
        Ok(parsed)
    }

    /// An outbox entry's record `{k?, t, l, r?, d}` (`k` for one that replaces its seq).
    pub(super) fn outbox_record(e: &OutboxEntry, with_key: bool, sealed: Option<&JsValue>) -> Result<JsValue, StoreError> {
        let o = Object::new();
        if with_key {
            set(&o, "k", &JsValue::from_f64(e.seq as f64));
        }
        set(&o, "t", &JsValue::from_str(&e.table));
        set(&o, "l", &JsValue::from_str(&e.local_id));
        if e.rejected.is_some() {
            set(&o, "r", &JsValue::from(1));
        }
        match sealed {
            Some(d) => set(&o, "d", d),
            None => set(&o, "d", &JsValue::from_str(&to_json(e, "outbox entry")?)),
        }
        Ok(o.into())
    }

    /// The documents of `values` (records' `d`, or metadata values) as text, each
    /// opened with its additional data when sealed.
    async fn texts(&self, values: &[JsValue], aad: impl Fn(usize) -> String, what: &str) -> Result<Vec<String>, StoreError> {
        let mut out = vec![String::new(); values.len()];
        let mut to_open = Vec::new();
        for (i, v) in values.iter().enumerate() {
            match v.as_string() {
                Some(text) => out[i] = text,
                None => match sealed_doc(v) {
                    Some(s) => to_open.push((i, (aad(i), s))),
                    None => return Err(corrupt(what, "a record without its document")),
                },
            }
        }
        if to_open.is_empty() {
            return Ok(out);
        }
        let cipher = self.cipher.as_ref().ok_or_else(|| self.needs_key())?;
        let (at, items): (Vec<usize>, Vec<(String, SealedValue)>) = to_open.into_iter().unzip();
        for (i, bytes) in at.into_iter().zip(cipher.open_all(&items).await?) {
            out[i] = String::from_utf8(bytes).map_err(|e| corrupt(what, e))?;
        }
        Ok(out)
    }

    /// Row records (a missing one is `undefined`) as rows.
    pub(super) async fn rows_of(&self, recs: &[JsValue]) -> Result<Vec<Option<LocalRow>>, StoreError> {
        let found: Vec<&JsValue> = recs.iter().filter(|r| !r.is_undefined()).collect();
        let docs: Vec<JsValue> = found.iter().map(|r| field(r, "d")).collect();
        let text = |r: &JsValue, f: &str| field(r, f).as_string().unwrap_or_default();
        let aad = |i: usize| row_aad(&text(found[i], "t"), &text(found[i], "l"));
        let texts = self.texts(&docs, aad, "row").await?;
        let mut rows = found.iter().zip(docs).zip(texts).map(|((rec, d), doc)| {
            // A plaintext record's `s` is the server id's JSON; a sealed one's is a hash
            // (its document holds the server id).
            let server_id = match d.is_string() {
                true => field(rec, "s").as_string().map(|s| serde_json::from_str(&s)).transpose().map_err(|e| corrupt("row's server id", e))?,
                false => None,
            };
            decode(text(rec, "t"), text(rec, "l"), server_id, &doc).map_err(|e| corrupt("row", e))
        });
        recs.iter().map(|r| if r.is_undefined() { Ok(None) } else { rows.next().transpose() }).collect()
    }

    /// Row records that are all there (from `getAll`) as rows.
    pub(super) async fn all_rows_of(&self, recs: &Array) -> Result<Vec<LocalRow>, StoreError> {
        Ok(self.rows_of(&recs.iter().collect::<Vec<_>>()).await?.into_iter().flatten().collect())
    }

    /// Outbox records as entries (their seq from the key `k`).
    pub(super) async fn outbox_of(&self, recs: &[JsValue]) -> Result<Vec<OutboxEntry>, StoreError> {
        let docs: Vec<JsValue> = recs.iter().map(|r| field(r, "d")).collect();
        let aad = |i: usize| outbox_aad(&field(&recs[i], "t").as_string().unwrap_or_default(), &field(&recs[i], "l").as_string().unwrap_or_default());
        let texts = self.texts(&docs, aad, "outbox entry").await?;
        recs.iter()
            .zip(texts)
            .map(|(rec, text)| {
                let mut e: OutboxEntry = serde_json::from_str(&text).map_err(|e| corrupt("outbox entry", e))?;
                e.seq = field(rec, "k").as_f64().ok_or_else(|| corrupt("outbox entry", "no key"))? as u64;
                Ok(e)
            })
            .collect()
    }

    /// History records as entries (their id from the key `id`).
    pub(super) async fn history_of(&self, recs: &[JsValue]) -> Result<Vec<HistoryEntry>, StoreError> {
        let docs: Vec<JsValue> = recs.iter().map(|r| field(r, "d")).collect();
        let texts = self.texts(&docs, |_| "h".to_string(), "history").await?;
        recs.iter()
            .zip(texts)
            .map(|(rec, text)| {
                let mut h: HistoryEntry = serde_json::from_str(&text).map_err(|e| corrupt("history", e))?;
                h.id = field(rec, "id").as_f64().unwrap_or(0.0) as u64;
                Ok(h)
            })
            .collect()
    }

    /// Metadata values (`undefined`: none) of `keys`, in order.
    pub(super) async fn metas_of(&self, keys: &[&str], values: &[JsValue]) -> Result<Vec<Option<Value>>, StoreError> {
        let at: Vec<usize> = (0..values.len()).filter(|&i| !values[i].is_undefined()).collect();
        let present: Vec<JsValue> = at.iter().map(|&i| values[i].clone()).collect();
        let texts = self.texts(&present, |j| meta_aad(keys[at[j]]), "metadata").await?;
        let mut out = vec![None; values.len()];
        for (i, text) in at.into_iter().zip(texts) {
            out[i] = Some(serde_json::from_str(&text).map_err(|e| corrupt("metadata", e))?);
        }
        Ok(out)
    }

    /// File chunk records `first, first+1, …` of `key` as bytes.
    pub(super) async fn chunks_of(&self, key: &str, first: usize, recs: &[JsValue]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = vec![Vec::new(); recs.len()];
        let mut to_open = Vec::new();
        for (i, rec) in recs.iter().enumerate() {
            if rec.is_instance_of::<Uint8Array>() {
                out[i] = Uint8Array::new(rec).to_vec();
            } else if let Some(s) = sealed(rec) {
                to_open.push((i, (blob_aad(key, first + i), s)));
            } else {
                return Err(corrupt("file", "a chunk that holds no bytes"));
            }
        }
        if to_open.is_empty() {
            return Ok(out);
        }
        let cipher = self.cipher.as_ref().ok_or_else(|| self.needs_key())?;
        let (at, items): (Vec<usize>, Vec<(String, SealedValue)>) = to_open.into_iter().unzip();
        for (i, bytes) in at.into_iter().zip(cipher.open_all(&items).await?) {
            out[i] = bytes;
        }
        Ok(out)
    }
}
