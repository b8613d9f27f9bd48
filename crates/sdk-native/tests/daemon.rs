//! `supasync daemon` and the deployments menu against the dev server's PostgreSQL
//! (issue 24 §4, scenarios): three tenants on their intervals at once with no row
//! crossing; `sync-now` done by the running daemon; config changes followed without a
//! restart; the daemon killed in the middle of a sync and restarted (nothing lost,
//! nothing doubled); the server down for a while (the status says so, the next try
//! catches up). Every wait is for an event the daemon prints or the server shows.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::{json, Value};
use tokio_postgres::NoTls;

/// A running `supasync daemon`, its JSON lines arriving on a channel.
struct Daemon {
    child: Child,
    lines: Receiver<Value>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_supasync"))
            .args(["daemon", "--config", config.to_str().unwrap(), "--retry-secs", "1"])
            .env_remove("SUPASYNC_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the daemon");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let d = Daemon { child, lines };
        d.wait_for("the daemon to start", |v| v["daemon"] == "started");
        d
    }

    /// The first line `pred` accepts (each line seen once); panics after two minutes.
    fn wait_for(&self, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(e) => panic!("waiting for {what}: {e}"),
            }
        }
    }

    /// Each deployment's next finished sync (done or failed), by name.
    fn synced(&self, names: &[&str]) -> std::collections::BTreeMap<String, Value> {
        let mut got = std::collections::BTreeMap::new();
        while got.len() < names.len() {
            let v = self.wait_for("syncs to finish", |v| v["sync"] == "done" || v["sync"] == "failed");
            let name = v["deployment"].as_str().unwrap().to_string();
            if names.contains(&name.as_str()) {
                got.insert(name, v);
            }
        }
        got
    }

    fn stop(mut self) {
        // SIGTERM, as systemd stops it.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        self.wait_for("the daemon to stop", |v| v["daemon"] == "stopped");
        let _ = self.child.wait();
    }
}

fn cli(config: &Path, args: &[&str]) -> (bool, Value) {
    // `--config` belongs to the first word (`deployments`, `daemon`).
    let out = Command::new(env!("CARGO_BIN_EXE_supasync")).arg(args[0]).args(["--config", config.to_str().unwrap()]).args(&args[1..]).env_remove("SUPASYNC_DATABASE_URL").output().expect("run supasync");
    let text = if out.status.success() { &out.stdout } else { &out.stderr };
    let last = text.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap_or_default();
    (out.status.success(), serde_json::from_slice(last).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(text))))
}

fn app_db(dir: &Path, name: &str, rows: usize) -> PathBuf {
    let path = dir.join(format!("{name}.db"));
    let app = Connection::open(&path).unwrap();
    app.execute_batch("CREATE TABLE chat (id TEXT PRIMARY KEY, title TEXT, updated_at BIGINT)").unwrap();
    let tx = app.unchecked_transaction().unwrap();
    for i in 0..rows {
        tx.execute("INSERT INTO chat VALUES (?1, ?2, 1733300000)", (format!("{name}-{i:05}"), name)).unwrap();
    }
    tx.commit().unwrap();
    path
}

fn deployment(config: &Path, name: &str, db: &Path, interval: &str) {
    std::fs::create_dir_all(config).unwrap();
    let d = json!({"name": name, "db": db, "tenant_schema": format!("{name}_daemon_io"), "interval": interval, "enabled": true});
    std::fs::write(config.join(format!("{name}.json")), d.to_string()).unwrap();
}

