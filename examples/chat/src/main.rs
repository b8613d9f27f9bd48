//! The two-device chat demo (the README's first command runs it through
//! `scripts/demo.sh`). It starts the dev server with the chat schema and the SQL kit,
//! opens two devices of one user (a laptop and a phone, each with its own SQLite
//! replica and live sync), and narrates, with timings: live messages, an offline
//! stretch, concurrent edits, a write the server refuses, presence, and a final check
//! that both devices and the server hold the same data. Every step checks what it
//! shows; the program exits 0 only if all of them held.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use supasync_core::client::Project;
use supasync_core::engine::{Query, RowView};
use supasync_core::live::{LiveConfig, LiveSync, Phase};
use supasync_core::live_query::{live_query, LiveQuery};
use supasync_core::realtime::{Channel, ChannelConfig, ChannelEvent, RealtimeClient, RealtimeConfig};
use supasync_core::{Backoff, Engine, EngineConfig, RowStatus, Schema};
use supasync_devserver::fault_proxy::{FaultProxy, Mode};
use supasync_devserver::DevServer;
use supasync_native::{start_live, system_now_ms, ReqwestHttp, SqliteStore};
use tokio::time::timeout;

type Replica = Arc<Engine<SqliteStore, ReqwestHttp>>;
type Fail = Box<dyn std::error::Error>;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Device {
    name: &'static str,
    db: Replica,
    live: LiveSync,
    realtime: RealtimeClient,
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn ensure(ok: bool, what: impl Into<String>) -> Result<(), Fail> {
    if ok {
        Ok(())
    } else {
        Err(what.into().into())
    }
}

async fn open(dir: &std::path::Path, name: &'static str, url: &str, key: &str) -> Result<Replica, Fail> {
    let schema = Schema::from_json(&std::fs::read_to_string(format!("{ROOT}/examples/chat/schema.json"))?)?;
    let store = SqliteStore::open(dir.join(format!("{name}.db")))?;
    let project = Project { url: url.into(), anon_key: key.into() };
    Ok(Arc::new(Engine::open(schema, store, ReqwestHttp::new()?, project, EngineConfig::with_clock(system_now_ms)).await?))
}

fn go_live(name: &'static str, db: Replica, url: &str, key: &str) -> Device {
    let realtime = RealtimeConfig {
        reconnect: Backoff { initial_ms: 200, max_ms: 1_000 },
        rejoin: Backoff { initial_ms: 200, max_ms: 1_000 },
        ..RealtimeConfig::with_clock(system_now_ms)
    };
    let cfg = LiveConfig {
        retry: Backoff { initial_ms: 200, max_ms: 1_000 },
        ..Default::default()
    };
    let (live, client) = start_live(db.clone(), url, key, realtime, cfg);
    Device { name, db, live, realtime: client }
}

async fn phase(d: &Device, want: Phase, secs: u64) -> Result<(), Fail> {
    let mut st = d.live.statuses();
    timeout(Duration::from_secs(secs), async {
        while let Some(s) = st.next().await {
            if s.phase == want {
                return;
            }
        }
    })
    .await
    .map_err(|_| format!("{} did not reach {want:?} within {secs} s", d.name).into())
}

/// The next result of a live query that `ok` accepts, and when it came.
async fn until(q: &mut LiveQuery<SqliteStore, ReqwestHttp>, secs: u64, ok: impl Fn(&[RowView]) -> bool) -> Result<Vec<RowView>, Fail> {
    timeout(Duration::from_secs(secs), async {
        loop {
            match q.next().await {
                Some(Ok(rows)) if ok(&rows) => return Ok(rows),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Fail::from(e.to_string())),
                None => return Err("the replica closed".into()),
            }
        }
    })
    .await
    .map_err(|_| Fail::from(format!("not seen within {secs} s")))?
}

