//! Live sync under faults (issue 4 §6, widened by issues 8 and 22): two users, on the
//! chat example's schema (conversations shared by email). The first user has three
//! devices writing at random (conversations deleted with their messages included) and
//! now and then shares a conversation with the second user, or stops sharing it; the
//! second user's device writes into their own conversations and into those shared with
//! them. Meanwhile connections are cut, refused, slowed, answered 503, or forwarded and
//! answered 500; engines are killed mid-push and reopened from their files; the dev
//! server is restarted mid-push; every access token expires at once. After healing,
//! every device holds exactly what its user may read on the server (nothing leaked,
//! nothing lost), every write that was neither deleted nor refused is there once, and
//! the only refusals are those the races explain: messages whose conversation was
//! deleted, and the second user's messages into a conversation no longer shared with
//! them.
//! Seeds come from `CHAOS_SEEDS` (see [`seeds`]); the soak runs them all and names the
//! ones that diverged. Also: a dev server restarted under connected devices, and access
//! tokens that expire while channels are joined.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::fault_proxy::{FaultProxy, Mode};
use common::{chat_example_replica_at, go_live, go_live_killable, manifest, replica, server, server_rows, until_phase, KillableLive, Replica};
use serde_json::{json, Value};
use supasync_core::engine::Query;
use supasync_core::live::Phase;
use supasync_core::Store;
use supasync_core::{EngineError, WriteError};
use supasync_devserver::DevServer;
use tokio::time::{sleep, timeout};


/// splitmix64: a seeded, reproducible sequence (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What one replica shows, in server terms: (table, local id) → the synced fields, with
/// a message's conversation given by the conversation's server id. A device keeps a
/// reference as the parent's local id, or as its server id while it holds no such
/// parent (a conversation no longer shared with this user): `conversation_ids` maps
/// every conversation's local id to its server id.
async fn device_view(d: &Replica, conversation_ids: &BTreeMap<String, Value>) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for (table, cols) in [("conversations", &["title"][..]), ("messages", &["content", "conversation_id"][..]), ("memories", &["content"][..])] {
        for r in d.query(table, &Query::default()).await.unwrap() {
            let mut v: serde_json::Map<String, Value> = cols.iter().map(|c| (c.to_string(), r.row.get(*c).cloned().unwrap_or(Value::Null))).collect();
            if let Some(Value::String(c)) = v.get("conversation_id").cloned() {
                v.insert("conversation_id".into(), conversation_ids.get(&c).cloned().unwrap_or(Value::String(c)));
            }
            out.insert((table.to_string(), r.local_id.clone()), Value::Object(v));
        }
    }
    out
}

/// Every conversation's local id → its server id (past RLS).
async fn conversation_ids(s: &DevServer) -> BTreeMap<String, Value> {
    server_rows(s, "conversations", "select=id,local_id").await.iter().map(|c| (c["local_id"].as_str().unwrap_or_default().to_string(), c["id"].clone())).collect()
}

/// What `token`'s user may read on the server, in the shape of [`device_view`].
async fn server_view(s: &DevServer, token: &str) -> BTreeMap<(String, String), Value> {
    let read = |table: &'static str, select: &'static str| async move {
        let res = reqwest::Client::new()
            .get(format!("{}/rest/v1/{table}?select={select}", s.url()))
            .header("apikey", s.anon_key())
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        res.json::<Vec<Value>>().await.expect("rows")
    };
    let mut out = BTreeMap::new();
    for c in read("conversations", "local_id,title").await {
        out.insert(("conversations".to_string(), c["local_id"].as_str().unwrap().to_string()), json!({"title": c["title"]}));
    }
    for m in read("messages", "local_id,content,conversation_id").await {
        out.insert(("messages".to_string(), m["local_id"].as_str().unwrap().to_string()), json!({"content": m["content"], "conversation_id": m["conversation_id"]}));
    }
    for m in read("memories", "local_id,content").await {
        out.insert(("memories".to_string(), m["local_id"].as_str().unwrap().to_string()), json!({"content": m["content"]}));
    }
    out
}

