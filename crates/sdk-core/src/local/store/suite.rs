//! The test suite every store runs (DESIGN §6.2): the memory store here, SQLite in
//! `supasync-native`, IndexedDB in `supasync-wasm`. Each case is an async function over
//! any [`Store`]; [`store_suite!`](crate::store_suite) turns them into tests for a store
//! constructor. Cases start from an empty store.

use serde_json::{json, Value};

use super::{HistoryEntry, NewOutboxEntry, NewRow, Store, StoreError, WriteBatch};
use crate::local::index::{IndexColumn, IndexDef, KeyRange};
use crate::local::local_row::{LocalRow, Overlay, RowStatus};
use crate::local::outbox::OutboxOp;
use crate::local::local_row::Row;

fn obj(v: Value) -> Row {
    v.as_object().cloned().unwrap_or_default()
}

fn row(table: &str, local_id: &str, server_id: Option<Value>) -> LocalRow {
    LocalRow {
        table: table.into(),
        local_id: local_id.into(),
        server_id,
        mirror: None,
        overlay: Some(Overlay::Fields { fields: obj(json!({"body": local_id})) }),
        status: RowStatus::Pending,
        last_pushed: None,
    }
}

fn new_entry(table: &str, local_id: &str) -> NewOutboxEntry {
    NewOutboxEntry {
        table: table.into(),
        local_id: local_id.into(),
        op: OutboxOp::Insert { row: obj(json!({"body": local_id})) },
        created_at_ms: 1_700_000_000_000,
    }
}

/// An empty store reads nothing.
pub async fn empty_store_reads_nothing<S: Store>(s: &S) {
    assert_eq!(s.get_row("t", "x").await.unwrap(), None);
    assert_eq!(s.find_by_server_id("t", &json!(1)).await.unwrap(), None);
    assert!(s.scan("t").await.unwrap().is_empty());
    assert!(s.outbox().await.unwrap().is_empty());
    assert_eq!(s.last_outbox_entry("t", "x").await.unwrap(), None);
    assert_eq!(s.meta("k").await.unwrap(), None);
    assert!(s.history(10).await.unwrap().is_empty());
    s.apply(WriteBatch::default()).await.unwrap();
}

