//! Both ways against supasync-dev's PostgreSQL (issue 24 §3, §5): an edit made on the
//! server reaches the app's file and is not sent back; deletes both ways; a row written
//! on both sides goes to the later write, the other's values to the history; a row
//! one side cannot take is set aside and the rest goes on; the app writing while a
//! sync runs loses nothing; a restore builds a file that checks out and syncs on.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{json, Value};
use supasync_attach::capture;
use supasync_attach::restore::restore;
use supasync_attach::sync::sync;
use supasync_attach::tenant::Tenant;
use supasync_devserver::DevServer;
use tokio_postgres::Client;

const APP: &str = r#"
CREATE TABLE chat (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, title TEXT, chat JSON, archived BOOLEAN DEFAULT 0,
                   created_at BIGINT, updated_at BIGINT, score REAL, avatar BLOB, meta);
CREATE INDEX chat_user ON chat (user_id);
CREATE TABLE chat_tag (chat_id TEXT, tag TEXT, PRIMARY KEY (tag, chat_id));
CREATE TABLE event_log (what TEXT, at DATETIME);
CREATE TABLE chat_count (n INTEGER);
CREATE TRIGGER chat_counted AFTER INSERT ON chat BEGIN INSERT INTO chat_count VALUES (1); END;
"#;

async fn server() -> (DevServer, Client) {
    common::server().await
}

fn app_db(dir: &Path, name: &str) -> PathBuf {
    common::app_db(dir, name, APP)
}

fn open(path: &Path) -> Connection {
    common::open(path, Duration::from_millis(500))
}

fn title(app: &Connection, id: &str) -> Option<String> {
    app.query_row("SELECT title FROM chat WHERE id = ?1", [id], |r| r.get(0)).ok()
}

async fn server_title(pg: &Client, schema: &str, id: &str) -> Option<String> {
    pg.query_opt(&format!("SELECT title FROM {schema}.chat WHERE id = $1"), &[&id]).await.unwrap().and_then(|r| r.get(0))
}

