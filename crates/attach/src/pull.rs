//! The tenant schema to SQLite: edits made on the server since the last sync (its
//! change log, `server_log`) written into the app's own tables, in the app's file.
//!
//! Each entry names a row; the row is read as the server holds it now (a row edited
//! ten times comes once, with its last values; a row gone is a delete) and written in
//! one `IMMEDIATE` transaction per batch, short, so the app waits for it no longer than
//! for one of its own writes. That transaction's own entries in the file's log (the
//! capture triggers see the sync's writes too) are removed before it commits, so
//! nothing pulled is pushed back.
//!
//! A row the app also wrote since (its change still in the file's log) is left for the
//! push, which settles the conflict (the later write wins). A row the app's table
//! refuses (a constraint the server does not have) is set aside in the history. Server
//! entries are forgotten only after the file committed; a pull cut short is done again,
//! writing the same values.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Client, IsolationLevel};

use crate::capture;
use crate::error::AttachError;
use crate::history::{self, Record, Side, What};
use crate::inspect::AppTable;
use crate::progress::{Progress, Step};
use crate::push::{TableCounts, BATCH};
use crate::rows::{delete_row, key_of, key_text, server_rows, sqlite_key, write_row};
use crate::server_log;
use crate::tenant::{Tenant, TenantTable};

/// What a pull did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PullReport {
    /// Rows written into the file.
    pub written: u64,
    /// Rows deleted from the file.
    pub deleted: u64,
    /// Rows left for the push to settle (the app wrote them too).
    pub deferred: u64,
    pub tables: BTreeMap<String, TableCounts>,
    /// Rows set aside (also in `sync_metadata.row_history`).
    pub history: Vec<Record>,
}

/// One row named by the server's log: its entries, and its values now (`None`: gone).
struct Incoming {
    seqs: Vec<i64>,
    key: Value,
    row: Option<Value>,
}

/// Bring every server edit not yet in the file into it.
pub(crate) async fn pull_all(db: &mut Connection, pg: &mut Client, tenant: &Tenant, tables: &[(AppTable, TenantTable)], progress: &mut dyn Progress) -> Result<PullReport, AttachError> {
    let by_name: BTreeMap<&str, &(AppTable, TenantTable)> = tables.iter().map(|t| (t.0.name.as_str(), t)).collect();
    let mut report = PullReport::default();
    let mut after = 0;
    let mut done = 0;
    loop {
        // The entries and the rows they name, from one snapshot.
        let tx = pg.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let entries = server_log::read(&tx, tenant, after, BATCH as i64).await?;
        let Some(last) = entries.last() else { break };
        after = last.seq;
        // Per table, per row (its key written one way): the row's entries.
        let mut incoming: BTreeMap<String, BTreeMap<String, Incoming>> = BTreeMap::new();
        let mut unknown = vec![];
        for e in &entries {
            let Some((_, shape)) = by_name.get(e.table.as_str()) else {
                // A table the app no longer has: nothing to write it to.
                unknown.push(e.seq);
                continue;
            };
            let row = incoming.entry(e.table.clone()).or_default().entry(key_text(shape, &e.key)).or_insert_with(|| Incoming { seqs: vec![], key: e.key.clone(), row: None });
            row.seqs.push(e.seq);
        }
        for (name, list) in incoming.iter_mut() {
            let (_, shape) = by_name[name.as_str()];
            let keys: Vec<Value> = list.values().map(|i| i.key.clone()).collect();
            for r in server_rows(&tx, tenant, shape, &keys).await? {
                if let Some(i) = list.get_mut(&key_text(shape, &key_of(shape, &r))) {
                    i.row = Some(r);
                }
            }
        }
        tx.commit().await?;

        let (mut forget, records) = write_batch(db, &by_name, &incoming, &mut report)?;
        forget.extend(unknown);
        let tx = pg.transaction().await?;
        for r in &records {
            history::record(&tx, tenant, r).await?;
        }
        server_log::forget(&tx, tenant, &forget).await?;
        tx.commit().await?;
        report.history.extend(records);
        done += entries.len() as u64;
        progress.step(&Step { phase: "pull", table: String::new(), done, total: None });
    }
    Ok(report)
}

/// Write one batch into the file, in one transaction; the entries it settled (to
/// forget on the server) and the rows it set aside.
fn write_batch(db: &mut Connection, by_name: &BTreeMap<&str, &(AppTable, TenantTable)>, incoming: &BTreeMap<String, BTreeMap<String, Incoming>>, report: &mut PullReport) -> Result<(Vec<i64>, Vec<Record>), AttachError> {
    let tx = capture::immediate(db, "writing the server's edits into the file")?;
    let before = capture::last_seq(&tx)?;
    let mut forget = vec![];
    let mut records = vec![];
    for (name, list) in incoming {
        let (app, shape) = by_name[name.as_str()];
        for i in list.values() {
            let key = match sqlite_key(shape, &i.key) {
                Ok(k) => k,
                Err(why) => {
                    records.push(refused(name, &i.key, i.row.clone(), why));
                    forget.extend(&i.seqs);
                    continue;
                }
            };
            if capture::is_pending(&tx, name, &key)? {
                report.deferred += 1;
                continue;
            }
            tx.execute_batch("SAVEPOINT supasync_row")?;
            let written = match &i.row {
                Some(row) => write_row(&tx, app, shape, row).map(|()| true),
                None => delete_row(&tx, app, shape, &i.key).map(|_| false),
            };
            match written {
                Ok(was_write) => {
                    tx.execute_batch("RELEASE supasync_row")?;
                    let c = report.tables.entry(name.clone()).or_default();
                    if was_write {
                        report.written += 1;
                        c.upserted += 1;
                    } else {
                        report.deleted += 1;
                        c.deleted += 1;
                    }
                }
                Err(why) => {
                    tx.execute_batch("ROLLBACK TO supasync_row; RELEASE supasync_row")?;
                    records.push(refused(name, &i.key, i.row.clone(), format!("the app's table refused it: {why}")));
                }
            }
            forget.extend(&i.seqs);
        }
    }
    // The capture triggers logged these writes too: they are the server's, not the app's.
    capture::forget_after(&tx, before)?;
    tx.commit()?;
    Ok((forget, records))
}

fn refused(table: &str, key: &Value, values: Option<Value>, why: String) -> Record {
    Record { table: table.into(), key: key.clone(), what: What::SetAside { from: Side::Supabase, why }, values, written_at_ms: None }
}
