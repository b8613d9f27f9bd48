//! A restore's fill of a table (`Store::filling` to `Store::filled`): where its rows'
//! server ids wait while the rows come, and how their `server_ids` entries are written
//! in order at the end. Kept apart from the store's reads and writes (the parent
//! module), which only ask [`Fill`] whether a new row's entry is written now, set
//! aside, or left in the row. The why of it is in the parent module's docs.

use rusqlite::OptionalExtension;
use supasync_core::store::StoreError;

use super::{sql_err, SqliteStore};

/// From how many rows a restored table's server ids are set aside in parts
/// ([`Fill::InParts`]) rather than left in its rows ([`Fill::FromRows`]): a lookup
/// during the fill reads a sixteenth of them instead of every row of the table.
/// At 20k rows building them from the rows at the end was the cheapest way measured
/// (`BENCH_ONLY=restore`, and bare sqlite3); at a million, a lookup through the rows
/// would read the whole table. The boundary is the one the parts had before (below it
/// entries were kept as rows came); it was not measured again for this mode.
pub const FILL_IN_PARTS_FROM: u64 = 40_000;

/// Where a table's server ids wait while a restore fills it ([`Store::filling`](supasync_core::store::Store::filling)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fill {
    /// In the rows' own `server_id` column: nothing is written for them until the end.
    FromRows,
    /// In `fill_ids`, appended in parts.
    InParts,
}

impl SqliteStore {
    /// [`Store::filling`](supasync_core::store::Store::filling): where the table's server ids wait.
    pub(super) fn begin_fill(&self, table: &str, expected_rows: u64) -> Result<(), StoreError> {
        if !self.keeps_server_ids {
            return Ok(());
        }
        let c = self.lock()?;
        let mut filling = self.filling()?;
        if filling.contains_key(table) {
            // A fill cut short goes on the way it began (its entries may be aside).
            return Ok(());
        }
        let how = if expected_rows < FILL_IN_PARTS_FROM { Fill::FromRows } else { Fill::InParts };
        if how == Fill::FromRows {
            // Named before any of its rows is written: after a crash the table is
            // still known to be filling, its rows still found through themselves.
            c.execute("INSERT OR IGNORE INTO fill_ids (tbl, part, n, server_id, local_id) VALUES (?1, '', 0, '', '')", [table])
                .map_err(sql_err)?;
        }
        filling.insert(table.to_string(), how);
        Ok(())
    }

    /// [`Store::filled`](supasync_core::store::Store::filled): the table's entries written.
    pub(super) fn end_fill(&self, table: &str) -> Result<(), StoreError> {
        let Some(how) = self.filling()?.get(table).copied() else {
            return Ok(());
        };
        if how == Fill::FromRows {
            // One sorted pass over the table's rows (below `FILL_IN_PARTS_FROM`: a few
            // megabytes to sort, some tens of milliseconds); rows edited meanwhile
            // have their entries already, and are written again the same. The count
            // the mode was chosen by is the server's estimate: should the table be far
            // larger, the sort spills to a file rather than growing in memory.
            let mut c = self.lock()?;
            write_sorted(
                &mut c,
                "SELECT tbl, server_id, local_id FROM rows WHERE tbl = ?1 AND server_id IS NOT NULL",
                "DELETE FROM fill_ids WHERE tbl = ?1",
                &[&table],
            )?;
            self.filling()?.remove(table);
            return Ok(());
        }
        // Part by part, each in server id order: the entries are appended to
        // `server_ids`' B-tree instead of scattered over it, and the store is free
        // between parts. The sort spills to a temporary file beyond the page cache:
        // this build of SQLite keeps temporary files in memory by default, and a
        // million entries sorted there took 80 MB. (Android's SQLite keeps them in
        // memory always; a part is a sixteenth of the table's entries.)
        loop {
            let mut c = self.lock()?;
            let part: Option<String> = c
                .query_row("SELECT part FROM fill_ids WHERE tbl = ?1 ORDER BY part LIMIT 1", [table], |r| r.get(0))
                .optional()
                .map_err(sql_err)?;
            let Some(part) = part else {
                // Nothing left aside (new rows of the table meanwhile would have
                // been: the store's lock is held).
                self.filling()?.remove(table);
                return Ok(());
            };
            write_sorted(
                &mut c,
                "SELECT tbl, server_id, local_id FROM fill_ids WHERE tbl = ?1 AND part = ?2",
                "DELETE FROM fill_ids WHERE tbl = ?1 AND part = ?2",
                &[&table, &part],
            )?;
        }
    }
}

/// In one transaction: the entries `entries` selects (table, server id, local id)
/// written into `server_ids` in server id order, then `forget` run (what was set
/// aside for them), both with `params`. The sort spills to a temporary file.
fn write_sorted(c: &mut rusqlite::Connection, entries: &str, forget: &str, params: &[&dyn rusqlite::ToSql]) -> Result<(), StoreError> {
    c.pragma_update(None, "temp_store", "FILE").map_err(sql_err)?;
    let written = (|| {
        let tx = c.transaction()?;
        tx.execute(&format!("INSERT OR REPLACE INTO server_ids (tbl, server_id, local_id) {entries} ORDER BY server_id"), params)?;
        tx.execute(forget, params)?;
        tx.commit()
    })();
    c.pragma_update(None, "temp_store", "DEFAULT").map_err(sql_err)?;
    written.map_err(sql_err)
}
