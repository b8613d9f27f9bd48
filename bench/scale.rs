//! `supasync-bench-scale`: how the cost grows with the data (issue 12 §3). For each
//! size (10k, 100k, 1M messages by default; `SCALE_SIZES=10000,100000` to choose), one
//! user's chat is seeded straight into PostgreSQL (one conversation per 50 messages),
//! then a new device restores it and is measured on the replica it ends with:
//!
//! - restore time and rows/s (should stay flat per row) and the device's peak
//!   resident memory while restoring (should stay flat; goal < 64 MB at 1M);
//! - one optimistic write, p50, on that replica ÷ the same on an empty replica (goal
//!   ≤ 1.2×);
//! - a query by an indexed column (`conversation_id`) returning 50 rows, p50 (goal:
//!   independent of the size within 1.5×);
//! - the replica's files ÷ the same rows as JSON text.
//!
//! The device runs as a child process (this binary with `--device`), so the memory is
//! its own, not the dev server's. Run: `cargo run --release -p supasync-bench --bin
//! supasync-bench-scale`.

mod after_load;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use supasync_core::client::Project;
use supasync_core::engine::Query;
use supasync_core::{Engine, EngineConfig, Schema};
use supasync_devserver::DevServer;
use supasync_native::{system_now_ms, ReqwestHttp, SqliteStore};

type Fail = Box<dyn std::error::Error>;

const PER_CONVERSATION: i64 = 50;
const SAMPLES: usize = 300;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn schema() -> Schema {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Schema::from_json(
        &std::fs::read_to_string(root.join("examples/chat/schema.json")).expect("schema"),
    )
    .expect("schema")
}

async fn engine(url: &str, key: &str, db: &Path) -> Result<Engine<SqliteStore, ReqwestHttp>, Fail> {
    Ok(Engine::open(
        schema(),
        SqliteStore::open(db)?,
        ReqwestHttp::new()?,
        Project {
            url: url.into(),
            anon_key: key.into(),
        },
        EngineConfig::with_clock(system_now_ms),
    )
    .await?)
}

/// p50 of one optimistic insert (µs).
async fn write_p50(e: &Engine<SqliteStore, ReqwestHttp>, conversation: &str) -> Result<f64, Fail> {
    let mut t = vec![];
    for i in 0..SAMPLES {
        let row = json!({"conversation_id": conversation, "role": "user", "content": format!("probe {i}")});
        let s = Instant::now();
        e.insert("messages", &row).await?;
        t.push(s.elapsed().as_secs_f64() * 1e6);
    }
    Ok(pct(&mut t, 0.5))
}

