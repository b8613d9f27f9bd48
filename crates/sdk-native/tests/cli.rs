//! The `supasync` command-line tool against the dev server: JSON in and out, writes with
//! no server at all, a process killed mid-push (scenario 7), bad input (scenario 12).

mod common;

use common::{manifest, server};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::fault_proxy::{FaultProxy, Mode};
use serde_json::{json, Value};
use supasync_devserver::DevServer;


struct Cli {
    store: PathBuf,
    url: String,
    key: String,
    schema: PathBuf,
}

impl Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_supasync"));
        c.arg("--store")
            .arg(&self.store)
            .arg("--schema")
            .arg(&self.schema)
            .args(args)
            .env("SUPABASE_URL", &self.url)
            .env("SUPABASE_ANON_KEY", &self.key);
        c
    }

    /// Run; the JSON it printed (stdout on success, stderr on failure) and success.
    fn run(&self, args: &[&str]) -> (bool, Value) {
        let out: Output = self.cmd(args).output().expect("run supasync");
        let text = if out.status.success() { &out.stdout } else { &out.stderr };
        // The answer is the last line (a sync may print progress lines before an error).
        let last = text.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap_or_default();
        let v = serde_json::from_slice(last).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(text)));
        (out.status.success(), v)
    }

    fn ok(&self, args: &[&str]) -> Value {
        let (ok, v) = self.run(args);
        assert!(ok, "supasync {args:?} failed: {v}");
        v
    }
}

async fn count(server: &DevServer, table: &str) -> usize {
    common::server_rows(server, table, "select=id").await.len()
}

/// An access token for a user of the tests (password `password-123`).
async fn password_token(server: &DevServer, email: &str) -> String {
    let session = common::auth_post(server, "token?grant_type=password", &json!({"email": email, "password": "password-123"})).await;
    session["access_token"].as_str().unwrap().to_string()
}

/// A request to `/rest/v1/{path}` as that user, as another app of theirs would send it;
/// it must succeed.
async fn as_user(server: &DevServer, token: &str, method: reqwest::Method, path: &str, rows: Option<Vec<Value>>) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/rest/v1/{path}", server.url()))
        .header("apikey", server.anon_key())
        .bearer_auth(token)
        .header("prefer", "return=minimal");
    if let Some(rows) = rows {
        req = req.json(&rows);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.text().await.unwrap());
}

