//! The server's side of "what changed since the last sync": a change log in each tenant
//! schema, written by a trigger on each of its tables, so that an edit made on the
//! server (by an integration, an admin, SQL) reaches the app's file.
//!
//! It mirrors the file's log (`capture`): a row's key, what was done, and when
//! (`clock_timestamp()`, the server's clock), written by the editing transaction itself.
//! The sync's own writes are not logged (the trigger skips a transaction that set
//! `supasync.applying`), so nothing the file sent comes back to it as an edit.
//!
//! Entries are forgotten one by one, by `seq`, once what they say has reached the
//! file: never "everything up to n", since a longer transaction may commit an entry
//! numbered below one already read.

use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::error::AttachError;
use crate::tenant::{ident, Tenant, TenantTable, METADATA};

/// The log's table in each tenant schema.
pub const LOG: &str = "_supasync_changes";
/// The trigger on each tenant table.
const TRIGGER: &str = "_supasync_log";
/// The trigger function (versioned: a new version is a new function).
const FUNCTION: &str = "log_change_v1";

/// An edit made on the server, not yet in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: i64,
    pub table: String,
    /// `insert`, `update` or `delete`.
    pub op: String,
    /// The row's key, server form (`{"id": "c1"}`).
    pub key: Value,
    /// When, in ms since the epoch, by the server's clock.
    pub at_ms: i64,
}

/// Create the trigger function in `sync_metadata` if it is missing. It runs as its
/// owner (`SECURITY DEFINER`), so a role that may edit a tenant table (an integration
/// through PostgREST, under RLS) needs no right on the log itself.
pub(crate) async fn ensure_function(pg: &impl GenericClient) -> Result<(), AttachError> {
    let exists = pg.query_opt("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2", &[&METADATA, &FUNCTION]).await?.is_some();
    if exists {
        return Ok(());
    }
    pg.batch_execute(&format!(
        r#"CREATE FUNCTION {METADATA}.{FUNCTION}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $f$
DECLARE
  n jsonb; o jsonb; nk jsonb := '{{}}'; ok jsonb := '{{}}'; c text;
BEGIN
  IF current_setting('supasync.applying', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP <> 'DELETE' THEN n := to_jsonb(NEW); END IF;
  IF TG_OP <> 'INSERT' THEN o := to_jsonb(OLD); END IF;
  FOREACH c IN ARRAY TG_ARGV LOOP
    IF n IS NOT NULL THEN nk := nk || jsonb_build_object(c, n -> c); END IF;
    IF o IS NOT NULL THEN ok := ok || jsonb_build_object(c, o -> c); END IF;
  END LOOP;
  IF TG_OP = 'UPDATE' AND nk <> ok THEN
    EXECUTE format('INSERT INTO %I.{LOG} (tbl, op, key) VALUES ($1, ''delete'', $2)', TG_TABLE_SCHEMA) USING TG_TABLE_NAME, ok;
  END IF;
  EXECUTE format('INSERT INTO %I.{LOG} (tbl, op, key) VALUES ($1, $2, $3)', TG_TABLE_SCHEMA)
    USING TG_TABLE_NAME, lower(TG_OP), CASE WHEN TG_OP = 'DELETE' THEN ok ELSE nk END;
  RETURN NULL;
END $f$;"#
    ))
    .await?;
    Ok(())
}

/// The tenant's log table (idempotent; run inside the schema's transaction).
pub(crate) async fn ensure_log(pg: &impl GenericClient, tenant: &Tenant) -> Result<(), AttachError> {
    pg.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {0}.{LOG} (seq bigserial PRIMARY KEY, tbl text NOT NULL, op text NOT NULL, key jsonb NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
         ALTER TABLE {0}.{LOG} ENABLE ROW LEVEL SECURITY",
        ident(&tenant.schema)
    ))
    .await?;
    Ok(())
}

