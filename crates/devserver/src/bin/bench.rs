//! `supasync-dev-bench`: how much the dev server adds on top of PostgreSQL, measured side
//! by side in one run (absolute numbers on shared machines are noise; ratios are not).
//!
//! Latency is measured first: after a bulk load, every poll of the slot re-decodes the
//! WAL since the slot's restart point (which PostgreSQL 15 advances every 15 s), as
//! Supabase's own poller does, and that would be measured instead of the steady state.
//!
//! 1. A 10k-row bulk insert through `/rest/v1` (one POST, as supabase-js sends an array)
//!    against the same rows inserted straight into PostgreSQL in one statement. Runs
//!    alternate, 5 each after a warm-up; medians are compared. Goal: ≤ 2× the floor.
//! 2. postgres_changes delivery latency with the default 100 ms poll: a WebSocket client
//!    subscribed to a table, 200 single-row inserts at ~25/s, commit → frame received.
//!    Goal: p50 ≤ half the poll interval + 10 ms.
//!
//! It prints and never fails on a missed goal.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use supasync_devserver::DevServer;
use tokio_tungstenite::tungstenite::Message;

const ROWS: usize = 10_000;
const REPS: usize = 5;
const LATENCY_SAMPLES: usize = 200;

const SCHEMA: &str = "
create table public.bench_messages (
  id bigserial primary key,
  user_id uuid not null,
  local_id text not null,
  conversation text not null,
  body text not null,
  seq int not null,
  created_at timestamptz not null default now(),
  unique (user_id, local_id)
);
create table public.bench_latency (id bigserial primary key, sent_at_us bigint not null);
alter publication supabase_realtime add table public.bench_latency;
";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn rows(user: &str, run: usize) -> Vec<Value> {
    (0..ROWS)
        .map(|i| {
            json!({
                "user_id": user,
                "local_id": format!("r{run}-{i:06}"),
                "conversation": "0195a4b2-7c1e-7d3a-9f00-00000000c0de",
                "body": format!("{i:06} {}", "lorem ipsum dolor sit amet ".repeat(6)),
                "seq": i,
            })
        })
        .collect()
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    supasync_devserver::init_logging();
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("001_bench.sql"), SCHEMA)?;
    eprintln!("starting supasync-dev (private cluster, fsync on)…");
    let server = DevServer::builder().migrations(dir.path()).start().await?;
    let (db, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let http = reqwest::Client::new();
    let user = "7b0e2a9c-1111-4c4c-8888-000000000001";

    // ---- 2. postgres_changes latency ----
    let ws_url = format!(
        "{}/realtime/v1/websocket?apikey={}&vsn=1.0.0",
        server.url().replace("http://", "ws://"),
        server.service_role_key()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
    let join = json!({"topic":"realtime:bench","event":"phx_join","ref":"1","join_ref":"1",
        "payload":{"config":{"postgres_changes":[{"event":"INSERT","schema":"public","table":"bench_latency"}]},
                   "access_token": server.service_role_key()}});
    ws.send(Message::Text(join.to_string().into())).await?;
    // Wait for "Subscribed to PostgreSQL".
    loop {
        let Some(m) = ws.next().await else { return Err("socket closed".into()) };
        if let Message::Text(t) = m? {
            if t.contains("Subscribed to PostgreSQL") {
                break;
            }
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i64, f64)>();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let received = now_us();
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                if v["event"] == "postgres_changes" {
                    if let Some(sent) = v["payload"]["data"]["record"]["sent_at_us"].as_i64() {
                        let id = v["payload"]["data"]["record"]["id"].as_i64().unwrap_or(-1);
                        let _ = tx.send((id, (received - sent) as f64 / 1000.0));
                    }
                }
            }
        }
    });
    let mut lat = vec![];
    let mut ids = vec![];
    for _ in 0..LATENCY_SAMPLES {
        // sent_at is taken right before the commit; the insert autocommits.
        db.execute("insert into public.bench_latency (sent_at_us) values ($1)", &[&now_us()]).await?;
        tokio::time::sleep(Duration::from_millis(40)).await;
        while let Ok((id, x)) = rx.try_recv() {
            ids.push(id);
            lat.push(x);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while lat.len() < LATENCY_SAMPLES && Instant::now() < deadline {
        if let Ok(Some((id, x))) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            ids.push(id);
            lat.push(x);
        }
    }
    reader.abort();
    let got = lat.len();
    if got < LATENCY_SAMPLES {
        let missing: Vec<i64> = (1..=LATENCY_SAMPLES as i64).filter(|i| !ids.contains(i)).collect();
        eprintln!("missing change ids: {missing:?}");
    }
    let (p50, p95) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.95));
    println!("postgres_changes delivery, poll interval 100 ms ({got}/{LATENCY_SAMPLES} received):");
    println!("  p50 {p50:6.1} ms   p95 {p95:6.1} ms   (goal p50 <= 60 ms)");
    // ---- 1. bulk insert ----
    let mut rest_ms = vec![];
    let mut floor_ms = vec![];
    for run in 0..=REPS {
        let batch = rows(user, run);
        // REST: the body supabase-js would send for `.insert(array)`.
        db.batch_execute("truncate public.bench_messages").await?;
        let body = serde_json::to_vec(&batch)?;
        let t = Instant::now();
        let res = http
            .post(format!("{}/rest/v1/bench_messages?columns=%22user_id%22,%22local_id%22,%22conversation%22,%22body%22,%22seq%22", server.url()))
            .header("apikey", server.anon_key())
            .header("authorization", format!("Bearer {}", server.service_role_key()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let rest = t.elapsed().as_secs_f64() * 1000.0;
        if res.status().as_u16() != 201 {
            return Err(format!("REST insert failed: {} {}", res.status(), res.text().await?).into());
        }
        // Floor: the same rows in one INSERT straight into PostgreSQL.
        db.batch_execute("truncate public.bench_messages").await?;
        let cols: [Vec<String>; 4] = [
            batch.iter().map(|r| r["user_id"].as_str().unwrap_or_default().to_string()).collect(),
            batch.iter().map(|r| r["local_id"].as_str().unwrap_or_default().to_string()).collect(),
            batch.iter().map(|r| r["conversation"].as_str().unwrap_or_default().to_string()).collect(),
            batch.iter().map(|r| r["body"].as_str().unwrap_or_default().to_string()).collect(),
        ];
        let seqs: Vec<i32> = (0..ROWS as i32).collect();
        let t = Instant::now();
        db.execute(
            "insert into public.bench_messages (user_id, local_id, conversation, body, seq)
             select u::uuid, l, c, b, s from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[]) as x(u, l, c, b, s)",
            &[&cols[0], &cols[1], &cols[2], &cols[3], &seqs],
        )
        .await?;
        let floor = t.elapsed().as_secs_f64() * 1000.0;
        if run > 0 {
            rest_ms.push(rest);
            floor_ms.push(floor);
        }
    }
    let (r, f) = (median(&mut rest_ms), median(&mut floor_ms));
    println!("bulk insert of {ROWS} rows (median of {REPS}, alternating):");
    println!("  /rest/v1 POST (json array)        {r:8.1} ms");
    println!("  PostgreSQL, one INSERT (floor)    {f:8.1} ms");
    println!("  ratio REST / floor                {:8.2}x   (goal <= 2x)", r / f);

    Ok(())
}
