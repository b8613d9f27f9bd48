//! The store's reads that take more than one request: an index range in order (with a
//! limit, either way), counts over several ranges, several metadata values. Each is
//! one `readonly` transaction whose requests are issued at once or chained without a
//! return to the app, because on IndexedDB the cost of a read is its round trips to
//! the browser's storage, not the bytes: a cold start pays for every one.

use js_sys::{Array, Function, Object, Reflect};
use supasync_core::store::StoreError;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    IdbCursor, IdbCursorDirection, IdbDatabase, IdbIndex, IdbKeyRange, IdbTransactionMode,
};

use super::idb::{issue, request, IdbError};
use super::migrations::{META, ROWS, ROWS_BY_VALUE};
use super::{obj_store, store_err, tx};

/// One bound of an index range: the index entry text and whether it is open.
pub(super) type Bound = (String, bool);

fn key_range(
    lower: &str,
    lower_open: bool,
    upper: &str,
    upper_open: bool,
) -> Result<IdbKeyRange, StoreError> {
    IdbKeyRange::bound_with_lower_open_and_upper_open(
        &JsValue::from_str(lower),
        &JsValue::from_str(upper),
        lower_open,
        upper_open,
    )
    .map_err(|e| store_err(IdbError::from_js(&e)))
}

fn by_value(db: &IdbDatabase) -> Result<IdbIndex, StoreError> {
    let t = tx(db, &[ROWS], IdbTransactionMode::Readonly).map_err(store_err)?;
    obj_store(&t, ROWS)
        .and_then(|s| s.index(ROWS_BY_VALUE).map_err(|e| IdbError::from_js(&e)))
        .map_err(store_err)
}

async fn get_all(
    index: &IdbIndex,
    range: &IdbKeyRange,
    limit: Option<usize>,
) -> Result<Vec<JsValue>, StoreError> {
    let all = match limit {
        Some(n) => {
            request(issue(index.get_all_with_key_and_limit(
                range,
                n.min(u32::MAX as usize) as u32,
            ))?)
            .await?
        }
        None => request(issue(index.get_all_with_key(range))?).await?,
    };
    Ok(Array::from(&all).iter().collect())
}

/// `getAllRecords`, where the browser has it (Chromium 141 and later): `getAll` with a
/// direction, so a backwards page is one request.
fn get_all_records(index: &IdbIndex) -> Option<Function> {
    Reflect::get(index, &JsValue::from_str("getAllRecords"))
        .ok()?
        .dyn_into::<Function>()
        .ok()
}

/// The row records whose index entries lie between `lower` and `upper`, in entry order (ties
/// by local id), or in the reverse of it, up to `limit`.
///
/// Forwards is one `getAll`. Backwards is one `getAllRecords` with the direction
/// `prev` where the browser has it (and `records` allows it: tests turn it off). Where
/// it does not (WebKit and Firefox today), a cursor would cost a round trip per row (a
/// 50-row page was 50); so a key cursor from the end skips `limit - 1` entries in one
/// `advance` to find where the page starts, and one `getAll` from there reads it
/// forwards, reversed here: three round trips whatever the page's size. Entries tied
/// with the first one all come (the range starts at its key), so the reversed order is
/// exactly the backwards cursor's: keys descending, ties by local id descending.
pub(super) async fn rows_in_index(
    db: IdbDatabase,
    lower: &Bound,
    upper: &Bound,
    descending: bool,
    limit: Option<usize>,
    records: bool,
) -> Result<Vec<JsValue>, StoreError> {
    if limit == Some(0) {
        // IndexedDB reads a count of 0 as no limit.
        return Ok(vec![]);
    }
    let index = by_value(&db)?;
    let range = key_range(&lower.0, lower.1, &upper.0, upper.1)?;
    if !descending {
        return get_all(&index, &range, limit).await;
    }
    if let Some(f) = get_all_records(&index).filter(|_| records) {
        let options = Object::new();
        let set = |k: &str, v: &JsValue| {
            Reflect::set(&options, &JsValue::from_str(k), v)
                .map_err(|e| store_err(IdbError::from_js(&e)))
        };
        set("query", &range)?;
        set("direction", &JsValue::from_str("prev"))?;
        if let Some(n) = limit {
            set("count", &JsValue::from_f64(n.min(u32::MAX as usize) as f64))?;
        }
        let req = issue(
            f.call1(&index, &options)
                .and_then(|r| r.dyn_into::<web_sys::IdbRequest>()),
        )?;
        let all = request(req).await?;
        return Ok(Array::from(&all)
            .iter()
            .map(|rec| super::field(&rec, "value"))
            .collect());
    }
    let start = match limit {
        Some(n) if n <= u32::MAX as usize => {
            let req = issue(
                index.open_key_cursor_with_range_and_direction(&range, IdbCursorDirection::Prev),
            )?;
            let first = request(req.clone()).await?;
            let Some(c) = first.dyn_ref::<IdbCursor>() else {
                return Ok(vec![]);
            };
            if n > 1 {
                c.advance(n as u32 - 1)
                    .map_err(|e| store_err(IdbError::from_js(&e)))?;
                let nth = request(req).await?;
                nth.dyn_ref::<IdbCursor>()
                    .map(|c| c.key())
                    .transpose()
                    .map_err(|e| store_err(IdbError::from_js(&e)))?
            } else {
                Some(c.key().map_err(|e| store_err(IdbError::from_js(&e)))?)
            }
        }
        // No limit, or fewer entries than it: the whole range.
        _ => None,
    };
    let page = match start.and_then(|k| k.as_string()) {
        Some(from) => key_range(&from, false, &upper.0, upper.1)?,
        None => range,
    };
    let mut rows = get_all(&index, &page, None).await?;
    rows.reverse();
    if let Some(n) = limit {
        rows.truncate(n);
    }
    Ok(rows)
}

/// How many index entries each range holds: every count issued at once in one
/// transaction, answered in order.
pub(super) async fn count_in_index(
    db: IdbDatabase,
    bounds: &[(Bound, Bound)],
) -> Result<Vec<usize>, StoreError> {
    let index = by_value(&db)?;
    let mut reqs = Vec::with_capacity(bounds.len());
    for (lower, upper) in bounds {
        let range = key_range(&lower.0, lower.1, &upper.0, upper.1)?;
        reqs.push(request(issue(index.count_with_key(&range))?));
    }
    let mut out = Vec::with_capacity(reqs.len());
    for req in reqs {
        out.push(req.await?.as_f64().unwrap_or(0.0) as usize);
    }
    Ok(out)
}

/// Metadata records (`undefined` for none) in the order of `keys`, read at once in
/// one transaction.
pub(super) async fn metas(
    db: IdbDatabase,
    keys: &[String],
) -> Result<Vec<JsValue>, StoreError> {
    let t = tx(&db, &[META], IdbTransactionMode::Readonly).map_err(store_err)?;
    let s = obj_store(&t, META).map_err(store_err)?;
    let mut reqs = Vec::with_capacity(keys.len());
    for k in keys {
        reqs.push(request(issue(s.get(&JsValue::from_str(k)))?));
    }
    let mut out = Vec::with_capacity(reqs.len());
    for req in reqs {
        out.push(req.await.map_err(store_err)?);
    }
    Ok(out)
}
