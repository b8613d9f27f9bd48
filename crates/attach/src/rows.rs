//! The app's rows, read and written by key on both sides: a SQLite row as the JSON
//! object the server's row type takes, a server row (`to_jsonb`) written back into the
//! app's table, and keys in each side's form.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde_json::{Map, Value};
use tokio_postgres::GenericClient;

use crate::error::AttachError;
use crate::inspect::{self, AppTable, KeyRule};
use crate::tenant::{ident, PgType, Tenant, TenantTable, ROWID};
use crate::values::{canonical, from_pg, sql_value, to_pg};

/// `SELECT` of a table's columns (the rowid first when it is the key), with `filter`.
pub(crate) fn select_sql(app: &AppTable, filter: &str) -> String {
    let mut cols: Vec<String> = app.columns.iter().map(|c| inspect::ident(&c.name)).collect();
    if app.key == KeyRule::RowId {
        cols.insert(0, "rowid".into());
    }
    format!("SELECT {} FROM {}{filter}", cols.join(", "), inspect::ident(&app.name))
}

/// ` WHERE` matching a row by its key, the key's values as `?1`, `?2`, ….
fn by_key(app: &AppTable) -> String {
    match &app.key {
        KeyRule::PrimaryKey(cols) => format!(" WHERE {}", cols.iter().enumerate().map(|(i, c)| format!("{} IS ?{}", inspect::ident(c), i + 1)).collect::<Vec<_>>().join(" AND ")),
        KeyRule::RowId => " WHERE rowid = ?1".into(),
    }
}

/// The row under a logged `key` as the server takes it: `None` if it is gone, an
/// [`AttachError::Value`] if a value cannot be the server's.
pub(crate) fn read_row(db: &Connection, app: &AppTable, shape: &TenantTable, key: &[Value]) -> Result<Option<Value>, AttachError> {
    let params: Vec<SqlValue> = key.iter().map(sql_value).collect();
    let mut st = db.prepare_cached(&select_sql(app, &by_key(app)))?;
    let mut rows = st.query(rusqlite::params_from_iter(params))?;
    match rows.next()? {
        Some(r) => Ok(Some(row_json(app, shape, r)?)),
        None => Ok(None),
    }
}

/// A row read by [`select_sql`] as a JSON object the server's row type takes.
pub(crate) fn row_json(app: &AppTable, shape: &TenantTable, r: &rusqlite::Row<'_>) -> Result<Value, AttachError> {
    let mut obj = Map::new();
    let mut bad = None;
    for (i, (name, ty)) in shape.columns.iter().enumerate() {
        match to_pg(r.get_ref(i)?, *ty) {
            Ok(v) => {
                obj.insert(name.clone(), v);
            }
            Err(why) => {
                obj.insert(name.clone(), Value::Null);
                bad.get_or_insert((name.clone(), why));
            }
        }
    }
    let key = key_of(shape, &Value::Object(obj.clone()));
    if let Some((column, why)) = bad {
        return Err(AttachError::Value { table: app.name.clone(), key: key.to_string(), column, why });
    }
    if let Some(null) = shape.key.iter().find(|k| key.get(k.as_str()).is_none_or(Value::is_null)) {
        return Err(AttachError::Value { table: app.name.clone(), key: key.to_string(), column: null.clone(), why: "a key column holds NULL, which a Postgres primary key cannot".into() });
    }
    Ok(Value::Object(obj))
}

/// The key part of a row object (server form).
pub(crate) fn key_of(shape: &TenantTable, row: &Value) -> Value {
    Value::Object(shape.key.iter().map(|k| (k.clone(), row.get(k).cloned().unwrap_or(Value::Null))).collect())
}

/// A logged key as a JSON object of the server's key columns.
pub(crate) fn logged_key(shape: &TenantTable, key: &[Value]) -> Value {
    let typed = |(k, v): (&String, &Value)| {
        let ty = shape.columns.iter().find(|(c, _)| c == k).map(|(_, t)| *t).unwrap_or(PgType::Any);
        let v = match (ty, v) {
            (PgType::Bytea, Value::Object(o)) => o.get("$blob").and_then(Value::as_str).map(|h| Value::String(format!("\\x{}", h.to_lowercase()))).unwrap_or(Value::Null),
            _ => v.clone(),
        };
        (k.clone(), v)
    };
    Value::Object(shape.key.iter().zip(key).map(typed).collect())
}

