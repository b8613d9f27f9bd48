//! Encryption at rest (`open_encrypted_replica`, SQLite3MC's AEGIS-256): what a copied replica
//! directory gives away (the raw bytes of every file, next to a plaintext replica that
//! does show its rows), a wrong or missing key (its own error kind, nothing changed), a
//! plaintext replica with writes still waiting encrypted as it opens and then rekeyed,
//! the writes reaching the server once, and two users on one device whose store keys
//! do not open each other's files.

mod common;

use std::path::Path;

use common::{fault_proxy, manifest, server, server_rows};
use serde_json::json;
use supasync_core::store::{Store, WriteBatch};
use supasync_core::outbox::{NewOutboxEntry, OutboxOp};
use supasync_core::{EngineError, Query, ReplicaConfig, Schema, StoreError};
use supasync_native::store::cipher::{self, FileKind};
use supasync_native::{open_encrypted_replica, open_replica, rekey_replica, EncryptionKey, NativeReplica, ReplicaDir, SqliteStore};

fn schema() -> Schema {
    Schema::from_json(&std::fs::read_to_string(manifest().join("tests/chat_schema.json")).expect("schema")).expect("schema")
}

fn key(byte: u8) -> EncryptionKey {
    EncryptionKey::from_bytes(&[byte; 32]).expect("key")
}

async fn open(url: &str, anon: &str, dir: &Path, k: Option<EncryptionKey>) -> Result<NativeReplica, EngineError> {
    let cfg = ReplicaConfig::new(url, anon);
    match k {
        Some(k) => open_encrypted_replica(schema(), cfg, dir, k).await,
        None => open_replica(schema(), cfg, Some(dir)).await,
    }
}

