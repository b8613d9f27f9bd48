//! Open WebUI's real schema (tests/fixtures/open_webui.sql, from its models and
//! migrations), driven from Python's sqlite3 as the app drives it
//! (tests/fixtures/open_webui_app.py), synced both ways with supasync-dev's PostgreSQL:
//! every table arrives with its types and keys; the app writing while syncs run, the
//! app's upgrade adding columns and a table, edits made on the server; the file read
//! back by the app; a restore that is, table for table, the app's file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use supasync_attach::capture;
use supasync_attach::restore::restore;
use supasync_attach::sync::sync;
use supasync_attach::tenant::Tenant;
use supasync_devserver::DevServer;
use tokio_postgres::NoTls;

fn app(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/open_webui_app.py");
    let out = Command::new("python3").arg(script).args(args).output().expect("python3");
    assert!(out.status.success(), "open_webui_app.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON from the app")
}

fn webui_db(dir: &Path) -> PathBuf {
    let db = dir.join("webui.db");
    let p = db.to_str().unwrap();
    app(&["create", p]);
    app(&["activity", p, "1", "4"]);
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_webui_syncs_both_ways_upgrades_and_restores_as_the_app_wrote_it() {
    let s = DevServer::builder().shared_test_cluster().start().await.expect("dev server");
    let (mut pg, conn) = tokio_postgres::connect(s.database_url(), NoTls).await.unwrap();
    tokio::spawn(conn);
    let dir = tempfile::tempdir().unwrap();
    let db = webui_db(dir.path());
    let p = db.to_str().unwrap().to_string();
    let tenant = Tenant::new("acme", "acme_quantabase_io").unwrap();
    let mut file = capture::open(&db, Duration::from_secs(2)).unwrap();

    // First sync: every table, whole.
    let first = sync(&mut file, &mut pg, &tenant, &mut ()).await.unwrap();
    let tables: Vec<String> = pg.query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'acme_quantabase_io' AND table_name NOT LIKE '\\_supasync%' ORDER BY 1", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(tables.len(), 26, "{tables:?}");
    assert_eq!(first.pushed.copied_whole.len(), 26);
    let dumped = app(&["dump", &p]);
    for t in &tables {
        let n: i64 = pg.query_one(&format!("SELECT count(*) FROM acme_quantabase_io.\"{t}\""), &[]).await.unwrap().get(0);
        assert_eq!(n as usize, dumped[t].as_array().unwrap().len(), "{t}");
    }
    let types: Vec<(String, String, String)> = pg
        .query(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = 'acme_quantabase_io'
             AND (table_name, column_name) IN (('chat','chat'), ('chat','archived'), ('chat','created_at'), ('user','settings'), ('model','params'), ('config','created_at'), ('memory','updated_at'))
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let want = [("chat", "archived", "boolean"), ("chat", "chat", "jsonb"), ("chat", "created_at", "bigint"), ("config", "created_at", "text"), ("memory", "updated_at", "bigint"), ("model", "params", "text"), ("user", "settings", "jsonb")];
    assert_eq!(types, want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect::<Vec<_>>());
    let keys: Vec<String> = pg
        .query("SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey::int2[], a.attnum)) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid IN ('acme_quantabase_io.tag'::regclass, 'acme_quantabase_io.folder'::regclass) GROUP BY i.indrelid ORDER BY i.indrelid::regclass::text", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, vec!["id,user_id", "id,user_id"], "composite keys kept");

    // A day of use while syncs run, then the app's upgrade.
    let editor = {
        let p = p.clone();
        std::thread::spawn(move || app(&["edit", &p, "2"]))
    };
    while !editor.is_finished() {
        sync(&mut file, &mut pg, &tenant, &mut ()).await.unwrap();
    }
    assert!(editor.join().unwrap()["appended"].as_u64().unwrap() > 0);
    app(&["migrate", &p]);
    let upgraded = sync(&mut file, &mut pg, &tenant, &mut ()).await.unwrap();
    assert!(upgraded.pushed.copied_whole.contains(&"automation".to_string()) && upgraded.pushed.copied_whole.contains(&"chat".to_string()), "{:?}", upgraded.pushed.copied_whole);
    let tasks: Value = pg.query_one("SELECT jsonb_agg(tasks) FILTER (WHERE tasks IS NOT NULL) FROM acme_quantabase_io.chat", &[]).await.unwrap().get(0);
    assert_eq!(tasks.as_array().map(Vec::len), Some(2), "the new JSON column arrives as jsonb");

    // An integration edits on the server; the app reads its own file afterwards.
    pg.batch_execute(
        r#"UPDATE acme_quantabase_io.memory SET content = 'Edited by the CRM', updated_at = 1733400000 WHERE id = (SELECT min(id) FROM acme_quantabase_io.memory);
           INSERT INTO acme_quantabase_io.prompt (command, user_id, title, content, timestamp) VALUES ('/crm', 'crm', 'From the CRM', 'Hi {{USER_NAME}}', 1733400000);
           UPDATE acme_quantabase_io.chat SET chat = jsonb_set(chat, '{title}', '"Renamed on the server"'), title = 'Renamed on the server' WHERE id = (SELECT min(id) FROM acme_quantabase_io.chat);
           DELETE FROM acme_quantabase_io.note WHERE id = (SELECT min(id) FROM acme_quantabase_io.note);"#,
    )
    .await
    .unwrap();
    let pulled = sync(&mut file, &mut pg, &tenant, &mut ()).await.unwrap();
    assert_eq!((pulled.pulled.written, pulled.pulled.deleted), (3, 1), "{:?}", pulled.pulled);
    let read = app(&["read", &p]);
    assert!(read["json_values"].as_u64().unwrap() > 50, "{read}");
    let after = app(&["dump", &p]);
    assert!(after["prompt"].as_array().unwrap().iter().any(|r| r["command"] == "/crm"));
    assert!(after["memory"].as_array().unwrap().iter().any(|r| r["content"] == "Edited by the CRM"));
    assert!(after["chat"].as_array().unwrap().iter().any(|r| r["title"] == "Renamed on the server" && r["chat"]["title"] == "Renamed on the server"));
    assert!(capture::pending(&file).unwrap().is_empty(), "nothing pulled goes back");

    // A new host: the restored file is the app's file, table for table.
    let restored = dir.path().join("new-host.db");
    let report = restore(&mut pg, "acme", &restored, &mut ()).await.unwrap();
    assert_eq!(report.tables.len(), 27);
    assert_eq!(app(&["dump", restored.to_str().unwrap()]), after);
    app(&["read", restored.to_str().unwrap()]);
}