/// The server's rows under `keys` (server-form key objects), as `to_jsonb` gives them.
pub(crate) async fn server_rows(pg: &impl GenericClient, tenant: &Tenant, shape: &TenantTable, keys: &[Value]) -> Result<Vec<Value>, AttachError> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let target = format!("{}.{}", ident(&tenant.schema), ident(&shape.name));
    let matches = shape.key.iter().map(|k| format!("t.{0} = x.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
    let rows = pg.query(&format!("SELECT to_jsonb(t) FROM {target} t, jsonb_populate_recordset(NULL::{target}, $1::jsonb) x WHERE {matches}"), &[&Value::Array(keys.to_vec())]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A server row's key, as SQLite's values in the key's order (the rowid for a table
/// without a primary key).
pub(crate) fn sqlite_key(shape: &TenantTable, row: &Value) -> Result<Vec<SqlValue>, String> {
    shape
        .key
        .iter()
        .map(|k| {
            let ty = shape.columns.iter().find(|(c, _)| c == k).map(|(_, t)| *t).unwrap_or(PgType::Any);
            from_pg(row.get(k).unwrap_or(&Value::Null), ty)
        })
        .collect()
}

/// Write a server row into the app's table: its values over the row with its key, or
/// a new row. (An `UPDATE` then, if it found nothing, an `INSERT`: the same for a
/// composite key and a rowid, with no conflict target to name.)
pub(crate) fn write_row(db: &Connection, app: &AppTable, shape: &TenantTable, row: &Value) -> Result<(), String> {
    let key = sqlite_key(shape, row)?;
    let mut cols = vec![];
    let mut vals = vec![];
    for (name, ty) in &shape.columns {
        if name == ROWID {
            continue;
        }
        // A column the server has and the app no longer declares is left out.
        if app.columns.iter().any(|c| &c.name == name) {
            cols.push(inspect::ident(name));
            vals.push(from_pg(row.get(name).unwrap_or(&Value::Null), *ty)?);
        }
    }
    let n = key.len();
    let set = cols.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", n + i + 1)).collect::<Vec<_>>().join(", ");
    let params: Vec<&SqlValue> = key.iter().chain(&vals).collect();
    let sql_err = |e: rusqlite::Error| e.to_string();
    let updated = if set.is_empty() { 0 } else { db.prepare_cached(&format!("UPDATE {} SET {set}{}", inspect::ident(&app.name), by_key(app))).and_then(|mut s| s.execute(rusqlite::params_from_iter(&params))).map_err(sql_err)? };
    // SQLite counts the rows an UPDATE matched, changed or not; with nothing to set
    // (a table that is all key), ask.
    let exists = if set.is_empty() {
        db.prepare_cached(&format!("SELECT 1 FROM {}{}", inspect::ident(&app.name), by_key(app))).and_then(|mut s| s.exists(rusqlite::params_from_iter(&key))).map_err(sql_err)?
    } else {
        updated > 0
    };
    if !exists {
        let (mut icols, mut ivals): (Vec<String>, Vec<&SqlValue>) = (cols.clone(), vals.iter().collect());
        if app.key == KeyRule::RowId {
            icols.insert(0, "rowid".into());
            ivals.insert(0, &key[0]);
        }
        let marks = (1..=icols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        db.prepare_cached(&format!("INSERT INTO {} ({}) VALUES ({marks})", inspect::ident(&app.name), icols.join(", "))).and_then(|mut s| s.execute(rusqlite::params_from_iter(ivals))).map_err(sql_err)?;
    }
    Ok(())
}

/// Delete the app's row under a server-form key; whether there was one.
pub(crate) fn delete_row(db: &Connection, app: &AppTable, shape: &TenantTable, key: &Value) -> Result<bool, String> {
    let key = sqlite_key(shape, key)?;
    let n = db.prepare_cached(&format!("DELETE FROM {}{}", inspect::ident(&app.name), by_key(app))).and_then(|mut s| s.execute(rusqlite::params_from_iter(&key))).map_err(|e| e.to_string())?;
    Ok(n > 0)
}

/// A key written one way, to match the server's entries with the file's rows.
pub(crate) fn key_text(shape: &TenantTable, key: &Value) -> String {
    let parts: Vec<Value> = shape
        .key
        .iter()
        .map(|k| {
            let ty = shape.columns.iter().find(|(c, _)| c == k).map(|(_, t)| *t).unwrap_or(PgType::Any);
            canonical(key.get(k).unwrap_or(&Value::Null), ty)
        })
        .collect();
    Value::Array(parts).to_string()
}
