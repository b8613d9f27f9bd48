//! Where a device keeps its replicas: one SQLite file per user under `DIR/users/`,
//! and `DIR/active_user` naming the user signed in on this device. The CLI and the
//! language bindings share this layout, so `supasync --store DIR query …` can look into
//! a Python or Kotlin app's replica, and a user who signs out and back in (or another
//! user on the same device) finds their own data.

use std::path::{Path, PathBuf};

use supasync_core::StoreError;

use crate::SqliteStore;

/// A device's replica directory.
#[derive(Debug, Clone)]
pub struct ReplicaDir {
    root: PathBuf,
}

impl ReplicaDir {
    pub fn new(root: impl AsRef<Path>) -> ReplicaDir {
        ReplicaDir { root: root.as_ref().to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The user signed in on this device, if any.
    pub fn active_user(&self) -> Option<String> {
        std::fs::read_to_string(self.root.join("active_user"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Record who is signed in on this device.
    pub fn set_active_user(&self, user_id: &str) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.root).map_err(|e| io(&self.root, e))?;
        std::fs::write(self.root.join("active_user"), user_id).map_err(|e| io(&self.root, e))
    }

    /// Nobody is signed in on this device any more.
    pub fn clear_active_user(&self) {
        let _ = std::fs::remove_file(self.root.join("active_user"));
    }

    /// The SQLite file of `user_id`'s replica.
    pub fn store_path(&self, user_id: &str) -> PathBuf {
        self.root.join("users").join(format!("{user_id}.db"))
    }

    /// Open (or create) `user_id`'s replica.
    pub fn open_store(&self, user_id: &str) -> Result<SqliteStore, StoreError> {
        let dir = self.root.join("users");
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        SqliteStore::open(self.store_path(user_id))
    }

    /// Delete `user_id`'s replica files (a wiped sign-out; the store must be closed).
    pub fn wipe(&self, user_id: &str) {
        let db = self.store_path(user_id);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

fn io(p: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", p.display()))
}
