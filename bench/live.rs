//! Live-sync benchmarks (issue 4 §7), printed, not gated:
//! 1. device A's write → device B's live query, next to supabase-js's own
//!    `postgres_changes` subscription receiving the same writes in the same run;
//! 2. the memory of a device process holding 100k rows: while restoring them, idle and
//!    live, and while live changes stream in.
//!
//! `cargo run --release -p supasync-bench --bin supasync-bench-live` (after
//! `npm install` in bench/). The device of part 2 runs as a child process (this binary
//! with `--device`), so its memory is its own, not the dev server's.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use supasync_core::client::Project;
use supasync_core::engine::Query;
use supasync_core::live::{LiveConfig, Phase};
use supasync_core::live_query::live_query;
use supasync_core::realtime::RealtimeConfig;
use supasync_core::{Engine, EngineConfig, Schema};
use supasync_devserver::DevServer;
use supasync_native::{start_live, system_now_ms, ReqwestHttp, SqliteStore};

type Fail = Box<dyn std::error::Error>;
type Replica = Arc<Engine<SqliteStore, ReqwestHttp>>;

const WRITES: usize = 200;
const ROWS: i64 = 100_000;

fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn replica(url: &str, key: &str, db: &Path) -> Result<Replica, Fail> {
    let schema = Schema::from_json(&std::fs::read_to_string(root().join("examples/chat/schema.json"))?)?;
    let project = Project { url: url.into(), anon_key: key.into() };
    Ok(Arc::new(Engine::open(schema, SqliteStore::open(db)?, ReqwestHttp::new()?, project, EngineConfig::with_clock(system_now_ms)).await?))
}

async fn until_live(l: &supasync_core::live::LiveSync) {
    use futures_util::StreamExt;
    let mut st = l.statuses();
    while let Some(s) = st.next().await {
        if s.phase == Phase::Live {
            return;
        }
    }
}

