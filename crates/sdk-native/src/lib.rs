//! supasync-native: supasync for native apps (Tauri, Rust, and through uniffi Swift,
//! Kotlin and Python). It puts `supasync-core`'s traits on native ground: the SQLite
//! store ([`store::SqliteStore`]), reqwest and tokio-tungstenite transports, and the
//! tokio [`TokioRuntime`] that runs the core's one-call [`supasync_core::Replica`], and
//! [`open_replica`]: the replica of whoever is signed in on this device, in one call.

pub mod device;
pub mod file_url;
pub mod http;
pub mod realtime;
pub mod replica_dir;
pub mod runtime;
pub mod store;
pub mod timer;

pub use device::{open_encrypted_replica, open_replica, rekey_replica, NativeReplica, NativeStores};
pub use file_url::file_url;
pub use http::{system_now_ms, ReqwestHttp};
pub use realtime::{start_live, start_realtime, TungsteniteConnector};
pub use replica_dir::ReplicaDir;
pub use runtime::TokioRuntime;
pub use store::cipher::EncryptionKey;
pub use store::SqliteStore;
pub use timer::TokioTimer;
pub use supasync_core as core;
