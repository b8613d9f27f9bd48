//! One sync of a deployment, both ways: the file's changes to the server (settling
//! conflicts), then the server's edits to the file; and the outcome, or the failure,
//! in `sync_metadata.owui_sync_log`.
//!
//! Push first: it settles every row both sides wrote (the later write wins), so the
//! pull after it only brings rows the app has not touched since.

use std::time::SystemTime;

use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Client;

use crate::error::AttachError;
use crate::progress::Progress;
use crate::pull::{pull_all, PullReport};
use crate::push::{push_all, PushReport};
use crate::tenant::{Tenant, METADATA};

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
    let counts = outcome.as_ref().map(|r| Counts::of(&r.pushed, Some(&r.pulled))).unwrap_or_default();
    log_outcome(pg, tenant, "both", started, outcome.as_ref().err(), counts).await?;
    outcome
}

async fn both_ways(db: &mut Connection, pg: &mut Client, tenant: &Tenant, progress: &mut dyn Progress) -> Result<SyncReport, AttachError> {
    let (pushed, tables) = push_all(db, pg, tenant, progress).await?;
    let pulled = pull_all(db, pg, tenant, &tables, progress).await?;
    Ok(SyncReport { pushed, pulled })
}

/// A sync's figures, as the log keeps them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    pub upserted: u64,
    pub deleted: u64,
    pub tables: Value,
}

impl Counts {
    pub(crate) fn of(pushed: &PushReport, pulled: Option<&PullReport>) -> Counts {
        let mut tables = serde_json::json!({"pushed": pushed.tables});
        let (mut upserted, mut deleted) = (pushed.upserted, pushed.deleted);
        if let Some(p) = pulled {
            tables["pulled"] = serde_json::json!(p.tables);
            upserted += p.written;
            deleted += p.deleted;
        }
        tables["history"] = serde_json::json!(pushed.history.len() + pulled.map_or(0, |p| p.history.len()));
        Counts { upserted, deleted, tables }
    }
}

/// Log a sync's outcome. When it failed because the server could not be reached,
/// logging it fails too: the sync's own error is what the caller gets, and the
/// deployment's status shows it (the log on the server says so once it is back).
pub(crate) async fn log_outcome(pg: &mut Client, tenant: &Tenant, direction: &str, started: SystemTime, error: Option<&AttachError>, counts: Counts) -> Result<(), AttachError> {
    let error = error.map(|e| e.to_string());
    let logged = pg
        .execute(
            &format!("INSERT INTO {METADATA}.owui_sync_log (deployment, direction, started_at, rows_upserted, rows_deleted, tables, error) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[&tenant.deployment, &direction, &started, &(counts.upserted as i64), &(counts.deleted as i64), &counts.tables, &error],
        )
        .await;
    if error.is_none() {
        logged?;
        pg.execute(&format!("UPDATE {METADATA}.client_config SET last_sync_at = now() WHERE deployment = $1"), &[&tenant.deployment]).await?;
    }
    Ok(())
}
