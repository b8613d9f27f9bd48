//! The tenant's schema on Supabase, made from the app's SQLite schema, and the
//! `sync_metadata` schema the seed lays out (`client_config`, `owui_sync_log`).
//!
//! Reached over a Postgres connection string (on hosted Supabase, the pooler), not
//! PostgREST: this is a server-side job that creates schemas and tables, changes them
//! when the app migrates, and writes thousands of rows per transaction; PostgREST can
//! do none of the first two, and would need each tenant schema exposed in the API
//! settings and a service-role key for the third.
//!
//! Types follow SQLite's declared types the way SQLite reads them (its affinity
//! rules), with the app's conventions made explicit: `BOOLEAN` holds 0/1 and becomes
//! `boolean`; `JSON` holds JSON text and becomes `jsonb`; integers (Open WebUI's epoch
//! timestamps are `BIGINT`) become `bigint`; `DATETIME`/`TIMESTAMP` text stays `text`
//! exactly as the app wrote it (a restore must give the app back its own strings); a
//! column with no declared type may hold anything and becomes `jsonb`, which keeps a
//! value's kind (number or string) for the way back.

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::AttachError;
use crate::inspect::{AppTable, Column, KeyRule};

/// The column a table without a primary key is keyed by on the server.
pub const ROWID: &str = "_rowid";

/// A Postgres type for a column, and how its values are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PgType {
    Bigint,
    Boolean,
    Double,
    Numeric,
    Text,
    Bytea,
    Jsonb,
    /// No declared type: the value as JSON, whatever it is.
    Any,
}

impl PgType {
    /// The type a declared SQLite type maps to.
    pub fn of(decl: &str) -> PgType {
        let d = decl.to_ascii_uppercase();
        if d.is_empty() {
            PgType::Any
        } else if d.contains("BOOL") {
            PgType::Boolean
        } else if d.contains("JSON") {
            PgType::Jsonb
        } else if d.contains("INT") {
            PgType::Bigint
        } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") || d.contains("DATE") || d.contains("TIME") {
            PgType::Text
        } else if d.contains("BLOB") {
            PgType::Bytea
        } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
            PgType::Double
        } else if d.contains("NUMERIC") || d.contains("DECIMAL") {
            PgType::Numeric
        } else {
            PgType::Text
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            PgType::Bigint => "bigint",
            PgType::Boolean => "boolean",
            PgType::Double => "double precision",
            PgType::Numeric => "numeric",
            PgType::Text => "text",
            PgType::Bytea => "bytea",
            PgType::Jsonb | PgType::Any => "jsonb",
        }
    }
}

/// A tenant: a deployment's name and the schema its tables live in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub deployment: String,
    pub schema: String,
}

impl Tenant {
    /// A tenant whose schema name is a plain Postgres identifier (lower-case letters,
    /// digits and `_`, not starting with a digit, at most 63 bytes, not one of the
    /// schemas Supabase or this crate own): it is written into DDL, quoted, but never
    /// allowed to be something a typo or an injection could make.
    pub fn new(deployment: &str, schema: &str) -> Result<Tenant, AttachError> {
        let bad = |why: &str| AttachError::Invalid(format!("tenant schema {schema:?}: {why}"));
        let first_ok = schema.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        if !first_ok || !schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(bad("use lower-case letters, digits and _, not starting with a digit (e.g. acme_quantabase_io)"));
        }
        if schema.len() > 63 {
            return Err(bad("longer than Postgres's 63-byte limit"));
        }
        let reserved = ["public", "auth", "storage", "realtime", "extensions", "graphql", "graphql_public", "supabase_functions", "vault", METADATA];
        if reserved.contains(&schema) || schema.starts_with("pg_") {
            return Err(bad("that schema belongs to Postgres, Supabase or the sync itself"));
        }
        if deployment.trim().is_empty() {
            return Err(AttachError::Invalid("a deployment needs a name".into()));
        }
        Ok(Tenant { deployment: deployment.into(), schema: schema.into() })
    }
}

/// The schema holding every tenant's config and sync history.
pub const METADATA: &str = "sync_metadata";

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

/// A table as the tenant schema holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantTable {
    pub name: String,
    /// Every column with its type, in the app's order (`_rowid` first for a table
    /// without a primary key).
    pub columns: Vec<(String, PgType)>,
    /// The key's columns on the server.
    pub key: Vec<String>,
}

impl TenantTable {
    pub fn of(t: &AppTable) -> TenantTable {
        let mut columns: Vec<(String, PgType)> = vec![];
        let key = match &t.key {
            KeyRule::PrimaryKey(cols) => cols.clone(),
            KeyRule::RowId => {
                columns.push((ROWID.into(), PgType::Bigint));
                vec![ROWID.into()]
            }
        };
        columns.extend(t.columns.iter().map(|c: &Column| (c.name.clone(), PgType::of(&c.decl_type))));
        TenantTable { name: t.name.clone(), columns, key }
    }
}

/// `name` as a quoted Postgres identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
