//! The server made ready for a sync: the `sync_metadata` schema the seed lays out
//! (`client_config`, `owui_sync_log`, the row history, the change-log trigger
//! function), and the tenant's schema made to match the app's tables (with each
//! table's change-log trigger).

use tokio_postgres::Client;

use crate::error::AttachError;
use crate::inspect::AppTable;
use crate::tenant::{ident, Tenant, TenantTable, METADATA};

/// Make sure `sync_metadata` exists (idempotent).
pub async fn ensure_metadata(pg: &mut Client) -> Result<(), AttachError> {
    let tx = pg.transaction().await?;
    // Deployments syncing at once would race to create the same objects (Postgres's
    // `IF NOT EXISTS` is not safe against that): one at a time.
    tx.execute("SELECT pg_advisory_xact_lock(hashtext('supasync sync_metadata'))", &[]).await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {METADATA};
         CREATE TABLE IF NOT EXISTS {METADATA}.client_config (
           deployment text PRIMARY KEY, tenant_schema text NOT NULL UNIQUE,
           sync_interval text NOT NULL DEFAULT 'manual', enabled boolean NOT NULL DEFAULT true,
           last_sync_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS {METADATA}.owui_sync_log (
           id bigserial PRIMARY KEY, deployment text NOT NULL, direction text NOT NULL,
           started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL DEFAULT now(),
           rows_upserted bigint NOT NULL DEFAULT 0, rows_deleted bigint NOT NULL DEFAULT 0,
           tables jsonb NOT NULL DEFAULT '{{}}', error text);
         ALTER TABLE {METADATA}.client_config ADD COLUMN IF NOT EXISTS sqlite_schema jsonb;"
    ))
    .await?;
    crate::history::ensure(&tx).await?;
    crate::server_log::ensure_function(&tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Make the tenant's schema match the app's tables: create what is missing (schema,
/// tables, columns the app added since); never drop or retype what is there. Returns
/// each table's columns with their Postgres types, as the sync carries values.
pub async fn ensure_schema(pg: &mut Client, tenant: &Tenant, tables: &[AppTable]) -> Result<Vec<TenantTable>, AttachError> {
    let tx = pg.transaction().await?;
    let s = ident(&tenant.schema);
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}")).await?;
    tx.execute(
        &format!("INSERT INTO {METADATA}.client_config (deployment, tenant_schema) VALUES ($1, $2) ON CONFLICT (deployment) DO NOTHING"),
        &[&tenant.deployment, &tenant.schema],
    )
    .await?;
    let owner: String = tx.query_one(&format!("SELECT tenant_schema FROM {METADATA}.client_config WHERE deployment = $1"), &[&tenant.deployment]).await?.get(0);
    if owner != tenant.schema {
        return Err(AttachError::Invalid(format!("deployment {:?} syncs into schema {owner:?}, not {:?}", tenant.deployment, tenant.schema)));
    }
    crate::server_log::ensure_log(&tx, tenant).await?;
    let mut out = vec![];
    for t in tables {
        let tt = TenantTable::of(t);
        let cols: Vec<String> = tt.columns.iter().map(|(c, ty)| format!("{} {}", ident(c), ty.sql())).collect();
        let key: Vec<String> = tt.key.iter().map(|k| ident(k)).collect();
        tx.batch_execute(&format!("CREATE TABLE IF NOT EXISTS {s}.{} ({}, PRIMARY KEY ({}))", ident(&t.name), cols.join(", "), key.join(", "))).await?;
        let have: Vec<String> = tx
            .query("SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2", &[&tenant.schema, &t.name])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for (c, ty) in &tt.columns {
            if !have.contains(c) {
                tx.batch_execute(&format!("ALTER TABLE {s}.{} ADD COLUMN {} {}", ident(&t.name), ident(c), ty.sql())).await?;
            }
        }
        crate::server_log::ensure_trigger(&tx, tenant, &tt).await?;
        out.push(tt);
    }
    tx.commit().await?;
    Ok(out)
}

