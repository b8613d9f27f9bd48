//! Showing a new server row the moment its Realtime change arrives, before the store
//! has been read (issue 23's live latency).
//!
//! Applying a change first reads the store: is the row held (with a pending edit that
//! must stay on top), has the last pull gone past it (then it was deleted since), what
//! are its parents' local ids. In a browser that read is one IndexedDB round trip,
//! 1.2–1.8 ms, most of what a live query adds over supabase-js's own callback. For the
//! common change, a row another device just inserted, this process already knows the
//! answers: [`Forecast`] keeps what it learned of them, and [`show_early`] announces the
//! row to live queries ([`crate::local::events::EngineEvent::Arriving`]) before the read
//! begins (`remote_change::show_early`). The change is then applied exactly as before, read included; the early row is
//! only a forecast of what that write announces.
//!
//! What makes the forecast sure, all of it in this process's memory:
//! - the change is an INSERT (a row new on the server) of a table no other table
//!   references (no child waits for its server id);
//! - for a shared table, the row is the user's own, or its scope id is one the
//!   replica holds, as a change's
//!   read found them since the last pull began or ended (only pulls change them);
//! - the row is not this process's own insert coming back ([`Forecast::pushing`]: the
//!   only way a device holds a row the server just created is that it made it; in a
//!   browser only the leading tab pushes and applies changes), and not one the server
//!   deleted since ([`super::graveyard::Graveyard`]);
//! - the table's pull cursor is known and not past the change (a cursor only moves
//!   forward, and this process's pulls tell the forecast before they store one), so
//!   the change is not a stale one queued during a catch-up;
//! - every parent's local id is known (server id ↔ local id pairs never change once
//!   made; learned from the rows this process stored or pushed).
//!
//! When the forecast is wrong after all (a race the rules above cannot see, such as a
//! pull of the same row finishing in between), the write that follows announces the
//! truth: live queries re-read (`remote_change::settle`), so what was shown is corrected in the next
//! answer and nothing stored differs.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::Value;

use super::cursor::Cursor;
use super::references::ParentLocalIds;
use crate::local::local_row::{sync_txid, LocalRow, Row, RowStatus};
use crate::local::schema::TableDecl;

/// How many pairs (parent server id → local id), and how many of this process's own
/// inserts, the forecast remembers.
const REMEMBERED: usize = 20_000;

/// What this process knows of the rows a change may touch (see the module docs).
#[derive(Default)]
pub struct Forecast {
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// (table, server id as JSON text) → local id, of tables other tables reference.
    ids: Bounded<(String, String), String>,
    /// (table, local id) of rows this process sent as inserts: their echo is a row
    /// this device holds.
    pushed: Bounded<(String, String), ()>,
    /// Each table's pull cursor, as far as this process read or wrote it.
    cursors: HashMap<String, Cursor>,
    /// Shared tables' held scope ids, as a change's read found them since the last
    /// pull began or ended (only pulls change them).
    scopes: HashMap<String, BTreeSet<String>>,
    /// Counts the pulls' starts and ends: a read begun before one is not learned.
    scopes_generation: u64,
}

/// A map that forgets its oldest keys past [`REMEMBERED`].
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> Bounded<K, V> {
    fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.order.len() > REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

impl Forecast {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rows of `table` about to be sent as inserts (called before the request goes).
    pub fn pushing<'a>(&self, table: &str, local_ids: impl IntoIterator<Item = &'a str>) {
        let mut k = self.known();
        for l in local_ids {
            k.pushed.insert((table.to_string(), l.to_string()), ());
        }
    }

    /// Server ids of rows of `table` and their local ids, as stored or pushed.
    pub fn learn_ids(&self, table: &str, pairs: &[(Value, String)]) {
        let mut k = self.known();
        for (sid, local) in pairs {
            k.ids.insert((table.to_string(), sid.to_string()), local.clone());
        }
    }

    /// Parents' local ids a change's read found (the same keys as [`ParentLocalIds`]).
    pub fn learn_parents(&self, parents: &ParentLocalIds) {
        let mut k = self.known();
        for ((table, sid), local) in parents {
            if let Some(l) = local {
                k.ids.insert((table.clone(), sid.clone()), l.clone());
            }
        }
    }

    /// Where the held scope ids stand; pass it to [`Forecast::learn_scopes`] with what a
    /// read begun now finds.
    pub fn scopes_generation(&self) -> u64 {
        self.known().scopes_generation
    }

    /// A shared table's held scope ids, read when the generation was `generation`.
    pub fn learn_scopes(&self, table: &str, held: &BTreeSet<String>, generation: u64) {
        let mut k = self.known();
        if k.scopes_generation == generation {
            k.scopes.insert(table.to_string(), held.clone());
        }
    }

    /// A pull begins or ends: the held scope ids may change.
    pub fn forget_scopes(&self) {
        let mut k = self.known();
        k.scopes.clear();
        k.scopes_generation += 1;
    }

    /// Forget everything (the replica's data was wiped).
    pub fn forget(&self) {
        let mut k = self.known();
        let generation = k.scopes_generation + 1;
        *k = Known { scopes_generation: generation, ..Known::default() };
    }

    /// `table`'s pull cursor as read or about to be stored: kept if it is further on.
    pub fn cursor(&self, table: &str, cur: &Cursor) {
        let mut k = self.known();
        match k.cursors.get(table) {
            Some(have) if have.next_txid >= cur.next_txid => {}
            _ => {
                k.cursors.insert(table.to_string(), cur.clone());
            }
        }
    }

    /// The row a server INSERT of `decl` (already known to be of a table nothing
    /// references, and not in the graveyard) brings, as it will be stored:
    /// `None` unless the forecast is sure of it (see the module docs).
    /// `mine`: the row's owner is the user signed in (a shared row of theirs needs no
    /// held scope id).
    pub fn new_row(&self, decl: &TableDecl, record: &Row, local_id: &str, server_id: &Value, mine: bool) -> Option<LocalRow> {
        let txid = sync_txid(record)?;
        let mut mirror = record.clone();
        {
            let k = self.known();
            if k.pushed.map.contains_key(&(decl.name.clone(), local_id.to_string())) {
                return None;
            }
            let cur = k.cursors.get(&decl.name)?;
            if txid < cur.next_txid && !cur.pending.contains(&txid) {
                return None;
            }
            // A shared row: the user's own, or of a scope id this replica holds (or of none).
            if let (Some(col), false) = (&decl.shared_by, mine) {
                if let Some(id) = record.get(col).filter(|v| !v.is_null()) {
                    if !k.scopes.get(&decl.name)?.contains(&crate::local::local_row::id_text(id)) {
                        return None;
                    }
                }
            }
            for (col, parent) in &decl.references {
                let Some(v) = record.get(col).filter(|v| !v.is_null()) else { continue };
                let local = k.ids.map.get(&(parent.clone(), v.to_string()))?;
                mirror.insert(col.clone(), Value::String(local.clone()));
            }
        }
        Some(LocalRow {
            table: decl.name.clone(),
            local_id: local_id.to_string(),
            server_id: Some(server_id.clone()),
            mirror: Some(mirror),
            overlay: None,
            status: RowStatus::Synced,
            last_pushed: None,
        })
    }
}
