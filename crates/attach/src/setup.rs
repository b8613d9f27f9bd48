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
         ALTER TABLE {METADATA}.client_config ADD COLUMN IF NOT EXISTS sqlite_schema jsonb;
         ALTER TABLE {METADATA}.client_config ENABLE ROW LEVEL SECURITY;
         ALTER TABLE {METADATA}.owui_sync_log ENABLE ROW LEVEL SECURITY;
         -- Every tenant's config and history: for the operator only (the seed's
         -- \"restrict access to sync_metadata\"), whatever a project grants by default.
         REVOKE ALL ON SCHEMA {METADATA} FROM PUBLIC;
         DO $r$ BEGIN
           IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN REVOKE ALL ON SCHEMA {METADATA} FROM anon; END IF;
           IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN REVOKE ALL ON SCHEMA {METADATA} FROM authenticated; END IF;
         END $r$;"
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
///
/// Also the tables it created or added columns to: what the server holds of them is
/// not whole (a table dropped by hand, or a column the app added, whose existing rows
/// hold its default in the file), so the sync copies them whole.
pub async fn ensure_schema(pg: &mut Client, tenant: &Tenant, tables: &[AppTable]) -> Result<(Vec<TenantTable>, Vec<String>), AttachError> {
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
    let mut reshaped = vec![];
    for t in tables {
        let tt = TenantTable::of(t);
        let name = ident(&t.name);
        let have: Vec<(String, String)> = tx
            .query("SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2", &[&tenant.schema, &t.name])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if have.is_empty() {
            let cols: Vec<String> = tt.columns.iter().map(|(c, ty)| format!("{} {}", ident(c), ty.sql())).collect();
            let key: Vec<String> = tt.key.iter().map(|k| ident(k)).collect();
            // Row level security on, no policy: only the table's owner (the sync) and
            // roles that bypass RLS (service_role) read or write it until the operator
            // grants more; the API's anon and authenticated roles see nothing.
            tx.batch_execute(&format!("CREATE TABLE {s}.{name} ({}, PRIMARY KEY ({})); ALTER TABLE {s}.{name} ENABLE ROW LEVEL SECURITY", cols.join(", "), key.join(", "))).await?;
            reshaped.push(t.name.clone());
        } else {
            check_by_hand(&tx, tenant, &tt, &have).await?;
            for (c, ty) in &tt.columns {
                if !have.iter().any(|(h, _)| h == c) {
                    tx.batch_execute(&format!("ALTER TABLE {s}.{name} ADD COLUMN {} {}", ident(c), ty.sql())).await?;
                    if !reshaped.contains(&t.name) {
                        reshaped.push(t.name.clone());
                    }
                }
            }
        }
        crate::server_log::ensure_trigger(&tx, tenant, &tt).await?;
        out.push(tt);
    }
    tx.commit().await?;
    Ok((out, reshaped))
}


/// A tenant table changed by hand in a way the sync cannot write to (a column retyped,
/// another primary key) is refused before anything is written, naming what differs.
/// Columns added by hand are left alone (the sync neither fills nor clears them).
async fn check_by_hand(tx: &tokio_postgres::Transaction<'_>, tenant: &Tenant, tt: &TenantTable, have: &[(String, String)]) -> Result<(), AttachError> {
    let changed = |what: String| AttachError::Invalid(format!("tenant schema {}: table {} {what} (changed by hand?): change it back, or drop the table and the next sync makes it again from the app's file", tenant.schema, tt.name));
    for (c, ty) in &tt.columns {
        if let Some((_, found)) = have.iter().find(|(h, _)| h == c) {
            if found != ty.sql() {
                return Err(changed(format!("column {c} is {found} on the server where the sync writes {}", ty.sql())));
            }
        }
    }
    let key: Vec<String> = tx
        .query(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&tenant.schema, &tt.name],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if key != tt.key {
        return Err(changed(format!("has primary key ({}) on the server where the sync keys rows by ({})", key.join(", "), tt.key.join(", "))));
    }
    Ok(())
}
