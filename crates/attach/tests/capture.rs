//! Capturing an app's own writes (issue 24 §1): the app is a separate connection (and,
//! in the last tests, Python's `sqlite3` with the system's SQLite, as Open WebUI's
//! SQLAlchemy uses it), writing its own SQL to its own tables; what the log hands out
//! must be exactly the rows it changed, each once, with its last op.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{json, Value};
use supasync_attach::capture::{self, Op};
use supasync_attach::{AttachError, KeyRule};

/// A database shaped like an app's: a text key, a composite key, no key (rowid), an
/// `INTEGER PRIMARY KEY`, a table without rowid, reserved words as names, a full-text
/// index (virtual, left alone).
const APP_SCHEMA: &str = r#"
CREATE TABLE chat (id TEXT PRIMARY KEY, user_id TEXT, title TEXT, chat JSON, created_at BIGINT, updated_at BIGINT);
CREATE TABLE "user" (id TEXT NOT NULL, name TEXT, PRIMARY KEY (id));
CREATE TABLE chat_tag (chat_id TEXT, tag TEXT, PRIMARY KEY (tag, chat_id));
CREATE TABLE "group" (name TEXT, members JSON);
CREATE TABLE migratehistory (id INTEGER PRIMARY KEY, name TEXT, migrated_at DATETIME);
CREATE TABLE config (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
CREATE VIRTUAL TABLE chat_fts USING fts5(title);
"#;

fn app_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webui.db");
    Connection::open(&path).unwrap().execute_batch(APP_SCHEMA).unwrap();
    (dir, path)
}

fn attach(path: &Path) -> Connection {
    capture::open(path, Duration::from_millis(200)).unwrap()
}

fn changes(c: &Connection) -> Vec<(String, Vec<Value>, Op)> {
    capture::take(c, 10_000).unwrap().changes.into_iter().map(|c| (c.table, c.key, c.op)).collect()
}

#[test]
fn each_kind_of_table_gets_its_key_rule() {
    let (_d, path) = app_db();
    let mut sync = attach(&path);
    let installed = capture::install(&mut sync).unwrap();
    let rules: Vec<(String, KeyRule)> = installed.tables.iter().map(|t| (t.name.clone(), t.key.clone())).collect();
    let pk = |cols: &[&str]| KeyRule::PrimaryKey(cols.iter().map(|c| c.to_string()).collect());
    assert_eq!(
        rules,
        vec![
            ("chat".into(), pk(&["id"])),
            ("chat_tag".into(), pk(&["tag", "chat_id"])),
            ("config".into(), pk(&["k"])),
            ("group".into(), KeyRule::RowId),
            ("migratehistory".into(), pk(&["id"])),
            ("user".into(), pk(&["id"])),
        ],
        "the full-text index and its shadow tables are left alone"
    );
    assert_eq!(installed.fresh.len(), 6, "every table is new to the capture");
    assert_eq!(installed.journal_mode, "wal");
    // Again: fresh until copied whole.
    let again = capture::install(&mut sync).unwrap();
    assert_eq!(again.fresh.len(), 6, "still not copied");
    for t in &again.fresh {
        let since = capture::capture_began(&sync, t).unwrap().unwrap();
        capture::mark_copied(&mut sync, t, since).unwrap();
    }
    assert!(capture::install(&mut sync).unwrap().fresh.is_empty());
}

