//! The SQLite store: `supasync-core`'s [`Store`] on one SQLite file per user.
//!
//! WAL journal with `synchronous=NORMAL` (a commit is durable against a process crash,
//! and costs microseconds instead of an fsync; 8 KiB pages; checkpoints every 16 MB of WAL), one
//! connection behind a mutex (one writer), rows and outbox entries kept as JSON
//! documents next to the columns the lookups need (table, local id, server id, seq).
//! Declared indexes are a side table (`row_index`: table, index name, key, local id)
//! kept in the same transaction as the rows, because a row's visible value is the
//! overlay over the mirror and no SQLite expression index over the JSON document can
//! say that. Keys come from the core ([`IndexDef::key`]) and sort as bytes, so an
//! ordered read is a range of the side table's primary key.
//! Rows are found by server id through `server_ids` (table, server id, local id). A
//! restore ([`Store::filling`]) writes no entry as its rows come and builds them in
//! order when it is done ([`Store::filled`]): kept row by row, random server ids are
//! written all over that B-tree and its pages again with every page of rows, which
//! made a restore four times slower per row at 200k rows than at 20k, most of a
//! million-row restore, and half the store's time at 20k rows. How they wait
//! ([`Fill`]) depends on the table's size: below [`FILL_IN_PARTS_FROM`] rows, in the
//! rows themselves (their `server_id` column; a lookup meanwhile reads the table's
//! rows, and the end is one sorted `INSERT … SELECT`); from it, in `fill_ids`,
//! appended as the rows come, in parts by their server id's first two characters
//! (sixteen for UUIDs): a lookup meanwhile reads one part, and the entries are written
//! part by part, each in a transaction of its own, so no read or write of the app
//! waits for the whole sort (a million entries sorted at once held the store for about
//! two seconds). A table being filled is named in `fill_ids` (its entries, or a marker
//! row with an empty part), so a fill a crash cut short is one after a reopen too.
//! The file format is versioned with `PRAGMA user_version` and upgraded by numbered
//! migrations ([`migrations`]). A store can be encrypted at rest ([`cipher`]).

pub mod cipher;
mod fill;
mod migrations;
mod row_doc;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use supasync_core::outbox::OutboxEntry;
use supasync_core::index::{IndexDef, KeyRange};
use supasync_core::store::{HistoryEntry, Store, StoreError, WriteBatch};
use supasync_core::LocalRow;

use cipher::{EncryptionKey, FileKind};
use fill::Fill;
pub use fill::FILL_IN_PARTS_FROM;
pub use migrations::SCHEMA_VERSION;

/// The page size of a new store file, in bytes (benchmarks give their bare SQLite the same).
pub const PAGE_SIZE: u32 = 8192;
/// WAL pages between automatic checkpoints: 16 MiB of WAL at [`PAGE_SIZE`].
pub const WAL_CHECKPOINT_PAGES: u32 = 16 * 1024 * 1024 / PAGE_SIZE;

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Kept indexes per table (a copy of `indexed_columns`, read at open).
    indexed: Mutex<BTreeMap<String, Vec<IndexDef>>>,
    /// Tables a restore is filling and where their server ids wait (read from
    /// `fill_ids` at open: a fill a crash cut short is still one).
    filling: Mutex<BTreeMap<String, Fill>>,
    /// Whether the file keeps `server_ids` (format 7 on; older formats only in tests).
    keeps_server_ids: bool,
    /// The last number given to an entry set aside (`fill_ids.n`).
    fill_seq: std::sync::atomic::AtomicI64,
}

fn sql_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Io(e.to_string()),
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Io(format!("cannot encode: {e}")))
}

