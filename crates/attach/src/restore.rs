//! A deployment restored onto a new host: a working SQLite file built from its tenant
//! schema, checked against the server, and syncing from there.
//!
//! The tenant schema holds the rows but not the app's SQLite schema (its declared
//! types, defaults, indexes, constraints, triggers), which the app's code expects to
//! find as it made it. So each sync also keeps the app's schema, as SQLite wrote it, in
//! `sync_metadata.client_config.sqlite_schema`, and a restore replays it: tables first,
//! then the rows, then indexes, views and the app's own triggers (so they do not fire
//! on rows being put back).
//!
//! Everything is read from one snapshot of the server; each table is checked (its row
//! count, and a checksum of its rows as the server holds them) against that same
//! snapshot, before the new file is put in place. Its capture is installed with every
//! table marked as copied (it holds exactly what the server holds), and the server's
//! change log entries the snapshot already reflects are forgotten: the next sync
//! carries on from there, sending only what changes next.
//!
//! What cannot come back: the contents of full-text index tables (their shadow tables
//! are SQLite's, not the app's, and are not synced): they come back empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, IsolationLevel};

use crate::capture;
use crate::error::AttachError;
use crate::inspect::{app_tables, AppTable, KeyRule, PREFIX};
use crate::progress::{Progress, Step};
use crate::rows::{row_json, select_sql};
use crate::server_log;
use crate::tenant::{ident, Tenant, TenantTable, METADATA, ROWID};
use crate::values::{canonical, from_pg};

