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

mod app;
mod local;
mod net;
mod platform;
pub mod select;
mod sync;

// Every module keeps the path it had before the layers were folders.
pub use app::{device, engine, files as file_api, listeners, live, live_query, replica, settle};
pub use app::files::FileView;
pub use local::{events, files, index, local_row, new_row, outbox, row_doc, schema, store, write_lock, writer};
pub use net::{auth, backoff, classify, client, realtime, transport};
pub use platform::{maybe_send, timer};
pub use sync::{pull, push, references, remote_change, scopes, server_delete};

#[doc(hidden)]
pub use async_trait;

pub use local_row::Row;
pub use backoff::Backoff;
pub use settle::{Settled, SyncRound};
pub use timer::Timer;
pub use replica::{Replica, ReplicaConfig, Runtime};
pub use device::{DeviceReplica, User, UserStores};
pub use engine::{Engine, EngineConfig, EngineError, Query, RowView, Status};
pub use local_row::{LocalRow, RowStatus};
pub use outbox::{OutboxEntry, OutboxOp};
pub use schema::{Schema, SchemaError, TableDecl};
pub use select::{Cardinality, Order, SelectBuilder, SelectError, SelectOptions, SelectRequest, SelectResult, SelectedRow};
pub use store::{Store, StoreError, WriteBatch};
pub use writer::{LocalWriter, WriteError};
