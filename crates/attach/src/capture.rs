//! Capturing the app's writes: triggers that log each changed row's key into a change
//! log inside the app's own database, and the log handed out in batches.
//!
//! Why triggers and a log in the same file: the entry is written by the app's own
//! statement, inside the app's own transaction, so a write and its entry commit or roll
//! back together (no write is missed, none is logged that did not happen), with no
//! change to the app. Only the key is logged, not the row: a sync reads the row as it
//! is when it runs (so ten updates of a row send it once, and a column the app adds
//! later needs no new trigger), and a key that no longer reads back is a delete.
//!
//! What it costs the app: one small insert per row written (measured against the same
//! writes without triggers by `supasync-bench-capture`). The file is put in WAL mode,
//! so the sync's reads never block the app's writes; the sync's own writes (installing
//! triggers, forgetting a confirmed batch) are short `IMMEDIATE` transactions that wait
//! for the app with a busy timeout and give up with [`AttachError::Busy`] rather than
//! make the app wait long: the app's writes are never failed or blocked by design.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use serde_json::Value;

use crate::error::AttachError;
use crate::inspect::{app_tables, ident, AppTable, KeyRule};

pub use crate::inspect::PREFIX;
/// The change log: one entry per row written (`seq`; the table's number `t`; `op`;
/// `at`, ms since the epoch; the key's values in `k1`, `k2`, …, as the row holds them).
pub const LOG: &str = "_supasync_changes";
/// The tables captured: each one's number in the log, and the key it was captured by.
pub const CAPTURED: &str = "_supasync_tables";

/// Milliseconds since the Unix epoch in SQL that any SQLite of the last decade runs
/// (the app's own library may be old: Python's `sqlite3` uses the system's).
const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/// What a logged write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    fn code(self) -> i64 {
        match self {
            Op::Insert => 1,
            Op::Update => 2,
            Op::Delete => 3,
        }
    }

    fn from_code(c: i64) -> Result<Op, AttachError> {
        match c {
            1 => Ok(Op::Insert),
            2 => Ok(Op::Update),
            3 => Ok(Op::Delete),
            other => Err(AttachError::Corrupt(format!("unknown op {other}"))),
        }
    }
}

/// A row that changed since the last confirmed batch: its last op, when, and its key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub table: String,
    /// The key's values, in the key's order (`[rowid]` for a table without a key); a
    /// BLOB as `{"$blob": "<hex>"}`.
    pub key: Vec<Value>,
    /// The last thing done to the row (an insert then a delete is a delete).
    pub op: Op,
    /// When, in ms since the epoch, by the clock of the process that wrote it.
    pub at_ms: i64,
}

/// A batch of changes, each row once, up to entry `upto` of the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeBatch {
    pub upto: i64,
    pub changes: Vec<Change>,
}

/// What [`install`] found and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Installed {
    /// Every table now captured.
    pub tables: Vec<AppTable>,
    /// Tables not yet copied whole since their capture began (new, rebuilt by a
    /// migration, or keyed anew): what they hold was written without a log, so a sync
    /// must compare them whole, then say so with [`mark_copied`].
    pub fresh: Vec<String>,
    /// The journal mode the file is in (`wal` unless the app held it open in another
    /// mode and it could not be switched yet).
    pub journal_mode: String,
}

/// How long the sync's own writes wait for the app before giving up.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);

