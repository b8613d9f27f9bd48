//! A restore split into ranges of transactions, walked at once: several pages in
//! flight. Over a network a restore waits on round trips more than on anything else
//! (through 50 ms, one walk of 20k rows took 1.85x as long as three), and one walk has
//! one page on its way at a time. The ranges never share a transaction, so no row is
//! met twice; their marks ([`Ranges`]) let a restore cut short go on with each range
//! where it stopped.

use serde_json::Value;

use super::page::{ends, PageAt, RawRow, WalkOrder};
use super::resume::{RangeMark, Ranges};
use super::{Pull, PullReport, WalkStart};
use crate::local::events::PullProgress;
use crate::local::schema::TableDecl;
use crate::local::store::Store;
use crate::net::client::enc;
use crate::net::transport::Http;
use crate::sync::cursor::Cursor;
use crate::sync::error::SyncError;
use crate::sync::server_rows::Held;

impl<S: Store, H: Http> Pull<'_, S, H> {
    /// A restore of a table this device holds nothing of, below the snapshot `done`
    /// (the table's cursor once it is over). Its first page brings the server's count;
    /// a table of several pages is then split into up to `restore_ranges` (of the
    /// engine's config; pages stay within hosted Supabase's 1,000 rows) ranges of
    /// transactions, their first transactions found by probing the walk's order at
    /// even offsets, and the ranges are walked at once: a page of each in flight. A
    /// transaction is in one range only (a range ends before the next one's first),
    /// so no row is met twice; one large transaction stays in one range.
    pub(super) async fn restore(&self, decl: &TableDecl, from: i64, done: &Cursor, by_local_id: bool, report: &mut PullReport) -> Result<(), SyncError> {
        let (table, page) = (&decl.name, self.cx.cfg.page_size);
        let order = WalkOrder { key: &decl.key, local_id: &decl.local_id, by_local_id };
        let (rows, total) = self.get_page(table, PageAt::From(from).query("select=*", &order, done.next_txid, page), true).await?;
        report.requests += 1;
        // A large table's lookups by server id are set aside and built at the end
        // (`EngineConfig::restore_fill_from`).
        if let Some(t) = total.filter(|t| *t >= self.cx.cfg.restore_fill_from) {
            self.cx.store.filling(table, t).await?;
        }
        let ends = ends(&rows)?;
        let after = ends.as_refs().2.and_then(|r| r.get("sync_txid")).and_then(Value::as_i64);
        let mut starts = vec![from];
        if let (Some(total), Some(after), true) = (total, after, rows.len() >= page) {
            let k = self.cx.cfg.restore_ranges.min(total / page as u64);
            let probes = (1..k).map(|i| {
                let q = format!(
                    "select=sync_txid&sync_txid=gte.{from}&sync_txid=lt.{}&order=sync_txid.asc,{}.asc&offset={}&limit=1",
                    done.next_txid,
                    enc(&decl.key),
                    total * i / k
                );
                self.get_rows(table, q)
            });
            let found = futures_util::future::try_join_all(probes).await?;
            report.requests += found.len();
            // After the first page's transactions (that page is the first range's).
            for t in found.iter().filter_map(|r| r.first()?.get("sync_txid")?.as_i64()) {
                if t > after && starts.last().is_some_and(|s| t > *s) {
                    starts.push(t);
                }
            }
        }
        let ends_at = starts.iter().skip(1).copied().chain([done.next_txid]);
        let ranges: Vec<RangeMark> = starts.iter().zip(ends_at).map(|(s, end)| RangeMark { at: Some(PageAt::From(*s)), end, rows: 0 }).collect();
        self.walk_ranges(decl, &Ranges::new(table, done, total, ranges), Some(rows), by_local_id, report).await
    }

    /// Walk every range of a restore not yet done, at once; `first`: the first range's
    /// first page, already fetched; `by_local_id`: their transactions are read by local
    /// id. Progress counts the rows stored in all of them.
    pub(super) async fn walk_ranges(&self, decl: &TableDecl, ranges: &Ranges, first: Option<Vec<RawRow>>, by_local_id: bool, report: &mut PullReport) -> Result<(), SyncError> {
        let total = ranges.total();
        let mut first = first;
        let walks = ranges.all().into_iter().enumerate().filter_map(|(i, r)| {
            let at = r.at?;
            let start = WalkStart { at, so_far: r.rows, total, counted: false, first: if i == 0 { first.take() } else { None }, by_local_id };
            Some(async move {
                let mut mine = PullReport::default();
                self.walk(decl, "select=*", start, r.end, Held::NoneYet, Some((ranges, i)), &mut mine).await?;
                Ok::<_, SyncError>(mine)
            })
        });
        for mine in futures_util::future::try_join_all(walks).await? {
            report.rows += mine.rows;
            report.requests += mine.requests;
        }
        let rows = ranges.rows();
        if rows > 0 || total.is_some_and(|t| t > 0) {
            self.cx.events.progress(PullProgress { table: decl.name.clone(), rows, total, done: true });
        }
        Ok(())
    }
}
