//! Writes that race a delete (issue 8 §1), each made deterministic: the devices push
//! and pull by hand, answers are lost through the fault proxy on purpose, and a stale
//! Realtime change is handed to the engine directly. The rule under test, written down
//! in docs/ARCHITECTURE.md: the delete wins everywhere; an edit it overwrote is in the
//! history with what was lost; a child that can no longer be created is rejected with
//! the reason; a row a policy hides is a refusal, not a delete; nothing stalls. And one
//! race that is not about a delete: a push and a pull that find the access token
//! expired at the same moment refresh it once between them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fault_proxy::{FaultProxy, Mode};
use common::{go_live, replica, replica_at, server, server_rows, until_phase, Replica};
use serde_json::{json, Value};
use supasync_core::live::Phase;
use supasync_core::realtime::PgChange;
use supasync_core::remote_change::Applied;
use supasync_core::index::{IndexDef, KeyRange};
use supasync_core::live_query::live_select;
use supasync_core::store::{Applying, HistoryEntry};
use supasync_core::{EngineError, LocalRow, OutboxEntry, RowStatus, SelectRequest, Store, StoreError, WriteBatch, WriteError};
use supasync_native::{ReqwestHttp, SqliteStore};
use tokio::time::{sleep, timeout};

/// Two devices of one new user, A through a fault proxy, B direct.
async fn pair(s: &supasync_devserver::DevServer, who: &str) -> (Replica, Replica, FaultProxy) {
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let a = replica(&proxy.url(), s.anon_key()).await;
    let b = replica(s.url(), s.anon_key()).await;
    a.sign_up(&format!("{who}@example.com"), "password-123").await.unwrap();
    b.sign_in(&format!("{who}@example.com"), "password-123").await.unwrap();
    (a, b, proxy)
}

/// The conflict lines of the history about one row.
async fn conflicts(d: &Replica, local_id: &str) -> Vec<Value> {
    d.history(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.kind == "conflict" && h.detail["local_id"] == json!(local_id))
        .map(|h| h.detail)
        .collect()
}

/// A memory written on A and known to both devices.
async fn shared_memory(a: &Replica, b: &Replica, content: &str) -> String {
    let m = a.insert("memories", &json!({"content": content})).await.unwrap();
    assert_eq!(a.push().await.unwrap().pushed, 1);
    b.pull().await.unwrap();
    assert!(b.get("memories", &m.local_id).await.unwrap().is_some());
    m.local_id
}

/// A Realtime change of `memories` as the server would send it.
fn memory_change(kind: &str, record: &Value) -> PgChange {
    PgChange {
        schema: "public".into(),
        table: "memories".into(),
        kind: kind.into(),
        record: record.as_object().cloned().unwrap_or_default(),
        old_record: Default::default(),
        commit_timestamp: None,
        errors: None,
    }
}

async fn on_server(s: &supasync_devserver::DevServer, table: &str, local_id: &str) -> usize {
    server_rows(s, table, &format!("select=id&local_id=eq.{local_id}")).await.len()
}

#[tokio::test]
async fn an_update_pushed_for_a_row_deleted_elsewhere_loses_to_the_delete_and_is_kept_in_the_history() {
    let s = server().await;
    let (a, b, _p) = pair(&s, "race-update").await;
    let m = shared_memory(&a, &b, "original").await;
    b.delete("memories", &m).await.unwrap();
    b.push().await.unwrap();
    a.update("memories", &m, &json!({"content": "edited on A"})).await.unwrap();
    let r = a.push().await.unwrap();
    assert_eq!((r.rejected, r.stopped.as_deref()), (0, None), "{r:?}");
    assert!(a.get("memories", &m).await.unwrap().is_none(), "the delete wins on A");
    assert_eq!(a.status().await.unwrap().pending, 0);
    assert!(a.rejected().await.unwrap().is_empty(), "a lost race is not a refusal");
    let c = conflicts(&a, &m).await;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["lost"], json!({"content": "edited on A"}));
    assert_eq!(c[0]["was"]["content"], json!("original"));
    assert_eq!(on_server(&s, "memories", &m).await, 0);
}

#[tokio::test]
async fn writes_queued_behind_a_tried_update_do_not_stall_when_the_row_is_gone() {
    // The "writes stuck" class of the soak: an update whose answer was lost, a second
    // write queued behind it, the row deleted elsewhere; the first PATCH then matches
    // nothing, and the write behind it must not wait forever for a row that is gone.
    let s = server().await;
    let (a, b, proxy) = pair(&s, "race-stuck").await;
    for delete_behind in [false, true] {
        let m = shared_memory(&a, &b, "original").await;
        a.update("memories", &m, &json!({"content": "first edit"})).await.unwrap();
        proxy.set(Mode::DropAnswers);
        assert_eq!(a.push().await.unwrap().pushed, 0, "the PATCH lands, its answer is lost");
        proxy.set(Mode::Pass);
        // Behind the tried update: a second update, or a delete.
        if delete_behind {
            a.delete("memories", &m).await.unwrap();
        } else {
            a.update("memories", &m, &json!({"content": "second edit"})).await.unwrap();
        }
        assert_eq!(a.status().await.unwrap().pending, 2, "queued behind, not merged");
        b.pull().await.unwrap();
        b.delete("memories", &m).await.unwrap();
        b.push().await.unwrap();
        let r = a.push().await.unwrap();
        assert_eq!((r.rejected, r.stopped.as_deref()), (0, None), "{r:?}");
        assert_eq!(a.status().await.unwrap().pending, 0, "nothing left waiting");
        assert!(a.get("memories", &m).await.unwrap().is_none());
        let lost = conflicts(&a, &m).await;
        if delete_behind {
            assert_eq!(lost[0]["lost"], json!({"content": "first edit"}), "{lost:?}");
        } else {
            assert_eq!(lost[0]["lost"], json!({"content": "second edit"}), "the newest lost value: {lost:?}");
        }
        // The next push has nothing to do.
        assert_eq!(a.push().await.unwrap().requests, 0);
    }
}

