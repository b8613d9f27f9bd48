//! The app's tables as SQLite describes them, and how each row is keyed.
//!
//! The rules, one per kind of table (README, "Attached SQLite databases"):
//! - a table with a primary key, one column or several (a composite key, as Open
//!   WebUI's `chat_file`-style link tables have), is keyed by those columns, in the
//!   key's order; an `INTEGER PRIMARY KEY` is such a key (it is the rowid, and stable);
//! - a table without one is keyed by its `rowid`, which SQLite keeps stable for a row
//!   (an app that runs `VACUUM` may renumber such tables: see the README);
//! - `updated_at` is not needed by any of them: the triggers see every write;
//! - virtual tables (full-text indexes) and their shadow tables hold no data of their
//!   own to sync and are left alone, as are SQLite's own tables and this crate's.

use rusqlite::Connection;
use serde::Serialize;

use crate::error::AttachError;

/// What every name this crate adds to the app's database starts with (so it is never
/// taken for one of the app's tables).
pub const PREFIX: &str = "_supasync_";

/// A column as `PRAGMA table_info` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    /// The declared type, as written (`TEXT`, `BIGINT`, `JSON`, `` for none).
    pub decl_type: String,
    pub not_null: bool,
    /// Position in the primary key, from 1; 0 when not part of it.
    pub pk: u32,
}

/// How a table's rows are told apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRule {
    /// By these columns, in the primary key's order.
    PrimaryKey(Vec<String>),
    /// By the `rowid` (the table declares no primary key).
    RowId,
}

/// One of the app's tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppTable {
    pub name: String,
    pub columns: Vec<Column>,
    pub key: KeyRule,
}

impl AppTable {
    /// The key's columns as SQL expressions on `row` (`NEW`, `OLD`, or a table alias).
    pub(crate) fn key_exprs(&self, row: &str) -> Vec<String> {
        match &self.key {
            KeyRule::PrimaryKey(cols) => cols.iter().map(|c| format!("{row}.{}", ident(c))).collect(),
            KeyRule::RowId => vec![format!("{row}.rowid")],
        }
    }
}

/// The app's tables, by name.
pub fn app_tables(conn: &Connection) -> Result<Vec<AppTable>, AttachError> {
    let mut names = vec![];
    {
        // `table_list` says which tables are virtual or a virtual table's shadows.
        let mut st = conn.prepare("SELECT name, type FROM pragma_table_list WHERE schema = 'main' ORDER BY name")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (name, kind) = row?;
            if kind == "table" && !name.starts_with("sqlite_") && !name.starts_with(PREFIX) {
                names.push(name);
            }
        }
    }
    names.into_iter().map(|name| table(conn, name)).collect()
}

fn table(conn: &Connection, name: String) -> Result<AppTable, AttachError> {
    let mut st = conn.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid")?;
    let columns = st
        .query_map([&name], |r| Ok(Column { name: r.get(0)?, decl_type: r.get(1)?, not_null: r.get::<_, i64>(2)? != 0, pk: r.get::<_, i64>(3)? as u32 }))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut pk: Vec<&Column> = columns.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    let key = if pk.is_empty() { KeyRule::RowId } else { KeyRule::PrimaryKey(pk.iter().map(|c| c.name.clone()).collect()) };
    Ok(AppTable { name, columns, key })
}

/// `name` as an SQL identifier: always quoted (Open WebUI has tables named `user` and
/// `group`), a quote inside doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
