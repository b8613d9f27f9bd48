//! A table's tombstones: the deletes (and moves out of a shared scope) since its
//! tombstone cursor, walked in keyset pages like its rows (a cascade that deletes
//! thousands of rows in one transaction reaches other devices in linear time), and the
//! tombstones of scope ids granted since the last pull, below that cursor.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::page::{PageAt, WalkOrder};
use super::{Pull, PullReport, Snapshot};
use crate::local::local_row::Row;
use crate::local::schema::TableDecl;
use crate::local::store::{Store, WriteBatch};
use crate::net::client::enc;
use crate::net::transport::Http;
use crate::sync::cursor::{self, Cursor};
use crate::sync::error::SyncError;
use crate::sync::scopes;
use crate::sync::server_delete::server_deleted;
use crate::sync::tombstones::{tombstone_target, TOMBSTONES};

impl<S: Store, H: Http> Pull<'_, S, H> {
    /// A table's tombstones since its tombstone cursor; `start`: where a table that never
    /// read them begins (the snapshot its rows were read below) rather than at the first
    /// delete ever made.
    pub(super) async fn pull_tombstones(&self, decl: &TableDecl, snap: &Snapshot, start: Option<Cursor>, report: &mut PullReport) -> Result<(), SyncError> {
        let key = format!("tombstones:{}", decl.name);
        let mut cur = cursor::read(self.cx.store, &key).await?;
        let now = Cursor { next_txid: snap.xmax, pending: snap.xip.clone() };
        if let Some(start) = start.filter(|_| cur == Cursor::default()) {
            // Rows pulled below `start` exist on the server as of it: no delete before
            // it concerns them.
            if start == now {
                let _w = self.cx.writer.lock().await;
                self.cx.store.apply(WriteBatch { meta: vec![(key, Some(json!(now)))], ..Default::default() }).await?;
                return Ok(());
            }
            // A resumed restore: the deletes since its own snapshot.
            cur = start;
        }
        // Shared tables' tombstones also say whether the row was deleted or moved away
        // (older kits, without shared tables, have no `kind`).
        let columns = if decl.shared_by.is_some() { "row_id,local_id,sync_txid,id,kind,scope,scope_id" } else { "row_id,local_id,sync_txid,id" };
        let base = format!("select={columns}&table_name=eq.{}", enc(&decl.name));
        let mut found: Vec<Row> = vec![];
        if !cur.pending.is_empty() {
            let ids: Vec<String> = cur.pending.iter().map(|x| x.to_string()).collect();
            found.extend(self.get_rows(TOMBSTONES, format!("{base}&sync_txid=in.({})", enc(&ids.join(",")))).await?);
            report.requests += 1;
        }
        found.extend(self.tombstone_walk(&base, cur.next_txid, snap.xmax, report).await?);
        let _w = self.cx.writer.lock().await;
        let mut wb = WriteBatch::default();
        self.apply_tombstones(decl, found, &mut wb, report).await?;
        wb.meta.push((key, Some(json!(now))));
        self.cx.store.apply(wb).await?;
        Ok(())
    }

    /// The tombstones of scope ids granted since the last pull, below the tombstone
    /// cursor: deletes (and moves) made while this device could not read them, of rows
    /// it may still hold from an earlier membership (shared, withdrawn, a row deleted,
    /// shared again: the walk that passed the delete could not see it).
    pub(super) async fn backfill_tombstones(&self, decl: &TableDecl, ids: &BTreeSet<String>, report: &mut PullReport) -> Result<(), SyncError> {
        let below = cursor::read(self.cx.store, &format!("tombstones:{}", decl.name)).await?.next_txid;
        if below == 0 {
            return Ok(());
        }
        let mut found: Vec<Row> = vec![];
        for filter in scopes::in_lists("scope_id", ids) {
            let base = format!("select=row_id,local_id,sync_txid,id,kind,scope,scope_id&table_name=eq.{}&{filter}", enc(&decl.name));
            found.extend(self.tombstone_walk(&base, 0, below, report).await?);
        }
        if found.is_empty() {
            return Ok(());
        }
        let _w = self.cx.writer.lock().await;
        let mut wb = WriteBatch::default();
        self.apply_tombstones(decl, found, &mut wb, report).await?;
        self.cx.store.apply(wb).await?;
        Ok(())
    }

    /// The tombstones matching `base`, from transaction `from` up to (not including)
    /// `upto`, in keyset pages.
    pub(super) async fn tombstone_walk(&self, base: &str, from: i64, upto: i64, report: &mut PullReport) -> Result<Vec<Row>, SyncError> {
        let mut found = vec![];
        let mut at = PageAt::From(from);
        let order = WalkOrder { key: "id", local_id: "local_id", by_local_id: false };
        loop {
            let page = self.get_rows(TOMBSTONES, at.query(base, &order, upto, self.cx.cfg.page_size)).await?;
            report.requests += 1;
            let next = at.next((page.len(), page.first(), page.last()), &order, self.cx.cfg.page_size, TOMBSTONES)?;
            found.extend(page);
            match next {
                Some(n) => at = n,
                None => return Ok(found),
            }
        }
    }

    /// Tombstones into a batch (the caller holds the writer lock): a deleted row goes,
    /// a row moved out of a scope id goes unless this device holds its newer version.
    pub(super) async fn apply_tombstones(&self, decl: &TableDecl, found: Vec<Row>, wb: &mut WriteBatch, report: &mut PullReport) -> Result<(), SyncError> {
        let outbox = if found.is_empty() { vec![] } else { self.cx.store.outbox().await? };
        let mut settled = std::collections::HashSet::new();
        for t in found {
            let moved = t.get("kind").and_then(Value::as_str) == Some("moved");
            if !moved {
                self.cx.graveyard.bury_tombstone(&decl.name, &t);
            }
            if let Some(r) = tombstone_target(self.cx.store, decl, &t).await? {
                if settled.contains(&(r.table.clone(), r.local_id.clone())) {
                    continue;
                }
                if moved {
                    if scopes::moved_away(&self.cx, &r, &t, &outbox, &mut settled, wb).await? {
                        report.deleted += 1;
                    }
                    continue;
                }
                server_deleted(&self.cx, &r, "deleted on the server", &outbox, &mut settled, wb).await?;
                report.deleted += 1;
            }
        }
        Ok(())
    }
}