#[test]
fn the_log_holds_each_changed_row_once_with_its_last_op() {
    let (_d, path) = app_db();
    let mut sync = attach(&path);
    capture::install(&mut sync).unwrap();
    let app = Connection::open(&path).unwrap();
    app.execute_batch(
        r#"
        INSERT INTO chat (id, title) VALUES ('c1', 'one'), ('c2', 'two'), ('c3', 'three');
        UPDATE chat SET title = 'one!' WHERE id = 'c1';
        UPDATE chat SET title = 'one!!' WHERE id = 'c1';
        DELETE FROM chat WHERE id = 'c2';
        UPDATE chat SET id = 'c3b' WHERE id = 'c3';
        INSERT INTO chat_tag VALUES ('c1', 'trip');
        INSERT INTO "group" (name) VALUES ('admins');
        UPDATE "group" SET members = '[]' WHERE name = 'admins';
        INSERT INTO config VALUES ('theme', 'dark');
        INSERT INTO chat_fts (title) VALUES ('not captured');
        BEGIN; INSERT INTO chat (id) VALUES ('never'); ROLLBACK;
        "#,
    )
    .unwrap();
    assert_eq!(
        changes(&sync),
        vec![
            ("chat".into(), vec![json!("c1")], Op::Update),
            ("chat".into(), vec![json!("c2")], Op::Delete),
            ("chat".into(), vec![json!("c3")], Op::Delete),
            ("chat".into(), vec![json!("c3b")], Op::Update),
            ("chat_tag".into(), vec![json!("trip"), json!("c1")], Op::Insert),
            ("group".into(), vec![json!(1)], Op::Update),
            ("config".into(), vec![json!("theme")], Op::Insert),
        ],
        "in order of first change; a rolled-back write is not there"
    );
    let pending = capture::pending(&sync).unwrap();
    assert_eq!(pending.get("chat"), Some(&4));
    // Confirmed: gone. A write after the batch was taken stays for the next one.
    let batch = capture::take(&sync, 10_000).unwrap();
    app.execute("INSERT INTO chat (id) VALUES ('late')", []).unwrap();
    capture::confirm(&mut sync, batch.upto).unwrap();
    assert_eq!(changes(&sync), vec![("chat".into(), vec![json!("late")], Op::Insert)]);
}

#[test]
fn a_batch_is_at_most_limit_entries_and_the_next_one_goes_on_from_there() {
    let (_d, path) = app_db();
    let mut sync = attach(&path);
    capture::install(&mut sync).unwrap();
    let app = Connection::open(&path).unwrap();
    for i in 0..25 {
        app.execute("INSERT INTO chat (id) VALUES (?1)", [format!("c{i:02}")]).unwrap();
    }
    let mut seen = vec![];
    loop {
        let b = capture::take(&sync, 10).unwrap();
        if b.changes.is_empty() {
            break;
        }
        assert!(b.changes.len() <= 10);
        seen.extend(b.changes.iter().map(|c| c.key[0].as_str().unwrap_or_default().to_string()));
        capture::confirm(&mut sync, b.upto).unwrap();
    }
    assert_eq!(seen, (0..25).map(|i| format!("c{i:02}")).collect::<Vec<_>>());
}

#[test]
fn the_apps_migrations_are_followed() {
    let (_d, path) = app_db();
    let mut sync = attach(&path);
    for t in capture::install(&mut sync).unwrap().fresh {
        let since = capture::capture_began(&sync, &t).unwrap().unwrap();
        capture::mark_copied(&mut sync, &t, since).unwrap();
    }
    let app = Connection::open(&path).unwrap();
    // A column added: captured with no new trigger (only keys are logged).
    app.execute_batch("ALTER TABLE chat ADD COLUMN archived INTEGER; INSERT INTO chat (id, archived) VALUES ('a', 1);").unwrap();
    // A table added, and a table rebuilt the way Alembic's batch mode does it (a copy,
    // the old one dropped, the copy renamed): both must be compared whole.
    app.execute_batch(
        "CREATE TABLE note (id TEXT PRIMARY KEY, body TEXT); INSERT INTO note VALUES ('n1', 'x');
         CREATE TABLE _alembic_tmp_user (id TEXT PRIMARY KEY, name TEXT, email TEXT);
         INSERT INTO _alembic_tmp_user (id, name) SELECT id, name FROM \"user\";
         DROP TABLE \"user\"; ALTER TABLE _alembic_tmp_user RENAME TO \"user\";",
    )
    .unwrap();
    let again = capture::install(&mut sync).unwrap();
    assert_eq!(again.fresh, vec!["note".to_string(), "user".to_string()]);
    app.execute_batch("INSERT INTO note VALUES ('n2', 'y'); INSERT INTO \"user\" (id, email) VALUES ('u1', 'a@b');").unwrap();
    let keys: Vec<(String, Vec<Value>)> = changes(&sync).into_iter().map(|(t, k, _)| (t, k)).collect();
    assert_eq!(keys, vec![("chat".into(), vec![json!("a")]), ("note".into(), vec![json!("n2")]), ("user".into(), vec![json!("u1")])]);
}

