//! Where a table's pull resumes: the kit's snapshot as of the last pull (every
//! transaction below `next_txid` was read, except those still running then, which are
//! asked for again). Rows and tombstones each keep one, under `cursor:<table>` and
//! `tombstones:<table>`.

use serde::{Deserialize, Serialize};

use crate::local::store::{Store, StoreError};

/// Where a table's pull resumes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Rows written by transactions from this id on.
    pub next_txid: i64,
    /// Transactions that were running at the last pull.
    pub pending: Vec<i64>,
}

/// The cursor stored under `key` (the start, if none).
pub async fn read<S: Store>(store: &S, key: &str) -> Result<Cursor, StoreError> {
    match store.meta(key).await? {
        Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("{key}: {e}"))),
        None => Ok(Cursor::default()),
    }
}
