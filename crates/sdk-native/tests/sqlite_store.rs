//! The SQLite store: the shared store suite, plus what only a file can show — data
//! surviving a reopen, the format upgrade, a corrupt or too-new file refused clearly.

use serde_json::{json, Value};
use supasync_core::local_row::{LocalRow, Overlay, RowStatus};
use supasync_core::store::suite::block_on;
use supasync_core::store::{NewOutboxEntry, Store, StoreError, WriteBatch};
use supasync_core::OutboxOp;
use supasync_core::index::IndexDef;
use supasync_native::store::SCHEMA_VERSION;
use supasync_native::SqliteStore;

mod suite {
    supasync_core::store_suite!(supasync_native::SqliteStore::in_memory().expect("open"));
}

mod suite_on_disk {
    supasync_core::store_suite!(guarded: {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = supasync_native::SqliteStore::open(dir.path().join("replica.db")).expect("open");
        (dir, store)
    });
}

fn a_row(local_id: &str) -> LocalRow {
    LocalRow {
        table: "messages".into(),
        local_id: local_id.into(),
        server_id: None,
        mirror: None,
        overlay: Some(Overlay::Fields { fields: json!({"body": "kept"}).as_object().unwrap().clone() }),
        status: RowStatus::Pending,
        last_pushed: None,
    }
}

/// A synced row of `messages` whose server id (and mirror's `id`) is `id`.
fn with_server_id(local_id: &str, id: Value) -> LocalRow {
    LocalRow { server_id: Some(id.clone()), mirror: json!({ "id": id }).as_object().cloned(), overlay: None, status: RowStatus::Synced, ..a_row(local_id) }
}

/// One number a query of the file at `path` answers (a count).
fn count(path: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn batch(local_id: &str) -> WriteBatch {
    WriteBatch {
        put_rows: vec![a_row(local_id)],
        add_outbox: vec![NewOutboxEntry {
            table: "messages".into(),
            local_id: local_id.into(),
            op: OutboxOp::Insert { row: json!({"body": "kept"}).as_object().unwrap().clone() },
            created_at_ms: 1,
        }],
        meta: vec![("cursor:messages".into(), Some(json!({"next_txid": 9})))],
        ..Default::default()
    }
}

#[test]
fn data_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        s.apply(batch("L1")).await.unwrap();
    });
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.get_row("messages", "L1").await.unwrap(), Some(a_row("L1")));
        assert_eq!(s.outbox().await.unwrap().len(), 1);
        assert_eq!(s.meta("cursor:messages").await.unwrap(), Some(json!({"next_txid": 9})));
    });
}

#[test]
fn a_file_made_by_an_older_build_keeps_its_page_size_and_its_rows() {
    // New files get 8 KiB pages; a file made with SQLite's default 4 KiB keeps them
    // (SQLite cannot change a WAL file's page size) and works as before.
    let dir = tempfile::tempdir().unwrap();
    let (new, old) = (dir.path().join("new.db"), dir.path().join("old.db"));
    {
        let c = rusqlite::Connection::open(&old).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch("CREATE TABLE app_note (x)").unwrap();
    }
    block_on(async {
        SqliteStore::open(&new).unwrap().apply(batch("L1")).await.unwrap();
        SqliteStore::open(&old).unwrap().apply(batch("L1")).await.unwrap();
        assert_eq!(SqliteStore::open(&old).unwrap().get_row("messages", "L1").await.unwrap(), Some(a_row("L1")));
    });
    let page_size = |p: &std::path::Path| -> u32 { rusqlite::Connection::open(p).unwrap().pragma_query_value(None, "page_size", |r| r.get(0)).unwrap() };
    assert_eq!(page_size(&new), supasync_native::store::PAGE_SIZE);
    assert_eq!(page_size(&old), 4096);
}

