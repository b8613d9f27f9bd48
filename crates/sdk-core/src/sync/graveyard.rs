//! The rows this process saw the server delete, so that a stale Realtime change (queued
//! during a catch-up, or in flight when the delete arrived) cannot bring one back.
//! Deleted rows never return (server ids are not reused, and the SQL kit refuses to
//! re-insert a tombstoned `local_id`), so any later change for a buried row is stale.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use serde_json::Value;

use crate::local::local_row::{id_text, server_key, Row};

/// How many recently deleted rows a replica remembers (per process).
const GRAVEYARD_SIZE: usize = 20_000;

/// Rows this process saw deleted by the server, most recent last. Stale Realtime
/// changes can only be ones queued or in flight in this process, so memory suffices:
/// after a restart the channel is joined afresh and the pull is the truth.
#[derive(Default)]
pub struct Graveyard {
    rows: Mutex<Recent>,
}

/// (table, local id) of deleted rows: a set to look up, and their order to forget the
/// oldest.
#[derive(Default)]
struct Recent {
    set: HashSet<(String, String)>,
    order: VecDeque<(String, String)>,
}

impl Graveyard {
    pub fn bury(&self, table: &str, local_id: &str) {
        let mut g = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let key = (table.to_string(), local_id.to_string());
        if g.set.insert(key.clone()) {
            g.order.push_back(key);
            while g.order.len() > GRAVEYARD_SIZE {
                if let Some(old) = g.order.pop_front() {
                    g.set.remove(&old);
                }
            }
        }
    }

    /// Remember the row a tombstone names, whether this device holds it or not (a stale
    /// change may be about a row that never reached this device): by its local id and
    /// by its server id, as changes may carry either.
    pub fn bury_tombstone(&self, table: &str, tombstone: &Row) {
        if let Some(l) = tombstone.get("local_id").and_then(Value::as_str) {
            self.bury(table, l);
        }
        if let Some(id) = tombstone.get("row_id").and_then(Value::as_str) {
            self.bury(table, &server_key(id));
        }
    }

    /// Whether a change with this local key (and server id) is about a buried row.
    pub fn holds_change(&self, table: &str, local_key: Option<&str>, server_id: Option<&Value>) -> bool {
        local_key.is_some_and(|l| self.holds(table, l))
            || server_id.is_some_and(|id| self.holds(table, &server_key(&id_text(id))))
    }

    pub fn holds(&self, table: &str, local_id: &str) -> bool {
        let g = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        g.set.contains(&(table.to_string(), local_id.to_string()))
    }
}
