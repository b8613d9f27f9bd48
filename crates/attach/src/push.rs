//! SQLite to the tenant schema: what the change log says changed, and tables not yet
//! copied whole, sent in Postgres transactions; the log is forgotten only after the
//! transaction that carried it committed.
//!
//! Exactly once, in effect: each row is sent as it is when the sync reads it (an upsert
//! of its current values, or a delete when its key no longer reads back), so a batch
//! sent twice (the process died between the server's commit and forgetting the batch)
//! writes the same values again: nothing is doubled and nothing is lost.
//!
//! Values travel as one JSON array per table and statement, turned into rows by the
//! server (`jsonb_populate_recordset` with the table's own row type): no value is ever
//! spliced into SQL, and a batch of a thousand rows is one round trip.

use std::collections::BTreeMap;
use std::time::SystemTime;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio_postgres::Client;

use crate::capture;
use crate::error::AttachError;
use crate::inspect::{self, AppTable, KeyRule};
use crate::tenant::{ensure_metadata, ensure_schema, ident, PgType, Tenant, TenantTable, METADATA};

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
    ensure_metadata(pg).await?;
    let outcome = push_all(db, pg, tenant).await;
    let (report, error) = match &outcome {
        Ok(r) => (r.clone(), None),
        Err(e) => (PushReport::default(), Some(e.to_string())),
    };
    let tables = serde_json::to_value(&report.tables).unwrap_or(Value::Null);
    // Best effort when the failure was the server itself: the error is returned anyway.
    let logged = pg
        .execute(
            &format!("INSERT INTO {METADATA}.owui_sync_log (deployment, direction, started_at, rows_upserted, rows_deleted, tables, error) VALUES ($1, 'sqlite_to_supabase', $2, $3, $4, $5, $6)"),
            &[&tenant.deployment, &started, &(report.upserted as i64), &(report.deleted as i64), &tables, &error],
        )
        .await;
    if outcome.is_ok() {
        logged?;
        pg.execute(&format!("UPDATE {METADATA}.client_config SET last_sync_at = now() WHERE deployment = $1"), &[&tenant.deployment]).await?;
    }
    outcome
}

async fn push_all(db: &mut Connection, pg: &mut Client, tenant: &Tenant) -> Result<PushReport, AttachError> {
    // Follow the app's migrations first: new tables captured, new columns on the server.
    let installed = capture::install(db)?;
    let shapes = ensure_schema(pg, tenant, &installed.tables).await?;
    let tables: BTreeMap<&str, (&AppTable, &TenantTable)> = installed.tables.iter().zip(&shapes).map(|(a, t)| (a.name.as_str(), (a, t))).collect();
    let mut report = PushReport::default();
    for name in &installed.fresh {
        let Some((app, shape)) = tables.get(name.as_str()) else { continue };
        let since = capture::capture_began(db, name)?;
        copy_whole(db, pg, tenant, app, shape, &mut report).await?;
        if let Some(since) = since {
            capture::mark_copied(db, name, since)?;
        }
        report.copied_whole.push(name.clone());
    }
    loop {
        let batch = capture::take(db, BATCH)?;
        if batch.changes.is_empty() {
            break;
        }
        let mut per_table: BTreeMap<&str, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
        for ch in &batch.changes {
            let Some((app, shape)) = tables.get(ch.table.as_str()) else { continue };
            let entry = per_table.entry(app.name.as_str()).or_default();
            match read_row(db, app, shape, &ch.key)? {
                Some(row) => entry.0.push(row),
                None => entry.1.push(key_object(shape, &ch.key)),
            }
        }
        let tx = pg.transaction().await?;
        for (name, (ups, dels)) in &per_table {
            let (_, shape) = tables[name];
            upsert(&tx, tenant, shape, ups).await?;
            delete(&tx, tenant, shape, dels).await?;
            count(&mut report, name, ups.len() as u64, dels.len() as u64);
        }
        tx.commit().await?;
        capture::confirm(db, batch.upto)?;
    }
    Ok(report)
}

