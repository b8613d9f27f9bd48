//! `supasync-bench-attach`: an attached database's sync against its floors (issue 24).
//!
//! 1. A first sync of a 1M-row Open WebUI-shaped `chat` table (a JSON document per row)
//!    beside the database's floor for the same rows: one `COPY … FROM STDIN` of them into
//!    a table of the same types, on the same server, in the same run.
//! 2. An incremental sync of 1,000 changed rows in that 1M-row file beside the same
//!    1,000 changes in a 10,000-row file: the time should follow the changes, not the
//!    file (a ratio near 1).
//!
//! Run: `cargo run --release -p supasync-bench --bin supasync-bench-attach [ROWS]`.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use rusqlite::Connection;
use supasync_attach::capture;
use supasync_attach::sync::sync;
use supasync_attach::tenant::Tenant;
use supasync_devserver::DevServer;
use tokio_postgres::{Client, NoTls};

type Fail = Box<dyn std::error::Error>;

const CHANGES: usize = 1_000;
const ROUNDS: usize = 3;

fn doc(i: usize) -> String {
    format!(r#"{{"title": "Chat {i}", "history": {{"currentId": "m2", "messages": {{"m1": {{"role": "user", "content": "How do I sync a SQLite file? #{i}"}}, "m2": {{"role": "assistant", "content": "Attach it, then sync it on a schedule."}}}}}}}}"#)
}

fn make(path: &Path, rows: usize) -> Result<(), Fail> {
    let mut c = Connection::open(path)?;
    c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE chat (id TEXT PRIMARY KEY, user_id TEXT, title TEXT, chat JSON, created_at BIGINT, updated_at BIGINT, archived BOOLEAN)")?;
    let tx = c.transaction()?;
    {
        let mut st = tx.prepare("INSERT INTO chat VALUES (?1, ?2, ?3, ?4, 1733300000, 1733300000, 0)")?;
        for i in 0..rows {
            st.execute((format!("chat-{i:08}"), format!("user-{}", i % 100), format!("Chat {i}"), doc(i)))?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// `CHANGES` rows spread over the file, changed by the app in one transaction.
fn change(path: &Path, rows: usize, round: usize) -> Result<(), Fail> {
    let mut c = Connection::open(path)?;
    let tx = c.transaction()?;
    for k in 0..CHANGES {
        let i = (k * (rows / CHANGES) + round) % rows;
        tx.execute("UPDATE chat SET title = ?2, updated_at = updated_at + 1 WHERE id = ?1", (format!("chat-{i:08}"), format!("Renamed {round}")))?;
    }
    tx.commit()?;
    Ok(())
}

async fn timed_sync(path: &Path, pg: &mut Client, tenant: &Tenant) -> Result<Duration, Fail> {
    let mut db = capture::open(path, Duration::from_secs(5))?;
    let t = Instant::now();
    sync(&mut db, pg, tenant, &mut ()).await?;
    Ok(t.elapsed())
}

/// The floor: the same rows, as CSV, in one COPY into a table of the same types.
async fn copy_floor(path: &Path, pg: &Client) -> Result<Duration, Fail> {
    pg.batch_execute("DROP TABLE IF EXISTS floor_chat; CREATE TABLE floor_chat (id text PRIMARY KEY, user_id text, title text, chat jsonb, created_at bigint, updated_at bigint, archived boolean)").await?;
    let c = Connection::open(path)?;
    let mut csv = Vec::new();
    {
        let mut st = c.prepare("SELECT id, user_id, title, chat, created_at, updated_at, archived FROM chat")?;
        let mut rows = st.query([])?;
        let q = |s: String| format!("\"{}\"", s.replace('"', "\"\""));
        while let Some(r) = rows.next()? {
            let line = format!("{},{},{},{},{},{},{}\n", q(r.get(0)?), q(r.get(1)?), q(r.get(2)?), q(r.get(3)?), r.get::<_, i64>(4)?, r.get::<_, i64>(5)?, r.get::<_, i64>(6)? != 0);
            csv.extend_from_slice(line.as_bytes());
        }
    }
    let t = Instant::now();
    let sink = pg.copy_in("COPY floor_chat FROM STDIN (FORMAT csv)").await?;
    let mut sink = std::pin::pin!(sink);
    for chunk in csv.chunks(1 << 20) {
        sink.send(bytes_of(chunk)).await?;
    }
    sink.finish().await?;
    Ok(t.elapsed())
}

fn bytes_of(chunk: &[u8]) -> std::io::Cursor<Vec<u8>> {
    std::io::Cursor::new(chunk.to_vec())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Fail> {
    let big: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let small = 10_000;
    let server = DevServer::builder().start().await?;
    let (mut pg, conn) = tokio_postgres::connect(server.database_url(), NoTls).await?;
    tokio::spawn(conn);
    let dir = tempfile::tempdir()?;
    let (big_db, small_db) = (dir.path().join("big.db"), dir.path().join("small.db"));
    make(&big_db, big)?;
    make(&small_db, small)?;
    let (big_t, small_t) = (Tenant::new("big", "bench_big")?, Tenant::new("small", "bench_small")?);

    let floor = copy_floor(&big_db, &pg).await?;
    let first = timed_sync(&big_db, &mut pg, &big_t).await?;
    timed_sync(&small_db, &mut pg, &small_t).await?;
    println!("first sync of {big} rows: {:.1} s; COPY of the same rows: {:.1} s; ratio {:.2}x", first.as_secs_f64(), floor.as_secs_f64(), first.as_secs_f64() / floor.as_secs_f64());

    let (mut in_big, mut in_small) = (vec![], vec![]);
    for round in 1..=ROUNDS {
        change(&big_db, big, round)?;
        in_big.push(timed_sync(&big_db, &mut pg, &big_t).await?);
        change(&small_db, small, round)?;
        in_small.push(timed_sync(&small_db, &mut pg, &small_t).await?);
    }
    let (b, s) = (median(in_big), median(in_small));
    println!("incremental sync of {CHANGES} changed rows: {:.0} ms in a {big}-row file, {:.0} ms in a {small}-row file; ratio {:.2}x (median of {ROUNDS})", b.as_secs_f64() * 1000.0, s.as_secs_f64() * 1000.0, b.as_secs_f64() / s.as_secs_f64());
    Ok(())
}
