//! The encrypted IndexedDB store: the shared store suite over sealed records, then what
//! encryption must hold: IndexedDB read raw (as a copied browser profile would be)
//! shows no row content, token or file byte; a wrong key, another user's key and no
//! key are refused without a change; a plaintext database is encrypted in place with
//! its pending writes, indexes and files; values in the first sealed format (AES-GCM,
//! made here in JavaScript from the format's description) still open; a changed or
//! moved value does not; no keystream block is used twice.

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

const text = (s) => new TextEncoder().encode(s);
const request = (r) => new Promise((ok, no) => { r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
const done = (t) => new Promise((ok, no) => { t.oncomplete = ok; t.onerror = () => no(t.error); });

export async function rewriteAsFirstFormat(name, keyByte, user, table, localId, rowText, checkText) {
  const base = await crypto.subtle.importKey('raw', new Uint8Array(32).fill(keyByte), 'HKDF', false, ['deriveKey']);
  const key = await crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: text('supasync replica store v1'), info: text(user) }, base, { name: 'AES-GCM', length: 256 }, false, ['encrypt']);
  const seal = async (place, plain) => {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    return [iv, await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: text('v1\0' + place) }, key, text(plain))];
  };
  const row = await seal(`r\0${table}\0${localId}`, rowText);
  const check = await seal('m\0supasync.cipher', checkText);
  const db = await request(indexedDB.open(name));
  const t = db.transaction(['rows', 'meta'], 'readwrite');
  const rec = await request(t.objectStore('rows').get([table, localId]));
  rec.d = row;
  t.objectStore('rows').put(rec);
  t.objectStore('meta').put(check, 'supasync.cipher');
  await done(t);
  db.close();
}

export async function rowDoc(name, table, localId) {
  const db = await request(indexedDB.open(name));
  const rec = await request(db.transaction('rows').objectStore('rows').get([table, localId]));
  db.close();
  return rec.d;
}