async fn server_log_len(pg: &Client, schema: &str) -> i64 {
    pg.query_one(&format!("SELECT count(*) FROM {schema}._supasync_changes"), &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_server_edit_reaches_the_file_and_is_not_sent_back() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let app = Connection::open(&path).unwrap();
    app.execute_batch(r#"INSERT INTO chat (id, user_id, title, chat, archived, avatar) VALUES ('c1', 'u1', 'Lisbon', '{"m":1}', 0, x'00ff'), ('c2', 'u1', 'Porto', NULL, 0, NULL);"#).unwrap();
    let tenant = Tenant::new("pull", "pull_tenant").unwrap();
    let mut db = open(&path);
    sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    // An integration edits on the server: an update (JSON, boolean, bytes), a new row, a
    // delete, a new row in a composite-key table.
    pg.batch_execute(
        r#"UPDATE pull_tenant.chat SET title = 'Lisboa', chat = '{"m": 2, "by": "crm"}', archived = true, avatar = '\x0102' WHERE id = 'c1';
           INSERT INTO pull_tenant.chat (id, user_id, title, created_at, score) VALUES ('c3', 'u2', 'Faro', 1733300000, 2.5);
           DELETE FROM pull_tenant.chat WHERE id = 'c2';
           INSERT INTO pull_tenant.chat_tag VALUES ('c1', 'travel');"#,
    )
    .await
    .unwrap();
    let report = sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    assert_eq!((report.pulled.written, report.pulled.deleted, report.pushed.upserted), (3, 1, 0), "{report:?}");
    let c1: (String, String, i64, Vec<u8>) = app.query_row("SELECT title, chat, archived, avatar FROM chat WHERE id = 'c1'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap();
    assert_eq!(c1.0, "Lisboa");
    assert_eq!(serde_json::from_str::<Value>(&c1.1).unwrap(), json!({"m": 2, "by": "crm"}), "JSON comes back as JSON text");
    assert_eq!((c1.2, c1.3), (1, vec![1, 2]), "a boolean as 1, bytes as a BLOB");
    let c3: (String, i64, f64) = app.query_row("SELECT title, created_at, score FROM chat WHERE id = 'c3'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    assert_eq!(c3, ("Faro".into(), 1733300000, 2.5));
    assert_eq!(title(&app, "c2"), None, "deleted on the server, gone from the file");
    let tag: String = app.query_row("SELECT tag FROM chat_tag WHERE chat_id = 'c1'", [], |r| r.get(0)).unwrap();
    assert_eq!(tag, "travel");
    // The app's own trigger ran on the pulled insert, as for any insert into its table.
    assert_eq!(app.query_row("SELECT count(*) FROM chat_count", [], |r| r.get::<_, i64>(0)).unwrap(), 3);
    // Nothing pulled waits to be pushed back, and the server's log is spent.
    let pending = capture::pending(&db).unwrap();
    assert_eq!(pending.get("chat"), None, "{pending:?}");
    assert_eq!(server_log_len(&pg, "pull_tenant").await, 0);
    let again = sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    assert_eq!((again.pushed.tables.get("chat").map(|c| c.upserted), again.pulled.written), (None, 0), "{again:?}");
}

#[tokio::test]
async fn deletes_go_both_ways() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let app = Connection::open(&path).unwrap();
    app.execute_batch("INSERT INTO chat (id, user_id) VALUES ('a', 'u'), ('b', 'u'), ('c', 'u'); INSERT INTO event_log VALUES ('one', NULL), ('two', NULL);").unwrap();
    let tenant = Tenant::new("dels", "dels_tenant").unwrap();
    let mut db = open(&path);
    sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    app.execute_batch("DELETE FROM chat WHERE id = 'a'; DELETE FROM event_log WHERE what = 'one';").unwrap();
    pg.batch_execute("DELETE FROM dels_tenant.chat WHERE id = 'b'; DELETE FROM dels_tenant.event_log WHERE what = 'two';").await.unwrap();
    sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    let file: Vec<String> = app.prepare("SELECT id FROM chat ORDER BY id").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let server: Vec<String> = pg.query("SELECT id FROM dels_tenant.chat ORDER BY id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!((file, server), (vec!["c".to_string()], vec!["c".to_string()]));
    let events: i64 = app.query_row("SELECT count(*) FROM event_log", [], |r| r.get(0)).unwrap();
    let server_events: i64 = pg.query_one("SELECT count(*) FROM dels_tenant.event_log", &[]).await.unwrap().get(0);
    assert_eq!((events, server_events), (0, 0), "a table without a key too (by rowid)");
}

#[tokio::test]
async fn a_row_written_on_both_sides_goes_to_the_later_write_and_the_other_to_the_history() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let app = Connection::open(&path).unwrap();
    app.execute_batch("INSERT INTO chat (id, user_id, title) VALUES ('early', 'u', 'start'), ('late', 'u', 'start');").unwrap();
    let tenant = Tenant::new("lww", "lww_tenant").unwrap();
    let mut db = open(&path);
    sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    // 'early': the app writes first, the server after. 'late': the other way round.
    // (Each side stamps its writes in ms: the pauses make the order one clock can see.)
    app.execute("UPDATE chat SET title = 'app' WHERE id = 'early'", []).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    pg.batch_execute("UPDATE lww_tenant.chat SET title = 'server' WHERE id IN ('early', 'late')").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    app.execute("UPDATE chat SET title = 'app' WHERE id = 'late'", []).unwrap();
    let report = sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    assert_eq!(report.pushed.history.len(), 2, "{report:?}");
    assert_eq!((title(&app, "early"), title(&app, "late")), (Some("server".into()), Some("app".into())));
    assert_eq!((server_title(&pg, "lww_tenant", "early").await, server_title(&pg, "lww_tenant", "late").await), (Some("server".into()), Some("app".into())));
    let history: Vec<(Value, String, Value)> = pg
        .query("SELECT key, kept, overwritten FROM sync_metadata.row_history WHERE deployment = 'lww' ORDER BY key::text", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(history.len(), 2);
    assert_eq!((&history[0].0, history[0].1.as_str(), &history[0].2["title"]), (&json!({"id": "early"}), "supabase", &json!("app")), "the app's values, overwritten, kept in the history");
    assert_eq!((&history[1].0, history[1].1.as_str(), &history[1].2["title"]), (&json!({"id": "late"}), "sqlite", &json!("server")), "the server's values, overwritten, kept in the history");
    assert_eq!(server_log_len(&pg, "lww_tenant").await, 0);
    assert!(capture::pending(&db).unwrap().is_empty());
}

#[tokio::test]
async fn a_row_the_app_refuses_is_set_aside_and_the_rest_arrives() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let app = Connection::open(&path).unwrap();
    app.execute("INSERT INTO chat (id, user_id) VALUES ('a', 'u')", []).unwrap();
    let tenant = Tenant::new("aside", "aside_tenant").unwrap();
    let mut db = open(&path);
    sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    // The server has no NOT NULL on user_id; the app's table has.
    pg.batch_execute("INSERT INTO aside_tenant.chat (id, user_id, title) VALUES ('nouser', NULL, 'x'), ('fine', 'u', 'y')").await.unwrap();
    let report = sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    assert_eq!(report.pulled.written, 1);
    assert_eq!((title(&app, "fine"), title(&app, "nouser")), (Some("y".into()), None));
    let (reason, from, why): (String, String, String) = pg.query_one("SELECT reason, from_side, why FROM sync_metadata.row_history WHERE deployment = 'aside'", &[]).await.map(|r| (r.get(0), r.get(1), r.get(2))).unwrap();
    assert_eq!((reason.as_str(), from.as_str()), ("set_aside", "supabase"));
    assert!(why.contains("NOT NULL"), "{why}");
    assert_eq!(server_log_len(&pg, "aside_tenant").await, 0, "the sync moved on");
}

#[tokio::test]
async fn the_app_writing_while_syncs_run_loses_nothing_and_doubles_nothing() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let tenant = Tenant::new("busy", "busy_tenant").unwrap();
    let mut db = open(&path);
    sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let app = Connection::open(&writer_path).unwrap();
        app.busy_timeout(Duration::from_secs(10)).unwrap();
        for i in 0..400 {
            app.execute("INSERT INTO chat (id, user_id, title) VALUES (?1, 'u', 'new')", [format!("w{i:03}")]).unwrap();
            if i % 3 == 0 {
                app.execute("UPDATE chat SET title = 'edited' WHERE id = ?1", [format!("w{:03}", i / 2)]).unwrap();
            }
        }
    });
    // Syncs run while the app writes; a server-side writer edits rows too.
    let mut rounds = 0;
    while !writer.is_finished() {
        sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
        pg.batch_execute("UPDATE busy_tenant.chat SET score = 1 WHERE score IS NULL AND id LIKE 'w0%'").await.unwrap();
        rounds += 1;
    }
    writer.join().unwrap();
    sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    assert!(rounds >= 1);
    let app = Connection::open(&path).unwrap();
    let mut file: Vec<(String, Option<String>, Option<f64>)> = app.prepare("SELECT id, title, score FROM chat").unwrap().query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    let mut server: Vec<(String, Option<String>, Option<f64>)> = pg.query("SELECT id, title, score FROM busy_tenant.chat", &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    file.sort_by(|a, b| a.0.cmp(&b.0));
    server.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(file.len(), 400);
    assert_eq!(file, server, "both sides hold the same rows");
    assert!(capture::pending(&db).unwrap().is_empty());
    assert_eq!(server_log_len(&pg, "busy_tenant").await, 0);
}

#[tokio::test]
async fn a_restore_builds_a_file_that_checks_out_and_syncs_on() {
    let (_s, mut pg) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = app_db(dir.path(), "webui.db");
    let app = Connection::open(&path).unwrap();
    app.execute_batch(
        r#"INSERT INTO chat VALUES ('c1', 'u1', 'Lisbon', '{"messages":[{"role":"user","content":"olá"}]}', 1, 1733300000, 1733300001, 4.5, x'00ff', 7);
           INSERT INTO chat VALUES ('c2', 'u1', NULL, NULL, 0, 1733300002, 1733300002, NULL, NULL, 'seven');
           INSERT INTO chat_tag VALUES ('c1', 'travel');
           INSERT INTO event_log VALUES ('started', '2026-12-04 08:00:00'), ('stopped', NULL);"#,
    )
    .unwrap();
    let tenant = Tenant::new("moving", "moving_tenant").unwrap();
    let mut db = open(&path);
    sync(&mut db, &mut pg, &tenant, &mut ()).await.unwrap();
    // A server edit not yet pulled by the old host: the restore has it.
    pg.batch_execute("UPDATE moving_tenant.chat SET title = 'Porto' WHERE id = 'c2'").await.unwrap();
    let to = dir.path().join("new-host").join("webui.db");
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let mut steps = 0;
    let report = restore(&mut pg, "moving", &to, &mut |_: &supasync_attach::progress::Step| steps += 1).await.unwrap();
    assert!(steps >= 4, "progress is reported per table");
    assert_eq!(report.tables["chat"].rows, 2);
    assert_eq!(report.tables["event_log"].rows, 2);
    let new = Connection::open(&to).unwrap();
    let c1: (String, String, i64, Vec<u8>, i64) = new.query_row("SELECT title, chat, archived, avatar, meta FROM chat WHERE id = 'c1'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).unwrap();
    // JSON held in text comes back as jsonb gives it (keys by length, then bytes), which
    // here is the app's own text.
    assert_eq!(c1, ("Lisbon".into(), r#"{"messages":[{"role":"user","content":"olá"}]}"#.into(), 1, vec![0, 255], 7));
    assert_eq!(title(&new, "c2"), Some("Porto".into()));
    let indexes: Vec<String> = new.prepare("SELECT name FROM sqlite_schema WHERE type IN ('index', 'trigger') AND name NOT LIKE '%supasync%' AND sql IS NOT NULL ORDER BY name").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(indexes, vec!["chat_counted", "chat_user"], "the app's own indexes and triggers");
    assert_eq!(new.query_row("SELECT count(*) FROM chat_count", [], |r| r.get::<_, i64>(0)).unwrap(), 2, "its trigger did not fire on restored rows");
    let declared: String = new.query_row("SELECT type FROM pragma_table_info('chat') WHERE name = 'created_at'", [], |r| r.get(0)).unwrap();
    assert_eq!(declared, "BIGINT", "the app's own declared types");
    assert!(restore(&mut pg, "moving", &to, &mut ()).await.unwrap_err().to_string().contains("already exists"), "never over a file");
    // Syncing from the new file: nothing to send, then both ways as before.
    let mut db2 = open(&to);
    let first = sync(&mut db2, &mut pg, &tenant, &mut ()).await.unwrap();
    assert_eq!((first.pushed.upserted, first.pushed.copied_whole.len(), first.pulled.written), (0, 0, 0), "{first:?}");
    new.execute("UPDATE chat SET title = 'from the new host' WHERE id = 'c1'", []).unwrap();
    pg.batch_execute("INSERT INTO moving_tenant.chat (id, user_id, title) VALUES ('c9', 'u1', 'from the server')").await.unwrap();
    sync(&mut db2, &mut pg, &tenant, &mut ()).await.unwrap();
    assert_eq!(server_title(&pg, "moving_tenant", "c1").await, Some("from the new host".into()));
    assert_eq!(title(&new, "c9"), Some("from the server".into()));
    // A deployment the server does not know.
    assert!(restore(&mut pg, "nobody", &dir.path().join("x.db"), &mut ()).await.unwrap_err().to_string().contains("no deployment"));
}