impl SqliteStore {
    /// Open (creating if needed) the store at `path`, upgrading its format.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(sql_err)?;
        Self::setup(conn, SCHEMA_VERSION).map_err(|e| match e {
            // An encrypted store and a foreign file look alike without a key.
            StoreError::Corrupt(m) if cipher::file_kind(path).ok() == Some(FileKind::Opaque) => StoreError::Corrupt(format!(
                "{m}: {} is not a SQLite file; if it is an encrypted replica, open it with its key",
                path.display()
            )),
            e => e,
        })
    }

    /// Open (creating if needed) the store at `path` encrypted with `key`
    /// ([`cipher`]). A plaintext store there is encrypted first, its pending writes
    /// kept; a key that does not open the file is [`StoreError::Key`] and changes
    /// nothing.
    pub fn open_encrypted(path: impl AsRef<Path>, key: &EncryptionKey) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        if cipher::file_kind(path)? == FileKind::Plain {
            cipher::reencrypt(path, None, key)?;
        }
        let conn = Connection::open(path).map_err(sql_err)?;
        let conn = match cipher::apply_key(&conn, key) {
            Ok(()) => conn,
            // A store of supasync's first encrypted format is converted (and only a key
            // that opens neither format is refused).
            Err(StoreError::Key(refused)) => {
                drop(conn);
                if !cipher::upgrade_format(path, key)? {
                    return Err(StoreError::Key(refused));
                }
                let conn = Connection::open(path).map_err(sql_err)?;
                cipher::apply_key(&conn, key)?;
                conn
            }
            Err(e) => return Err(e),
        };
        Self::setup(conn, SCHEMA_VERSION)
    }

    /// A store in memory (for tests and throwaway replicas).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::setup(Connection::open_in_memory().map_err(sql_err)?, SCHEMA_VERSION)
    }

    fn setup(conn: Connection, target: u32) -> Result<SqliteStore, StoreError> {
        // Reading the journal mode touches the file header: a file that is not a
        // database fails here, clearly, before anything is written.
        // 8 KiB pages for a new file (an existing one keeps its own): a row is a JSON
        // document of about half a kilobyte, and with 4 KiB pages a restore spent 15%
        // more CPU splitting and rebalancing B-tree pages (measured with
        // `BENCH_ONLY=restore`: the device's CPU per 10k rows, 113-121 ms -> 97-101 ms).
        // An encrypted file too: AEGIS seals a page in one pass, so smaller pages would
        // save it nothing worth SQLite's extra work.
        conn.pragma_update(None, "page_size", PAGE_SIZE).map_err(sql_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sql_err)?;
        // Checkpoint at 16 MB of WAL instead of 4: each checkpoint costs two fsyncs, and at
        // the default a restore paid one every few pages (a third of its write time).
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES).map_err(sql_err)?;
        let mut conn = conn;
        migrations::upgrade(&mut conn, target)?;
        let mut indexed: BTreeMap<String, Vec<IndexDef>> = BTreeMap::new();
        if target >= 3 {
            let mut st = conn.prepare("SELECT tbl, col FROM indexed_columns ORDER BY tbl, col").map_err(sql_err)?;
            let pairs = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_err)?;
            drop(st);
            for (t, name) in pairs {
                // Every kept name is one `IndexDef::name` made (migration 5 cleared
                // the per-column names of older files).
                let def = IndexDef::parse(&name).ok_or_else(|| StoreError::Corrupt(format!("index `{name}` of `{t}`")))?;
                indexed.entry(t).or_default().push(def);
            }
        }
        let keeps_server_ids = target >= 7;
        let (filling, fill_seq) = if keeps_server_ids {
            // A marker row (empty part) names a fill from the rows.
            let mut st = conn.prepare("SELECT tbl, max(part = '') FROM fill_ids GROUP BY tbl").map_err(sql_err)?;
            let tables = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, if r.get::<_, bool>(1)? { Fill::FromRows } else { Fill::InParts })))
                .map_err(sql_err)?
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map_err(sql_err)?;
            drop(st);
            let seq: i64 = conn.query_row("SELECT coalesce(max(n), 0) FROM fill_ids", [], |r| r.get(0)).map_err(sql_err)?;
            (tables, seq)
        } else {
            (BTreeMap::new(), 0)
        };
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            indexed: Mutex::new(indexed),
            filling: Mutex::new(filling),
            fill_seq: std::sync::atomic::AtomicI64::new(fill_seq),
            keeps_server_ids,
        })
    }

    #[doc(hidden)]
    /// Open at an older format version (for the upgrade test).
    pub fn open_at_version(path: impl AsRef<Path>, version: u32) -> Result<SqliteStore, StoreError> {
        Self::setup(Connection::open(path).map_err(sql_err)?, version)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Io("store connection lock poisoned".into()))
    }

    fn indexed(&self) -> Result<MutexGuard<'_, BTreeMap<String, Vec<IndexDef>>>, StoreError> {
        self.indexed.lock().map_err(|_| StoreError::Io("store index lock poisoned".into()))
    }

    fn filling(&self) -> Result<MutexGuard<'_, BTreeMap<String, Fill>>, StoreError> {
        self.filling.lock().map_err(|_| StoreError::Io("store fill lock poisoned".into()))
    }

    /// The rows a query selecting [`row_doc::COLUMNS`] first finds.
    fn rows_where(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<LocalRow>, StoreError> {
        let c = self.lock()?;
        let mut st = c.prepare_cached(sql).map_err(sql_err)?;
        let rows = st
            .query_map(params, row_doc::from_sql)
            .map_err(sql_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_err)?;
        rows.into_iter().collect()
    }
}

