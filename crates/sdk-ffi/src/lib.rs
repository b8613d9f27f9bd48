//! supasync for Kotlin, Swift and Python: uniffi exports over the core's `Replica` on
//! the native platform (SQLite, reqwest, tokio-tungstenite). Thin on purpose: every
//! export translates arguments, calls the core, and translates the answer; nothing of
//! sync is decided here. Each language adds a small hand-written layer on top
//! (`bindings/python/supasync`, `bindings/kotlin`, `bindings/swift`) that turns the JSON
//! rows crossing this boundary into its own dictionaries and maps.
//!
//! Why JSON text at the boundary: rows are schemaless objects (whatever columns a table
//! has), which uniffi cannot type; one string is cheap to pass and every language
//! parses it natively. Statuses, rejected writes and history lines cross the same way,
//! in the same shapes as the CLI prints and the npm package returns.
//!
//! The library owns its tokio runtime (two worker threads): foreign callers await
//! exported futures from their own executors (asyncio, coroutines, Swift tasks) and the
//! work runs here.

mod callback_gate;
mod replica;
mod runtime;
mod subscription;

pub use callback_gate::shutdown_callbacks;
pub use replica::{open_encrypted_replica, open_replica, rekey_replica, FfiChannel, FfiReplica};
pub use subscription::{ChannelListener, RowsListener, StatusListener, Subscription};

uniffi::setup_scaffolding!();

/// Every failure, flat: a kind (the CLI's: `invalid`, `store`, `key`, `server`, `auth`,
/// `not_found`, `timeout`, `closed`, `config`) and a message that says what to do.
///
/// The text is `detail`, not `message`: generated Kotlin and Swift exceptions have a
/// `message` of their own.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SupaSyncError {
    #[error("{kind}: {detail}")]
    Failed { kind: String, detail: String },
}

impl SupaSyncError {
    pub(crate) fn new(kind: &str, detail: impl ToString) -> SupaSyncError {
        SupaSyncError::Failed { kind: kind.into(), detail: detail.to_string() }
    }
}

impl From<supasync_core::EngineError> for SupaSyncError {
    fn from(e: supasync_core::EngineError) -> Self {
        SupaSyncError::new(e.kind(), &e)
    }
}
