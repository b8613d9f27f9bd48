//! SQLite to the tenant schema: what the change log says changed, and tables not yet
//! copied whole, sent in Postgres transactions; the log is forgotten only after the
//! transaction that carried it committed.
//!
//! Exactly once, in effect: each row is sent as it is when the sync reads it (an upsert
//! of its current values, or a delete when its key no longer reads back), so a batch
//! sent twice (the process died between the server's commit and forgetting the batch)
//! writes the same values again: nothing is doubled and nothing is lost.
//!
//! A row edited on the server too since the last sync is a conflict: the later write
//! wins (each side's clock), and the other's values go to the history. A row the
//! server cannot take is set aside in the history, and the rest goes on.
//!
//! Values travel as one JSON array per table and statement, turned into rows by the
//! server (`jsonb_populate_recordset` with the table's own row type): no value is ever
//! spliced into SQL, and a batch of a thousand rows is one round trip.

use std::collections::BTreeMap;
use std::time::SystemTime;

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::capture;
use crate::error::AttachError;
use crate::history::{self, Record, Side, What};
use crate::inspect::{self, AppTable, KeyRule};
use crate::progress::{Progress, Step};
use crate::rows::{key_of, key_text, logged_key, read_row, row_json, select_sql, server_rows};
use crate::server_log;
use crate::setup::{ensure_metadata, ensure_schema};
use crate::sync_log::{log_outcome, Counts};
use crate::tenant::{ident, PgType, Tenant, TenantTable};

/// Log entries per batch (and rows per statement of a whole-table copy).
pub const BATCH: usize = 1000;

/// What a push did, per table: rows upserted and deleted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PushReport {
    pub upserted: u64,
    pub deleted: u64,
    pub tables: BTreeMap<String, TableCounts>,
    /// Tables copied whole (new to the sync, or rebuilt by a migration).
    pub copied_whole: Vec<String>,
    /// Conflicts settled and rows set aside (also in `sync_metadata.row_history`).
    pub history: Vec<Record>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableCounts {
    pub upserted: u64,
    pub deleted: u64,
}

/// Push everything the server does not have yet, and write the outcome (or the
/// failure) to `sync_metadata.owui_sync_log`.
pub async fn push(db: &mut Connection, pg: &mut Client, tenant: &Tenant) -> Result<PushReport, AttachError> {
    let started = SystemTime::now();
    let outcome = push_all(db, pg, tenant, &mut ()).await.map(|(r, _)| r);
    let counts = outcome.as_ref().map(|r| Counts { upserted: r.upserted, deleted: r.deleted, tables: serde_json::json!({"pushed": r.tables, "history": r.history.len()}) }).unwrap_or_default();
    log_outcome(pg, tenant, "sqlite_to_supabase", started, outcome.as_ref().err(), counts).await?;
    outcome
}