/// The app's schema: what `sqlite_schema` holds for the app's tables, indexes, views
/// and triggers (not SQLite's own, not this crate's, not a virtual table's shadows).
fn app_schema(db: &Connection) -> Result<Value, AttachError> {
    let shadows: Vec<String> = {
        let mut st = db.prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'")?;
        let rows = st.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut st = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid")?;
    let mut rows = st.query([])?;
    let mut out = vec![];
    while let Some(r) = rows.next()? {
        let (kind, name, table, sql): (String, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        if name.starts_with("sqlite_") || name.starts_with(PREFIX) || table.starts_with(PREFIX) || shadows.contains(&name) {
            continue;
        }
        out.push(json!({"type": kind, "name": name, "sql": sql}));
    }
    Ok(Value::Array(out))
}

/// Keep the app's schema with the deployment's config (only when it changed).
pub(crate) async fn remember_schema(pg: &Client, tenant: &Tenant, db: &mut Connection) -> Result<(), AttachError> {
    let schema = app_schema(db)?;
    pg.execute(&format!("UPDATE {METADATA}.client_config SET sqlite_schema = $2, updated_at = now() WHERE deployment = $1 AND sqlite_schema IS DISTINCT FROM $2"), &[&tenant.deployment, &schema]).await?;
    Ok(())
}

/// What a restore built and checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreReport {
    pub deployment: String,
    pub tenant_schema: String,
    pub file: PathBuf,
    /// Per table: rows, and the checksum both sides agreed on.
    pub tables: BTreeMap<String, TableCheck>,
    /// The deployment's interval on the server, for its new config file.
    pub interval: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCheck {
    pub rows: u64,
    pub checksum: String,
}

/// An order-free checksum of a table's rows (Postgres and SQLite order text
/// differently): the sum of each row's hash, over the row in its server form written
/// one way (`values::canonical`).
#[derive(Default)]
struct Checksum {
    rows: u64,
    sum: u64,
}

impl Checksum {
    fn add(&mut self, shape: &TenantTable, row: &Value) {
        let canon: serde_json::Map<String, Value> = shape.columns.iter().map(|(c, ty)| (c.clone(), canonical(row.get(c).unwrap_or(&Value::Null), *ty))).collect();
        let digest = Sha256::digest(Value::Object(canon).to_string().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        self.sum = self.sum.wrapping_add(u64::from_le_bytes(first));
        self.rows += 1;
    }

    fn check(&self) -> TableCheck {
        TableCheck { rows: self.rows, checksum: format!("{:016x}", self.sum) }
    }
}

/// Build `to` from deployment `name`'s tenant schema, check it, and put it in place.
/// `to` must not exist (a restore never overwrites a file).
pub async fn restore(pg: &mut Client, name: &str, to: &Path, progress: &mut dyn Progress) -> Result<RestoreReport, AttachError> {
    if to.exists() {
        return Err(AttachError::Invalid(format!("{} already exists: a restore writes a new file, never over one", to.display())));
    }
    let config = pg
        .query_opt(&format!("SELECT tenant_schema, sqlite_schema, sync_interval, enabled FROM {METADATA}.client_config WHERE deployment = $1"), &[&name])
        .await
        .map_err(|e| if e.code().is_some() { AttachError::Invalid(format!("no deployment {name:?} on the server ({e})")) } else { e.into() })?
        .ok_or_else(|| AttachError::Invalid(format!("no deployment {name:?} on the server")))?;
    let tenant = Tenant::new(name, &config.get::<_, String>(0))?;
    let schema: Option<Value> = config.get(1);
    let ddl = schema.and_then(|s| s.as_array().cloned()).ok_or_else(|| AttachError::Invalid(format!("deployment {name:?} has no SQLite schema on the server yet: sync it once first")))?;
    let tmp = to.with_extension("restoring");
    let _ = std::fs::remove_file(&tmp);
    let built = build(pg, &tenant, &ddl, &tmp, progress).await;
    let tables = match built {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, to).map_err(|e| AttachError::Invalid(format!("{}: {e}", to.display())))?;
    Ok(RestoreReport { deployment: name.into(), tenant_schema: tenant.schema.clone(), file: to.to_path_buf(), tables, interval: config.get(2), enabled: config.get(3) })
}

async fn build(pg: &mut Client, tenant: &Tenant, ddl: &[Value], path: &Path, progress: &mut dyn Progress) -> Result<BTreeMap<String, TableCheck>, AttachError> {
    let mut db = Connection::open(path)?;
    // Tables are filled one after another, not in the order of their foreign keys.
    db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = OFF")?;
    let sql_of = |kind: &str| ddl.iter().filter(move |d| d["type"] == kind).filter_map(|d| d["sql"].as_str().map(String::from)).collect::<Vec<_>>();
    for sql in sql_of("table") {
        db.execute_batch(&sql)?;
    }
    let tables = app_tables(&db)?;
    let tx = pg.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
    let seen: Vec<i64> = server_log_seqs(&tx, tenant).await?;
    let mut server_sums = BTreeMap::new();
    {
        let load = db.transaction()?;
        for app in &tables {
            let shape = TenantTable::of(app);
            let sum = load_table(&tx, &load, tenant, app, &shape, progress).await?;
            server_sums.insert(app.name.clone(), sum.check());
        }
        load.commit()?;
    }
    tx.commit().await?;
    for kind in ["index", "view", "trigger"] {
        for sql in sql_of(kind) {
            db.execute_batch(&sql)?;
        }
    }
    // The file's own sums, read back from it, against the server's.
    for app in &tables {
        let shape = TenantTable::of(app);
        let mine = file_checksum(&db, app, &shape)?.check();
        let theirs = &server_sums[&app.name];
        if &mine != theirs {
            return Err(AttachError::Corrupt(format!("restored table {} does not match the server: {} rows, checksum {}; the server has {} rows, checksum {}", app.name, mine.rows, mine.checksum, theirs.rows, theirs.checksum)));
        }
    }
    capture::install(&mut db)?;
    capture::mark_all_copied(&mut db)?;
    server_log::forget(pg, tenant, &seen).await?;
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(server_sums)
}

async fn server_log_seqs(tx: &tokio_postgres::Transaction<'_>, tenant: &Tenant) -> Result<Vec<i64>, AttachError> {
    let rows = tx.query(&format!("SELECT seq FROM {}.{}", ident(&tenant.schema), server_log::LOG), &[]).await;
    match rows {
        Ok(rows) => Ok(rows.iter().map(|r| r.get(0)).collect()),
        // A schema synced before the server kept a log.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(vec![]),
        Err(e) => Err(e.into()),
    }
}

/// Stream one table from the server into the file; the server side's checksum.
async fn load_table(tx: &tokio_postgres::Transaction<'_>, db: &Connection, tenant: &Tenant, app: &AppTable, shape: &TenantTable, progress: &mut dyn Progress) -> Result<Checksum, AttachError> {
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let total: i64 = tx.query_one(&format!("SELECT count(*) FROM {target}"), &[]).await?.get(0);
    let mut cols: Vec<String> = app.columns.iter().map(|c| crate::inspect::ident(&c.name)).collect();
    let mut types: Vec<(&str, crate::tenant::PgType)> = app.columns.iter().filter_map(|c| shape.columns.iter().find(|(n, _)| n == &c.name).map(|(n, t)| (n.as_str(), *t))).collect();
    if app.key == KeyRule::RowId {
        cols.insert(0, "rowid".into());
        types.insert(0, (ROWID, crate::tenant::PgType::Bigint));
    }
    let marks = (1..=cols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let mut insert = db.prepare(&format!("INSERT INTO {} ({}) VALUES ({marks})", crate::inspect::ident(&app.name), cols.join(", ")))?;
    let stream = tx.query_raw(&format!("SELECT to_jsonb(t) FROM {target} t"), std::iter::empty::<&str>()).await?;
    let mut stream = std::pin::pin!(stream);
    let mut sum = Checksum::default();
    while let Some(r) = stream.try_next().await? {
        let row: Value = r.get(0);
        let values = types
            .iter()
            .map(|(c, ty)| from_pg(row.get(*c).unwrap_or(&Value::Null), *ty).map_err(|why| AttachError::Value { table: app.name.clone(), key: crate::rows::key_of(shape, &row).to_string(), column: c.to_string(), why }))
            .collect::<Result<Vec<_>, _>>()?;
        insert.execute(rusqlite::params_from_iter(values))?;
        sum.add(shape, &row);
        if sum.rows.is_multiple_of(10_000) {
            progress.step(&Step { phase: "restore", table: app.name.clone(), done: sum.rows, total: Some(total as u64) });
        }
    }
    progress.step(&Step { phase: "restore", table: app.name.clone(), done: sum.rows, total: Some(total as u64) });
    Ok(sum)
}

fn file_checksum(db: &Connection, app: &AppTable, shape: &TenantTable) -> Result<Checksum, AttachError> {
    let mut st = db.prepare(&select_sql(app, ""))?;
    let mut rows = st.query([])?;
    let mut sum = Checksum::default();
    while let Some(r) = rows.next()? {
        sum.add(shape, &row_json(app, shape, r)?);
    }
    Ok(sum)
}