/// Open the app's database for capture and sync (it must exist: attaching never creates
/// an empty database in place of one that was mistyped).
pub fn open(path: &std::path::Path, wait: Duration) -> Result<Connection, AttachError> {
    let not_db = |why: String| AttachError::NotADatabase { path: path.display().to_string(), why };
    if !path.is_file() {
        return Err(not_db("no such file".into()));
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(|e| not_db(e.to_string()))?;
    conn.busy_timeout(wait)?;
    // The sync writes rows in batches, a table at a time, as they come, not in the
    // order of the app's foreign keys; and a delete it applies must not cascade (the
    // other rows' own changes come with the batch). SQLite's default is off (and Open
    // WebUI leaves it so); the bundled SQLite this crate links turns it on.
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    // Reading the schema fails on a file that is not a database.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0)).map_err(|e| not_db(e.to_string()))?;
    Ok(conn)
}

/// Capture every app table: create the log, (re)create each table's triggers where they
/// are missing or differ, and forget tables that are gone. Safe to run again at any
/// time (each sync does, so a table the app's migration adds is captured from then on).
pub fn install(conn: &mut Connection) -> Result<Installed, AttachError> {
    let journal_mode = wal(conn)?;
    let tables = app_tables(conn)?;
    // Usually nothing changed since the last sync: then the app's write lock is not
    // taken at all.
    if !up_to_date(conn, &tables)? {
        install_triggers(conn, &tables)?;
    }
    begin_again_if_renumbered(conn, &tables)?;
    let fresh = not_copied(conn)?;
    Ok(Installed { tables, fresh, journal_mode })
}

/// Create what the capture needs and (re)create each table's triggers; record tables
/// whose capture begins (new, keyed anew, rebuilt) as not yet copied whole.
fn install_triggers(conn: &mut Connection, tables: &[AppTable]) -> Result<(), AttachError> {
    let tx = immediate(conn, "installing the capture triggers")?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {LOG} (seq INTEGER PRIMARY KEY, t INTEGER NOT NULL, op INTEGER NOT NULL, at INTEGER NOT NULL, k1);
         CREATE TABLE IF NOT EXISTS {CAPTURED} (id INTEGER PRIMARY KEY, tbl TEXT NOT NULL UNIQUE, key TEXT NOT NULL, since INTEGER NOT NULL, copied INTEGER NOT NULL DEFAULT 0,
                                                n INTEGER NOT NULL DEFAULT 0, s INTEGER NOT NULL DEFAULT 0);"
    ))?;
    // A log made before the rowid fingerprint (n, s) was kept.
    if !has_fingerprint(&tx)? {
        tx.execute_batch(&format!("ALTER TABLE {CAPTURED} ADD COLUMN n INTEGER NOT NULL DEFAULT 0; ALTER TABLE {CAPTURED} ADD COLUMN s INTEGER NOT NULL DEFAULT 0;"))?;
    }
    // Enough key columns in the log for the widest key.
    let widest = tables.iter().map(|t| t.key_exprs("NEW").len()).max().unwrap_or(1);
    for k in key_columns(&tx)? + 1..=widest {
        tx.execute_batch(&format!("ALTER TABLE {LOG} ADD COLUMN k{k};"))?;
    }
    let had = captured(&tx)?;
    let existing = our_triggers(&tx)?;
    let mut wanted = std::collections::BTreeSet::new();
    for t in tables {
        let key = serde_json::to_string(&t.key).map_err(|e| AttachError::Corrupt(e.to_string()))?;
        let id = match had.get(&t.name) {
            Some((id, _)) => *id,
            None => {
                tx.execute(&format!("INSERT INTO {CAPTURED} (tbl, key, since) VALUES (?1, ?2, {NOW_MS})"), (&t.name, &key))?;
                tx.last_insert_rowid()
            }
        };
        let mut rebuilt = false;
        for (name, sql) in triggers(t, id) {
            if existing.get(&name) != Some(&sql) {
                tx.execute_batch(&format!("DROP TRIGGER IF EXISTS {}; {sql};", ident(&name)))?;
                rebuilt = true;
            }
            wanted.insert(name);
        }
        // New, keyed anew, or its triggers were gone (a migration rebuilt the table):
        // its rows were written without a log.
        if had.get(&t.name).map(|(_, k)| k) != Some(&key) || rebuilt {
            // Strictly later than before, even within one millisecond.
            tx.execute(&format!("UPDATE {CAPTURED} SET key = ?2, since = max(since + 1, {NOW_MS}), copied = 0 WHERE id = ?1"), (id, &key))?;
            if t.key == KeyRule::RowId {
                set_fingerprint(&tx, t, id)?;
            }
        }
    }
    for name in existing.keys().filter(|n| !wanted.contains(*n)) {
        tx.execute_batch(&format!("DROP TRIGGER IF EXISTS {};", ident(name)))?;
    }
    // A table the app dropped: its entries name rows that are gone with it.
    for (gone, (id, _)) in had.iter().filter(|(n, _)| !tables.iter().any(|t| &t.name == *n)) {
        tx.execute(&format!("DELETE FROM {LOG} WHERE t = ?1"), [id])?;
        tx.execute(&format!("DELETE FROM {CAPTURED} WHERE tbl = ?1"), [gone])?;
    }
    tx.commit()?;
    Ok(())
}

