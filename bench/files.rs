//! `supasync-bench-files`: files in the outbox against their floors (issue 25), side by
//! side in one run against one supasync-dev:
//!
//! - 100 files of 1 MB written on the device, then pushed from the outbox, against
//!   supabase-js uploading the same 100 files one by one (`bench/storage-js.mjs`);
//! - one 200 MB file pushed over TUS, with the process's peak resident memory while it
//!   goes (the dev server runs in this process too, so the figure is conservative);
//! - reading a 1 MB file from the device's cache against downloading it afresh (and
//!   against supabase-js's download).
//!
//! Run: `cargo run --release -p supasync-bench --bin supasync-bench-files` (after
//! `npm install` in `bench/`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use supasync_core::client::Project;
use supasync_core::{Engine, EngineConfig, Schema};
use supasync_devserver::DevServer;
use supasync_native::{system_now_ms, ReqwestHttp, SqliteStore};

type Fail = Box<dyn std::error::Error>;
type Device = Engine<SqliteStore, ReqwestHttp>;

const FILES: usize = 100;
const FILE_BYTES: usize = 1024 * 1024;
const BIG_BYTES: usize = 200 * 1024 * 1024;

fn schema() -> Schema {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Schema::from_json(&std::fs::read_to_string(root.join("examples/chat/schema.json")).expect("schema")).expect("schema")
}

async fn device(server: &DevServer, db: &Path) -> Result<Device, Fail> {
    Ok(Engine::open(
        schema(),
        SqliteStore::open(db)?,
        ReqwestHttp::new()?,
        Project { url: server.url().into(), anon_key: server.anon_key().into() },
        EngineConfig::with_clock(system_now_ms),
    )
    .await?)
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(7).wrapping_add(3)) as u8).collect()
}

/// Reset the process's peak resident memory (Linux: `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory since the last reset, in MB.
fn peak_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    kb / 1024.0
}

#[tokio::main]
async fn main() -> Result<(), Fail> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = DevServer::builder().migrations(root.join("examples/chat/migrations")).start().await?;
    let (pg, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    // A bucket without a size limit (the chat example's allows 50 MB), each user in
    // their own folder.
    pg.batch_execute(
        "insert into storage.buckets (id, name) values ('bench', 'bench');
         create policy bench_rw on storage.objects for all to authenticated
           using (bucket_id = 'bench' and (storage.foldername(name))[1] = auth.uid()::text)
           with check (bucket_id = 'bench' and (storage.foldername(name))[1] = auth.uid()::text);",
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let a = device(&server, &dir.path().join("a.db")).await?;
    let me = a.sign_up("bench-files@example.com", "bench-password").await?;
    let uid = me.user_id.clone();

    // 100 files of 1 MB: written (kept on the device, queued), then pushed.
    let one = bytes(FILE_BYTES);
    let t = Instant::now();
    for i in 0..FILES {
        a.upload_file("bench", &format!("{uid}/f-{i}.bin"), one.clone(), "application/octet-stream").await?;
    }
    let write_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let report = a.push().await?;
    let push_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(report.pushed, FILES, "{report:?}");

    let out = Command::new("node")
        .arg(root.join("bench/storage-js.mjs"))
        .env("SUPABASE_URL", server.url())
        .env("SUPABASE_ANON_KEY", server.anon_key())
        .env("BENCH_EMAIL", "bench-files@example.com")
        .env("BENCH_PASSWORD", "bench-password")
        .env("BENCH_BUCKET", "bench")
        .env("BENCH_FILES", FILES.to_string())
        .env("BENCH_FILE_BYTES", FILE_BYTES.to_string())
        .output()?;
    if !out.status.success() {
        return Err(format!("storage-js bench failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let js: Value = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap_or(b"{}"))?;
    let js_upload = js["upload_ms"].as_f64().unwrap_or(f64::NAN);
    let js_download = js["download_ms"].as_f64().unwrap_or(f64::NAN);

    // A second device reads one file: fresh from Storage, then from its cache.
    let b = device(&server, &dir.path().join("b.db")).await?;
    b.sign_in("bench-files@example.com", "bench-password").await?;
    let path = format!("{uid}/f-0.bin");
    let t = Instant::now();
    let got = b.read_file("bench", &path).await?;
    let fresh_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(got.len(), FILE_BYTES);
    let mut cached = vec![];
    for _ in 0..20 {
        let t = Instant::now();
        b.read_file("bench", &path).await?;
        cached.push(t.elapsed().as_secs_f64() * 1e3);
    }
    cached.sort_by(|x, y| x.total_cmp(y));
    let cached_ms = cached[cached.len() / 2];

    // One 200 MB file: kept on the device, then pushed over TUS; memory while it goes.
    let big = bytes(BIG_BYTES);
    let t = Instant::now();
    a.upload_file("bench", &format!("{uid}/big.bin"), big, "application/octet-stream").await?;
    let big_write_ms = t.elapsed().as_secs_f64() * 1e3;
    reset_peak();
    let t = Instant::now();
    let report = a.push().await?;
    let big_push_ms = t.elapsed().as_secs_f64() * 1e3;
    let big_peak = peak_mb();
    assert_eq!(report.pushed, 1, "{report:?}");

    println!(
        "{}",
        json!({
            "files": FILES, "file_bytes": FILE_BYTES,
            "supasync_write_ms": write_ms, "supasync_push_ms": push_ms, "supabase_js_upload_ms": js_upload,
            "push_vs_supabase_js": push_ms / js_upload,
            "download_fresh_ms": fresh_ms, "download_cached_ms": cached_ms, "supabase_js_download_ms": js_download,
            "big_bytes": BIG_BYTES, "big_write_ms": big_write_ms, "big_push_ms": big_push_ms, "big_push_peak_rss_mb": big_peak,
        })
    );
    Ok(())
}
