//! How far a long sync has come, for a display: a first sync of a large file copies
//! whole tables for minutes, and an operator watching it should see it move.

use serde::Serialize;

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `copy` (a table copied whole), `push` (changes sent), `pull` (server edits
    /// applied to the file) or `restore`.
    pub phase: &'static str,
    pub table: String,
    /// Rows done so far in this phase and table.
    pub done: u64,
    /// Rows in all, when known.
    pub total: Option<u64>,
}

/// Told each step as it is done.
pub trait Progress: Send {
    fn step(&mut self, step: &Step);
}

/// No display.
impl Progress for () {
    fn step(&mut self, _: &Step) {}
}

impl<F: FnMut(&Step) + Send> Progress for F {
    fn step(&mut self, step: &Step) {
        self(step)
    }
}