/// A row and its outbox entry land together.
pub async fn a_row_and_its_outbox_entry_land_together<S: Store>(s: &S) {
    let r = row("messages", "L1", None);
    s.apply(WriteBatch {
        put_rows: vec![r.clone()],
        add_outbox: vec![new_entry("messages", "L1")],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.get_row("messages", "L1").await.unwrap(), Some(r));
    let ob = s.outbox().await.unwrap();
    assert_eq!(ob.len(), 1);
    assert_eq!((ob[0].table.as_str(), ob[0].local_id.as_str()), ("messages", "L1"));
    assert_eq!(ob[0].attempts, 0);
    assert!(!ob[0].in_flight);
}

/// Several rows are read at once, in the order asked, with gaps for missing ones.
pub async fn many_rows_are_read_at_once<S: Store>(s: &S) {
    s.apply(WriteBatch { put_rows: vec![row("t", "a", None), row("t", "c", None), row("u", "b", None)], ..Default::default() })
        .await
        .unwrap();
    let got = s.get_rows("t", &["c".into(), "b".into(), "a".into()]).await.unwrap();
    assert_eq!(got, vec![Some(row("t", "c", None)), None, Some(row("t", "a", None))]);
    assert!(s.get_rows("t", &[]).await.unwrap().is_empty());
}

/// The outbox summary counts waiting and refused entries and finds the oldest waiting.
pub async fn the_outbox_summary_matches_the_outbox<S: Store>(s: &S) {
    assert_eq!(s.outbox_summary().await.unwrap(), super::OutboxSummary::default());
    let mut first = new_entry("t", "a");
    first.created_at_ms = 5;
    let mut second = new_entry("t", "b");
    second.created_at_ms = 7;
    s.apply(WriteBatch { add_outbox: vec![first, second, new_entry("t", "c")], ..Default::default() }).await.unwrap();
    let mut refused = s.outbox().await.unwrap()[0].clone();
    refused.rejected = Some("no".into());
    s.apply(WriteBatch { put_outbox: vec![refused], ..Default::default() }).await.unwrap();
    let want = super::OutboxSummary { pending: 2, rejected: 1, oldest_pending_ms: Some(7) };
    assert_eq!(s.outbox_summary().await.unwrap(), want);
    assert_eq!(super::OutboxSummary::of(&s.outbox().await.unwrap()), want);
    let mut back = s.outbox().await.unwrap()[0].clone();
    back.rejected = None;
    s.apply(WriteBatch { put_outbox: vec![back], ..Default::default() }).await.unwrap();
    assert_eq!(s.outbox_summary().await.unwrap(), super::OutboxSummary { pending: 3, rejected: 0, oldest_pending_ms: Some(5) });
}

/// Outbox entries keep their order; seqs only grow; entries can be replaced and removed.
pub async fn the_outbox_keeps_order<S: Store>(s: &S) {
    s.apply(WriteBatch {
        add_outbox: vec![new_entry("t", "a"), new_entry("t", "b")],
        ..Default::default()
    })
    .await
    .unwrap();
    s.apply(WriteBatch {
        add_outbox: vec![new_entry("t", "c")],
        ..Default::default()
    })
    .await
    .unwrap();
    let ob = s.outbox().await.unwrap();
    let ids: Vec<&str> = ob.iter().map(|e| e.local_id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b", "c"]);
    assert!(ob[0].seq < ob[1].seq && ob[1].seq < ob[2].seq);
    let mut b = ob[1].clone();
    b.attempts = 3;
    b.last_error = Some("timeout".into());
    b.in_flight = true;
    b.op = OutboxOp::Update { fields: obj(json!({"x": 1})) };
    s.apply(WriteBatch {
        put_outbox: vec![b.clone()],
        delete_outbox: vec![ob[0].seq],
        ..Default::default()
    })
    .await
    .unwrap();
    let ob2 = s.outbox().await.unwrap();
    assert_eq!(ob2, vec![b.clone(), ob[2].clone()]);
    assert_eq!(s.last_outbox_entry("t", "b").await.unwrap(), Some(b.clone()));
    assert_eq!(s.last_outbox_entry("t", "a").await.unwrap(), None);
    assert_eq!(s.row_outbox("t", "b").await.unwrap(), vec![b.clone()]);
    assert_eq!(s.row_outbox("t", "a").await.unwrap(), vec![]);
    // Deleting the newest entry never lets its seq be reused.
    s.apply(WriteBatch {
        delete_outbox: vec![ob[2].seq],
        add_outbox: vec![new_entry("t", "d")],
        ..Default::default()
    })
    .await
    .unwrap();
    let last = s.outbox().await.unwrap().pop().unwrap();
    assert_eq!(last.local_id, "d");
    assert!(last.seq > ob[2].seq);
    // A row's entries, oldest first, and no other row's.
    s.apply(WriteBatch { add_outbox: vec![new_entry("t", "b"), new_entry("u", "b")], ..Default::default() }).await.unwrap();
    let of_b = s.row_outbox("t", "b").await.unwrap();
    assert_eq!(of_b.len(), 2);
    assert_eq!(of_b[0], b);
    assert!(of_b[1].seq > last.seq && of_b[1].table == "t" && of_b[1].local_id == "b");
}

/// A batch that cannot apply leaves no trace.
pub async fn a_failed_batch_applies_nothing<S: Store>(s: &S) {
    s.apply(WriteBatch {
        add_outbox: vec![new_entry("t", "a")],
        ..Default::default()
    })
    .await
    .unwrap();
    let before = s.outbox().await.unwrap();
    let mut ghost = before[0].clone();
    ghost.seq += 1000;
    let err = s
        .apply(WriteBatch {
            put_rows: vec![row("t", "new", None)],
            add_outbox: vec![new_entry("t", "new")],
            put_outbox: vec![ghost],
            meta: vec![("k".into(), Some(json!(1)))],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(s.get_row("t", "new").await.unwrap(), None);
    assert_eq!(s.outbox().await.unwrap(), before);
    assert_eq!(s.meta("k").await.unwrap(), None);
}

/// A file's bytes land with their row and outbox entry, read back whole or in any
/// part (chunk boundaries included), are replaced by a new version, can be empty, and
/// go when deleted.
pub async fn file_bytes_are_kept_and_read_in_parts<S: Store>(s: &S) {
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    s.apply(WriteBatch {
        put_rows: vec![row("files:b", "p", None)],
        add_outbox: vec![new_entry("files:b", "p")],
        put_blobs: vec![("b/p".into(), big.clone())],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.outbox().await.unwrap().len(), 1);
    assert_eq!(s.blob_len("b/p").await.unwrap(), Some(600_000));
    assert_eq!(s.read_blob("b/p", 0, None).await.unwrap().unwrap(), big);
    for (offset, len) in [(0u64, 10u64), (262_140, 10), (262_144, 262_144), (599_990, 100), (100, 0)] {
        let end = (offset + len).min(600_000) as usize;
        assert_eq!(s.read_blob("b/p", offset, Some(len)).await.unwrap().unwrap(), big[offset as usize..end], "{offset}+{len}");
    }
    assert_eq!(s.read_blob("b/p", 700_000, Some(10)).await.unwrap().unwrap(), Vec::<u8>::new());
    assert_eq!(s.read_blob("b/none", 0, None).await.unwrap(), None);
    assert_eq!(s.blob_len("b/none").await.unwrap(), None);
    s.apply(WriteBatch { put_blobs: vec![("b/p".into(), b"small".to_vec()), ("b/empty".into(), vec![])], ..Default::default() }).await.unwrap();
    assert_eq!(s.read_blob("b/p", 0, None).await.unwrap().unwrap(), b"small");
    assert_eq!(s.blob_len("b/p").await.unwrap(), Some(5), "the old version's chunks are gone");
    assert_eq!(s.blob_len("b/empty").await.unwrap(), Some(0));
    assert_eq!(s.read_blob("b/empty", 0, None).await.unwrap(), Some(vec![]));
    s.apply(WriteBatch { delete_blobs: vec!["b/p".into(), "b/never".into()], ..Default::default() }).await.unwrap();
    assert_eq!(s.read_blob("b/p", 0, None).await.unwrap(), None);
}

/// A batch that fails keeps none of the files' bytes it carried.
pub async fn a_failed_batch_keeps_no_file_bytes<S: Store>(s: &S) {
    s.apply(WriteBatch { add_outbox: vec![new_entry("t", "a")], ..Default::default() }).await.unwrap();
    let mut ghost = s.outbox().await.unwrap()[0].clone();
    ghost.seq += 1000;
    let err = s
        .apply(WriteBatch { put_blobs: vec![("b/x".into(), vec![1, 2, 3])], put_outbox: vec![ghost], ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(s.blob_len("b/x").await.unwrap(), None);
}

/// New rows (a restored page) are stored, indexed and found like put ones, whether
/// built or kept as the server's text; a new row whose key is taken fails its whole
/// batch and changes nothing.
pub async fn new_rows_are_stored_and_a_taken_key_fails_the_batch<S: Store>(s: &S) {
    s.ensure_index("messages", &IndexDef::column("conversation_id")).await.unwrap();
    let with_id = |local_id: &str, id: i64, conversation: i64| LocalRow {
        server_id: Some(json!(id)),
        ..synced("messages", local_id, json!({"id": id, "conversation_id": conversation}))
    };
    let a = with_id("a", 1, 7);
    // `b` kept as text: its built mirror holds only what the store files it by.
    let b_text = r#"{"id": 2, "body": "a \"quoted\" line", "conversation_id": 7}"#;
    let b = LocalRow { mirror: serde_json::from_str(b_text).unwrap(), ..with_id("b", 2, 7) };
    let b_new = NewRow { row: with_id("b", 2, 7), mirror_json: Some(b_text.into()) };
    s.apply(WriteBatch { new_rows: vec![a.clone().into(), b_new], ..Default::default() }).await.unwrap();
    assert_eq!(s.get_rows("messages", &["a".into(), "b".into()]).await.unwrap(), vec![Some(a.clone()), Some(b.clone())]);
    assert_eq!(s.find_by_server_id("messages", &json!(2)).await.unwrap(), Some(b.clone()));
    assert_eq!(ids_by(s, "messages", "conversation_id", json!(7)).await, vec!["a", "b"]);

    let (c, again) = (with_id("c", 3, 7), with_id("a", 1, 8));
    let err = s
        .apply(WriteBatch { new_rows: vec![c.into(), again.into()], meta: vec![("k".into(), Some(json!(1)))], ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Exists(_)), "{err:?}");
    assert_eq!(s.get_row("messages", "c").await.unwrap(), None, "nothing of the batch landed");
    assert_eq!(s.get_row("messages", "a").await.unwrap(), Some(a));
    assert_eq!(s.meta("k").await.unwrap(), None);
    assert_eq!(ids_by(s, "messages", "conversation_id", json!(7)).await, vec!["a", "b"]);
    assert!(ids_by(s, "messages", "conversation_id", json!(8)).await.is_empty());
}

/// Batches handed over without waiting ([`Store::apply_queued`]) land in the order
/// they were handed over: a read made after the calls, before any is waited for, sees
/// them; one that fails (a new row's key taken by the batch before it) leaves nothing
/// of itself, says so (at once, or when waited for), and does not stop the next.
pub async fn queued_batches_land_in_order<S: Store>(s: &S) {
    let page = |ids: &[&str], first_id: i64| WriteBatch {
        new_rows: ids
            .iter()
            .zip(first_id..)
            .map(|(l, id)| LocalRow { server_id: Some(json!(id)), ..synced("messages", l, json!({"id": id})) }.into())
            .collect(),
        ..Default::default()
    };
    let first = s.apply_queued(page(&["a", "b"], 1)).await.unwrap();
    let failing = s.apply_queued(page(&["c", "a"], 10)).await;
    let third = s.apply_queued(page(&["d"], 20)).await.unwrap();
    let ids = ["a", "b", "c", "d"].map(String::from);
    let held: Vec<bool> = s.get_rows("messages", &ids).await.unwrap().iter().map(Option::is_some).collect();
    assert_eq!(held, [true, true, false, true], "the first and third batches, and nothing of the second");
    first.await.unwrap();
    let err = match failing {
        Err(e) => e,
        Ok(stored) => stored.await.unwrap_err(),
    };
    assert!(matches!(err, StoreError::Exists(_)), "{err:?}");
    third.await.unwrap();
    assert_eq!(s.find_by_server_id("messages", &json!(20)).await.unwrap().map(|r| r.local_id), Some("d".into()));
    assert_eq!(s.find_by_server_id("messages", &json!(10)).await.unwrap(), None);
}

/// The id map: rows are found by their server id, per table.
pub async fn rows_are_found_by_server_id<S: Store>(s: &S) {
    s.apply(WriteBatch {
        put_rows: vec![
            row("a", "L1", Some(json!("0195a4b2-0000-7000-8000-000000000001"))),
            row("a", "L2", Some(json!(42))),
            row("b", "L3", Some(json!(42))),
            row("a", "L4", None),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let by_uuid = s.find_by_server_id("a", &json!("0195a4b2-0000-7000-8000-000000000001")).await.unwrap();
    assert_eq!(by_uuid.map(|r| r.local_id), Some("L1".into()));
    assert_eq!(s.find_by_server_id("a", &json!(42)).await.unwrap().map(|r| r.local_id), Some("L2".into()));
    assert_eq!(s.find_by_server_id("b", &json!(42)).await.unwrap().map(|r| r.local_id), Some("L3".into()));
    assert_eq!(s.find_by_server_id("a", &json!(43)).await.unwrap(), None);
    assert_eq!(s.find_by_server_id("a", &json!("42")).await.unwrap(), None, "a string is not a number");
    let scanned: Vec<String> = s.scan("a").await.unwrap().into_iter().map(|r| r.local_id).collect();
    assert_eq!(scanned, vec!["L1", "L2", "L4"]);
}

/// A table a restore fills ([`Store::filling`] to [`Store::filled`]) is found by
/// server id all along: during the fill, after it, with rows that were there before,
/// edited or deleted in it; a fill of another table and a second `filled` change nothing.
pub async fn a_filled_table_is_found_by_server_id_during_and_after<S: Store>(s: &S) {
    let with_id = |l: &str, id: i64| LocalRow { server_id: Some(json!(id)), ..synced("messages", l, json!({"id": id})) };
    let find = |id: i64| async move { s.find_by_server_id("messages", &json!(id)).await.unwrap().map(|r| r.local_id) };
    s.apply(WriteBatch { new_rows: vec![LocalRow { server_id: Some(json!(1)), ..synced("other", "o1", json!({})) }.into()], ..Default::default() }).await.unwrap();
    s.filling("messages", 4).await.unwrap();
    s.filled("elsewhere").await.unwrap();
    for page in [[("m3", 30), ("m1", 10)], [("m2", 20), ("m4", 40)]] {
        s.apply(WriteBatch { new_rows: page.iter().map(|(l, id)| with_id(l, *id).into()).collect(), ..Default::default() }).await.unwrap();
    }
    assert_eq!(find(20).await, Some("m2".into()), "found while the fill goes on");
    // Written during the fill: an edit, a delete, a merged row.
    s.apply(WriteBatch { put_rows: vec![with_id("m5", 50)], delete_rows: vec![("messages".into(), "m4".into())], ..Default::default() }).await.unwrap();
    s.filled("messages").await.unwrap();
    for (id, expected) in [(10, Some("m1")), (20, Some("m2")), (30, Some("m3")), (40, None), (50, Some("m5")), (60, None)] {
        assert_eq!(find(id).await, expected.map(String::from), "server id {id}");
    }
    assert_eq!(s.find_by_server_id("other", &json!(1)).await.unwrap().map(|r| r.local_id), Some("o1".into()));
    s.filled("messages").await.unwrap();
    s.apply(WriteBatch { delete_rows: vec![("messages".into(), "m1".into())], ..Default::default() }).await.unwrap();
    assert_eq!(find(10).await, None, "a row deleted after the fill is not found");
    assert_eq!(find(30).await, Some("m3".into()));
}

/// Rows are replaced whole and deleted.
pub async fn rows_are_replaced_and_deleted<S: Store>(s: &S) {
    let mut r = row("t", "L1", None);
    s.apply(WriteBatch {
        put_rows: vec![r.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    r.server_id = Some(json!(7));
    r.mirror = Some(obj(json!({"id": 7, "body": "server"})));
    r.overlay = None;
    r.status = RowStatus::Rejected { reason: "new row violates row-level security policy".into() };
    s.apply(WriteBatch {
        put_rows: vec![r.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.get_row("t", "L1").await.unwrap(), Some(r));
    s.apply(WriteBatch {
        delete_rows: vec![("t".into(), "L1".into())],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.get_row("t", "L1").await.unwrap(), None);
    assert_eq!(s.find_by_server_id("t", &json!(7)).await.unwrap(), None);
}

/// JSON values come back exactly as they went in.
pub async fn json_round_trips_exactly<S: Store>(s: &S) {
    let fields = obj(json!({
        "text": "héllo \u{1F600} \"quoted\" \n newline",
        "big": 9007199254740993u64,
        "neg": -12.5,
        "nested": {"a": [1, {"b": null}], "empty": {}},
        "flag": false,
        "nothing": null
    }));
    let mut r = row("t", "weird id ' \" ; --", Some(json!({"composite": [1, "x"]})));
    r.overlay = Some(Overlay::Fields { fields: fields.clone() });
    s.apply(WriteBatch {
        put_rows: vec![r.clone()],
        meta: vec![("cursor:t".into(), Some(json!({"next_txid": 12345, "pending": [1, 2]})))],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.get_row("t", "weird id ' \" ; --").await.unwrap(), Some(r));
    assert_eq!(s.meta("cursor:t").await.unwrap(), Some(json!({"next_txid": 12345, "pending": [1, 2]})));
}

/// Metadata is set, replaced and deleted.
pub async fn metadata_is_set_replaced_and_deleted<S: Store>(s: &S) {
    let set = |v: Option<Value>| WriteBatch {
        meta: vec![("session".into(), v)],
        ..Default::default()
    };
    s.apply(set(Some(json!({"user": "a"})))).await.unwrap();
    s.apply(set(Some(json!({"user": "b"})))).await.unwrap();
    assert_eq!(s.meta("session").await.unwrap(), Some(json!({"user": "b"})));
    s.apply(WriteBatch { meta: vec![("last_sync:messages".into(), Some(json!("2026-01-01")))], ..Default::default() }).await.unwrap();
    let keys = ["last_sync:messages".to_string(), "nothing".into(), "session".into()];
    assert_eq!(s.metas(&keys).await.unwrap(), [Some(json!("2026-01-01")), None, Some(json!({"user": "b"}))], "several at once, in order");
    s.apply(set(None)).await.unwrap();
    assert_eq!(s.meta("session").await.unwrap(), None);
}

/// History lines get increasing ids and come back newest first.
pub async fn history_is_newest_first<S: Store>(s: &S) {
    let h = |kind: &str, rows: u64| HistoryEntry {
        id: 0,
        at_ms: 1_700_000_000_000 + rows as i64,
        kind: kind.into(),
        table: Some("messages".into()),
        rows,
        duration_ms: 5,
        error: None,
        detail: json!({}),
    };
    s.apply(WriteBatch {
        history: vec![h("push", 1), h("pull", 2)],
        ..Default::default()
    })
    .await
    .unwrap();
    s.apply(WriteBatch {
        history: vec![h("conflict", 3)],
        ..Default::default()
    })
    .await
    .unwrap();
    let got = s.history(2).await.unwrap();
    assert_eq!(got.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), vec!["conflict", "pull"]);
    assert!(got[0].id > got[1].id);
    assert_eq!(s.history(10).await.unwrap().len(), 3);
}

fn synced(table: &str, local_id: &str, mirror: Value) -> LocalRow {
    LocalRow {
        table: table.into(),
        local_id: local_id.into(),
        server_id: None,
        mirror: Some(obj(mirror)),
        overlay: None,
        status: RowStatus::Synced,
        last_pushed: None,
    }
}

async fn ids_by<S: Store>(s: &S, table: &str, column: &str, value: Value) -> Vec<String> {
    s.rows_by(table, column, &value).await.unwrap().into_iter().map(|r| r.local_id).collect()
}

/// An index finds rows by their visible value: stored rows are indexed when the index
/// is made, local edits and deletes move rows in it, and an unindexed column is refused.
pub async fn indexes_follow_visible_values<S: Store>(s: &S) {
    let mut a = synced("messages", "a", json!({"conversation_id": 1, "body": "x"}));
    let b = synced("messages", "b", json!({"conversation_id": 1}));
    let other = synced("memories", "a", json!({"conversation_id": 1}));
    s.apply(WriteBatch { put_rows: vec![a.clone(), b.clone(), other], ..Default::default() }).await.unwrap();
    assert!(matches!(s.rows_by("messages", "conversation_id", &json!(1)).await, Err(StoreError::NotFound(_))));
    s.ensure_index("messages", &IndexDef::column("conversation_id")).await.unwrap();
    s.ensure_index("messages", &IndexDef::column("conversation_id")).await.unwrap();
    assert_eq!(ids_by(s, "messages", "conversation_id", json!(1)).await, ["a", "b"]);
    assert!(ids_by(s, "messages", "conversation_id", json!(2)).await.is_empty());
    assert!(matches!(s.rows_by("messages", "body", &json!("x")).await, Err(StoreError::NotFound(_))));

    // A local edit moves the row; the mirror underneath no longer counts.
    a.overlay = Some(Overlay::Fields { fields: obj(json!({"conversation_id": 2})) });
    let c = row("messages", "c", None); // no conversation_id at all: null
    s.apply(WriteBatch { put_rows: vec![a.clone(), c], ..Default::default() }).await.unwrap();
    assert_eq!(ids_by(s, "messages", "conversation_id", json!(1)).await, ["b"]);
    assert_eq!(ids_by(s, "messages", "conversation_id", json!(2)).await, ["a"]);
    assert_eq!(ids_by(s, "messages", "conversation_id", Value::Null).await, ["c"]);
    assert_eq!(s.rows_by("messages", "conversation_id", &json!(2)).await.unwrap(), vec![a.clone()]);

    // Deleted locally: in no index entry; deleted from the store: gone.
    a.overlay = Some(Overlay::Deleted);
    s.apply(WriteBatch { put_rows: vec![a], delete_rows: vec![("messages".into(), "b".into())], ..Default::default() })
        .await
        .unwrap();
    assert!(ids_by(s, "messages", "conversation_id", json!(1)).await.is_empty());
    assert!(ids_by(s, "messages", "conversation_id", json!(2)).await.is_empty());
    // A batch that fails changes no index either.
    let d = synced("messages", "d", json!({"conversation_id": 1}));
    let bad = WriteBatch {
        put_rows: vec![d],
        put_outbox: vec![crate::local::outbox::OutboxEntry::new(999, new_entry("t", "x"))],
        ..Default::default()
    };
    assert!(s.apply(bad).await.is_err());
    assert!(ids_by(s, "messages", "conversation_id", json!(1)).await.is_empty());
}

/// An ordered index reads rows by key range in order, either way, a page at a time:
/// an equality on its first column and the order of its second (timestamps as
/// instants, nulls last), local edits moving rows, deleted rows in no entry.
pub async fn ordered_indexes_read_in_order<S: Store>(s: &S) {
    let by_time = IndexDef::new(vec![
        IndexColumn { name: "conversation_id".into(), instant: false },
        IndexColumn { name: "at".into(), instant: true },
    ])
    .unwrap();
    let m = |l: &str, c: &str, at: Value| synced("messages", l, json!({"conversation_id": c, "at": at}));
    let mut rows = vec![
        m("a", "c1", json!("2026-01-02T00:00:00+00:00")),
        m("b", "c1", json!("2026-01-01T23:00:00-02:00")), // 01:00 on the 2nd: after a
        m("c", "c1", Value::Null),
        m("d", "c1", json!("2025-12-31")),
        m("e", "c2", json!("2020-01-01")),
        m("f", "c1", json!("2026-01-02T00:00:00Z")), // the same instant as a
    ];
    s.apply(WriteBatch { put_rows: rows.clone(), ..Default::default() }).await.unwrap();
    let range = KeyRange::prefix(&by_time.prefix(&[&json!("c1")]));
    assert!(matches!(s.rows_in_index("messages", &by_time, &range, false, None).await, Err(StoreError::NotFound(_))));
    s.ensure_index("messages", &by_time).await.unwrap();
    s.ensure_index("messages", &IndexDef::column("conversation_id")).await.unwrap();
    assert_eq!(s.indexes("messages").await.unwrap().len(), 2);
    let ids = |rows: Vec<LocalRow>| rows.into_iter().map(|r| r.local_id).collect::<Vec<_>>();
    let read = |range: KeyRange, desc: bool, limit: Option<usize>| {
        let by_time = by_time.clone();
        async move { ids(s.rows_in_index("messages", &by_time, &range, desc, limit).await.unwrap()) }
    };
    assert_eq!(read(range.clone(), false, None).await, ["d", "a", "f", "b", "c"], "by instant, ties by local id, nulls last");
    assert_eq!(read(range.clone(), true, None).await, ["c", "b", "f", "a", "d"], "backwards: nulls first");
    assert_eq!(read(range.clone(), false, Some(2)).await, ["d", "a"]);
    assert_eq!(read(range.clone(), false, Some(0)).await, Vec::<String>::new(), "a limit of 0 reads nothing");
    // Backwards pages, cut before, inside and after ties (a and f share a key).
    for (n, want) in [(0, &[][..]), (1, &["c"][..]), (3, &["c", "b", "f"]), (4, &["c", "b", "f", "a"]), (5, &["c", "b", "f", "a", "d"]), (9, &["c", "b", "f", "a", "d"])] {
        assert_eq!(read(range.clone(), true, Some(n)).await, want, "the last {n} backwards");
    }
    let a_key = by_time.key(&rows[0]).unwrap();
    assert_eq!(read(range.past(&a_key, false), false, Some(2)).await, ["b", "c"], "past a key skips its ties (f shares a's)");
    assert_eq!(read(KeyRange::exactly(&a_key), false, None).await, ["a", "f"]);
    assert_eq!(read(range.past(&a_key, true), true, None).await, ["d"]);
    assert_eq!(read(range.past(&by_time.key(&rows[1]).unwrap(), true), true, Some(2)).await, ["f", "a"], "backwards past b");
    assert_eq!(read(KeyRange::all(), false, None).await, ["d", "a", "f", "b", "c", "e"], "c1's rows, then c2's");

    let c2 = KeyRange::prefix(&by_time.prefix(&[&json!("c2")]));
    let none = KeyRange::prefix(&by_time.prefix(&[&json!("c9")]));
    assert_eq!(s.count_in_index("messages", &by_time, &[range.clone(), c2, none, KeyRange::all()]).await.unwrap(), [5, 1, 0, 6]);

    // A pending edit moves the row; a local delete takes it out.
    rows[3].overlay = Some(Overlay::Fields { fields: obj(json!({"at": "2027-01-01T00:00:00Z"})) });
    rows[1].overlay = Some(Overlay::Deleted);
    s.apply(WriteBatch { put_rows: vec![rows[3].clone(), rows[1].clone()], ..Default::default() }).await.unwrap();
    assert_eq!(read(range.clone(), false, None).await, ["a", "f", "d", "c"]);
    s.apply(WriteBatch { delete_rows: vec![("messages".into(), "a".into())], ..Default::default() }).await.unwrap();
    assert_eq!(read(range.clone(), false, None).await, ["f", "d", "c"]);
    assert_eq!(s.count_in_index("messages", &by_time, &[range]).await.unwrap(), [3], "counts follow too");
}

/// Run every case of the store suite as a `#[test]` against stores made by `$make`
/// (an expression evaluated once per case, giving a fresh empty store). With
/// `guarded:`, `$make` gives `(guard, store)` and the guard (a temporary directory, say)
/// lives until the case ends. With `browser:`, each case is an async
/// `wasm_bindgen_test` (for stores whose futures really wait, like IndexedDB).
#[macro_export]
macro_rules! store_suite {
    (guarded: $make:expr) => {
        $crate::store_suite!(@each [@cases] $make);
    };
    ($make:expr) => {
        $crate::store_suite!(guarded: ((), $make));
    };
    (browser: $make:expr) => {
        $crate::store_suite!(@each [@browser] $make);
    };
    // The one list of cases, handed to the arm that makes the tests.
    (@each [$($arm:tt)*] $make:expr) => {
        $crate::store_suite!($($arm)* $make;
            empty_store_reads_nothing,
            a_row_and_its_outbox_entry_land_together,
            many_rows_are_read_at_once,
            the_outbox_summary_matches_the_outbox,
            the_outbox_keeps_order,
            a_failed_batch_applies_nothing,
            new_rows_are_stored_and_a_taken_key_fails_the_batch,
            queued_batches_land_in_order,
            rows_are_found_by_server_id,
            a_filled_table_is_found_by_server_id_during_and_after,
            rows_are_replaced_and_deleted,
            json_round_trips_exactly,
            metadata_is_set_replaced_and_deleted,
            history_is_newest_first,
            indexes_follow_visible_values,
            ordered_indexes_read_in_order,
            file_bytes_are_kept_and_read_in_parts,
            a_failed_batch_keeps_no_file_bytes
        );
    };
    (@browser $make:expr; $($case:ident),*) => {
        $(
            #[wasm_bindgen_test::wasm_bindgen_test]
            async fn $case() {
                let store = $make;
                $crate::store::suite::$case(&store).await;
            }
        )*
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let (_guard, store) = $make;
                $crate::store::suite::block_on($crate::store::suite::$case(&store));
            }
        )*
    };
}

/// Run a future to completion on this thread (the suite's stores need no runtime).
#[cfg(feature = "store-suite")]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}