/// A table without a primary key is keyed by its rowid, which `VACUUM` renumbers
/// without firing a trigger. Its triggers keep a fingerprint of its rowids (how many,
/// and their sum) in `_supasync_tables`; a table whose rowids no longer add up was
/// renumbered (or lost rows no trigger saw): its log entries name the wrong rows, so
/// they are dropped and the table is copied whole again. The check reads each such
/// table (a count and a sum), and takes the write lock only when one moved.
fn begin_again_if_renumbered(conn: &mut Connection, tables: &[AppTable]) -> Result<(), AttachError> {
    let rowid_tables: Vec<&AppTable> = tables.iter().filter(|t| t.key == KeyRule::RowId).collect();
    if rowid_tables.is_empty() {
        return Ok(());
    }
    let moved = |c: &Connection, t: &AppTable| -> Result<Option<i64>, AttachError> {
        let (id, n, s): (i64, i64, i64) = c.query_row(&format!("SELECT id, n, s FROM {CAPTURED} WHERE tbl = ?1"), [&t.name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let (count, sum): (i64, i64) = c.query_row(&format!("SELECT count(*), coalesce(sum(rowid), 0) FROM {}", ident(&t.name)), [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(((count, sum) != (n, s)).then_some(id))
    };
    let mut any = false;
    for t in &rowid_tables {
        any |= moved(conn, t)?.is_some();
    }
    if !any {
        return Ok(());
    }
    let tx = immediate(conn, "recapturing a table whose rowids were renumbered")?;
    for t in rowid_tables {
        if let Some(id) = moved(&tx, t)? {
            tx.execute(&format!("DELETE FROM {LOG} WHERE t = ?1"), [id])?;
            tx.execute(&format!("UPDATE {CAPTURED} SET since = max(since + 1, {NOW_MS}), copied = 0 WHERE id = ?1"), [id])?;
            set_fingerprint(&tx, t, id)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Set a rowid table's fingerprint to what it holds now (inside a write transaction).
fn set_fingerprint(tx: &Connection, t: &AppTable, id: i64) -> Result<(), AttachError> {
    let table = ident(&t.name);
    tx.execute(&format!("UPDATE {CAPTURED} SET n = (SELECT count(*) FROM {table}), s = (SELECT coalesce(sum(rowid), 0) FROM {table}) WHERE id = ?1"), [id])?;
    Ok(())
}

fn has_fingerprint(conn: &Connection) -> Result<bool, AttachError> {
    Ok(conn.query_row(&format!("SELECT count(*) FROM pragma_table_info('{CAPTURED}') WHERE name = 's'"), [], |r| r.get::<_, i64>(0))? > 0)
}

/// Whether the capture is installed as `tables` need it: the log wide enough, each
/// table recorded under its key, each trigger as it would be written now, none else.
fn up_to_date(conn: &Connection, tables: &[AppTable]) -> Result<bool, AttachError> {
    if !has_log(conn)? {
        return Ok(false);
    }
    let widest = tables.iter().map(|t| t.key_exprs("NEW").len()).max().unwrap_or(1);
    if key_columns(conn)? < widest || !has_fingerprint(conn)? {
        return Ok(false);
    }
    let had = captured(conn)?;
    let existing = our_triggers(conn)?;
    let mut wanted = 0;
    for t in tables {
        let key = serde_json::to_string(&t.key).map_err(|e| AttachError::Corrupt(e.to_string()))?;
        let Some((id, held)) = had.get(&t.name) else { return Ok(false) };
        if *held != key {
            return Ok(false);
        }
        for (name, sql) in triggers(t, *id) {
            if existing.get(&name) != Some(&sql) {
                return Ok(false);
            }
            wanted += 1;
        }
    }
    Ok(existing.len() == wanted && had.len() == tables.len())
}

/// The captured tables: each one's number in the log and the key (as JSON) it was
/// captured by, by name.
fn captured(conn: &Connection) -> Result<BTreeMap<String, (i64, String)>, AttachError> {
    let mut st = conn.prepare(&format!("SELECT tbl, id, key FROM {CAPTURED}"))?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Tables not yet copied whole.
fn not_copied(conn: &Connection) -> Result<Vec<String>, AttachError> {
    let mut st = conn.prepare(&format!("SELECT tbl FROM {CAPTURED} WHERE copied = 0 ORDER BY tbl"))?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `table` was copied whole (after it was [`Installed::fresh`]): from now on its log
/// says all that changes. Not if its capture began again since `since_ms` said it did
/// (a migration rebuilt it while it was being copied).
pub fn mark_copied(conn: &mut Connection, table: &str, since_ms: i64) -> Result<(), AttachError> {
    let tx = immediate(conn, "recording a table copied whole")?;
    tx.execute(&format!("UPDATE {CAPTURED} SET copied = 1 WHERE tbl = ?1 AND since = ?2"), (table, since_ms))?;
    tx.commit()?;
    Ok(())
}

/// Every captured table holds what the server holds (a file just restored from it).
pub fn mark_all_copied(conn: &mut Connection) -> Result<(), AttachError> {
    let tx = immediate(conn, "recording the tables copied whole")?;
    tx.execute(&format!("UPDATE {CAPTURED} SET copied = 1"), [])?;
    tx.commit()?;
    Ok(())
}

/// When the capture of `table` began (ms since the epoch), to hand to [`mark_copied`].
pub fn capture_began(conn: &Connection, table: &str) -> Result<Option<i64>, AttachError> {
    Ok(conn.query_row(&format!("SELECT since FROM {CAPTURED} WHERE tbl = ?1"), [table], |r| r.get(0)).optional()?)
}

/// Remove every trigger and table this crate added; the app's tables are untouched.
pub fn detach(conn: &mut Connection) -> Result<(), AttachError> {
    let tx = immediate(conn, "removing the capture triggers")?;
    for n in our_triggers(&tx)?.keys() {
        tx.execute_batch(&format!("DROP TRIGGER IF EXISTS {};", ident(n)))?;
    }
    tx.execute_batch(&format!("DROP TABLE IF EXISTS {LOG}; DROP TABLE IF EXISTS {CAPTURED};"))?;
    tx.commit()?;
    Ok(())
}

/// Rows waiting in the log, per table (each row once however often it was written).
pub fn pending(conn: &Connection) -> Result<BTreeMap<String, u64>, AttachError> {
    if !has_log(conn)? {
        return Ok(BTreeMap::new());
    }
    let keys = (1..=key_columns(conn)?).map(|k| format!("k{k}")).collect::<Vec<_>>().join(", ");
    let mut st = conn.prepare(&format!("SELECT c.tbl, count(*) FROM (SELECT DISTINCT t, {keys} FROM {LOG}) l JOIN {CAPTURED} c ON c.id = l.t GROUP BY c.tbl"))?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The oldest logged changes, up to `limit` entries of the log, each row once with its
/// last op. Nothing is removed: [`confirm`] does, once the batch is safely sent.
pub fn take(conn: &Connection, limit: usize) -> Result<ChangeBatch, AttachError> {
    // Each table's name and key width, by number.
    let mut names: BTreeMap<i64, (String, usize)> = BTreeMap::new();
    {
        let mut st = conn.prepare(&format!("SELECT id, tbl, key FROM {CAPTURED}"))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let key: KeyRule = serde_json::from_str(&r.get::<_, String>(2)?).map_err(|e| AttachError::Corrupt(format!("a captured table's key: {e}")))?;
            let width = match key {
                KeyRule::PrimaryKey(cols) => cols.len(),
                KeyRule::RowId => 1,
            };
            names.insert(r.get(0)?, (r.get(1)?, width));
        }
    }
    let width = key_columns(conn)?;
    let keys = (1..=width).map(|k| format!("k{k}")).collect::<Vec<_>>().join(", ");
    let mut st = conn.prepare(&format!("SELECT seq, t, op, at, {keys} FROM {LOG} ORDER BY seq LIMIT ?1"))?;
    let mut rows = st.query([limit as i64])?;
    let mut upto = 0;
    let mut order: Vec<(i64, String)> = vec![];
    let mut last: BTreeMap<(i64, String), (Vec<Value>, Op, i64)> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        upto = r.get::<_, i64>(0)?;
        let t: i64 = r.get(1)?;
        let op = Op::from_code(r.get(2)?)?;
        let at: i64 = r.get(3)?;
        let own = names.get(&t).map(|(_, w)| (*w).min(width)).ok_or_else(|| AttachError::Corrupt(format!("a change of table number {t}, which is not captured")))?;
        let key = (0..own).map(|i| r.get_ref(4 + i).map(crate::values::json_value)).collect::<Result<Vec<_>, _>>()?;
        let id = (t, serde_json::to_string(&key).map_err(|e| AttachError::Corrupt(e.to_string()))?);
        if !last.contains_key(&id) {
            order.push(id.clone());
        }
        last.insert(id, (key, op, at));
    }
    let mut changes = Vec::with_capacity(order.len());
    for id in order {
        let Some((key, op, at_ms)) = last.remove(&id) else { continue };
        let table = names.get(&id.0).map(|(n, _)| n.clone()).unwrap_or_default();
        changes.push(Change { table, key, op, at_ms });
    }
    Ok(ChangeBatch { upto, changes })
}

/// Forget the log up to entry `upto` (a batch that was sent and confirmed).
pub fn confirm(conn: &mut Connection, upto: i64) -> Result<(), AttachError> {
    let tx = immediate(conn, "forgetting a confirmed batch")?;
    tx.execute(&format!("DELETE FROM {LOG} WHERE seq <= ?1"), [upto])?;
    tx.commit()?;
    Ok(())
}

/// Whether the log holds a change of `table`'s row under `key` (as the row holds it)
/// not yet sent: the app wrote it since the last sync.
pub(crate) fn is_pending(conn: &Connection, table: &str, key: &[rusqlite::types::Value]) -> Result<bool, AttachError> {
    let matches = (1..=key.len()).map(|k| format!(" AND l.k{k} IS ?{}", k + 1)).collect::<String>();
    let mut st = conn.prepare_cached(&format!("SELECT 1 FROM {LOG} l JOIN {CAPTURED} c ON c.id = l.t WHERE c.tbl = ?1{matches} LIMIT 1"))?;
    let params: Vec<&dyn rusqlite::ToSql> = std::iter::once(&table as &dyn rusqlite::ToSql).chain(key.iter().map(|v| v as &dyn rusqlite::ToSql)).collect();
    Ok(st.exists(params.as_slice())?)
}

/// The log's last entry (0 when empty).
pub(crate) fn last_seq(conn: &Connection) -> Result<i64, AttachError> {
    Ok(conn.query_row(&format!("SELECT coalesce(max(seq), 0) FROM {LOG}"), [], |r| r.get(0))?)
}

/// Forget the entries after `seq`: the sync's own writes, made inside its transaction
/// (so no write of the app's is among them), which must not go back to the server.
pub(crate) fn forget_after(conn: &Connection, seq: i64) -> Result<(), AttachError> {
    conn.execute(&format!("DELETE FROM {LOG} WHERE seq > ?1"), [seq])?;
    Ok(())
}

/// The three triggers of table number `id`, by name, with the SQL that creates each.
/// Each logs the row's key as the row holds it (no conversion: the cheapest insert
/// SQLite can do, since it runs inside every one of the app's writes).
fn triggers(t: &AppTable, id: i64) -> Vec<(String, String)> {
    let table = ident(&t.name);
    let (new, old) = (t.key_exprs("NEW"), t.key_exprs("OLD"));
    let cols = (1..=new.len()).map(|k| format!("k{k}")).collect::<Vec<_>>().join(", ");
    let log = |key: &[String], op: Op| format!("INSERT INTO {LOG} (t, op, at, {cols}) VALUES ({id}, {}, {NOW_MS}, {})", op.code(), key.join(", "));
    let key_changed = new.iter().zip(&old).map(|(n, o)| format!("{o} IS NOT {n}")).collect::<Vec<_>>().join(" OR ");
    let name = |what: &str| format!("{PREFIX}{}_{what}", t.name);
    // A rowid table's fingerprint (see `begin_again_if_renumbered`), kept by each write.
    let (on_insert, on_update, on_delete) = match t.key {
        KeyRule::RowId => (
            format!(" UPDATE {CAPTURED} SET n = n + 1, s = s + NEW.rowid WHERE id = {id};"),
            format!(" UPDATE {CAPTURED} SET s = s - OLD.rowid + NEW.rowid WHERE id = {id} AND OLD.rowid IS NOT NEW.rowid;"),
            format!(" UPDATE {CAPTURED} SET n = n - 1, s = s - OLD.rowid WHERE id = {id};"),
        ),
        KeyRule::PrimaryKey(_) => Default::default(),
    };
    vec![
        (name("insert"), format!("CREATE TRIGGER {} AFTER INSERT ON {table} BEGIN {};{on_insert} END", ident(&name("insert")), log(&new, Op::Insert))),
        (
            name("update"),
            format!(
                // A key changed: the old row is gone, the new one is there.
                "CREATE TRIGGER {} AFTER UPDATE ON {table} BEGIN INSERT INTO {LOG} (t, op, at, {cols}) SELECT {id}, {}, {NOW_MS}, {} WHERE {key_changed}; {};{on_update} END",
                ident(&name("update")),
                Op::Delete.code(),
                old.join(", "),
                log(&new, Op::Update)
            ),
        ),
        (name("delete"), format!("CREATE TRIGGER {} AFTER DELETE ON {table} BEGIN {};{on_delete} END", ident(&name("delete")), log(&old, Op::Delete))),
    ]
}

/// How many key columns (`k1`…) the log has.
fn key_columns(conn: &Connection) -> Result<usize, AttachError> {
    Ok(conn.query_row(&format!("SELECT count(*) FROM pragma_table_info('{LOG}') WHERE name GLOB 'k[0-9]*'"), [], |r| r.get::<_, i64>(0))? as usize)
}

/// This crate's triggers, by name, with their SQL.
fn our_triggers(conn: &Connection) -> Result<BTreeMap<String, String>, AttachError> {
    let mut st = conn.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '\\_supasync\\_%' ESCAPE '\\'")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Put the file in WAL mode (the sync's reads then never block the app's writes); the
/// mode the file is in afterwards (unchanged if another connection prevented it).
fn wal(conn: &Connection) -> Result<String, AttachError> {
    match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
        Ok(mode) => Ok(mode.to_lowercase()),
        Err(e) if is_busy(&e) => Ok(conn.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))?.to_lowercase()),
        Err(e) => Err(e.into()),
    }
}

fn has_log(conn: &Connection) -> Result<bool, AttachError> {
    Ok(conn.query_row("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1", [LOG], |_| Ok(())).optional()?.is_some())
}

/// An `IMMEDIATE` transaction (the write lock taken up front, so it never fails half
/// way on a lock upgrade), or [`AttachError::Busy`] after the connection's busy timeout.
pub(crate) fn immediate<'c>(conn: &'c mut Connection, what: &str) -> Result<rusqlite::Transaction<'c>, AttachError> {
    let waited_ms = busy_timeout_ms(conn);
    conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| if is_busy(&e) { AttachError::Busy { what: what.into(), waited_ms } } else { e.into() })
}

fn busy_timeout_ms(conn: &Connection) -> u64 {
    conn.query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0)).map(|v| v.max(0) as u64).unwrap_or(0)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_key_is_logged_as_hex() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE files (id BLOB PRIMARY KEY, name TEXT)").unwrap();
        install(&mut c).unwrap();
        c.execute("INSERT INTO files VALUES (x'00ff', 'a')", []).unwrap();
        let b = take(&c, 10).unwrap();
        assert_eq!(b.changes[0].key, vec![serde_json::json!({"$blob": "00FF"})]);
    }
}