/// Everything the file holds that the server does not, sent (no log entry of its own).
/// Also the app's tables as captured now, each with its server shape.
pub(crate) async fn push_all(db: &mut Connection, pg: &mut Client, tenant: &Tenant, progress: &mut dyn Progress) -> Result<(PushReport, Vec<(AppTable, TenantTable)>), AttachError> {
    ensure_metadata(pg).await?;
    // Follow the app's migrations first: new tables captured, new columns on the server.
    let installed = capture::install(db)?;
    let (shapes, reshaped) = ensure_schema(pg, tenant, &installed.tables).await?;
    crate::restore::remember_schema(pg, tenant, db).await?;
    let tables: BTreeMap<&str, (&AppTable, &TenantTable)> = installed.tables.iter().zip(&shapes).map(|(a, t)| (a.name.as_str(), (a, t))).collect();
    let mut report = PushReport::default();
    let mut whole = installed.fresh.clone();
    whole.extend(reshaped.into_iter().filter(|t| !installed.fresh.contains(t)));
    for name in &whole {
        let Some((app, shape)) = tables.get(name.as_str()) else { continue };
        let since = capture::capture_began(db, name)?;
        copy_whole(db, pg, tenant, app, shape, &mut report, progress).await?;
        if let Some(since) = since {
            capture::mark_copied(db, name, since)?;
        }
        report.copied_whole.push(name.clone());
    }
    let mut sent = 0;
    loop {
        let batch = capture::take(db, BATCH)?;
        if batch.changes.is_empty() {
            break;
        }
        let mut per_table: BTreeMap<&str, Vec<Outgoing>> = BTreeMap::new();
        let mut records = vec![];
        for ch in &batch.changes {
            let Some((app, shape)) = tables.get(ch.table.as_str()) else { continue };
            let key = logged_key(shape, &ch.key);
            let row = match read_row(db, app, shape, &ch.key) {
                Ok(row) => row,
                Err(AttachError::Value { why, column, .. }) => {
                    records.push(set_aside(&app.name, key, None, Some(ch.at_ms), format!("column {column}: {why}")));
                    continue;
                }
                Err(e) => return Err(e),
            };
            per_table.entry(app.name.as_str()).or_default().push(Outgoing { key, row, at_ms: ch.at_ms });
        }
        let tx = pg.transaction().await?;
        server_log::applying(&tx).await?;
        for (name, outgoing) in per_table {
            let (_, shape) = tables[name];
            let outgoing = settle_conflicts(&tx, tenant, shape, outgoing, &mut records).await?;
            let (ups, dels): (Vec<Outgoing>, Vec<Outgoing>) = outgoing.into_iter().partition(|o| o.row.is_some());
            let ups: Vec<Value> = ups.into_iter().filter_map(|o| o.row).collect();
            let dels: Vec<Value> = dels.into_iter().map(|o| o.key).collect();
            let upserted = send(&tx, tenant, shape, &ups, &mut records).await?;
            delete(&tx, tenant, shape, &dels).await?;
            count(&mut report, name, upserted, dels.len() as u64);
            sent += upserted + dels.len() as u64;
            progress.step(&Step { phase: "push", table: name.into(), done: sent, total: None });
        }
        for r in &records {
            history::record(&tx, tenant, r).await?;
        }
        report.history.extend(records);
        tx.commit().await?;
        capture::confirm(db, batch.upto)?;
    }
    Ok((report, installed.tables.iter().cloned().zip(shapes.iter().cloned()).collect()))
}

/// A row the file changed: its values (`None`: deleted), and when the app wrote it.
struct Outgoing {
    key: Value,
    row: Option<Value>,
    at_ms: i64,
}

/// Rows the server edited too since the last sync: the later write wins. The file's
/// rows that lost are dropped from what is sent (the server's entries stay, and the
/// next pull brings its values to the file); the server's entries that lost are
/// forgotten (the file's values overwrite them now). Either way the values not kept
/// go to the history.
async fn settle_conflicts(tx: &Transaction<'_>, tenant: &Tenant, shape: &TenantTable, outgoing: Vec<Outgoing>, records: &mut Vec<Record>) -> Result<Vec<Outgoing>, AttachError> {
    let keys: Vec<Value> = outgoing.iter().map(|o| o.key.clone()).collect();
    server_log::lock_rows(tx, tenant, shape, &keys).await?;
    let entries = server_log::entries_for(tx, tenant, shape, &keys).await?;
    if entries.is_empty() {
        return Ok(outgoing);
    }
    // Per key: the server's last write, and its entries.
    let mut edited: BTreeMap<String, (i64, Vec<i64>)> = BTreeMap::new();
    for e in &entries {
        let slot = edited.entry(key_text(shape, &e.key)).or_default();
        slot.0 = slot.0.max(e.at_ms);
        slot.1.push(e.seq);
    }
    let server_values: BTreeMap<String, Value> = server_rows(tx, tenant, shape, &keys).await?.into_iter().map(|r| (key_text(shape, &key_of(shape, &r)), r)).collect();
    let mut kept = vec![];
    let mut overwritten = vec![];
    for o in outgoing {
        let k = key_text(shape, &o.key);
        match edited.get(&k) {
            Some((server_at, _)) if *server_at > o.at_ms => {
                records.push(Record { table: shape.name.clone(), key: o.key, what: What::Conflict { kept: Side::Supabase }, values: o.row, written_at_ms: Some(o.at_ms) });
            }
            Some((server_at, seqs)) => {
                records.push(Record { table: shape.name.clone(), key: o.key.clone(), what: What::Conflict { kept: Side::Sqlite }, values: server_values.get(&k).cloned(), written_at_ms: Some(*server_at) });
                overwritten.extend(seqs);
                kept.push(o);
            }
            None => kept.push(o),
        }
    }
    server_log::forget(tx, tenant, &overwritten).await?;
    Ok(kept)
}

