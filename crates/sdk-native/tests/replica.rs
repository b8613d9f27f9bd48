//! The one-call facade natively: `Replica::open` on SQLite with the tokio runtime, live
//! sync starting by itself at sign-in, a second device's write arriving in a live
//! query, statuses across sign-out and sign-in, and calls after `close()`.

mod common;

use std::time::Duration;

use common::{manifest, server};
use serde_json::json;
use supasync_core::live::Phase;
use supasync_core::live_query::live_query;
use supasync_core::{EngineError, Query, Replica, ReplicaConfig, Schema};
use supasync_native::{ReqwestHttp, SqliteStore, TokioRuntime};
use tokio::time::timeout;

type Device = Replica<SqliteStore, ReqwestHttp, TokioRuntime>;

async fn open(url: &str, key: &str) -> Device {
    let schema = Schema::from_json(&std::fs::read_to_string(manifest().join("tests/chat_schema.json")).expect("schema")).expect("schema");
    Replica::open(schema, SqliteStore::in_memory().expect("store"), ReqwestHttp::new().expect("http"), TokioRuntime, ReplicaConfig::new(url, key), None)
        .await
        .expect("open")
}

async fn until_phase(d: &Device, want: Phase) {
    let mut st = d.statuses();
    timeout(Duration::from_secs(15), async {
        use futures_util::StreamExt;
        while let Some(s) = st.next().await {
            if s.phase == want {
                return;
            }
        }
        panic!("status stream ended before {want:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("not {want:?} within 15 s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_goes_live_at_sign_in_and_hears_the_other_device() {
    let srv = server().await;
    let (a, b) = (open(srv.url(), srv.anon_key()).await, open(srv.url(), srv.anon_key()).await);
    assert!(!a.is_live(), "nobody signed in: no live sync");
    a.sign_up("facade@example.com", "correct-horse-battery").await.expect("sign up");
    b.sign_in("facade@example.com", "correct-horse-battery").await.expect("sign in");
    until_phase(&a, Phase::Live).await;
    until_phase(&b, Phase::Live).await;

    let c = b.engine().insert("conversations", &json!({"title": "from B"})).await.expect("insert");
    let mut q = live_query(a.engine(), "conversations", Query::default());
    let rows = timeout(Duration::from_secs(15), async {
        loop {
            let rows = q.next().await.expect("alive").expect("query");
            if !rows.is_empty() {
                return rows;
            }
        }
    })
    .await
    .expect("A hears B's write live");
    assert_eq!(rows[0].local_id, c.local_id);

    a.sign_out(false).await.expect("sign out");
    assert!(!a.is_live(), "signed out: live sync stopped");
    assert_eq!(a.status().await.expect("status").phase, Phase::Paused);
    a.sign_in("facade@example.com", "correct-horse-battery").await.expect("sign in again");
    until_phase(&a, Phase::Live).await;

    a.close();
    assert_eq!(a.sync_now().await.unwrap_err(), EngineError::Closed);
    assert_eq!(a.sign_in("facade@example.com", "x").await.unwrap_err().kind(), "closed");
    b.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_replica_says_at_once_what_waits_and_that_live_sync_starts() {
    let srv = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = || Schema::from_json(&std::fs::read_to_string(manifest().join("tests/chat_schema.json")).expect("schema")).expect("schema");
    let open_at = |url: String, key: String| {
        let path = dir.path().join("replica.db");
        async move {
            let store = SqliteStore::open(path).expect("store");
            Replica::open(schema(), store, ReqwestHttp::new().expect("http"), TokioRuntime, ReplicaConfig::new(&url, &key), None).await.expect("open")
        }
    };
    let a = open_at(srv.url().to_string(), srv.anon_key().to_string()).await;
    a.set_mode(supasync_core::live::SyncMode::Manual);
    a.sign_up("reopened@example.com", "correct-horse-battery").await.expect("sign up");
    let c = a.engine().insert("conversations", &json!({"title": "waits"})).await.expect("insert");
    for i in 0..2 {
        a.engine().insert("messages", &json!({"conversation_id": c.local_id, "role": "user", "content": format!("m{i}")})).await.expect("insert");
        assert_eq!(a.status().await.expect("status").pending, 2 + i, "every write that returned is counted");
    }
    a.close();
    // Reopened where the server cannot be reached: the writes still wait, and the
    // status says so as soon as open returns, with live sync starting (not paused).
    let b = open_at("http://127.0.0.1:9".into(), srv.anon_key().to_string()).await;
    let st = b.status().await.expect("status");
    assert_eq!(st.pending, 3);
    assert!(b.is_live(), "the signed-in user's live sync runs");
    assert_ne!(st.phase, Phase::Paused, "live sync is starting: {st:?}");
    b.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_pushed_at_once_still_gets_a_status_after_it() {
    // A watcher that reads the counts itself after a write (the npm package does) shows
    // "1 waiting" until the stream speaks again: the stream must, even when the push was
    // so quick that the driver never saw the write waiting (its last status and its next
    // one are both "0 waiting"). Without that, the app said "1 waiting" for ever.
    use futures_util::StreamExt;
    let srv = server().await;
    let a = open(srv.url(), srv.anon_key()).await;
    a.sign_up("quick@example.com", "correct-horse-battery").await.expect("sign up");
    until_phase(&a, Phase::Live).await;
    let mut st = a.statuses();
    let first = timeout(Duration::from_secs(15), st.next()).await.expect("a first status").expect("alive");
    assert_eq!((first.phase, first.pending), (Phase::Live, 0));
    a.engine().insert("conversations", &json!({"title": "quick"})).await.expect("insert");
    // A write after a quiet spell is counted at once: the stream shows it waiting,
    // then gone.
    let mut seen = vec![];
    let after = timeout(Duration::from_secs(10), async {
        loop {
            let s = st.next().await.expect("alive");
            seen.push(s.pending);
            if s.pending == 0 {
                return s;
            }
        }
    })
    .await
    .expect("a status after the write, saying nothing waits");
    assert_eq!(seen.first(), Some(&1), "the write shown waiting first: {seen:?}");
    assert_eq!(after.rejected, 0);
    a.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_writes_is_counted_in_the_status_stream_without_a_status_per_write() {
    use futures_util::StreamExt;
    let srv = server().await;
    let a = open(srv.url(), srv.anon_key()).await;
    a.set_mode(supasync_core::live::SyncMode::Manual);
    a.sign_up("burst@example.com", "correct-horse-battery").await.expect("sign up");
    let mut st = a.statuses();
    // The status the stream opens with.
    let first = timeout(Duration::from_secs(15), st.next()).await.expect("a first status").expect("alive");
    assert_eq!(first.pending, 0);
    let started = std::time::Instant::now();
    let c = a.engine().insert("conversations", &json!({"title": "burst"})).await.expect("insert");
    for i in 0..99 {
        a.engine().insert("messages", &json!({"conversation_id": c.local_id, "role": "user", "content": format!("m{i}")})).await.expect("insert");
    }
    let took_ms = started.elapsed().as_millis() as usize;
    // Every write is counted once the stream speaks again, and it speaks at most once
    // per RECOUNT_AFTER_MS of writing (plus the first write's, counted at once, and
    // the last, which may come one period late if the driver took the writes' events
    // late), not once per write: a count read per write made each write wait for the
    // read before it (IndexedDB).
    let mut seen = 0;
    let last = timeout(Duration::from_secs(15), async {
        loop {
            let s = st.next().await.expect("alive");
            seen += 1;
            if s.pending == 100 {
                return s;
            }
        }
    })
    .await
    .expect("the stream counts all 100 writes");
    assert_eq!(last.pending, 100);
    let bound = took_ms / supasync_core::live::RECOUNT_AFTER_MS as usize + 3;
    assert!(seen <= bound, "{seen} statuses for 100 writes in {took_ms} ms (at most {bound})");
    a.close();
}
