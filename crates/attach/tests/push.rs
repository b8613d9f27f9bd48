//! SQLite to the tenant schema on supasync-dev's PostgreSQL (issue 24 §2, §3 one way):
//! the app's tables arrive with their types, then only what changed, deletes included;
//! tenants never cross; a push whose end was lost is sent again without doubling; the
//! app's migrations reach the server; bad input is refused clearly, changing nothing.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{json, Value};
use supasync_attach::capture;
use supasync_attach::push::push;
use supasync_attach::tenant::Tenant;
use supasync_attach::AttachError;
use supasync_devserver::DevServer;
use tokio_postgres::Client;

const APP: &str = r#"
CREATE TABLE chat (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, title TEXT, chat JSON, archived BOOLEAN DEFAULT 0,
                   created_at BIGINT, updated_at BIGINT, score REAL, avatar BLOB, meta);
CREATE TABLE chat_tag (chat_id TEXT, tag TEXT, PRIMARY KEY (tag, chat_id));
CREATE TABLE event_log (what TEXT, at DATETIME);
"#;

async fn server() -> (DevServer, Client) {
    common::server().await
}

async fn connect(s: &DevServer) -> Client {
    common::connect(s).await
}

fn app_db(dir: &Path, name: &str) -> PathBuf {
    common::app_db(dir, name, APP)
}

fn open(path: &Path) -> Connection {
    common::open(path, Duration::from_millis(200))
}

