//! Numbered migrations of the store's file format. Each runs once, in order, in one
//! transaction with the `user_version` bump, so a crash mid-upgrade leaves the old
//! version intact. A file from a newer build is refused, not guessed at.

use rusqlite::Connection;
use supasync_core::store::StoreError;

/// The format this build writes.
pub const SCHEMA_VERSION: u32 = 7;

const MIGRATIONS: [&str; 7] = [
    // 1: rows, outbox, metadata.
    "CREATE TABLE rows (
        tbl TEXT NOT NULL,
        local_id TEXT NOT NULL,
        server_id TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (tbl, local_id)
     ) WITHOUT ROWID;
     CREATE INDEX rows_by_server_id ON rows (tbl, server_id) WHERE server_id IS NOT NULL;
     CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tbl TEXT NOT NULL,
        local_id TEXT NOT NULL,
        data TEXT NOT NULL
     );
     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    // 2: sync history, and the per-row outbox lookup used by every local write.
    "CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
     CREATE INDEX outbox_by_row ON outbox (tbl, local_id, seq);",
    // 3: per-column indexes for local queries: which columns, and one entry per row.
    "CREATE TABLE indexed_columns (tbl TEXT NOT NULL, col TEXT NOT NULL, PRIMARY KEY (tbl, col)) WITHOUT ROWID;
     CREATE TABLE row_index (
        tbl TEXT NOT NULL,
        col TEXT NOT NULL,
        val TEXT NOT NULL,
        local_id TEXT NOT NULL,
        PRIMARY KEY (tbl, col, val, local_id)
     ) WITHOUT ROWID;
     CREATE INDEX row_index_by_row ON row_index (tbl, local_id);",
    // 4: row documents leave out what the key columns hold, and a `synced` status
    // (`row_doc`). Nothing to convert: older documents still read. The number is what
    // changes, so that an older build refuses the file instead of misreading it.
    "-- documents only",
    // 5: indexes are kept in order, under names that say their columns
    // (`supasync_core::index`): the per-column entries of format 3 are dropped here, and
    // the replica builds its declared indexes afresh when it opens.
    "DELETE FROM row_index; DELETE FROM indexed_columns;",
    // 6: files' bytes (uploads waiting, downloads kept), in chunks, so an upload reads
    // a large file a piece at a time and the bytes commit with the file's row and
    // outbox entry in one transaction.
    "CREATE TABLE blobs (key TEXT NOT NULL, chunk INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (key, chunk));",
    // 7: rows are found by server id through a table of their own (`server_ids`)
    // instead of an index over `rows`, so that a restore can leave a table's entries
    // aside (`fill_ids`, appended) and write them in order when it is done
    // (`Store::filled`): kept row by row, the index was written at random places and
    // rewritten with every page, and a restore slowed from 46k to 7k rows a second
    // as the replica grew to a million rows.
    "CREATE TABLE server_ids (
        tbl TEXT NOT NULL,
        server_id TEXT NOT NULL,
        local_id TEXT NOT NULL,
        PRIMARY KEY (tbl, server_id)
     ) WITHOUT ROWID;
     INSERT OR REPLACE INTO server_ids (tbl, server_id, local_id)
        SELECT tbl, server_id, local_id FROM rows WHERE server_id IS NOT NULL ORDER BY tbl, server_id;
     DROP INDEX rows_by_server_id;
     CREATE TABLE fill_ids (
        tbl TEXT NOT NULL,
        part TEXT NOT NULL,
        n INTEGER NOT NULL,
        server_id TEXT NOT NULL,
        local_id TEXT NOT NULL,
        PRIMARY KEY (tbl, part, n)
     ) WITHOUT ROWID;",
];

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Io(format!("store migration: {e}"))
}

/// Bring the file up to `target` (normally [`SCHEMA_VERSION`]).
pub fn upgrade(conn: &mut Connection, target: u32) -> Result<(), StoreError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for v in found..target.min(SCHEMA_VERSION) {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(MIGRATIONS[v as usize]).map_err(err)?;
        tx.pragma_update(None, "user_version", v + 1).map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}
