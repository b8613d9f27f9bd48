//! The IndexedDB store in headless Chromium, against the browser's real IndexedDB: the
//! shared store suite, then what only a browser store meets: reopening, upgrades from
//! older layouts, a database from a newer build, an upgrade blocked by another
//! connection, and the browser closing the connection under the app; and the
//! encrypted store (`encrypted`).
#![cfg(target_family = "wasm")]

use serde_json::json;
use supasync_core::index::IndexDef;
use supasync_core::local_row::{LocalRow, Overlay, RowStatus};
use supasync_core::outbox::OutboxOp;
use supasync_core::store::{NewOutboxEntry, Store, StoreError, WriteBatch};
use supasync_wasm::store::migrations::SCHEMA_VERSION;
use supasync_wasm::IdbStore;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A database name no other test uses.
fn fresh_name() -> String {
    format!("supasync-test-{}", supasync_core::writer::new_local_id())
}

#[path = "idb_store/encrypted.rs"]
mod encrypted;

mod suite {
    supasync_core::store_suite!(browser: supasync_wasm::IdbStore::open(&super::fresh_name()).await.expect("open"));
}

/// Backwards pages as WebKit and Firefox read them (no `getAllRecords`): a key cursor
/// to where the page starts, then one `getAll`.
#[wasm_bindgen_test]
async fn backwards_pages_without_get_all_records() {
    let s = IdbStore::open(&fresh_name()).await.expect("open").without_get_all_records();
    supasync_core::store::suite::ordered_indexes_read_in_order(&s).await;
}

fn row(local_id: &str, body: &str) -> LocalRow {
    LocalRow {
        table: "messages".into(),
        local_id: local_id.into(),
        server_id: None,
        mirror: None,
        overlay: Some(Overlay::Fields { fields: json!({"body": body, "conversation_id": "c1"}).as_object().cloned().unwrap() }),
        status: RowStatus::Pending,
        last_pushed: None,
    }
}

fn write(local_id: &str, body: &str) -> WriteBatch {
    WriteBatch {
        put_rows: vec![row(local_id, body)],
        add_outbox: vec![NewOutboxEntry {
            table: "messages".into(),
            local_id: local_id.into(),
            op: OutboxOp::Insert { row: json!({"body": body}).as_object().cloned().unwrap() },
            created_at_ms: 1,
        }],
        ..Default::default()
    }
}

/// A row's document leaves out what its record's key and `s` hold, and a `synced`
/// status (`supasync_core::row_doc`); a document of the whole row, as stores wrote
/// before, still reads.
#[wasm_bindgen_test]
async fn a_row_document_leaves_out_its_key_and_server_id_and_a_whole_row_still_reads() {
    let name = fresh_name();
    let s = IdbStore::open(&name).await.unwrap();
    let r = LocalRow {
        server_id: Some(json!(42)),
        mirror: json!({"id": 42, "body": "hello"}).as_object().cloned(),
        overlay: None,
        status: RowStatus::Synced,
        ..row("L1", "")
    };
    s.apply(WriteBatch { put_rows: vec![r.clone()], ..Default::default() }).await.unwrap();
    let doc = encrypted::row_doc(&name, "messages", "L1").await.as_string().expect("a plaintext document");
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc, json!({"mirror": {"id": 42, "body": "hello"}}), "only the mirror");
    assert_eq!(s.get_row("messages", "L1").await.unwrap().unwrap(), r);
    assert_eq!(s.find_by_server_id("messages", &json!(42)).await.unwrap().unwrap(), r);

    encrypted::set_row_doc(&name, "messages", "L1", &serde_json::to_string(&r).unwrap().into()).await;
    assert_eq!(s.get_row("messages", "L1").await.unwrap().unwrap(), r, "a whole row written before still reads");
    s.close_connection();
    IdbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn what_was_written_is_there_after_reopening() {
    let name = fresh_name();
    let s = IdbStore::open(&name).await.unwrap();
    s.ensure_index("messages", &IndexDef::column("conversation_id")).await.unwrap();
    s.apply(write("L1", "hello")).await.unwrap();
    s.close_connection();
    drop(s);
    let s = IdbStore::open(&name).await.unwrap();
    assert_eq!(s.get_row("messages", "L1").await.unwrap().unwrap(), row("L1", "hello"));
    assert_eq!(s.outbox().await.unwrap().len(), 1);
    assert_eq!(s.rows_by("messages", "conversation_id", &json!("c1")).await.unwrap().len(), 1, "indexes survive reopening");
    // Seqs keep growing across reopening, even after the outbox emptied.
    let seq1 = s.outbox().await.unwrap()[0].seq;
    s.apply(WriteBatch { delete_outbox: vec![seq1], ..Default::default() }).await.unwrap();
    s.apply(write("L2", "again")).await.unwrap();
    assert!(s.outbox().await.unwrap()[0].seq > seq1);
    IdbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn every_older_layout_upgrades_keeping_its_data() {
    for from in 1..SCHEMA_VERSION {
        let name = fresh_name();
        let old = IdbStore::open_at_version(&name, from).await.unwrap();
        old.apply(WriteBatch { put_rows: vec![row("L1", "kept")], ..Default::default() }).await.unwrap();
        if from >= 2 {
            old.apply(write("L2", "queued")).await.unwrap();
            old.apply(write("L4", "refused")).await.unwrap();
            let mut refused = old.last_outbox_entry("messages", "L4").await.unwrap().unwrap();
            refused.rejected = Some("the server said no".into());
            old.apply(WriteBatch { put_outbox: vec![refused], ..Default::default() }).await.unwrap();
        }
        old.close_connection();
        drop(old);
        let s = IdbStore::open(&name).await.unwrap();
        assert_eq!(supasync_wasm::store::stored_version(&name).await.unwrap(), SCHEMA_VERSION);
        assert_eq!(s.get_row("messages", "L1").await.unwrap().unwrap(), row("L1", "kept"), "from version {from}");
        s.ensure_index("messages", &IndexDef::column("conversation_id")).await.unwrap();
        let found = s.rows_by("messages", "conversation_id", &json!("c1")).await.unwrap();
        assert_eq!(found.len(), if from >= 2 { 3 } else { 1 }, "rows stored before the upgrade are indexed");
        let summary = s.outbox_summary().await.unwrap();
        assert_eq!((summary.pending, summary.rejected), if from >= 2 { (1, 1) } else { (0, 0) }, "refusals stored before the upgrade are counted");
        s.apply(write("L3", "new")).await.unwrap();
        assert_eq!(s.last_outbox_entry("messages", "L3").await.unwrap().unwrap().local_id, "L3");
        assert_eq!(s.history(5).await.unwrap().len(), 0);
        s.close_connection();
        IdbStore::delete(&name).await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn a_database_from_a_newer_build_is_refused_and_left_alone() {
    let name = fresh_name();
    let newer = IdbStore::open_at_version(&name, SCHEMA_VERSION + 1).await.unwrap();
    newer.apply(write("L1", "from the future")).await.unwrap();
    newer.close_connection();
    match IdbStore::open(&name).await {
        Err(StoreError::TooNew { found, supported }) => assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION)),
        other => panic!("expected TooNew, got {other:?}"),
    }
    let again = IdbStore::open_at_version(&name, SCHEMA_VERSION + 1).await.unwrap();
    assert!(again.get_row("messages", "L1").await.unwrap().is_some(), "the newer database is untouched");
    again.close_connection();
    IdbStore::delete(&name).await.unwrap();
}

/// Opens `name` at version 1 the way an old page that ignores `versionchange` would.
async fn foreign_connection(name: &str) -> web_sys::IdbDatabase {
    let factory: web_sys::IdbFactory = js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into()).unwrap().unchecked_into();
    let req = factory.open_with_u32(name, 1).unwrap();
    let (tx, rx) = futures_channel::oneshot::channel();
    let r2 = req.clone();
    let cb = wasm_bindgen::closure::Closure::once(move |_: web_sys::Event| {
        let _ = tx.send(r2.result().unwrap());
    });
    req.set_onsuccess(Some(cb.as_ref().unchecked_ref()));
    rx.await.unwrap().unchecked_into()
}