#[test]
fn detaching_leaves_the_app_tables_as_they_were() {
    let (_d, path) = app_db();
    let mut sync = attach(&path);
    capture::install(&mut sync).unwrap();
    let app = Connection::open(&path).unwrap();
    app.execute("INSERT INTO chat (id) VALUES ('kept')", []).unwrap();
    capture::detach(&mut sync).unwrap();
    let ours: i64 = app.query_row("SELECT count(*) FROM sqlite_schema WHERE name LIKE '\\_supasync\\_%' ESCAPE '\\'", [], |r| r.get(0)).unwrap();
    assert_eq!(ours, 0);
    app.execute("INSERT INTO chat (id) VALUES ('after')", []).unwrap();
    let n: i64 = app.query_row("SELECT count(*) FROM chat", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn a_database_the_app_holds_is_waited_for_then_refused_clearly_and_nothing_changes() {
    let (_d, path) = app_db();
    let mut sync = attach(&path);
    capture::install(&mut sync).unwrap();
    let app = Connection::open(&path).unwrap();
    app.execute("INSERT INTO chat (id) VALUES ('x')", []).unwrap();
    let batch = capture::take(&sync, 100).unwrap();
    // The app is in the middle of a write transaction.
    app.execute_batch("BEGIN IMMEDIATE; INSERT INTO chat (id) VALUES ('y');").unwrap();
    match capture::confirm(&mut sync, batch.upto) {
        Err(AttachError::Busy { what, waited_ms }) => {
            assert_eq!(waited_ms, 200);
            assert!(what.contains("confirmed batch"), "{what}");
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    // The app's write goes through; then so does ours; nothing was lost.
    app.execute_batch("COMMIT;").unwrap();
    assert_eq!(capture::pending(&sync).unwrap().get("chat"), Some(&2));
    capture::confirm(&mut sync, batch.upto).unwrap();
    assert_eq!(changes(&sync), vec![("chat".into(), vec![json!("y")], Op::Insert)]);
}

#[test]
fn a_missing_file_or_one_that_is_not_a_database_is_refused_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    match capture::open(&missing, Duration::from_millis(10)) {
        Err(AttachError::NotADatabase { why, .. }) => assert_eq!(why, "no such file"),
        other => panic!("{other:?}"),
    }
    assert!(!missing.exists(), "no empty database created in its place");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, not sqlite ".repeat(100)).unwrap();
    match capture::open(&text, Duration::from_millis(10)) {
        Err(e @ AttachError::NotADatabase { .. }) => assert!(e.to_string().contains("notes.txt"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "hello, not sqlite ".repeat(100));
}

/// Run `script` with Python's `sqlite3` (the system's SQLite, as the app has it).
fn python(path: &Path, script: &str) -> String {
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(path).output().expect("python3");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_triggers_run_in_pythons_sqlite3_as_the_app_writes() {
    let (_d, path) = app_db();
    let mut sync = attach(&path);
    capture::install(&mut sync).unwrap();
    let version = python(
        &path,
        r#"
import sqlite3, sys, json, time
db = sqlite3.connect(sys.argv[1])
with db:  # one transaction, as SQLAlchemy's session commits
    db.execute("INSERT INTO chat (id, user_id, title, chat, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
               ("py1", "u1", "Lisbon", json.dumps({"messages": [{"role": "user", "content": "olá"}]}), int(time.time()), int(time.time())))
    db.execute("INSERT INTO chat_tag VALUES (?, ?)", ("py1", "travel"))
try:
    with db:
        db.execute("INSERT INTO chat (id) VALUES ('py2')")
        raise RuntimeError("the app's transaction fails")
except RuntimeError:
    pass
print(sqlite3.sqlite_version)
"#,
    );
    assert!(!version.is_empty());
    assert_eq!(
        changes(&sync),
        vec![("chat".into(), vec![json!("py1")], Op::Insert), ("chat_tag".into(), vec![json!("travel"), json!("py1")], Op::Insert)],
        "with SQLite {version}"
    );
}

#[test]
fn a_composite_key_with_a_null_part_keeps_its_width() {
    let (_d, path) = app_db();
    let mut sync = attach(&path);
    capture::install(&mut sync).unwrap();
    let app = Connection::open(&path).unwrap();
    // SQLite lets a non-integer key column hold NULL.
    app.execute("INSERT INTO chat_tag (chat_id, tag) VALUES (NULL, 'orphan')", []).unwrap();
    assert_eq!(changes(&sync), vec![("chat_tag".into(), vec![json!("orphan"), Value::Null], Op::Insert)]);
}