/// One device of the chaos: its replica file, the proxy it talks through, and, while it
/// runs, its engine and live sync (killed and reopened from the file as a process kill
/// would).
struct Device {
    path: std::path::PathBuf,
    proxy: FaultProxy,
    /// `None` only between a kill and the reopen.
    replica: Option<Replica>,
    live: KillableLive,
}

impl Device {
    fn r(&self) -> &Replica {
        self.replica.as_ref().expect("a running device")
    }

    /// Kill the engine wherever it is (mid-push, typically), then reopen the replica
    /// from its file and go live again, as a restarted app process would.
    async fn kill_and_reopen(&mut self, key: &str) {
        self.live.kill().await;
        let old = self.replica.take().expect("a running device");
        assert_eq!(std::sync::Arc::strong_count(&old), 1, "the killed engine is held by nothing else");
        drop(old); // closes its SQLite connection
        let fresh = chat_example_replica_at(&self.proxy.url(), key, &self.path).await;
        self.live = go_live_killable(&fresh, &self.proxy.url(), key, 2_000);
        self.replica = Some(fresh);
    }
}

/// How many faults of each kind a run injected.
#[derive(Debug, Default, Clone, Copy)]
struct Injected {
    cuts: u32,
    refusals: u32,
    delays: u32,
    unavailable_503: u32,
    failed_answers_500: u32,
    kills: u32,
    server_restarts: u32,
    token_expiries: u32,
    shares: u32,
    unshares: u32,
}

async fn start_server(db: Option<(&str, u16)>) -> DevServer {
    let b = DevServer::builder();
    let b = match db {
        None => b.migrations(manifest().join("../../examples/chat/migrations")).shared_test_cluster(),
        Some((url, port)) => b.database_url(url).port(port),
    };
    b.start().await.expect("dev server")
}

/// What the server holds, with the pending writes of each device when they do not drain.
async fn pending_detail(devices: &[Device]) -> String {
    let mut out = vec![];
    for (i, d) in devices.iter().enumerate() {
        let ob = d.r().store.outbox().await.unwrap_or_default();
        for e in ob.iter().filter(|e| e.rejected.is_none()).take(3) {
            let op = match &e.op {
                supasync_core::OutboxOp::Insert { .. } => "insert",
                supasync_core::OutboxOp::Update { .. } => "update",
                supasync_core::OutboxOp::Delete => "delete",
                supasync_core::OutboxOp::Call { .. } => "call",
                supasync_core::OutboxOp::Upload { .. } => "upload",
            };
            let row = d.r().store.get_row(&e.table, &e.local_id).await.ok().flatten();
            out.push(format!(
                "device {i}: {op} {}/{} (attempts {}, last error {:?}, row here: {})",
                e.table,
                e.local_id,
                e.attempts,
                e.last_error,
                row.map(|r| format!("server id {:?}, status {:?}", r.server_id, r.status)).unwrap_or("none".into())
            ));
        }
    }
    out.join("; ")
}

/// An access token for `email` (password `password-123`), as the user's app would hold.
async fn token_of(s: &DevServer, email: &str) -> String {
    let v = common::auth_post(s, "token?grant_type=password", &json!({"email": email, "password": "password-123"})).await;
    v["access_token"].as_str().unwrap_or_else(|| panic!("a token for {email}: {v}")).to_string()
}

/// The user a device belongs to: devices 0-2 are the first user's, device 3 the second's.
const GUEST_DEVICE: usize = 3;