#[tokio::test]
async fn a_delete_pushed_for_a_row_already_deleted_elsewhere_or_answered_late_converges() {
    let s = server().await;
    let (a, b, proxy) = pair(&s, "race-delete").await;
    let m = shared_memory(&a, &b, "both delete me").await;
    b.delete("memories", &m).await.unwrap();
    b.push().await.unwrap();
    a.delete("memories", &m).await.unwrap();
    let r = a.push().await.unwrap();
    assert_eq!((r.pushed, r.rejected, r.stopped.as_deref()), (1, 0, None), "{r:?}");
    assert!(a.get("memories", &m).await.unwrap().is_none());
    assert!(conflicts(&a, &m).await.is_empty(), "both wanted it gone: nothing was lost");
    let note = a.history(20).await.unwrap().into_iter().find(|h| h.detail["local_id"] == json!(m)).unwrap();
    assert_eq!(note.detail["note"], json!("already deleted on the server"));

    // A delete whose answer is lost is retried: it then matches nothing, and its own
    // tombstone says it is done.
    let m = shared_memory(&a, &b, "delete me once").await;
    a.delete("memories", &m).await.unwrap();
    proxy.set(Mode::DropAnswers);
    assert_eq!(a.push().await.unwrap().pushed, 0);
    assert_eq!(on_server(&s, "memories", &m).await, 0, "the DELETE landed");
    proxy.set(Mode::Pass);
    let r = a.push().await.unwrap();
    assert_eq!((r.pushed, r.rejected), (1, 0), "{r:?}");
    assert_eq!(a.status().await.unwrap().pending, 0);
}

#[tokio::test]
async fn an_edit_waiting_when_the_tombstone_is_pulled_loses_to_the_delete() {
    let s = server().await;
    let (a, b, _p) = pair(&s, "race-pulled").await;
    let m = shared_memory(&a, &b, "original").await;
    a.update("memories", &m, &json!({"content": "offline edit", "tag": "t"})).await.unwrap();
    b.delete("memories", &m).await.unwrap();
    b.push().await.unwrap();
    let pulled = a.pull().await.unwrap();
    assert_eq!(pulled.deleted, 1);
    assert!(a.get("memories", &m).await.unwrap().is_none());
    assert_eq!(a.status().await.unwrap().pending, 0, "the waiting update went with the row");
    assert_eq!(conflicts(&a, &m).await[0]["lost"], json!({"content": "offline edit", "tag": "t"}));
    assert_eq!(a.push().await.unwrap().requests, 0, "nothing is sent for a row that is gone");
}