#[test]
fn indexes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        s.ensure_index("messages", &IndexDef::column("body")).await.unwrap();
        s.apply(batch("L1")).await.unwrap();
    });
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.rows_by("messages", "body", &json!("kept")).await.unwrap(), vec![a_row("L1")]);
        // Writes after the reopen keep the index current without declaring it again.
        s.apply(WriteBatch { delete_rows: vec![("messages".into(), "L1".into())], ..Default::default() })
            .await
            .unwrap();
        assert!(s.rows_by("messages", "body", &json!("kept")).await.unwrap().is_empty());
    });
}

#[test]
fn server_ids_set_aside_wait_in_parts_and_are_all_found_after_the_fill() {
    // A restore's server ids wait in parts by their first characters (a lookup reads
    // one; the fill's end writes them part by part): every one is found before and after.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let sid = |i: u32| format!("{:08x}-0000-4000-8000-{:012x}", i.wrapping_mul(2654435761), i);
    let with_id = |i: u32| with_server_id(&format!("m{i:04}"), json!(sid(i)));
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        s.filling("messages", 1_000_000).await.unwrap();
        s.apply(WriteBatch { new_rows: (0..300).map(|i| with_id(i).into()).collect(), ..Default::default() }).await.unwrap();
        assert_eq!(count(&path, "SELECT count(DISTINCT part) FROM fill_ids"), 16, "one part per first hex digit");
        for i in [0, 7, 299] {
            assert_eq!(s.find_by_server_id("messages", &json!(sid(i))).await.unwrap().map(|r| r.local_id), Some(format!("m{i:04}")), "during the fill");
        }
        s.filled("messages").await.unwrap();
        for i in 0..300 {
            assert_eq!(s.find_by_server_id("messages", &json!(sid(i))).await.unwrap().map(|r| r.local_id), Some(format!("m{i:04}")), "after the fill");
        }
    });
    assert_eq!(count(&path, "SELECT count(*) FROM fill_ids"), 0);
}

#[test]
fn a_small_table_filled_keeps_its_server_ids_in_its_rows_until_the_end_even_through_a_crash() {
    // Below `FILL_IN_PARTS_FROM` rows nothing is set aside: the rows' own server ids
    // answer lookups during the fill (and after a reopen), and the end writes the
    // entries from them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let with_id = |l: &str, id: i64| with_server_id(l, json!(id));
    let entries = || count(&path, "SELECT count(*) FROM server_ids WHERE tbl = 'messages'");
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        s.filling("messages", supasync_native::store::FILL_IN_PARTS_FROM - 1).await.unwrap();
        s.apply(WriteBatch { new_rows: vec![with_id("m2", 20).into(), with_id("m1", 10).into()], ..Default::default() }).await.unwrap();
        assert_eq!(s.find_by_server_id("messages", &json!(20)).await.unwrap().map(|r| r.local_id), Some("m2".into()), "found during the fill");
        // The process dies here: no `filled`.
    });
    assert_eq!(entries(), 0, "no entry written during the fill");
    assert_eq!(count(&path, "SELECT count(*) FROM fill_ids"), 1, "only the marker naming the fill");
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.find_by_server_id("messages", &json!(10)).await.unwrap().map(|r| r.local_id), Some("m1".into()), "found after the reopen");
        // The walk goes on, asked to fill again (as a resumed restore is): the same way.
        s.filling("messages", 2 * supasync_native::store::FILL_IN_PARTS_FROM).await.unwrap();
        s.apply(WriteBatch { new_rows: vec![with_id("m3", 30).into()], ..Default::default() }).await.unwrap();
        assert_eq!(count(&path, "SELECT count(*) FROM fill_ids"), 1, "still nothing set aside");
        // An edit and a delete during the fill.
        s.apply(WriteBatch { put_rows: vec![with_id("m3", 31)], delete_rows: vec![("messages".into(), "m2".into())], ..Default::default() }).await.unwrap();
        s.filled("messages").await.unwrap();
        for (id, l) in [(10, Some("m1")), (20, None), (30, None), (31, Some("m3"))] {
            assert_eq!(s.find_by_server_id("messages", &json!(id)).await.unwrap().map(|r| r.local_id), l.map(String::from), "server id {id}");
        }
    });
    assert_eq!(count(&path, "SELECT count(*) FROM fill_ids"), 0, "the marker is gone");
    assert_eq!(entries(), 2, "one entry per row, from the rows");
}