pub(crate) fn set_aside(table: &str, key: Value, values: Option<Value>, at_ms: Option<i64>, why: String) -> Record {
    Record { table: table.into(), key, what: What::SetAside { from: Side::Sqlite, why }, values, written_at_ms: at_ms }
}

/// Copy a table whole, in one Postgres transaction: every row upserted, and the
/// server's rows that SQLite does not hold deleted. SQLite is read in key order, a
/// chunk at a time, inside one read transaction (a snapshot; in WAL mode it never
/// blocks the app's writes, which the log catches for the next batch).
async fn copy_whole(db: &mut Connection, pg: &mut Client, tenant: &Tenant, app: &AppTable, shape: &TenantTable, report: &mut PushReport, progress: &mut dyn Progress) -> Result<(), AttachError> {
    db.execute_batch("BEGIN")?;
    let copied = copy_chunks(db, pg, tenant, app, shape, progress).await;
    // A read transaction: ending it changes nothing either way.
    let ended = db.execute_batch(if copied.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let (sent, gone, records) = copied?;
    ended?;
    count(report, &shape.name, sent, gone);
    report.history.extend(records);
    Ok(())
}

async fn copy_chunks(db: &mut Connection, pg: &mut Client, tenant: &Tenant, app: &AppTable, shape: &TenantTable, progress: &mut dyn Progress) -> Result<(u64, u64, Vec<Record>), AttachError> {
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let keys: Vec<String> = shape.key.iter().map(|k| ident(k)).collect();
    let total: i64 = db.query_row(&format!("SELECT count(*) FROM {}", inspect::ident(&app.name)), [], |r| r.get(0))?;
    // A table the server holds nothing of (a first sync): COPY, the database's own
    // fastest way in. If the server refuses a value there, the whole COPY is undone and
    // the table goes the row-by-row way below, which sets such rows aside.
    {
        let tx = pg.transaction().await?;
        server_log::applying(&tx).await?;
        if tx.query_opt(&format!("SELECT 1 FROM {target} LIMIT 1"), &[]).await?.is_none() {
            match copy_into_empty(db, &tx, &target, app, shape, total as u64, progress).await {
                Ok((sent, records)) => {
                    server_log::forget_table(&tx, tenant, &shape.name).await?;
                    for r in &records {
                        history::record(&tx, tenant, r).await?;
                    }
                    tx.commit().await?;
                    return Ok((sent, 0, records));
                }
                Err(AttachError::Postgres(e)) if refused_value(&e) => drop(tx),
                Err(e) => return Err(e),
            }
        }
    }
    let tx = pg.transaction().await?;
    server_log::applying(&tx).await?;
    tx.batch_execute(&format!("CREATE TEMP TABLE _supasync_seen ON COMMIT DROP AS SELECT {} FROM {target} WITH NO DATA", keys.join(", "))).await?;
    let mut after: Option<Vec<SqlValue>> = None;
    let mut sent = 0;
    let mut read = 0;
    let mut records = vec![];
    loop {
        let (chunk, last) = read_chunk(db, app, shape, after.as_deref())?;
        if chunk.is_empty() {
            break;
        }
        read += chunk.len() as u64;
        records.extend(chunk.iter().filter_map(|r| r.as_ref().err().cloned()));
        let rows: Vec<Value> = chunk.into_iter().filter_map(Result::ok).collect();
        let seen = Value::Array(rows.iter().map(|r| key_of(shape, r)).collect());
        sent += send(&tx, tenant, shape, &rows, &mut records).await?;
        tx.execute(&format!("INSERT INTO _supasync_seen SELECT {} FROM jsonb_populate_recordset(NULL::{target}, $1::jsonb)", keys.join(", ")), &[&seen]).await?;
        progress.step(&Step { phase: "copy", table: shape.name.clone(), done: read, total: Some(total as u64) });
        after = Some(last);
    }
    let matches = keys.iter().map(|k| format!("s.{k} = t.{k}")).collect::<Vec<_>>().join(" AND ");
    let gone = tx.execute(&format!("DELETE FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM _supasync_seen s WHERE {matches})"), &[]).await?;
    // The file's rows are the table now: server edits of it before this are overwritten.
    server_log::forget_table(&tx, tenant, &shape.name).await?;
    for r in &records {
        history::record(&tx, tenant, r).await?;
    }
    tx.commit().await?;
    Ok((sent, gone, records))
}

/// Every row of the file's table into the server's empty one, in one `COPY` (CSV).
async fn copy_into_empty(db: &mut Connection, tx: &Transaction<'_>, target: &str, app: &AppTable, shape: &TenantTable, total: u64, progress: &mut dyn Progress) -> Result<(u64, Vec<Record>), AttachError> {
    use futures_util::SinkExt;
    let cols: Vec<String> = shape.columns.iter().map(|(c, _)| ident(c)).collect();
    let sink = tx.copy_in(&format!("COPY {target} ({}) FROM STDIN (FORMAT csv)", cols.join(", "))).await?;
    let mut sink = std::pin::pin!(sink);
    let mut after: Option<Vec<SqlValue>> = None;
    let (mut sent, mut read, mut records) = (0, 0, vec![]);
    loop {
        let (chunk, last) = read_chunk(db, app, shape, after.as_deref())?;
        if chunk.is_empty() {
            break;
        }
        read += chunk.len() as u64;
        let mut csv = String::new();
        for row in chunk {
            match row {
                Ok(row) => {
                    csv_line(&mut csv, shape, &row);
                    sent += 1;
                }
                Err(r) => records.push(r),
            }
        }
        sink.send(std::io::Cursor::new(csv.into_bytes())).await?;
        progress.step(&Step { phase: "copy", table: shape.name.clone(), done: read, total: Some(total) });
        after = Some(last);
    }
    sink.finish().await?;
    Ok((sent, records))
}

/// A row (server form) as a CSV line in the shape's column order: NULL as an empty
/// field, every other value quoted, JSON columns as their JSON text.
fn csv_line(out: &mut String, shape: &TenantTable, row: &Value) {
    for (i, (c, ty)) in shape.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = match (row.get(c).unwrap_or(&Value::Null), ty) {
            (Value::Null, _) => continue,
            (v, PgType::Jsonb | PgType::Any) => v.to_string(),
            (Value::String(s), _) => s.clone(),
            (v, _) => v.to_string(),
        };
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    }
    out.push('\n');
}