#[tokio::test]
async fn an_edit_waiting_when_the_delete_arrives_over_realtime_loses_to_the_delete() {
    let s = server().await;
    let (a, b, proxy) = pair(&s, "race-live").await;
    let m = shared_memory(&a, &b, "original").await;
    // A's REST goes through a proxy that refuses, so its edit waits; its Realtime does not.
    let live = go_live(&a, s.url(), s.anon_key(), 1_000);
    until_phase(&live, Phase::Live, 20).await;
    proxy.set(Mode::Refuse);
    proxy.cut();
    a.update("memories", &m, &json!({"content": "edit that waits"})).await.unwrap();
    assert_eq!(a.status().await.unwrap().pending, 1);
    b.delete("memories", &m).await.unwrap();
    b.push().await.unwrap();
    timeout(Duration::from_secs(10), async {
        while a.get("memories", &m).await.unwrap().is_some() {
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the tombstone arrives over Realtime");
    assert_eq!(a.status().await.unwrap().pending, 0);
    assert_eq!(conflicts(&a, &m).await[0]["lost"], json!({"content": "edit that waits"}));
    live.stop();
}

#[tokio::test]
async fn an_insert_retried_after_its_row_was_deleted_elsewhere_does_not_come_back() {
    // The "delete lost" class of the soak: A's insert lands but its answer is lost; B
    // sees the row and deletes it; A's retry must not create it again.
    let s = server().await;
    let (a, b, proxy) = pair(&s, "race-resurrect").await;
    let m = a.insert("memories", &json!({"content": "short-lived"})).await.unwrap().local_id;
    proxy.set(Mode::DropAnswers);
    assert_eq!(a.push().await.unwrap().pushed, 0);
    proxy.set(Mode::Pass);
    a.update("memories", &m, &json!({"content": "edited after the lost answer"})).await.unwrap();
    b.pull().await.unwrap();
    b.delete("memories", &m).await.unwrap();
    assert_eq!(b.push().await.unwrap().pushed, 1);
    assert_eq!(on_server(&s, "memories", &m).await, 0);

    let r = a.push().await.unwrap();
    assert_eq!((r.rejected, r.stopped.as_deref()), (0, None), "{r:?}");
    assert_eq!(on_server(&s, "memories", &m).await, 0, "the retried insert did not bring it back");
    assert!(a.get("memories", &m).await.unwrap().is_none(), "the delete wins on A");
    assert_eq!(a.status().await.unwrap().pending, 0);
    let c = conflicts(&a, &m).await;
    assert_eq!(c[0]["lost"]["content"], json!("edited after the lost answer"), "{c:?}");
    // B, pulling again, still has nothing.
    b.pull().await.unwrap();
    assert!(b.get("memories", &m).await.unwrap().is_none());
}

#[tokio::test]
async fn a_child_written_under_a_parent_deleted_elsewhere_is_rejected_with_the_reason() {
    let s = server().await;
    let (a, b, _p) = pair(&s, "race-child").await;
    let c1 = a.insert("conversations", &json!({"title": "gone soon"})).await.unwrap().local_id;
    let c2 = a.insert("conversations", &json!({"title": "also gone"})).await.unwrap().local_id;
    a.push().await.unwrap();
    b.pull().await.unwrap();
    // A writes into both while B deletes them.
    let m1 = a
        .insert("messages", &json!({"conversation_id": c1, "role": "user", "content": "into the void"}))
        .await
        .unwrap()
        .local_id;
    let m2 = a
        .insert("messages", &json!({"conversation_id": c2, "role": "user", "content": "also lost"}))
        .await
        .unwrap()
        .local_id;
    for c in [&c1, &c2] {
        b.delete("conversations", c).await.unwrap();
    }
    b.push().await.unwrap();

    // 1. A pushes before it knows: the foreign key fails, the parent's tombstone
    //    explains why, and the child is rejected with that reason (not retried).
    let r = a.push().await.unwrap();
    assert_eq!((r.pushed, r.rejected, r.stopped.as_deref()), (0, 2, None), "{r:?}");
    let rejected = a.rejected().await.unwrap();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let why = rejected.iter().find(|e| e.local_id == m1).and_then(|e| e.rejected.clone()).unwrap();
    assert!(why.contains(&format!("conversations/{c1}")) && why.contains("deleted"), "{why}");
    assert!(a.get("conversations", &c1).await.unwrap().is_none(), "the parent's delete won");
    assert!(a.get("messages", &m1).await.unwrap().is_none(), "the child is not shown");
    assert!(matches!(
        a.store.get_row("messages", &m2).await.unwrap().map(|r| r.status),
        Some(RowStatus::Rejected { .. })
    ));
    // Writing to a refused row says so (a write behind it could never be sent).
    let e = a.update("messages", &m1, &json!({"content": "edited"})).await.unwrap_err();
    assert!(matches!(e, EngineError::Write(WriteError::Rejected { .. })), "{e}");
    let e = a.delete("messages", &m1).await.unwrap_err();
    assert!(e.to_string().contains("retry or discard it first"), "{e}");
    a.discard(&m1).await.unwrap();
    a.discard(&m2).await.unwrap();
    assert_eq!(a.status().await.unwrap().pending + a.status().await.unwrap().rejected, 0);
    assert_eq!(server_rows(&s, "messages", "select=id").await.len(), 0);

    // 2. A learns of the delete first (a pull): the unsent child is rejected at once.
    let c3 = a.insert("conversations", &json!({"title": "third"})).await.unwrap().local_id;
    a.push().await.unwrap();
    b.pull().await.unwrap();
    let m3 = a
        .insert("messages", &json!({"conversation_id": c3, "role": "user", "content": "written offline"}))
        .await
        .unwrap()
        .local_id;
    b.delete("conversations", &c3).await.unwrap();
    b.push().await.unwrap();
    a.pull().await.unwrap();
    let rejected = a.rejected().await.unwrap();
    assert_eq!(rejected.iter().map(|e| e.local_id.as_str()).collect::<Vec<_>>(), vec![m3.as_str()]);
    assert_eq!(a.status().await.unwrap().pending, 0);
    assert_eq!(a.push().await.unwrap().requests, 0, "nothing is sent for it");
}

#[tokio::test]
async fn a_stale_realtime_change_does_not_revive_a_deleted_row() {
    // The "ghost row" class of the soak: an UPDATE from before a delete, still queued
    // when the delete was applied (by a pull during a catch-up), arrives afterwards.
    let s = server().await;
    let (a, b, _p) = pair(&s, "race-ghost").await;
    let m = shared_memory(&a, &b, "original").await;
    b.update("memories", &m, &json!({"content": "edited 462"})).await.unwrap();
    b.push().await.unwrap();
    let record = server_rows(&s, "memories", &format!("select=*&local_id=eq.{m}")).await.remove(0);
    b.delete("memories", &m).await.unwrap();
    b.push().await.unwrap();
    a.pull().await.unwrap();
    assert!(a.get("memories", &m).await.unwrap().is_none());
    let stale = memory_change("UPDATE", &record);
    assert_eq!(a.apply_change(&stale).await.unwrap(), Applied::Skipped);
    assert!(a.get("memories", &m).await.unwrap().is_none(), "no ghost");
    // A row the device never deleted still arrives the same way.
    let fresh = b.insert("memories", &json!({"content": "new"})).await.unwrap().local_id;
    b.push().await.unwrap();
    let record = server_rows(&s, "memories", &format!("select=*&local_id=eq.{fresh}")).await.remove(0);
    let change = memory_change("INSERT", &record);
    assert_eq!(a.apply_change(&change).await.unwrap(), Applied::Row);
    assert_eq!(a.get("memories", &fresh).await.unwrap().unwrap().row["content"], json!("new"));
}

#[tokio::test]
async fn a_change_a_policy_hides_is_rejected_and_rolled_back_not_taken_for_a_delete() {
    let s = server().await;
    let (a, b, _p) = pair(&s, "race-policy").await;
    let m = a.insert("memories", &json!({"content": "fixed", "tag": "locked"})).await.unwrap().local_id;
    a.push().await.unwrap();
    a.update("memories", &m, &json!({"content": "changed"})).await.unwrap();
    let r = a.push().await.unwrap();
    assert_eq!(r.rejected, 1, "{r:?}");
    let why = a.rejected().await.unwrap()[0].rejected.clone().unwrap();
    assert!(why.contains("did not let this user change the row"), "{why}");
    let shown = a.get("memories", &m).await.unwrap().expect("the row is still there");
    assert_eq!(shown.row["content"], json!("fixed"), "rolled back to the server's version");
    assert!(matches!(shown.status, RowStatus::Rejected { .. }));
    assert_eq!(on_server(&s, "memories", &m).await, 1);
    b.pull().await.unwrap();
    assert_eq!(b.get("memories", &m).await.unwrap().unwrap().row["content"], json!("fixed"));
}

#[tokio::test]
async fn a_child_of_a_parent_deleted_before_it_was_sent_is_rejected_with_the_reason() {
    // Not a race with another device, but the same question: a child whose parent will
    // never exist on the server. It must not go out with a reference the server cannot
    // read (and come back refused for a reason nobody understands).
    let s = server().await;
    let (a, _b, _p) = pair(&s, "race-local-parent").await;
    let c = a.insert("conversations", &json!({"title": "draft"})).await.unwrap().local_id;
    let m = a
        .insert("messages", &json!({"conversation_id": c, "role": "user", "content": "draft message"}))
        .await
        .unwrap()
        .local_id;
    a.delete("conversations", &c).await.unwrap();
    let rejected = a.rejected().await.unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].local_id, m);
    let why = rejected[0].rejected.clone().unwrap();
    assert!(why.contains(&format!("conversations/{c}")) && why.contains("deleted on this device"), "{why}");
    assert!(a.get("messages", &m).await.unwrap().is_none());
    assert_eq!(a.status().await.unwrap().pending, 0);
    assert_eq!(a.push().await.unwrap().requests, 0, "nothing is sent");
    a.discard(&m).await.unwrap();
    assert_eq!(a.status().await.unwrap().rejected, 0);
    assert!(server_rows(&s, "messages", "select=id").await.is_empty());
}

#[tokio::test]
async fn a_child_written_just_as_its_parents_tombstone_arrived_is_rejected_with_the_reason() {
    // Found by the soak: the app read the conversation, the tombstone removed it, then
    // the app wrote a message into it. The message goes out with a reference the server
    // no longer has; the refusal must say that the parent was deleted.
    let s = server().await;
    let (a, b, _p) = pair(&s, "race-late-child").await;
    let c = a.insert("conversations", &json!({"title": "about to go"})).await.unwrap().local_id;
    a.push().await.unwrap();
    b.pull().await.unwrap();
    b.delete("conversations", &c).await.unwrap();
    b.push().await.unwrap();
    a.pull().await.unwrap();
    assert!(a.get("conversations", &c).await.unwrap().is_none());
    let m = a
        .insert("messages", &json!({"conversation_id": c, "role": "user", "content": "too late"}))
        .await
        .unwrap()
        .local_id;
    let r = a.push().await.unwrap();
    assert_eq!((r.pushed, r.rejected, r.stopped.as_deref()), (0, 1, None), "{r:?}");
    let why = a.rejected().await.unwrap()[0].rejected.clone().unwrap();
    assert!(why.contains(&format!("conversations/{c} was deleted on the server")), "{why}");
    assert_eq!(a.status().await.unwrap().pending, 0);
    assert!(a.get("messages", &m).await.unwrap().is_none());
}

#[tokio::test]
async fn a_stale_change_for_a_row_this_device_never_held_does_not_create_it() {
    // Found by the soak: a message written and deleted (with its conversation) while a
    // device caught up; the device's pull applied the tombstones of rows it never held,
    // then the queued INSERT arrived. It must not create a row the server no longer has,
    // neither right away nor after a restart (where nothing is remembered in memory).
    let s = server().await;
    let (a, b, _p) = pair(&s, "race-never-held").await;
    a.pull().await.unwrap(); // A has pulled before: its cursors are past the start
    let m = b.insert("memories", &json!({"content": "here and gone"})).await.unwrap().local_id;
    b.push().await.unwrap();
    let record = server_rows(&s, "memories", &format!("select=*&local_id=eq.{m}")).await.remove(0);
    b.delete("memories", &m).await.unwrap();
    b.push().await.unwrap();
    a.pull().await.unwrap();
    let insert = memory_change("INSERT", &record);
    assert_eq!(a.apply_change(&insert).await.unwrap(), Applied::Skipped);
    assert!(a.get("memories", &m).await.unwrap().is_none(), "no ghost");
    // A third device that pulled after the delete and never saw the tombstone in this
    // process: its cursor says the change is older than what it pulled.
    let c = replica(s.url(), s.anon_key()).await;
    c.sign_in("race-never-held@example.com", "password-123").await.unwrap();
    c.pull().await.unwrap();
    assert_eq!(c.apply_change(&insert).await.unwrap(), Applied::Skipped);
    assert!(c.get("memories", &m).await.unwrap().is_none(), "no ghost without a memory of the delete either");
}

#[tokio::test]
async fn a_push_killed_after_its_request_landed_still_counts_as_tried() {
    // Found by the soak: the engine was killed mid-push after the server committed an
    // insert, before the attempt was recorded; reopened, the app deleted the row, and
    // the delete "cancelled" the insert as if it had never been sent: the server kept it.
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let a = common::replica_at(&proxy.url(), s.anon_key(), &path).await;
    a.sign_up("race-killed@example.com", "password-123").await.unwrap();
    let c = a.insert("conversations", &json!({"title": "sent, then killed"})).await.unwrap().local_id;
    let m = a.insert("conversations", &json!({"title": "sent too"})).await.unwrap().local_id;
    // One request carries both. Its answer is held back; once the server has both rows
    // (the HTTP timeout is 5 s, far longer), the push is dropped where
    // it stands (awaiting the answer), as a killed process would leave it.
    proxy.set(Mode::DelayAnswers(Duration::from_secs(30)));
    tokio::select! {
        r = a.push() => panic!("the push finished: {r:?}"),
        _ = async {
            while on_server(&s, "conversations", &c).await == 0 || on_server(&s, "conversations", &m).await == 0 {
                sleep(Duration::from_millis(10)).await;
            }
        } => {}
    }
    proxy.set(Mode::Pass);
    proxy.cut();
    drop(a);
    let a = common::replica_at(&proxy.url(), s.anon_key(), &path).await;
    assert_eq!(a.status().await.unwrap().pending, 2);
    // The app deletes one and edits the other: both queue behind the inserts.
    a.delete("conversations", &c).await.unwrap();
    a.update("conversations", &m, &json!({"title": "edited after the restart"})).await.unwrap();
    assert_eq!(a.status().await.unwrap().pending, 4, "queued behind, neither cancelled nor merged");
    let r = a.push().await.unwrap();
    assert_eq!((r.rejected, r.stopped.as_deref()), (0, None), "{r:?}");
    assert_eq!(on_server(&s, "conversations", &c).await, 0, "the delete reached the server");
    let kept = server_rows(&s, "conversations", &format!("select=title&local_id=eq.{m}")).await;
    assert_eq!(kept, vec![json!({"title": "edited after the restart"})], "the edit was not lost in a duplicate insert");
}

#[tokio::test]
async fn two_processes_pushing_one_outbox_without_a_shared_lock_double_nothing_and_neither_fails() {
    // Browser tabs where Web Locks are missing or refused each work alone and push the
    // one outbox they share. Here two engines on one replica file, no lock between
    // them: A's first request is held at the proxy while B pushes both writes; A then
    // goes on with the copy of the outbox it read, whose second write B has settled.
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    let a = common::replica_at(&proxy.url(), s.anon_key(), &path).await;
    a.sign_up("race-alone@example.com", "password-123").await.unwrap();
    let b = common::replica_at(s.url(), s.anon_key(), &path).await;
    let c = a.insert("conversations", &json!({"title": "pushed by both"})).await.unwrap().local_id;
    let m = a.insert("memories", &json!({"content": "pushed by B only"})).await.unwrap().local_id;
    let mut held = proxy.hold_answer(&["POST /rest/v1/conversations?"]);
    let pushing = tokio::spawn({
        let a = a.clone();
        async move { a.push().await }
    });
    held.arrived().await;
    let by_b = b.push().await.unwrap();
    assert_eq!((by_b.pushed, by_b.stopped.as_deref()), (2, None), "{by_b:?}");
    held.release();
    let by_a = timeout(Duration::from_secs(20), pushing).await.unwrap().unwrap().expect("A's push ends without an error");
    // A sends the memory too: the server has it (B's), so it is found and confirmed,
    // not inserted again.
    assert_eq!((by_a.pushed, by_a.rejected, by_a.stopped.as_deref()), (2, 0, None), "{by_a:?}");
    let again = a.push().await.unwrap();
    assert_eq!((again.pushed, again.requests, again.stopped.as_deref()), (0, 0, None), "the next push finds nothing left: {again:?}");
    assert_eq!(on_server(&s, "conversations", &c).await, 1, "the conversation once");
    assert_eq!(on_server(&s, "memories", &m).await, 1, "the memory once");
    for d in [&a, &b] {
        assert_eq!(d.status().await.unwrap().pending, 0);
        assert_eq!(d.get("conversations", &c).await.unwrap().map(|r| r.status), Some(RowStatus::Synced));
        assert_eq!(d.get("memories", &m).await.unwrap().map(|r| r.status), Some(RowStatus::Synced));
    }
}

#[tokio::test]
async fn a_confirmation_the_store_kept_only_in_part_is_healed_by_the_next_pull() {
    // WebKitGTK, its tab closed while a confirmation committed, kept the batch's outbox
    // deletes and lost its rows: the writes said "pending" for good, with nothing left
    // to push them. Here that state is made by hand on a replica file: the rows as they
    // were before the push, their entries gone. The next pull finds each change on the
    // server and nothing queued for it, and shows the row synced; a row with a change
    // still queued keeps it.
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.db");
    let a = common::replica_at(s.url(), s.anon_key(), &path).await;
    a.sign_up("race-partial@example.com", "password-123").await.unwrap();
    let c = a.insert("conversations", &json!({"title": "confirmed, then forgotten"})).await.unwrap().local_id;
    let e = a.insert("conversations", &json!({"title": "edited later"})).await.unwrap().local_id;
    let raw = SqliteStore::open(&path).unwrap();
    let before = raw.get_row("conversations", &c).await.unwrap().expect("the row");
    assert_eq!(a.push().await.unwrap().pushed, 2);
    // The confirmation's rows lost, its entry deletes kept.
    raw.apply(WriteBatch { put_rows: vec![before], ..Default::default() }).await.unwrap();
    assert_eq!(a.get("conversations", &c).await.unwrap().map(|r| r.status), Some(RowStatus::Pending), "stuck as WebKit left it");
    assert_eq!(a.status().await.unwrap().pending, 0, "with nothing queued");
    // Meanwhile a real change waits for the other row.
    a.update("conversations", &e, &json!({"title": "not pushed yet"})).await.unwrap();
    a.pull().await.unwrap();
    let healed = a.get("conversations", &c).await.unwrap().expect("the row");
    assert_eq!((healed.status, healed.row["title"].clone()), (RowStatus::Synced, json!("confirmed, then forgotten")));
    let stored = raw.get_row("conversations", &c).await.unwrap().expect("the row");
    assert!(stored.overlay.is_none() && stored.server_id.is_some(), "{stored:?}");
    let waiting = a.get("conversations", &e).await.unwrap().expect("the row");
    assert_eq!((waiting.status, waiting.row["title"].clone()), (RowStatus::Pending, json!("not pushed yet")), "a queued change stays");
    assert_eq!(a.push().await.unwrap().pushed, 1);
    assert_eq!(server_rows(&s, "conversations", "select=title&order=title").await, vec![json!({"title": "confirmed, then forgotten"}), json!({"title": "not pushed yet"})]);
}

/// A store whose next batch can be held at the door: the test sees what the app sees
/// while a write is on its way, then lets the write through or fails it. It can also
/// fail one batch of new messages handed over without waiting (`apply_queued`) the
/// way IndexedDB's commit fails: nothing of it stored, and told only when waited for.
struct GatedStore {
    inner: SqliteStore,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    door: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<Result<(), String>>>>,
    knocked: tokio::sync::Notify,
    /// Which queued batch of new messages fails (1 for the first; 0: none).
    fail_queued: std::sync::atomic::AtomicUsize,
    queued: std::sync::atomic::AtomicUsize,
    /// The next `get_row` waits here (a read held, as an IndexedDB round trip is long).
    read_door: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    read_knocked: tokio::sync::Notify,
    /// The tables of every `find_by_server_id`, in order.
    lookups: std::sync::Mutex<Vec<String>>,
}

impl Gate {
    /// Hold the next batch until the returned sender says `Ok` (write it) or `Err` (fail it).
    fn hold_next(&self) -> tokio::sync::oneshot::Sender<Result<(), String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        *self.door.lock().unwrap() = Some(rx);
        tx
    }

    /// Hold the next `get_row` until the returned sender is used or dropped.
    fn hold_next_read(&self) -> tokio::sync::oneshot::Sender<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        *self.read_door.lock().unwrap() = Some(rx);
        tx
    }
}

