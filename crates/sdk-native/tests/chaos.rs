//! Live sync under faults (issue 4 §6): three devices of one user writing at random
//! while their connections are cut, refused and slowed at random, for several seeds;
//! a dev server restarted under connected devices; access tokens that expire while
//! channels are joined. After healing, every device holds exactly what the server
//! holds, and every write that was not deleted is there once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::fault_proxy::{FaultProxy, Mode};
use common::{go_live, manifest, replica, server, server_rows, until_phase, Replica};
use serde_json::{json, Value};
use supasync_core::engine::Query;
use supasync_core::live::{LiveSync, Phase};
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
/// a message's conversation given by the conversation's local id on both sides.
async fn device_view(d: &Replica) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for (table, cols) in [("conversations", &["title"][..]), ("messages", &["content", "conversation_id"][..]), ("memories", &["content"][..])] {
        for r in d.query(table, &Query::default()).await.unwrap() {
            let v: serde_json::Map<String, Value> = cols.iter().map(|c| (c.to_string(), r.row.get(*c).cloned().unwrap_or(Value::Null))).collect();
            out.insert((table.to_string(), r.local_id.clone()), Value::Object(v));
        }
    }
    out
}

async fn server_view(s: &DevServer) -> BTreeMap<(String, String), Value> {
    let convs = server_rows(s, "conversations", "select=id,local_id,title").await;
    let conv_local: BTreeMap<String, Value> = convs.iter().map(|c| (c["id"].as_str().unwrap_or_default().to_string(), c["local_id"].clone())).collect();
    let mut out = BTreeMap::new();
    for c in &convs {
        out.insert(("conversations".to_string(), c["local_id"].as_str().unwrap().to_string()), json!({"title": c["title"]}));
    }
    for m in server_rows(s, "messages", "select=local_id,content,conversation_id").await {
        let conv = conv_local.get(m["conversation_id"].as_str().unwrap_or_default()).cloned().unwrap_or(Value::Null);
        out.insert(("messages".to_string(), m["local_id"].as_str().unwrap().to_string()), json!({"content": m["content"], "conversation_id": conv}));
    }
    for m in server_rows(s, "memories", "select=local_id,content").await {
        out.insert(("memories".to_string(), m["local_id"].as_str().unwrap().to_string()), json!({"content": m["content"]}));
    }
    out
}

async fn chaos(seed: u64) {
    let s = server().await;
    let (url, key) = (s.url().to_string(), s.anon_key().to_string());
    let mut rng = Rng(seed);
    let mut proxies = vec![];
    let mut devices: Vec<(Replica, LiveSync)> = vec![];
    for i in 0..3 {
        let p = FaultProxy::start(url.trim_start_matches("http://").to_string()).await.unwrap();
        let d = replica(&p.url(), &key).await;
        if i == 0 {
            d.sign_up(&format!("chaos{seed}@example.com"), "password-123").await.unwrap();
        } else {
            d.sign_in(&format!("chaos{seed}@example.com"), "password-123").await.unwrap();
        }
        let l = go_live(&d, &p.url(), &key, 2_000);
        proxies.push(p);
        devices.push((d, l));
    }
    for (_, l) in &devices {
        until_phase(l, Phase::Live, 20).await;
    }
    // Conversations are never deleted (a message whose conversation is gone is refused,
    // rightly; that is scenario 5's subject, not this one's).
    let mut inserted: BTreeSet<(String, String)> = BTreeSet::new();
    let mut deleted: BTreeSet<(String, String)> = BTreeSet::new();
    for op in 0..500 {
        if op % 20 == 0 {
            let p = &proxies[rng.below(3)];
            match rng.below(4) {
                0 => {
                    p.set(Mode::Refuse);
                    p.cut();
                }
                1 => p.set(Mode::DelayAnswers(Duration::from_millis(rng.below(150) as u64))),
                2 => p.cut(),
                _ => p.set(Mode::Pass),
            }
        }
        let (d, _) = &devices[rng.below(3)];
        let convs = d.query("conversations", &Query::default()).await.unwrap();
        match rng.below(10) {
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
                inserted.insert(("messages".into(), m.local_id));
            }
            4 | 5 => {
                let m = d.insert("memories", &json!({"content": format!("k{op}")})).await.unwrap();
                inserted.insert(("memories".into(), m.local_id));
            }
            6 | 7 => {
                let table = ["messages", "memories", "conversations"][rng.below(3)];
                let rows = d.query(table, &Query::default()).await.unwrap();
                if !rows.is_empty() {
                    let r = &rows[rng.below(rows.len())];
                    let field = if table == "conversations" { "title" } else { "content" };
                    // The row may have been deleted by another device a moment ago.
                    match d.update(table, &r.local_id, &json!({ field: format!("edited {op}") })).await {
                        Ok(_) | Err(EngineError::Write(WriteError::NotFound { .. })) => {}
                        Err(e) => panic!("seed {seed}: {e}"),
                    }
                }
            }
            _ => {
                let table = ["messages", "memories"][rng.below(2)];
                let rows = d.query(table, &Query::default()).await.unwrap();
                if !rows.is_empty() {
                    let r = &rows[rng.below(rows.len())];
                    match d.delete(table, &r.local_id).await {
                        Ok(()) => {
                            deleted.insert((table.to_string(), r.local_id.clone()));
                        }
                        Err(EngineError::Write(WriteError::NotFound { .. })) => {}
                        Err(e) => panic!("seed {seed}: {e}"),
                    }
                }
            }
        }
        sleep(Duration::from_millis(rng.below(8) as u64)).await;
    }

    // Heal, and let everything settle.
    for p in &proxies {
        p.set(Mode::Pass);
    }
    timeout(Duration::from_secs(60), async {
        loop {
            let mut idle = true;
            for (d, _) in &devices {
                idle &= d.status().await.unwrap().pending == 0;
            }
            if idle {
                return;
            }
            sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("seed {seed}: writes still pending a minute after healing"));
    for (d, l) in &devices {
        l.sync_now().await.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(d.rejected().await.unwrap().is_empty(), "seed {seed}: a write was refused: {:?}", d.rejected().await);
    }
    let truth = server_view(&s).await;
    let expected: BTreeSet<(String, String)> = inserted.difference(&deleted).cloned().collect();
    let on_server: BTreeSet<(String, String)> = truth.keys().cloned().collect();
    let lost: Vec<_> = expected.difference(&on_server).collect();
    let kept: Vec<_> = on_server.difference(&expected).collect();
    assert!(lost.is_empty() && kept.is_empty(), "seed {seed}: lost {lost:?}; kept though deleted {kept:?}");
    for (i, (d, l)) in devices.iter().enumerate() {
        let view = device_view(d).await;
        let differ: Vec<_> = view
            .iter()
            .filter(|(k, v)| truth.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone(), truth.get(k).cloned()))
            .chain(truth.iter().filter(|(k, _)| !view.contains_key(*k)).map(|(k, v)| (k.clone(), Value::Null, Some(v.clone()))))
            .collect();
        assert!(differ.is_empty(), "seed {seed}: device {i} differs from the server (row, device, server): {differ:?}");
        l.stop();
    }
    let n = server_rows(&s, "messages", "select=local_id").await.len();
    assert_eq!(n, truth.keys().filter(|(t, _)| t == "messages").count(), "seed {seed}: no duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_under_random_faults_converge_seed_1() {
    chaos(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_under_random_faults_converge_seed_2() {
    chaos(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_under_random_faults_converge_seed_3() {
    chaos(0x5eed).await;
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