#[test]
fn a_fill_cut_short_is_still_found_by_server_id_and_finished_by_the_next_walk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let with_id = |l: &str, id: i64| with_server_id(l, json!(id));
    let aside = || count(&path, "SELECT count(*) FROM fill_ids");
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        s.filling("messages", 1_000_000).await.unwrap();
        s.apply(WriteBatch { new_rows: vec![with_id("m2", 20).into(), with_id("m1", 10).into()], ..Default::default() }).await.unwrap();
        // The process dies here: no `filled`.
    });
    assert_eq!(aside(), 2, "the page's server ids wait aside");
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.find_by_server_id("messages", &json!(10)).await.unwrap().map(|r| r.local_id), Some("m1".into()), "found after the reopen");
        // The restore goes on (its next page is still set aside), then its walk ends.
        s.apply(WriteBatch { new_rows: vec![with_id("m3", 30).into()], ..Default::default() }).await.unwrap();
        s.filled("messages").await.unwrap();
        for (id, l) in [(10, "m1"), (20, "m2"), (30, "m3")] {
            assert_eq!(s.find_by_server_id("messages", &json!(id)).await.unwrap().map(|r| r.local_id), Some(l.into()));
        }
    });
    assert_eq!(aside(), 0, "nothing is left aside");
    assert_eq!(count(&path, "SELECT count(*) FROM server_ids WHERE tbl = 'messages'"), 3);
}

#[test]
fn per_column_indexes_of_format_4_are_dropped_and_built_again_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    block_on(async {
        let old = SqliteStore::open_at_version(&path, 4).unwrap();
        old.apply(batch("L1")).await.unwrap();
    });
    // What a format-4 build kept for a declared `body` index: JSON text per column.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "INSERT INTO indexed_columns (tbl, col) VALUES ('messages', 'body');
         INSERT INTO row_index (tbl, col, val, local_id) VALUES ('messages', 'body', '\"kept\"', 'L1');",
    )
    .unwrap();
    drop(raw);
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        assert!(s.indexes("messages").await.unwrap().is_empty(), "the old index is gone");
        assert!(s.rows_by("messages", "body", &json!("kept")).await.is_err(), "and not read");
        s.ensure_index("messages", &IndexDef::column("body")).await.unwrap();
        assert_eq!(s.rows_by("messages", "body", &json!("kept")).await.unwrap(), vec![a_row("L1")], "built again from the rows");
    });
    let left: i64 = rusqlite::Connection::open(&path).unwrap().query_row("SELECT count(*) FROM row_index WHERE col = 'body'", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0, "no entry of the old kind is left");
}

#[test]
fn rows_of_format_6_are_found_by_server_id_after_the_upgrade() {
    // Format 7 moved lookups by server id from an index over `rows` to `server_ids`:
    // the rows a device held before keep being found, and a delete still forgets them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let with_id = |l: &str, id: &str| with_server_id(l, json!(id));
    block_on(async {
        let old = SqliteStore::open_at_version(&path, 6).unwrap();
        old.apply(WriteBatch { put_rows: vec![with_id("L1", "s-1"), with_id("L2", "s-2"), a_row("L3")], ..Default::default() }).await.unwrap();
    });
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        let find = |id: &'static str| { let s = &s; async move { s.find_by_server_id("messages", &json!(id)).await.unwrap().map(|r| r.local_id) } };
        assert_eq!((find("s-1").await, find("s-2").await), (Some("L1".into()), Some("L2".into())));
        s.apply(WriteBatch { delete_rows: vec![("messages".into(), "L1".into())], ..Default::default() }).await.unwrap();
        assert_eq!(find("s-1").await, None, "deleted after the upgrade");
        assert_eq!(s.get_row("messages", "L3").await.unwrap(), Some(a_row("L3")), "rows without a server id kept");
    });
}