async fn latency(server: &DevServer, dir: &Path) -> Result<(), Fail> {
    let (url, key) = (server.url(), server.anon_key());
    let a = replica(url, key, &dir.join("a.db")).await?;
    let b = replica(url, key, &dir.join("b.db")).await?;
    a.sign_up("latency@example.com", "bench-password").await?;
    b.sign_in("latency@example.com", "bench-password").await?;
    let (la, _) = start_live(a.clone(), url, key, RealtimeConfig::with_clock(system_now_ms), LiveConfig::default());
    let (lb, _) = start_live(b.clone(), url, key, RealtimeConfig::with_clock(system_now_ms), LiveConfig::default());
    until_live(&la).await;
    until_live(&lb).await;
    let conv = a.insert("conversations", &json!({"title": "latency"})).await?.local_id;

    let mut js = Command::new("node")
        .arg(root().join("bench/realtime-js.mjs"))
        .env("SUPABASE_URL", url)
        .env("SUPABASE_ANON_KEY", key)
        .env("BENCH_EMAIL", "latency@example.com")
        .env("BENCH_PASSWORD", "bench-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = js.stdout.take().ok_or("no stdout")?;
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    if rx.recv_timeout(Duration::from_secs(30))? != "ready" {
        return Err("supabase-js did not subscribe".into());
    }

    let mut q = live_query(&b, "messages", Query { filters: vec![("conversation_id".into(), json!(conv))], ..Default::default() });
    q.next().await;
    let mut sent: Vec<(String, f64)> = vec![];
    let mut ours = vec![];
    for i in 0..WRITES {
        // Writes do not come in step with the server's change poller.
        tokio::time::sleep(Duration::from_millis(20 + (supasync_core::backoff::random_unit() * 100.0) as u64)).await;
        let t0 = wall_ms();
        let id = a.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": format!("m{i}")})).await?.local_id;
        loop {
            let rows = tokio::time::timeout(Duration::from_secs(10), q.next()).await?.ok_or("engine gone")??;
            if rows.iter().any(|r| r.local_id == id) {
                break;
            }
        }
        ours.push(wall_ms() - t0);
        sent.push((id, t0));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got = std::collections::HashMap::new();
    while let Ok(l) = rx.try_recv() {
        if let Ok(v) = serde_json::from_str::<Value>(&l) {
            if let (Some(id), Some(at)) = (v["local_id"].as_str(), v["at_ms"].as_f64()) {
                got.insert(id.to_string(), at);
            }
        }
    }
    drop(js.stdin.take());
    let _ = js.wait();
    let mut theirs: Vec<f64> = sent.iter().filter_map(|(id, t0)| got.get(id).map(|at| at - t0)).collect();
    let (o50, o95) = (pct(&mut ours, 0.5), pct(&mut ours, 0.95));
    let (j50, j95) = (pct(&mut theirs, 0.5), pct(&mut theirs, 0.95));
    println!("1. device A's write -> device B, {WRITES} messages (same writes, same run):");
    println!("   supasync: B's live query shows it      p50 {o50:7.1} ms   p95 {o95:7.1} ms");
    println!("   supabase-js postgres_changes callback   p50 {j50:7.1} ms   p95 {j95:7.1} ms   ({} of {WRITES} received)", theirs.len());
    println!("   our extra at p50                        {:7.1} ms          (goal <= 2 ms)", o50 - j50);
    la.stop();
    lb.stop();
    Ok(())
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Sample a process's RSS until `line` appears on its stdout; returns the peak (KiB).
fn peak_until(pid: u32, lines: &std::sync::mpsc::Receiver<String>, line: &str, secs: u64) -> Result<u64, Fail> {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    let mut peak = 0;
    loop {
        peak = peak.max(rss_kb(pid).unwrap_or(0));
        match lines.recv_timeout(Duration::from_millis(10)) {
            Ok(l) if l == line => return Ok(peak),
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => return Err(format!("device ended before `{line}`: {e}").into()),
        }
        if std::time::Instant::now() > end {
            return Err(format!("no `{line}` within {secs} s").into());
        }
    }
}

fn sample_for(pid: u32, ms: u64) -> (u64, u64) {
    let (mut peak, mut last) = (0, 0);
    let end = std::time::Instant::now() + Duration::from_millis(ms);
    while std::time::Instant::now() < end {
        last = rss_kb(pid).unwrap_or(0);
        peak = peak.max(last);
        std::thread::sleep(Duration::from_millis(10));
    }
    (peak, last)
}

async fn memory(server: &DevServer, dir: &Path) -> Result<(), Fail> {
    let (url, key) = (server.url(), server.anon_key());
    let a = replica(url, key, &dir.join("writer.db")).await?;
    let me = a.sign_up("memory@example.com", "bench-password").await?;
    let conv = a.insert("conversations", &json!({"title": "memory"})).await?.local_id;
    a.push().await?;
    let (db, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    db.execute(
        "insert into public.messages (user_id, conversation_id, role, content, local_id)
         select $1::text::uuid, c.id, 'user', 'message ' || g || ' ' || repeat('lorem ipsum ', 8), 'mem-' || g
         from generate_series(1, $2::bigint) g, public.conversations c where c.local_id = $3",
        &[&me.user_id, &ROWS, &conv],
    )
    .await?;

    let mut child = Command::new(std::env::current_exe()?)
        .arg("--device")
        .arg(dir.join("device.db"))
        .env("SUPABASE_URL", url)
        .env("SUPABASE_ANON_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = child.stdout.take().ok_or("no stdout")?;
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let start = peak_until(pid, &rx, "signed-in", 30)?;
    let restoring = peak_until(pid, &rx, "restored", 300)?;
    let _ = peak_until(pid, &rx, "live", 60)?;
    let (_, idle) = sample_for(pid, 3_000);
    // Live changes stream in: 2,000 messages written on another device.
    let t = std::time::Instant::now();
    let writing = async {
        for i in 0..2_000 {
            a.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": format!("live {i}")})).await?;
        }
        a.push().await?;
        Ok::<(), Fail>(())
    };
    let sampler = tokio::task::spawn_blocking(move || sample_for(pid, 8_000));
    writing.await?;
    let write_s = t.elapsed().as_secs_f64();
    let (streaming, _) = sampler.await?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"count\n");
    }
    let count = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    drop(child.stdin.take());
    let _ = child.wait();
    let file_mb = std::fs::metadata(dir.join("device.db")).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!("2. memory of a device process (resident set), {ROWS} messages on the server:");
    println!("   signed in, empty replica             {:7.1} MB", mb(start));
    println!("   peak while restoring {ROWS} rows     {:7.1} MB   (replica file {file_mb:.0} MB)", mb(restoring));
    println!("   idle and live, {ROWS} rows held       {:7.1} MB", mb(idle));
    println!("   peak while 2,000 live changes arrive {:7.1} MB   (written in {write_s:.1} s; device holds {count} rows)", mb(streaming));
    Ok(())
}

/// The device of part 2: restore, go live, report, answer "count" on stdin, end on EOF.
async fn device(db: &Path) -> Result<(), Fail> {
    let (url, key) = (std::env::var("SUPABASE_URL")?, std::env::var("SUPABASE_ANON_KEY")?);
    let d = replica(&url, &key, db).await?;
    d.sign_in("memory@example.com", "bench-password").await?;
    println!("signed-in");
    d.pull().await?;
    println!("restored");
    let (live, _) = start_live(d.clone(), &url, &key, RealtimeConfig::with_clock(system_now_ms), LiveConfig::default());
    until_live(&live).await;
    println!("live");
    let mut lines = BufReader::new(std::io::stdin()).lines();
    while let Some(Ok(l)) = tokio::task::block_in_place(|| lines.next()) {
        if l == "count" {
            println!("{}", d.query("messages", &Query::default()).await?.len());
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Fail> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--device") {
        return device(Path::new(args.get(2).ok_or("--device DB")?)).await;
    }
    let server = DevServer::builder().migrations(root().join("examples/chat/migrations")).start().await?;
    let dir = tempfile::tempdir()?;
    latency(&server, dir.path()).await?;
    memory(&server, dir.path()).await?;
    Ok(())
}
