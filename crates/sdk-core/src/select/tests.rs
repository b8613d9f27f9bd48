//! The select layer on the in-memory store: what the differential test against
//! PostgREST cannot show (rows the server has not confirmed, a rollback) and the
//! refusals that depend on the schema alone.

use serde_json::{json, Value};

use crate::local::local_row::{LocalRow, Overlay, Row, RowStatus};
use crate::local::schema::{Schema, TableDecl};
use crate::local::store::{MemoryStore, Store, WriteBatch};
use crate::select::{select, Cardinality, QueryError, SelectOptions, SelectRequest};

fn obj(v: Value) -> Row {
    v.as_object().cloned().unwrap_or_default()
}

fn synced(table: &str, key: &str, row: Value) -> LocalRow {
    LocalRow { table: table.into(), local_id: key.into(), server_id: None, mirror: Some(obj(row)), overlay: None, status: RowStatus::Synced, last_pushed: None }
}

fn pending(table: &str, key: &str, row: Value) -> LocalRow {
    LocalRow {
        table: table.into(),
        local_id: key.into(),
        server_id: None,
        mirror: None,
        overlay: Some(Overlay::Fields { fields: obj(row) }),
        status: RowStatus::Pending,
        last_pushed: None,
    }
}

fn schema() -> Schema {
    Schema::new(vec![
        TableDecl::new("conversations").column("title", "text").column("created_at", "timestamptz"),
        TableDecl::new("messages").references("conversation_id", "conversations").index("conversation_id").column("conversation_id", "text").column("content", "text"),
        TableDecl::new("links").references("from_id", "conversations").references("to_id", "conversations"),
    ])
    .expect("schema")
}

async fn store_for(schema: &Schema, rows: Vec<LocalRow>) -> MemoryStore {
    let s = MemoryStore::new();
    for t in schema.tables() {
        for i in t.index_defs() {
            s.ensure_index(&t.name, &i).await.expect("index");
        }
    }
    s.apply(WriteBatch { put_rows: rows, ..Default::default() }).await.expect("rows");
    s
}

async fn store(rows: Vec<LocalRow>) -> MemoryStore {
    store_for(&schema(), rows).await
}

async fn ask_in(schema: &Schema, s: &MemoryStore, url: &str, count: bool) -> Result<Value, QueryError> {
    let req = SelectRequest::parse(url).map_err(QueryError::Invalid)?.with_options(SelectOptions { count, cardinality: Cardinality::Many });
    Ok(select(schema, s, &req).await?.to_json(Cardinality::Many))
}

async fn ask(s: &MemoryStore, url: &str) -> Result<Value, QueryError> {
    ask_in(&schema(), s, url, true).await
}

fn code(r: Result<Value, QueryError>) -> String {
    match r {
        Err(QueryError::Invalid(e)) => e.code,
        other => format!("not refused: {other:?}"),
    }
}

#[test]
fn pending_rows_count_and_embed_and_leave_when_rolled_back() {
    futures_executor::block_on(async {
        let s = store(vec![
            synced("conversations", "c1", json!({"title": "Lisbon", "created_at": "2024-05-01T10:00:00+00:00"})),
            synced("messages", "m1", json!({"conversation_id": "c1", "content": "Flights"})),
            pending("messages", "m2", json!({"conversation_id": "c1", "content": "Hotel"})),
        ])
        .await;
        let a = ask(&s, "conversations?select=title,messages(count),messages_x:messages(content)&messages_x.order=content").await.expect("answer");
        assert_eq!(a["data"], json!([{"title": "Lisbon", "messages": [{"count": 2}], "messages_x": [{"content": "Flights"}, {"content": "Hotel"}]}]));
        let m = ask(&s, "messages?select=content,conversations(title)&order=content.desc").await.expect("answer");
        assert_eq!(m["data"][0], json!({"content": "Hotel", "conversations": {"title": "Lisbon"}}));
        assert_eq!(m["sync"][0], json!({"local_id": "m2", "status": {"state": "pending"}}), "the row says it waits");
        // The server refused the insert: rolled back, it leaves every answer.
        s.apply(WriteBatch { delete_rows: vec![("messages".into(), "m2".into())], ..Default::default() }).await.expect("rollback");
        let a = ask(&s, "conversations?select=messages(count)").await.expect("answer");
        assert_eq!(a["data"], json!([{"messages": [{"count": 1}]}]));
    });
}