export async function setRowDoc(name, table, localId, d) {
  const db = await request(indexedDB.open(name));
  const t = db.transaction('rows', 'readwrite');
  const rec = await request(t.objectStore('rows').get([table, localId]));
  rec.d = d;
  t.objectStore('rows').put(rec);
  await done(t);
  db.close();
}
"#)]
extern "C" {
    /// Every value and key of database `name`, read directly, as text (bytes as Latin-1).
    #[wasm_bindgen(js_name = rawText)]
    async fn raw_text(name: &str) -> JsValue;
    /// Row `local_id`'s document and the key check replaced by values in the first
    /// sealed format (AES-GCM under the HKDF key with the user as info; additional data
    /// `v1\0` and the place), sealed here from `row_text` and `check_text`.
    #[wasm_bindgen(js_name = rewriteAsFirstFormat)]
    async fn rewrite_as_first_format(name: &str, key_byte: u8, user: &str, table: &str, local_id: &str, row_text: &str, check_text: &str);
    /// A row record's `d`, read directly.
    #[wasm_bindgen(js_name = rowDoc)]
    pub(super) async fn row_doc(name: &str, table: &str, local_id: &str) -> JsValue;
    /// A row record's `d` replaced directly.
    #[wasm_bindgen(js_name = setRowDoc)]
    pub(super) async fn set_row_doc(name: &str, table: &str, local_id: &str, d: &JsValue);
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
    assert_eq!(s.get_row("messages", "L2").await.unwrap().unwrap().server_id, Some(json!("server-id-4242")), "the sealed document keeps the server id its record held");
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

#[wasm_bindgen_test]
async fn values_in_the_first_sealed_format_still_open_and_new_writes_use_the_second() {
    let name = fresh_name();
    let s = IdbStore::open_encrypted(&name, cipher(7, "u1").await).await.unwrap();
    s.apply(write("L1", "sealed before")).await.unwrap();
    s.close_connection();
    drop(s);
    let doc = serde_json::to_string(&row("L1", "sealed before")).unwrap();
    rewrite_as_first_format(&name, 7, "u1", "messages", "L1", &doc, "supasync replica key check v1").await;
    let first = js_sys::Array::from(&row_doc(&name, "messages", "L1").await);
    assert_eq!(js_sys::Uint8Array::new(&first.get(0)).length(), 12, "the row is in the first format now");

    assert!(matches!(IdbStore::open_encrypted(&name, cipher(8, "u1").await).await, Err(StoreError::Key(_))), "a wrong key is still refused by a first-format check");
    let s = IdbStore::open_encrypted(&name, cipher(7, "u1").await).await.unwrap();
    assert_eq!(s.get_row("messages", "L1").await.unwrap().unwrap(), row("L1", "sealed before"));
    s.apply(write("L2", "sealed after")).await.unwrap();
    let second = row_doc(&name, "messages", "L2").await;
    assert!(second.is_instance_of::<js_sys::Uint8Array>(), "a new write is sealed in the second format: one Uint8Array");
    assert_eq!(s.get_row("messages", "L2").await.unwrap().unwrap(), row("L2", "sealed after"));
    assert_eq!(s.outbox().await.unwrap().len(), 2);
    s.close_connection();
    IdbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_sealed_value_changed_or_moved_to_another_record_does_not_open() {
    let name = fresh_name();
    let s = IdbStore::open_encrypted(&name, cipher(7, "u1").await).await.unwrap();
    s.apply(write("L1", "one")).await.unwrap();
    s.apply(write("L2", "two")).await.unwrap();
    s.close_connection();
    drop(s);
    let original = row_doc(&name, "messages", "L1").await;
    // One bit of the ciphertext (after the 16-byte counter block) flipped.
    let mut flipped = js_sys::Uint8Array::new(&original).to_vec();
    flipped[19] ^= 1;
    set_row_doc(&name, "messages", "L1", &js_sys::Uint8Array::from(&flipped[..]).into()).await;
    // L1's document put in L2's record.
    set_row_doc(&name, "messages", "L2", &original).await;
    let s = IdbStore::open_encrypted(&name, cipher(7, "u1").await).await.unwrap();
    for l in ["L1", "L2"] {
        match s.get_row("messages", l).await {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("does not decrypt"), "{l}: {m}"),
            other => panic!("{l}: expected a corrupt record, got {other:?}"),
        }
    }
    s.close_connection();
    IdbStore::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn no_keystream_block_is_used_twice_by_batches_sealed_at_once() {
    let c = cipher(7, "u1").await;
    let small = vec![7u8; 700];
    let big = vec![9u8; 100_000];
    // Batches that fit the segment left, and ones that need a new one, at once.
    let batch = |n: usize, b: &'static [u8]| (0..n).map(|i| (format!("r\0t\0{i}"), b)).collect::<Vec<_>>();
    let (small, big): (&'static [u8], &'static [u8]) = (small.leak(), big.leak());
    let batches = [batch(30, small), batch(2, big), batch(90, small), batch(1, big), batch(5, small)];
    let sealed = futures_util::future::join_all(batches.iter().map(|b| c.seal_all(b))).await;
    let mut used: Vec<(Vec<u8>, u32, u32)> = Vec::new();
    let (mut to_open, mut plains) = (Vec::new(), Vec::new());
    for (values, b) in sealed.into_iter().zip(&batches) {
        let values = values.expect("sealed");
        assert_eq!(values.len(), b.len());
        for (v, (place, plain)) in values.iter().zip(b) {
            // The counter block, the ciphertext, a 16-byte tag.
            let whole = js_sys::Uint8Array::new(v).to_vec();
            assert_eq!(whole.len(), 16 + plain.len() + 16);
            let counter = &whole[..16];
            let start = u32::from_be_bytes(counter[12..].try_into().unwrap());
            used.push((counter[..12].to_vec(), start, start + plain.len().div_ceil(16) as u32));
            to_open.push((place.clone(), supasync_wasm::store::cipher::sealed_doc(v).expect("a sealed value")));
            plains.push(plain.to_vec());
        }
    }
    used.sort();
    for w in used.windows(2) {
        assert!(w[0].0 != w[1].0 || w[0].2 <= w[1].1, "keystream blocks {:?} and {:?} overlap", w[0], w[1]);
    }
    // And each opens to what it held.
    assert_eq!(c.open_all(&to_open).await.expect("opened"), plains);
}