supasync_core::maybe_async_trait! {
    impl Store for GatedStore {
        async fn get_row(&self, table: &str, local_id: &str) -> Result<Option<LocalRow>, StoreError> {
            let door = self.gate.read_door.lock().unwrap().take();
            if let Some(door) = door {
                self.gate.read_knocked.notify_one();
                let _ = door.await;
            }
            self.inner.get_row(table, local_id).await
        }
        async fn get_rows(&self, table: &str, local_ids: &[String]) -> Result<Vec<Option<LocalRow>>, StoreError> { self.inner.get_rows(table, local_ids).await }
        async fn find_by_server_id(&self, table: &str, server_id: &Value) -> Result<Option<LocalRow>, StoreError> {
            self.gate.lookups.lock().unwrap().push(table.to_string());
            self.inner.find_by_server_id(table, server_id).await
        }
        async fn scan(&self, table: &str) -> Result<Vec<LocalRow>, StoreError> { self.inner.scan(table).await }
        async fn ensure_index(&self, table: &str, index: &IndexDef) -> Result<(), StoreError> { self.inner.ensure_index(table, index).await }
        async fn indexes(&self, table: &str) -> Result<Vec<IndexDef>, StoreError> { self.inner.indexes(table).await }
        async fn rows_in_index(&self, table: &str, index: &IndexDef, range: &KeyRange, descending: bool, limit: Option<usize>) -> Result<Vec<LocalRow>, StoreError> { self.inner.rows_in_index(table, index, range, descending, limit).await }
        async fn count_in_index(&self, table: &str, index: &IndexDef, ranges: &[KeyRange]) -> Result<Vec<usize>, StoreError> { self.inner.count_in_index(table, index, ranges).await }
        async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> { self.inner.outbox().await }
        async fn last_outbox_entry(&self, table: &str, local_id: &str) -> Result<Option<OutboxEntry>, StoreError> { self.inner.last_outbox_entry(table, local_id).await }
        async fn meta(&self, key: &str) -> Result<Option<Value>, StoreError> { self.inner.meta(key).await }
        async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> { self.inner.history(limit).await }
        async fn read_blob(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Option<Vec<u8>>, StoreError> { self.inner.read_blob(key, offset, len).await }
        async fn blob_len(&self, key: &str) -> Result<Option<u64>, StoreError> { self.inner.blob_len(key).await }
        async fn filling(&self, table: &str, expected_rows: u64) -> Result<(), StoreError> { self.inner.filling(table, expected_rows).await }
        async fn filled(&self, table: &str) -> Result<(), StoreError> { self.inner.filled(table).await }
        async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
            let door = self.gate.door.lock().unwrap().take();
            if let Some(door) = door {
                self.gate.knocked.notify_one();
                door.await.map_err(|_| StoreError::Io("the door was dropped".into()))?.map_err(StoreError::Io)?;
            }
            self.inner.apply(batch).await
        }
        async fn apply_queued(&self, batch: WriteBatch) -> Result<Applying, StoreError> {
            use std::sync::atomic::Ordering::SeqCst;
            if batch.new_rows.first().is_some_and(|r| r.row.table == "messages") {
                let nth = self.gate.queued.fetch_add(1, SeqCst) + 1;
                if self.gate.fail_queued.load(SeqCst) == nth {
                    return Ok(Box::pin(async { Err(StoreError::Io("the page's commit failed".into())) }));
                }
            }
            self.apply(batch).await?;
            Ok(Box::pin(std::future::ready(Ok(()))))
        }
    }
}

