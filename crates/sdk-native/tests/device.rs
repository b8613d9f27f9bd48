//! The replica of whoever is signed in on a device (`open_replica`): each user's data in
//! their own file, a live query that follows the replica to the next user at sign-in,
//! sign-out and back in finding the data again, a wiped sign-out deleting the file, a
//! refused sign-in leaving the signed-in user as they were, and close ending streams.

mod common;

use std::time::Duration;

use common::{manifest, server};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use supasync_core::{EngineError, Query, ReplicaConfig, RowView, Schema};
use supasync_native::{open_replica, NativeReplica, ReplicaDir};
use tokio::time::timeout;

fn schema() -> Schema {
    Schema::from_json(&std::fs::read_to_string(manifest().join("tests/chat_schema.json")).expect("schema")).expect("schema")
}

async fn open(url: &str, key: &str, dir: &std::path::Path) -> NativeReplica {
    open_replica(schema(), ReplicaConfig::new(url, key), Some(dir)).await.expect("open")
}

/// The next result of `rows` that satisfies `want`.
async fn until<S>(rows: &mut S, want: impl Fn(&[RowView]) -> bool) -> Vec<RowView>
where
    S: Stream<Item = Result<Vec<RowView>, EngineError>> + Unpin,
{
    timeout(Duration::from_secs(15), async {
        loop {
            let r = rows.next().await.expect("the live query is still running").expect("query");
            if want(&r) {
                return r;
            }
        }
    })
    .await
    .expect("the live query answered within 15 s")
}

fn titles(rows: &[RowView]) -> Vec<String> {
    rows.iter().map(|r| r.row["title"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_switch_on_one_device_and_live_queries_follow() {
    let srv = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(srv.url(), srv.anon_key(), dir.path()).await;
    assert_eq!(db.user().await.expect("user"), None);

    let ann = db.sign_up("ann@example.com", "ann-password-1").await.expect("ann signs up");
    db.insert("conversations", &json!({"title": "ann's"})).await.expect("insert");
    let mut live = Box::pin(db.live("conversations", Query::default()).expect("live"));
    assert_eq!(titles(&until(&mut live, |r| !r.is_empty()).await), ["ann's"]);
    db.sync(15_000).await.expect("ann's write reaches the server");

    // Bob signs in on the same device without Ann signing out: the live query moves to
    // Bob's (empty) replica, and Ann's session is not touched.
    let bob = db.sign_up("bob@example.com", "bob-password-1").await.expect("bob signs up");
    assert_ne!(ann.id, bob.id);
    assert!(until(&mut live, |r| r.is_empty()).await.is_empty(), "Bob sees none of Ann's rows");
    db.insert("conversations", &json!({"title": "bob's"})).await.expect("insert");
    assert_eq!(titles(&until(&mut live, |r| !r.is_empty()).await), ["bob's"]);
    assert_eq!(ReplicaDir::new(dir.path()).active_user().as_deref(), Some(bob.id.as_str()));

    // A refused sign-in keeps Bob signed in, with his rows.
    let err = db.sign_in("ann@example.com", "wrong-password").await.unwrap_err();
    assert_eq!(err.kind(), "auth", "{err}");
    assert_eq!(db.user().await.expect("user").map(|u| u.id), Some(bob.id.clone()));

    // Signed out (and wiped), then Ann again: her replica was kept on the device.
    db.sign_out(true).await.expect("bob signs out");
    assert!(until(&mut live, |r| r.is_empty()).await.is_empty());
    assert!(!ReplicaDir::new(dir.path()).store_path(&bob.id).exists(), "a wiped sign-out deletes Bob's file");
    assert_eq!(ReplicaDir::new(dir.path()).active_user(), None);
    db.sign_in("ann@example.com", "ann-password-1").await.expect("ann signs in again");
    assert_eq!(titles(&until(&mut live, |r| !r.is_empty()).await), ["ann's"]);
    assert!(ReplicaDir::new(dir.path()).store_path(&ann.id).exists());

    // The app restarts: Ann is still signed in, live sync on, her rows there.
    db.close().await;
    assert!(timeout(Duration::from_secs(5), live.next()).await.expect("the live query ends at close").is_none());
    assert_eq!(db.insert("conversations", &json!({"title": "late"})).await.unwrap_err(), EngineError::Closed);
    let again = open(srv.url(), srv.anon_key(), dir.path()).await;
    assert_eq!(again.user().await.expect("user").map(|u| u.email), Some(Some("ann@example.com".into())));
    assert_eq!(titles(&again.query("conversations", &Query::default()).await.expect("query")), ["ann's"]);
    let mut statuses = Box::pin(again.statuses().expect("statuses"));
    timeout(Duration::from_secs(15), async {
        while let Some(s) = statuses.next().await {
            if s.phase == supasync_core::live::Phase::Live {
                return;
            }
        }
        panic!("the status stream ended");
    })
    .await
    .expect("live sync starts by itself for the user signed in last");
    again.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_restoring_shows_progress_in_its_status_stream() {
    let srv = server().await;
    let (da, db_dir) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let a = open(srv.url(), srv.anon_key(), da.path()).await;
    a.sign_up("restore@example.com", "restore-password-1").await.expect("sign up");
    let c = a.insert("conversations", &json!({"title": "years of history"})).await.expect("insert");
    for i in 0..2500 {
        a.insert("messages", &json!({"conversation_id": c.local_id, "role": "user", "content": format!("m{i}")})).await.expect("insert");
    }
    a.sync(60_000).await.expect("A pushes everything");
    a.close().await;

    // B subscribes first, then signs in: the restore's progress arrives in the stream.
    let b = open(srv.url(), srv.anon_key(), db_dir.path()).await;
    let mut statuses = Box::pin(b.statuses().expect("statuses"));
    b.sign_in("restore@example.com", "restore-password-1").await.expect("sign in");
    let mut seen = vec![];
    timeout(Duration::from_secs(30), async {
        while let Some(s) = statuses.next().await {
            if let Some(p) = s.progress.as_ref().filter(|p| p.table == "messages") {
                if seen.last() != Some(&p.rows) {
                    seen.push(p.rows);
                }
                assert_eq!(p.total, Some(2500));
            } else if !seen.is_empty() && s.phase == supasync_core::live::Phase::Live {
                return;
            }
        }
        panic!("the status stream ended");
    })
    .await
    .expect("the restore finished within 30 s");
    // Each push request is one transaction of 1,000 rows: pages end inside them.
    assert_eq!(seen.first(), Some(&1000), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]) && seen.iter().all(|r| *r <= 2500), "rows so far only grow: {seen:?}");
    assert_eq!(b.query("messages", &Query::default()).await.expect("query").len(), 2500);
    b.close().await;
}
