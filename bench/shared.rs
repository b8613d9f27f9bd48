//! `supasync-bench-shared`: shared rows measured against own rows, side by side in one
//! run (issue 22). On the chat example's schema, where conversations are shared by
//! email and messages by their conversation:
//!
//! 1. Restoring 10k messages that another user shares with this user, against the
//!    owner restoring the same 10k rows of their own (goal: at most 1.2x).
//! 2. Joining: a user whose replica is already in step is given the conversation, and
//!    the next pull backfills its 10k messages (rows older than the user's cursor),
//!    against a restore of the same rows (goal: at most 2x).
//!
//! Each pair runs back to back on fresh SQLite files; ratios are the medians of the
//! pairs' own ratios. Run: `cargo run --release -p supasync-bench --bin supasync-bench-shared`.

mod after_load;

use std::path::Path;
use std::time::Instant;

use serde_json::json;
use supasync_core::client::Project;
use supasync_core::{Engine, EngineConfig, Schema};
use supasync_devserver::DevServer;
use supasync_native::{system_now_ms, ReqwestHttp, SqliteStore};

const ROWS: usize = 10_000;
const PAIRS: usize = 5;

type Device = Engine<SqliteStore, ReqwestHttp>;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn range(v: &[f64]) -> String {
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    format!("{lo:.2}-{hi:.2}")
}

async fn device(url: &str, key: &str, db: &Path) -> Device {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let schema = Schema::from_json(&std::fs::read_to_string(root.join("examples/chat/schema.json")).expect("schema")).expect("schema");
    Engine::open(
        schema,
        SqliteStore::open(db).expect("store"),
        ReqwestHttp::new().expect("http"),
        Project { url: url.into(), anon_key: key.into() },
        EngineConfig::with_clock(system_now_ms),
    )
    .await
    .expect("engine")
}

/// A fresh device of `email` that pulls everything; the time of that pull and its rows.
async fn restore(server: &DevServer, dir: &Path, name: &str, email: &str) -> Result<(f64, usize), Box<dyn std::error::Error>> {
    let d = device(server.url(), server.anon_key(), &dir.join(format!("{name}.db"))).await;
    d.sign_in(email, "bench-password").await?;
    let t = Instant::now();
    let r = d.pull().await?;
    Ok((t.elapsed().as_secs_f64() * 1000.0, r.rows))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let server = DevServer::builder().migrations(root.join("examples/chat/migrations")).start().await?;
    let (db, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let dir = tempfile::tempdir()?;
    let owner = device(server.url(), server.anon_key(), &dir.path().join("owner.db")).await;
    let me = owner.sign_up("owner@example.com", "bench-password").await?;
    owner.sign_up("guest@example.com", "bench-password").await?;
    owner.sign_in("owner@example.com", "bench-password").await?;
    let conv = owner.insert("conversations", &json!({"title": "shared"})).await?.local_id;
    owner.call("conversations", &conv, "share_conversation", &json!({"email": "guest@example.com"}), &json!({})).await?;
    owner.push().await?;
    let conv_server: String = db.query_one("select id::text from public.conversations where local_id = $1", &[&conv]).await?.get(0);
    let bodies: Vec<String> = (0..ROWS).map(|i| format!("{i:06} {}", "lorem ipsum dolor sit amet ".repeat(6))).collect();
    let ids: Vec<String> = (0..ROWS).map(|i| format!("m-{i}")).collect();
    db.execute(
        "insert into public.messages (user_id, conversation_id, role, content, local_id)
         select $1::text::uuid, $2::text::uuid, 'user', b, l from unnest($3::text[], $4::text[]) as x(b, l)",
        &[&me.user_id, &conv_server, &bodies, &ids],
    )
    .await?;
    after_load::settle(&db, &["public.messages", "public.conversations"]).await?;

    let (mut own, mut shared, mut joined) = (vec![], vec![], vec![]);
    let (mut shared_ratios, mut join_ratios) = (vec![], vec![]);
    for rep in 0..PAIRS {
        let (own_ms, own_rows) = restore(&server, dir.path(), &format!("own-{rep}"), "owner@example.com").await?;
        let (shared_ms, shared_rows) = restore(&server, dir.path(), &format!("shared-{rep}"), "guest@example.com").await?;
        assert_eq!((own_rows, shared_rows), (ROWS + 1, ROWS + 1), "both restore the conversation and its messages");

        // A user in step (pulled once, holding nothing) is given the conversation.
        let email = format!("joiner{rep}@example.com");
        let j = device(server.url(), server.anon_key(), &dir.path().join(format!("join-{rep}.db"))).await;
        j.sign_up(&email, "bench-password").await?;
        j.pull().await?;
        owner.call("conversations", &conv, "share_conversation", &json!({"email": email}), &json!({})).await?;
        owner.push().await?;
        let t = Instant::now();
        let r = j.pull().await?;
        let join_ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(r.rows, ROWS + 1, "the join backfills the conversation and its messages");

        own.push(own_ms);
        shared.push(shared_ms);
        joined.push(join_ms);
        shared_ratios.push(shared_ms / own_ms);
        join_ratios.push(join_ms / shared_ms);
    }
    println!("shared rows: {ROWS} messages of a conversation shared by email ({PAIRS} pairs, medians):");
    println!("   restore, the owner's own rows       {:9.1} ms", median(&mut own));
    println!("   restore, the same rows shared        {:9.1} ms   ratio {:5.2}x  ({}; goal <= 1.2x)", median(&mut shared), median(&mut shared_ratios), range(&shared_ratios));
    println!("   joining: the backfill of those rows  {:9.1} ms   ratio {:5.2}x  ({}; to the shared restore; goal <= 2x)", median(&mut joined), median(&mut join_ratios), range(&join_ratios));
    Ok(())
}