fn file_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// The device: restore, then measure on the result; one JSON line on stdout.
async fn device(url: &str, key: &str, email: &str, dir: &Path) -> Result<(), Fail> {
    // An empty replica's write first, on a file of its own.
    let empty = engine(url, key, &dir.join("empty.db")).await?;
    empty.sign_in(email, "scale-password").await?;
    let probe_conv = empty
        .insert("conversations", &json!({"title": "probe"}))
        .await?
        .local_id;
    let empty_write = write_p50(&empty, &probe_conv).await?;
    drop(empty);

    let db = dir.join("replica.db");
    let e = engine(url, key, &db).await?;
    e.sign_in(email, "scale-password").await?;
    println!("restoring");
    let t = Instant::now();
    let pulled = e.pull().await?;
    let restore_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!("restored");

    // Queries by conversation (50 rows each), over conversations spread through the data.
    let convs = e.query("conversations", &Query::default()).await?;
    let mut q = vec![];
    for i in 0..SAMPLES.min(convs.len()) {
        let c = &convs[(i * convs.len()) / SAMPLES.min(convs.len())];
        let query = Query {
            filters: vec![("conversation_id".into(), json!(c.local_id))],
            ..Default::default()
        };
        let s = Instant::now();
        let rows = e.query("messages", &query).await?;
        q.push(s.elapsed().as_secs_f64() * 1e6);
        assert_eq!(
            rows.len() as i64,
            PER_CONVERSATION,
            "50 messages per conversation"
        );
    }
    let big_write = write_p50(&e, &convs[0].local_id).await?;
    // Closed, so SQLite checkpoints its write-ahead log into the file and removes it.
    drop(e);
    let size = file_bytes(&db);
    println!(
        "{}",
        json!({"rows": pulled.rows, "requests": pulled.requests, "restore_ms": restore_ms, "empty_write_us": empty_write,
               "write_us": big_write, "query_us": pct(&mut q, 0.5), "file_bytes": size})
    );
    Ok(())
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Seed `n` messages for a fresh user straight into PostgreSQL; returns the email and
/// the size of those rows as JSON text.
async fn seed(
    server: &DevServer,
    db: &tokio_postgres::Client,
    n: i64,
) -> Result<(String, u64), Fail> {
    let email = format!("scale{n}@example.com");
    let res = reqwest::Client::new()
        .post(format!("{}/auth/v1/signup", server.url()))
        .header("apikey", server.anon_key())
        .json(&json!({"email": email, "password": "scale-password"}))
        .send()
        .await?;
    let user: Value = res.json().await?;
    let uid = user["user"]["id"].as_str().ok_or("no user id")?.to_string();
    let convs = n / PER_CONVERSATION;
    db.execute(
        "insert into public.conversations (user_id, title, local_id)
         select $1::text::uuid, 'conversation ' || g, 'c-' || g from generate_series(1, $2::bigint) g",
        &[&uid, &convs],
    )
    .await?;
    db.execute(
        "insert into public.messages (user_id, conversation_id, role, content, local_id)
         select $1::text::uuid, c.id, 'user', 'message ' || g || ' lorem ipsum dolor sit amet, consectetur adipiscing elit', 'm-' || g
         from generate_series(0, $2::bigint - 1) g
         join public.conversations c on c.user_id = $1::text::uuid and c.local_id = 'c-' || (g / 50 + 1)",
        &[&uid, &n],
    )
    .await?;
    after_load::settle(db, &["public.conversations", "public.messages"]).await?;
    let json: i64 = db
        .query_one(
            "select (select coalesce(sum(length(row_to_json(m)::text)), 0) from public.messages m where user_id = $1::text::uuid)
                  + (select coalesce(sum(length(row_to_json(c)::text)), 0) from public.conversations c where user_id = $1::text::uuid)",
            &[&uid],
        )
        .await?
        .get(0);
    Ok((email, json as u64))
}

/// One restore of `email`'s `n` rows by a new device, a process of its own: its answer
/// (times, sizes) and its peak memory while restoring, in KiB.
async fn restore_on_new_device(
    server: &DevServer,
    email: &str,
    n: i64,
) -> Result<(Value, u64), Fail> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--device", server.url(), server.anon_key(), email])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let out = child.stdout.take().ok_or("no stdout")?;
    // Sample the device's memory every 20 ms while it restores (until it says
    // "restored"; its measurements afterwards load rows of their own).
    let restoring = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = restoring.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while flag.load(std::sync::atomic::Ordering::SeqCst) {
            let Some(kb) = rss_kb(pid) else { break };
            peak = peak.max(kb);
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let mut result = Value::Null;
    for line in BufReader::new(out).lines() {
        let line = line?;
        if line == "restored" {
            restoring.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            result = v;
        }
    }
    restoring.store(false, std::sync::atomic::Ordering::SeqCst);
    let status = child.wait()?;
    let peak_kb = sampler.join().map_err(|_| "sampler")?;
    if !status.success() {
        return Err(format!("the device failed for {n} rows").into());
    }
    Ok((result, peak_kb))
}

async fn parent() -> Result<(), Fail> {
    let sizes: Vec<i64> = std::env::var("SCALE_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = DevServer::builder()
        .migrations(root.join("examples/chat/migrations"))
        .start()
        .await?;
    let (db, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let mut lines = vec![];
    for n in sizes {
        let (email, json_bytes) = seed(&server, &db, n).await?;
        // A restore under a second is at the mercy of the machine's moment: those are
        // restored three times (a new device each) and the median kept; 1M once.
        let mut runs = vec![];
        for _ in 0..if n < 1_000_000 { 3 } else { 1 } {
            runs.push(restore_on_new_device(&server, &email, n).await?);
        }
        runs.sort_by(|a, b| {
            a.0["restore_ms"]
                .as_f64()
                .partial_cmp(&b.0["restore_ms"].as_f64())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let all: Vec<String> = runs
            .iter()
            .map(|r| {
                format!(
                    "{:.0}",
                    r.0["rows"].as_f64().unwrap_or(f64::NAN)
                        / (r.0["restore_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0)
                )
            })
            .collect();
        let (result, peak_kb) = runs.swap_remove(runs.len() / 2);
        println!("{n} rows: rows/s of each restore {}", all.join(", "));
        lines.push((n, result, peak_kb, json_bytes));
    }
    println!("| messages | restore | rows/s | peak memory restoring | write p50 (÷ empty) | query, 50 rows by conversation, p50 | replica files ÷ JSON |");
    println!("|---|---|---|---|---|---|---|");
    for (n, r, peak_kb, json_bytes) in &lines {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        let rows = f("rows");
        println!(
            "| {n} | {:.1} s ({} requests) | {:.0} | {:.1} MB | {:.1} µs ({:.2}×) | {:.1} µs | {:.1} MB ÷ {:.1} MB = {:.2}× |",
            f("restore_ms") / 1000.0,
            r["requests"],
            rows / (f("restore_ms") / 1000.0),
            *peak_kb as f64 / 1024.0,
            f("write_us"),
            f("write_us") / f("empty_write_us"),
            f("query_us"),
            f("file_bytes") / 1e6,
            *json_bytes as f64 / 1e6,
            f("file_bytes") / *json_bytes as f64,
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Fail> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 6 && args[1] == "--device" {
        return device(&args[2], &args[3], &args[4], &PathBuf::from(&args[5])).await;
    }
    parent().await
}
