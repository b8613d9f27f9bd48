//! `supasync attach`: an existing app's SQLite database, captured as the app writes it
//! (supasync-attach). It needs no account and no server: it works on the file alone.

use std::path::Path;

use serde_json::{json, Value};
use supasync_attach::capture::{self, DEFAULT_WAIT};
use supasync_attach::{AttachError, KeyRule};

use crate::{fail, Failure};

impl From<AttachError> for Failure {
    fn from(e: AttachError) -> Self {
        let kind = match &e {
            AttachError::NotADatabase { .. } => "invalid",
            AttachError::Busy { .. } => "busy",
            AttachError::Sqlite(_) | AttachError::Corrupt(_) => "store",
        };
        fail(kind, e.to_string())
    }
}

/// What `supasync attach` was asked to do.
pub enum Action {
    /// Capture every table (again: it is safe to repeat, and picks up new tables).
    Install,
    /// The rows waiting in the change log, per table.
    Pending,
    /// Remove the triggers and the log.
    Detach,
}

pub fn run(db: &Path, action: Action) -> Result<Value, Failure> {
    let mut conn = capture::open(db, DEFAULT_WAIT)?;
    Ok(match action {
        Action::Install => {
            let done = capture::install(&mut conn)?;
            let tables: Vec<Value> = done
                .tables
                .iter()
                .map(|t| {
                    let key = match &t.key {
                        KeyRule::PrimaryKey(cols) => json!(cols),
                        KeyRule::RowId => json!("rowid"),
                    };
                    json!({"name": t.name, "key": key, "columns": t.columns.len()})
                })
                .collect();
            json!({"db": db.display().to_string(), "journal_mode": done.journal_mode, "tables": tables, "fresh": done.fresh})
        }
        Action::Pending => json!({"db": db.display().to_string(), "pending": capture::pending(&conn)?}),
        Action::Detach => {
            capture::detach(&mut conn)?;
            json!({"detached": db.display().to_string()})
        }
    })
}