/// The trigger on one tenant table, if it is missing.
pub(crate) async fn ensure_trigger(pg: &impl GenericClient, tenant: &Tenant, shape: &TenantTable) -> Result<(), AttachError> {
    let exists = pg
        .query_opt(
            "SELECT 1 FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND g.tgname = $3",
            &[&tenant.schema, &shape.name, &TRIGGER],
        )
        .await?
        .is_some();
    if !exists {
        // The key's column names go in as trigger arguments: string literals, quoted.
        let args = shape.key.iter().map(|k| format!("'{}'", k.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
        pg.batch_execute(&format!(
            // The sync's own writes are skipped by the WHEN clause, before any PL/pgSQL runs.
            "CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {}.{} FOR EACH ROW WHEN (current_setting('supasync.applying', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION {METADATA}.{FUNCTION}({args})",
            ident(&tenant.schema),
            ident(&shape.name)
        ))
        .await?;
    }
    Ok(())
}

/// Mark the transaction as the sync's own: its writes are not logged.
pub(crate) async fn applying(tx: &impl GenericClient) -> Result<(), AttachError> {
    tx.execute("SELECT set_config('supasync.applying', 'on', true)", &[]).await?;
    Ok(())
}

/// Up to `limit` entries after `after`, oldest first.
pub(crate) async fn read(pg: &impl GenericClient, tenant: &Tenant, after: i64, limit: i64) -> Result<Vec<Entry>, AttachError> {
    let rows = pg
        .query(
            &format!("SELECT seq, tbl, op, key, (extract(epoch FROM at) * 1000)::bigint FROM {}.{LOG} WHERE seq > $1 ORDER BY seq LIMIT $2", ident(&tenant.schema)),
            &[&after, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| Entry { seq: r.get(0), table: r.get(1), op: r.get(2), key: r.get(3), at_ms: r.get(4) }).collect())
}

/// The entries of `shape`'s table for the rows under `keys` (server-form key objects),
/// matched by the key's typed values (a key's JSON may be written two ways).
pub(crate) async fn entries_for(pg: &impl GenericClient, tenant: &Tenant, shape: &TenantTable, keys: &[Value]) -> Result<Vec<Entry>, AttachError> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let matches = shape.key.iter().map(|k| format!("(jsonb_populate_record(NULL::{target}, l.key)).{0} = x.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
    let rows = pg
        .query(
            &format!(
                "SELECT l.seq, l.tbl, l.op, l.key, (extract(epoch FROM l.at) * 1000)::bigint FROM {}.{LOG} l, jsonb_populate_recordset(NULL::{target}, $2::jsonb) x WHERE l.tbl = $1 AND {matches} ORDER BY l.seq",
                ident(&tenant.schema)
            ),
            &[&shape.name, &Value::Array(keys.to_vec())],
        )
        .await?;
    Ok(rows.iter().map(|r| Entry { seq: r.get(0), table: r.get(1), op: r.get(2), key: r.get(3), at_ms: r.get(4) }).collect())
}

/// Forget these entries (what they said has reached the file, or was decided).
pub(crate) async fn forget(pg: &impl GenericClient, tenant: &Tenant, seqs: &[i64]) -> Result<(), AttachError> {
    if !seqs.is_empty() {
        pg.execute(&format!("DELETE FROM {}.{LOG} WHERE seq = ANY($1)", ident(&tenant.schema)), &[&seqs]).await?;
    }
    Ok(())
}

/// Forget every entry of one table (it was just copied whole from the file).
pub(crate) async fn forget_table(pg: &impl GenericClient, tenant: &Tenant, table: &str) -> Result<(), AttachError> {
    pg.execute(&format!("DELETE FROM {}.{LOG} WHERE tbl = $1", ident(&tenant.schema)), &[&table]).await?;
    Ok(())
}

/// Lock the server's rows under `keys` until the transaction ends, before reading
/// their entries: an edit of one of them committed before is then in the log when it
/// is read, and one that comes later waits for the sync's write, then is logged (and
/// reaches the file at the next pull).
pub(crate) async fn lock_rows(tx: &impl GenericClient, tenant: &Tenant, shape: &TenantTable, keys: &[Value]) -> Result<(), AttachError> {
    if keys.is_empty() {
        return Ok(());
    }
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let matches = shape.key.iter().map(|k| format!("t.{0} = x.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
    tx.query(&format!("SELECT 1 FROM {target} t, jsonb_populate_recordset(NULL::{target}, $1::jsonb) x WHERE {matches} FOR UPDATE OF t"), &[&Value::Array(keys.to_vec())]).await?;
    Ok(())
}