async fn chaos(seed: u64) -> Injected {
    let mut s = start_server(None).await;
    let (url, key, db) = (s.url().to_string(), s.anon_key().to_string(), s.database_url().to_string());
    let port: u16 = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng(seed);
    let mut injected = Injected::default();
    let mut devices: Vec<Device> = vec![];
    let owner_email = format!("chaos{seed}@example.com");
    let guest_email = format!("chaos{seed}-guest@example.com");
    for i in 0..4 {
        let proxy = FaultProxy::start(url.trim_start_matches("http://").to_string()).await.unwrap();
        let path = dir.path().join(format!("device{i}.db"));
        let d = chat_example_replica_at(&proxy.url(), &key, &path).await;
        match i {
            0 => drop(d.sign_up(&owner_email, "password-123").await.unwrap()),
            GUEST_DEVICE => drop(d.sign_up(&guest_email, "password-123").await.unwrap()),
            _ => drop(d.sign_in(&owner_email, "password-123").await.unwrap()),
        }
        let live = go_live_killable(&d, &proxy.url(), &key, 2_000);
        devices.push(Device { path, proxy, replica: Some(d), live });
    }
    for d in &devices {
        until_phase(&d.live.live, Phase::Live, 20).await;
    }
    let owner_id = devices[0].r().session().await.unwrap().user_id;
    let guest_id = devices[GUEST_DEVICE].r().session().await.unwrap().user_id;
    let mut inserted: BTreeSet<(String, String)> = BTreeSet::new();
    let mut deleted: BTreeSet<(String, String)> = BTreeSet::new();
    // For a row still on the server though deleted: who deleted it and what it was then.
    let mut how_deleted: BTreeMap<(String, String), String> = BTreeMap::new();
    // Message → its conversation: deleting a conversation deletes its messages on the
    // server (on delete cascade), and a message written into a conversation deleted
    // elsewhere is rejected with that reason.
    let mut parent_of: BTreeMap<String, String> = BTreeMap::new();
    // Messages the guest wrote into the first user's conversations: refused when the
    // conversation stopped being shared before they reached the server.
    let mut guest_in_shared: BTreeSet<String> = BTreeSet::new();
    // A fault that strikes right after the next write (while its push is in flight).
    let mut after_write: Option<usize> = None;
    for op in 0..500 {
        if op % 20 == 0 {
            let p = &devices[rng.below(devices.len())].proxy;
            match rng.below(8) {
                0 => {
                    p.set(Mode::Refuse);
                    p.cut();
                    injected.refusals += 1;
                }
                1 => {
                    p.set(Mode::DelayAnswers(Duration::from_millis(rng.below(150) as u64)));
                    injected.delays += 1;
                }
                2 => {
                    p.cut();
                    injected.cuts += 1;
                }
                3 => {
                    p.set(Mode::Unavailable);
                    p.cut();
                    injected.unavailable_503 += 1;
                }
                4 => {
                    p.set(Mode::FailAnswers);
                    injected.failed_answers_500 += 1;
                }
                5 => after_write = Some(rng.below(4)),
                _ => p.set(Mode::Pass),
            }
        }
        let di = rng.below(devices.len());
        let guest = di == GUEST_DEVICE;
        let d = devices[di].r().clone();
        let convs = d.query("conversations", &Query::default()).await.unwrap();
        // Each user changes only their own rows (the example's policies let the guest
        // read the owner's shared rows and write messages into them, not change them,
        // and the owner reads the guest's messages there but does not change them).
        let me = if guest { &guest_id } else { &owner_id };
        let own = |r: &supasync_core::RowView| r.row.get("user_id").is_none_or(|u| u.as_str() == Some(me.as_str()));
        match rng.below(12) {
            0 | 1 if convs.len() < 8 || rng.below(4) == 0 => {
                let c = d.insert("conversations", &json!({"title": format!("c{op}")})).await.unwrap();
                inserted.insert(("conversations".into(), c.local_id));
            }
            0..=3 if !convs.is_empty() => {
                let c = &convs[rng.below(convs.len())];
                let m = d
                    .insert("messages", &json!({"conversation_id": c.local_id, "role": "user", "content": format!("m{op}")}))
                    .await
                    .unwrap();
                if guest && !own(c) {
                    guest_in_shared.insert(m.local_id.clone());
                }
                parent_of.insert(m.local_id.clone(), c.local_id.clone());
                inserted.insert(("messages".into(), m.local_id));
            }
            4 | 5 => {
                let m = d.insert("memories", &json!({"content": format!("k{op}")})).await.unwrap();
                inserted.insert(("memories".into(), m.local_id));
            }
            6 | 7 => {
                let table = ["messages", "memories", "conversations"][rng.below(3)];
                let rows: Vec<_> = d.query(table, &Query::default()).await.unwrap().into_iter().filter(|r| own(r)).collect();
                if !rows.is_empty() {
                    let r = &rows[rng.below(rows.len())];
                    let field = if table == "conversations" { "title" } else { "content" };
                    // The row may have been deleted by another device a moment ago, or
                    // refused (a message whose conversation was deleted meanwhile).
                    match d.update(table, &r.local_id, &json!({ field: format!("edited {op}") })).await {
                        Ok(_) | Err(EngineError::Write(WriteError::NotFound { .. } | WriteError::Rejected { .. })) => {}
                        Err(e) => panic!("seed {seed}: {e}"),
                    }
                }
            }
            8 if !guest && !convs.is_empty() => {
                // Share a conversation with the guest, or stop sharing it.
                let c = &convs[rng.below(convs.len())];
                let (function, n) = if rng.below(3) == 0 { ("unshare_conversation", &mut injected.unshares) } else { ("share_conversation", &mut injected.shares) };
                match d.call("conversations", &c.local_id, function, &json!({"email": guest_email}), &json!({})).await {
                    Ok(_) => *n += 1,
                    Err(EngineError::Write(WriteError::NotFound { .. } | WriteError::Deleted { .. } | WriteError::Rejected { .. })) => {}
                    Err(e) => panic!("seed {seed}: {e}"),
                }
            }
            _ => {
                let table = ["messages", "memories", "messages", "memories", "messages", "memories", "messages", "conversations"][rng.below(8)];
                let rows: Vec<_> = d.query(table, &Query::default()).await.unwrap().into_iter().filter(|r| own(r)).collect();
                if !rows.is_empty() {
                    let r = &rows[rng.below(rows.len())];
                    let before = d.store.get_row(table, &r.local_id).await.ok().flatten();
                    let pending: Vec<_> = d.store.outbox().await.unwrap_or_default().into_iter().filter(|e| e.local_id == r.local_id).collect();
                    match d.delete(table, &r.local_id).await {
                        Ok(()) => {
                            deleted.insert((table.to_string(), r.local_id.clone()));
                            let how = format!("device {di} at op {op}: row then {before:?}; its writes then {pending:?}");
                            how_deleted.insert((table.to_string(), r.local_id.clone()), how);
                        }
                        Err(EngineError::Write(WriteError::NotFound { .. } | WriteError::Rejected { .. })) => {}
                        Err(e) => panic!("seed {seed}: {e}"),
                    }
                }
            }
        }
        drop(d);
        if let Some(kind) = after_write.take() {
            // Give the push a moment to be on its way, then strike.
            sleep(Duration::from_millis(rng.below(40) as u64)).await;
            match kind {
                0 | 1 => {
                    devices[di].kill_and_reopen(&key).await;
                    injected.kills += 1;
                }
                2 => {
                    drop(s);
                    sleep(Duration::from_millis(rng.below(300) as u64)).await;
                    s = start_server(Some((&db, port))).await;
                    injected.server_restarts += 1;
                }
                _ => {
                    s.expire_tokens();
                    injected.token_expiries += 1;
                }
            }
        }
        sleep(Duration::from_millis(rng.below(8) as u64)).await;
    }

    // Heal, and let everything settle.
    for d in &devices {
        d.proxy.set(Mode::Pass);
    }
    let drained = timeout(Duration::from_secs(60), async {
        loop {
            let mut idle = true;
            for d in &devices {
                idle &= d.r().status().await.unwrap().pending == 0;
            }
            if idle {
                return;
            }
            sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if drained.is_err() {
        panic!("seed {seed}: writes still pending a minute after healing: {}", pending_detail(&devices).await);
    }
    let orphaned = |m: &str| parent_of.get(m).is_some_and(|c| deleted.contains(&("conversations".to_string(), c.clone())));
    let mut refused: BTreeSet<(String, String)> = BTreeSet::new();
    // Twice: a device's second sync brings what another device pushed during its first.
    for _ in 0..2 {
        for d in &devices {
            d.live.live.sync_now().await.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
    }
    for (i, d) in devices.iter().enumerate() {
        // The only refusals: messages written into a conversation deleted (elsewhere
        // or here) before they reached the server, each saying so; the guest's messages
        // into a conversation shared with it no more. The app discards them.
        for e in d.r().rejected().await.unwrap() {
            let why = e.rejected.clone().unwrap_or_default();
            let explained = (e.table == "messages" && orphaned(&e.local_id) && why.contains("was deleted"))
                || (i == GUEST_DEVICE && e.table == "messages" && guest_in_shared.contains(&e.local_id));
            assert!(explained, "seed {seed}: device {i}: a write was refused: {e:?}");
            if !matches!(e.op, supasync_core::OutboxOp::Call { .. }) {
                refused.insert((e.table.clone(), e.local_id.clone()));
            }
            // (Gone already if the server had the message after all and its cascade's
            // tombstone arrived meanwhile: then the delete took it, which is right too.)
            match d.r().discard(&e.local_id).await {
                Ok(()) | Err(EngineError::NoRejected(_)) => {}
                Err(err) => panic!("seed {seed}: discard: {err}"),
            }
        }
    }
    // Nothing lost: every write neither deleted nor refused is on the server, once; and
    // nothing deleted is there.
    let everything = [
        ("conversations", server_rows(&s, "conversations", "select=local_id").await),
        ("messages", server_rows(&s, "messages", "select=local_id").await),
        ("memories", server_rows(&s, "memories", "select=local_id").await),
    ];
    let on_server: Vec<(String, String)> =
        everything.iter().flat_map(|(t, rows)| rows.iter().map(|r| (t.to_string(), r["local_id"].as_str().unwrap_or_default().to_string()))).collect();
    let on_server_set: BTreeSet<(String, String)> = on_server.iter().cloned().collect();
    assert_eq!(on_server.len(), on_server_set.len(), "seed {seed}: no duplicates");
    let expected: BTreeSet<(String, String)> = inserted
        .difference(&deleted)
        .filter(|(t, l)| !(refused.contains(&(t.clone(), l.clone())) || t == "messages" && orphaned(l)))
        .cloned()
        .collect();
    let lost: Vec<_> = expected.difference(&on_server_set).collect();
    let kept: Vec<_> = on_server_set.intersection(&deleted).collect();
    let unknown: Vec<_> = on_server_set.difference(&inserted).collect();
    let kept_why = match kept.first() {
        Some(k) => {
            let how = how_deleted.get(*k).cloned().unwrap_or_default();
            let deleter: Option<usize> = how.strip_prefix("device ").and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok());
            let now = match deleter {
                Some(i) => divergence_detail(&s, devices[i].r(), &k.0, &k.1).await,
                None => String::new(),
            };
            format!("deleted by {how}; now: {now}")
        }
        None => String::new(),
    };
    assert!(
        lost.is_empty() && kept.is_empty() && unknown.is_empty(),
        "seed {seed}: {} lost, {} kept though deleted, {} never written; first lost {:?}; first kept {:?} {kept_why}",
        lost.len(),
        kept.len(),
        unknown.len(),
        lost.first(),
        kept.first()
    );
    // Nothing leaked, nothing missing: each device holds what its user may read.
    let (owner_token, guest_token) = (token_of(&s, &owner_email).await, token_of(&s, &guest_email).await);
    let (owner_truth, guest_truth) = (server_view(&s, &owner_token).await, server_view(&s, &guest_token).await);
    let ids = conversation_ids(&s).await;
    for (i, d) in devices.iter().enumerate() {
        let truth = if i == GUEST_DEVICE { &guest_truth } else { &owner_truth };
        let view = device_view(d.r(), &ids).await;
        let differ: Vec<_> = view
            .iter()
            .filter(|(k, v)| truth.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone(), truth.get(k).cloned()))
            .chain(truth.iter().filter(|(k, _)| !view.contains_key(*k)).map(|(k, v)| (k.clone(), Value::Null, Some(v.clone()))))
            .collect();
        let why = match differ.first() {
            Some(((table, local_id), _, _)) => divergence_detail(&s, d.r(), table, local_id).await,
            None => String::new(),
        };
        assert!(
            differ.is_empty(),
            "seed {seed}: device {i} differs from what its user may read in {} rows; first (row, device, server): {:?}; {why}",
            differ.len(),
            differ.first()
        );
    }
    for mut d in devices {
        d.live.kill().await;
    }
    injected
}

/// For a row a device holds wrongly (or lacks): the row on the server past RLS, its
/// tombstones, the device's row and scope bookkeeping, and its last history lines.
async fn divergence_detail(s: &DevServer, d: &Replica, table: &str, local_id: &str) -> String {
    let on_server = server_rows(s, table, &format!("select=id,user_id,sync_txid&local_id=eq.{local_id}")).await;
    let tombstones = server_rows(s, "supasync_tombstones", &format!("select=kind,scope_id,sync_txid&local_id=eq.{local_id}")).await;
    let members = server_rows(s, "conversation_members", "select=conversation_id,user_id").await;
    let access = server_rows(s, "supasync_access", "select=scope_id,granted,sync_txid&order=id").await;
    let row = d.store.get_row(table, local_id).await.ok().flatten();
    let held = d.store.meta(&format!("scopes:{table}")).await.ok().flatten();
    let strays = d.store.meta(&format!("scopes:stray:{table}")).await.ok().flatten();
    let cursor = d.store.meta(&format!("cursor:{table}")).await.ok().flatten();
    let history: Vec<String> = d.history(12).await.unwrap_or_default().iter().map(|h| format!("{} {:?} {} {:?}", h.kind, h.table, h.detail, h.error)).collect();
    format!(
        "server row {on_server:?}; tombstones {tombstones:?}; members {members:?}; access {access:?}; device row {row:?}; held {held:?}; strays {strays:?}; cursor {cursor:?}; history {history:?}"
    )
}

/// The seeds to run: `CHAOS_SEEDS` as `A..B` (both included), `A..=B`, or a comma list
/// of numbers and ranges; by default a handful.
fn seeds() -> Vec<u64> {
    let spec = std::env::var("CHAOS_SEEDS").unwrap_or_else(|_| "1,2,24301,7,11".into());
    let mut out = vec![];
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| s.trim().parse::<u64>().unwrap_or_else(|_| panic!("CHAOS_SEEDS: `{s}` is not a number (try 1..200 or 1,5,9)"));
        match part.split_once("..") {
            Some((a, b)) => out.extend(num(a)..=num(b.trim_start_matches('='))),
            None => out.push(num(part)),
        }
    }
    out
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(e) => e.to_string(),
    }
}