/// Up to [`BATCH`] rows in key order after the key `after` (each as the server takes
/// it, or set aside), and the last one's key.
#[allow(clippy::type_complexity)]
fn read_chunk(db: &Connection, app: &AppTable, shape: &TenantTable, after: Option<&[SqlValue]>) -> Result<(Vec<Result<Value, Record>>, Vec<SqlValue>), AttachError> {
    let key_cols: Vec<String> = match &app.key {
        KeyRule::PrimaryKey(cols) => cols.iter().map(|c| inspect::ident(c)).collect(),
        KeyRule::RowId => vec!["rowid".into()],
    };
    let tuple = format!("({})", key_cols.join(", "));
    let placeholders = format!("({})", (1..=key_cols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", "));
    let filter = match after {
        Some(_) => format!(" WHERE {tuple} > {placeholders} ORDER BY {} LIMIT {BATCH}", key_cols.join(", ")),
        None => format!(" ORDER BY {} LIMIT {BATCH}", key_cols.join(", ")),
    };
    let mut st = db.prepare_cached(&select_sql(app, &filter))?;
    let mut rows = st.query(rusqlite::params_from_iter(after.unwrap_or_default().iter()))?;
    let mut out = vec![];
    let mut last = vec![];
    // Where the key's values sit among the selected columns.
    let positions: Vec<usize> = match &app.key {
        KeyRule::PrimaryKey(cols) => cols.iter().filter_map(|k| app.columns.iter().position(|c| &c.name == k)).collect(),
        KeyRule::RowId => vec![0],
    };
    while let Some(r) = rows.next()? {
        out.push(match row_json(app, shape, r) {
            Ok(v) => Ok(v),
            Err(AttachError::Value { key, column, why, .. }) => Err(set_aside(&app.name, serde_json::from_str(&key).unwrap_or(Value::Null), None, None, format!("column {column}: {why}"))),
            Err(e) => return Err(e),
        });
        last = positions.iter().map(|&i| r.get::<_, SqlValue>(i)).collect::<Result<_, _>>()?;
    }
    Ok((out, last))
}