fn point_at(config: &Path, url: &str) {
    std::fs::create_dir_all(config).unwrap();
    std::fs::write(config.join("config.json"), json!({"database_url": url}).to_string()).unwrap();
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_three_tenants_at_once_takes_sync_now_and_follows_config_changes() {
    let s = common::server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deployments");
    point_at(&config, s.database_url());
    for name in ["acme", "imc", "chat"] {
        let db = app_db(dir.path(), name, 300);
        deployment(&config, name, &db, "5m");
    }
    let daemon = Daemon::start(&config);
    // Never synced here: all three at once.
    let first = daemon.synced(&["acme", "imc", "chat"]);
    for line in first.values() {
        assert_eq!(line["sync"], "done", "{line}");
        assert_eq!(line["synced"]["pushed"]["upserted"], json!(300), "{line}");
    }
    let server = pg(s.database_url()).await;
    for name in ["acme", "imc", "chat"] {
        let titles: Vec<String> = server.query(&format!("SELECT DISTINCT title FROM {name}_daemon_io.chat"), &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(titles, vec![name.to_string()], "only {name}'s rows in its schema");
    }
    // sync-now reaches the running daemon, both ways.
    Connection::open(dir.path().join("acme.db")).unwrap().execute("UPDATE chat SET title = 'edited' WHERE id = 'acme-00007'", []).unwrap();
    server.execute("UPDATE acme_daemon_io.chat SET title = 'from crm' WHERE id = 'acme-00008'", &[]).await.unwrap();
    let (ok, now) = cli(&config, &["deployments", "sync-now", "acme"]);
    assert!(ok, "{now}");
    assert_eq!((now["via"].clone(), now["synced"]["pushed"]["upserted"].clone(), now["synced"]["pulled"]["written"].clone()), (json!("daemon"), json!(1), json!(1)), "{now}");
    daemon.wait_for("the daemon's own line for it", |v| v["why"] == "sync-now" && v["sync"] == "done");
    let edited: String = Connection::open(dir.path().join("acme.db")).unwrap().query_row("SELECT title FROM chat WHERE id = 'acme-00008'", [], |r| r.get(0)).unwrap();
    assert_eq!(edited, "from crm");
    // Status, with the daemon seen running and the last sync here.
    let (_, st) = cli(&config, &["deployments", "status", "acme"]);
    assert_eq!((st["daemon"].clone(), st["deployments"][0]["here"]["last_ok"].clone()), (json!(true), json!(true)), "{st}");
    // Changes to the directory take effect without a restart.
    let (ok, changed) = cli(&config, &["deployments", "set-interval", "imc", "manual"]);
    assert!(ok && changed["server_updated"] == json!(true), "{changed}");
    daemon.wait_for("the interval change", |v| v["deployment"] == "imc" && v["config"] == "changed");
    let on_server: String = server.query_one("SELECT sync_interval FROM sync_metadata.client_config WHERE deployment = 'imc'", &[]).await.unwrap().get(0);
    assert_eq!(on_server, "manual", "the server's copy of the config follows");
    let db = app_db(dir.path(), "late", 10);
    deployment(&config, "late", &db, "1h");
    daemon.wait_for("the new deployment", |v| v["deployment"] == "late" && v["config"] == "found");
    let late = daemon.synced(&["late"]);
    assert_eq!(late["late"]["synced"]["pushed"]["upserted"], json!(10));
    // A second daemon on the same directory is refused.
    let (ok, err) = cli(&config, &["daemon"]);
    assert!(!ok && err["error"].as_str().unwrap().contains("already serves"), "{err}");
    daemon.stop();
    assert!(!config.join("daemon.sock").exists());
    // With no daemon, sync-now is done by the caller.
    let (ok, now) = cli(&config, &["deployments", "sync-now", "acme"]);
    assert!(ok && now["via"] == json!("this process"), "{now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_killed_mid_sync_loses_and_doubles_nothing_and_a_server_down_is_caught_up() {
    let s = common::server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deployments");
    // The server is down (nothing listens there): the sync fails, and says so.
    point_at(&config, "postgres://postgres@127.0.0.1:1/postgres");
    let db = app_db(dir.path(), "kill", 3000);
    deployment(&config, "kill", &db, "5m");
    let daemon = Daemon::start(&config);
    let failed = daemon.synced(&["kill"]);
    assert_eq!(failed["kill"]["sync"], "failed");
    assert!(failed["kill"]["error"].as_str().unwrap().contains("postgres"), "{}", failed["kill"]);
    let (_, st) = cli(&config, &["deployments", "status", "kill"]);
    assert_eq!(st["deployments"][0]["here"]["last_ok"], json!(false), "{st}");
    assert!(st["deployments"][0]["here"]["last_error"].as_str().unwrap().contains("postgres"), "{st}");
    // Back up: the next try (a second later, not the 5 minutes) catches up.
    point_at(&config, s.database_url());
    let caught_up = daemon.synced(&["kill"]);
    assert_eq!(caught_up["kill"]["synced"]["pushed"]["upserted"], json!(3000), "{}", caught_up["kill"]);
    let server = pg(s.database_url()).await;
    let succeeded: i64 = server.query_one("SELECT count(*) FROM sync_metadata.owui_sync_log WHERE deployment = 'kill' AND error IS NULL", &[]).await.unwrap().get(0);
    assert_eq!(succeeded, 1, "one sync went through");
    let while_down: i64 = server.query_one("SELECT count(*) FROM sync_metadata.owui_sync_log WHERE deployment = 'kill' AND error LIKE '%postgres%'", &[]).await.unwrap().get(0);
    assert!(while_down >= 1, "the failures while it was down are in the server's history once it is back");
    let (_, st) = cli(&config, &["deployments", "status", "kill"]);
    assert_eq!(st["deployments"][0]["here"]["unlogged_failures"], json!([]), "{st}");

    // The app changes every row: three batches. The test holds a lock on a row of the
    // last one, so the sync stops there (two batches sent and forgotten); then the
    // daemon is killed (SIGKILL) while it waits.
    let app = Connection::open(&db).unwrap();
    app.execute("UPDATE chat SET title = 'changed', updated_at = updated_at + 1", []).unwrap();
    let mut holder = pg(s.database_url()).await;
    let hold = holder.transaction().await.unwrap();
    hold.execute("SELECT 1 FROM kill_daemon_io.chat WHERE id = 'kill-02999' FOR UPDATE", &[]).await.unwrap();
    let (ok, _) = cli(&config, &["deployments", "set-interval", "kill", "1m"]);
    assert!(ok);
    // A sync-now, in the background: the daemon starts it at once.
    let asker = {
        let config = config.clone();
        std::thread::spawn(move || cli(&config, &["deployments", "sync-now", "kill"]))
    };
    let waiting = Instant::now();
    loop {
        let blocked: i64 = server.query_one("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE OF t%'", &[]).await.unwrap().get(0);
        if blocked > 0 {
            break;
        }
        assert!(waiting.elapsed() < Duration::from_secs(60), "the sync never reached the held row");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pending_before = Connection::open(&db).unwrap().query_row("SELECT count(DISTINCT k1) FROM _supasync_changes", [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(pending_before, 1000, "two batches sent and forgotten, the third waiting");
    let mut child = daemon.child;
    child.kill().unwrap();
    child.wait().unwrap();
    hold.rollback().await.unwrap();
    let (ok, err) = asker.join().unwrap();
    assert!(!ok && err["error"].as_str().unwrap().contains("ended before it answered"), "the sync-now's daemon died under it: {err}");
    // Restarted: it picks up where it was.
    let daemon = Daemon::start(&config);
    let resumed = daemon.synced(&["kill"]);
    assert_eq!(resumed["kill"]["sync"], "done", "{}", resumed["kill"]);
    assert_eq!(resumed["kill"]["synced"]["pushed"]["upserted"], json!(1000), "only the batch not yet sent: {}", resumed["kill"]);
    let (rows, changed): (i64, i64) = server.query_one("SELECT count(*), count(*) FILTER (WHERE title = 'changed' AND updated_at = 1733300001) FROM kill_daemon_io.chat", &[]).await.map(|r| (r.get(0), r.get(1))).unwrap();
    assert_eq!((rows, changed), (3000, 3000), "every row once, every change there");
    daemon.stop();
}
