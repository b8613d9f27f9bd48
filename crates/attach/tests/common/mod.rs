//! What the attach tests against supasync-dev share: a server on the test binary's
//! shared cluster, a Postgres client to it, and an app's database made from a schema.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use supasync_attach::capture;
use supasync_devserver::DevServer;
use tokio_postgres::{Client, NoTls};

pub async fn server() -> (DevServer, Client) {
    let s = DevServer::builder().shared_test_cluster().start().await.expect("dev server");
    let pg = connect(&s).await;
    (s, pg)
}

pub async fn connect(s: &DevServer) -> Client {
    let (pg, conn) = tokio_postgres::connect(s.database_url(), NoTls).await.expect("postgres");
    tokio::spawn(conn);
    pg
}

/// `dir/name`, made by `schema`.
pub fn app_db(dir: &Path, name: &str, schema: &str) -> PathBuf {
    let path = dir.join(name);
    Connection::open(&path).unwrap().execute_batch(schema).unwrap();
    path
}

/// The sync's connection to an app's file, waiting `wait` for the app's locks.
pub fn open(path: &Path, wait: Duration) -> Connection {
    capture::open(path, wait).unwrap()
}
