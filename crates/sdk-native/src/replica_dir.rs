//! Where a device keeps its replicas: one SQLite file per user under `DIR/users/`,
//! and `DIR/active_user` naming the user signed in on this device. The CLI and the
//! language bindings share this layout, so `supasync --store DIR query …` can look into
//! a Python or Kotlin app's replica, and a user who signs out and back in (or another
//! user on the same device) finds their own data.
//!
//! With an encryption key ([`ReplicaDir::encrypted`]) each user's file is encrypted
//! with a key of its own derived from it (see [`crate::store::cipher`]). What stays
//! readable on disk: the user ids (file names and `active_user`), the files' sizes, and
//! the copies [`crate::file_url`] writes under `files/` for native views (a view reads
//! a plain file; the bytes the replica keeps are inside the encrypted store).

use std::path::{Path, PathBuf};

use supasync_core::StoreError;

use crate::store::cipher::{self, EncryptionKey, FileKind};
use crate::SqliteStore;

/// A device's replica directory.
#[derive(Debug, Clone)]
pub struct ReplicaDir {
    root: PathBuf,
    key: Option<EncryptionKey>,
}

impl ReplicaDir {
    pub fn new(root: impl AsRef<Path>) -> ReplicaDir {
        ReplicaDir { root: root.as_ref().to_path_buf(), key: None }
    }

    /// The same directory, its stores encrypted with `key` (a plaintext store is
    /// encrypted when it is next opened, its pending writes kept).
    pub fn encrypted(self, key: EncryptionKey) -> ReplicaDir {
        ReplicaDir { key: Some(key), ..self }
    }

    /// Re-encrypt every user's store from this directory's key (or from plaintext) to
    /// `new`, and go on with `new`. The replica must be closed. A store already on
    /// `new` is left alone, so a key change that stopped half way is finished by
    /// running it again with the same keys.
    pub fn rekey(self, new: EncryptionKey) -> Result<ReplicaDir, StoreError> {
        for user in self.users()? {
            let path = self.store_path(&user);
            let to = new.for_user(&user);
            let from = match cipher::file_kind(&path)? {
                FileKind::New => continue,
                FileKind::Plain => None,
                FileKind::Opaque if cipher::opens_with(&path, &to) => continue,
                FileKind::Opaque => match &self.key {
                    Some(k) => Some(k.for_user(&user)),
                    None => {
                        return Err(StoreError::Key(format!("{}: the replica is encrypted; give its current key to change it", path.display())));
                    }
                },
            };
            cipher::reencrypt(&path, from.as_ref(), &to)?;
        }
        Ok(self.encrypted(new))
    }

    /// The users with a store in this directory.
    pub fn users(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join("users");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir, e)),
        };
        let mut users = Vec::new();
        for entry in entries {
            let name = entry.map_err(|e| io(&dir, e))?.file_name();
            if let Some(user) = name.to_str().and_then(|n| n.strip_suffix(".db")) {
                users.push(user.to_string());
            }
        }
        users.sort();
        Ok(users)
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
        match &self.key {
            Some(key) => SqliteStore::open_encrypted(self.store_path(user_id), &key.for_user(user_id)),
            None => SqliteStore::open(self.store_path(user_id)),
        }
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
