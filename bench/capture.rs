//! `supasync-bench-capture`: what the capture triggers of an attached database cost the
//! app's own writes (issue 24: at most 1.3x the same writes without them).
//!
//! Two copies of an Open WebUI-shaped database (a `chat` table with its JSON document,
//! a `message` table), both in WAL mode as attaching leaves them, one with the triggers
//! installed. The same writes go to both, in alternating rounds so that neither gets
//! the warmer disk cache: each round is 200 of the app's requests, one transaction
//! each (insert a chat, add a message, update the chat's title and `updated_at`), and
//! one bulk transaction of 1,000 message inserts (an import); statements are prepared
//! once and reused, as an app's driver does (Python's `sqlite3` keeps a cache of them:
//! a trigger is compiled into each statement that fires it). Reported: total time
//! with triggers ÷ without, for `synchronous = FULL` (SQLite's default, what Python's
//! `sqlite3` runs with) and `NORMAL` (a commit without an fsync, where the trigger's
//! extra insert weighs most).
//!
//! Run: `cargo run --release -p supasync-bench --bin supasync-bench-capture`.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

const ROUNDS: usize = 5;
const REQUESTS: usize = 200;
const BULK: usize = 1_000;

fn schema(c: &Connection) {
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE chat (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, title TEXT, chat JSON, created_at BIGINT, updated_at BIGINT, archived BOOLEAN DEFAULT 0);
         CREATE TABLE message (id TEXT PRIMARY KEY, chat_id TEXT, user_id TEXT, content TEXT, data JSON, created_at BIGINT, updated_at BIGINT);",
    )
    .expect("schema");
}

/// One round of the app's writes: `REQUESTS` requests of three writes, each request its
/// own transaction; then one import transaction of `BULK` messages.
fn round(c: &mut Connection, round: usize) -> (Duration, Duration) {
    let doc = format!("{{\"messages\": [{}]}}", ["{\"role\": \"user\", \"content\": \"a message of a chat, as Open WebUI keeps it\"}"; 12].join(", "));
    let t = Instant::now();
    for i in 0..REQUESTS {
        let id = format!("r{round}-{i}");
        let tx = c.transaction().expect("tx");
        tx.prepare_cached("INSERT INTO chat (id, user_id, title, chat, created_at, updated_at) VALUES (?1, 'u1', 'New chat', ?2, 1700000000, 1700000000)").and_then(|mut s| s.execute((&id, &doc))).expect("chat");
        tx.prepare_cached("INSERT INTO message (id, chat_id, user_id, content, created_at, updated_at) VALUES (?1, ?2, 'u1', 'hello there', 1700000000, 1700000000)").and_then(|mut s| s.execute((format!("m{id}"), &id))).expect("message");
        tx.prepare_cached("UPDATE chat SET title = 'Trip to Lisbon', updated_at = 1700000001 WHERE id = ?1").and_then(|mut s| s.execute([&id])).expect("update");
        tx.commit().expect("commit");
    }
    let requests = t.elapsed();
    let t = Instant::now();
    let tx = c.transaction().expect("tx");
    for i in 0..BULK {
        tx.prepare_cached("INSERT INTO message (id, chat_id, user_id, content, created_at, updated_at) VALUES (?1, 'bulk', 'u1', 'imported message', 1700000000, 1700000000)").and_then(|mut s| s.execute([format!("b{round}-{i}")])).expect("bulk");
    }
    tx.commit().expect("commit");
    (requests, t.elapsed())
}

fn measure(dir: &Path, synchronous: &str) -> (f64, f64, Duration, Duration) {
    let open = |name: &str, captured: bool| {
        let path = dir.join(format!("{name}-{synchronous}.db"));
        let c = Connection::open(&path).expect("open");
        schema(&c);
        if captured {
            let mut sync = supasync_attach::capture::open(&path, supasync_attach::capture::DEFAULT_WAIT).expect("attach");
            supasync_attach::capture::install(&mut sync).expect("install");
        }
        c.pragma_update(None, "synchronous", synchronous).expect("synchronous");
        c
    };
    let mut plain = open("plain", false);
    let mut captured = open("captured", true);
    let (mut p, mut q) = ((Duration::ZERO, Duration::ZERO), (Duration::ZERO, Duration::ZERO));
    for r in 0..ROUNDS {
        // Alternate who goes first.
        let (a, b) = if r % 2 == 0 {
            let a = round(&mut plain, r);
            (a, round(&mut captured, r))
        } else {
            let b = round(&mut captured, r);
            (round(&mut plain, r), b)
        };
        p = (p.0 + a.0, p.1 + a.1);
        q = (q.0 + b.0, q.1 + b.1);
    }
    let per_request = |d: Duration| d / (ROUNDS * REQUESTS) as u32;
    (q.0.as_secs_f64() / p.0.as_secs_f64(), q.1.as_secs_f64() / p.1.as_secs_f64(), per_request(p.0), per_request(q.0))
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    println!("| writes | with triggers ÷ without |");
    println!("|---|---|");
    for sync in ["FULL", "NORMAL"] {
        let (requests, bulk, plain, captured) = measure(dir.path(), sync);
        println!("| `synchronous = {sync}`: a request's 3 writes in one transaction ({:.0} µs without, {:.0} µs with) | {requests:.2}x |", plain.as_secs_f64() * 1e6, captured.as_secs_f64() * 1e6);
        println!("| `synchronous = {sync}`: {BULK} inserts in one transaction | {bulk:.2}x |");
    }
}