#[test]
fn nulls_sort_last_ascending_and_first_descending_unless_told() {
    futures_executor::block_on(async {
        let s = store(vec![
            synced("conversations", "a", json!({"title": "b"})),
            synced("conversations", "b", json!({"title": null})),
            synced("conversations", "c", json!({"title": "a"})),
        ])
        .await;
        let titles = |v: Value| v["data"].as_array().map(|a| a.iter().map(|r| r["title"].clone()).collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(titles(ask(&s, "conversations?select=title&order=title").await.expect("asc")), vec![json!("a"), json!("b"), Value::Null]);
        assert_eq!(titles(ask(&s, "conversations?select=title&order=title.desc").await.expect("desc")), vec![Value::Null, json!("b"), json!("a")]);
        assert_eq!(titles(ask(&s, "conversations?select=title&order=title.nullsfirst").await.expect("nullsfirst")), vec![Value::Null, json!("a"), json!("b")]);
        // A comparison with NULL is unknown: `neq` leaves the null row out too.
        assert_eq!(ask(&s, "conversations?select=title&title=neq.a").await.expect("neq")["count"], json!(1));
        assert_eq!(ask(&s, "conversations?select=count()&title=is.null").await.expect("is null")["data"], json!([{"count": 1}]));
    });
}

#[test]
fn refusals_follow_the_schema_as_postgrest_does() {
    futures_executor::block_on(async {
        let s = store(vec![]).await;
        assert_eq!(code(ask(&s, "nope?select=*").await), "PGRST205");
        assert_eq!(code(ask(&s, "conversations?select=nope").await), "42703", "declared columns: an unknown one is refused");
        assert_eq!(code(ask(&s, "conversations?select=*,links(*)").await), "PGRST201", "two references: ambiguous");
        assert!(ask(&s, "conversations?select=*,links!from_id(*)").await.is_ok(), "a hint picks one");
        assert_eq!(code(ask(&s, "messages?select=*,links(*)").await), "PGRST200");
        assert_eq!(code(ask(&s, "conversations?select=title&messages.content=eq.x").await), "PGRST108");
        assert_eq!(code(ask(&s, "conversations?created_at=gt.yesterday").await), "22007");
        assert_eq!(code(ask(&s, "conversations?select=title::text").await), "0A000", "casts are said, not ignored");
        assert_eq!(code(ask(&s, "conversations?title=eq").await), "PGRST100");
        // Undeclared columns: any column may be named, and an absent one reads as null.
        let a = ask(&s, "links?select=whatever").await.expect("answer");
        assert_eq!(a["data"], json!([]));
    });
}

/// The chat messages of two conversations: timestamps with ties and nulls, some rows
/// pending (their pending value is the one indexed), one deleted locally.
fn many_messages() -> Vec<LocalRow> {
    let mut seed = 7u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut rows = vec![];
    for i in 0..2500u64 {
        let conversation = if i % 5 == 0 { "c2" } else { "c1" };
        let at = match next(20) {
            0 => Value::Null,
            // Minutes apart, in two spellings of an instant; ties are common.
            _ => {
                let m = next(600);
                if next(2) == 0 { json!(format!("2026-12-03T{:02}:{:02}:00+00:00", m / 60, m % 60)) } else { json!(format!("2026-12-03 {:02}:{:02}:00+01", m / 60 + 1, m % 60)) }
            }
        };
        let row = json!({"conversation_id": conversation, "at": at, "content": format!("m{}", next(40))});
        let key = format!("m{i:04}");
        rows.push(match next(10) {
            0 => pending("messages", &key, row),
            1 => LocalRow { overlay: Some(Overlay::Deleted), ..synced("messages", &key, row) },
            _ => synced("messages", &key, row),
        });
    }
    rows
}

#[test]
fn an_ordered_index_reads_the_page_and_answers_as_a_scan_does() {
    futures_executor::block_on(async {
        let table = |indexed: bool| {
            let t = TableDecl::new("messages").column("conversation_id", "text").column("at", "timestamptz").column("content", "text");
            if indexed { t.index("conversation_id, at").index("at") } else { t }
        };
        let (with, without) = (Schema::new(vec![table(true)]).expect("schema"), Schema::new(vec![table(false)]).expect("schema"));
        let (indexed, plain) = (store_for(&with, many_messages()).await, store_for(&without, many_messages()).await);
        for q in [
            "messages?conversation_id=eq.c1&order=at.desc&limit=50",
            "messages?conversation_id=eq.c1&order=at&limit=50",
            "messages?conversation_id=eq.c1&order=at.desc,content&limit=7&offset=30",
            "messages?conversation_id=eq.c1&order=at.desc.nullslast,content&limit=5",
            "messages?conversation_id=eq.c1&order=at.nullsfirst,content&limit=5",
            "messages?conversation_id=eq.c1&content=like.m1*&order=at,content&limit=20",
            "messages?conversation_id=eq.c1&content=eq.m7&order=at.desc,content.desc&limit=3",
            "messages?order=at.desc,content&limit=10",
            "messages?conversation_id=eq.c2&order=at,content&offset=495&limit=50",
            "messages?conversation_id=eq.c3&order=at&limit=5",
            "messages?conversation_id=eq.c1&order=content,at&limit=5",
            "messages?at=eq.2026-12-03T01:00:00Z&order=content&limit=5",
            "messages?order=conversation_id.desc,content,at&limit=30&offset=480",
            // The nulls (one tie, ordered by local id) fill part of a page, a page
            // past its start, or are filtered.
            "messages?conversation_id=eq.c2&order=at.desc&limit=50",
            "messages?conversation_id=eq.c1&order=at.desc&limit=20&offset=70",
            "messages?conversation_id=eq.c1&content=like.m1*&order=at.desc&limit=10",
            "messages?conversation_id=eq.c1&order=at&offset=1700&limit=50",
        ] {
            let a = ask_in(&with, &indexed, q, false).await.expect(q);
            let b = ask_in(&without, &plain, q, false).await.expect(q);
            assert_eq!(
                (a["data"].clone(), a["sync"].clone()),
                (b["data"].clone(), b["sync"].clone()),
                "{q}: the index changes what is read, never the answer"
            );
        }
        // The page, the row after it, and the rest of a tie the page ends in (a few
        // rows share each minute here; read backwards, the page starts in ~100 nulls,
        // which are one tie and read whole).
        let before = indexed.rows_read();
        let page = ask_in(&with, &indexed, "messages?conversation_id=eq.c1&order=at&limit=50", false).await.expect("page");
        assert_eq!(page["data"].as_array().map(Vec::len), Some(50));
        let read = indexed.rows_read() - before;
        assert!(read <= 60, "the first page of 2,000 rows read {read} rows");
        let before = plain.rows_read();
        ask_in(&without, &plain, "messages?conversation_id=eq.c1&order=at.desc&limit=50", false).await.expect("page");
        assert_eq!(plain.rows_read() - before, 2500, "without the index the table is read");
    });
}

/// A conversation's first page, newest first, when hundreds of its messages were
/// written offline and have no timestamp yet: nulls come first (descending), they tie,
/// and the query orders them by local id alone, so only the page's share of them is
/// read, not every one; the answer is a scan's.
#[test]
fn a_page_that_starts_in_many_rows_without_a_value_reads_only_its_share_of_them() {
    futures_executor::block_on(async {
        let table = |indexed: bool| {
            let t = TableDecl::new("messages").column("conversation_id", "text").column("at", "timestamptz").column("content", "text");
            if indexed { t.index("conversation_id, at") } else { t }
        };
        let rows = || {
            (0..700u32)
                .map(|i| {
                    let key = format!("m{:04}", (i * 7919) % 700);
                    let at = if i < 100 { json!(format!("2026-12-03T10:{:02}:{:02}+00:00", i / 60, i % 60)) } else { Value::Null };
                    let row = json!({"conversation_id": "c1", "at": at, "content": format!("m{}", i % 3)});
                    if i % 2 == 0 { pending("messages", &key, row) } else { synced("messages", &key, row) }
                })
                .collect::<Vec<_>>()
        };
        let (with, without) = (Schema::new(vec![table(true)]).expect("schema"), Schema::new(vec![table(false)]).expect("schema"));
        let (indexed, plain) = (store_for(&with, rows()).await, store_for(&without, rows()).await);
        for (q, most) in [
            ("messages?conversation_id=eq.c1&order=at.desc&limit=50", 101),
            ("messages?conversation_id=eq.c1&order=at.desc&limit=50&offset=100", 301),
            ("messages?conversation_id=eq.c1&content=eq.m1&order=at.desc&limit=5", 700),
        ] {
            let before = indexed.rows_read();
            let a = ask_in(&with, &indexed, q, false).await.expect(q);
            let read = indexed.rows_read() - before;
            let b = ask_in(&without, &plain, q, false).await.expect(q);
            assert_eq!(a["data"], b["data"], "{q}: the answer is a scan's");
            assert!(read <= most, "{q}: read {read} rows of 600 without a timestamp");
        }
    });
}
