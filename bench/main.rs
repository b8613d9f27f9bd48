//! `supasync-bench`: supasync measured side by side with what it replaces, in one run
//! (these machines are shared and noisy: compare the ratios, not the milliseconds).
//!
//! 1. An optimistic native write (row + outbox entry, one SQLite transaction) against a
//!    raw rusqlite single-row transaction in the same directory. Goal: p50 ≤ 2×.
//! 2. Pushing 10k queued messages against the same rows in one INSERT straight into
//!    PostgreSQL (goal ≤ 3×), and against supabase-js inserting them one by one (goal
//!    ≥ 20× faster; supabase-js does 1,000 and the time is scaled to 10k).
//! 3. Restoring 10k messages on a new device against its floor, the same rows read
//!    straight out of PostgreSQL in one SELECT plus written into a bare SQLite table
//!    (goal ≤ 2×), and against supabase-js paging through them.
//!
//! Run: `cargo run --release -p supasync-bench` (needs `npm install` in `bench/`).
//! `BENCH_ONLY=restore` loads the rows once and restores them ten times, without the
//! other measurements: for a profiler (`perf record`) to see the restore alone.
//! `BENCH_ROWS=20000` pushes and restores that many rows instead of 10,000.
//! Next to each restore and its floor, the machine's busy time over all its cores
//! (`/proc/stat`): on one machine the server's work (PostgreSQL, the dev server)
//! shares the cores with the device's, and a ratio is bounded by what both need.

mod after_load;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use supasync_core::client::Project;
use supasync_core::{Engine, EngineConfig, Schema};
use supasync_devserver::DevServer;
use supasync_native::{system_now_ms, ReqwestHttp, SqliteStore};

const WRITES: usize = 2000;
/// Rows pushed and restored: 10,000, or `BENCH_ROWS`.
static ROWS: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| std::env::var("BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000));
const JS_ONE_BY_ONE: usize = 1000;
/// Measurements paired with their floor, for the push and the restore.
const PAIRS: usize = 5;

type Device = Engine<SqliteStore, ReqwestHttp>;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The lowest and highest of `v`, as `1.83-2.10x`.
fn range(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.2}-{hi:.2}x")
}

/// CPU time this thread has used, in ms: the device's own work in a restore (the bench
/// runs the engine on the main thread; the dev server and the HTTP connections run on
/// the runtime's workers), a steadier figure than wall time on a shared machine.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

/// The machine's busy time so far, summed over its cores (every process: the device,
/// the dev server and PostgreSQL), from `/proc/stat`, in milliseconds; NaN where there
/// is none. Its resolution is the kernel's tick (10 ms): compare medians of runs.
fn machine_busy_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return f64::NAN;
    };
    let Some(cpu) = stat.lines().next() else {
        return f64::NAN;
    };
    // user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    let ticks: Vec<f64> = cpu.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    if ticks.len() < 8 {
        return f64::NAN;
    }
    let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7];
    busy * 1000.0 / 100.0
}

fn body(i: usize) -> String {
    format!("{i:06} {}", "lorem ipsum dolor sit amet ".repeat(6))
}

