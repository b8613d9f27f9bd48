//! What a sync did not keep, kept on the server (`sync_metadata.row_history`), so an
//! operator can see it and put it back by hand:
//!
//! - a **conflict**: a row written on both sides since the last sync; the later write
//!   wins (last writer wins, by each side's clock) and the values it overwrote are
//!   recorded, with when they were written;
//! - a row **set aside**: one side holds a value the other cannot take (text in a
//!   column the server holds as integer, a row the app's constraints refuse); the sync
//!   records it with why, and goes on with the rest rather than stalling.

use serde::Serialize;
use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::error::AttachError;
use crate::tenant::{Tenant, METADATA};

/// Which side's write a conflict kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Sqlite,
    Supabase,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Sqlite => "sqlite",
            Side::Supabase => "supabase",
        }
    }
}

/// One row of the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub table: String,
    /// The row's key, server form.
    pub key: Value,
    pub what: What,
    /// The values not kept (a conflict's loser, or the row set aside), server form;
    /// `None` when that side had deleted the row.
    pub values: Option<Value>,
    /// When those values were written, ms since the epoch (by their side's clock).
    pub written_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum What {
    /// Both sides wrote the row; `kept` won.
    Conflict { kept: Side },
    /// `from`'s row could not be written on the other side, and why.
    SetAside { from: Side, why: String },
}

pub(crate) async fn ensure(pg: &impl GenericClient) -> Result<(), AttachError> {
    pg.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {METADATA}.row_history (
           id bigserial PRIMARY KEY, deployment text NOT NULL, tbl text NOT NULL, key jsonb NOT NULL,
           reason text NOT NULL, kept text, from_side text, why text,
           overwritten jsonb, written_at timestamptz, recorded_at timestamptz NOT NULL DEFAULT now());
         CREATE INDEX IF NOT EXISTS row_history_deployment ON {METADATA}.row_history (deployment, id);
         ALTER TABLE {METADATA}.row_history ENABLE ROW LEVEL SECURITY;"
    ))
    .await?;
    Ok(())
}

pub(crate) async fn record(pg: &impl GenericClient, tenant: &Tenant, r: &Record) -> Result<(), AttachError> {
    let (reason, kept, from, why) = match &r.what {
        What::Conflict { kept } => ("conflict", Some(kept.as_str()), None, None),
        What::SetAside { from, why } => ("set_aside", None, Some(from.as_str()), Some(why.as_str())),
    };
    let written = r.written_at_ms.map(|ms| ms as f64 / 1000.0);
    pg.execute(
        &format!("INSERT INTO {METADATA}.row_history (deployment, tbl, key, reason, kept, from_side, why, overwritten, written_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9))"),
        &[&tenant.deployment, &r.table, &r.key, &reason, &kept, &from, &why, &r.values, &written],
    )
    .await?;
    Ok(())
}
