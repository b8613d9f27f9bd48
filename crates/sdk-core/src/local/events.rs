//! Change notifications out of the engine: which tables changed, and whether by a local
//! write. Live queries re-run on them, the live sync pushes on local ones, status
//! streams recompute on them. Subscribers that went away are dropped on the next send.

use std::sync::{Arc, Mutex};

use futures_channel::mpsc;

use crate::local::local_row::LocalRow;

/// Something changed in the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// Rows of these tables changed (what queries see, or their sync status).
    /// `elsewhere`: reported by another process or tab sharing this replica's store
    /// (so it is not passed on again).
    /// `rows`: the rows written, as the store now holds them, when the change knows
    /// them (live queries then update their answers from these rows without reading
    /// the store); `None`: re-read.
    Changed { tables: Vec<String>, local: bool, elsewhere: bool, rows: Option<ChangedRows> },
    /// Server rows of `table` on their way into the store, shown before they are stored:
    /// live queries of the table update from them at once, while the store writes.
    /// Nothing is lost by it: a server row that never reaches the store (the tab
    /// closes, the write fails) is still on the server, and the next pull brings it.
    /// A `Changed` follows once they are stored (with the same rows), or a `Changed`
    /// without rows if storing them failed. Only live queries listen; nothing that
    /// announces stored changes (other tabs, `onChange`, status) does.
    Arriving { table: String, rows: ChangedRows },
    /// A pull is bringing many rows (a new device's restore, a long absence): how far.
    Progress(PullProgress),
    /// A file is on its way to Storage: how far.
    FileProgress(FileProgress),
}

/// How far the upload of one file has come.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileProgress {
    pub bucket: String,
    pub path: String,
    /// Bytes Storage holds so far.
    pub sent: u64,
    pub size: u64,
    /// Stored (the last event of its upload).
    pub done: bool,
}

/// Rows a change wrote (shared by every subscriber).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedRows(pub Arc<Vec<LocalRow>>);

// Rows hold JSON values, which are never NaN: equality is total.
impl Eq for ChangedRows {}

/// How far a pull of one table has come: rows written so far in this pull, and the
/// server's count of the table's rows when it gives one cheaply (a restore asks).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PullProgress {
    pub table: String,
    pub rows: u64,
    pub total: Option<u64>,
    /// The table is done (the last event of its pull).
    pub done: bool,
}

/// The engine's subscriber list.
#[derive(Default)]
pub struct Notifier {
    subs: Mutex<Vec<mpsc::UnboundedSender<EngineEvent>>>,
}

impl Notifier {
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<EngineEvent> {
        let (tx, rx) = mpsc::unbounded();
        if let Ok(mut s) = self.subs.lock() {
            s.push(tx);
        }
        rx
    }

    pub fn changed(&self, tables: Vec<String>, local: bool) {
        self.send(EngineEvent::Changed { tables, local, elsewhere: false, rows: None });
    }

    /// Rows of `table` changed, and here they are as the store now holds them.
    pub fn changed_rows(&self, table: &str, local: bool, rows: Vec<LocalRow>) {
        self.send(EngineEvent::Changed { tables: vec![table.to_string()], local, elsewhere: false, rows: Some(ChangedRows(Arc::new(rows))) });
    }

    /// Server rows of `table` about to be stored (see [`EngineEvent::Arriving`]).
    pub fn arriving(&self, table: &str, rows: Vec<LocalRow>) {
        if !rows.is_empty() {
            self.send(EngineEvent::Arriving { table: table.to_string(), rows: ChangedRows(Arc::new(rows)) });
        }
    }

    /// How far a long pull has come.
    pub fn progress(&self, p: PullProgress) {
        self.send(EngineEvent::Progress(p));
    }

    /// How far an upload has come.
    pub fn file_progress(&self, p: FileProgress) {
        self.send(EngineEvent::FileProgress(p));
    }

    /// A change another tab or process made to the shared store.
    pub fn changed_elsewhere(&self, tables: Vec<String>, local: bool) {
        self.send(EngineEvent::Changed { tables, local, elsewhere: true, rows: None });
    }

    fn send(&self, e: EngineEvent) {
        if matches!(&e, EngineEvent::Changed { tables, .. } if tables.is_empty()) {
            return;
        }
        if let Ok(mut s) = self.subs.lock() {
            s.retain(|tx| tx.unbounded_send(e.clone()).is_ok());
        }
    }
}