fn cli(dir: &Path, server: &DevServer) -> Cli {
    Cli {
        store: dir.join("replica"),
        url: server.url().into(),
        key: server.anon_key().into(),
        schema: manifest().join("tests/chat_schema.json"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_in_the_outbox_with_no_server_and_sync_later() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = cli(dir.path(), &s);
    let (ok, err) = c.run(&["insert", "memories", r#"{"content":"x"}"#]);
    assert!(!ok);
    assert_eq!(err["kind"], json!("auth"));
    c.ok(&["signup", "--email", "cli1@example.com", "--password", "password-123"]);
    // The server goes away (a port nothing listens on).
    c.url = "http://127.0.0.1:9".into();
    let row = c.ok(&["insert", "memories", r#"{"content":"offline"}"#]);
    assert_eq!(row["status"], json!({"state": "pending"}));
    let local_id = row["local_id"].as_str().unwrap().to_string();
    assert_eq!(c.ok(&["query", "memories"]).as_array().unwrap().len(), 1);
    let (ok, err) = c.run(&["sync", "--timeout", "1"]);
    assert!(!ok, "sync must fail without a server");
    assert_eq!(err["kind"], json!("timeout"));
    assert_eq!(c.ok(&["status"])["pending"], json!(1), "nothing lost");
    // Back online.
    c.url = s.url().into();
    let synced = c.ok(&["sync", "--timeout", "20"]);
    assert_eq!(synced["status"]["pending"], json!(0));
    let rows = c.ok(&["query", "memories", "--where", &format!("local_id={local_id}")]);
    assert_eq!(rows[0]["status"], json!({"state": "synced"}));
    assert_eq!(count(&s, "memories").await, 1);
}

/// `supasync query` in PostgREST's URL syntax, answered from the replica with no
/// server: embeds and counts include writes not yet pushed, and the server's refusal of
/// one takes it out of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_in_postgrest_syntax_answer_offline_with_pending_writes() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = cli(dir.path(), &s);
    c.ok(&["signup", "--email", "cli-query@example.com", "--password", "password-123"]);
    c.url = "http://127.0.0.1:9".into();
    let trip = c.ok(&["insert", "conversations", r#"{"title":"Lisbon"}"#])["local_id"].as_str().unwrap().to_string();
    let other = c.ok(&["insert", "conversations", r#"{"title":"Porto"}"#])["local_id"].as_str().unwrap().to_string();
    for (conv, text) in [(&trip, "Flights"), (&trip, "Hotel"), (&trip, "Tram 28"), (&other, "Wine")] {
        c.ok(&["insert", "messages", &json!({"conversation_id": conv, "role": "user", "content": text}).to_string()]);
    }
    let answer = c.ok(&["query", "conversations?select=title,messages(count)&order=title"]);
    assert_eq!(answer["data"], json!([{"title": "Lisbon", "messages": [{"count": 3}]}, {"title": "Porto", "messages": [{"count": 1}]}]));
    assert_eq!(answer["sync"][0]["status"], json!({"state": "pending"}), "each row says it waits");
    let found = c.ok(&["query", "messages?select=content,conversations(title)&content=ilike.*TRAM*", "--single"]);
    assert_eq!(found["data"], json!({"content": "Tram 28", "conversations": {"title": "Lisbon"}}));
    let counted = c.ok(&["query", &format!("messages?select=content&conversation_id=eq.{trip}&order=content.desc&limit=1"), "--count"]);
    assert_eq!((counted["data"].clone(), counted["count"].clone()), (json!([{"content": "Tram 28"}]), json!(3)));
    // Refusals in PostgREST's words.
    let (ok, err) = c.run(&["query", "conversations?select=*,memories(*)"]);
    assert!(!ok);
    assert_eq!(err["kind"], json!("invalid"));
    assert_eq!(err["code"], json!("PGRST200"), "{err}");
    assert!(err["error"].as_str().unwrap().contains("Could not find a relationship between 'conversations' and 'memories'"), "{err}");
    let (ok, err) = c.run(&["query", "messages?select=content", "--single"]);
    assert!(!ok && err["code"] == json!("PGRST116"), "{err}");
    let (ok, err) = c.run(&["query", "messages?content=like"]);
    assert!(!ok && err["code"] == json!("PGRST100"), "{err}");
    // Online: a blank title is refused by the server (the scenarios' rule) and rolled back.
    c.ok(&["insert", "conversations", r#"{"title":"  "}"#]);
    assert_eq!(c.ok(&["query", "conversations?select=count()"])["data"], json!([{"count": 3}]), "the optimistic insert counts at once");
    c.url = s.url().into();
    c.ok(&["sync", "--timeout", "20"]);
    assert_eq!(c.ok(&["query", "conversations?select=count()"])["data"], json!([{"count": 2}]), "the refused insert left the answer");
    let synced = c.ok(&["query", "conversations?select=title&order=title"]);
    assert_eq!(synced["sync"][0]["status"], json!({"state": "synced"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_push_delivers_everything_exactly_once_after_restart() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = cli(dir.path(), &s);
    c.ok(&["signup", "--email", "cli7@example.com", "--password", "password-123"]);
    let conv = c.ok(&["insert", "conversations", r#"{"title":"kill me"}"#]);
    let cid = conv["local_id"].as_str().unwrap().to_string();
    for i in 0..40 {
        c.ok(&["insert", "messages", &json!({"conversation_id": cid, "role": "user", "content": format!("m{i}")}).to_string()]);
    }
    // Answers crawl through a slow proxy; the sync is killed while requests are out.
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    proxy.set(Mode::DelayAnswers(Duration::from_millis(400)));
    c.url = proxy.url();
    let mut child = c.cmd(&["sync", "--timeout", "30"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Wait until the server has the conversation (its insert went through), then kill.
    for _ in 0..100 {
        if count(&s, "conversations").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let pending = c.ok(&["status"])["pending"].as_u64().unwrap();
    assert!(pending > 0, "killed before it could confirm everything");
    // Restart, straight to the server.
    c.url = s.url().into();
    let done = c.ok(&["sync", "--timeout", "30"]);
    assert_eq!(done["status"]["pending"], json!(0));
    assert_eq!(count(&s, "conversations").await, 1, "exactly once");
    assert_eq!(count(&s, "messages").await, 40, "exactly once");
    let local = c.ok(&["query", "messages", "--where", &format!("conversation_id={cid}")]);
    assert_eq!(local.as_array().unwrap().len(), 40);
}

/// The push sends the next batch while the previous batch's confirmations are written,
/// so a crash can find two batches on the server that the device has not confirmed.
/// Kill the process twice with batches in flight (answers held back by a slow proxy,
/// at points read from the server's own count), restart each time: every message is
/// on the server exactly once, in its conversation, and confirmed locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_with_batches_in_flight_delivers_everything_exactly_once() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = cli(dir.path(), &s);
    c.ok(&["signup", "--email", "cli-pipeline@example.com", "--password", "password-123"]);
    let conv = c.ok(&["insert", "conversations", r#"{"title":"pipelined"}"#]);
    let cid = conv["local_id"].as_str().unwrap().to_string();
    for i in 0..60 {
        c.ok(&["insert", "messages", &json!({"conversation_id": cid, "role": "user", "content": format!("m{i}")}).to_string()]);
    }
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    proxy.set(Mode::DelayAnswers(Duration::from_millis(300)));
    let direct = s.url().to_string();
    c.url = proxy.url();
    for kill_at in [20, 40] {
        let mut child = c.cmd(&["sync", "--timeout", "30", "--batch-size", "10"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // Messages go 10 per request; each answer is held back 300 ms, so when the
        // server holds `kill_at` of them the latest batch's answer is still on its way.
        let mut reached = false;
        for _ in 0..400 {
            if count(&s, "messages").await >= kill_at {
                reached = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(reached, "the server never held {kill_at} messages");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let pending = c.ok(&["status"])["pending"].as_u64().unwrap();
        assert!(pending > 0, "killed at {kill_at} before it could confirm everything");
    }
    c.url = direct;
    let done = c.ok(&["sync", "--timeout", "30", "--batch-size", "10"]);
    assert_eq!(done["status"]["pending"], json!(0));
    assert_eq!(count(&s, "conversations").await, 1, "exactly once");
    assert_eq!(count(&s, "messages").await, 60, "exactly once");
    let local = c.ok(&["query", "messages", "--where", &format!("conversation_id={cid}"), "--order", "content"]);
    let local = local.as_array().unwrap();
    assert_eq!(local.len(), 60);
    assert!(local.iter().all(|r| r["status"] == json!({"state": "synced"})), "all confirmed");
    let mut contents: Vec<String> = local.iter().map(|r| r["row"]["content"].as_str().unwrap().to_string()).collect();
    contents.dedup();
    assert_eq!(contents.len(), 60, "no message twice locally");
}

/// A new device restoring 2,510 messages (2,500 written in one transaction, which the
/// pull reads by key inside it, then 10 in another) reports how far it is on stderr,
/// one JSON line per page with the server's total, while stdout keeps the one JSON
/// answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_reports_its_progress() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let a = cli(&dir.path().join("a"), &s);
    a.ok(&["signup", "--email", "cli-restore@example.com", "--password", "password-123"]);
    a.ok(&["insert", "conversations", r#"{"title":"long"}"#]);
    a.ok(&["sync"]);
    // 2,500 messages written straight to the server by the same user.
    let token = password_token(&s, "cli-restore@example.com").await;
    let conv = &common::server_rows(&s, "conversations", "select=id").await[0]["id"];
    let rows: Vec<Value> = (0..2500).map(|i| json!({"conversation_id": conv, "role": "user", "content": format!("m{i}")})).collect();
    as_user(&s, &token, reqwest::Method::POST, "messages", Some(rows)).await;
    // Ten more in a transaction of their own: the pull reads past the big one by key,
    // then on into the next.
    let more: Vec<Value> = (0..10).map(|i| json!({"conversation_id": conv, "role": "user", "content": format!("late {i}")})).collect();
    as_user(&s, &token, reqwest::Method::POST, "messages", Some(more)).await;

    let b = cli(&dir.path().join("b"), &s);
    b.ok(&["login", "--email", "cli-restore@example.com", "--password", "password-123"]);
    let out = b.cmd(&["sync"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let settled: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON answer");
    assert_eq!(settled["status"]["pending"], json!(0));
    let progress: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("progress").cloned())
        .filter(|p| p["table"] == json!("messages"))
        .collect();
    let seen: Vec<(u64, Option<u64>, bool)> =
        progress.iter().map(|p| (p["rows"].as_u64().unwrap(), p["total"].as_u64(), p["done"].as_bool().unwrap())).collect();
    // The big transaction's last 500 rows and the page past it (asked for together)
    // land as one.
    assert_eq!(seen, [(1000, Some(2510), false), (2000, Some(2510), false), (2510, Some(2510), true)]);
    let local = b.ok(&["query", "messages"]);
    let mut contents: Vec<&str> = local.as_array().unwrap().iter().map(|r| r["row"]["content"].as_str().unwrap()).collect();
    contents.sort();
    contents.dedup();
    assert_eq!(contents.len(), 2510, "every row once");
}

/// A restore killed with pages in flight goes on where it stopped. The answer to the
/// fourth page of 3,510 messages is held at a proxy while the first three pages commit
/// (read from the replica file); then the process is killed (SIGKILL). The next `sync`
/// asks for no page from the start again, reports progress on from the mark, and
/// leaves every message exactly once, with what changed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_with_pages_in_flight_resumes_where_it_stopped() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let a = cli(&dir.path().join("a"), &s);
    a.ok(&["signup", "--email", "cli-resume@example.com", "--password", "password-123"]);
    a.ok(&["insert", "conversations", r#"{"title":"long"}"#]);
    a.ok(&["sync"]);
    let token = password_token(&s, "cli-resume@example.com").await;
    let conv = &common::server_rows(&s, "conversations", "select=id").await[0]["id"];
    let rows: Vec<Value> = (0..3500).map(|i| json!({"conversation_id": conv, "role": "user", "content": format!("m{i}")})).collect();
    as_user(&s, &token, reqwest::Method::POST, "messages", Some(rows)).await;
    let more: Vec<Value> = (0..10).map(|i| json!({"conversation_id": conv, "role": "user", "content": format!("late {i}")})).collect();
    as_user(&s, &token, reqwest::Method::POST, "messages", Some(more)).await;

    let mut b = cli(&dir.path().join("b"), &s);
    let me = b.ok(&["login", "--email", "cli-resume@example.com", "--password", "password-123"]);
    let file = b.store.join("users").join(format!("{}.db", me["id"].as_str().unwrap()));
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    b.url = proxy.url();
    // The fourth page reads on inside the big transaction (the walk's order:
    // transaction, then key) after its 3,000th row by key
    // (`sync_txid=eq.…&id=gt.<that row's id>`).
    let ids: Vec<String> = common::server_rows(&s, "messages", &format!("select=id&order=sync_txid.asc,id.asc&conversation_id=eq.{}", conv.as_str().unwrap())).await.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    let fourth_page = format!("&id=gt.{}&", ids[2999]);
    let mut fourth = proxy.hold_answer(&["GET /rest/v1/messages?", "sync_txid=eq.", &fourth_page]);
    let mut child = b.cmd(&["sync", "--timeout", "30"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    if tokio::time::timeout(Duration::from_secs(30), fourth.arrived()).await.is_err() {
        panic!("the fourth page was not asked for; requests for messages: {}", proxy.requests("/rest/v1/messages?"));
    }
    // Pages one to three commit while the fourth is held (the store writes a page while
    // the next is fetched); wait until the file holds them, then kill.
    let stored = |f: &Path| -> (i64, Option<String>) {
        let db = rusqlite::Connection::open_with_flags(f, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n = db.query_row("SELECT count(*) FROM rows WHERE tbl = 'messages'", [], |r| r.get(0)).unwrap();
        let mark = db.query_row("SELECT value FROM meta WHERE key = 'restore:messages'", [], |r| r.get(0)).ok();
        (n, mark)
    };
    let mut at_kill = (0, None);
    for _ in 0..600 {
        at_kill = stored(&file);
        if at_kill.0 >= 3000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL, the fourth page's answer still held
    child.wait().unwrap();
    drop(fourth);
    let (n, mark) = stored(&file);
    assert_eq!((at_kill.0, n), (3000, 3000), "three pages stored when killed");
    let mark: Value = serde_json::from_str(&mark.expect("the restore's mark is stored with its pages")).unwrap();
    // The third page's mark: on from the second page (the first was seen stored before
    // the third was handed over, the second not yet; its rows are met again and merged).
    assert_eq!((mark["rows"].clone(), mark["total"].clone()), (json!(1000), json!(3510)));
    assert!(mark["at"].get("after").is_some(), "it goes on after the first page: {mark}");

    // While the device is off: a stored message is deleted on the server, a new one
    // is written.
    let gone: String = rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row("SELECT server_id FROM rows WHERE tbl = 'messages' LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let gone = gone.trim_matches('"').to_string();
    as_user(&s, &token, reqwest::Method::DELETE, &format!("messages?id=eq.{gone}"), None).await;
    let after = vec![json!({"conversation_id": conv, "role": "user", "content": "after the kill"})];
    as_user(&s, &token, reqwest::Method::POST, "messages", Some(after)).await;
    let theirs = format!("select=id&conversation_id=eq.{}", conv.as_str().unwrap());
    assert_eq!(common::server_rows(&s, "messages", &theirs).await.len(), 3510, "one deleted, one written");

    let from_start = "GET /rest/v1/messages?select=*&sync_txid=gte.0&";
    let asked_before = proxy.requests(from_start);
    assert_eq!(asked_before, 1);
    let out = b.cmd(&["sync", "--timeout", "30"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(proxy.requests(from_start), asked_before, "no page asked for from the start again");
    let progress: Vec<(u64, Option<u64>, bool)> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("progress").cloned())
        .filter(|p| p["table"] == json!("messages"))
        .map(|p| (p["rows"].as_u64().unwrap(), p["total"].as_u64(), p["done"].as_bool().unwrap()))
        .collect();
    assert_eq!(progress, [(2000, Some(3510), false), (3000, Some(3510), false), (3510, Some(3510), true)], "progress goes on from 1,000 of the same total");
    assert_eq!(stored(&file), (3510, None), "every row stored, the mark gone");
    let local = b.ok(&["query", "messages"]);
    let mut contents: Vec<&str> = local.as_array().unwrap().iter().map(|r| r["row"]["content"].as_str().unwrap()).collect();
    contents.sort();
    contents.dedup();
    assert_eq!(contents.len(), 3510, "every row once");
    assert!(contents.contains(&"after the kill"), "what was written meanwhile came");
    let ids: Vec<&str> = local.as_array().unwrap().iter().filter_map(|r| r["row"]["id"].as_str()).collect();
    assert!(!ids.contains(&gone.as_str()), "what was deleted meanwhile went");
    // The next pull finds nothing new and nothing lost.
    b.ok(&["sync"]);
    assert_eq!(b.ok(&["query", "messages"]).as_array().unwrap().len(), 3510);
}

/// A restore of many transactions is split into ranges walked at once (a page of each
/// in flight), and one killed with pages of several ranges in flight goes on with only
/// the range that was cut: 3,500 messages in 35 transactions make three ranges, from
/// the transactions of the rows a third and two thirds of the way into the walk. The
/// second page of the middle range is held at a proxy while the other two finish; the
/// process is killed (SIGKILL). The next `sync` walks the middle range alone, from its
/// start (its first page was stored but not yet seen stored), and leaves every
/// message exactly once, with what changed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_split_in_ranges_killed_with_several_in_flight_resumes_each_where_it_stopped() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let a = cli(&dir.path().join("a"), &s);
    a.ok(&["signup", "--email", "cli-ranges@example.com", "--password", "password-123"]);
    a.ok(&["insert", "conversations", r#"{"title":"many"}"#]);
    a.ok(&["sync"]);
    let token = password_token(&s, "cli-ranges@example.com").await;
    let conv = &common::server_rows(&s, "conversations", "select=id").await[0]["id"];
    for t in 0..35 {
        let rows: Vec<Value> = (0..100).map(|i| json!({"conversation_id": conv, "role": "user", "content": format!("m{t}-{i}")})).collect();
        as_user(&s, &token, reqwest::Method::POST, "messages", Some(rows)).await;
    }
    // The walk's order, and the transactions the ranges begin with.
    let walk: Vec<i64> = common::server_rows(&s, "messages", "select=sync_txid&order=sync_txid.asc,id.asc").await.iter().map(|r| r["sync_txid"].as_i64().unwrap()).collect();
    assert_eq!(walk.len(), 3500);
    let (t1, t2) = (walk[3500 / 3], walk[3500 * 2 / 3]);

    let mut b = cli(&dir.path().join("b"), &s);
    let me = b.ok(&["login", "--email", "cli-ranges@example.com", "--password", "password-123"]);
    let file = b.store.join("users").join(format!("{}.db", me["id"].as_str().unwrap()));
    let proxy = FaultProxy::start(s.url().trim_start_matches("http://").to_string()).await.unwrap();
    b.url = proxy.url();
    // The middle range's second page: after its first page, below the last range.
    let mut held = proxy.hold_answer(&["GET /rest/v1/messages?select=*", "&or=", &format!("&sync_txid=lt.{t2}&")]);
    let mut child = b.cmd(&["sync", "--timeout", "30"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    if tokio::time::timeout(Duration::from_secs(30), held.arrived()).await.is_err() {
        panic!("the middle range's second page was not asked for; requests for messages: {}", proxy.requests("/rest/v1/messages?"));
    }
    let stored = |f: &Path| -> (i64, Option<Value>) {
        let db = rusqlite::Connection::open_with_flags(f, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n = db.query_row("SELECT count(*) FROM rows WHERE tbl = 'messages'", [], |r| r.get(0)).unwrap();
        let mark: Option<String> = db.query_row("SELECT value FROM meta WHERE key = 'restore:messages'", [], |r| r.get(0)).ok();
        (n, mark.map(|m| serde_json::from_str(&m).unwrap()))
    };
    // The first and last ranges finish (their last pages stored and said done) while
    // the middle one waits.
    let done = |mark: &Option<Value>| mark.as_ref().is_some_and(|m| m["ranges"][0]["at"].is_null() && m["ranges"][2]["at"].is_null());
    for _ in 0..600 {
        let (n, mark) = stored(&file);
        if n >= 3300 && done(&mark) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL, the middle range's second page still held
    child.wait().unwrap();
    drop(held);
    let (n, mark) = stored(&file);
    assert_eq!(n, 3300, "the first and last ranges and the middle one's first page stored when killed");
    let mark = mark.expect("the restore's mark is stored with its pages");
    let ranges: Vec<(Value, i64, u64)> = mark["ranges"].as_array().expect("a split restore marks its ranges").iter().map(|r| (r["at"].clone(), r["end"].as_i64().unwrap(), r["rows"].as_u64().unwrap())).collect();
    assert_eq!(ranges, [(Value::Null, t1, 1100), (json!({"from": t1}), t2, 0), (Value::Null, mark["upto"].as_i64().unwrap(), 1200)], "{mark}");
    assert_eq!((mark["rows"].clone(), mark["total"].clone()), (json!(2300), json!(3500)));

    // While the device is off: a stored message of the last range is deleted on the
    // server, a new one is written.
    let gone = common::server_rows(&s, "messages", &format!("select=id&sync_txid=eq.{}&limit=1", walk[3499])).await[0]["id"].as_str().unwrap().to_string();
    as_user(&s, &token, reqwest::Method::DELETE, &format!("messages?id=eq.{gone}"), None).await;
    let after = vec![json!({"conversation_id": conv, "role": "user", "content": "after the kill"})];
    as_user(&s, &token, reqwest::Method::POST, "messages", Some(after)).await;

    let (first_range, last_range) = ("GET /rest/v1/messages?select=*&sync_txid=gte.0&", format!("GET /rest/v1/messages?select=*&sync_txid=gte.{t2}&"));
    let asked_before = (proxy.requests(first_range), proxy.requests(&last_range), proxy.requests("offset="));
    assert_eq!(asked_before, (1, 1, 2), "the first page, the last range's first page, two probes");
    let out = b.cmd(&["sync", "--timeout", "30"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((proxy.requests(first_range), proxy.requests(&last_range), proxy.requests("offset=")), asked_before, "the ranges that were done are not walked again, nor split again");
    let progress: Vec<(u64, Option<u64>, bool)> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("progress").cloned())
        .filter(|p| p["table"] == json!("messages"))
        .map(|p| (p["rows"].as_u64().unwrap(), p["total"].as_u64(), p["done"].as_bool().unwrap()))
        .collect();
    assert_eq!(progress, [(3300, Some(3500), false), (3500, Some(3500), true)], "progress goes on from 2,300 of the same total");
    assert_eq!(stored(&file), (3500, None), "every row stored (one deleted, one written), the mark gone");
    let local = b.ok(&["query", "messages"]);
    let mut contents: Vec<&str> = local.as_array().unwrap().iter().map(|r| r["row"]["content"].as_str().unwrap()).collect();
    assert_eq!(contents.len(), 3500);
    contents.sort();
    contents.dedup();
    assert_eq!(contents.len(), 3500, "every row once");
    assert!(contents.contains(&"after the kill"), "what was written meanwhile came");
    let ids: Vec<&str> = local.as_array().unwrap().iter().filter_map(|r| r["row"]["id"].as_str()).collect();
    assert!(!ids.contains(&gone.as_str()), "what was deleted meanwhile went");
    b.ok(&["sync"]);
    assert_eq!(b.ok(&["query", "messages"]).as_array().unwrap().len(), 3500, "the next pull finds nothing new and nothing lost");
}

/// `supasync import`: 50,000 messages (and the conversation they reference by its
/// imported local id) from a JSON-lines file, then `sync`: every row on the server
/// exactly once, even after a second sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_of_50k_rows_syncs_exactly_once() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cli(&dir.path().join("replica"), &s);
    c.ok(&["signup", "--email", "cli-import@example.com", "--password", "password-123"]);
    let file = dir.path().join("rows.jsonl");
    let mut text = String::from("{\"title\":\"imported\",\"local_id\":\"conv-imported\"}\n");
    std::fs::write(&file, &text).unwrap();
    let conv = c.ok(&["import", "conversations", file.to_str().unwrap()]);
    assert_eq!(conv["imported"], json!(1));
    text.clear();
    for i in 0..50_000 {
        text.push_str(&json!({"conversation_id": "conv-imported", "role": "user", "content": format!("m{i}")}).to_string());
        text.push('\n');
    }
    std::fs::write(&file, &text).unwrap();
    let report = c.ok(&["import", "messages", file.to_str().unwrap()]);
    assert_eq!(report, json!({"table": "messages", "imported": 50_000, "chunks": 50, "chunks_skipped": 0, "refused": []}));
    assert_eq!(c.ok(&["status"])["pending"], json!(50_001));
    let done = c.ok(&["sync", "--timeout", "300"]);
    assert_eq!(done["status"]["pending"], json!(0));
    c.ok(&["sync"]);
    assert_eq!(count(&s, "conversations").await, 1);
    assert_eq!(count(&s, "messages").await, 50_000, "every imported row once");
    let conv_id = &common::server_rows(&s, "conversations", "select=id").await[0]["id"];
    let in_conv = common::server_rows(&s, "messages", &format!("select=id&conversation_id=eq.{}", conv_id.as_str().unwrap())).await;
    assert_eq!(in_conv.len(), 50_000, "references mapped to the imported conversation");
}

/// A line that does not fit the schema, and one that is not JSON, each keep their
/// whole chunk out; the other chunks are applied, and the answer names the lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_bad_lines_applies_only_the_chunks_without_them() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cli(&dir.path().join("replica"), &s);
    c.ok(&["signup", "--email", "cli-import-bad@example.com", "--password", "password-123"]);
    let mut text = String::new();
    for line in 1..=3001 {
        let row = match line {
            1500 => r#"{"conversation_id": 42, "role": "user", "content": "bad reference"}"#.to_string(),
            2500 => "{not json".to_string(),
            _ => json!({"role": "user", "content": format!("line {line}")}).to_string(),
        };
        text.push_str(&row);
        text.push('\n');
    }
    let file = dir.path().join("rows.jsonl");
    std::fs::write(&file, text).unwrap();
    let (ok, err) = c.run(&["import", "messages", file.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(err["kind"], json!("invalid"));
    let msg = err["error"].as_str().unwrap();
    assert!(msg.contains("2 lines do not fit, first line 1500"), "{msg}");
    assert!(msg.contains("line\":2500") && msg.contains("not JSON"), "{msg}");
    assert!(msg.contains("2 of 4 chunks were not applied, 1001 rows were"), "{msg}");
    let local = c.ok(&["query", "messages"]);
    let contents: Vec<&str> = local.as_array().unwrap().iter().map(|r| r["row"]["content"].as_str().unwrap()).collect();
    assert_eq!(contents.len(), 1001);
    assert!(contents.contains(&"line 1000") && contents.contains(&"line 3001"));
    assert!(!contents.contains(&"line 1001") && !contents.contains(&"line 2999"), "nothing of a chunk with a bad line");
}

/// A conversation deleted on the server takes its 1,500 messages with it in one
/// transaction: another device's pull walks those tombstones past a page inside one
/// transaction, and every message goes from its replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_of_more_rows_than_a_page_in_one_transaction_reaches_other_devices() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let a = cli(&dir.path().join("a"), &s);
    a.ok(&["signup", "--email", "cli-cascade@example.com", "--password", "password-123"]);
    let file = dir.path().join("rows.jsonl");
    std::fs::write(&file, "{\"title\":\"to delete\",\"local_id\":\"conv-cascade\"}\n").unwrap();
    a.ok(&["import", "conversations", file.to_str().unwrap()]);
    let lines: String = (0..1500).map(|i| format!("{}\n", json!({"conversation_id": "conv-cascade", "role": "user", "content": format!("m{i}")}))).collect();
    std::fs::write(&file, lines).unwrap();
    a.ok(&["import", "messages", file.to_str().unwrap()]);
    assert_eq!(a.ok(&["sync"])["status"]["pending"], json!(0));
    let b = cli(&dir.path().join("b"), &s);
    b.ok(&["login", "--email", "cli-cascade@example.com", "--password", "password-123"]);
    b.ok(&["sync"]);
    assert_eq!(b.ok(&["query", "messages"]).as_array().unwrap().len(), 1500);

    // Delete the conversation on the server as the user: the foreign key cascades.
    let token = password_token(&s, "cli-cascade@example.com").await;
    as_user(&s, &token, reqwest::Method::DELETE, "conversations?local_id=eq.conv-cascade", None).await;
    assert_eq!(count(&s, "messages").await, 0);

    b.ok(&["sync"]);
    assert_eq!(b.ok(&["query", "messages"]).as_array().unwrap().len(), 0, "every message's tombstone was read");
    assert_eq!(b.ok(&["query", "conversations"]).as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_loses_nothing() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cli(dir.path(), &s);
    let me = c.ok(&["signup", "--email", "cli12@example.com", "--password", "password-123"]);
    c.ok(&["insert", "memories", r#"{"content":"keep me"}"#]);
    for (args, kind, needle) in [
        (vec!["insert", "memories", "{not json"], "invalid", "not JSON"),
        (vec!["insert", "memories", "[1,2]"], "invalid", "must be a JSON object"),
        (vec!["insert", "memories", r#"{"id":"x"}"#], "invalid", "set by the server"),
        (vec!["insert", "nope", "{}"], "invalid", "unknown table"),
        (vec!["insert", "messages", r#"{"conversation_id":42}"#], "invalid", "must be a local id"),
        (vec!["update", "memories", "no-such-id", "{}"], "invalid", "no row"),
        (vec!["retry", "no-such-id"], "not_found", "no rejected write"),
        (vec!["query", "memories", "--where", "oops"], "invalid", "COL=VALUE"),
    ] {
        let (ok, err) = c.run(&args);
        assert!(!ok, "{args:?}");
        assert_eq!(err["kind"], json!(kind), "{args:?}: {err}");
        assert!(err["error"].as_str().unwrap().contains(needle), "{args:?}: {err}");
    }
    assert_eq!(c.ok(&["status"])["pending"], json!(1), "nothing lost");

    // A schema file that is not a schema.
    let bad_schema = dir.path().join("bad.json");
    std::fs::write(&bad_schema, r#"{"tables":[{"name":"a","references":{"b_id":"b"}}]}"#).unwrap();
    let out = c.cmd(&["status"]).arg("--schema").arg(&bad_schema).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a declared table"));

    // A corrupt store file: a clear error, and the file is left as it was.
    let db = c.store.join("users").join(format!("{}.db", me["id"].as_str().unwrap()));
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let garbage = b"definitely not sqlite".repeat(300);
    std::fs::write(&db, &garbage).unwrap();
    let (ok, err) = c.run(&["status"]);
    assert!(!ok);
    assert_eq!(err["kind"], json!("store"));
    assert!(err["error"].as_str().unwrap().contains("corrupt"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
}

/// A streaming command's stdout, line by line, on a thread (the tests' runtime must not block).
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<Value> {
    use std::io::BufRead;
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            let v = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(rx: &std::sync::mpsc::Receiver<Value>, what: &str) -> Value {
    rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("no line in time: {what}"))
}

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    child.wait().expect("wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_each_change_from_another_device_and_status_follows_live() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let a = cli(&dir.path().join("a"), &s);
    let b = cli(&dir.path().join("b"), &s);
    // A third device follows its status (two live processes on one replica would race
    // each other to apply the same changes).
    let c = cli(&dir.path().join("c"), &s);
    a.ok(&["signup", "--email", "watch@example.com", "--password", "password-123"]);
    b.ok(&["login", "--email", "watch@example.com", "--password", "password-123"]);
    c.ok(&["login", "--email", "watch@example.com", "--password", "password-123"]);
    let mut watching = b.cmd(&["watch", "memories"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut following = c.cmd(&["status", "--follow"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let w = lines_of(&mut watching);
    let f = lines_of(&mut following);
    assert_eq!(next_line(&w, "ready"), json!({"watching": "memories", "rows": 0}));
    loop {
        if next_line(&f, "status")["phase"] == json!("live") {
            break;
        }
    }

    let row = a.ok(&["insert", "memories", r#"{"content":"hello from A"}"#]);
    let id = row["local_id"].as_str().unwrap().to_string();
    a.ok(&["sync", "--timeout", "20"]);
    let ins = next_line(&w, "insert");
    assert_eq!((ins["op"].clone(), ins["local_id"].clone(), ins["row"]["content"].clone()), (json!("insert"), json!(id), json!("hello from A")));
    a.ok(&["update", "memories", &id, r#"{"content":"edited"}"#]);
    a.ok(&["sync", "--timeout", "20"]);
    let upd = next_line(&w, "update");
    assert_eq!((upd["op"].clone(), upd["row"]["content"].clone()), (json!("update"), json!("edited")));
    a.ok(&["delete", "memories", &id]);
    a.ok(&["sync", "--timeout", "20"]);
    assert_eq!(next_line(&w, "delete"), json!({"table": "memories", "op": "delete", "local_id": id}));

    assert!(terminate(&mut watching).success(), "watch stops cleanly");
    assert!(terminate(&mut following).success(), "status --follow stops cleanly");
    // What watch saw is in B's replica.
    assert_eq!(b.ok(&["query", "memories"]), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisation_members_share_rows_count_uses_and_lose_them_on_leaving() {
    let s = common::library_server().await;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let schema = manifest().join("../../examples/library/schema.json");
    let a = Cli { schema: schema.clone(), ..cli(da.path(), &s) };
    let b = Cli { schema, ..cli(db.path(), &s) };
    let ua = a.ok(&["signup", "--email", "cli-org-a@example.com", "--password", "password-123"]);
    let ub = b.ok(&["signup", "--email", "cli-org-b@example.com", "--password", "password-123"]);
    // An admin tool makes the organisation and its members.
    let (sql, conn) = tokio_postgres::connect(s.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let org: String = sql.query_one("insert into public.organizations (name) values ('Acme') returning id::text", &[]).await.unwrap().get(0);
    for u in [&ua, &ub] {
        let id = u["id"].as_str().unwrap_or_else(|| panic!("a user id in {u}"));
        sql.execute("insert into public.org_members (org_id, user_id) values ($1::text::uuid, $2::text::uuid)", &[&org, &id]).await.unwrap();
    }
    let row = a.ok(&["insert", "agent_library", &json!({"org_id": org, "name": "Helper"}).to_string()]);
    let local_id = row["local_id"].as_str().unwrap().to_string();
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(b.ok(&["query", "agent_library"])[0]["row"]["name"], json!("Helper"));
    // B uses it twice (shown at once), then syncs; A sees the count the server kept.
    b.ok(&["call", "agent_library", &local_id, "use_agent", "--effect", r#"{"usage_count":1}"#]);
    let shown = b.ok(&["call", "agent_library", &local_id, "use_agent", "--effect", r#"{"usage_count":2}"#]);
    assert_eq!((shown["row"]["usage_count"].clone(), shown["status"].clone()), (json!(2), json!({"state": "pending"})));
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    assert_eq!(a.ok(&["query", "agent_library"])[0]["row"]["usage_count"], json!(2));
    // Bad input is a clear error, and nothing is queued.
    let (ok, err) = b.run(&["call", "agent_library", &local_id, "use_agent", "--args", "[1]"]);
    assert!(!ok);
    assert_eq!(err["kind"], json!("invalid"), "{err}");
    // B leaves Acme: its rows leave B's replica at the next sync.
    sql.execute("delete from public.org_members where user_id = $1::text::uuid", &[&ub["id"].as_str().unwrap()]).await.unwrap();
    b.ok(&["sync"]);
    assert_eq!(b.ok(&["query", "agent_library"]), json!([]));
    let history = b.ok(&["history"]);
    assert!(history.as_array().unwrap().iter().any(|h| h["kind"] == json!("access")), "{history}");
}

#[test]
fn attach_captures_an_apps_own_database_with_no_account_or_server() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cli { store: dir.path().join("store"), url: "http://127.0.0.1:9".into(), key: String::new(), schema: manifest().join("tests/chat_schema.json") };
    let db = dir.path().join("webui.db");
    let app = rusqlite::Connection::open(&db).unwrap();
    app.execute_batch("CREATE TABLE chat (id TEXT PRIMARY KEY, title TEXT); CREATE TABLE tag (name TEXT);").unwrap();
    let db_arg = db.to_str().unwrap();
    let attached = c.ok(&["attach", "--db", db_arg]);
    assert_eq!(attached["journal_mode"], json!("wal"));
    assert_eq!(attached["tables"], json!([{"name": "chat", "key": ["id"], "columns": 2}, {"name": "tag", "key": "rowid", "columns": 1}]));
    assert_eq!(attached["fresh"], json!(["chat", "tag"]));
    app.execute_batch("INSERT INTO chat VALUES ('a', 'x'); UPDATE chat SET title = 'y'; INSERT INTO tag VALUES ('t');").unwrap();
    assert_eq!(c.ok(&["attach", "--db", db_arg, "--pending"])["pending"], json!({"chat": 1, "tag": 1}));
    // Again: the same tables, still to be copied whole by a first sync.
    assert_eq!(c.ok(&["attach", "--db", db_arg])["fresh"], json!(["chat", "tag"]));
    assert_eq!(c.ok(&["attach", "--db", db_arg, "--detach"])["detached"], json!(db_arg));
    assert_eq!(c.ok(&["attach", "--db", db_arg, "--pending"])["pending"], json!({}));
    // A file that is not there is refused, and not created.
    let missing = dir.path().join("typo.db");
    let (ok, err) = c.run(&["attach", "--db", missing.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(err["kind"], json!("invalid"));
    assert!(err["error"].as_str().unwrap().contains("no such file"), "{err}");
    assert!(!missing.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_of_attached_databases_sync_into_their_tenant_schemas() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deployments");
    let c = Cli { store: dir.path().join("store"), url: "http://127.0.0.1:9".into(), key: String::new(), schema: manifest().join("tests/chat_schema.json") };
    let run = |args: &[&str]| {
        let out = c.cmd(args).env("SUPASYNC_DATABASE_URL", s.database_url()).output().expect("run supasync");
        let text = if out.status.success() { &out.stdout } else { &out.stderr };
        // The answer is the last line (progress lines may come before an error).
        let last = text.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap_or_default();
        let v: Value = serde_json::from_slice(last).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(text)));
        (out.status.success(), v)
    };
    let cfg = config.to_str().unwrap();
    let db = dir.path().join("webui.db");
    let app = rusqlite::Connection::open(&db).unwrap();
    app.execute_batch("CREATE TABLE chat (id TEXT PRIMARY KEY, title TEXT); INSERT INTO chat VALUES ('a', 'x'), ('b', 'y');").unwrap();
    let (ok, attached) = run(&["attach", "--db", db.to_str().unwrap(), "--deployment", "acme", "--tenant-schema", "acme_quantabase_io", "--interval", "5m", "--config", cfg]);
    assert!(ok, "{attached}");
    assert_eq!(attached["synced"]["pushed"]["upserted"], json!(2), "copied whole at once");
    assert!(Path::new(attached["backup"].as_str().unwrap()).is_file(), "a backup first");
    // The app writes; status shows it waiting; sync-now sends it.
    app.execute_batch("UPDATE chat SET title = 'z' WHERE id = 'a'; DELETE FROM chat WHERE id = 'b';").unwrap();
    let (_, st) = run(&["deployments", "--config", cfg, "status"]);
    assert_eq!(st["deployments"][0]["pending"], json!({"chat": 2}));
    assert_eq!(st["deployments"][0]["interval"], json!("5m"));
    assert_eq!(st["deployments"][0]["last_sync"]["rows_upserted"], json!(2));
    let (ok, synced) = run(&["deployments", "--config", cfg, "sync-now", "acme"]);
    assert!(ok, "{synced}");
    assert_eq!((synced["synced"]["pushed"]["upserted"].clone(), synced["synced"]["pushed"]["deleted"].clone(), synced["via"].clone()), (json!(1), json!(1), json!("this process")));
    let (_, history) = run(&["deployments", "--config", cfg, "history", "acme"]);
    assert_eq!(history["history"].as_array().map(Vec::len), Some(2));
    // Settings: changed in the file, checked first.
    let (ok, err) = run(&["deployments", "--config", cfg, "set-interval", "acme", "every so often"]);
    assert!(!ok);
    assert!(err["error"].as_str().unwrap().contains("interval"), "{err}");
    assert_eq!(run(&["deployments", "--config", cfg, "set-interval", "acme", "daily"]).1["interval"], json!("1d"));
    assert_eq!(run(&["deployments", "--config", cfg, "disable", "acme"]).1["enabled"], json!(false));
    // Bad input: an unknown deployment; a config naming a file that is gone; a schema
    // name that is not an identifier.
    let (ok, err) = run(&["deployments", "--config", cfg, "sync-now", "nope"]);
    assert!(!ok && err["error"].as_str().unwrap().contains("nope"), "{err}");
    std::fs::write(config.join("gone.json"), r#"{"name":"gone","db":"/nowhere/webui.db","tenant_schema":"gone_tenant","interval":"1h","enabled":true}"#).unwrap();
    let (ok, err) = run(&["deployments", "--config", cfg, "sync-now", "gone"]);
    assert!(!ok && err["error"].as_str().unwrap().contains("no such file"), "{err}");
    let (ok, err) = run(&["attach", "--db", db.to_str().unwrap(), "--deployment", "x", "--tenant-schema", "Bad-Name", "--config", cfg]);
    assert!(!ok && err["kind"] == json!("invalid"), "{err}");
    assert!(!config.join("x.json").exists(), "nothing written for a refused deployment");
    // A new host: restore builds the file from the server, checks it, and the
    // deployment's config there names it.
    let new_host = dir.path().join("new-host");
    let new_cfg = new_host.join("deployments");
    let new_db = new_host.join("webui.db");
    std::fs::create_dir_all(&new_host).unwrap();
    let (ok, restored) = run(&["deployments", "--config", new_cfg.to_str().unwrap(), "restore", "acme", "--to", new_db.to_str().unwrap()]);
    assert!(ok, "{restored}");
    assert_eq!(restored["restored"]["tables"]["chat"]["rows"], json!(1));
    assert_eq!((restored["deployment"]["tenant_schema"].clone(), restored["deployment"]["interval"].clone()), (json!("acme_quantabase_io"), json!("1d")));
    let title: String = rusqlite::Connection::open(&new_db).unwrap().query_row("SELECT title FROM chat WHERE id = 'a'", [], |r| r.get(0)).unwrap();
    assert_eq!(title, "z");
    let (ok, resumed) = run(&["deployments", "--config", new_cfg.to_str().unwrap(), "sync-now", "acme"]);
    assert!(ok, "{resumed}");
    assert_eq!((resumed["synced"]["pushed"]["upserted"].clone(), resumed["synced"]["pushed"]["copied_whole"].clone()), (json!(0), json!([])), "nothing to send again");
    let (ok, err) = run(&["deployments", "--config", new_cfg.to_str().unwrap(), "restore", "acme", "--to", new_db.to_str().unwrap()]);
    assert!(!ok && err["error"].as_str().unwrap().contains("already exists"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_upload_offline_sync_before_their_message_and_read_back_elsewhere() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = cli(dir.path(), &s);
    c.schema = dir.path().join("schema.json");
    std::fs::write(
        &c.schema,
        r#"{"tables":[{"name":"conversations"},{"name":"messages","references":{"conversation_id":"conversations"},"files":{"attachment":"attachments"}}]}"#,
    )
    .unwrap();
    let me = c.ok(&["signup", "--email", "cli-files@example.com", "--password", "password-123"]);
    let path = format!("{}/notes.txt", me["id"].as_str().unwrap());
    let src = dir.path().join("notes.txt");
    std::fs::write(&src, b"field notes").unwrap();
    let online = c.url.clone();
    c.url = "http://127.0.0.1:9".into(); // offline
    let f = c.ok(&["files", "upload", "attachments", &path, "--file", src.to_str().unwrap(), "--content-type", "text/plain"]);
    assert_eq!((f["status"].as_str(), f["size"].as_u64()), (Some("pending"), Some(11)));
    let conv = c.ok(&["insert", "conversations", r#"{"title":"Field"}"#]);
    c.ok(&["insert", "messages", &json!({"conversation_id": conv["local_id"], "role": "user", "content": "notes", "attachment": path}).to_string()]);
    c.url = online;
    c.ok(&["sync"]);
    assert_eq!(c.ok(&["files", "file", "attachments", &path])["status"], json!("synced"));
    // Another device of the user reads it back from Storage.
    let other = tempfile::tempdir().unwrap();
    let mut d = cli(other.path(), &s);
    d.schema = c.schema.clone();
    d.ok(&["login", "--email", "cli-files@example.com", "--password", "password-123"]);
    let out = other.path().join("copy.txt");
    d.ok(&["files", "read", "attachments", &path, "--out", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), b"field notes");
    let (ok, err) = d.run(&["files", "upload", "attachments", "../x", "--file", src.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(err["kind"], json!("invalid"));
    d.ok(&["files", "remove", "attachments", &path]);
    d.ok(&["sync"]);
    assert_eq!(d.ok(&["files", "list", "attachments"]), json!([]));
}
