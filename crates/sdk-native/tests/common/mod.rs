//! Test helpers shared by the native scenario tests.

#![allow(dead_code)]

pub use supasync_devserver::fault_proxy;

use std::path::PathBuf;

use serde_json::Value;
use supasync_devserver::DevServer;

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
