//! Numbered upgrades of the IndexedDB layout, run in `onupgradeneeded`. IndexedDB runs
//! the whole upgrade in one `versionchange` transaction: if a step fails, the database
//! keeps its old version and data. The steps mirror the SQLite store's migrations, so
//! both stores grew alike. A database written by a newer build is refused with
//! [`StoreError::TooNew`](supasync_core::StoreError::TooNew), never guessed at.

use wasm_bindgen::JsValue;
use web_sys::{IdbDatabase, IdbIndexParameters, IdbObjectStoreParameters, IdbTransaction};

/// The layout this build writes.
pub const SCHEMA_VERSION: u32 = 7;

/// Object stores. Each record keeps its JSON document in `d`, as text: one string is
/// the cheapest thing to put through IndexedDB's structured clone, and it is the same
/// document the SQLite store keeps.
pub const ROWS: &str = "rows";
pub const OUTBOX: &str = "outbox";
pub const META: &str = "meta";
pub const HISTORY: &str = "history";
pub const INDEXED: &str = "indexed_columns";
/// Files' bytes, `[key, chunk]` → `Uint8Array` (see `store::blobs`).
pub const BLOBS: &str = "blobs";

/// Indexes.
pub const ROWS_BY_SERVER_ID: &str = "by_server_id";
pub const ROWS_BY_VALUE: &str = "by_value";
pub const OUTBOX_BY_ROW: &str = "by_row";
pub const OUTBOX_REJECTED: &str = "rejected";

fn path(parts: &[&str]) -> JsValue {
    parts.iter().map(|p| JsValue::from_str(p)).collect::<js_sys::Array>().into()
}

/// Run the steps from `old` up to `new` inside the upgrade transaction `tx`.
pub fn upgrade(db: &IdbDatabase, tx: &IdbTransaction, old: u32, new: u32) -> Result<(), JsValue> {
    for step in old..new.min(SCHEMA_VERSION) {
        match step {
            // 1: rows keyed (table, local id) with the server-id map; the outbox in
            // write order (seq = the auto-increment key, never reused); metadata.
            0 => {
                let p = IdbObjectStoreParameters::new();
                p.set_key_path(&path(&["t", "l"]));
                let rows = db.create_object_store_with_optional_parameters(ROWS, &p)?;
                // Rows without a server id (no `s`) are left out of this index.
                rows.create_index_with_str_sequence(ROWS_BY_SERVER_ID, &path(&["t", "s"]))?;
                let p = IdbObjectStoreParameters::new();
                p.set_key_path(&JsValue::from_str("k"));
                p.set_auto_increment(true);
                db.create_object_store_with_optional_parameters(OUTBOX, &p)?;
                db.create_object_store(META)?;
            }
            // 2: the sync history, and the per-row outbox lookup every local write makes.
            1 => {
                let p = IdbObjectStoreParameters::new();
                p.set_key_path(&JsValue::from_str("id"));
                p.set_auto_increment(true);
                db.create_object_store_with_optional_parameters(HISTORY, &p)?;
                tx.object_store(OUTBOX)?.create_index_with_str_sequence(OUTBOX_BY_ROW, &path(&["t", "l"]))?;
            }
            // 3: declared per-column indexes for local queries. Each row carries its
            // keys (`ix`: "table\0column\0value", one per declared column; the value is
            // the row's visible one, see `supasync_core::store::index_key`) and one
            // multi-entry index finds rows by them, kept by IndexedDB in the same
            // transaction as the row.
            2 => {
                db.create_object_store(INDEXED)?;
                let p = IdbIndexParameters::new();
                p.set_multi_entry(true);
                tx.object_store(ROWS)?.create_index_with_str_and_optional_parameters(ROWS_BY_VALUE, "ix", &p)?;
            }
            // 4: refused outbox entries carry `r`, and an index counts them, so the
            // status line (asked after every write) needs no read of the whole outbox.
            // Entries stored before are marked here, in the upgrade transaction.
            3 => {
                let outbox = tx.object_store(OUTBOX)?;
                outbox.create_index_with_str(OUTBOX_REJECTED, "r")?;
                mark_rejected(&outbox)?;
            }
            // 5: indexes are kept in order under names that say their columns
            // (`supasync_core::index`); the per-column indexes of layout 3 are
            // forgotten here. Their `ix` entries stay on rows until the row is next
            // written (or its table's index is built again, which the replica does
            // when it opens), and no range of a new index reaches them: new names
            // are in parentheses.
            4 => {
                tx.object_store(INDEXED)?.clear()?;
            }
            // 6: files' bytes (uploads waiting, downloads kept), in chunks.
            5 => {
                db.create_object_store(BLOBS)?;
            }
            // 7: row documents leave out what the record's key and `s` hold
            // (`supasync_core::row_doc`). Nothing to convert: older documents still
            // read. The number is what makes an older build refuse this database
            // (`TooNew`) rather than fail on each new document.
            6 => {}
            _ => {}
        }
    }
    Ok(())
}

/// Walk the outbox with a cursor and set `r` on refused entries. Runs inside the
/// upgrade transaction, which stays open until the walk ends.
fn mark_rejected(outbox: &web_sys::IdbObjectStore) -> Result<(), JsValue> {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let req = outbox.open_cursor()?;
    let r2 = req.clone();
    let step = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        let Ok(c) = r2.result() else { return };
        let Some(c) = c.dyn_ref::<web_sys::IdbCursorWithValue>() else { return };
        if let Ok(rec) = c.value() {
            let refused = js_sys::Reflect::get(&rec, &"d".into())
                .ok()
                .and_then(|d| d.as_string())
                .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                .is_some_and(|v| !v["rejected"].is_null());
            if refused {
                let _ = js_sys::Reflect::set(&rec, &"r".into(), &JsValue::from(1));
                let _ = c.update(&rec);
            }
        }
        let _ = c.continue_();
    });
    req.set_onsuccess(Some(step.as_ref().unchecked_ref()));
    // One small closure per upgrade, kept for as long as the cursor may call it.
    step.forget();
    Ok(())
}
