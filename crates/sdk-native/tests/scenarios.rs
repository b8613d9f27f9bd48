//! Native scenarios against the dev server (issue 3 §5), with the chat schema of seed
//! 004 and the SQL kit. Each device is an engine with its own SQLite store.

mod common;

use common::{manifest, server, server_rows};

use std::time::Duration;

use common::fault_proxy::{FaultProxy, Mode};

use serde_json::{json, Value};
use supasync_core::client::Project;
use supasync_core::engine::Query;
use supasync_core::{Backoff, Engine, EngineConfig, RowStatus, Schema, Store};
use supasync_devserver::DevServer;
use supasync_native::{system_now_ms, ReqwestHttp, SqliteStore, TokioTimer};

type Device = Engine<SqliteStore, ReqwestHttp>;


fn schema() -> Schema {
    Schema::from_json(&std::fs::read_to_string(manifest().join("tests/chat_schema.json")).unwrap()).unwrap()
}

async fn device(server: &DevServer) -> Device {
    device_at(server.url(), server.anon_key()).await
}

async fn device_at(url: &str, anon_key: &str) -> Device {
    device_with(url, anon_key, EngineConfig::with_clock(system_now_ms)).await
}

/// A device that pulls pages of `page` rows (small pages: many pages from few rows).
async fn device_paging(server: &DevServer, page: usize) -> Device {
    device_with(server.url(), server.anon_key(), EngineConfig { page_size: page, ..EngineConfig::with_clock(system_now_ms) }).await
}

