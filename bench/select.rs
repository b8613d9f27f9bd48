//! `supasync-bench-select`: local queries in PostgREST's language against the same
//! query through PostgREST on the same machine, side by side in one run (issue 23).
//!
//! One user with 10k conversations and 100k messages (one conversation holds 10k of
//! them, the rest 9 each), restored onto a SQLite replica. Then, each the median of
//! 20 runs:
//! 1. the first page of the 10k-message conversation (`order=timestamp.desc&limit=50`),
//!    on the replica and through PostgREST (goal: at most 5 ms on the replica);
//! 2. 50 conversations with their message counts (`messages(count)`), newest first;
//! 3. every conversation with its message count (10k rows with an aggregate embed
//!    over 100k messages).
//!
//! Run: `cargo run --release -p supasync-bench --bin supasync-bench-select`.

mod after_load;

use std::path::Path;
use std::time::Instant;

use supasync_core::client::Project;
use supasync_core::{Engine, EngineConfig, Schema, SelectOptions, SelectRequest};
use supasync_devserver::DevServer;
use supasync_native::{system_now_ms, ReqwestHttp, SqliteStore};

const CONVERSATIONS: i32 = 10_000;
const BIG: i32 = 10_000;
const RUNS: usize = 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = DevServer::builder().migrations(root.join("examples/chat/migrations")).start().await?;
    let (db, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    db.batch_execute(
        "do $$ begin execute format('alter role authenticator in database %I set pgrst.db_aggregates_enabled = true', current_database()); end $$;
         notify pgrst, 'reload config';",
    )
    .await?;
    let schema = Schema::from_json(&std::fs::read_to_string(root.join("examples/chat/schema.json"))?)?;
    let dir = tempfile::tempdir()?;
    let device = Engine::open(
        schema,
        SqliteStore::open(dir.path().join("bench.db"))?,
        ReqwestHttp::new()?,
        Project { url: server.url().into(), anon_key: server.anon_key().into() },
        EngineConfig::with_clock(system_now_ms),
    )
    .await?;
    let me = device.sign_up("select@example.com", "bench-password").await?;
    // The data, loaded in SQL: 10k conversations, 10k messages in the first, 9 in each other.
    db.execute(
        "insert into public.conversations (user_id, title, local_id, created_at)
         select $1::text::uuid, 'conversation ' || i, 'c-' || i, now() - make_interval(secs => i) from generate_series(1, $2::int) i",
        &[&me.user_id, &CONVERSATIONS],
    )
    .await?;
    db.execute(
        "insert into public.messages (user_id, conversation_id, role, content, local_id, timestamp)
         select $1::text::uuid, c.id, 'user', 'message ' || m || ' lorem ipsum dolor sit amet', c.local_id || '-m-' || m, now() - make_interval(secs => m)
         from public.conversations c, generate_series(1, case when c.local_id = 'c-1' then $2::int else 9 end) m
         where c.user_id = $1::text::uuid",
        &[&me.user_id, &BIG],
    )
    .await?;
    after_load::settle(&db, &["public.messages", "public.conversations"]).await?;
    let t = Instant::now();
    let pulled = device.pull().await?;
    println!("restored {} rows in {:.1} s", pulled.rows, t.elapsed().as_secs_f64());
    let big_server: String = db.query_one("select id::text from public.conversations where local_id = 'c-1'", &[]).await?.get(0);

    let http = reqwest::Client::new();
    let token = device.session().await?.access_token;
    let cases = [
        ("first page of a 10k-message conversation", "messages?select=*&conversation_id=eq.c-1&order=timestamp.desc&limit=50".to_string(), format!("messages?select=*&conversation_id=eq.{big_server}&order=timestamp.desc&limit=50")),
        ("50 conversations with message counts", "conversations?select=id,title,messages(count)&order=created_at.desc&limit=50".to_string(), "conversations?select=id,title,messages(count)&order=created_at.desc&limit=50".to_string()),
        ("10k conversations with message counts", "conversations?select=id,title,messages(count)".to_string(), "conversations?select=id,title,messages(count)".to_string()),
    ];
    println!("local queries (SQLite replica) vs PostgREST (supasync-dev, same machine), medians of {RUNS}:");
    for (what, local, remote) in cases {
        let req = SelectRequest::parse(&local)?.with_options(SelectOptions::default());
        let (mut ours, mut theirs) = (vec![], vec![]);
        let (mut n_local, mut n_remote) = (0, 0);
        for _ in 0..RUNS {
            let t = Instant::now();
            n_local = device.select(&req).await?.rows.len();
            ours.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            let rows: Vec<serde_json::Value> = http
                .get(format!("{}/rest/v1/{remote}", server.url()))
                .header("apikey", server.anon_key())
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            n_remote = rows.len();
            theirs.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        assert_eq!(n_local, n_remote, "{what}: both answer the same number of rows");
        let (o, r) = (median(ours), median(theirs));
        println!("   {what:42} replica {o:8.2} ms   PostgREST {r:8.2} ms   ratio {:5.2}x  ({n_local} rows)", o / r);
    }
    Ok(())
}
