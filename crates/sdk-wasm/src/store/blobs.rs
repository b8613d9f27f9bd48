//! Files' bytes in IndexedDB: the `blobs` object store, records keyed
//! `[key, chunk number]` holding a `Uint8Array` of [`BLOB_CHUNK`] bytes (the last one
//! shorter). An upload reads a large file one chunk range at a time, so memory stays
//! flat in its size; a write's chunks go in the same transaction as its row and
//! outbox entry (`apply`), so a file is queued with its bytes or not at all. In an
//! encrypted store each chunk is sealed on its own (`[counter block, ciphertext and tag]`, see
//! `cipher`), so a range read opens only the chunks it covers.

use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbKeyRange, IdbObjectStore, IdbTransactionMode};

use super::cipher::sealed;
use super::idb::{issue, request, IdbError};
use super::migrations::BLOBS;
use super::{obj_store, store_err, tx, IdbStore};
use supasync_core::store::StoreError;

/// Bytes per chunk record (the same as the SQLite store's).
pub const BLOB_CHUNK: usize = 256 * 1024;
/// Above any chunk number (IndexedDB keys are doubles).
const LAST: f64 = 9.0e15;

fn chunk_key(key: &str, n: f64) -> JsValue {
    [JsValue::from_str(key), JsValue::from_f64(n)].into_iter().collect::<Array>().into()
}

fn range(key: &str, first: f64, last: f64) -> Result<JsValue, StoreError> {
    IdbKeyRange::bound(&chunk_key(key, first), &chunk_key(key, last)).map(Into::into).map_err(|e| store_err(IdbError::from_js(&e)))
}

/// A file's chunks: `BLOB_CHUNK` bytes each, the last shorter; one empty chunk for no
/// bytes (so an empty file is kept, not absent).
pub(super) fn chunks(bytes: &[u8]) -> Vec<&[u8]> {
    if bytes.is_empty() {
        vec![bytes]
    } else {
        bytes.chunks(BLOB_CHUNK).collect()
    }
}

/// Into an open read-write transaction: drop `key`'s chunks.
pub fn delete(s: &IdbObjectStore, key: &str) -> Result<(), StoreError> {
    issue(s.delete(&range(key, 0.0, LAST)?))?;
    Ok(())
}

/// Into an open read-write transaction: replace `key`'s bytes (with `sealed`, its
/// chunks sealed beforehand).
pub fn put(s: &IdbObjectStore, key: &str, bytes: &[u8], sealed: Option<&[JsValue]>) -> Result<(), StoreError> {
    delete(s, key)?;
    match sealed {
        Some(sealed) => {
            for (i, c) in sealed.iter().enumerate() {
                issue(s.put_with_key(c, &chunk_key(key, i as f64)))?;
            }
        }
        None => {
            for (i, c) in chunks(bytes).into_iter().enumerate() {
                issue(s.put_with_key(&Uint8Array::from(c), &chunk_key(key, i as f64)))?;
            }
        }
    }
    Ok(())
}

/// `key`'s bytes from `offset`, at most `len` (see `Store::read_blob`).
pub async fn read(store: &IdbStore, db: &IdbDatabase, key: &str, offset: u64, len: Option<u64>) -> Result<Option<Vec<u8>>, StoreError> {
    let t = tx(db, &[BLOBS], IdbTransactionMode::Readonly).map_err(store_err)?;
    let s = obj_store(&t, BLOBS).map_err(store_err)?;
    let exists = issue(s.count_with_key(&range(key, 0.0, LAST)?))?;
    let chunk = BLOB_CHUNK as u64;
    let first = (offset / chunk) as f64;
    let last = match len {
        Some(0) => first - 1.0,
        Some(l) => (offset.saturating_add(l - 1) / chunk) as f64,
        None => LAST,
    };
    let got = if last >= first { Some(issue(s.get_all_with_key(&range(key, first, last)?))?) } else { None };
    if request(exists).await.map_err(store_err)?.as_f64().unwrap_or(0.0) == 0.0 {
        return Ok(None);
    }
    let Some(got) = got else { return Ok(Some(vec![])) };
    let parts: Array = request(got).await.map_err(store_err)?.into();
    let parts = store.chunks_of(key, first as usize, &parts.iter().collect::<Vec<_>>()).await?;
    let mut out = Vec::new();
    for (i, data) in parts.into_iter().enumerate() {
        let base = (first as u64 + i as u64) * chunk;
        let from = offset.saturating_sub(base).min(data.len() as u64) as usize;
        out.extend_from_slice(&data[from..]);
    }
    if let Some(l) = len {
        out.truncate(l as usize);
    }
    Ok(Some(out))
}

/// How many bytes `key` holds (`None`: nothing kept).
pub async fn len(db: &IdbDatabase, key: &str) -> Result<Option<u64>, StoreError> {
    let t = tx(db, &[BLOBS], IdbTransactionMode::Readonly).map_err(store_err)?;
    let s = obj_store(&t, BLOBS).map_err(store_err)?;
    let n = request(issue(s.count_with_key(&range(key, 0.0, LAST)?))?).await.map_err(store_err)?.as_f64().unwrap_or(0.0);
    if n == 0.0 {
        return Ok(None);
    }
    // Every chunk but the last is full: read only the last one.
    let last = request(issue(s.get(&chunk_key(key, n - 1.0)))?).await.map_err(store_err)?;
    let tail = match sealed(&last) {
        Some(s) => s.plain_len() as u64,
        None if last.is_undefined() => 0,
        None => Uint8Array::new(&last).length() as u64,
    };
    Ok(Some((n as u64 - 1) * BLOB_CHUNK as u64 + tail))
}