fn content(r: &RowView) -> String {
    r.row.get("content").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn by(col: &str, v: &str) -> Query {
    Query {
        filters: vec![(col.into(), json!(v))],
        order: Some(("content".into(), false)),
        ..Default::default()
    }
}

async fn presence_of(ch: &mut Channel, n: usize, secs: u64) -> Result<Vec<String>, Fail> {
    timeout(Duration::from_secs(secs), async {
        loop {
            match ch.next().await {
                Some(ChannelEvent::PresenceSync(m)) if m.len() == n => return Ok(m.keys().cloned().collect()),
                Some(_) => {}
                None => return Err(Fail::from("presence channel closed")),
            }
        }
    })
    .await
    .map_err(|_| Fail::from(format!("{n} devices not present within {secs} s")))?
}

/// The rows the server holds for the user, read with the user's own token (RLS).
async fn server_state(url: &str, key: &str, token: &str, table: &str, cols: &str) -> Result<Vec<Value>, Fail> {
    let r = reqwest::Client::new()
        .get(format!("{url}/rest/v1/{table}?select={cols}&order=local_id"))
        .header("apikey", key)
        .bearer_auth(token)
        .send()
        .await?;
    Ok(r.json().await?)
}

async fn local_state(d: &Replica, table: &str, cols: &[&str]) -> Result<Vec<Value>, Fail> {
    let rows = d
        .query(table, &Query { order: Some(("local_id".into(), false)), ..Default::default() })
        .await?;
    Ok(rows
        .iter()
        .map(|r| Value::Object(cols.iter().map(|c| (c.to_string(), r.row.get(*c).cloned().unwrap_or(Value::Null))).collect()))
        .collect())
}

async fn run() -> Result<(), Fail> {
    let started = Instant::now();
    println!("supasync demo: one user, two devices (a laptop and a phone), one chat.\n");
    let server = DevServer::builder().migrations(format!("{ROOT}/examples/chat/migrations")).start().await?;
    let (url, key) = (server.url().to_string(), server.anon_key().to_string());
    println!("  dev server at {url} (PostgreSQL, PostgREST, Auth and Realtime in one process; chat schema + SQL kit)");
    // The laptop reaches the server through a switch the demo can turn off.
    let switch = FaultProxy::start(url.trim_start_matches("http://").to_string()).await?;
    let dir = tempfile::tempdir()?;
    let laptop_db = open(dir.path(), "laptop", &switch.url(), &key).await?;
    let phone_db = open(dir.path(), "phone", &url, &key).await?;
    let session = laptop_db.sign_up("ada@example.com", "correct horse battery").await?;
    phone_db.sign_in("ada@example.com", "correct horse battery").await?;
    println!("  signed up on the laptop, signed in on the phone (user {})\n", session.user_id);

    // 1. Both devices go live.
    println!("1. Both devices join Realtime and catch up");
    let t = Instant::now();
    let laptop = go_live("laptop", laptop_db, &switch.url(), &key);
    let phone = go_live("phone", phone_db, &url, &key);
    phase(&laptop, Phase::Live, 20).await?;
    phase(&phone, Phase::Live, 20).await?;
    println!("   ✓ both live in {}", ms(t.elapsed()));

    // 2. Presence.
    println!("2. Presence: which of Ada's devices are online");
    let devices = ChannelConfig { presence_key: Some("laptop".into()), ..Default::default() };
    let mut on_laptop = laptop.realtime.channel(&format!("devices:{}", session.user_id), &devices);
    let mut on_phone = phone
        .realtime
        .channel(&format!("devices:{}", session.user_id), &ChannelConfig { presence_key: Some("phone".into()), ..Default::default() });
    on_laptop.track(json!({"device": "laptop"})).await?;
    on_phone.track(json!({"device": "phone"})).await?;
    let seen = presence_of(&mut on_phone, 2, 10).await?;
    presence_of(&mut on_laptop, 2, 10).await?;
    println!("   ✓ the phone sees {} online", seen.join(" and "));

    // 3. Live messages.
    println!("3. The phone listens; the laptop sends five messages");
    let conv = laptop.db.insert("conversations", &json!({"title": "Trip to Lisbon"})).await?;
    let mut phone_msgs = live_query(&phone.db, "messages", by("conversation_id", &conv.local_id));
    until(&mut phone_msgs, 5, |r| r.is_empty()).await?;
    let mut lat = vec![];
    for (i, text) in ["Flights are booked", "Hotel near Alfama?", "Yes, two nights", "Tram 28 on day one", "Pastéis de nata, obviously"]
        .iter()
        .enumerate()
    {
        // People do not type in step with the server's change poller: a random pause
        // keeps the latency figure honest.
        tokio::time::sleep(Duration::from_millis(50 + (supasync_core::backoff::random_unit() * 250.0) as u64)).await;
        let t = Instant::now();
        laptop
            .db
            .insert("messages", &json!({"conversation_id": conv.local_id, "role": "user", "content": format!("{} {text}", i + 1)}))
            .await?;
        let rows = until(&mut phone_msgs, 10, |r| r.len() == i + 1).await?;
        let d = t.elapsed();
        lat.push(d);
        ensure(rows.iter().all(|r| r.status == RowStatus::Synced), "the phone shows only confirmed rows")?;
        println!("   ✓ phone shows \"{}\" after {}", content(&rows[i]), ms(d));
    }
    lat.sort();
    println!("   p50 {} from the laptop's write to the phone's list", ms(lat[lat.len() / 2]));

    // 4. Offline.
    println!("4. The laptop goes offline and keeps writing");
    switch.set(Mode::Refuse);
    switch.cut();
    phase(&laptop, Phase::Offline, 10).await?;
    let left = timeout(Duration::from_secs(10), async {
        loop {
            if let Some(ChannelEvent::Presence(supasync_core::realtime::PresenceChange::Leave { key, .. })) = on_phone.next().await {
                return key;
            }
        }
    })
    .await
    .map_err(|_| "the phone did not see the laptop leave")?;
    println!("   ✓ the phone sees the {left} go offline");
    let notes = laptop.db.insert("conversations", &json!({"title": "Packing list"})).await?;
    for item in ["passport", "adapter", "sunscreen"] {
        laptop
            .db
            .insert("messages", &json!({"conversation_id": notes.local_id, "role": "user", "content": item}))
            .await?;
    }
    let pending = laptop.db.status().await?.pending;
    ensure(pending == 4, format!("4 writes wait on the laptop, not {pending}"))?;
    let on_laptop_now = laptop.db.query("messages", &by("conversation_id", &notes.local_id)).await?;
    ensure(on_laptop_now.len() == 3, "the laptop shows its offline writes at once")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure(phone.db.get("conversations", &notes.local_id).await?.is_none(), "the phone cannot have them yet")?;
    println!("   ✓ the laptop shows a new conversation and 3 messages at once; 4 writes wait in its outbox");
    let mut phone_notes = live_query(&phone.db, "messages", by("conversation_id", &notes.local_id));
    let t = Instant::now();
    switch.set(Mode::Pass);
    until(&mut phone_notes, 20, |r| r.len() == 3).await?;
    ensure(phone.db.get("conversations", &notes.local_id).await?.is_some(), "the conversation arrived with its messages")?;
    println!("   ✓ back online: the phone shows them {} after the network returned", ms(t.elapsed()));
    presence_of(&mut on_phone, 2, 10).await?;
    println!("   ✓ and the laptop is back in the phone's presence list");

    // 5. Concurrent edits.
    println!("5. Both devices edit at once");
    let first = laptop.db.query("messages", &by("conversation_id", &conv.local_id)).await?;
    let target = first[0].local_id.clone();
    let (laptop_edit, phone_edit) = (json!({"content": "1 Flights booked (laptop)"}), json!({"title": "Lisbon, May"}));
    let (a, b) = tokio::join!(
        laptop.db.update("messages", &target, &laptop_edit),
        phone.db.update("conversations", &conv.local_id, &phone_edit),
    );
    a?;
    b?;
    phone.db.update("messages", &target, &json!({"content": "1 Flights booked (phone)"})).await?;
    // Both converge on the same message text, and both keep the title edit.
    let t = Instant::now();
    let mut agreed = None;
    for _ in 0..200 {
        let l = laptop.db.query("messages", &by("conversation_id", &conv.local_id)).await?;
        let p = phone.db.query("messages", &by("conversation_id", &conv.local_id)).await?;
        let synced = l.iter().chain(&p).all(|x| x.status == RowStatus::Synced);
        let (lt, pt) = (l.iter().find(|r| r.local_id == target).map(content), p.iter().find(|r| r.local_id == target).map(content));
        if synced && lt.is_some() && lt == pt {
            agreed = lt;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let agreed = agreed.ok_or("the devices did not agree on the edited message")?;
    let title = laptop.db.get("conversations", &conv.local_id).await?.ok_or("conversation gone")?;
    ensure(title.row["title"] == json!("Lisbon, May"), "the phone's title edit reached the laptop")?;
    println!("   ✓ different rows: both edits kept (the title is now \"Lisbon, May\")");
    let mut conflicts: Vec<Value> = vec![];
    for d in [&laptop.db, &phone.db] {
        conflicts.extend(
            d.history(50)
                .await?
                .into_iter()
                .filter(|h| h.kind == "conflict" && h.detail["local_id"] == json!(target) && h.detail["field"] == json!("content"))
                .map(|h| h.detail),
        );
    }
    ensure(!conflicts.is_empty(), "the overwritten text is recorded in the losing device's sync history")?;
    println!(
        "   ✓ same field: the last write wins, \"{agreed}\" on both after {}; the history records the overwritten \"{}\"",
        ms(t.elapsed()),
        conflicts[0]["overwritten"].as_str().unwrap_or("?")
    );

    // 6. A refused write.
    println!("6. A write the server refuses");
    let bad = laptop
        .db
        .insert("messages", &json!({"conversation_id": conv.local_id, "role": "robot", "content": "beep"}))
        .await?;
    let t = Instant::now();
    let reason = timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(r) = laptop.db.rejected().await {
                if let Some(e) = r.iter().find(|e| e.local_id == bad.local_id) {
                    return e.rejected.clone().unwrap_or_default();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .map_err(|_| "the refused write was not reported")?;
    let visible = laptop.db.query("messages", &by("conversation_id", &conv.local_id)).await?;
    ensure(visible.iter().all(|r| r.local_id != bad.local_id), "the refused message is rolled back from the laptop's list")?;
    println!("   ✓ rolled back on the laptop after {}; reason: {reason}", ms(t.elapsed()));
    laptop.db.discard(&bad.local_id).await?;

    // 7. Everything agrees.
    println!("7. Final state");
    laptop.live.sync_now().await?;
    phone.live.sync_now().await?;
    let mut same = true;
    let mut counts = vec![];
    for (table, cols) in [("conversations", "local_id,title"), ("messages", "local_id,content,role")] {
        let list: Vec<&str> = cols.split(',').collect();
        let on_server = server_state(&url, &key, &session.access_token, table, cols).await?;
        let on_laptop = local_state(&laptop.db, table, &list).await?;
        let on_phone = local_state(&phone.db, table, &list).await?;
        same &= on_server == on_laptop && on_server == on_phone;
        counts.push(format!("{} {table}", on_server.len()));
    }
    ensure(same, "the laptop, the phone and the server differ")?;
    ensure(laptop.db.status().await?.pending == 0 && phone.db.status().await?.pending == 0, "nothing waits")?;
    println!("   ✓ identical on the laptop, the phone and the server: {}", counts.join(", "));
    on_laptop.leave();
    on_phone.leave();
    laptop.live.stop();
    phone.live.stop();
    println!("\nEvery step held ({:.1} s).", started.elapsed().as_secs_f64());
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("\n✗ demo failed: {e}");
        std::process::exit(1);
    }
}