/// Every byte of every file under `dir/users` (the stores, their WAL and shared memory).
fn disk_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir.join("users")).expect("users dir") {
        all.extend(std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    all
}

fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn titles(rows: &[supasync_core::RowView]) -> Vec<String> {
    rows.iter().map(|r| r.row["title"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_replica_keeps_nothing_readable_on_disk() {
    let srv = server().await;
    for encrypted in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let email = format!("cipher-{encrypted}@example.com");
        let db = open(srv.url(), srv.anon_key(), dir.path(), encrypted.then(|| key(7))).await.expect("open");
        db.sign_up(&email, "cipher-password-1").await.expect("sign up");
        let c = db.insert("conversations", &json!({"title": "Trip to Lisbon"})).await.expect("insert");
        db.insert("messages", &json!({"conversation_id": c.local_id, "role": "user", "content": "the door code is 4711"}))
            .await
            .expect("insert");
        db.sync(15_000).await.expect("sync");
        // The access token the store keeps (whole: a short needle such as a JWT's
        // `eyJ` turns up in megabytes of ciphertext by chance).
        let token = db.current().expect("open").engine().session().await.expect("session").access_token;
        let needles = ["Trip to Lisbon", "the door code is 4711", email.as_str(), token.as_str(), "SQLite format 3"];
        // Read while the replica is open (the WAL holds the latest pages), then closed.
        for open_now in [true, false] {
            if !open_now {
                db.close().await;
            }
            let bytes = disk_bytes(dir.path());
            let seen: Vec<&str> = needles.into_iter().filter(|s| holds(&bytes, s)).collect();
            if encrypted {
                assert!(seen.is_empty(), "an encrypted replica shows {seen:?} in its files (open: {open_now})");
            } else {
                // The same check finds them when they are there.
                assert!(seen.contains(&"Trip to Lisbon") && seen.contains(&email.as_str()) && seen.contains(&token.as_str()), "plaintext shows {seen:?}");
            }
        }
    }
    // Opened again with its key: the user is signed in, the rows are there.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(srv.url(), srv.anon_key(), dir.path(), Some(key(9))).await.expect("open");
    db.sign_up("cipher-again@example.com", "cipher-password-1").await.expect("sign up");
    db.insert("conversations", &json!({"title": "kept"})).await.expect("insert");
    db.close().await;
    let db = open(srv.url(), srv.anon_key(), dir.path(), Some(key(9))).await.expect("open again");
    assert_eq!(db.user().await.expect("user").and_then(|u| u.email).as_deref(), Some("cipher-again@example.com"));
    assert_eq!(titles(&db.query("conversations", &Query::default()).await.expect("query")), ["kept"]);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_key_is_its_own_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("replica.db");
    {
        let s = SqliteStore::open_encrypted(&path, &key(1)).expect("create");
        let batch = WriteBatch { meta: vec![("probe".into(), Some(json!("kept")))], ..Default::default() };
        s.apply(batch).await.expect("write");
    }
    let before = std::fs::read(&path).expect("read");
    let err = SqliteStore::open_encrypted(&path, &key(2)).err().expect("a wrong key must fail");
    assert!(matches!(err, StoreError::Key(ref m) if m.contains("does not open")), "{err:?}");
    assert_eq!(EngineError::Store(err).kind(), "key");
    let err = SqliteStore::open(&path).err().expect("no key must fail");
    assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains("open it with its key")), "{err:?}");
    assert_eq!(std::fs::read(&path).expect("read"), before, "the file is not touched");
    let s = SqliteStore::open_encrypted(&path, &key(1)).expect("the right key opens it");
    assert_eq!(s.meta("probe").await.expect("read"), Some(json!("kept")));

    // Through the replica: the error kind the bindings and the CLI show.
    let d = tempfile::tempdir().expect("tempdir");
    let users = ReplicaDir::new(d.path()).encrypted(key(3));
    users.set_active_user("u1").expect("active");
    drop(users.open_store("u1").expect("create"));
    let err = open("http://127.0.0.1:9", "anon", d.path(), Some(key(4))).await.err().expect("a wrong key must fail");
    assert_eq!(err.kind(), "key", "{err}");
    assert!(matches!(EncryptionKey::from_hex("12ab"), Err(StoreError::Key(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_replica_is_encrypted_then_rekeyed_and_its_waiting_writes_reach_the_server_once() {
    let srv = server().await;
    let proxy = fault_proxy::FaultProxy::start(srv.url().trim_start_matches("http://").to_string()).await.expect("proxy");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&proxy.url(), srv.anon_key(), dir.path(), None).await.expect("open");
    let user = db.sign_up("rekey@example.com", "rekey-password-1").await.expect("sign up");
    // The server goes away: the writes wait in the outbox.
    proxy.set(fault_proxy::Mode::Refuse);
    let c = db.insert("conversations", &json!({"title": "written offline"})).await.expect("insert");
    for i in 0..3 {
        db.insert("messages", &json!({"conversation_id": c.local_id, "role": "user", "content": format!("offline {i}")}))
            .await
            .expect("insert");
    }
    assert_eq!(db.status().await.expect("status").pending, 4);
    db.close().await;
    let path = ReplicaDir::new(dir.path()).store_path(&user.id);
    assert_eq!(cipher::file_kind(&path).expect("kind"), FileKind::Plain);

    // Opened with a key: encrypted in place, the waiting writes still waiting.
    let db = open(&proxy.url(), srv.anon_key(), dir.path(), Some(key(5))).await.expect("open encrypted");
    assert_eq!(cipher::file_kind(&path).expect("kind"), FileKind::Opaque);
    assert_eq!(db.status().await.expect("status").pending, 4);
    db.close().await;
    assert!(!holds(&disk_bytes(dir.path()), "written offline"));

    // A key change, stopped half way and run again: every store ends on the new key.
    rekey_replica(dir.path(), Some(key(5)), key(6)).expect("rekey");
    rekey_replica(dir.path(), Some(key(5)), key(6)).expect("rekey again is harmless");
    assert_eq!(open(&proxy.url(), srv.anon_key(), dir.path(), Some(key(5))).await.err().expect("the old key").kind(), "key");
    let db = open(&proxy.url(), srv.anon_key(), dir.path(), Some(key(6))).await.expect("the new key");
    assert_eq!(db.status().await.expect("status").pending, 4);

    // Back online: each write reaches the server once.
    proxy.set(fault_proxy::Mode::Pass);
    db.sync(15_000).await.expect("sync");
    assert_eq!(db.status().await.expect("status").pending, 0);
    let convs = server_rows(&srv, "conversations", "title=eq.written%20offline").await;
    assert_eq!(convs.len(), 1, "{convs:?}");
    let id = convs[0]["id"].as_str().map(str::to_string).unwrap_or_else(|| convs[0]["id"].to_string());
    let msgs = server_rows(&srv, "messages", &format!("conversation_id=eq.{id}")).await;
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    db.close().await;
}

#[test]
fn two_users_on_one_device_cannot_open_each_others_store() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = ReplicaDir::new(d.path()).encrypted(key(8));
    drop(dir.open_store("ann").expect("ann's store"));
    drop(dir.open_store("bob").expect("bob's store"));
    let err = SqliteStore::open_encrypted(dir.store_path("bob"), &key(8).for_user("ann")).err().expect("ann's key on bob's store");
    assert!(matches!(err, StoreError::Key(_)), "{err:?}");
    let err = SqliteStore::open_encrypted(dir.store_path("bob"), &key(8)).err().expect("the app's key itself");
    assert!(matches!(err, StoreError::Key(_)), "{err:?}");
    assert_eq!(dir.users().expect("users"), ["ann", "bob"]);

    // A key change that stopped after Ann's store: run again, it finishes Bob's.
    cipher::reencrypt(&dir.store_path("ann"), Some(&key(8).for_user("ann")), &key(10).for_user("ann"))
        .expect("ann's store on the new key");
    let dir = dir.rekey(key(10)).expect("rekey the rest");
    drop(dir.open_store("ann").expect("ann's store opens with the new key"));
    drop(dir.open_store("bob").expect("bob's store opens with the new key"));
}

#[tokio::test]
async fn an_encryption_that_stopped_before_its_swap_leaves_the_store_whole() {
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("replica.db");
    {
        let s = SqliteStore::open(&path).expect("plaintext store");
        s.apply(WriteBatch { meta: vec![("probe".into(), Some(json!("kept")))], ..Default::default() }).await.expect("write");
    }
    // What a run killed during the copy leaves beside it: half a new file.
    let half = d.path().join("replica.db-reencrypting");
    std::fs::write(&half, b"half a copy").expect("write");
    assert_eq!(cipher::file_kind(&path).expect("kind"), FileKind::Plain, "the store itself is untouched");
    let s = SqliteStore::open_encrypted(&path, &key(11)).expect("encrypted on the next open");
    assert_eq!(s.meta("probe").await.expect("read"), Some(json!("kept")));
    assert!(!half.exists(), "the half copy is gone");
    assert_eq!(cipher::file_kind(&path).expect("kind"), FileKind::Opaque);
}

/// A store in supasync's first encrypted format (SQLCipher 4, 4 KiB pages, HMAC-SHA256:
/// `tests/fixtures/replica-sqlcipher-v1.db`, written by that build with a conversation
/// and three messages made offline, so four writes wait) opens with its key, is
/// converted to AEGIS-256 as it opens, and keeps every row, every waiting write and its
/// outbox numbering; a wrong key still changes nothing.
#[tokio::test]
async fn a_store_in_the_first_encrypted_format_is_converted_as_it_opens_with_nothing_lost() {
    const USER: &str = "8fd86d71-0381-4bab-a35c-6425718c3d55";
    let d = tempfile::tempdir().expect("tempdir");
    let path = d.path().join("replica.db");
    std::fs::copy(manifest().join("tests/fixtures/replica-sqlcipher-v1.db"), &path).expect("copy the fixture");
    let before = std::fs::read(&path).expect("read");
    assert!(!holds(&before, "legacy offline"), "the fixture is encrypted");
    let k = key(5).for_user(USER);

    let err = SqliteStore::open_encrypted(&path, &key(6).for_user(USER)).err().expect("a wrong key must fail");
    assert!(matches!(err, StoreError::Key(ref m) if m.contains("does not open")), "{err:?}");
    assert_eq!(std::fs::read(&path).expect("read"), before, "a wrong key leaves the old file as it was");
    assert!(!cipher::opens_with(&path, &k), "not yet in the current format");

    let s = SqliteStore::open_encrypted(&path, &k).expect("the old format opens with its key");
    let waiting = s.outbox().await.expect("outbox");
    assert_eq!(waiting.len(), 4, "{waiting:?}");
    let text = format!("{waiting:?}");
    for needle in ["written under sqlcipher", "legacy offline 0", "legacy offline 1", "legacy offline 2"] {
        assert!(text.contains(needle), "{needle} is still waiting: {text}");
    }
    for e in &waiting {
        assert!(s.get_row(&e.table, &e.local_id).await.expect("row").is_some(), "{}:{} is kept", e.table, e.local_id);
    }
    let last = waiting.iter().map(|e| e.seq).max().expect("a seq");
    let next = NewOutboxEntry { table: "messages".into(), local_id: "after-conversion".into(), op: OutboxOp::Delete, created_at_ms: 1 };
    s.apply(WriteBatch { add_outbox: vec![next], ..Default::default() }).await.expect("a write after");
    let seqs: Vec<u64> = s.outbox().await.expect("outbox").iter().map(|e| e.seq).collect();
    assert_eq!(seqs.len(), 5);
    assert!(seqs.iter().filter(|&&q| q > last).count() == 1, "the outbox numbers on after {last}: {seqs:?}");
    drop(s);

    assert!(cipher::opens_with(&path, &k), "converted to the current format");
    assert!(!holds(&std::fs::read(&path).expect("read"), "legacy offline"), "and still encrypted");
    let s = SqliteStore::open_encrypted(&path, &k).expect("opens again");
    assert_eq!(s.outbox().await.expect("outbox").len(), 5);
}

/// `supasync` with `--store DIR`, its key (if any) in `SUPASYNC_ENCRYPTION_KEY`; the
/// JSON it printed and whether it succeeded.
fn cli(dir: &Path, url: &str, anon: &str, key_hex: Option<&str>, args: &[&str]) -> (bool, serde_json::Value) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_supasync"));
    c.arg("--store").arg(dir).arg("--schema").arg(manifest().join("tests/chat_schema.json")).args(args);
    c.env("SUPABASE_URL", url).env("SUPABASE_ANON_KEY", anon).env_remove("SUPASYNC_ENCRYPTION_KEY");
    if let Some(k) = key_hex {
        c.env("SUPASYNC_ENCRYPTION_KEY", k);
    }
    let out = c.output().expect("run supasync");
    let text = if out.status.success() { &out.stdout } else { &out.stderr };
    let last = text.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap_or_default();
    let v = serde_json::from_slice(last).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(text)));
    (out.status.success(), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_encrypts_a_replica_takes_its_key_from_the_environment_and_syncs() {
    let srv = server().await;
    let d = tempfile::tempdir().expect("tempdir");
    let store = d.path().join("replica");
    let (url, anon) = (srv.url(), srv.anon_key());
    let off = "http://127.0.0.1:9";
    assert!(cli(&store, url, anon, None, &["signup", "--email", "cli-cipher@example.com", "--password", "password-123"]).0);
    let (ok, row) = cli(&store, off, anon, None, &["insert", "memories", r#"{"content":"my secret memory"}"#]);
    assert!(ok, "{row}");

    // The new key from a file (never an argument): the plaintext replica is encrypted.
    let key_file = d.path().join("new.key");
    let hex = "5a".repeat(32);
    std::fs::write(&key_file, format!("{hex}\n")).expect("write key");
    let (ok, v) = cli(&store, off, anon, None, &["rekey", "--new-key-file", key_file.to_str().expect("utf-8")]);
    assert!(ok, "{v}");
    assert_eq!(v["rekeyed"].as_array().map(Vec::len), Some(1));
    assert!(!holds(&disk_bytes(&store), "my secret memory"));

    let (ok, v) = cli(&store, off, anon, None, &["status"]);
    assert!(!ok && v["kind"] == "store" && v["error"].as_str().is_some_and(|m| m.contains("open it with its key")), "{v}");
    let (ok, v) = cli(&store, off, anon, Some(&"77".repeat(32)), &["status"]);
    assert!(!ok && v["kind"] == "key", "a wrong key: {v}");
    let (ok, v) = cli(&store, off, anon, Some("not-a-key"), &["status"]);
    assert!(!ok && v["kind"] == "key" && v["error"].as_str().is_some_and(|m| m.contains("64 hex digits")), "{v}");
    let (ok, v) = cli(&store, off, anon, Some(&hex), &["status"]);
    assert!(ok && v["pending"] == 1, "the waiting write is still there: {v}");

    let (ok, v) = cli(&store, url, anon, Some(&hex), &["sync", "--timeout", "20"]);
    assert!(ok && v["status"]["pending"] == 0, "{v}");
    assert_eq!(server_rows(&srv, "memories", "content=eq.my%20secret%20memory").await.len(), 1);
}
