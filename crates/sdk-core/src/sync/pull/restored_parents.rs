//! The parents a pull restored, kept for the restores of their children in the same
//! pull. A restored row's references are mapped to its parents' local ids
//! ([`to_local`](crate::sync::references::to_local)), and a parent not yet met in the
//! walk is looked up in the store. In a browser that read waits for every page still
//! committing (IndexedDB runs a read after the writes begun before it), so each lookup
//! emptied the restore's pipeline: a restore of 100k messages in 91 conversations left
//! the page's thread idle more than half the time. The pull restores the parents
//! first and knows each one's pair (server id, local id) once its page is stored;
//! those pairs never change, so a child's page finds its parents here and reads
//! nothing. Only pages seen stored are learned, in the form they were stored.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::local::local_row::Row;
use crate::local::schema::TableDecl;
use crate::sync::references::ParentLocalIds;

/// How many pairs a pull keeps (about 100 bytes each); past it, parents are looked up
/// as before. A million-message account has some thousands of conversations.
const KEPT: usize = 100_000;

/// (parent table, server id as JSON text) → local id, as [`ParentLocalIds`] keys them.
#[derive(Default)]
pub(super) struct RestoredParents {
    ids: Mutex<HashMap<(String, String), String>>,
}

impl RestoredParents {
    /// A page of `table` is stored: its pairs are known for good.
    pub(super) fn learn(&self, table: &str, pairs: Vec<(Value, String)>) {
        if pairs.is_empty() {
            return;
        }
        let Ok(mut ids) = self.ids.lock() else { return };
        for (sid, local) in pairs {
            if ids.len() >= KEPT {
                return;
            }
            ids.insert((table.to_string(), sid.to_string()), local);
        }
    }

    /// `parents` with the parents of `rows` (of `decl`) that this pull restored added;
    /// returned for the call that maps the rows' references.
    pub(super) fn known<'p>(&self, decl: &TableDecl, rows: &[Row], parents: &'p mut ParentLocalIds) -> &'p mut ParentLocalIds {
        if decl.references.is_empty() {
            return parents;
        }
        let Ok(ids) = self.ids.lock() else { return parents };
        if ids.is_empty() {
            return parents;
        }
        for (col, parent) in &decl.references {
            // Neighbouring rows mostly share a parent (a conversation's messages).
            let mut last: Option<&Value> = None;
            for v in rows.iter().filter_map(|r| r.get(col)).filter(|v| !v.is_null()) {
                if last == Some(v) {
                    continue;
                }
                last = Some(v);
                let key = (parent.clone(), v.to_string());
                if matches!(parents.get(&key), Some(Some(_))) {
                    continue;
                }
                if let Some(local) = ids.get(&key) {
                    parents.insert(key, Some(local.clone()));
                }
            }
        }
        parents
    }
}