supasync_core::maybe_async_trait! {
    impl Store for SqliteStore {
        async fn get_row(&self, table: &str, local_id: &str) -> Result<Option<LocalRow>, StoreError> {
            Ok(self.rows_where(&format!("SELECT {} FROM rows WHERE tbl = ?1 AND local_id = ?2", row_doc::COLUMNS), &[&table, &local_id])?.pop())
        }

        async fn get_rows(&self, table: &str, local_ids: &[String]) -> Result<Vec<Option<LocalRow>>, StoreError> {
            // One lock and one statement for a pulled page's thousand lookups (a third
            // of the time a page took to land when each took both).
            let c = self.lock()?;
            let mut st = c
                .prepare_cached(&format!("SELECT {} FROM rows WHERE tbl = ?1 AND local_id = ?2", row_doc::COLUMNS))
                .map_err(sql_err)?;
            local_ids
                .iter()
                .map(|l| st.query_row(params![table, l], row_doc::from_sql).optional().map_err(sql_err)?.transpose())
                .collect()
        }

        async fn find_by_server_id(&self, table: &str, server_id: &Value) -> Result<Option<LocalRow>, StoreError> {
            // An entry counts only while its row still has that server id: a row deleted
            // or given another id leaves at most a stale entry, never a wrong answer.
            let key = encode(server_id)?;
            let found = |ids: &str, part: &str| {
                let sql = format!(
                    "SELECT r.tbl, r.local_id, r.server_id, r.data FROM {ids} s JOIN rows r ON r.tbl = s.tbl AND r.local_id = s.local_id
                     WHERE s.tbl = ?1 {part} AND s.server_id = ?2 AND r.server_id = s.server_id"
                );
                self.rows_where(&sql, &[&table, &key]).map(|mut rows| rows.pop())
            };
            let filling = self.filling()?.get(table).copied();
            match found("server_ids", "")? {
                // A fill under way (or cut short): its rows' entries wait aside, in
                // parts, unsorted inside each; or in the rows themselves.
                None if filling == Some(Fill::InParts) => found("fill_ids", "AND s.part = substr(?2, 1, 2)"),
                None if filling == Some(Fill::FromRows) => Ok(self
                    .rows_where(&format!("SELECT {} FROM rows WHERE tbl = ?1 AND server_id = ?2", row_doc::COLUMNS), &[&table, &key])?
                    .pop()),
                row => Ok(row),
            }
        }

        async fn scan(&self, table: &str) -> Result<Vec<LocalRow>, StoreError> {
            self.rows_where(&format!("SELECT {} FROM rows WHERE tbl = ?1 ORDER BY local_id", row_doc::COLUMNS), &[&table])
        }

        async fn ensure_index(&self, table: &str, index: &IndexDef) -> Result<(), StoreError> {
            let mut c = self.lock()?;
            let mut indexed = self.indexed()?;
            if indexed.get(table).is_some_and(|kept| kept.contains(index)) {
                return Ok(());
            }
            let name = index.name();
            let tx = c.transaction().map_err(sql_err)?;
            tx.execute("INSERT OR IGNORE INTO indexed_columns (tbl, col) VALUES (?1, ?2)", params![table, name])
                .map_err(sql_err)?;
            {
                let mut read = tx.prepare(&format!("SELECT {} FROM rows WHERE tbl = ?1", row_doc::COLUMNS)).map_err(sql_err)?;
                let rows = read
                    .query_map([table], row_doc::from_sql)
                    .map_err(sql_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_err)?;
                let mut add = tx
                    .prepare("INSERT OR REPLACE INTO row_index (tbl, col, val, local_id) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(sql_err)?;
                for r in rows {
                    let r = r?;
                    if let Some(key) = index.key(&r) {
                        add.execute(params![table, name, key, r.local_id]).map_err(sql_err)?;
                    }
                }
            }
            tx.commit().map_err(sql_err)?;
            indexed.entry(table.to_string()).or_default().push(index.clone());
            Ok(())
        }

        async fn indexes(&self, table: &str) -> Result<Vec<IndexDef>, StoreError> {
            Ok(self.indexed()?.get(table).cloned().unwrap_or_default())
        }

        async fn rows_in_index(&self, table: &str, index: &IndexDef, range: &KeyRange, descending: bool, limit: Option<usize>) -> Result<Vec<LocalRow>, StoreError> {
            if !self.indexed()?.get(table).is_some_and(|kept| kept.contains(index)) {
                return Err(StoreError::NotFound(format!("no index {} on {table}", index.name())));
            }
            let ((lower, lower_open), (upper, upper_open)) = range.closed();
            // The statement's shape varies with the bounds and the direction only; every
            // value is a parameter.
            let sql = format!(
                "SELECT r.tbl, r.local_id, r.server_id, r.data FROM row_index i JOIN rows r ON r.tbl = i.tbl AND r.local_id = i.local_id
                 WHERE i.tbl = ?1 AND i.col = ?2 AND i.val {} ?3 AND i.val {} ?4 ORDER BY i.val {dir}, i.local_id {dir} LIMIT ?5",
                if lower_open { ">" } else { ">=" },
                if upper_open { "<" } else { "<=" },
                dir = if descending { "DESC" } else { "ASC" },
            );
            let limit = limit.map_or(-1, |l| l.min(i64::MAX as usize) as i64);
            self.rows_where(&sql, &[&table, &index.name(), &lower, &upper, &limit])
        }

        async fn count_in_index(&self, table: &str, index: &IndexDef, ranges: &[KeyRange]) -> Result<Vec<usize>, StoreError> {
            if !self.indexed()?.get(table).is_some_and(|kept| kept.contains(index)) {
                return Err(StoreError::NotFound(format!("no index {} on {table}", index.name())));
            }
            let name = index.name();
            let c = self.lock()?;
            let mut out = Vec::with_capacity(ranges.len());
            for range in ranges {
                let ((lower, lower_open), (upper, upper_open)) = range.closed();
                let sql = format!(
                    "SELECT count(*) FROM row_index WHERE tbl = ?1 AND col = ?2 AND val {} ?3 AND val {} ?4",
                    if lower_open { ">" } else { ">=" },
                    if upper_open { "<" } else { "<=" },
                );
                let n: i64 = c
                    .prepare_cached(&sql)
                    .map_err(sql_err)?
                    .query_row(params![table, name, lower, upper], |r| r.get(0))
                    .map_err(sql_err)?;
                out.push(n as usize);
            }
            Ok(out)
        }

        async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
            let c = self.lock()?;
            let mut st = c.prepare_cached("SELECT seq, data FROM outbox ORDER BY seq").map_err(sql_err)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_err)?;
            rows.iter().map(|(seq, t)| entry(*seq, t)).collect()
        }

        async fn last_outbox_entry(&self, table: &str, local_id: &str) -> Result<Option<OutboxEntry>, StoreError> {
            let c = self.lock()?;
            let row = c
                .prepare_cached("SELECT seq, data FROM outbox WHERE tbl = ?1 AND local_id = ?2 ORDER BY seq DESC LIMIT 1")
                .map_err(sql_err)?
                .query_row(params![table, local_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .optional()
                .map_err(sql_err)?;
            row.map(|(seq, t)| entry(seq, &t)).transpose()
        }

        async fn row_outbox(&self, table: &str, local_id: &str) -> Result<Vec<OutboxEntry>, StoreError> {
            let c = self.lock()?;
            let mut st = c.prepare_cached("SELECT seq, data FROM outbox WHERE tbl = ?1 AND local_id = ?2 ORDER BY seq").map_err(sql_err)?;
            let rows = st
                .query_map(params![table, local_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_err)?;
            rows.iter().map(|(seq, t)| entry(*seq, t)).collect()
        }

        async fn meta(&self, key: &str) -> Result<Option<Value>, StoreError> {
            let c = self.lock()?;
            let v: Option<String> = c
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")
                .map_err(sql_err)?
                .query_row([key], |r| r.get(0))
                .optional()
                .map_err(sql_err)?;
            v.map(|t| decode("meta", &t)).transpose()
        }

        async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
            let c = self.lock()?;
            let mut st = c.prepare_cached("SELECT id, data FROM history ORDER BY id DESC LIMIT ?1").map_err(sql_err)?;
            let rows = st
                .query_map([limit as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_err)?;
            rows.iter()
                .map(|(id, t)| {
                    let mut h: HistoryEntry = decode("history", t)?;
                    h.id = *id as u64;
                    Ok(h)
                })
                .collect()
        }

        async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
            if batch.is_empty() {
                return Ok(());
            }
            let mut c = self.lock()?;
            let indexed = self.indexed()?;
            let filling = self.filling()?;
            let tx = c.transaction().map_err(sql_err)?;
            {
                // Each row's server id as the store keeps it, encoded once for its row
                // and its lookup entry.
                let sids = |rows: &mut dyn Iterator<Item = &LocalRow>| rows.map(row_doc::server_id_text).collect::<Result<Vec<_>, _>>();
                let (new_sids, put_sids) = (sids(&mut batch.new_rows.iter().map(|n| &n.row))?, sids(&mut batch.put_rows.iter())?);
                if self.keeps_server_ids {
                    // A deleted row's entry goes with it (before the row does).
                    if !batch.delete_rows.is_empty() {
                        let mut forget = tx
                            .prepare_cached("DELETE FROM server_ids WHERE tbl = ?1 AND server_id = (SELECT server_id FROM rows WHERE tbl = ?1 AND local_id = ?2)")
                            .map_err(sql_err)?;
                        for (t, l) in &batch.delete_rows {
                            forget.execute(params![t, l]).map_err(sql_err)?;
                        }
                    }
                    let mut keep = tx.prepare_cached("INSERT OR REPLACE INTO server_ids (tbl, server_id, local_id) VALUES (?1, ?2, ?3)").map_err(sql_err)?;
                    let mut aside = tx
                        .prepare_cached("INSERT INTO fill_ids (tbl, part, n, server_id, local_id) VALUES (?1, substr(?2, 1, 2), ?3, ?2, ?4)")
                        .map_err(sql_err)?;
                    for (r, sid) in batch.put_rows.iter().zip(&put_sids) {
                        if let Some(sid) = sid {
                            keep.execute(params![r.table, sid, r.local_id]).map_err(sql_err)?;
                        }
                    }
                    for (r, sid) in batch.new_rows.iter().map(|n| &n.row).zip(&new_sids) {
                        let Some(sid) = sid else { continue };
                        match filling.get(&r.table) {
                            // The row's `server_id` column is its entry until the end.
                            Some(Fill::FromRows) => {}
                            Some(Fill::InParts) => {
                                let n = self.fill_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                                aside.execute(params![r.table, sid, n, r.local_id]).map_err(sql_err)?;
                            }
                            None => {
                                keep.execute(params![r.table, sid, r.local_id]).map_err(sql_err)?;
                            }
                        }
                    }
                }
                if !batch.new_rows.is_empty() {
                    // Plain inserts: a taken key fails the batch instead of replacing.
                    let mut add_row = tx
                        .prepare_cached("INSERT INTO rows (tbl, local_id, server_id, data) VALUES (?1, ?2, ?3, ?4)")
                        .map_err(sql_err)?;
                    for (n, sid) in batch.new_rows.iter().zip(&new_sids) {
                        let r = &n.row;
                        add_row
                            .execute(params![r.table, r.local_id, sid, row_doc::encode_new(n)?])
                            .map_err(|e| taken(e, r))?;
                    }
                }
                if !batch.put_rows.is_empty() {
                    let mut put_row = tx
                        .prepare_cached("INSERT OR REPLACE INTO rows (tbl, local_id, server_id, data) VALUES (?1, ?2, ?3, ?4)")
                        .map_err(sql_err)?;
                    for (r, sid) in batch.put_rows.iter().zip(&put_sids) {
                        put_row.execute(params![r.table, r.local_id, sid, row_doc::encode(r)?]).map_err(sql_err)?;
                    }
                }
                let touches_index = batch.put_rows.iter().chain(batch.new_rows.iter().map(|n| &n.row)).any(|r| indexed.contains_key(&r.table))
                    || batch.delete_rows.iter().any(|(t, _)| indexed.contains_key(t));
                if touches_index {
                    // A replaced row's old entries go and its new ones come; a new row
                    // (its key was free, checked above) has none to clear.
                    let mut drop_keys = tx.prepare_cached("DELETE FROM row_index WHERE tbl = ?1 AND local_id = ?2").map_err(sql_err)?;
                    let mut add_key = tx
                        .prepare_cached("INSERT OR REPLACE INTO row_index (tbl, col, val, local_id) VALUES (?1, ?2, ?3, ?4)")
                        .map_err(sql_err)?;
                    let fresh = batch.new_rows.iter().map(|n| (&n.row, false));
                    for (r, replaced) in batch.put_rows.iter().map(|r| (r, true)).chain(fresh) {
                        let Some(kept) = indexed.get(&r.table) else { continue };
                        if replaced {
                            drop_keys.execute(params![r.table, r.local_id]).map_err(sql_err)?;
                        }
                        for index in kept {
                            if let Some(key) = index.key(r) {
                                add_key.execute(params![r.table, index.name(), key, r.local_id]).map_err(sql_err)?;
                            }
                        }
                    }
                    for (t, l) in &batch.delete_rows {
                        if indexed.contains_key(t) {
                            drop_keys.execute(params![t, l]).map_err(sql_err)?;
                        }
                    }
                }
                if !batch.delete_rows.is_empty() {
                    let mut del_row = tx.prepare_cached("DELETE FROM rows WHERE tbl = ?1 AND local_id = ?2").map_err(sql_err)?;
                    for (t, l) in &batch.delete_rows {
                        del_row.execute(params![t, l]).map_err(sql_err)?;
                    }
                }
                let mut put_ob = tx
                    .prepare_cached("UPDATE outbox SET tbl = ?2, local_id = ?3, data = ?4 WHERE seq = ?1")
                    .map_err(sql_err)?;
                for e in &batch.put_outbox {
                    let n = put_ob
                        .execute(params![e.seq as i64, e.table, e.local_id, encode(e)?])
                        .map_err(sql_err)?;
                    if n == 0 {
                        // Dropping the transaction rolls the whole batch back.
                        return Err(StoreError::NotFound(format!("outbox entry {}", e.seq)));
                    }
                }
                let mut del_ob = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1").map_err(sql_err)?;
                for seq in &batch.delete_outbox {
                    del_ob.execute([*seq as i64]).map_err(sql_err)?;
                }
                if !batch.add_outbox.is_empty() {
                    // The `seq` column is the entry's seq (read back by `entry()`); the
                    // document is written once, with a placeholder.
                    let mut add_ob = tx
                        .prepare_cached("INSERT INTO outbox (tbl, local_id, data) VALUES (?1, ?2, ?3)")
                        .map_err(sql_err)?;
                    for n in batch.add_outbox {
                        let (table, local_id) = (n.table.clone(), n.local_id.clone());
                        let e = OutboxEntry::new(0, n);
                        add_ob.execute(params![table, local_id, encode(&e)?]).map_err(sql_err)?;
                    }
                }
                let mut set_meta = tx
                    .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
                    .map_err(sql_err)?;
                let mut del_meta = tx.prepare_cached("DELETE FROM meta WHERE key = ?1").map_err(sql_err)?;
                for (k, v) in &batch.meta {
                    match v {
                        Some(v) => set_meta.execute(params![k, encode(v)?]).map_err(sql_err)?,
                        None => del_meta.execute([k]).map_err(sql_err)?,
                    };
                }
                if !batch.history.is_empty() {
                    let mut add_h = tx.prepare_cached("INSERT INTO history (data) VALUES (?1)").map_err(sql_err)?;
                    for h in &batch.history {
                        add_h.execute([encode(h)?]).map_err(sql_err)?;
                    }
                }
                if !batch.delete_blobs.is_empty() || !batch.put_blobs.is_empty() {
                    let mut del = tx.prepare_cached("DELETE FROM blobs WHERE key = ?1").map_err(sql_err)?;
                    for k in &batch.delete_blobs {
                        del.execute([k]).map_err(sql_err)?;
                    }
                    let mut add = tx.prepare_cached("INSERT INTO blobs (key, chunk, data) VALUES (?1, ?2, ?3)").map_err(sql_err)?;
                    for (k, bytes) in &batch.put_blobs {
                        del.execute([k]).map_err(sql_err)?;
                        if bytes.is_empty() {
                            // An empty file is kept too: one empty chunk.
                            add.execute(params![k, 0i64, &[] as &[u8]]).map_err(sql_err)?;
                        }
                        for (i, c) in bytes.chunks(BLOB_CHUNK).enumerate() {
                            add.execute(params![k, i as i64, c]).map_err(sql_err)?;
                        }
                    }
                }
            }
            tx.commit().map_err(sql_err)
        }

        async fn filling(&self, table: &str, expected_rows: u64) -> Result<(), StoreError> {
            self.begin_fill(table, expected_rows)
        }

        async fn filled(&self, table: &str) -> Result<(), StoreError> {
            self.end_fill(table)
        }

        async fn read_blob(&self, key: &str, offset: u64, len: Option<u64>) -> Result<Option<Vec<u8>>, StoreError> {
            let c = self.lock()?;
            let n: i64 = c.prepare_cached("SELECT count(*) FROM blobs WHERE key = ?1").map_err(sql_err)?.query_row([key], |r| r.get(0)).map_err(sql_err)?;
            if n == 0 {
                return Ok(None);
            }
            let chunk = BLOB_CHUNK as u64;
            let first = (offset / chunk) as i64;
            let last = match len {
                Some(0) => return Ok(Some(vec![])),
                Some(l) => (offset.saturating_add(l - 1) / chunk).min(i64::MAX as u64) as i64,
                None => i64::MAX,
            };
            let mut st = c.prepare_cached("SELECT chunk, data FROM blobs WHERE key = ?1 AND chunk BETWEEN ?2 AND ?3 ORDER BY chunk").map_err(sql_err)?;
            let mut out = Vec::new();
            let mut rows = st.query(params![key, first, last]).map_err(sql_err)?;
            while let Some(r) = rows.next().map_err(sql_err)? {
                let i: i64 = r.get(0).map_err(sql_err)?;
                let data: Vec<u8> = r.get(1).map_err(sql_err)?;
                let base = i as u64 * chunk;
                let from = offset.saturating_sub(base).min(data.len() as u64) as usize;
                out.extend_from_slice(&data[from..]);
            }
            if let Some(l) = len {
                out.truncate(l as usize);
            }
            Ok(Some(out))
        }

        async fn blob_len(&self, key: &str) -> Result<Option<u64>, StoreError> {
            let c = self.lock()?;
            let (n, len): (i64, Option<i64>) = c
                .prepare_cached("SELECT count(*), sum(length(data)) FROM blobs WHERE key = ?1")
                .map_err(sql_err)?
                .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql_err)?;
            Ok((n > 0).then(|| len.unwrap_or(0) as u64))
        }
    }
}

/// Files' bytes are kept in chunks of this size (`blobs`): an upload reads one at a
/// time, so memory stays flat in a file's size.
pub const BLOB_CHUNK: usize = 256 * 1024;

/// A failed insert of a new row: its key was taken ([`StoreError::Exists`]), or storage.
fn taken(e: rusqlite::Error, r: &LocalRow) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Exists(format!("row `{}` of `{}`", r.local_id, r.table)),
        _ => sql_err(e),
    }
}

fn entry(seq: i64, text: &str) -> Result<OutboxEntry, StoreError> {
    let mut e: OutboxEntry = decode("outbox entry", text)?;
    e.seq = seq as u64;
    Ok(e)
}