/// A table of the tenant schema as sorted JSON rows.
async fn server_rows(pg: &Client, schema: &str, table: &str) -> Vec<Value> {
    let sql = format!("SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') FROM \"{schema}\".\"{table}\" t");
    match pg.query_one(&sql, &[]).await.unwrap().get::<_, Value>(0) {
        Value::Array(a) => a,
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn the_apps_tables_arrive_in_the_tenant_schema_with_their_types() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let app = Connection::open(&path).unwrap();
    app.execute_batch(
        r#"INSERT INTO chat VALUES ('c1', 'u1', 'Lisbon', '{"messages":[{"role":"user","content":"olá"}]}', 1, 1733300000, 1733300001, 4.5, x'00ff', 7);
           INSERT INTO chat VALUES ('c2', 'u1', NULL, 'not json', 0, 1733300002, 1733300002, NULL, NULL, 'seven');
           INSERT INTO chat_tag VALUES ('c1', 'travel');
           INSERT INTO event_log VALUES ('started', '2026-12-04 08:00:00');"#,
    )
    .unwrap();
    let tenant = Tenant::new("acme", "acme_quantabase_io").unwrap();
    let report = push(&mut open(&path), &mut pg, &tenant).await.unwrap();
    assert_eq!(report.upserted, 4);
    assert_eq!(report.copied_whole, vec!["chat", "chat_tag", "event_log"]);
    let types: Vec<(String, String)> = pg
        .query("SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = 'acme_quantabase_io' AND table_name = 'chat' ORDER BY ordinal_position", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want = [("id", "text"), ("user_id", "text"), ("title", "text"), ("chat", "jsonb"), ("archived", "boolean"), ("created_at", "bigint"), ("updated_at", "bigint"), ("score", "double precision"), ("avatar", "bytea"), ("meta", "jsonb")];
    assert_eq!(types, want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>());
    let chats = server_rows(&pg, "acme_quantabase_io", "chat").await;
    assert_eq!(chats[0]["chat"], json!({"messages": [{"role": "user", "content": "olá"}]}), "JSON text arrives as JSON");
    assert_eq!((chats[0]["archived"].clone(), chats[0]["avatar"].clone(), chats[0]["meta"].clone()), (json!(true), json!("\\x00ff"), json!(7)));
    assert_eq!((chats[1]["chat"].clone(), chats[1]["meta"].clone(), chats[1]["title"].clone()), (json!("not json"), json!("seven"), Value::Null));
    assert_eq!(server_rows(&pg, "acme_quantabase_io", "event_log").await, vec![json!({"_rowid": 1, "what": "started", "at": "2026-12-04 08:00:00"})]);
    // Row level security on every table the sync makes, no policy: the API's roles see
    // nothing until the operator says otherwise.
    let open_tables: Vec<String> = pg
        .query("SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('acme_quantabase_io', 'sync_metadata') AND c.relkind = 'r' AND NOT c.relrowsecurity", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(open_tables.is_empty(), "{open_tables:?}");
    // The seed's metadata: the tenant's config and a line of history.
    let cfg = pg.query_one("SELECT tenant_schema, last_sync_at IS NOT NULL FROM sync_metadata.client_config WHERE deployment = 'acme'", &[]).await.unwrap();
    assert_eq!((cfg.get::<_, String>(0), cfg.get::<_, bool>(1)), ("acme_quantabase_io".into(), true));
    let log = pg.query_one("SELECT rows_upserted, error FROM sync_metadata.owui_sync_log WHERE deployment = 'acme'", &[]).await.unwrap();
    assert_eq!((log.get::<_, i64>(0), log.get::<_, Option<String>>(1)), (4, None));
}

#[tokio::test]
async fn then_only_what_changed_goes_deletes_and_key_changes_included() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let app = Connection::open(&path).unwrap();
    for i in 0..50 {
        app.execute("INSERT INTO chat (id, user_id, title) VALUES (?1, 'u1', 'x')", [format!("c{i:02}")]).unwrap();
    }
    let tenant = Tenant::new("inc", "inc_tenant").unwrap();
    let mut db = open(&path);
    push(&mut db, &mut pg, &tenant).await.unwrap();
    app.execute_batch(
        "UPDATE chat SET title = 'edited' WHERE id = 'c01';
         UPDATE chat SET title = 'twice' WHERE id = 'c01';
         DELETE FROM chat WHERE id = 'c02';
         UPDATE chat SET id = 'c03-renamed' WHERE id = 'c03';
         INSERT INTO chat (id, user_id) VALUES ('new', 'u1');
         INSERT INTO event_log VALUES ('x', NULL); DELETE FROM event_log;",
    )
    .unwrap();
    let report = push(&mut db, &mut pg, &tenant).await.unwrap();
    assert!(report.copied_whole.is_empty());
    assert_eq!((report.tables["chat"].upserted, report.tables["chat"].deleted), (3, 2), "{report:?}");
    let on_server: Vec<String> = server_rows(&pg, "inc_tenant", "chat").await.iter().map(|r| format!("{}={}", r["id"].as_str().unwrap(), r["title"].as_str().unwrap_or("-"))).collect();
    let mut want: Vec<String> = (0..50).filter(|i| *i > 3).map(|i| format!("c{i:02}=x")).collect();
    want.extend(["c00=x".to_string(), "c01=twice".into(), "c03-renamed=x".into(), "new=-".into()]);
    want.sort();
    let mut got = on_server.clone();
    got.sort();
    assert_eq!(got, want);
    assert!(server_rows(&pg, "inc_tenant", "event_log").await.is_empty());
    assert!(capture::pending(&db).unwrap().is_empty(), "the log is forgotten once sent");
}

#[tokio::test]
async fn three_tenants_sync_at_once_and_no_row_crosses() {
    let (s, _pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut runs = vec![];
    for name in ["imc", "acme", "chat"] {
        let path = app_db(dir.path(), &format!("{name}.db"));
        let app = Connection::open(&path).unwrap();
        for i in 0..20 {
            app.execute("INSERT INTO chat (id, user_id, title) VALUES (?1, ?2, ?2)", [format!("{name}-{i}"), name.to_string()]).unwrap();
        }
        let mut pg = connect(&s).await;
        runs.push(tokio::spawn(async move {
            let tenant = Tenant::new(name, &format!("{name}_quantabase_io")).unwrap();
            let mut db = open(&path);
            push(&mut db, &mut pg, &tenant).await.map(|r| r.upserted)
        }));
    }
    for r in runs {
        assert_eq!(r.await.unwrap().unwrap(), 20);
    }
    let pg = connect(&s).await;
    for name in ["imc", "acme", "chat"] {
        let rows = server_rows(&pg, &format!("{name}_quantabase_io"), "chat").await;
        assert_eq!(rows.len(), 20);
        assert!(rows.iter().all(|r| r["title"] == json!(name)), "only {name}'s rows in its schema");
    }
}

#[tokio::test]
async fn a_push_whose_end_was_lost_is_sent_again_and_doubles_nothing() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let tenant = Tenant::new("again", "again_tenant").unwrap();
    let mut db = open(&path);
    push(&mut db, &mut pg, &tenant).await.unwrap();
    let app = Connection::open(&path).unwrap();
    app.execute_batch("INSERT INTO chat (id, user_id, title) VALUES ('a', 'u1', 'one'); INSERT INTO chat_tag VALUES ('a', 't');").unwrap();
    // The app holds the write lock as the push ends: the server has the rows, but the
    // log cannot be forgotten yet.
    app.execute_batch("BEGIN IMMEDIATE; INSERT INTO chat (id, user_id) VALUES ('b', 'u1');").unwrap();
    match push(&mut db, &mut pg, &tenant).await {
        Err(AttachError::Busy { .. }) => {}
        other => panic!("expected Busy, got {other:?}"),
    }
    assert_eq!(server_rows(&pg, "again_tenant", "chat").await.len(), 1, "sent, and committed on the server");
    let failed = pg.query_one("SELECT error FROM sync_metadata.owui_sync_log WHERE deployment = 'again' ORDER BY id DESC LIMIT 1", &[]).await.unwrap();
    assert!(failed.get::<_, Option<String>>(0).unwrap_or_default().contains("locked"), "the failure is in the history");
    app.execute_batch("COMMIT;").unwrap();
    let report = push(&mut db, &mut pg, &tenant).await.unwrap();
    assert_eq!(report.tables["chat"].upserted, 2, "a sent again, b for the first time");
    assert_eq!(server_rows(&pg, "again_tenant", "chat").await.len(), 2);
    assert_eq!(server_rows(&pg, "again_tenant", "chat_tag").await, vec![json!({"chat_id": "a", "tag": "t"})]);
}

#[tokio::test]
async fn the_apps_migrations_reach_the_server() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let tenant = Tenant::new("mig", "mig_tenant").unwrap();
    let mut db = open(&path);
    push(&mut db, &mut pg, &tenant).await.unwrap();
    let app = Connection::open(&path).unwrap();
    app.execute_batch(
        "ALTER TABLE chat ADD COLUMN pinned BOOLEAN; INSERT INTO chat (id, user_id, pinned) VALUES ('p', 'u1', 1);
         CREATE TABLE folder (id TEXT PRIMARY KEY, name TEXT); INSERT INTO folder VALUES ('f', 'Trips');",
    )
    .unwrap();
    let report = push(&mut db, &mut pg, &tenant).await.unwrap();
    assert_eq!(report.copied_whole, vec!["folder", "chat"], "a new table, and one with a new column (its rows hold the column's default in the file)");
    assert_eq!(server_rows(&pg, "mig_tenant", "folder").await, vec![json!({"id": "f", "name": "Trips"})]);
    let chat = server_rows(&pg, "mig_tenant", "chat").await;
    assert_eq!(chat[0]["pinned"], json!(true));
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_nothing_changes() {
    for bad in ["Acme", "1acme", "acme-io", "public", "sync_metadata", "pg_toast", "", "a\"; DROP SCHEMA public; --"] {
        match Tenant::new("x", bad) {
            Err(e @ AttachError::Invalid(_)) => assert!(e.to_string().contains("tenant schema"), "{e}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let mut db = open(&path);
    push(&mut db, &mut pg, &Tenant::new("bad", "bad_tenant").unwrap()).await.unwrap();
    // The same deployment pointed at another schema: refused.
    match push(&mut db, &mut pg, &Tenant::new("bad", "other_tenant").unwrap()).await {
        Err(e @ AttachError::Invalid(_)) => assert!(e.to_string().contains("syncs into schema \"bad_tenant\""), "{e}"),
        other => panic!("{other:?}"),
    }
    // A value the server's column cannot take: that row is set aside in the history,
    // named, and the rest goes on (a deployment never stalls on one row).
    let app = Connection::open(&path).unwrap();
    app.execute_batch("INSERT INTO chat (id, user_id) VALUES ('ok', 'u1'); INSERT INTO chat (id, user_id, created_at) VALUES ('bad', 'u1', 'yesterday');").unwrap();
    let report = push(&mut db, &mut pg, &Tenant::new("bad", "bad_tenant").unwrap()).await.unwrap();
    assert_eq!(report.upserted, 1);
    let ids: Vec<Value> = server_rows(&pg, "bad_tenant", "chat").await.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, vec![json!("ok")]);
    let aside = pg.query_one("SELECT key, reason, from_side, why FROM sync_metadata.row_history WHERE deployment = 'bad'", &[]).await.unwrap();
    assert_eq!((aside.get::<_, Value>(0), aside.get::<_, String>(1), aside.get::<_, String>(2)), (json!({"id": "bad"}), "set_aside".into(), "sqlite".into()));
    let why: String = aside.get(3);
    assert!(why.contains("created_at") && why.contains("integer"), "{why}");
    assert!(capture::pending(&db).unwrap().is_empty(), "the log moves on");
    // Fixed in the app, the row goes at the next sync.
    app.execute("UPDATE chat SET created_at = 1733300000 WHERE id = 'bad'", []).unwrap();
    assert_eq!(push(&mut db, &mut pg, &Tenant::new("bad", "bad_tenant").unwrap()).await.unwrap().upserted, 1);
    assert_eq!(server_rows(&pg, "bad_tenant", "chat").await.len(), 2);
}

#[tokio::test]
async fn a_tenant_schema_changed_by_hand_is_refused_clearly_or_made_whole_again() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let tenant = Tenant::new("hand", "hand_tenant").unwrap();
    let app = Connection::open(&path).unwrap();
    app.execute_batch("INSERT INTO chat (id, user_id, created_at) VALUES ('a', 'u1', 1), ('b', 'u1', 2); INSERT INTO chat_tag VALUES ('a', 't');").unwrap();
    let mut db = open(&path);
    push(&mut db, &mut pg, &tenant).await.unwrap();
    // A column retyped by hand: refused, naming it; nothing written, nothing forgotten.
    pg.batch_execute("ALTER TABLE hand_tenant.chat ALTER COLUMN created_at TYPE text").await.unwrap();
    app.execute("UPDATE chat SET title = 'new' WHERE id = 'a'", []).unwrap();
    match push(&mut db, &mut pg, &tenant).await {
        Err(e @ AttachError::Invalid(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("hand_tenant") && msg.contains("created_at") && msg.contains("text") && msg.contains("bigint"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(capture::pending(&db).unwrap().get("chat"), Some(&1));
    let title: Option<String> = pg.query_one("SELECT title FROM hand_tenant.chat WHERE id = 'a'", &[]).await.unwrap().get(0);
    assert_eq!(title, None);
    // Changed back, it goes on.
    pg.batch_execute("ALTER TABLE hand_tenant.chat ALTER COLUMN created_at TYPE bigint USING created_at::bigint").await.unwrap();
    push(&mut db, &mut pg, &tenant).await.unwrap();
    // Another primary key: refused too.
    pg.batch_execute("ALTER TABLE hand_tenant.chat_tag DROP CONSTRAINT chat_tag_pkey, ADD PRIMARY KEY (chat_id)").await.unwrap();
    let e = push(&mut db, &mut pg, &tenant).await.unwrap_err().to_string();
    assert!(e.contains("chat_tag") && e.contains("primary key (chat_id)") && e.contains("(tag, chat_id)"), "{e}");
    // A table dropped by hand: made again, and copied whole from the file.
    pg.batch_execute("DROP TABLE hand_tenant.chat_tag; DROP TABLE hand_tenant.chat").await.unwrap();
    let report = push(&mut db, &mut pg, &tenant).await.unwrap();
    assert_eq!(report.copied_whole, vec!["chat", "chat_tag"]);
    assert_eq!(server_rows(&pg, "hand_tenant", "chat").await.len(), 2);
}

#[tokio::test]
async fn a_vacuum_that_renumbers_a_table_without_a_key_is_copied_whole_again() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let tenant = Tenant::new("vac", "vac_tenant").unwrap();
    let app = Connection::open(&path).unwrap();
    for i in 1..=10 {
        app.execute("INSERT INTO event_log (what) VALUES (?1)", [format!("e{i}")]).unwrap();
    }
    let mut db = open(&path);
    push(&mut db, &mut pg, &tenant).await.unwrap();
    // Deletes the triggers see: no whole copy.
    app.execute("DELETE FROM event_log WHERE what IN ('e2', 'e3', 'e4')", []).unwrap();
    let report = push(&mut db, &mut pg, &tenant).await.unwrap();
    assert!(report.copied_whole.is_empty(), "{report:?}");
    // VACUUM renumbers the rowids (1..7) with no trigger firing; then the app writes.
    app.execute_batch("VACUUM; UPDATE event_log SET at = 'x' WHERE what = 'e10'; INSERT INTO event_log (what) VALUES ('late');").unwrap();
    let report = push(&mut db, &mut pg, &tenant).await.unwrap();
    assert_eq!(report.copied_whole, vec!["event_log"]);
    let file: Vec<Value> = app
        .prepare("SELECT rowid, what, at FROM event_log ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok(json!({"_rowid": r.get::<_, i64>(0)?, "what": r.get::<_, String>(1)?, "at": r.get::<_, Option<String>>(2)?})))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(file.len(), 8);
    assert_eq!(file[1]["what"], json!("e5"), "renumbered: e5 is rowid 2 now");
    let mut server = server_rows(&pg, "vac_tenant", "event_log").await;
    server.sort_by_key(|r| r["_rowid"].as_i64());
    assert_eq!(server, file, "the server holds the file's rows under their new rowids");
    assert!(push(&mut db, &mut pg, &tenant).await.unwrap().copied_whole.is_empty(), "and it settles");
}