fn schema() -> Schema {
    Schema::from_json(r#"{"tables":[{"name":"conversations"},{"name":"messages","references":{"conversation_id":"conversations"}}]}"#)
        .expect("schema")
}

async fn device(url: &str, key: &str, db: &Path) -> Device {
    device_with(url, key, db, EngineConfig::with_clock(system_now_ms)).await
}

async fn device_with(url: &str, key: &str, db: &Path, cfg: EngineConfig) -> Device {
    Engine::open(
        schema(),
        SqliteStore::open(db).expect("store"),
        ReqwestHttp::new().expect("http"),
        Project { url: url.into(), anon_key: key.into() },
        cfg,
    )
    .await
    .expect("engine")
}

/// A network's round trip for [`restore_over_latency`], in ms.
const LATENCY_MS: u64 = 50;

/// Restores through a proxy that holds the start of every answer [`LATENCY_MS`] (a
/// phone's round trip to a hosted project), split into ranges (the default) against
/// one walk (`restore_ranges: 1`), alternating, three of each on new files; medians.
async fn restore_over_latency(server: &DevServer, dir: &Path) -> Result<(f64, f64, usize, usize), Box<dyn std::error::Error>> {
    use supasync_devserver::fault_proxy::{FaultProxy, Mode};
    let proxy = FaultProxy::start(server.url().trim_start_matches("http://").to_string()).await?;
    proxy.set(Mode::Latency(std::time::Duration::from_millis(LATENCY_MS)));
    let (mut split, mut one, mut requests) = (vec![], vec![], (0, 0));
    for rep in 0..3 {
        for ranges in [3, 1] {
            let cfg = EngineConfig { restore_ranges: ranges, ..EngineConfig::with_clock(system_now_ms) };
            let d = device_with(&proxy.url(), server.anon_key(), &dir.join(format!("latency-{rep}-{ranges}.db")), cfg).await;
            d.sign_in("bench@example.com", "bench-password").await?;
            let t = Instant::now();
            let r = d.pull().await?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            assert!(r.rows > *ROWS, "every message and the conversation: {r:?}");
            if ranges == 1 {
                one.push(ms);
                requests.1 = r.requests;
            } else {
                split.push(ms);
                requests.0 = r.requests;
            }
        }
    }
    Ok((pct(&mut split, 0.5), pct(&mut one, 0.5), requests.0, requests.1))
}

async fn local_writes() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let raw = rusqlite::Connection::open(dir.path().join("raw.db"))?;
    raw.pragma_update(None, "page_size", supasync_native::store::PAGE_SIZE)?; // as the store
    raw.pragma_update(None, "journal_mode", "WAL")?;
    raw.pragma_update(None, "synchronous", "NORMAL")?;
    raw.pragma_update(None, "wal_autocheckpoint", supasync_native::store::WAL_CHECKPOINT_PAGES)?; // as the store
    raw.execute_batch("CREATE TABLE messages (id TEXT PRIMARY KEY, data TEXT NOT NULL)")?;
    let ours = device("http://127.0.0.1:9", "", &dir.path().join("ours.db")).await;
    ours.set_session(supasync_core::auth::Session {
        access_token: String::new(),
        refresh_token: String::new(),
        expires_at: i64::MAX,
        user_id: "bench".into(),
        email: None,
    })
    .await?;
    let conv = ours.insert("conversations", &json!({"title": "bench"})).await?.local_id;
    let (mut t_raw, mut t_ours) = (vec![], vec![]);
    for block in 0..(WRITES / 200) {
        for i in 0..200 {
            let n = block * 200 + i;
            let row = json!({"conversation_id": conv, "role": "user", "content": body(n)});
            let t = Instant::now();
            let tx = raw.unchecked_transaction()?;
            tx.execute("INSERT INTO messages (id, data) VALUES (?1, ?2)", (format!("r{n}"), row.to_string()))?;
            tx.commit()?;
            t_raw.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            ours.insert("messages", &row).await?;
            t_ours.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    let (r50, r95, o50, o95) = (pct(&mut t_raw, 0.5), pct(&mut t_raw, 0.95), pct(&mut t_ours, 0.5), pct(&mut t_ours, 0.95));
    println!("1. one local write, {WRITES} each, interleaved (WAL, synchronous=NORMAL):");
    println!("   raw rusqlite transaction        p50 {r50:7.1} µs   p95 {r95:7.1} µs");
    println!("   supasync insert (row + outbox)  p50 {o50:7.1} µs   p95 {o95:7.1} µs");
    println!("   ratio p50                       {:7.2}x          (goal <= 2x)", o50 / r50);
    Ok(())
}

async fn queue(d: &Device, conv: &str) -> Result<(), Box<dyn std::error::Error>> {
    for i in 0..*ROWS {
        d.insert("messages", &json!({"conversation_id": conv, "role": "user", "content": body(i)})).await?;
    }
    Ok(())
}

async fn network() -> Result<(), Box<dyn std::error::Error>> {
    let restore_only = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "restore");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = DevServer::builder().migrations(root.join("examples/chat/migrations")).start().await?;
    let (db, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let dir = tempfile::tempdir()?;
    let a = device(server.url(), server.anon_key(), &dir.path().join("a.db")).await;
    let me = a.sign_up("bench@example.com", "bench-password").await?;
    let conv = a.insert("conversations", &json!({"title": "bench"})).await?.local_id;
    a.push().await?;
    let conv_server: String = db
        .query_one("select id::text from public.conversations where local_id = $1", &[&conv])
        .await?
        .get(0);

    // Push vs the PostgreSQL floor, alternating, 5 pairs; the ratio is the median of
    // each pair's own ratio (a pair runs back to back, so a machine that slows for a
    // few seconds slows both sides of it).
    let (mut push_ms, mut floor_ms, mut push_ratios, mut requests) = (vec![], vec![], vec![], 0);
    for rep in 0..if restore_only { 1 } else { PAIRS } {
        db.batch_execute("delete from public.messages").await?;
        let ids: Vec<String> = (0..*ROWS).map(|i| format!("floor-{rep}-{i}")).collect();
        let bodies: Vec<String> = (0..*ROWS).map(body).collect();
        let t = Instant::now();
        db.execute(
            "insert into public.messages (user_id, conversation_id, role, content, local_id)
             select $1::text::uuid, $2::text::uuid, 'user', b, l from unnest($3::text[], $4::text[]) as x(b, l)",
            &[&me.user_id, &conv_server, &bodies, &ids],
        )
        .await?;
        floor_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        db.batch_execute("delete from public.messages").await?;
        queue(&a, &conv).await?;
        let t = Instant::now();
        let r = a.push().await?;
        push_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        push_ratios.push(push_ms[rep] / floor_ms[rep]);
        assert_eq!(r.pushed, *ROWS, "push: {r:?}");
        requests = r.requests;
    }
    let (p, f) = (pct(&mut push_ms, 0.5), pct(&mut floor_ms, 0.5));
    let (push_ratio, push_range) = (pct(&mut push_ratios, 0.5), range(&push_ratios));

    // Restore on a new device vs its floor: the same rows read straight out of
    // PostgreSQL (one SELECT, as JSON text) plus written into a bare SQLite table (one
    // transaction, WAL). 5 pairs, each restore on a fresh file; the ratio is the
    // median of the pairs' own ratios, as for the push.
    // The table was just loaded (the last push): as a server would be a minute later.
    after_load::settle(&db, &["public.messages"]).await?;
    let (mut restore_runs, mut read_runs, mut write_runs, mut cpu_runs, mut restore_ratios) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut busy_runs, mut floor_busy_runs) = (vec![], vec![]);
    let mut pulled = Default::default();
    for rep in 0..if restore_only { 10 } else { PAIRS } {
        let floor_busy = machine_busy_ms();
        let t = Instant::now();
        let docs: Vec<String> = db
            .query("select row_to_json(m)::text from public.messages m where user_id = $1::text::uuid", &[&me.user_id])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        read_runs.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let bare = rusqlite::Connection::open(dir.path().join(format!("bare-{rep}.db")))?;
        bare.pragma_update(None, "page_size", supasync_native::store::PAGE_SIZE)?; // as the store
        bare.pragma_update(None, "journal_mode", "WAL")?;
        bare.pragma_update(None, "synchronous", "NORMAL")?;
        bare.pragma_update(None, "wal_autocheckpoint", supasync_native::store::WAL_CHECKPOINT_PAGES)?; // as the store
        bare.execute_batch("create table rows (n integer primary key, doc text not null)")?;
        let tx = bare.unchecked_transaction()?;
        {
            let mut ins = tx.prepare("insert into rows (doc) values (?1)")?;
            for d in &docs {
                ins.execute([d])?;
            }
        }
        tx.commit()?;
        write_runs.push(t.elapsed().as_secs_f64() * 1000.0);
        floor_busy_runs.push(machine_busy_ms() - floor_busy);
        assert_eq!(docs.len(), *ROWS);

        let b = device(server.url(), server.anon_key(), &dir.path().join(format!("b-{rep}.db"))).await;
        b.sign_in("bench@example.com", "bench-password").await?;
        let (t, cpu, busy) = (Instant::now(), thread_cpu_ms(), machine_busy_ms());
        pulled = b.pull().await?;
        restore_runs.push(t.elapsed().as_secs_f64() * 1000.0);
        cpu_runs.push(thread_cpu_ms() - cpu);
        busy_runs.push(machine_busy_ms() - busy);
        restore_ratios.push(restore_runs[rep] / (read_runs[rep] + write_runs[rep]));
    }
    let (restore_ratio, restore_range) = (pct(&mut restore_ratios, 0.5), range(&restore_ratios));
    let pulled: supasync_core::pull::PullReport = pulled;
    let (restore_ms, read_ms, write_ms) = (pct(&mut restore_runs, 0.5), pct(&mut read_runs, 0.5), pct(&mut write_runs, 0.5));
    let (lat_split, lat_one, lat_split_req, lat_one_req) = restore_over_latency(&server, dir.path()).await?;
    let latency_line = format!(
        "   through a {LATENCY_MS} ms round trip: split in ranges {lat_split:9.1} ms ({lat_split_req} requests), one walk {lat_one:.1} ms ({lat_one_req} requests): {:.2}x faster",
        lat_one / lat_split
    );
    if restore_only {
        println!("{latency_line}");
        println!("restore {restore_ms:.1} ms ({} requests; device CPU {:.1} ms, all cores busy {:.0} ms), floor {:.1} ms ({read_ms:.1} + {write_ms:.1}; all cores busy {:.0} ms), ratio {restore_ratio:.2}x ({restore_range}); runs {restore_runs:.0?}",
            pulled.requests, pct(&mut cpu_runs, 0.5), pct(&mut busy_runs, 0.5), read_ms + write_ms, pct(&mut floor_busy_runs, 0.5));
        return Ok(());
    }

    // supabase-js, same server, same user.
    let out = Command::new("node")
        .arg(root.join("bench/supabase-js.mjs"))
        .env("SUPABASE_URL", server.url())
        .env("SUPABASE_ANON_KEY", server.anon_key())
        .env("BENCH_EMAIL", "bench@example.com")
        .env("BENCH_PASSWORD", "bench-password")
        .env("BENCH_CONVERSATION", &conv_server)
        .env("BENCH_ONE_BY_ONE", JS_ONE_BY_ONE.to_string())
        .env("BENCH_RESTORE", ROWS.to_string())
        .output()?;
    if !out.status.success() {
        return Err(format!("supabase-js bench failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let js: Value = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap_or(b"{}"))?;
    let js_one = js["one_by_one_ms"].as_f64().unwrap_or(f64::NAN) * (*ROWS as f64 / JS_ONE_BY_ONE as f64);
    let js_restore = js["restore_ms"].as_f64().unwrap_or(f64::NAN);

    println!("2. pushing {} queued messages ({PAIRS} pairs, each push right after its floor; medians):", *ROWS);
    println!("   supasync push ({requests} requests)       {p:9.1} ms");
    println!("   PostgreSQL, one INSERT (floor)     {f:9.1} ms   ratio {push_ratio:6.2}x  ({push_range}; goal <= 3x)");
    println!("   supabase-js insert() one by one    {js_one:9.1} ms   ({JS_ONE_BY_ONE} rows timed, scaled to {})", *ROWS);
    println!("   supasync is                        {:9.1}x faster        (goal >= 20x)", js_one / p);
    println!("3. restoring {} rows on a new device (SQLite file store, {PAIRS} pairs, each restore right after its floor; medians):", pulled.rows);
    println!("   supasync pull                      {restore_ms:9.1} ms   ({} requests, pages of 1,000; the device's own CPU {:.1} ms; all cores busy {:.0} ms)", pulled.requests, pct(&mut cpu_runs, 0.5), pct(&mut busy_runs, 0.5));
    println!("   floor: one SELECT + bare SQLite    {:9.1} ms   ({read_ms:.1} + {write_ms:.1}; all cores busy {:.0} ms)   ratio {restore_ratio:6.2}x  ({restore_range}; goal <= 2x)", read_ms + write_ms, pct(&mut floor_busy_runs, 0.5));
    println!("   supabase-js paging 1000/page       {js_restore:9.1} ms   ({} rows, into memory only)", js["restore_rows"]);
    println!("   supasync is                        {:9.1}x faster        (5x was the old goal: the same server serves both)", js_restore / restore_ms);
    println!("{latency_line}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var("BENCH_ONLY").is_err() {
        local_writes().await?;
    }
    network().await
}
