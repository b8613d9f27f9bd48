//! Live sync between devices of one user, against the dev server: a write on one
//! device reaches another's live query within moments; the writer's own echo does not
//! flicker its list; a device that was cut off catches up on what it missed, deletes
//! included; local writes made offline go out on reconnect; B's devices never see A's.

mod common;

use std::time::Duration;

use common::fault_proxy::{FaultProxy, Mode};
use common::{server, server_rows};
use serde_json::json;
use supasync_core::engine::{Query, RowView};
use supasync_core::live::{LiveStatus, LiveSync, Phase};
use supasync_core::live_query::{live_query, LiveQuery};
use supasync_core::{RowStatus, Store};
use supasync_native::{ReqwestHttp, SqliteStore};
use tokio::time::timeout;

type Device = common::Replica;

async fn device(url: &str, key: &str) -> Device {
    common::replica(url, key).await
}

fn live(d: &Device, url: &str, key: &str) -> LiveSync {
    common::go_live(d, url, key, 25_000)
}

async fn until_live(l: &LiveSync) {
    common::until_phase(l, Phase::Live, 15).await
}

/// The next result of `q` that `ok` accepts.
async fn until_rows(q: &mut LiveQuery<SqliteStore, ReqwestHttp>, secs: u64, ok: impl Fn(&[RowView]) -> bool) -> Vec<RowView> {
    timeout(Duration::from_secs(secs), async {
        loop {
            let rows = q.next().await.expect("engine alive").expect("query");
            if ok(&rows) {
                return rows;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no result in time; the last one was {:?}", q_last(q)))
}

fn q_last(q: &LiveQuery<SqliteStore, ReqwestHttp>) -> String {
    format!("{:?}", q.last().map(|rows| rows.iter().map(|r| (r.row.get("content").cloned(), r.status.clone())).collect::<Vec<_>>()))
}

fn by_content() -> Query {
    Query {
        order: Some(("content".into(), false)),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_write_on_one_device_reaches_the_others_live_query_without_flicker() {
    let s = server().await;
    let (url, key) = (s.url(), s.anon_key());
    let a = device(url, key).await;
    let b = device(url, key).await;
    a.sign_up("live1@example.com", "password-123").await.unwrap();
    b.sign_in("live1@example.com", "password-123").await.unwrap();
    let (la, lb) = (live(&a, url, key), live(&b, url, key));
    until_live(&la).await;
    until_live(&lb).await;

    let mut on_a = live_query(&a, "memories", by_content());
    let mut on_b = live_query(&b, "memories", by_content());
    assert!(on_a.next().await.unwrap().unwrap().is_empty());
    assert!(on_b.next().await.unwrap().unwrap().is_empty());

    let m = a.insert("memories", &json!({"content": "m1"})).await.unwrap();
    // B sees it, synced, with A's local id.
    let rows = until_rows(&mut on_b, 10, |r| r.len() == 1).await;
    assert_eq!((rows[0].local_id.as_str(), rows[0].row["content"].clone()), (m.local_id.as_str(), json!("m1")));
    assert_eq!(rows[0].status, RowStatus::Synced);

    // What A's list showed meanwhile: the row from the start (pending until the push
    // confirmed it), never gone, never duplicated. The echo from Realtime changes
    // nothing the app sees, so it yields no result of its own.
    let mut seen = vec![];
    while let Ok(Some(Ok(rows))) = timeout(Duration::from_millis(1_500), on_a.next()).await {
        seen.push(rows);
    }
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|r| r.len() == 1 && r[0].local_id == m.local_id && r[0].row["content"] == json!("m1")), "{seen:?}");
    let statuses: Vec<_> = seen.iter().map(|r| r[0].status.clone()).collect();
    assert_eq!(statuses.last(), Some(&RowStatus::Synced), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == RowStatus::Synced).count() == 1, "one confirmation, no flicker: {statuses:?}");

    // An edit and a delete on B reach A.
    b.update("memories", &m.local_id, &json!({"content": "m1 edited"})).await.unwrap();
    until_rows(&mut on_a, 10, |r| r.len() == 1 && r[0].row["content"] == json!("m1 edited")).await;
    b.delete("memories", &m.local_id).await.unwrap();
    until_rows(&mut on_a, 10, |r| r.is_empty()).await;
    la.stop();
    lb.stop();
}

#[tokio::test]
async fn a_device_cut_off_catches_up_on_everything_it_missed() {
    let s = server().await;
    let (url, key) = (s.url(), s.anon_key());
    let proxy = FaultProxy::start(url.trim_start_matches("http://").to_string()).await.unwrap();
    let a = device(url, key).await;
    let b = device(&proxy.url(), key).await;
    a.sign_up("live2@example.com", "password-123").await.unwrap();
    b.sign_in("live2@example.com", "password-123").await.unwrap();
    let keep = a.insert("memories", &json!({"content": "keep"})).await.unwrap();
    let gone = a.insert("memories", &json!({"content": "to delete"})).await.unwrap();
    let (la, lb) = (live(&a, url, key), live(&b, &proxy.url(), key));
    until_live(&la).await;
    until_live(&lb).await;
    let mut on_b = live_query(&b, "memories", by_content());
    until_rows(&mut on_b, 10, |r| r.len() == 2).await;

    // B loses the network. While it is away, A edits, deletes and adds; B writes too.
    let mut b_status = lb.statuses();
    proxy.set(Mode::Refuse);
    proxy.cut();
    wait_for_phase(&mut b_status, Phase::Offline).await;
    a.update("memories", &keep.local_id, &json!({"content": "keep (edited)"})).await.unwrap();
    a.delete("memories", &gone.local_id).await.unwrap();
    a.insert("memories", &json!({"content": "new while B away"})).await.unwrap();
    let from_b = b.insert("memories", &json!({"content": "written on B offline"})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(b.status().await.unwrap().pending, 1, "B's write waits");

    // Back online: B pushes its write and pulls what it missed (Realtime replays nothing).
    proxy.set(Mode::Pass);
    let rows = until_rows(&mut on_b, 20, |r| {
        r.len() == 3 && r.iter().all(|x| x.status == RowStatus::Synced) && r.iter().any(|x| x.row["content"] == json!("new while B away"))
    })
    .await;
    let contents: Vec<_> = rows.iter().map(|r| r.row["content"].clone()).collect();
    assert_eq!(contents, [json!("keep (edited)"), json!("new while B away"), json!("written on B offline")]);
    // And A hears of B's write live.
    let mut on_a = live_query(&a, "memories", by_content());
    until_rows(&mut on_a, 10, |r| r.iter().any(|x| x.local_id == from_b.local_id)).await;
    // The server holds exactly this, once each.
    let on_server = server_rows(&s, "memories", "select=content&order=content").await;
    assert_eq!(on_server, vec![json!({"content": "keep (edited)"}), json!({"content": "new while B away"}), json!({"content": "written on B offline"})]);
    la.stop();
    lb.stop();
}

async fn wait_for_phase(st: &mut futures_channel::mpsc::UnboundedReceiver<LiveStatus>, phase: Phase) -> LiveStatus {
    use futures_util::StreamExt;
    timeout(Duration::from_secs(10), async {
        while let Some(s) = st.next().await {
            if s.phase == phase {
                return s;
            }
        }
        panic!("the status stream ended before {phase:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("phase {phase:?} in time"))
}

#[tokio::test]
async fn another_users_devices_never_receive_a_change() {
    let s = server().await;
    let (url, key) = (s.url(), s.anon_key());
    let a = device(url, key).await;
    let b = device(url, key).await;
    a.sign_up("live3a@example.com", "password-123").await.unwrap();
    b.sign_up("live3b@example.com", "password-123").await.unwrap();
    let (la, lb) = (live(&a, url, key), live(&b, url, key));
    until_live(&la).await;
    until_live(&lb).await;
    let mut on_b = live_query(&b, "memories", Query::default());
    assert!(on_b.next().await.unwrap().unwrap().is_empty());
    let m = a.insert("memories", &json!({"content": "private"})).await.unwrap();
    a.delete("memories", &m.local_id).await.unwrap();
    a.insert("memories", &json!({"content": "private too"})).await.unwrap();
    let mut on_a = live_query(&a, "memories", Query::default());
    until_rows(&mut on_a, 10, |r| r.len() == 1 && r[0].status == RowStatus::Synced).await;
    assert!(timeout(Duration::from_millis(1_000), on_b.next()).await.is_err(), "B saw something");
    lb.sync_now().await.unwrap();
    assert!(b.query("memories", &Query::default()).await.unwrap().is_empty());
    la.stop();
    lb.stop();
}

#[tokio::test]
async fn sync_modes_pause_and_resume() {
    use supasync_core::live::SyncMode;
    let s = server().await;
    let (url, key) = (s.url(), s.anon_key());
    let a = device(url, key).await;
    let b = device(url, key).await;
    a.sign_up("modes@example.com", "password-123").await.unwrap();
    b.sign_in("modes@example.com", "password-123").await.unwrap();
    let la = live(&a, url, key);
    until_live(&la).await;
    // B polls every 300 ms, with no channel at all.
    let lb = live(&b, url, key);
    lb.set_mode(SyncMode::Every { ms: 300 });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let joined_before = s.realtime_channels();
    assert_eq!(joined_before, 1, "A's channel only");
    a.insert("memories", &json!({"content": "polled"})).await.unwrap();
    let mut on_b = live_query(&b, "memories", Query::default());
    until_rows(&mut on_b, 10, |r| r.len() == 1).await;
    assert_eq!(s.realtime_channels(), joined_before, "polling joins no channel");

    // Manual: nothing moves until sync_now.
    lb.set_mode(SyncMode::Manual);
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.insert("memories", &json!({"content": "manual"})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(b.query("memories", &Query::default()).await.unwrap().len(), 1, "manual mode waits");
    let mine = b.insert("memories", &json!({"content": "from B, manual"})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.status().await.unwrap().pending, 1, "manual mode does not push by itself");
    lb.sync_now().await.unwrap();
    assert_eq!(b.query("memories", &Query::default()).await.unwrap().len(), 3);
    assert_eq!(b.status().await.unwrap().pending, 0);

    // Realtime, then paused: changes wait; resumed: they arrive.
    lb.set_mode(SyncMode::Realtime);
    until_live(&lb).await;
    lb.pause();
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.insert("memories", &json!({"content": "while paused"})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(b.query("memories", &Query::default()).await.unwrap().len(), 3, "paused");
    lb.resume();
    let mut on_b = live_query(&b, "memories", Query::default());
    until_rows(&mut on_b, 10, |r| r.len() == 4).await;
    // A remote change to a row with a pending local edit moves the mirror under it.
    lb.pause();
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.update("memories", &mine.local_id, &json!({"content": "B's pending edit"})).await.unwrap();
    a.update("memories", &mine.local_id, &json!({"content": "A's edit"})).await.unwrap();
    let mut on_a = live_query(&a, "memories", Query::default());
    until_rows(&mut on_a, 10, |r| r.iter().any(|x| x.local_id == mine.local_id && x.status == RowStatus::Synced && x.row["content"] == json!("A's edit"))).await;
    let change = supasync_core::realtime::PgChange {
        schema: "public".into(),
        table: "memories".into(),
        kind: "UPDATE".into(),
        record: server_rows(&s, "memories", &format!("select=*&local_id=eq.{}", mine.local_id)).await[0].as_object().unwrap().clone(),
        old_record: Default::default(),
        commit_timestamp: None,
        errors: None,
    };
    b.apply_change(&change).await.unwrap();
    let row = b.get("memories", &mine.local_id).await.unwrap().unwrap();
    assert_eq!((row.row["content"].clone(), row.status.clone()), (json!("B's pending edit"), RowStatus::Pending), "the pending edit stays on top");
    assert_eq!(b.store.get_row("memories", &mine.local_id).await.unwrap().unwrap().mirror.unwrap()["content"], json!("A's edit"), "the mirror moved");
    la.stop();
    lb.stop();
}

#[tokio::test]
async fn a_push_that_gets_no_answer_shows_offline_though_the_socket_stays_up() {
    let s = server().await;
    let (url, key) = (s.url(), s.anon_key());
    let proxy = FaultProxy::start(url.trim_start_matches("http://").to_string()).await.unwrap();
    let b = device(&proxy.url(), key).await;
    b.sign_up("unreachable@example.com", "password-123").await.unwrap();
    let lb = live(&b, &proxy.url(), key);
    until_live(&lb).await;
    let mut status = lb.statuses();
    // New connections are refused; the Realtime socket already open is left alone,
    // as when a browser goes offline with a WebSocket that has not noticed yet.
    proxy.set(Mode::Refuse);
    b.insert("memories", &json!({"content": "no answer"})).await.unwrap();
    let st = wait_for_phase(&mut status, Phase::Offline).await;
    assert_eq!(st.pending, 1);
    assert!(st.last_error.as_deref().is_some_and(|e| e.starts_with("network")), "{st:?}");
    proxy.set(Mode::Pass);
    lb.sync_now().await.expect("sync now");
    let st = wait_for_phase(&mut status, Phase::Live).await;
    assert_eq!((st.pending, st.last_error), (0, None), "the write went out and the indicator is back to live");
    lb.stop();
}
