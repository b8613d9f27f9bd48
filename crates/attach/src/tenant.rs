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