#[test]
fn an_old_format_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    block_on(async {
        let old = SqliteStore::open_at_version(&path, 1).unwrap();
        old.apply(WriteBatch { history: vec![], ..batch("L1") }).await.unwrap();
    });
    let v: u32 = rusqlite::Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v, 1);
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.get_row("messages", "L1").await.unwrap(), Some(a_row("L1")), "data kept");
        assert_eq!(s.last_outbox_entry("messages", "L1").await.unwrap().map(|e| e.local_id), Some("L1".into()));
        s.apply(WriteBatch {
            history: vec![supasync_core::store::HistoryEntry {
                id: 0,
                at_ms: 1,
                kind: "push".into(),
                table: None,
                rows: 1,
                duration_ms: 1,
                error: None,
                detail: json!({}),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(s.history(5).await.unwrap().len(), 1, "the new table works");
        s.ensure_index("messages", &IndexDef::column("body")).await.unwrap();
        let found = s.rows_by("messages", "body", &json!("kept")).await.unwrap();
        assert_eq!(found, vec![a_row("L1")], "rows from before the upgrade are indexed");
    });
    let v: u32 = rusqlite::Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}

#[test]
fn rows_written_whole_by_format_3_read_back_after_the_upgrade() {
    // Format 3 stored the whole row as its document; 4 leaves the key columns out.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let row = LocalRow {
        server_id: Some(json!("8a1e")),
        mirror: json!({"id": "8a1e", "body": "from 3"}).as_object().cloned(),
        overlay: None,
        status: RowStatus::Synced,
        ..a_row("L3")
    };
    drop(SqliteStore::open_at_version(&path, 3).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO rows (tbl, local_id, server_id, data) VALUES ('messages', 'L3', '\"8a1e\"', ?1)",
            [serde_json::to_string(&row).unwrap()],
        )
        .unwrap();
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.get_row("messages", "L3").await.unwrap(), Some(row.clone()));
        assert_eq!(s.find_by_server_id("messages", &json!("8a1e")).await.unwrap(), Some(row.clone()));
        let mut changed = row.clone();
        changed.overlay = Some(Overlay::Fields { fields: json!({"body": "edited"}).as_object().unwrap().clone() });
        changed.status = RowStatus::Pending;
        s.apply(WriteBatch { put_rows: vec![changed.clone()], ..Default::default() }).await.unwrap();
        assert_eq!(s.scan("messages").await.unwrap(), vec![changed]);
    });
    let v: u32 = rusqlite::Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}

#[test]
fn a_corrupt_file_is_refused_clearly_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let garbage = b"this is not a SQLite database, just some bytes that happen to be here.".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteStore::open(&path).err().expect("must fail");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "the file is not overwritten");
}

#[test]
fn a_file_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let err = SqliteStore::open(&path).err().expect("must fail");
    assert_eq!(err, StoreError::TooNew { found: 99, supported: SCHEMA_VERSION });
}

#[test]
fn a_garbled_row_document_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    block_on(async {
        SqliteStore::open(&path).unwrap().apply(batch("L1")).await.unwrap();
    });
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE rows SET data = '{not json' WHERE local_id = 'L1'", [])
        .unwrap();
    block_on(async {
        let s = SqliteStore::open(&path).unwrap();
        assert!(matches!(s.get_row("messages", "L1").await, Err(StoreError::Corrupt(_))));
        assert_eq!(s.outbox().await.unwrap().len(), 1, "the rest is still readable");
    });
}