/// Copy a table whole, in one Postgres transaction: every row upserted, and the
/// server's rows that SQLite does not hold deleted. SQLite is read in key order, a
/// chunk at a time, inside one read transaction (a snapshot; in WAL mode it never
/// blocks the app's writes, which the log catches for the next batch).
async fn copy_whole(db: &mut Connection, pg: &mut Client, tenant: &Tenant, app: &AppTable, shape: &TenantTable, report: &mut PushReport) -> Result<(), AttachError> {
    db.execute_batch("BEGIN")?;
    let copied = copy_chunks(db, pg, tenant, app, shape).await;
    // A read transaction: ending it changes nothing either way.
    let ended = db.execute_batch(if copied.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let (sent, gone) = copied?;
    ended?;
    count(report, &shape.name, sent, gone);
    Ok(())
}

async fn copy_chunks(db: &mut Connection, pg: &mut Client, tenant: &Tenant, app: &AppTable, shape: &TenantTable) -> Result<(u64, u64), AttachError> {
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let keys: Vec<String> = shape.key.iter().map(|k| ident(k)).collect();
    let tx = pg.transaction().await?;
    tx.batch_execute(&format!("CREATE TEMP TABLE _supasync_seen ON COMMIT DROP AS SELECT {} FROM {target} WITH NO DATA", keys.join(", "))).await?;
    let mut after: Option<Vec<SqlValue>> = None;
    let mut sent = 0;
    loop {
        let (chunk, last) = read_chunk(db, app, shape, after.as_deref())?;
        if chunk.is_empty() {
            break;
        }
        upsert(&tx, tenant, shape, &chunk).await?;
        let seen = Value::Array(chunk.iter().map(|r| key_object_of(shape, r)).collect());
        tx.execute(&format!("INSERT INTO _supasync_seen SELECT {} FROM jsonb_populate_recordset(NULL::{target}, $1::jsonb)", keys.join(", ")), &[&seen]).await?;
        sent += chunk.len() as u64;
        after = Some(last);
    }
    let matches = keys.iter().map(|k| format!("s.{k} = t.{k}")).collect::<Vec<_>>().join(" AND ");
    let gone = tx.execute(&format!("DELETE FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM _supasync_seen s WHERE {matches})"), &[]).await?;
    tx.commit().await?;
    Ok((sent, gone))
}

/// Up to [`BATCH`] rows in key order after the key `after`, and the last one's key.
fn read_chunk(db: &Connection, app: &AppTable, shape: &TenantTable, after: Option<&[SqlValue]>) -> Result<(Vec<Value>, Vec<SqlValue>), AttachError> {
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
        out.push(row_json(app, shape, r)?);
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

async fn upsert(tx: &tokio_postgres::Transaction<'_>, tenant: &Tenant, shape: &TenantTable, rows: &[Value]) -> Result<(), AttachError> {
    if rows.is_empty() {
        return Ok(());
    }
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let keys: Vec<String> = shape.key.iter().map(|k| ident(k)).collect();
    let set: Vec<String> = shape.columns.iter().filter(|(c, _)| !shape.key.contains(c)).map(|(c, _)| format!("{0} = EXCLUDED.{0}", ident(c))).collect();
    let on_conflict = if set.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", set.join(", ")) };
    let sql = format!("INSERT INTO {target} SELECT * FROM jsonb_populate_recordset(NULL::{target}, $1::jsonb) ON CONFLICT ({}) {on_conflict}", keys.join(", "));
    tx.execute(&sql, &[&Value::Array(rows.to_vec())]).await?;
    Ok(())
}

async fn delete(tx: &tokio_postgres::Transaction<'_>, tenant: &Tenant, shape: &TenantTable, keys: &[Value]) -> Result<(), AttachError> {
    if keys.is_empty() {
        return Ok(());
    }
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let matches = shape.key.iter().map(|k| format!("t.{0} = x.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
    tx.execute(&format!("DELETE FROM {target} t USING jsonb_populate_recordset(NULL::{target}, $1::jsonb) x WHERE {matches}"), &[&Value::Array(keys.to_vec())]).await?;
    Ok(())
}

/// `SELECT` of a table's columns (the rowid first when it is the key), with `filter`.
fn select_sql(app: &AppTable, filter: &str) -> String {
    let mut cols: Vec<String> = app.columns.iter().map(|c| inspect::ident(&c.name)).collect();
    if app.key == KeyRule::RowId {
        cols.insert(0, "rowid".into());
    }
    format!("SELECT {} FROM {}{filter}", cols.join(", "), inspect::ident(&app.name))
}

/// The row under `key` as the server takes it, or `None` if it is gone.
fn read_row(db: &Connection, app: &AppTable, shape: &TenantTable, key: &[Value]) -> Result<Option<Value>, AttachError> {
    let filter = match &app.key {
        KeyRule::PrimaryKey(cols) => format!(" WHERE {}", cols.iter().enumerate().map(|(i, c)| format!("{} IS ?{}", inspect::ident(c), i + 1)).collect::<Vec<_>>().join(" AND ")),
        KeyRule::RowId => " WHERE rowid = ?1".into(),
    };
    let params: Vec<SqlValue> = key.iter().map(sql_value).collect();
    let mut st = db.prepare_cached(&select_sql(app, &filter))?;
    let mut rows = st.query(rusqlite::params_from_iter(params))?;
    match rows.next()? {
        Some(r) => Ok(Some(row_json(app, shape, r)?)),
        None => Ok(None),
    }
}

/// A row read by [`select_sql`] as a JSON object the server's row type takes.
fn row_json(app: &AppTable, shape: &TenantTable, r: &rusqlite::Row<'_>) -> Result<Value, AttachError> {
    let mut obj = Map::new();
    for (i, (name, ty)) in shape.columns.iter().enumerate() {
        let v = r.get_ref(i)?;
        let converted = to_pg(v, *ty).map_err(|why| AttachError::Value { table: app.name.clone(), key: String::new(), column: name.clone(), why })?;
        obj.insert(name.clone(), converted);
    }
    let key = key_object_of(shape, &Value::Object(obj.clone()));
    if let Some(bad) = shape.key.iter().find(|k| key.get(k.as_str()).is_none_or(Value::is_null)) {
        return Err(AttachError::Value { table: app.name.clone(), key: key.to_string(), column: bad.clone(), why: "a key column holds NULL, which a Postgres primary key cannot".into() });
    }
    Ok(Value::Object(obj))
}

/// The key part of a row object.
fn key_object_of(shape: &TenantTable, row: &Value) -> Value {
    Value::Object(shape.key.iter().map(|k| (k.clone(), row.get(k).cloned().unwrap_or(Value::Null))).collect())
}

/// A logged key as a JSON object of the server's key columns.
fn key_object(shape: &TenantTable, key: &[Value]) -> Value {
    let typed = |(k, v): (&String, &Value)| {
        let ty = shape.columns.iter().find(|(c, _)| c == k).map(|(_, t)| *t).unwrap_or(PgType::Any);
        let v = match (ty, v) {
            (PgType::Bytea, Value::Object(o)) => o.get("$blob").and_then(Value::as_str).map(|h| json!(format!("\\x{h}"))).unwrap_or(Value::Null),
            _ => v.clone(),
        };
        (k.clone(), v)
    };
    Value::Object(shape.key.iter().zip(key).map(typed).collect())
}

/// A logged key value as SQLite takes it back.
fn sql_value(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(*b as i64),
        Value::Number(n) => n.as_i64().map(SqlValue::Integer).unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Object(o) => match o.get("$blob").and_then(Value::as_str) {
            Some(h) => SqlValue::Blob((0..h.len() / 2).filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok()).collect()),
            None => SqlValue::Text(v.to_string()),
        },
        Value::Array(_) => SqlValue::Text(v.to_string()),
    }
}

/// A value SQLite holds, as JSON the server turns into a value of `ty`.
fn to_pg(v: ValueRef<'_>, ty: PgType) -> Result<Value, String> {
    let text = |t: &[u8]| String::from_utf8(t.to_vec()).map_err(|_| "text that is not UTF-8".to_string());
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let number = |f: f64| serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("{f} has no JSON form"));
    Ok(match (ty, v) {
        (_, ValueRef::Null) => Value::Null,
        (PgType::Bigint, ValueRef::Integer(i)) => json!(i),
        (PgType::Bigint, ValueRef::Real(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => json!(f as i64),
        (PgType::Bigint, ValueRef::Text(t)) => json!(text(t)?.trim().parse::<i64>().map_err(|_| "text where an integer was declared".to_string())?),
        (PgType::Boolean, ValueRef::Integer(i)) => json!(i != 0),
        (PgType::Boolean, ValueRef::Text(t)) => match text(t)?.to_ascii_lowercase().as_str() {
            "1" | "true" | "t" => json!(true),
            "0" | "false" | "f" => json!(false),
            other => return Err(format!("{other:?} where a boolean was declared")),
        },
        (PgType::Double | PgType::Numeric | PgType::Any, ValueRef::Integer(i)) => json!(i),
        (PgType::Double | PgType::Numeric | PgType::Any, ValueRef::Real(f)) => number(f)?,
        (PgType::Double, ValueRef::Text(t)) => number(text(t)?.trim().parse::<f64>().map_err(|_| "text where a number was declared".to_string())?)?,
        (PgType::Numeric | PgType::Text | PgType::Any, ValueRef::Text(t)) => json!(text(t)?),
        (PgType::Text, ValueRef::Integer(i)) => json!(i.to_string()),
        (PgType::Text, ValueRef::Real(f)) => json!(f.to_string()),
        (PgType::Bytea, ValueRef::Blob(b) | ValueRef::Text(b)) => json!(format!("\\x{}", hex(b))),
        (PgType::Jsonb, ValueRef::Text(t)) => {
            let s = text(t)?;
            // JSON text as the structure it holds; anything else kept as a string.
            serde_json::from_str(&s).unwrap_or(Value::String(s))
        }
        (PgType::Jsonb, ValueRef::Integer(i)) => json!(i),
        (PgType::Jsonb, ValueRef::Real(f)) => number(f)?,
        (PgType::Any, ValueRef::Blob(b)) => json!({"$blob": hex(b).to_uppercase()}),
        (ty, ValueRef::Blob(_)) => return Err(format!("a BLOB where {} was declared", ty.sql())),
        (ty, other) => return Err(format!("{:?} does not fit {}", other.data_type(), ty.sql())),
    })
}