fn count(report: &mut PushReport, table: &str, upserted: u64, deleted: u64) {
    report.upserted += upserted;
    report.deleted += deleted;
    let c = report.tables.entry(table.to_string()).or_default();
    c.upserted += upserted;
    c.deleted += deleted;
}

/// Upsert `rows`, all in one statement; if the server refuses a value (a data or
/// constraint error: a column retyped by hand, say), again one row at a time, setting
/// aside each row it refuses. How many rows were written.
async fn send(tx: &Transaction<'_>, tenant: &Tenant, shape: &TenantTable, rows: &[Value], records: &mut Vec<Record>) -> Result<u64, AttachError> {
    if rows.is_empty() {
        return Ok(0);
    }
    tx.batch_execute("SAVEPOINT supasync_rows").await?;
    match upsert(tx, tenant, shape, rows).await {
        Ok(()) => {
            tx.batch_execute("RELEASE SAVEPOINT supasync_rows").await?;
            return Ok(rows.len() as u64);
        }
        Err(e) if refused_value(&e) => tx.batch_execute("ROLLBACK TO SAVEPOINT supasync_rows").await?,
        Err(e) => return Err(e.into()),
    }
    let mut written = 0;
    for row in rows {
        tx.batch_execute("SAVEPOINT supasync_row").await?;
        match upsert(tx, tenant, shape, std::slice::from_ref(row)).await {
            Ok(()) => {
                tx.batch_execute("RELEASE SAVEPOINT supasync_row").await?;
                written += 1;
            }
            Err(e) if refused_value(&e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT supasync_row").await?;
                let why = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
                records.push(set_aside(&shape.name, key_of(shape, row), Some(row.clone()), None, format!("the server refused it: {why}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    tx.batch_execute("RELEASE SAVEPOINT supasync_rows").await?;
    Ok(written)
}

/// A refusal of the values themselves (SQLSTATE class 22, data exception; 23,
/// integrity constraint; 42804, datatype mismatch), not of the connection or the SQL.
fn refused_value(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        let c = c.code();
        c.starts_with("22") || c.starts_with("23") || c == "42804"
    })
}

async fn upsert(tx: &impl GenericClient, tenant: &Tenant, shape: &TenantTable, rows: &[Value]) -> Result<(), tokio_postgres::Error> {
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let keys: Vec<String> = shape.key.iter().map(|k| ident(k)).collect();
    let set: Vec<String> = shape.columns.iter().filter(|(c, _)| !shape.key.contains(c)).map(|(c, _)| format!("{0} = EXCLUDED.{0}", ident(c))).collect();
    let on_conflict = if set.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", set.join(", ")) };
    let cols: Vec<String> = shape.columns.iter().map(|(c, _)| ident(c)).collect();
    let sql = format!("INSERT INTO {target} ({0}) SELECT {0} FROM jsonb_populate_recordset(NULL::{target}, $1::jsonb) ON CONFLICT ({1}) {on_conflict}", cols.join(", "), keys.join(", "));
    tx.execute(&sql, &[&Value::Array(rows.to_vec())]).await?;
    Ok(())
}

async fn delete(tx: &impl GenericClient, tenant: &Tenant, shape: &TenantTable, keys: &[Value]) -> Result<(), AttachError> {
    if keys.is_empty() {
        return Ok(());
    }
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let matches = shape.key.iter().map(|k| format!("t.{0} = x.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
    tx.execute(&format!("DELETE FROM {target} t USING jsonb_populate_recordset(NULL::{target}, $1::jsonb) x WHERE {matches}"), &[&Value::Array(keys.to_vec())]).await?;
    Ok(())
}