/// The soak: every seed runs to its end (a failing one does not stop the others), at
/// most `CHAOS_PARALLEL` at a time (default 2), and the summary names each seed that
/// diverged with its first difference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_under_random_faults_converge() {
    let seeds = seeds();
    let parallel: usize = std::env::var("CHAOS_PARALLEL").ok().and_then(|p| p.parse().ok()).unwrap_or(2).max(1);
    let started = std::time::Instant::now();
    let mut failures: Vec<(u64, String)> = vec![];
    let mut total = Injected::default();
    for chunk in seeds.chunks(parallel) {
        let runs: Vec<_> = chunk.iter().map(|&seed| (seed, tokio::spawn(chaos(seed)))).collect();
        for (seed, run) in runs {
            match run.await {
                Ok(i) => {
                    eprintln!("chaos seed {seed}: converged ({i:?})");
                    total.cuts += i.cuts;
                    total.refusals += i.refusals;
                    total.delays += i.delays;
                    total.unavailable_503 += i.unavailable_503;
                    total.failed_answers_500 += i.failed_answers_500;
                    total.kills += i.kills;
                    total.server_restarts += i.server_restarts;
                    total.token_expiries += i.token_expiries;
                    total.shares += i.shares;
                    total.unshares += i.unshares;
                }
                Err(e) => {
                    let why = panic_text(e);
                    eprintln!("chaos seed {seed}: DIVERGED: {why}");
                    failures.push((seed, why));
                }
            }
        }
    }
    eprintln!(
        "chaos: {} seeds, {} divergences, in {:.0} s; faults injected: {total:?}",
        seeds.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    for (seed, why) in &failures {
        eprintln!("  seed {seed}: {why}");
    }
    assert!(failures.is_empty(), "{} of {} seeds diverged: {:?}", failures.len(), seeds.len(), failures.iter().map(|f| f.0).collect::<Vec<_>>());
}