#[wasm_bindgen_test]
async fn an_upgrade_blocked_by_an_old_connection_is_a_clear_error_and_loses_nothing() {
    let name = fresh_name();
    let v1 = IdbStore::open_at_version(&name, 1).await.unwrap();
    v1.apply(WriteBatch { put_rows: vec![row("L1", "kept")], ..Default::default() }).await.unwrap();
    v1.close_connection();
    let old_page = foreign_connection(&name).await;
    match IdbStore::open(&name).await {
        Err(StoreError::Io(m)) => assert!(m.contains("another tab keeps it open"), "{m}"),
        other => panic!("expected a blocked-upgrade error, got {other:?}"),
    }
    old_page.close();
    let s = IdbStore::open(&name).await.unwrap();
    assert_eq!(s.get_row("messages", "L1").await.unwrap().unwrap(), row("L1", "kept"));
    s.close_connection();
    IdbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn our_connection_steps_aside_for_a_newer_version_and_comes_back() {
    let name = fresh_name();
    let s = IdbStore::open_at_version(&name, SCHEMA_VERSION - 1).await.unwrap();
    s.apply(write("L1", "one")).await.unwrap();
    // Another tab runs a newer build: our open connection must not block it.
    let newer = IdbStore::open(&name).await.expect("the upgrade is not blocked by our connection");
    newer.close_connection();
    drop(newer);
    // The old store's next operation reopens (now at a newer version it cannot open).
    match s.get_row("messages", "L1").await {
        Err(StoreError::TooNew { .. }) => {}
        other => panic!("expected TooNew after another tab upgraded, got {other:?}"),
    }
    IdbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_connection_the_browser_closed_is_reopened_and_no_write_is_lost() {
    let name = fresh_name();
    let s = IdbStore::open(&name).await.unwrap();
    let told = std::rc::Rc::new(std::cell::RefCell::new(vec![]));
    let t = told.clone();
    s.on_reopened(move |n, why| t.borrow_mut().push((n, why.to_string())));
    s.apply(write("L1", "before")).await.unwrap();
    assert_eq!(s.reopened(), 0, "the first connection is not a reopening");
    s.close_connection(); // what WebKit does to a background tab
    s.apply(write("L2", "after")).await.unwrap();
    let ob = s.outbox().await.unwrap();
    assert_eq!(ob.iter().map(|e| e.local_id.as_str()).collect::<Vec<_>>(), vec!["L1", "L2"]);
    assert_eq!(*told.borrow(), vec![(1, "the connection was closed".to_string())], "the reopening is told once");
    s.close_connection();
    IdbStore::delete(&name).await.unwrap();
}
