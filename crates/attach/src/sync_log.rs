//! A sync's outcome, or its failure, as a line of `sync_metadata.owui_sync_log`.

use std::time::SystemTime;

use serde_json::Value;
use tokio_postgres::Client;

use crate::error::AttachError;
use crate::tenant::{Tenant, METADATA};

/// A sync's figures, as the log keeps them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    pub upserted: u64,
    pub deleted: u64,
    pub tables: Value,
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