#[tokio::test]
async fn a_restore_page_that_fails_after_the_next_was_handed_over_loses_and_doubles_nothing() {
    use supasync_core::{client::Project, Engine, EngineConfig, Schema};
    let s = server().await;
    let b = replica(s.url(), s.anon_key()).await;
    b.sign_up("page-fails@example.com", "password-123").await.unwrap();
    let conv = b.insert("conversations", &json!({"title": "t"})).await.unwrap().local_id;
    for i in 0..23 {
        b.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": format!("m{i}")})).await.unwrap();
    }
    b.push().await.unwrap();
    let schema = Schema::from_json(&std::fs::read_to_string(common::manifest().join("tests/chat_schema.json")).unwrap()).unwrap();
    let gate = Arc::new(Gate::default());
    // The second page of messages fails once the third is handed over.
    gate.fail_queued.store(2, std::sync::atomic::Ordering::SeqCst);
    // Every table's restore has the store build its lookups by server id at the end.
    let a = Engine::open(
        schema,
        GatedStore { inner: SqliteStore::in_memory().unwrap(), gate: gate.clone() },
        ReqwestHttp::with_timeout(Duration::from_secs(5)).unwrap(),
        Project { url: s.url().into(), anon_key: s.anon_key().into() },
        EngineConfig { page_size: 5, restore_fill_from: 0, ..EngineConfig::with_clock(supasync_native::system_now_ms) },
    )
    .await
    .unwrap();
    a.sign_in("page-fails@example.com", "password-123").await.unwrap();
    let err = a.pull().await.expect_err("the restore stops at the failed page");
    assert!(err.to_string().contains("the page's commit failed"), "{err}");
    let held = a.query("messages", &Default::default()).await.unwrap().len();
    assert!(held < 23, "the page after the failed one may be stored, the failed one is not ({held} held)");
    // The cursor did not move, and the restore's mark is never past the failed page:
    // the next pull goes on from the mark and merges what was stored.
    a.pull().await.expect("the next pull goes through");
    let mut got: Vec<String> = a.query("messages", &Default::default()).await.unwrap().into_iter().map(|r| r.row["content"].as_str().unwrap_or_default().to_string()).collect();
    got.sort();
    let mut want: Vec<String> = (0..23).map(|i| format!("m{i}")).collect();
    want.sort();
    assert_eq!(got, want, "every message once");
    // Each is found by its server id: an edit elsewhere lands on it, not beside it.
    let m7 = b.query("messages", &Default::default()).await.unwrap().into_iter().find(|r| r.row["content"] == json!("m7")).unwrap().local_id;
    b.update("messages", &m7, &json!({"content": "m7 edited"})).await.unwrap();
    b.push().await.unwrap();
    a.pull().await.unwrap();
    let after: Vec<String> = a.query("messages", &Default::default()).await.unwrap().into_iter().map(|r| r.row["content"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!((after.len(), after.contains(&"m7 edited".to_string()), after.contains(&"m7".to_string())), (23, true, false), "{after:?}");
}

#[tokio::test]
async fn a_restore_maps_messages_to_the_conversations_it_restored_without_reading_the_store_for_them() {
    // A parent looked up during a restore waits, in a browser, for every page still
    // committing: the conversations restored first are known to the pull instead.
    use supasync_core::{client::Project, Engine, EngineConfig, Schema};
    let s = server().await;
    let b = replica(s.url(), s.anon_key()).await;
    b.sign_up("parents-known@example.com", "password-123").await.unwrap();
    let mut convs = vec![];
    for c in 0..7 {
        let conv = b.insert("conversations", &json!({"title": format!("c{c}")})).await.unwrap().local_id;
        for i in 0..4 {
            b.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": format!("c{c} m{i}")})).await.unwrap();
        }
        convs.push(conv);
    }
    b.push().await.unwrap();
    let schema = Schema::from_json(&std::fs::read_to_string(common::manifest().join("tests/chat_schema.json")).unwrap()).unwrap();
    let gate = Arc::new(Gate::default());
    let a = Engine::open(
        schema,
        GatedStore { inner: SqliteStore::in_memory().unwrap(), gate: gate.clone() },
        ReqwestHttp::with_timeout(Duration::from_secs(5)).unwrap(),
        Project { url: s.url().into(), anon_key: s.anon_key().into() },
        // Pages of 3: the conversations take three pages, the messages ten, in ranges.
        EngineConfig { page_size: 3, ..EngineConfig::with_clock(supasync_native::system_now_ms) },
    )
    .await
    .unwrap();
    a.sign_in("parents-known@example.com", "password-123").await.unwrap();
    let report = a.pull().await.unwrap();
    assert_eq!(report.rows, 35, "{report:?}");
    let lookups = gate.lookups.lock().unwrap().clone();
    assert!(!lookups.iter().any(|t| t == "conversations"), "no conversation looked up in the store: {lookups:?}");
    // Each message refers to its conversation by the local id the device knows it by.
    for r in a.query("messages", &Default::default()).await.unwrap() {
        let c: usize = r.row["content"].as_str().unwrap()[1..2].parse().unwrap();
        assert_eq!(r.row["conversation_id"], json!(convs[c]), "{:?}", r.row);
    }
}

/// A Realtime change of `messages` as the server would send it.
fn message_change(record: &Value) -> PgChange {
    PgChange { table: "messages".into(), ..memory_change("INSERT", record) }
}

/// Contents of a live select's next answer, in its order.
async fn next_contents<S: Store, H: supasync_core::transport::Http>(live: &mut supasync_core::live_query::LiveSelect<S, H>) -> Vec<String> {
    let answer = timeout(Duration::from_secs(10), live.next()).await.expect("an answer within 10 s").expect("engine open").expect("answer");
    answer.rows.iter().map(|r| r.data["content"].as_str().unwrap_or_default().to_string()).collect()
}

/// The same for a live query of one table (`db.live`).
async fn next_rows<S: Store, H: supasync_core::transport::Http>(live: &mut supasync_core::live_query::LiveQuery<S, H>) -> Vec<String> {
    let rows = timeout(Duration::from_secs(10), live.next()).await.expect("an answer within 10 s").expect("engine open").expect("answer");
    rows.iter().map(|r| r.row["content"].as_str().unwrap_or_default().to_string()).collect()
}

/// A device of the chat schema on the SQLite file `file`, its store behind `gate`.
async fn gated_engine(s: &supasync_devserver::DevServer, gate: &Arc<Gate>, file: &std::path::Path) -> Arc<supasync_core::Engine<GatedStore, ReqwestHttp>> {
    use supasync_core::{client::Project, Engine, EngineConfig, Schema};
    let schema = Schema::from_json(&std::fs::read_to_string(common::manifest().join("tests/chat_schema.json")).unwrap()).unwrap();
    let store = GatedStore { inner: SqliteStore::open(file).unwrap(), gate: gate.clone() };
    let http = ReqwestHttp::with_timeout(Duration::from_secs(5)).unwrap();
    let project = Project { url: s.url().into(), anon_key: s.anon_key().into() };
    Arc::new(Engine::open(schema, store, http, project, EngineConfig::with_clock(supasync_native::system_now_ms)).await.unwrap())
}

#[tokio::test]
async fn a_server_row_shows_in_live_queries_while_it_is_stored_and_leaves_them_if_storing_fails() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("replica.db");
    let store = Arc::new(Gate::default());
    let a = gated_engine(&s, &store, &file).await;
    let b = replica(s.url(), s.anon_key()).await;
    a.sign_up("shown-early@example.com", "password-123").await.unwrap();
    b.sign_in("shown-early@example.com", "password-123").await.unwrap();
    let conv = b.insert("conversations", &json!({"title": "t"})).await.unwrap().local_id;
    b.push().await.unwrap();
    a.pull().await.unwrap();
    // Two messages written elsewhere, each reaching A as a Realtime change.
    let mut records = vec![];
    for content in ["first", "second"] {
        let m = b.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": content})).await.unwrap().local_id;
        b.push().await.unwrap();
        records.push((m.clone(), server_rows(&s, "messages", &format!("select=*&local_id=eq.{m}")).await.remove(0)));
    }
    let req = SelectRequest::parse(&format!("messages?select=content&conversation_id=eq.{conv}&order=content")).unwrap();
    let mut live = live_select(&a, req).unwrap();
    assert!(next_contents(&mut live).await.is_empty());
    let by_content = supasync_core::Query { filters: vec![("conversation_id".into(), json!(conv))], order: Some(("content".into(), false)), limit: None };
    let mut simple = supasync_core::live_query::live_query(&a, "messages", by_content);
    assert!(next_rows(&mut simple).await.is_empty());

    // Shown while the store writes it; stored once let through; no second answer.
    let (first, record) = &records[0];
    let door = store.hold_next();
    let applying = tokio::spawn({
        let (a, change) = (a.clone(), message_change(record));
        async move { a.apply_change(&change).await }
    });
    store.knocked.notified().await;
    assert_eq!(next_contents(&mut live).await, ["first"], "shown while the write waits");
    assert_eq!(next_rows(&mut simple).await, ["first"], "shown while the write waits");
    assert!(a.get("messages", first).await.unwrap().is_none(), "not stored yet");
    // Another process on the same replica (a tab) writes meanwhile, and the query
    // reads the store again: the row on its way still shows, next to that tab's.
    let tab = replica_at(s.url(), s.anon_key(), &file).await;
    tab.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": "from a tab"})).await.unwrap();
    a.notify_changed(vec!["messages".into()], true);
    assert_eq!(next_contents(&mut live).await, ["first", "from a tab"]);
    assert_eq!(next_rows(&mut simple).await, ["first", "from a tab"]);
    door.send(Ok(())).unwrap();
    assert_eq!(applying.await.unwrap().unwrap(), Applied::Row);
    assert!(a.get("messages", first).await.unwrap().is_some(), "stored");

    // A write that fails: shown, then gone again, and the change reports the failure.
    let (second, record) = &records[1];
    let door = store.hold_next();
    let applying = tokio::spawn({
        let (a, change) = (a.clone(), message_change(record));
        async move { a.apply_change(&change).await }
    });
    store.knocked.notified().await;
    // The next answer is this one: the stored first row gave no answer of its own.
    assert_eq!(next_contents(&mut live).await, ["first", "from a tab", "second"]);
    assert_eq!(next_rows(&mut simple).await, ["first", "from a tab", "second"]);
    door.send(Err("disk full".into())).unwrap();
    let failed = applying.await.unwrap().unwrap_err();
    assert!(failed.to_string().contains("disk full"), "{failed}");
    assert_eq!(next_contents(&mut live).await, ["first", "from a tab"], "what was shown left with the failed write");
    assert_eq!(next_rows(&mut simple).await, ["first", "from a tab"], "what was shown left with the failed write");
    assert!(a.get("messages", second).await.unwrap().is_none());
    // The pull brings what the failed write did not store.
    a.pull().await.unwrap();
    assert_eq!(next_contents(&mut live).await, ["first", "from a tab", "second"]);
    assert_eq!(next_rows(&mut simple).await, ["first", "from a tab", "second"]);
}

#[tokio::test]
async fn a_push_and_a_pull_that_find_the_token_expired_at_once_refresh_it_once() {
    let s = server().await;
    let (a, _b, proxy) = pair(&s, "race-refresh").await;
    for i in 0..3 {
        a.insert("memories", &json!({"content": format!("m{i}")})).await.unwrap();
    }
    // The server expires tokens issued before the current second: let that second pass.
    let secs = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let issued = secs();
    while secs() <= issued {
        sleep(Duration::from_millis(20)).await;
    }
    s.expire_tokens();
    // The push's refresh waits at the proxy until the pull has sent its first request
    // with the refused token too (the push's insert and the pull's snapshot): both come
    // to refresh it.
    let mut refresh = proxy.hold_answer(&["grant_type=refresh_token"]);
    let pulled_with_old_token = async {
        refresh.arrived().await;
        timeout(Duration::from_secs(10), async {
            while proxy.requests(" /rest/v1/") < 2 {
                sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the pull sent its request");
        refresh.release();
    };
    let (pushed, pulled, ()) = tokio::join!(a.push(), a.pull(), pulled_with_old_token);
    assert_eq!(pushed.unwrap().pushed, 3);
    pulled.unwrap();
    assert_eq!(proxy.requests("grant_type=refresh_token"), 1, "one refresh between them");
    assert_eq!(server_rows(&s, "memories", "select=content").await.len(), 3);
    assert!(a.pull().await.is_ok(), "the session the refresh brought is the one kept");
}

#[tokio::test]
async fn a_row_another_device_inserts_shows_before_the_store_is_read_and_a_wrong_forecast_is_corrected() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("replica.db");
    let gate = Arc::new(Gate::default());
    let a = gated_engine(&s, &gate, &file).await;
    let b = replica(s.url(), s.anon_key()).await;
    a.sign_up("forecast@example.com", "password-123").await.unwrap();
    b.sign_in("forecast@example.com", "password-123").await.unwrap();
    let conv = b.insert("conversations", &json!({"title": "t"})).await.unwrap().local_id;
    b.push().await.unwrap();
    // The pull tells A the conversation's ids and where the messages' cursor is.
    a.pull().await.unwrap();
    let first = b.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": "first"})).await.unwrap().local_id;
    b.push().await.unwrap();
    let record = server_rows(&s, "messages", &format!("select=*&local_id=eq.{first}")).await.remove(0);
    let req = SelectRequest::parse(&format!("messages?select=content&conversation_id=eq.{conv}&order=content")).unwrap();
    let mut live = live_select(&a, req).unwrap();
    assert!(next_contents(&mut live).await.is_empty());
    let by_content = supasync_core::Query { filters: vec![("conversation_id".into(), json!(conv))], order: Some(("content".into(), false)), limit: None };
    let mut simple = supasync_core::live_query::live_query(&a, "messages", by_content);
    assert!(next_rows(&mut simple).await.is_empty());

    // The change's read of the store is held: both live queries show the row already,
    // with its conversation's local id (they filter on it).
    let read = gate.hold_next_read();
    let applying = tokio::spawn({
        let (a, change) = (a.clone(), message_change(&record));
        async move { a.apply_change(&change).await }
    });
    gate.read_knocked.notified().await;
    assert_eq!(next_contents(&mut live).await, ["first"], "shown while the store is read");
    assert_eq!(next_rows(&mut simple).await, ["first"], "shown while the store is read");
    assert!(a.get("messages", &first).await.unwrap().is_none(), "not stored yet");
    read.send(()).unwrap();
    assert_eq!(applying.await.unwrap().unwrap(), Applied::Row);
    assert_eq!(a.get("messages", &first).await.unwrap().expect("stored").row["content"], "first");

    // A forecast the rules cannot check: another process on this replica (a tab, which
    // a browser would not let push) pushed a message and edited it since; its echo
    // reaches A. What A shows at first is corrected by the write: the edit stays, once.
    let tab = replica_at(s.url(), s.anon_key(), &file).await;
    let second = tab.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": "second"})).await.unwrap().local_id;
    tab.push().await.unwrap();
    tab.update("messages", &second, &json!({"content": "second, edited"})).await.unwrap();
    let echo = server_rows(&s, "messages", &format!("select=*&local_id=eq.{second}")).await.remove(0);
    let read = gate.hold_next_read();
    let applying = tokio::spawn({
        let (a, change) = (a.clone(), message_change(&echo));
        async move { a.apply_change(&change).await }
    });
    gate.read_knocked.notified().await;
    assert_eq!(next_contents(&mut live).await, ["first", "second"], "the forecast cannot see the tab's edit");
    read.send(()).unwrap();
    assert_eq!(applying.await.unwrap().unwrap(), Applied::Row);
    assert_eq!(next_contents(&mut live).await, ["first", "second, edited"], "the write's answer puts the pending edit back on top");
    let held = a.get("messages", &second).await.unwrap().expect("held");
    assert_eq!(held.row["content"], "second, edited");
    assert_eq!(a.query("messages", &Default::default()).await.unwrap().len(), 2, "each message once");
}

