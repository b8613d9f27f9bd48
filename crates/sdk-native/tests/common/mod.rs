//! Test helpers shared by the native scenario tests.

#![allow(dead_code)]

#[allow(unused_imports)]
pub use supasync_devserver::fault_proxy;

use std::path::PathBuf;

use serde_json::Value;
use supasync_devserver::DevServer;
use supasync_native::SqliteStore;

/// This crate's directory.
pub fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A dev server with the scenario schema (the SQL kit, the chat schemas, test rules),
/// in a fresh database of the test process's shared cluster.
pub async fn server() -> DevServer {
    DevServer::builder()
        .migrations(manifest().join("tests/fixtures/scenarios"))
        .shared_test_cluster()
        .start()
        .await
        .expect("dev server")
}

/// A dev server with seed 000's organisation library (`examples/library/migrations`):
/// agents and prompts shared within organisations.
pub async fn library_server() -> DevServer {
    DevServer::builder()
        .migrations(manifest().join("../../examples/library/migrations"))
        .shared_test_cluster()
        .start()
        .await
        .expect("dev server")
}

/// A device of the organisation library's schema talking to `url`.
pub async fn library_replica(url: &str, key: &str) -> Replica {
    replica_with(url, key, SqliteStore::in_memory().expect("store"), "../../examples/library/schema.json").await
}

/// A dev server with the chat example's own migrations (`examples/chat/migrations`:
/// seed 004's chat, with conversations shared by email).
pub async fn chat_example_server() -> DevServer {
    DevServer::builder()
        .migrations(manifest().join("../../examples/chat/migrations"))
        .shared_test_cluster()
        .start()
        .await
        .expect("dev server")
}

/// A device of the chat example's schema (`examples/chat/schema.json`).
pub async fn chat_example_replica(url: &str, key: &str) -> Replica {
    replica_with(url, key, SqliteStore::in_memory().expect("store"), "../../examples/chat/schema.json").await
}

/// A device of the chat example's schema whose replica is the SQLite file at `path`.
pub async fn chat_example_replica_at(url: &str, key: &str, path: &std::path::Path) -> Replica {
    replica_with(url, key, SqliteStore::open(path).expect("store"), "../../examples/chat/schema.json").await
}

/// Read a table as the server holds it (service key: the whole truth, past RLS).
pub async fn server_rows(server: &DevServer, table: &str, query: &str) -> Vec<Value> {
    reqwest::Client::new()
        .get(format!("{}/rest/v1/{table}?{query}", server.url()))
        .header("apikey", server.anon_key())
        .bearer_auth(server.service_role_key())
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON rows")
}

/// `POST /auth/v1/{path}` with the anon key and `body`; the JSON answer (a session for
/// signup and the password grant).
pub async fn auth_post(server: &DevServer, path: &str, body: &Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/auth/v1/{path}", server.url()))
        .header("apikey", server.anon_key())
        .json(body)
        .send()
        .await
        .expect("auth request")
        .json()
        .await
        .expect("auth answer")
}

/// A device with live sync: an engine on an in-memory SQLite store, shareable.
pub type Replica = std::sync::Arc<supasync_core::Engine<supasync_native::SqliteStore, supasync_native::ReqwestHttp>>;

/// A device of the chat schema talking to `url`.
pub async fn replica(url: &str, key: &str) -> Replica {
    replica_on(url, key, supasync_native::SqliteStore::in_memory().expect("store")).await
}

/// A device of the chat schema whose replica is the SQLite file at `path` (reopened as
/// it was when the file exists: the session and the outbox included).
pub async fn replica_at(url: &str, key: &str, path: &std::path::Path) -> Replica {
    replica_on(url, key, supasync_native::SqliteStore::open(path).expect("store")).await
}

async fn replica_on(url: &str, key: &str, store: supasync_native::SqliteStore) -> Replica {
    replica_with(url, key, store, "tests/chat_schema.json").await
}

/// A device whose schema is the JSON file at `schema` (relative to this crate).
pub async fn replica_with_schema(url: &str, key: &str, schema: &str) -> Replica {
    replica_with(url, key, SqliteStore::in_memory().expect("store"), schema).await
}

async fn replica_with(url: &str, key: &str, store: supasync_native::SqliteStore, schema: &str) -> Replica {
    use supasync_core::{client::Project, Engine, EngineConfig, Schema};
    let schema = Schema::from_json(&std::fs::read_to_string(manifest().join(schema)).expect("schema")).expect("schema");
    std::sync::Arc::new(
        Engine::open(
            schema,
            store,
            supasync_native::ReqwestHttp::with_timeout(std::time::Duration::from_secs(5)).expect("http"),
            Project { url: url.into(), anon_key: key.into() },
            EngineConfig::with_clock(supasync_native::system_now_ms),
        )
        .await
        .expect("engine"),
    )
}

/// Test pacing: quick reconnects and retries, this heartbeat.
fn test_pacing(heartbeat_ms: u64) -> (supasync_core::realtime::RealtimeConfig, supasync_core::live::LiveConfig) {
    use supasync_core::{live::LiveConfig, realtime::RealtimeConfig, Backoff};
    let fast = Backoff { initial_ms: 100, max_ms: 500 };
    let rt = RealtimeConfig {
        heartbeat_ms,
        push_timeout_ms: 3_000,
        reconnect: fast,
        rejoin: fast,
        ..RealtimeConfig::with_clock(supasync_native::system_now_ms)
    };
    (rt, LiveConfig { retry: fast, ..Default::default() })
}

/// Start live sync with test pacing: quick reconnects and retries, this heartbeat.
pub fn go_live(d: &Replica, url: &str, key: &str, heartbeat_ms: u64) -> supasync_core::live::LiveSync {
    let (rt, live) = test_pacing(heartbeat_ms);
    supasync_native::start_live(d.clone(), url, key, rt, live).0
}

/// Wait until the live sync reports `want`.
pub async fn until_phase(l: &supasync_core::live::LiveSync, want: supasync_core::live::Phase, secs: u64) {
    use futures_util::StreamExt;
    let mut st = l.statuses();
    tokio::time::timeout(std::time::Duration::from_secs(secs), async {
        while let Some(s) = st.next().await {
            if s.phase == want {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("phase {want:?} not reached in {secs} s"));
}

/// Live sync whose tasks the test can kill as a process kill would: aborted wherever
/// they are (mid-push included), with no goodbye to the server.
pub struct KillableLive {
    pub live: supasync_core::live::LiveSync,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KillableLive {
    /// Abort both tasks and wait until they are gone (their hold on the engine too).
    pub async fn kill(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// [`go_live`], with the tasks' handles kept for [`KillableLive::kill`].
pub fn go_live_killable(d: &Replica, url: &str, key: &str, heartbeat_ms: u64) -> KillableLive {
    use supasync_core::{live::LiveSync, realtime::RealtimeClient};
    use supasync_native::{TokioTimer, TungsteniteConnector};
    let (rt, cfg) = test_pacing(heartbeat_ms);
    let (client, driver) = RealtimeClient::new(url, key, rt);
    let (live, live_driver) = LiveSync::new(d.clone(), client, cfg);
    let tokens = live.token_source(d.clone());
    let tasks = vec![
        tokio::spawn(driver.run(TungsteniteConnector, TokioTimer, Some(tokens))),
        tokio::spawn(async move {
            let _ = live_driver.run(TokioTimer).await;
        }),
    ];
    KillableLive { live, tasks }
}
