//! supasync-core: the platform-free sync engine.
//!
//! Everything that decides *what* to do lives here as plain code: which tables sync and
//! how they reference each other ([`schema`]), what a row looks like locally (a mirror
//! of the server's version with an overlay of local changes, [`local_row`]), the outbox
//! of writes waiting to be pushed and how writes to one row coalesce ([`outbox`]), and
//! the optimistic write path that turns an app's insert/update/delete into one atomic
//! store batch ([`writer`]). *How* it is stored or sent is behind traits implemented per
//! platform: [`store::Store`] (SQLite natively, IndexedDB in the browser, memory in tests).
//!
//! Rows are JSON objects at this boundary ([`Row`]); typed rows are a layer above.

pub mod auth;
pub mod backoff;
pub mod classify;
pub mod client;
pub mod device;
pub mod engine;
pub mod events;
pub mod live;
pub mod live_query;
pub mod local_row;
pub mod maybe_send;
pub mod outbox;
pub mod pull;
pub mod push;
pub mod realtime;
pub mod references;
pub mod remote_change;
pub mod replica;
pub mod schema;
pub mod server_delete;
pub mod settle;
pub mod store;
pub mod timer;
pub mod transport;
pub mod write_lock;
pub mod writer;

#[doc(hidden)]
pub use async_trait;

/// A row as the app and the server see it: a JSON object.
pub type Row = serde_json::Map<String, serde_json::Value>;

pub use backoff::Backoff;
pub use settle::{Settled, SyncRound};
pub use timer::Timer;
pub use replica::{Replica, ReplicaConfig, Runtime};
pub use device::{DeviceReplica, User, UserStores};
pub use engine::{Engine, EngineConfig, EngineError, Query, RowView, Status};
pub use local_row::{LocalRow, RowStatus};
pub use outbox::{OutboxEntry, OutboxOp};
pub use schema::{Schema, SchemaError, TableDecl};
pub use store::{Store, StoreError, WriteBatch};
pub use writer::{LocalWriter, WriteError};