async fn device_with(url: &str, anon_key: &str, cfg: EngineConfig) -> Device {
    Engine::open(
        schema(),
        SqliteStore::in_memory().unwrap(),
        ReqwestHttp::with_timeout(Duration::from_secs(5)).unwrap(),
        Project {
            url: url.into(),
            anon_key: anon_key.into(),
        },
        cfg,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn offline_conversation_and_50_messages_push_parents_first_and_restore_elsewhere() {
    let s = server().await;
    let a = device(&s).await;
    let session = a.sign_up("s1@example.com", "password-123").await.unwrap();
    // Offline: local writes need no network and are seen at once.
    let conv = a.insert("conversations", &json!({"title": "Trip"})).await.unwrap();
    for i in 0..50 {
        a.insert(
            "messages",
            &json!({"conversation_id": conv.local_id, "role": "user", "content": format!("message {i}")}),
        )
        .await
        .unwrap();
    }
    let local = a.query("messages", &Query::default()).await.unwrap();
    assert_eq!(local.len(), 50);
    assert!(local.iter().all(|m| m.status == RowStatus::Pending));
    assert_eq!(a.status().await.unwrap().pending, 51);

    let report = a.push().await.unwrap();
    assert_eq!((report.pushed, report.rejected, report.stopped.as_deref()), (51, 0, None));
    assert_eq!(report.requests, 2, "one request per table");
    assert_eq!(a.status().await.unwrap().pending, 0);

    // On the server: the messages point at the conversation's server id.
    let convs = server_rows(&s, "conversations", "select=id,local_id,user_id").await;
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["local_id"], json!(conv.local_id));
    assert_eq!(convs[0]["user_id"], json!(session.user_id));
    let msgs = server_rows(&s, "messages", "select=conversation_id,local_id").await;
    assert_eq!(msgs.len(), 50);
    assert!(msgs.iter().all(|m| m["conversation_id"] == convs[0]["id"]));
    // Locally the reference is still the conversation's local id, and rows are synced.
    let m0 = a.query("messages", &Query { limit: Some(1), ..Default::default() }).await.unwrap();
    assert_eq!(m0[0].row["conversation_id"], json!(conv.local_id));
    assert_eq!(m0[0].status, RowStatus::Synced);
    assert_eq!(m0[0].row["id"].as_str().map(str::len), Some(36), "the server id is known");

    // A second device restores everything with the same local ids, references mapped.
    let b = device(&s).await;
    b.sign_in("s1@example.com", "password-123").await.unwrap();
    let pulled = b.pull().await.unwrap();
    assert_eq!(pulled.rows, 51);
    let on_b = b
        .query("messages", &Query { order: Some(("content".into(), false)), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(on_b.len(), 50);
    assert!(on_b.iter().all(|m| m.row["conversation_id"] == json!(conv.local_id)));
    let conv_b = b.get("conversations", &conv.local_id).await.unwrap().unwrap();
    assert_eq!(conv_b.row["title"], json!("Trip"));
    assert_eq!(conv_b.status, RowStatus::Synced);
    // Pulling again brings nothing new.
    assert_eq!(b.pull().await.unwrap().rows, 0);
}

#[tokio::test]
async fn a_refused_write_is_rolled_back_with_its_dependents_and_the_rest_goes_through() {
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("s5@example.com", "password-123").await.unwrap();
    let good = a.insert("conversations", &json!({"title": "fine"})).await.unwrap();
    let bad = a.insert("conversations", &json!({"title": "   "})).await.unwrap();
    let child = a
        .insert("messages", &json!({"conversation_id": bad.local_id, "role": "user", "content": "orphan"}))
        .await
        .unwrap();
    let bad_role = a
        .insert("messages", &json!({"conversation_id": good.local_id, "role": "robot", "content": "beep"}))
        .await
        .unwrap();
    let ok_msg = a
        .insert("messages", &json!({"conversation_id": good.local_id, "role": "user", "content": "hello"}))
        .await
        .unwrap();
    let report = a.push().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (2, 3), "{report:?}");

    // The refused rows are gone from queries, and the reasons are visible.
    assert!(a.get("conversations", &bad.local_id).await.unwrap().is_none());
    assert!(a.get("messages", &child.local_id).await.unwrap().is_none());
    assert!(a.get("messages", &bad_role.local_id).await.unwrap().is_none());
    assert_eq!(a.get("messages", &ok_msg.local_id).await.unwrap().unwrap().status, RowStatus::Synced);
    let rejected = a.rejected().await.unwrap();
    let reason = |id: &str| rejected.iter().find(|e| e.local_id == id).and_then(|e| e.rejected.clone()).unwrap_or_default();
    assert!(reason(&bad.local_id).contains("title_not_blank"), "{}", reason(&bad.local_id));
    assert!(reason(&child.local_id).contains("parent conversations/"), "{}", reason(&child.local_id));
    assert!(reason(&bad_role.local_id).contains("messages_role_check"), "{}", reason(&bad_role.local_id));
    assert_eq!(a.status().await.unwrap().rejected, 3);
    let rejects = a.history(20).await.unwrap().into_iter().filter(|h| h.kind == "reject").count();
    assert_eq!(rejects, 3);

    // The server has exactly the good rows.
    assert_eq!(server_rows(&s, "conversations", "select=title").await, vec![json!({"title": "fine"})]);
    assert_eq!(server_rows(&s, "messages", "select=content").await, vec![json!({"content": "hello"})]);

    // Discarding a rejected write removes it for good; editing and retrying works.
    a.discard(&child.local_id).await.unwrap();
    assert_eq!(a.rejected().await.unwrap().len(), 2);
    a.discard(&bad.local_id).await.unwrap();
    a.retry(&bad_role.local_id).await.unwrap();
    a.update("messages", &bad_role.local_id, &json!({"role": "assistant"})).await.unwrap();
    let again = a.push().await.unwrap();
    assert_eq!((again.pushed, again.rejected), (1, 0), "{again:?}");
    assert_eq!(server_rows(&s, "messages", "select=content&order=content").await.len(), 2);
    assert!(a.rejected().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_delete_on_one_device_reaches_a_device_that_was_away() {
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("s4@example.com", "password-123").await.unwrap();
    let c = a.insert("conversations", &json!({"title": "to delete"})).await.unwrap();
    let keep = a.insert("conversations", &json!({"title": "to keep"})).await.unwrap();
    a.push().await.unwrap();
    let b = device(&s).await;
    b.sign_in("s4@example.com", "password-123").await.unwrap();
    b.pull().await.unwrap();
    assert!(b.get("conversations", &c.local_id).await.unwrap().is_some());
    // B goes away; A deletes.
    a.delete("conversations", &c.local_id).await.unwrap();
    assert!(a.get("conversations", &c.local_id).await.unwrap().is_none(), "hidden at once");
    let r = a.push().await.unwrap();
    assert_eq!(r.pushed, 1);
    // B comes back: the row is gone on B too; the other stays.
    let pulled = b.pull().await.unwrap();
    assert_eq!(pulled.deleted, 1);
    assert!(b.get("conversations", &c.local_id).await.unwrap().is_none());
    assert!(b.get("conversations", &keep.local_id).await.unwrap().is_some());
}

#[tokio::test]
async fn two_devices_editing_different_fields_both_survive() {
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("s3@example.com", "password-123").await.unwrap();
    let m = a.insert("memories", &json!({"content": "likes tea", "tag": "food", "importance_score": 1.0})).await.unwrap();
    a.push().await.unwrap();
    let b = device(&s).await;
    b.sign_in("s3@example.com", "password-123").await.unwrap();
    b.pull().await.unwrap();
    a.update("memories", &m.local_id, &json!({"tag": "drinks"})).await.unwrap();
    b.update("memories", &m.local_id, &json!({"importance_score": 5.0})).await.unwrap();
    a.push().await.unwrap();
    b.push().await.unwrap();
    a.pull().await.unwrap();
    b.pull().await.unwrap();
    for d in [&a, &b] {
        let row = d.get("memories", &m.local_id).await.unwrap().unwrap().row;
        assert_eq!(row["tag"], json!("drinks"));
        assert_eq!(row["importance_score"].as_f64(), Some(5.0));
    }
}

#[tokio::test]
async fn user_b_never_gets_user_a_rows() {
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("s10a@example.com", "password-123").await.unwrap();
    a.insert("conversations", &json!({"title": "private"})).await.unwrap();
    a.push().await.unwrap();
    let b = device(&s).await;
    b.sign_up("s10b@example.com", "password-123").await.unwrap();
    let pulled = b.pull().await.unwrap();
    assert_eq!((pulled.rows, pulled.deleted), (0, 0));
    assert!(b.query("conversations", &Query::default()).await.unwrap().is_empty());
    // A's delete leaves a tombstone B cannot see either.
    let c = a.query("conversations", &Query::default()).await.unwrap();
    a.delete("conversations", &c[0].local_id).await.unwrap();
    a.push().await.unwrap();
    assert_eq!(b.pull().await.unwrap().deleted, 0);
}

#[tokio::test]
async fn a_new_device_restores_10k_messages_and_their_conversations() {
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("s2@example.com", "password-123").await.unwrap();
    let mut convs = vec![];
    for i in 0..20 {
        convs.push(a.insert("conversations", &json!({"title": format!("c{i}")})).await.unwrap().local_id);
    }
    for i in 0..10_000 {
        let c = &convs[i % convs.len()];
        a.insert("messages", &json!({"conversation_id": c, "role": "user", "content": format!("m{i:05}")}))
            .await
            .unwrap();
    }
    let pushed = a.push().await.unwrap();
    assert_eq!((pushed.pushed, pushed.rejected), (10_020, 0));
    assert!(pushed.requests <= 25, "batched: {} requests", pushed.requests);
    let b = device(&s).await;
    b.sign_in("s2@example.com", "password-123").await.unwrap();
    let pulled = b.pull().await.unwrap();
    assert_eq!(pulled.rows, 10_020);
    let msgs = b.query("messages", &Query::default()).await.unwrap();
    assert_eq!(msgs.len(), 10_000);
    let per_conv = b
        .query("messages", &Query { filters: vec![("conversation_id".into(), json!(convs[3]))], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(per_conv.len(), 500, "references mapped back to local ids");
    // The indexed query follows local writes at once: a moved message and a new one.
    let moved = &per_conv[0].local_id;
    b.update("messages", moved, &json!({"conversation_id": convs[4]})).await.unwrap();
    let new = b.insert("messages", &json!({"conversation_id": convs[3], "role": "user", "content": "new"})).await.unwrap();
    let by = |c: &str| Query { filters: vec![("conversation_id".into(), json!(c))], ..Default::default() };
    let on3 = b.query("messages", &by(&convs[3])).await.unwrap();
    assert_eq!(on3.len(), 500);
    assert!(on3.iter().all(|m| &m.local_id != moved) && on3.iter().any(|m| m.local_id == new.local_id));
    assert_eq!(b.query("messages", &by(&convs[4])).await.unwrap().len(), 501);
    // And answers what a full scan answers.
    let all = b.query("messages", &Query::default()).await.unwrap();
    let scanned: Vec<_> = all.iter().filter(|m| m.row["conversation_id"] == json!(convs[3])).cloned().collect();
    assert_eq!(on3, scanned);
}

#[tokio::test]
async fn a_restore_walks_transactions_of_every_size_once() {
    // The keyset walk reads transactions smaller than a page, exactly a page (what a
    // push of a page of writes makes), and larger than two pages (a bulk load), some of
    // whose rows were made on the server without a local id (in one, more than a page
    // of them: read by local id, they come last, in pages of their own). Every row
    // arrives once, read by local id (the kit's index) and by key (a kit without it).
    let s = server().await;
    let a = device(&s).await;
    let me = a.sign_up("walk@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "walk"})).await.unwrap().local_id;
    a.push().await.unwrap();
    let (mut db, conn) = tokio_postgres::connect(s.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let page = 10;
    let sizes = [3, page, 25, 1, page, 2 * page, 7, 3 * page + 4];
    let mut expected = std::collections::BTreeSet::new();
    for (t, n) in sizes.iter().enumerate() {
        let tx = db.transaction().await.unwrap();
        for i in 0..*n {
            // Every fourth row of a transaction was made on the server: no local id;
            // in the largest, all but its first eight.
            let local = if *n > 2 * page { i < 8 } else { i % 4 != 3 }.then(|| format!("m-{t}-{i:02}"));
            let id: String = tx
                .query_one(
                    "insert into public.messages (user_id, conversation_id, role, content, local_id)
                     select $1::text::uuid, c.id, 'user', $2, $3 from public.conversations c where c.local_id = $4
                     returning id::text",
                    &[&me.user_id, &format!("{t}/{i}"), &local, &conv],
                )
                .await
                .unwrap()
                .get(0);
            expected.insert(local.unwrap_or(format!("srv:{id}")));
        }
        tx.commit().await.unwrap();
    }
    // Its lookups by server id set aside and built at the end (as from 40k rows).
    let b = device_with(s.url(), s.anon_key(), EngineConfig { page_size: page, restore_fill_from: 0, ..EngineConfig::with_clock(system_now_ms) }).await;
    b.sign_in("walk@example.com", "password-123").await.unwrap();
    let pulled = b.pull().await.unwrap();
    let total: usize = sizes.iter().sum();
    assert_eq!(pulled.rows, total + 1, "every message and the conversation, each once");
    let got = b.query("messages", &Query::default()).await.unwrap();
    let ids: std::collections::BTreeSet<String> = got.iter().map(|m| m.local_id.clone()).collect();
    assert_eq!((got.len(), ids), (total, expected.clone()));
    assert!(got.iter().all(|m| m.row["conversation_id"] == json!(conv)), "references mapped to the local id");
    // About one request per page: not one per page and transaction more. The restore
    // is split in three ranges: two probes for where they begin, and a range's last
    // page may be short.
    // page may be short; a large transaction read by local id asks once more for its
    // rows without one.
    assert!(pulled.requests <= total.div_ceil(page) + 2 * sizes.len() + 3 + 2 * 2, "{} requests", pulled.requests);
    // And a second pull brings nothing again.
    assert_eq!(b.pull().await.unwrap().rows, 0);
    // Edits on the server land on the rows restored (found by server id), not beside them.
    db.batch_execute(
        "update public.messages set content = 'edited' where local_id = 'm-2-00'
            or id = (select id from public.messages where local_id is null order by id limit 1)",
    )
    .await
    .unwrap();
    assert_eq!(b.pull().await.unwrap().rows, 2);
    let got = b.query("messages", &Query::default()).await.unwrap();
    assert_eq!((got.len(), got.iter().filter(|m| m.row["content"] == json!("edited")).count()), (total, 2));
    // A server whose kit predates the index for walks by local id: walked by key.
    db.batch_execute("drop index public.messages_supasync_restore").await.unwrap();
    let c = device_paging(&s, page).await;
    c.sign_in("walk@example.com", "password-123").await.unwrap();
    assert_eq!(c.pull().await.unwrap().rows, total + 1);
    let got = c.query("messages", &Query::default()).await.unwrap();
    assert_eq!(got.iter().map(|m| m.local_id.clone()).collect::<std::collections::BTreeSet<_>>(), expected);
    assert_eq!(got.len(), total);
}

#[tokio::test]
async fn two_server_rows_under_one_local_id_are_both_kept_and_do_not_stall_a_restore() {
    // A schema whose local ids are not unique (rows shared by several owners, say):
    // a later page brings a second row under a local id an earlier page stored. The
    // restore goes through, and keeps both rows: the second under its server id (two
    // server rows are two rows; merging them would hide one the server still has).
    let s = server().await;
    let a = device(&s).await;
    let me = a.sign_up("dup@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "dup"})).await.unwrap().local_id;
    a.push().await.unwrap();
    let (db, conn) = tokio_postgres::connect(s.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    db.batch_execute("alter table public.messages drop constraint messages_user_id_local_id_key").await.unwrap();
    let insert = "insert into public.messages (user_id, conversation_id, role, content, local_id)
                  select $1::text::uuid, c.id, 'user', $2, $3 from public.conversations c where c.local_id = $4";
    for i in 0..10 {
        db.execute(insert, &[&me.user_id, &format!("first {i}"), &format!("d-{i}"), &conv]).await.unwrap();
    }
    db.execute(insert, &[&me.user_id, &"later".to_string(), &"d-3".to_string(), &conv]).await.unwrap();
    let b = device_paging(&s, 5).await;
    b.sign_in("dup@example.com", "password-123").await.unwrap();
    let pulled = b.pull().await.expect("the restore goes through");
    assert_eq!(pulled.rows, 12, "every server row was read");
    let got = b.query("messages", &Query::default()).await.unwrap();
    assert_eq!(got.len(), 11, "one local row per server row");
    let d3 = got.iter().find(|m| m.local_id == "d-3").expect("d-3");
    assert_eq!(d3.row["content"], json!("first 3"), "the first row keeps the local id");
    let later = server_rows(&s, "messages", "select=id&content=eq.later").await;
    let second = got.iter().find(|m| m.local_id == format!("srv:{}", later[0]["id"].as_str().unwrap())).expect("the second, by server id");
    assert_eq!(second.row["content"], json!("later"));
}

/// A device that pulls pages of `page` rows through `proxy`, whose requests wait a
/// minute for an answer (longer than any answer a test holds).
async fn device_paging_via(proxy: &FaultProxy, server: &DevServer, page: usize) -> Device {
    Engine::open(
        schema(),
        SqliteStore::in_memory().unwrap(),
        ReqwestHttp::with_timeout(Duration::from_secs(60)).unwrap(),
        Project { url: proxy.url(), anon_key: server.anon_key().into() },
        EngineConfig { page_size: page, ..EngineConfig::with_clock(system_now_ms) },
    )
    .await
    .unwrap()
}

/// Fails the test (instead of hanging it) when `f` waits for the sync beside it, which
/// waits for an answer the proxy holds.
async fn before_the_held_answer<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what} waited for the sync beside it, which holds the writer lock while it waits for the server"))
}

#[tokio::test]
async fn local_writes_and_a_push_go_through_while_a_restore_waits_for_its_next_page() {
    // A restore of years of history takes minutes; the app must keep writing. The
    // restore's second page of messages is held at the proxy, so the writes below run
    // while the restore is provably mid-way (waiting for that page).
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("midrestore@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "old"})).await.unwrap().local_id;
    for i in 0..250 {
        a.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": format!("m{i}")})).await.unwrap();
    }
    a.push().await.unwrap();
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let b = device_paging_via(&proxy, &s, 100).await;
    b.sign_in("midrestore@example.com", "password-123").await.unwrap();
    let mut page_two = proxy.hold_answer(&["GET /rest/v1/messages?", "&or="]);
    let (pulled, ()) = tokio::join!(b.pull(), async {
        page_two.arrived().await;
        let new = before_the_held_answer("an insert", b.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": "typed during the restore"})))
            .await
            .unwrap();
        before_the_held_answer("an update", b.update("conversations", &conv, &json!({"title": "renamed during the restore"}))).await.unwrap();
        let so_far = b.query("messages", &Query::default()).await.unwrap().len();
        assert!(so_far <= 101, "the restore is mid-way: {so_far} messages here");
        let pushed = before_the_held_answer("a push", b.push()).await.unwrap();
        assert_eq!((pushed.pushed, pushed.rejected), (2, 0));
        assert_eq!(b.get("messages", &new.local_id).await.unwrap().unwrap().status, RowStatus::Synced);
        page_two.release();
    });
    assert_eq!(pulled.unwrap().rows, 251, "the conversation and 250 messages");
    let on_b = b.query("messages", &Query::default()).await.unwrap();
    assert_eq!(on_b.len(), 251, "every message once, and the one typed during the restore");
    assert_eq!(b.get("conversations", &conv).await.unwrap().unwrap().row["title"], json!("renamed during the restore"));
    // Exactly once on the server, and another pull changes nothing on this device.
    assert_eq!(server_rows(&s, "messages", "select=id").await.len(), 251);
    b.pull().await.unwrap();
    assert_eq!(b.query("messages", &Query::default()).await.unwrap().len(), 251);
    assert_eq!(b.status().await.unwrap().pending, 0);
    a.pull().await.unwrap();
    assert_eq!(a.get("conversations", &conv).await.unwrap().unwrap().row["title"], json!("renamed during the restore"));
}

/// A new user's device behind a proxy, with one conversation already on the server.
async fn user_with_a_synced_conversation(s: &DevServer, who: &str, title: &str) -> (FaultProxy, Device, String) {
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let a = device_paging_via(&proxy, s, 1000).await;
    a.sign_up(&format!("{who}@example.com"), "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": title})).await.unwrap().local_id;
    a.push().await.unwrap();
    (proxy, a, conv)
}

#[tokio::test]
async fn a_message_sent_while_a_push_waits_for_its_answer_is_stored_at_once_and_pushed_once() {
    // The chat case: the previous messages' push is on a slow network when the user
    // sends the next one. The insert must not wait for that answer.
    let s = server().await;
    let (proxy, a, conv) = user_with_a_synced_conversation(&s, "slowpush", "slow").await;
    for i in 0..3 {
        a.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": format!("first {i}")})).await.unwrap();
    }
    let mut answer = proxy.hold_answer(&["POST /rest/v1/messages?"]);
    let (pushed, typed) = tokio::join!(a.push(), async {
        answer.arrived().await;
        let typed = before_the_held_answer(
            "an insert",
            a.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": "typed meanwhile"})),
        )
        .await
        .unwrap();
        assert_eq!(typed.status, RowStatus::Pending);
        let seen = a.get("messages", &typed.local_id).await.unwrap().unwrap();
        assert_eq!(seen.row["content"], json!("typed meanwhile"), "seen at once");
        answer.release();
        typed.local_id
    });
    assert_eq!(pushed.unwrap().pushed, 3, "the push sends what it read before the new message");
    assert_eq!(a.status().await.unwrap().pending, 1, "the new message waits for the next push");
    assert_eq!(a.push().await.unwrap().pushed, 1);
    assert_eq!(a.get("messages", &typed).await.unwrap().unwrap().status, RowStatus::Synced);
    let on_server = server_rows(&s, "messages", "select=content").await;
    assert_eq!(on_server.len(), 4, "each message once: {on_server:?}");
    assert_eq!(on_server.iter().filter(|m| m["content"] == json!("typed meanwhile")).count(), 1);
}

#[tokio::test]
async fn edits_made_while_a_push_waits_for_its_answer_queue_behind_it_and_none_is_lost() {
    // While the messages' insert is on its way: an edit of a message being sent, an
    // edit of a conversation whose earlier edit this push has yet to send, and a delete
    // of a message being sent. None waits for the answer; each is sent once, after.
    let s = server().await;
    let (proxy, a, conv) = user_with_a_synced_conversation(&s, "editsinflight", "t0").await;
    let m1 = a.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": "m1"})).await.unwrap().local_id;
    let m2 = a.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": "m2"})).await.unwrap().local_id;
    a.update("conversations", &conv, &json!({"title": "t1"})).await.unwrap();
    let mut answer = proxy.hold_answer(&["POST /rest/v1/messages?"]);
    let (pushed, ()) = tokio::join!(a.push(), async {
        answer.arrived().await;
        before_the_held_answer("an edit of a message in flight", a.update("messages", &m1, &json!({"content": "m1 edited"}))).await.unwrap();
        before_the_held_answer("an edit the push has yet to send", a.update("conversations", &conv, &json!({"title": "t2"}))).await.unwrap();
        before_the_held_answer("a delete of a message in flight", a.delete("messages", &m2)).await.unwrap();
        answer.release();
    });
    assert_eq!(pushed.unwrap().pushed, 3, "the two inserts and the title t1, as the push read them");
    // Nothing the app wrote meanwhile was undone by the answers.
    let m1_now = a.get("messages", &m1).await.unwrap().unwrap();
    assert_eq!((m1_now.row["content"].clone(), m1_now.status), (json!("m1 edited"), RowStatus::Pending));
    let conv_now = a.get("conversations", &conv).await.unwrap().unwrap();
    assert_eq!((conv_now.row["title"].clone(), conv_now.status), (json!("t2"), RowStatus::Pending));
    assert!(a.get("messages", &m2).await.unwrap().is_none(), "m2 stays deleted here");
    assert_eq!(a.status().await.unwrap().pending, 3);
    assert_eq!(a.push().await.unwrap().pushed, 3);
    assert_eq!(a.status().await.unwrap().pending, 0);
    let msgs = server_rows(&s, "messages", "select=local_id,content").await;
    assert_eq!(msgs, vec![json!({"local_id": m1, "content": "m1 edited"})], "m1 edited once, m2 deleted");
    let convs = server_rows(&s, "conversations", "select=title").await;
    assert_eq!(convs, vec![json!({"title": "t2"})]);
    for (table, id) in [("messages", &m1), ("conversations", &conv)] {
        assert_eq!(a.get(table, id).await.unwrap().unwrap().status, RowStatus::Synced);
    }
}

#[tokio::test]
async fn an_answer_older_than_a_version_pulled_meanwhile_does_not_replace_it() {
    // A's edit reaches the server, but its answer is held. Meanwhile B edits the same
    // field (later, so B's value is the server's), and A pulls B's version. When A's
    // answer arrives it is older than what A holds: A must still show B's value.
    let s = server().await;
    let (proxy, a, conv) = user_with_a_synced_conversation(&s, "olderanswer", "t0").await;
    let b = device(&s).await;
    b.sign_in("olderanswer@example.com", "password-123").await.unwrap();
    b.pull().await.unwrap();
    a.update("conversations", &conv, &json!({"title": "from a"})).await.unwrap();
    let mut answer = proxy.hold_answer(&["PATCH /rest/v1/conversations?"]);
    let (pushed, ()) = tokio::join!(a.push(), async {
        answer.arrived().await;
        b.update("conversations", &conv, &json!({"title": "from b"})).await.unwrap();
        assert_eq!(b.push().await.unwrap().pushed, 1);
        before_the_held_answer("a pull", a.pull()).await.unwrap();
        answer.release();
    });
    assert_eq!(pushed.unwrap().pushed, 1);
    let mine = a.get("conversations", &conv).await.unwrap().unwrap();
    assert_eq!((mine.row["title"].clone(), mine.status), (json!("from b"), RowStatus::Synced), "the older answer replaced the newer version");
    assert_eq!(server_rows(&s, "conversations", "select=title").await, vec![json!({"title": "from b"})]);
}

#[tokio::test]
async fn a_page_read_before_this_device_pushed_an_edit_does_not_bring_the_old_version_back() {
    // Device B catches up on 15 memories A edited. B's second page is read by the
    // server and held; meanwhile B edits a memory of that page and pushes it. The held
    // page, older than B's push, must not undo the edit on B.
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("olderpage@example.com", "password-123").await.unwrap();
    let ids: Vec<String> = {
        let mut ids = vec![];
        for i in 0..15 {
            ids.push(a.insert("memories", &json!({"content": format!("first {i}")})).await.unwrap().local_id);
        }
        ids
    };
    a.push().await.unwrap();
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let b = device_paging_via(&proxy, &s, 10).await;
    b.sign_in("olderpage@example.com", "password-123").await.unwrap();
    b.pull().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        a.update("memories", id, &json!({"content": format!("from a {i}")})).await.unwrap();
    }
    a.push().await.unwrap();
    // The last row of the catch-up walk is on its second page.
    let walk = server_rows(&s, "memories", "select=local_id&order=sync_txid.asc,id.asc").await;
    let x = walk.last().and_then(|r| r["local_id"].as_str()).unwrap().to_string();
    let mut page_two = proxy.hold_answer(&["GET /rest/v1/memories?", "&or="]);
    let (pulled, ()) = tokio::join!(b.pull(), async {
        page_two.arrived().await;
        before_the_held_answer("an edit", b.update("memories", &x, &json!({"content": "from b"}))).await.unwrap();
        assert_eq!(before_the_held_answer("a push", b.push()).await.unwrap().pushed, 1);
        page_two.release();
    });
    assert_eq!(pulled.unwrap().rows, 15);
    let mine = b.get("memories", &x).await.unwrap().unwrap();
    assert_eq!((mine.row["content"].clone(), mine.status), (json!("from b"), RowStatus::Synced), "the held page undid the edit");
    let on_server = server_rows(&s, "memories", &format!("select=content&local_id=eq.{x}")).await;
    assert_eq!(on_server[0]["content"], json!("from b"));
    // The other 14 came through.
    let others = b.query("memories", &Query::default()).await.unwrap();
    assert_eq!(others.iter().filter(|m| m.row["content"].as_str().is_some_and(|c| c.starts_with("from a"))).count(), 14);
}

#[tokio::test]
async fn a_lost_answer_is_retried_without_duplicates_or_overwriting_newer_data() {
    let s = server().await;
    let host = s.url().trim_start_matches("http://").to_string();
    let proxy = FaultProxy::start(host).await.unwrap();
    let a = device_at(&proxy.url(), s.anon_key()).await;
    a.sign_up("s6@example.com", "password-123").await.unwrap();
    let c = a.insert("conversations", &json!({"title": "first"})).await.unwrap();
    // The insert reaches the server and commits; its answer never arrives.
    proxy.set(Mode::DropAnswers);
    let r = a.push().await.unwrap();
    assert_eq!(r.pushed, 0);
    assert!(r.stopped.is_some(), "{r:?}");
    assert_eq!(a.status().await.unwrap().pending, 1, "nothing dropped");
    assert_eq!(server_rows(&s, "conversations", "select=title").await.len(), 1, "the server has it");
    // Meanwhile another device changes the row.
    let b = device(&s).await;
    b.sign_in("s6@example.com", "password-123").await.unwrap();
    b.pull().await.unwrap();
    b.update("conversations", &c.local_id, &json!({"title": "newer, from B"})).await.unwrap();
    b.push().await.unwrap();
    // The retry creates no duplicate and does not overwrite B's newer title.
    proxy.set(Mode::Pass);
    let r = a.push().await.unwrap();
    assert_eq!((r.pushed, r.rejected), (1, 0), "{r:?}");
    let on_server = server_rows(&s, "conversations", "select=title,local_id").await;
    assert_eq!(on_server, vec![json!({"title": "newer, from B", "local_id": c.local_id})]);
    let mine = a.get("conversations", &c.local_id).await.unwrap().unwrap();
    assert_eq!(mine.row["title"], json!("newer, from B"), "the device shows the server's newer value");
    assert_eq!(mine.status, RowStatus::Synced);
}

#[tokio::test]
async fn a_child_that_arrives_before_its_parents_server_id_is_known_is_mapped_later() {
    let s = server().await;
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let a = device_at(&proxy.url(), s.anon_key()).await;
    a.sign_up("late-ref@example.com", "password-123").await.unwrap();
    let conv = a.insert("conversations", &json!({"title": "mine"})).await.unwrap();
    // The conversation commits, but A never hears its server id.
    proxy.set(Mode::DropAnswers);
    assert_eq!(a.push().await.unwrap().pushed, 0);
    proxy.set(Mode::Pass);
    // Another device writes a message in it; A pulls the message first.
    let b = device(&s).await;
    b.sign_in("late-ref@example.com", "password-123").await.unwrap();
    b.pull().await.unwrap();
    b.insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": "from B"})).await.unwrap();
    b.push().await.unwrap();
    // Realtime delivers the message alone (its conversation's change went by while A
    // was away): A cannot map the reference yet and keeps the server id.
    let record = server_rows(&s, "messages", "select=*").await[0].as_object().unwrap().clone();
    let change = supasync_core::realtime::PgChange {
        schema: "public".into(),
        table: "messages".into(),
        kind: "INSERT".into(),
        record,
        old_record: Default::default(),
        commit_timestamp: None,
        errors: None,
    };
    a.apply_change(&change).await.unwrap();
    let before = a.query("messages", &Query::default()).await.unwrap();
    assert_ne!(before[0].row["conversation_id"], json!(conv.local_id), "precondition: unmapped");
    // Now A's retried push learns the conversation's server id: the message is adopted.
    a.push().await.unwrap();
    let on_a = a.query("messages", &Query::default()).await.unwrap();
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_a[0].row["conversation_id"], json!(conv.local_id), "the reference is the conversation's local id");
    let by_conv = a
        .query("messages", &Query { filters: vec![("conversation_id".into(), json!(conv.local_id))], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(by_conv.len(), 1, "and the index agrees");
}

#[tokio::test]
async fn an_outage_is_ridden_out_with_growing_jittered_waits() {
    let s = server().await;
    let host = s.url().trim_start_matches("http://").to_string();
    let proxy = FaultProxy::start(host).await.unwrap();
    let a = device_at(&proxy.url(), s.anon_key()).await;
    a.sign_up("s6b@example.com", "password-123").await.unwrap();
    for i in 0..3 {
        a.insert("memories", &json!({"content": format!("during the outage {i}")})).await.unwrap();
    }
    // Every answer is lost for a while: the writes commit, the device cannot know.
    proxy.set(Mode::DropAnswers);
    let backoff = Backoff { initial_ms: 100, max_ms: 800 };
    let heal = async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        proxy.set(Mode::Pass);
    };
    let (settled, ()) = tokio::join!(a.sync_until_settled(&TokioTimer, backoff, 30_000), heal);
    let settled = settled.unwrap();
    assert_eq!(settled.status.pending, 0);
    let waits: Vec<u64> = settled.rounds.iter().map(|r| r.waited_ms).filter(|w| *w > 0).collect();
    assert!(waits.len() >= 2, "it retried more than once: {:?}", settled.rounds);
    for (n, w) in waits.iter().enumerate() {
        let ceiling = backoff.ceiling_ms(n as u32 + 1);
        assert!(*w >= ceiling / 2 && *w <= ceiling, "wait {n} was {w} ms, ceiling {ceiling}");
    }
    assert!(settled.rounds.iter().any(|r| r.error.is_some()), "the failures are reported");
    assert_eq!(server_rows(&s, "memories", "select=content").await.len(), 3, "exactly once");

    // A deadline that passes while the server is gone: a clear error, nothing lost.
    proxy.set(Mode::DropAnswers);
    a.insert("memories", &json!({"content": "later"})).await.unwrap();
    let err = a.sync_until_settled(&TokioTimer, backoff, 700).await.unwrap_err();
    assert!(err.to_string().starts_with("1 writes still pending after"), "{err}");
    assert_eq!(a.status().await.unwrap().pending, 1);
}

#[tokio::test]
async fn a_transaction_committing_after_a_pull_with_an_earlier_version_is_not_lost() {
    let s = server().await;
    let a = device(&s).await;
    let session = a.sign_up("s8@example.com", "password-123").await.unwrap();
    let (mut db, conn) = tokio_postgres::connect(s.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let tx = db.transaction().await.unwrap();
    tx.execute(
        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
        &[&json!({"sub": session.user_id, "role": "authenticated"}).to_string()],
    )
    .await
    .unwrap();
    tx.execute("insert into public.memories (local_id, content) values ('late', 'written first, committed last')", &[])
        .await
        .unwrap();
    a.insert("memories", &json!({"content": "written second, committed first"})).await.unwrap();
    a.push().await.unwrap();
    assert_eq!(a.pull().await.unwrap().rows, 1);
    tx.commit().await.unwrap();
    let again = a.pull().await.unwrap();
    assert_eq!(again.rows, 1);
    let late = a.get("memories", "late").await.unwrap().expect("the late row arrived");
    assert_eq!(late.row["content"], json!("written first, committed last"));
}

#[tokio::test]
async fn an_access_token_that_expires_during_sync_is_refreshed_and_nothing_is_dropped() {
    let s = DevServer::builder()
        .migrations(manifest().join("tests/fixtures/scenarios"))
        .shared_test_cluster()
        .jwt_expiry_secs(2)
        .start()
        .await
        .unwrap();
    let a = device(&s).await;
    let first = a.sign_up("s9@example.com", "password-123").await.unwrap();
    for i in 0..5 {
        a.insert("memories", &json!({"content": format!("m{i}")})).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (push, _) = a.sync().await.unwrap();
    assert_eq!((push.pushed, push.rejected), (5, 0));
    let now = a.session().await.unwrap();
    assert_ne!(now.access_token, first.access_token, "refreshed");
    assert_ne!(now.refresh_token, first.refresh_token, "rotated");
    assert_eq!(server_rows(&s, "memories", "select=content").await.len(), 5);
}

#[tokio::test]
async fn a_thousand_usage_logs_go_in_few_requests_and_server_counts_come_back() {
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("s11@example.com", "password-123").await.unwrap();
    for i in 0..1000 {
        a.insert("usage_logs", &json!({"service": "openai", "tokens": i, "cost": 0.001})).await.unwrap();
    }
    let sess = a.insert("chat_sessions", &json!({"title": "support"})).await.unwrap();
    for i in 0..3 {
        a.insert("chat_messages", &json!({"session_id": sess.local_id, "role": "user", "content": format!("q{i}")}))
            .await
            .unwrap();
    }
    let (push, _) = a.sync().await.unwrap();
    assert_eq!(push.pushed, 1004);
    let batch = EngineConfig::with_clock(system_now_ms).batch_size;
    let log_requests = 1000_usize.div_ceil(batch);
    assert_eq!(push.requests, log_requests + 2, "1000 logs in {log_requests} request(s) of up to {batch}, the session, the messages");
    let logs = server_rows(&s, "usage_logs", "select=id&order=id").await;
    assert_eq!(logs.len(), 1000);
    // bigserial keys come back as numbers and are the rows' server ids.
    let one = a.query("usage_logs", &Query { limit: Some(1), order: Some(("tokens".into(), false)), ..Default::default() }).await.unwrap();
    assert!(one[0].row["id"].is_i64());
    // The server's trigger counted the messages; the pull brought the count back.
    let sess_now = a.get("chat_sessions", &sess.local_id).await.unwrap().unwrap();
    assert_eq!(sess_now.row["message_count"], json!(3));
}

/// A server that answers every request with something that is not what PostgREST says.
async fn garbage_server(body: &'static str, status: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = sock.read(&mut buf).await;
                let resp = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn malformed_server_answers_are_clear_errors_and_lose_nothing() {
    let s = server().await;
    let real = device(&s).await;
    let session = real.sign_up("s12@example.com", "password-123").await.unwrap();
    for (body, status) in [("this is not json", 200), ("{\"an\":\"object\"}", 201), ("[1, 2, 3]", 201), ("<html>oops</html>", 502)] {
        let url = garbage_server(body, status).await;
        let d = device_at(&url, s.anon_key()).await;
        d.set_session(session.clone()).await.unwrap();
        d.insert("memories", &json!({"content": "precious"})).await.unwrap();
        match d.push().await {
            Ok(r) => {
                assert_eq!(r.pushed, 0, "{body}: {r:?}");
                assert!(r.stopped.is_some() || r.rejected == 0, "{body}: {r:?}");
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        assert!(d.pull().await.is_err(), "{body}: a pull must fail clearly");
        // An update of a synced row answered with garbage keeps the row and the write.
        let url2 = garbage_server(body, status).await;
        let e = device_at(&url2, s.anon_key()).await;
        e.set_session(session.clone()).await.unwrap();
        e.store
            .apply(supasync_core::WriteBatch {
                put_rows: vec![supasync_core::LocalRow {
                    table: "memories".into(),
                    local_id: "synced-1".into(),
                    server_id: Some(json!("00000000-0000-0000-0000-000000000001")),
                    mirror: Some(json!({"id": "00000000-0000-0000-0000-000000000001", "content": "v1"}).as_object().unwrap().clone()),
                    overlay: None,
                    status: RowStatus::Synced,
                    last_pushed: None,
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        e.update("memories", "synced-1", &json!({"content": "v2"})).await.unwrap();
        let _ = e.push().await;
        let kept = e.get("memories", "synced-1").await.unwrap().expect("the row is kept");
        assert_eq!(kept.row["content"], json!("v2"), "{body}");
        assert_eq!(e.status().await.unwrap().pending, 1, "{body}: the update still waits");
        let st = d.status().await.unwrap();
        assert_eq!(st.pending + st.rejected, 1, "{body}: the write is kept");
        let rows = d.query("memories", &Query::default()).await.unwrap();
        assert!(rows.len() <= 1);
    }
}

#[tokio::test]
async fn the_same_field_edited_on_two_devices_last_write_wins_and_the_loser_is_in_history() {
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("s3b@example.com", "password-123").await.unwrap();
    let c = a.insert("conversations", &json!({"title": "original"})).await.unwrap();
    a.push().await.unwrap();
    let b = device(&s).await;
    b.sign_in("s3b@example.com", "password-123").await.unwrap();
    b.pull().await.unwrap();
    a.update("conversations", &c.local_id, &json!({"title": "from A"})).await.unwrap();
    b.update("conversations", &c.local_id, &json!({"title": "from B"})).await.unwrap();
    a.push().await.unwrap();
    b.push().await.unwrap(); // the later write
    a.pull().await.unwrap();
    b.pull().await.unwrap();
    for d in [&a, &b] {
        assert_eq!(d.get("conversations", &c.local_id).await.unwrap().unwrap().row["title"], json!("from B"));
    }
    let conflicts: Vec<Value> = a.history(50).await.unwrap().into_iter().filter(|h| h.kind == "conflict").map(|h| h.detail).collect();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["field"], json!("title"));
    assert_eq!(conflicts[0]["overwritten"], json!("from A"));
    assert_eq!(conflicts[0]["by"], json!("from B"));
    assert!(b.history(50).await.unwrap().iter().all(|h| h.kind != "conflict"), "the winner saw no conflict");
}

#[tokio::test]
async fn a_device_that_pushed_but_never_pulled_still_learns_of_deletes() {
    let s = server().await;
    let a = device(&s).await;
    a.sign_up("s4b@example.com", "password-123").await.unwrap();
    let c = a.insert("conversations", &json!({"title": "pushed, never pulled"})).await.unwrap();
    a.push().await.unwrap();
    let b = device(&s).await;
    b.sign_in("s4b@example.com", "password-123").await.unwrap();
    b.pull().await.unwrap();
    b.delete("conversations", &c.local_id).await.unwrap();
    b.push().await.unwrap();
    // A's first pull: old tombstones matter, because A's row reached the server.
    assert_eq!(a.pull().await.unwrap().deleted, 1);
    assert!(a.get("conversations", &c.local_id).await.unwrap().is_none());
}

/// An app's own auth (as supabase-js would be in a web app), handing tokens over.
struct AppAuth {
    current: std::sync::Mutex<supasync_core::auth::ProvidedToken>,
    fresh: supasync_core::auth::ProvidedToken,
    refreshes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

supasync_core::maybe_async_trait! {
    impl supasync_core::auth::TokenProvider for AppAuth {
        async fn current(&self) -> Option<supasync_core::auth::ProvidedToken> {
            Some(self.current.lock().unwrap().clone())
        }
        async fn refresh(&self) -> Option<supasync_core::auth::ProvidedToken> {
            self.refreshes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            *self.current.lock().unwrap() = self.fresh.clone();
            Some(self.fresh.clone())
        }
    }
}

#[tokio::test]
async fn tokens_can_come_from_the_apps_own_auth_and_are_refreshed_on_401() {
    let s = server().await;
    let signer = device(&s).await;
    let real = signer.sign_up("provider@example.com", "password-123").await.unwrap();
    let expired = s.keys().sign(&json!({
        "sub": real.user_id, "role": "authenticated", "aud": "authenticated",
        "exp": system_now_ms() / 1000 - 30
    }));
    let auth = AppAuth {
        current: std::sync::Mutex::new(supasync_core::auth::ProvidedToken { access_token: expired, user_id: real.user_id.clone() }),
        fresh: supasync_core::auth::ProvidedToken { access_token: real.access_token.clone(), user_id: real.user_id.clone() },
        refreshes: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    };
    let refreshes = auth.refreshes.clone();
    let app = device(&s).await.with_token_provider(auth);
    assert_eq!(app.status().await.unwrap().signed_in, Some(real.user_id.clone()));
    for i in 0..3 {
        app.insert("memories", &json!({"content": format!("m{i}")})).await.unwrap();
    }
    let r = app.push().await.unwrap();
    assert_eq!((r.pushed, r.rejected), (3, 0), "{r:?}");
    assert_eq!(server_rows(&s, "memories", "select=content").await.len(), 3);
    assert_eq!(refreshes.load(std::sync::atomic::Ordering::SeqCst), 1, "refreshed once, on the 401");
    // The engine stored no token of its own.
    assert_eq!(app.store.meta("session").await.unwrap(), None);
}
