//! One sync of a deployment, both ways: the file's changes to the server (settling
//! conflicts), then the server's edits to the file; and the outcome, or the failure,
//! in `sync_metadata.owui_sync_log`.
//!
//! Push first: it settles every row both sides wrote (the later write wins), so the
//! pull after it only brings rows the app has not touched since.

use std::time::SystemTime;

use rusqlite::Connection;
use serde::Serialize;
use tokio_postgres::Client;

use crate::error::AttachError;
use crate::progress::Progress;
use crate::pull::{pull_all, PullReport};
use crate::push::{push_all, PushReport};
use crate::sync_log::{log_outcome, Counts};
use crate::tenant::Tenant;

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub pushed: PushReport,
    pub pulled: PullReport,
}

/// Sync both ways, and log it.
pub async fn sync(db: &mut Connection, pg: &mut Client, tenant: &Tenant, progress: &mut dyn Progress) -> Result<SyncReport, AttachError> {
    let started = SystemTime::now();
    let outcome = both_ways(db, pg, tenant, progress).await;
    let counts = outcome.as_ref().map(counts).unwrap_or_default();
    log_outcome(pg, tenant, "both", started, outcome.as_ref().err(), counts).await?;
    outcome
}

async fn both_ways(db: &mut Connection, pg: &mut Client, tenant: &Tenant, progress: &mut dyn Progress) -> Result<SyncReport, AttachError> {
    let (pushed, tables) = push_all(db, pg, tenant, progress).await?;
    let pulled = pull_all(db, pg, tenant, &tables, progress).await?;
    Ok(SyncReport { pushed, pulled })
}

/// A sync's figures, as the log keeps them.
fn counts(r: &SyncReport) -> Counts {
    Counts {
        upserted: r.pushed.upserted + r.pulled.written,
        deleted: r.pushed.deleted + r.pulled.deleted,
        tables: serde_json::json!({"pushed": r.pushed.tables, "pulled": r.pulled.tables, "history": r.pushed.history.len() + r.pulled.history.len()}),
    }
}
