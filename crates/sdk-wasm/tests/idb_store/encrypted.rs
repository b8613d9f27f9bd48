//! The encrypted IndexedDB store: the shared store suite over sealed records, then what
//! encryption must hold: IndexedDB read raw (as a copied browser profile would be)
//! shows no row content, token or file byte; a wrong key, another user's key and no
//! key are refused without a change; a plaintext database is encrypted in place with
//! its pending writes, indexes and files.

use serde_json::json;
use supasync_core::index::IndexDef;
use supasync_core::store::{HistoryEntry, Store, StoreError, WriteBatch};
use supasync_wasm::store::StoreCipher;
use supasync_wasm::IdbStore;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

use super::{fresh_name, row, write};

/// The app's key material: 32 bytes.
async fn cipher(key: u8, user: &str) -> StoreCipher {
    StoreCipher::for_user(&js_sys::Uint8Array::from(&[key; 32][..]).into(), user).await.expect("keys")
}

mod suite {
    supasync_core::store_suite!(browser: supasync_wasm::IdbStore::open_encrypted(&super::super::fresh_name(), super::cipher(7, "u1").await).await.expect("open"));
}

#[wasm_bindgen(inline_js = r#"
export async function rawText(name) {
  const db = await new Promise((ok, no) => { const r = indexedDB.open(name); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  const parts = [];
  const walk = (v) => {
    if (typeof v === 'string') parts.push(v);
    else if (v instanceof Uint8Array || v instanceof ArrayBuffer) parts.push(new TextDecoder('latin1').decode(v));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  for (const store of db.objectStoreNames) {
    const t = db.transaction(store);
    const [values, keys] = await Promise.all([t.objectStore(store).getAll(), t.objectStore(store).getAllKeys()].map((r) => new Promise((ok) => { r.onsuccess = () => ok(r.result); })));
    walk(values); walk(keys);
  }
  db.close();
  return parts.join('\n');
}
"#)]
extern "C" {
    /// Every value and key of database `name`, read directly, as text (bytes as Latin-1).
    #[wasm_bindgen(js_name = rawText)]
    async fn raw_text(name: &str) -> JsValue;
}

async fn raw(name: &str) -> String {
    raw_text(name).await.as_string().expect("text")
}

/// A row, an outbox entry, a session, a history entry and a file, each with a secret.
fn secrets() -> WriteBatch {
    let mut b = write("L1", "the secret body");
    let mut r = row("L2", "a second secret");
    r.server_id = Some(json!("server-id-4242"));
    b.put_rows.push(r);
    b.meta = vec![("session".into(), Some(json!({"access_token": "eyJhbGciOiJIUzI1NiJ9.secret-token", "email": "ada@example.com"})))];
    b.history = vec![HistoryEntry { id: 0, at_ms: 1, kind: "reject".into(), table: Some("messages".into()), rows: 1, duration_ms: 0, error: Some("a refusal naming the secret body".into()), detail: json!({}) }];
    b.put_blobs = vec![("attachments/p.txt".into(), b"FILE-BYTES-SECRET ".repeat(20_000))];
    b
}

const VISIBLE_ONLY_ENCRYPTED: [&str; 7] = ["secret body", "second secret", "secret-token", "ada@example.com", "FILE-BYTES-SECRET", "server-id-4242", "refusal naming"];

fn assert_no_secret(text: &str) {
    for s in VISIBLE_ONLY_ENCRYPTED {
        assert!(!text.contains(s), "`{s}` is readable in IndexedDB");
    }
}

#[wasm_bindgen_test]
async fn indexeddb_read_raw_shows_no_row_token_file_or_server_id() {
    let name = fresh_name();
    // The same writes in plaintext first: the raw reader does find them there.
    let plain = IdbStore::open(&name).await.unwrap();
    plain.apply(secrets()).await.unwrap();
    let text = raw(&name).await;
    for s in VISIBLE_ONLY_ENCRYPTED {
        assert!(text.contains(s), "the raw reader finds `{s}` in a plaintext store");
    }
    plain.close_connection();
    IdbStore::delete(&name).await.unwrap();

    let s = IdbStore::open_encrypted(&name, cipher(7, "u1").await).await.unwrap();
    s.ensure_index("messages", &IndexDef::column("conversation_id")).await.unwrap();
    s.apply(secrets()).await.unwrap();
    assert_no_secret(&raw(&name).await);
    // And everything reads back.
    assert_eq!(s.get_row("messages", "L1").await.unwrap().unwrap(), row("L1", "the secret body"));
    assert_eq!(s.find_by_server_id("messages", &json!("server-id-4242")).await.unwrap().unwrap().local_id, "L2");
    assert_eq!(s.meta("session").await.unwrap().unwrap()["email"], "ada@example.com");
    assert_eq!(s.read_blob("attachments/p.txt", 0, None).await.unwrap().unwrap(), b"FILE-BYTES-SECRET ".repeat(20_000));
    assert_eq!(s.blob_len("attachments/p.txt").await.unwrap(), Some(18 * 20_000));
    assert_eq!(s.history(5).await.unwrap()[0].error.as_deref(), Some("a refusal naming the secret body"));
    assert_eq!(s.rows_by("messages", "conversation_id", &json!("c1")).await.unwrap().len(), 2);
    s.close_connection();
    IdbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_wrong_key_another_users_key_and_no_key_are_refused_and_change_nothing() {
    let name = fresh_name();
    let s = IdbStore::open_encrypted(&name, cipher(7, "u1").await).await.unwrap();
    s.apply(write("L1", "kept")).await.unwrap();
    s.close_connection();
    drop(s);
    let before = raw(&name).await;
    for (what, c) in [("another key", Some(cipher(8, "u1").await)), ("another user's key", Some(cipher(7, "u2").await)), ("no key", None)] {
        match IdbStore::open_from(&name, None, c).await {
            Err(StoreError::Key(m)) => assert!(m.contains(&name), "{what}: {m}"),
            other => panic!("{what}: expected a key error, got {other:?}"),
        }
    }
    assert_eq!(raw(&name).await, before, "nothing was changed by the refused opens");
    let s = IdbStore::open_encrypted(&name, cipher(7, "u1").await).await.unwrap();
    assert_eq!(s.get_row("messages", "L1").await.unwrap().unwrap(), row("L1", "kept"));
    assert_eq!(s.outbox().await.unwrap().len(), 1);
    s.close_connection();
    IdbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_plaintext_store_is_encrypted_in_place_with_its_pending_writes() {
    let name = fresh_name();
    let plain = IdbStore::open(&name).await.unwrap();
    plain.ensure_index("messages", &IndexDef::column("conversation_id")).await.unwrap();
    plain.apply(secrets()).await.unwrap();
    plain.apply(write("L3", "written offline")).await.unwrap();
    let outbox = plain.outbox().await.unwrap();
    let summary = plain.outbox_summary().await.unwrap();
    plain.close_connection();
    drop(plain);

    let s = IdbStore::open_encrypted(&name, cipher(7, "u1").await).await.unwrap();
    assert_no_secret(&raw(&name).await);
    assert_eq!(s.outbox().await.unwrap(), outbox, "every pending write, in order, with its seq");
    assert_eq!(s.outbox_summary().await.unwrap(), summary);
    assert_eq!(s.get_row("messages", "L3").await.unwrap().unwrap(), row("L3", "written offline"));
    assert_eq!(s.find_by_server_id("messages", &json!("server-id-4242")).await.unwrap().unwrap().local_id, "L2");
    assert_eq!(s.rows_by("messages", "conversation_id", &json!("c1")).await.unwrap().len(), 3, "the index still answers");
    assert_eq!(s.meta("session").await.unwrap().unwrap()["email"], "ada@example.com");
    assert_eq!(s.read_blob("attachments/p.txt", 0, Some(17)).await.unwrap().unwrap(), b"FILE-BYTES-SECRET");
    // Writes go on after it, sealed, and seqs keep growing.
    s.apply(write("L4", "after")).await.unwrap();
    let after = s.outbox().await.unwrap();
    assert!(after.last().unwrap().seq > outbox.last().unwrap().seq);
    s.close_connection();
    drop(s);
    // Now it is encrypted: opening it in plaintext is refused.
    assert!(matches!(IdbStore::open(&name).await, Err(StoreError::Key(_))));
    IdbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_key_that_is_not_32_bytes_or_not_for_hkdf_is_refused() {
    let short = js_sys::Uint8Array::from(&[1u8; 16][..]);
    assert!(matches!(StoreCipher::for_user(&short.into(), "u1").await, Err(StoreError::Key(m)) if m.contains("32 bytes")));
    assert!(matches!(StoreCipher::for_user(&JsValue::from_str("hunter2"), "u1").await, Err(StoreError::Key(_))));
}

#[wasm_bindgen_test]
async fn two_tabs_encrypting_one_plaintext_store_at_once_with_two_keys_one_wins_and_nothing_is_lost() {
    let name = fresh_name();
    let plain = IdbStore::open(&name).await.unwrap();
    plain.apply(write("L1", "kept")).await.unwrap();
    plain.close_connection();
    drop(plain);
    let (seven, eight) = (cipher(7, "u1").await, cipher(8, "u1").await);
    let (a, b) = futures_util::join!(IdbStore::open_encrypted(&name, seven), IdbStore::open_encrypted(&name, eight));
    let (winner, loser_key) = match (a, b) {
        (Ok(s), Err(StoreError::Key(_))) => (s, 8),
        (Err(StoreError::Key(_)), Ok(s)) => (s, 7),
        other => panic!("expected one open to win and the other to be refused, got {other:?}"),
    };
    assert_eq!(winner.get_row("messages", "L1").await.unwrap().unwrap(), row("L1", "kept"));
    assert_eq!(winner.outbox().await.unwrap().len(), 1);
    winner.close_connection();
    drop(winner);
    assert!(matches!(IdbStore::open_encrypted(&name, cipher(loser_key, "u1").await).await, Err(StoreError::Key(_))), "the losing key opens nothing");
    IdbStore::delete(&name).await.unwrap();
}
