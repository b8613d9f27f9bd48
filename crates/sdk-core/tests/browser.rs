//! The core in a real browser (headless Chromium via wasm-bindgen-test): the store suite
//! on the memory store, the optimistic write path, local ids (which need the browser's
//! clock and randomness: std's would panic on wasm32), schemas and the failure table.
//! The IndexedDB store runs the same suite in `crates/sdk-wasm/tests/idb_store.rs`.
#![cfg(target_family = "wasm")]

use serde_json::json;
use supasync_core::classify::{classify, Failure, ServerError};
use supasync_core::local_row::RowStatus;
use supasync_core::outbox::OutboxOp;
use supasync_core::store::{MemoryStore, Store};
use supasync_core::writer::{new_local_id, LocalWriter};
use supasync_core::{Schema, TableDecl};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod suite {
    supasync_core::store_suite!(browser: supasync_core::store::MemoryStore::new());
}

#[wasm_bindgen_test]
fn local_ids_are_time_ordered_uuid_v7_in_the_browser() {
    let a = new_local_id();
    let b = new_local_id();
    assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 7);
    assert!(a[..8] <= b[..8], "{a} then {b}");
}

#[wasm_bindgen_test]
async fn optimistic_writes_and_coalescing_in_the_browser() {
    let schema = Schema::new(vec![TableDecl::new("c"), TableDecl::new("m").references("c_id", "c")]).unwrap();
    let store = MemoryStore::new();
    let w = LocalWriter { schema: &schema, store: &store, no_merge_through: 0 };
    let c = w.insert("c", &json!({"title": "t"}), 1).await.unwrap();
    let m = w.insert("m", &json!({"c_id": c.local_id, "body": "hi"}), 2).await.unwrap();
    w.update("m", &m.local_id, &json!({"body": "hello"}), 3).await.unwrap();
    let ob = store.outbox().await.unwrap();
    assert_eq!(ob.len(), 2);
    assert!(matches!(&ob[1].op, OutboxOp::Insert { row } if row["body"] == json!("hello")));
    assert_eq!(store.get_row("m", &m.local_id).await.unwrap().unwrap().status, RowStatus::Pending);
    w.delete("c", &c.local_id, 4).await.unwrap();
    assert_eq!(store.outbox().await.unwrap().len(), 1, "the unpushed insert and its delete cancel out");
}

#[wasm_bindgen_test]
fn schemas_and_failure_classes_in_the_browser() {
    let s = Schema::from_json(r#"{"tables":[{"name":"messages","references":{"conversation_id":"conversations"}},{"name":"conversations"}]}"#).unwrap();
    assert_eq!(s.parent_order().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["conversations", "messages"]);
    let e = ServerError::parse(403, br#"{"code":"42501","message":"new row violates row-level security policy"}"#);
    assert_eq!(classify(&e), Failure::Permanent);
}
