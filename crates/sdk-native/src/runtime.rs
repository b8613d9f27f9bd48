//! The core's [`Runtime`] on tokio: what [`supasync_core::Replica`] needs to run here
//! (tokio timers and tasks, tokio-tungstenite WebSockets, the system clock). With it a
//! Rust app opens a replica with live sync in one call:
//!
//! ```ignore
//! let replica = Replica::open(schema, SqliteStore::open(path)?, ReqwestHttp::new()?,
//!     TokioRuntime, ReplicaConfig::new(url, anon_key), None).await?;
//! replica.sign_in(email, password).await?;   // live sync starts
//! ```

use supasync_core::maybe_send::BoxTask;
use supasync_core::Runtime;

use crate::{system_now_ms, TokioTimer, TungsteniteConnector};

/// The current tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    type Timer = TokioTimer;
    type Ws = TungsteniteConnector;

    fn timer(&self) -> TokioTimer {
        TokioTimer
    }

    fn ws(&self) -> TungsteniteConnector {
        TungsteniteConnector
    }

    fn spawn(&self, task: BoxTask) {
        tokio::spawn(task);
    }

    fn now_ms() -> i64 {
        system_now_ms()
    }
}
