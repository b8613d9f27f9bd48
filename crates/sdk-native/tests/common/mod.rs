//! Test helpers shared by the native scenario tests.

#![allow(dead_code)]

pub mod fault_proxy;

use std::path::PathBuf;

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
