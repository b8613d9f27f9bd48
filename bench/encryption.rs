//! `supasync-bench-encryption`: an encrypted SQLite replica (SQLite3MC, AEGIS-256) against a
//! plaintext one, side by side in one run, the two taking turns (issue 27, goal: at
//! most 1.3x plaintext everywhere).
//!
//! One user with one conversation of 10k messages on supasync-dev. Then, each the
//! median of several turns on each replica:
//! 1. a restore of the 10k rows onto a new device (a fresh file each turn);
//! 2. one optimistic write (a message inserted locally), on the restored replicas;
//! 3. a page applied: 1,000 rows written to the store in one batch, as a pull page is;
//! 4. the cold start: the store opened (and keyed), the engine opened, and the first
//!    page of 50 messages read.
//!
//! Run: `cargo run --release -p supasync-bench --bin supasync-bench-encryption`.

mod after_load;

use std::path::Path;
use std::time::Instant;

use supasync_core::client::Project;
use supasync_core::store::{Store, WriteBatch};
use supasync_core::{Engine, EngineConfig, Schema, SelectOptions, SelectRequest};
use supasync_devserver::DevServer;
use supasync_native::{system_now_ms, EncryptionKey, ReqwestHttp, SqliteStore};

const MESSAGES: i32 = 10_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

type Device = Engine<SqliteStore, ReqwestHttp>;

struct Bench {
    schema: Schema,
    project: Project,
    key: EncryptionKey,
}

impl Bench {
    fn store(&self, path: &Path, encrypted: bool) -> Result<SqliteStore, Box<dyn std::error::Error>> {
        Ok(if encrypted { SqliteStore::open_encrypted(path, &self.key)? } else { SqliteStore::open(path)? })
    }

    async fn device(&self, path: &Path, encrypted: bool) -> Result<Device, Box<dyn std::error::Error>> {
        let store = self.store(path, encrypted)?;
        Ok(Engine::open(self.schema.clone(), store, ReqwestHttp::new()?, self.project.clone(), EngineConfig::with_clock(system_now_ms)).await?)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = DevServer::builder().migrations(root.join("examples/chat/migrations")).start().await?;
    let (db, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let bench = Bench {
        schema: Schema::from_json(&std::fs::read_to_string(root.join("examples/chat/schema.json"))?)?,
        project: Project { url: server.url().into(), anon_key: server.anon_key().into() },
        key: EncryptionKey::from_bytes(&[0x5a; 32])?,
    };
    let dir = tempfile::tempdir()?;
    let first = bench.device(&dir.path().join("signup.db"), false).await?;
    let session = first.sign_up("cipher-bench@example.com", "bench-password").await?;
    db.execute(
        "insert into public.conversations (user_id, title, local_id) values ($1::text::uuid, 'ten thousand', 'c-1')",
        &[&session.user_id],
    )
    .await?;
    db.execute(
        "insert into public.messages (user_id, conversation_id, role, content, local_id, timestamp)
         select $1::text::uuid, c.id, 'user', 'message ' || m || ' lorem ipsum dolor sit amet, consectetur adipiscing elit', 'm-' || m, now() - make_interval(secs => m)
         from public.conversations c, generate_series(1, $2::int) m where c.local_id = 'c-1'",
        &[&session.user_id, &MESSAGES],
    )
    .await?;
    after_load::settle(&db, &["public.messages", "public.conversations"]).await?;

    let modes = [false, true];
    let name = |e: bool| if e { "encrypted" } else { "plaintext" };
    let mut restore: [Vec<f64>; 2] = Default::default();
    let mut kept: Vec<(bool, std::path::PathBuf)> = vec![];
    for turn in 0..5 {
        // Alternate which goes first, so neither always finds the other's warm caches.
        for &enc in if turn % 2 == 0 { &modes[..] } else { &[true, false][..] } {
            let path = dir.path().join(format!("restore-{turn}-{}.db", name(enc)));
            let device = bench.device(&path, enc).await?;
            device.set_session(session.clone()).await?;
            let t = Instant::now();
            let pulled = device.pull().await?;
            restore[enc as usize].push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(pulled.rows >= MESSAGES as usize, "restored {} rows", pulled.rows);
            if turn == 0 {
                kept.push((enc, path));
            }
        }
    }

    // Writes and pages on the restored replicas, taking turns.
    let mut devices = vec![];
    for (enc, path) in &kept {
        let d = bench.device(path, *enc).await?;
        d.set_session(session.clone()).await?;
        devices.push((*enc, d));
    }
    devices.sort_by_key(|(enc, _)| *enc);
    let conv = devices[0].1.select(&SelectRequest::parse("conversations?select=*&local_id=eq.c-1")?.with_options(SelectOptions::default())).await?;
    assert_eq!(conv.rows.len(), 1);
    let mut write: [Vec<f64>; 2] = Default::default();
    for i in 0..400 {
        for (enc, d) in &devices {
            let row = serde_json::json!({"conversation_id": "c-1", "role": "user", "content": format!("written here {i}")});
            let t = Instant::now();
            d.insert("messages", &row).await?;
            write[*enc as usize].push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let mut page: [Vec<f64>; 2] = Default::default();
    // Each replica's page is made of its own rows (the restored ones and the writes it
    // just made), so both end holding the same shape of data for the cold start.
    let mut own_rows = vec![];
    for (_, d) in &devices {
        own_rows.push(d.store.scan("messages").await?);
    }
    for turn in 0..10 {
        for ((enc, d), rows) in devices.iter().zip(&own_rows) {
            let batch: Vec<_> = rows
                .iter()
                .skip((turn * 1000) % rows.len().saturating_sub(1000).max(1))
                .take(1000)
                .cloned()
                .map(|mut r| {
                    if let Some(m) = r.mirror.as_mut() {
                        m.insert("content".into(), serde_json::json!(format!("changed on the server, turn {turn}")));
                    }
                    r
                })
                .collect();
            let t = Instant::now();
            d.store.apply(WriteBatch { put_rows: batch, ..Default::default() }).await?;
            page[*enc as usize].push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let paths: Vec<_> = kept.clone();
    drop(devices);

    let first_page = SelectRequest::parse("messages?select=*&conversation_id=eq.c-1&order=timestamp.desc&limit=50")?.with_options(SelectOptions::default());
    let mut cold: [Vec<f64>; 2] = Default::default();
    for _ in 0..15 {
        for (enc, path) in &paths {
            let t = Instant::now();
            let d = bench.device(path, *enc).await?;
            let n = d.select(&first_page).await?.rows.len();
            cold[*enc as usize].push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(n, 50);
        }
    }

    println!("encrypted (AEGIS-256) ÷ plaintext SQLite replica, medians, taking turns in one run:");
    for (what, v) in [
        ("restore of 10k rows (a new device)", &restore),
        ("one optimistic write", &write),
        ("a page of 1,000 rows applied", &page),
        ("cold start: open, key, first 50 messages", &cold),
    ] {
        let (p, e) = (median(v[0].clone()), median(v[1].clone()));
        println!("   {what:42} encrypted {e:9.3} ms   plaintext {p:9.3} ms   ratio {:5.2}x", e / p);
    }
    Ok(())
}