#[tokio::test]
async fn devices_reconnect_rejoin_and_catch_up_after_a_server_restart() {
    let s = server().await;
    let (url, key, db) = (s.url().to_string(), s.anon_key().to_string(), s.database_url().to_string());
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let a = replica(&url, &key).await;
    let b = replica(&url, &key).await;
    a.sign_up("restart@example.com", "password-123").await.unwrap();
    b.sign_in("restart@example.com", "password-123").await.unwrap();
    let (la, lb) = (go_live(&a, &url, &key, 1_000), go_live(&b, &url, &key, 1_000));
    until_phase(&la, Phase::Live, 20).await;
    until_phase(&lb, Phase::Live, 20).await;
    a.insert("memories", &json!({"content": "before"})).await.unwrap();

    drop(s);
    until_phase(&lb, Phase::Offline, 20).await;
    // Written while the server is down: A's waits, the server gets one straight into
    // the database (another writer), which B must catch up on.
    a.insert("memories", &json!({"content": "while down"})).await.unwrap();
    let s = DevServer::builder().database_url(&db).port(port).start().await.unwrap();
    let (mut conn_db, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let owner: String = conn_db
        .query_one("select id::text from auth.users where email = 'restart@example.com'", &[])
        .await
        .unwrap()
        .get(0);
    let tx = conn_db.transaction().await.unwrap();
    tx.execute(
        "insert into public.memories (user_id, local_id, content) values ($1::text::uuid, 'direct', 'written on the server')",
        &[&owner],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    until_phase(&la, Phase::Live, 30).await;
    until_phase(&lb, Phase::Live, 30).await;
    let want = BTreeSet::from(["before".to_string(), "while down".to_string(), "written on the server".to_string()]);
    for (name, d) in [("A", &a), ("B", &b)] {
        timeout(Duration::from_secs(20), async {
            loop {
                let have: BTreeSet<String> = d
                    .query("memories", &Query::default())
                    .await
                    .unwrap()
                    .iter()
                    .filter_map(|r| r.row["content"].as_str().map(str::to_string))
                    .collect();
                if have == want {
                    return;
                }
                sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name} did not catch up after the restart"));
    }
    // And live delivery works on the new server.
    a.insert("memories", &json!({"content": "after"})).await.unwrap();
    timeout(Duration::from_secs(10), async {
        while b.query("memories", &Query::default()).await.unwrap().len() < 4 {
            sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("B receives live again");
    la.stop();
    lb.stop();
    drop(conn_db);
    drop(s);
}

#[tokio::test]
async fn tokens_that_expire_while_joined_are_refreshed_and_changes_keep_flowing() {
    let s = DevServer::builder()
        .migrations(manifest().join("tests/fixtures/scenarios"))
        .shared_test_cluster()
        .jwt_expiry_secs(3)
        .start()
        .await
        .unwrap();
    let (url, key) = (s.url().to_string(), s.anon_key().to_string());
    let a = replica(&url, &key).await;
    let b = replica(&url, &key).await;
    a.sign_up("expiry@example.com", "password-123").await.unwrap();
    let first = b.sign_in("expiry@example.com", "password-123").await.unwrap();
    let (la, lb) = (go_live(&a, &url, &key, 1_000), go_live(&b, &url, &key, 1_000));
    until_phase(&la, Phase::Live, 20).await;
    until_phase(&lb, Phase::Live, 20).await;
    // Across several token lifetimes, every write reaches B live.
    for i in 0..4 {
        a.insert("memories", &json!({"content": format!("n{i}")})).await.unwrap();
        timeout(Duration::from_secs(8), async {
            while b.query("memories", &Query::default()).await.unwrap().len() < i + 1 {
                sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("write {i} did not reach B"));
        sleep(Duration::from_millis(2_500)).await;
    }
    assert_ne!(b.session().await.unwrap().access_token, first.access_token, "B's token was refreshed");
    assert_eq!(a.status().await.unwrap().pending, 0);
    la.stop();
    lb.stop();
}
