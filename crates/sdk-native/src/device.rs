//! A native app's replica in one call: [`open_replica`] gives the core's
//! [`DeviceReplica`] (the replica of whoever is signed in, moving at sign-in) on SQLite
//! files under a [`ReplicaDir`] (the CLI's layout), reqwest, tokio-tungstenite and
//! tokio. This is what the uniffi bindings wrap and what a Tauri app holds in its state.
//!
//! ```ignore
//! let db = supasync_native::open_replica(schema, ReplicaConfig::new(url, anon_key), Some(dir)).await?;
//! db.sign_in(email, password).await?;                       // live sync starts
//! db.insert("messages", &json!({"conversation_id": c, "content": "hi"})).await?;
//! let mut rows = db.live("messages", Query::default())?;    // follows sign-ins
//! ```

use std::path::Path;

use supasync_core::{DeviceReplica, EngineError, ReplicaConfig, Schema, StoreError, UserStores};

use crate::store::cipher::EncryptionKey;
use crate::{ReplicaDir, ReqwestHttp, SqliteStore, TokioRuntime};

/// Where each user's store is: SQLite files in a replica directory, or (no directory)
/// in memory, gone when the app exits.
#[derive(Debug, Clone)]
pub enum NativeStores {
    Dir(ReplicaDir),
    Memory,
}

supasync_core::maybe_async_trait! {
    impl UserStores for NativeStores {
        type Store = SqliteStore;

        async fn active_user(&self) -> Option<String> {
            match self {
                NativeStores::Dir(d) => d.active_user(),
                NativeStores::Memory => None,
            }
        }

        async fn set_active_user(&self, user_id: Option<&str>) -> Result<(), StoreError> {
            match (self, user_id) {
                (NativeStores::Dir(d), Some(u)) => d.set_active_user(u),
                (NativeStores::Dir(d), None) => {
                    d.clear_active_user();
                    Ok(())
                }
                (NativeStores::Memory, _) => Ok(()),
            }
        }

        async fn open(&self, user_id: Option<&str>) -> Result<SqliteStore, StoreError> {
            match (self, user_id) {
                (NativeStores::Dir(d), Some(u)) => d.open_store(u),
                _ => SqliteStore::in_memory(),
            }
        }

        async fn wipe(&self, user_id: &str) -> Result<(), StoreError> {
            if let NativeStores::Dir(d) = self {
                d.wipe(user_id);
            }
            Ok(())
        }
    }
}

/// The native replica: SQLite, reqwest, tokio.
pub type NativeReplica = DeviceReplica<NativeStores, ReqwestHttp, TokioRuntime>;

/// Open the replica of the user signed in on this device last (`dir` is the replica
/// directory; without one it lives in memory). Call it inside a tokio runtime: live
/// sync runs on it.
pub async fn open_replica(schema: Schema, cfg: ReplicaConfig, dir: Option<&Path>) -> Result<NativeReplica, EngineError> {
    let stores = match dir {
        Some(d) => NativeStores::Dir(ReplicaDir::new(d)),
        None => NativeStores::Memory,
    };
    open_replica_on(schema, cfg, stores).await
}

/// [`open_replica`] with every user's store encrypted at rest (AEGIS-256; each user's
/// file under a key derived from `key`, see [`crate::store::cipher`]). Plaintext
/// stores already in `dir` are encrypted as they are opened, pending writes kept. A key
/// that does not open them fails with kind `key` and changes nothing.
pub async fn open_encrypted_replica(schema: Schema, cfg: ReplicaConfig, dir: &Path, key: EncryptionKey) -> Result<NativeReplica, EngineError> {
    open_replica_on(schema, cfg, NativeStores::Dir(ReplicaDir::new(dir).encrypted(key))).await
}

/// Change the key of the encrypted replica in `dir` from `old` (`None`: it is
/// plaintext) to `new`, every user's store included. Close the replica first. Run it
/// again with the same keys if it stopped half way.
pub fn rekey_replica(dir: &Path, old: Option<EncryptionKey>, new: EncryptionKey) -> Result<(), EngineError> {
    let d = ReplicaDir::new(dir);
    let d = match old {
        Some(k) => d.encrypted(k),
        None => d,
    };
    d.rekey(new)?;
    Ok(())
}

async fn open_replica_on(schema: Schema, cfg: ReplicaConfig, stores: NativeStores) -> Result<NativeReplica, EngineError> {
    let http = ReqwestHttp::new().map_err(|e| EngineError::Request(e.into()))?;
    DeviceReplica::open(schema, stores, http, TokioRuntime, cfg).await
}
