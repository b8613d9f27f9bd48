//! Pull and catch-up (DESIGN §2.5): bring back everything that changed on the server.
//!
//! Per table, parents first, with one server snapshot for the whole pull
//! (`supasync_snapshot()`, from the SQL kit): the rows of transactions that were still
//! running last time (*pending*), then keyset pages in `(sync_txid, key)` order below the
//! snapshot's `xmax` (a restore reads each transaction by local id instead, the order
//! the store keeps rows in: [`page::WalkOrder`]); then tombstones the same way. Each
//! page lands in one store batch; the cursor moves only when the table is done, so a
//! crash re-pulls, never skips. A
//! restore's pages carry a mark of where to go on ([`resume`]), so a restore cut short
//! goes on from there instead of from the start, and a restore of several pages is
//! split into ranges walked at once ([`ranges`]). Tombstones: [`tombstone_walk`].
//! Server rows update the mirror; a pending local change stays on top of it. References
//! come back as the parent's local id. A new device restores everything this way.
//!
//! A pull holds the writer lock only while it applies a page, not while it waits for
//! the server: a restore of a million rows takes minutes, and the app's writes must not
//! wait for it. Pulls themselves run one at a time. What may land between two pages: a
//! local write (it changes the overlay, which a page keeps), or a push's answer, which
//! is newer than any row of the pull (the pull reads below its snapshot). A page never
//! puts back an older version of a row than the one the device holds (`sync_txid`), so
//! that answer stays; a restore's new rows cannot meet a row written meanwhile, since
//! local inserts take fresh local ids (and if one did, the page is merged instead).
//!
//! Shared tables ([`crate::sync::scopes`]) first learn the user's scope ids: rows of
//! ids lost leave the replica, and ids granted since the last pull have their older
//! rows fetched (a backfill below the cursor) before the table's walk.

mod page;
mod ranges;
mod restored_parents;
mod resume;
mod tombstone_walk;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use self::page::{broken_row, build, ends, objects, PageAt, RawRow, RowAt, WalkOrder};
use self::restored_parents::RestoredParents;
use self::resume::{Ranges, RestoreMark};

use crate::local::events::PullProgress;
use crate::local::local_row::{id_text, Row};
use crate::local::schema::TableDecl;
use crate::local::store::{Applying, Store, StoreError, WriteBatch};
use crate::net::client::{enc, RequestError};
use crate::net::transport::Http;
use crate::sync::context::SyncContext;
use crate::sync::cursor;
pub use crate::sync::cursor::Cursor;
use crate::sync::error::SyncError;
use crate::sync::scopes;
use crate::sync::references::ParentLocalIds;
use crate::local::new_row::RowText;
use crate::sync::server_rows::{apply_pulled, apply_server_rows, queue_restored, restored_columns, Held};

/// What one pull brought.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullReport {
    pub rows: usize,
    pub deleted: usize,
    pub requests: usize,
}

/// A page of a walk handed to the store: its rows (kept to merge them if a restore's
/// page meets a taken key), how many, how far the walk is once it is stored, and the
/// future of it stored.
struct QueuedPage {
    raw: Option<Vec<RawRow>>,
    /// A restore's mark, stored with the page (and with it if the page is merged).
    mark: Option<MetaEntry>,
    n: usize,
    so_far: u64,
    /// Where the walk goes on after this page (`None`: it was the last).
    end: Option<PageAt>,
    stored: Applying,
    /// A restored page of a table others reference: its (server id, local id) pairs,
    /// kept for the restores of its children once the page is stored.
    learned: Vec<(Value, String)>,
}

/// One metadata entry of a store batch.
type MetaEntry = (String, Option<Value>);

/// Where a walk begins: its first page, the rows stored before it (a restore that goes
/// on after a kill) and the server's count of them all, or whether to ask for it.
struct WalkStart {
    at: PageAt,
    so_far: u64,
    total: Option<u64>,
    counted: bool,
    /// The first page, already fetched (a split restore's first range).
    first: Option<Vec<RawRow>>,
    /// Transactions read by local id (a restore, where the server has the index for
    /// it; see [`WalkOrder`]).
    by_local_id: bool,
}

impl WalkStart {
    fn from(txid: i64, counted: bool) -> WalkStart {
        WalkStart { at: PageAt::From(txid), so_far: 0, total: None, counted, first: None, by_local_id: false }
    }
}



struct Snapshot {
    xmax: i64,
    xip: Vec<i64>,
    /// Tables the server can walk by local id (see [`WalkOrder`]).
    by_local_id: BTreeSet<String>,
}

/// One pull: the engine's parts it reads and writes through. Pulls run one at a time
/// (the engine holds a lock around [`Pull::run`]).
pub struct Pull<'a, S: Store, H: Http> {
    cx: SyncContext<'a, S, H>,
    /// Shared tables: the scope ids the user was a member of when this pull began, and
    /// whose rows the user reads as their owner anyway (`None`: owners do not read).
    members: std::sync::Mutex<BTreeMap<String, Membership>>,
    /// Parents restored by this pull: their children's restores need no lookups.
    restored: RestoredParents,
}

/// A shared table's scope ids the user is a member of, and the owner column through
/// which the user reads their own rows anyway (`None`: owners do not read).
type Membership = (BTreeSet<String>, Option<String>);

impl<'a, S: Store, H: Http> Pull<'a, S, H> {
    pub fn new(cx: SyncContext<'a, S, H>) -> Self {
        Pull { cx, members: Default::default(), restored: Default::default() }
    }

    /// For a page of a shared table: the scope ids among its rows that the user was not
    /// a member of when the pull began (a share that came while it ran) added to the
    /// table's strays, as a meta entry written with the page itself, so that a process
    /// killed after the page still knows to check those rows (see [`scopes::strays`]).
    async fn strays_with(&self, decl: &TableDecl, rows: &[Row]) -> Result<Vec<(String, Option<Value>)>, SyncError> {
        let Some(col) = &decl.shared_by else { return Ok(vec![]) };
        let new: BTreeSet<String> = {
            let Ok(members) = self.members.lock() else { return Ok(vec![]) };
            let Some((ids, owner)) = members.get(&decl.name) else { return Ok(vec![]) };
            // The user's own rows come through their ownership (where owners read).
            let own = |r: &Row| owner.as_ref().is_some_and(|me| r.get(&decl.owner).map(id_text).as_ref() == Some(me));
            rows.iter().filter(|r| !own(r)).filter_map(|r| r.get(col)).filter(|v| !v.is_null()).map(id_text).filter(|id| !ids.contains(id)).collect()
        };
        if new.is_empty() {
            return Ok(vec![]);
        }
        let mut strays = scopes::strays(self.cx.store, &decl.name).await?;
        strays.extend(new);
        Ok(vec![scopes::strays_entry(&decl.name, &strays, &BTreeSet::new())])
    }

    async fn snapshot(&self) -> Result<Snapshot, SyncError> {
        let v = self
            .cx
            .authed(|t| async move { self.cx.client.rpc("supasync_snapshot", &json!({}), &t).await })
            .await?;
        let xmax = v.get("xmax").and_then(Value::as_i64);
        let xip = v.get("xip").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_i64).collect());
        // A kit older than walks by local id names none.
        let by_local_id = v.get("by_local_id").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default();
        match (xmax, xip) {
            (Some(xmax), Some(xip)) => Ok(Snapshot { xmax, xip, by_local_id }),
            _ => Err(RequestError::BadAnswer(format!(
                "supasync_snapshot() returned {v}; is the SQL kit applied?"
            ))
            .into()),
        }
    }

    async fn get_rows(&self, table: &str, query: String) -> Result<Vec<Row>, SyncError> {
        let rows = self.cx
            .authed(|t| {
                let q = query.clone();
                async move { self.cx.client.select(table, &q, &t).await }
            })
            .await?;
        objects(rows)
    }

    /// A page of rows as the server wrote them (see [`Client::select_raw`]).
    ///
    /// [`Client::select_raw`]: crate::net::client::Client::select_raw
    async fn get_page(&self, table: &str, query: String, counted: bool) -> Result<(Vec<RawRow>, Option<u64>), SyncError> {
        Ok(self.cx
            .authed(|t| {
                let q = query.clone();
                async move { self.cx.client.select_raw(table, &q, &t, counted).await }
            })
            .await?)
    }

    /// Pull every table, parents first.
    pub async fn run(&self) -> Result<PullReport, SyncError> {
        // Held scope ids change only here: what a change's read learned of them before
        // or during the pull is forgotten (see `sync::forecast`).
        self.cx.forecast.forget_scopes();
        let done = self.run_all().await;
        self.cx.forecast.forget_scopes();
        done
    }

    async fn run_all(&self) -> Result<PullReport, SyncError> {
        let mut report = PullReport::default();
        // Shared tables: the user's scope ids now; rows of ids lost go first.
        let members = if self.cx.schema.has_shared() {
            let m = scopes::memberships(&self.cx, None).await?;
            // Where this pull began, kept until its end has asked what changed since
            // (an older mark, of a pull that failed before, stays).
            if let (Some(from), None) = (&m.access_from, self.cx.store.meta(scopes::ACCESS_FROM).await?) {
                let _w = self.cx.writer.lock().await;
                self.cx.store
                    .apply(WriteBatch { meta: vec![(scopes::ACCESS_FROM.to_string(), Some(json!(from)))], ..Default::default() })
                    .await?;
            }
            report.deleted += scopes::evict_lost(&self.cx, &m).await?;
            let me = self.cx.session().await?.user_id;
            if let Ok(mut members) = self.members.lock() {
                for t in self.cx.schema.tables().iter().filter(|t| t.shared_by.is_some()) {
                    let owner_reads = m.tables.get(&t.name).is_none_or(|k| k.owner_reads);
                    members.insert(t.name.clone(), (m.ids_for(&t.name), owner_reads.then(|| me.clone())));
                }
            }
            report.requests += 1;
            Some(m)
        } else {
            None
        };
        let snap = self.snapshot().await?;
        report.requests += 1;
        let tables: Vec<TableDecl> = self.cx.schema.parent_order().cloned().collect();
        for decl in &tables {
            let started = self.cx.now_ms();
            let before = (report.rows, report.deleted);
            // Scope ids granted since the last pull: their rows below the cursor.
            let mut wb = WriteBatch::default();
            if let (Some(m), Some(col)) = (&members, &decl.shared_by) {
                let now = m.ids_for(&decl.name);
                let new: BTreeSet<String> = now.difference(&scopes::held(self.cx.store, &decl.name).await?).cloned().collect();
                if !new.is_empty() {
                    self.backfill(decl, col, &new, &mut report).await?;
                    self.backfill_tombstones(decl, &new, &mut report).await?;
                }
                wb.meta.push(scopes::held_entry(&decl.name, &now));
            }
            // A restore cut short goes on where it stopped (see `resume`).
            let restore = resume::read(self.cx.store, &decl.name).await?;
            let never_pulled = self.cx.store.meta(&format!("cursor:{}", decl.name)).await?.is_none();
            let local = if never_pulled && restore.is_none() { self.cx.store.scan(&decl.name).await? } else { vec![] };
            // A table this device never pulled, none of whose rows ever reached the
            // server: no tombstone can concern it, so old ones need not be walked; its
            // tombstones start at the snapshot its rows are read below (a resumed
            // restore's, whose rows were read below that one).
            let tombstones_from = match &restore {
                Some(mark) => Some(mark.cursor()),
                None if never_pulled && !local.iter().any(|r| r.server_id.is_some()) => Some(Cursor { next_txid: snap.xmax, pending: snap.xip.clone() }),
                None => None,
            };
            // Nothing here yet (a restore): the walk meets each row once, so pages need
            // not look for rows this device holds.
            let held = if never_pulled && local.is_empty() && restore.is_none() { Held::NoneYet } else { Held::LookUp };
            drop(local);
            self.pull_rows(decl, &snap, held, restore, &mut report).await?;
            self.pull_tombstones(decl, &snap, tombstones_from, &mut report).await?;
            if let Some(m) = &members {
                if decl.shared_by.is_some() {
                    // Strays the user is a member of now were backfilled above.
                    let strays = scopes::strays(self.cx.store, &decl.name).await?;
                    wb.meta.push(scopes::strays_entry(&decl.name, &strays, &m.ids_for(&decl.name)));
                }
            }
            wb.meta.push((format!("last_sync:{}", decl.name), Some(json!(self.cx.now_ms()))));
            let (rows, deleted) = (report.rows - before.0, report.deleted - before.1);
            wb.history.push(self.cx.history_line(
                "pull",
                Some(&decl.name),
                (rows + deleted) as u64,
                started,
                None,
                json!({"rows": rows, "deleted": deleted}),
            ));
            {
                let _w = self.cx.writer.lock().await;
                self.cx.store.apply(wb).await?;
            }
            if rows + deleted > 0 {
                self.cx.events.changed(vec![decl.name.clone()], false);
            }
        }
        if let Some(m) = &members {
            self.memberships_changed_meanwhile(m, &mut report).await?;
        }
        Ok(report)
    }

    /// Ask the kit which memberships changed while this pull ran, and mark those scope
    /// ids unsure (see [`scopes::changed_during`]).
    async fn memberships_changed_meanwhile(&self, start: &scopes::Memberships, report: &mut PullReport) -> Result<(), SyncError> {
        // From the start of the oldest pull that did not get this far (one that failed
        // after its pages went through RLS as it stood then): its changes count too.
        let since = match self.cx.store.meta(scopes::ACCESS_FROM).await? {
            Some(Value::String(s)) => s,
            _ => match &start.access_from {
                Some(s) => s.clone(),
                None => return Ok(()),
            },
        };
        let end = scopes::memberships(&self.cx, Some(&since)).await?;
        report.requests += 1;
        let done = (scopes::ACCESS_FROM.to_string(), None);
        if end.changed.is_empty() {
            let _w = self.cx.writer.lock().await;
            self.cx.store.apply(WriteBatch { meta: vec![done], ..Default::default() }).await?;
            return Ok(());
        }
        let mut now = BTreeMap::new();
        for t in self.cx.schema.tables().iter().filter(|t| t.shared_by.is_some()) {
            let ids = (scopes::held(self.cx.store, &t.name).await?, scopes::strays(self.cx.store, &t.name).await?);
            now.insert(t.name.clone(), ids);
        }
        let mut meta = scopes::changed_during(self.cx.schema, &end, &now);
        meta.push(done);
        let _w = self.cx.writer.lock().await;
        self.cx.store.apply(WriteBatch { meta, ..Default::default() }).await?;
        Ok(())
    }

    async fn pull_rows(&self, decl: &TableDecl, snap: &Snapshot, mut held: Held, restore: Option<RestoreMark>, report: &mut PullReport) -> Result<(), SyncError> {
        let key = format!("cursor:{}", decl.name);
        let mut cur = cursor::read(self.cx.store, &key).await?;
        if let Some(mark) = restore {
            // A restore cut short: its walk below its own snapshot first, on from the
            // page it had got to, its rows still unseen here (new rows, as before).
            let done = mark.cursor();
            let ranges = Ranges::new(&decl.name, &done, mark.total, mark.ranges());
            if let Some(t) = mark.total.filter(|t| *t >= self.cx.cfg.restore_fill_from) {
                self.cx.store.filling(&decl.name, t).await?;
            }
            self.walk_ranges(decl, &ranges, None, snap.by_local_id.contains(&decl.name), report).await?;
            // Then the table is as a pull at that snapshot leaves it; what changed since
            // comes the usual way.
            self.cx.forecast.cursor(&decl.name, &done);
            self.cx.store.filled(&decl.name).await?;
            let _w = self.cx.writer.lock().await;
            self.cx.store
                .apply(WriteBatch { meta: vec![(key.clone(), Some(json!(done))), resume::done(&decl.name)], ..Default::default() })
                .await?;
            cur = done;
            held = Held::LookUp;
        }
        if !cur.pending.is_empty() {
            let ids: Vec<String> = cur.pending.iter().map(|x| x.to_string()).collect();
            let rows = self
                .get_rows(&decl.name, format!("select=*&sync_txid=in.({})", enc(&ids.join(","))))
                .await?;
            report.requests += 1;
            let _w = self.cx.writer.lock().await;
            let meta = self.strays_with(decl, &rows).await?;
            report.rows += apply_server_rows(&self.cx, decl, rows, WriteBatch { meta, ..Default::default() }).await?;
        }
        // A table never pulled here (a restore) asks for the count with its first page,
        // to report progress against it.
        let next = Cursor {
            next_txid: snap.xmax,
            pending: snap.xip.clone(),
        };
        match held {
            // A restore marks where it is with each page, its walk split in ranges.
            Held::NoneYet => self.restore(decl, cur.next_txid, &next, snap.by_local_id.contains(&decl.name), report).await?,
            Held::LookUp => self.walk(decl, "select=*", WalkStart::from(cur.next_txid, cur == Cursor::default()), snap.xmax, held, None, report).await?,
        }
        // Told before it is stored: the forecast may be ahead of the store (then no row
        // shows early), never behind it.
        self.cx.forecast.cursor(&decl.name, &next);
        // Every walk ends a fill, one a crash cut short included (a no-op otherwise);
        // not under the writer lock: the store takes it part by part, and the app's
        // writes go on between.
        self.cx.store.filled(&decl.name).await?;
        let _w = self.cx.writer.lock().await;
        self.cx.store
            .apply(WriteBatch {
                meta: vec![(key, Some(json!(next))), resume::done(&decl.name)],
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// The rows of scope ids granted since the last pull whose versions are below the
    /// table's cursor (the walk from the cursor brings the rest, and the pending
    /// transactions' rows come with them): a backfill, not a restore. Rows this device
    /// already holds (its own, shared with the scope) are merged as any pulled row.
    async fn backfill(&self, decl: &TableDecl, col: &str, ids: &BTreeSet<String>, report: &mut PullReport) -> Result<(), SyncError> {
        let below = cursor::read(self.cx.store, &format!("cursor:{}", decl.name)).await?.next_txid;
        if below == 0 {
            return Ok(()); // never pulled: the walk brings everything
        }
        for filter in scopes::in_lists(col, ids) {
            self.walk(decl, &format!("select=*&{filter}"), WalkStart::from(0, true), below, Held::LookUp, None, report).await?;
        }
        Ok(())
    }

    /// A keyset walk over `decl`'s rows matching `base`, from `start` up to (not
    /// including) transaction `upto`, each page applied as the next one is on its way.
    /// With `marks` (a restore's ranges, and which of them this walk is), each page is
    /// stored with a [`RestoreMark`] of where the walks go on, and progress is the
    /// ranges' (the caller tells when they are all done).
    #[allow(clippy::too_many_arguments)]
    async fn walk(&self, decl: &TableDecl, base: &str, start: WalkStart, upto: i64, held: Held, marks: Option<(&Ranges, usize)>, report: &mut PullReport) -> Result<(), SyncError> {
        let page = self.cx.cfg.page_size;
        let table = &decl.name;
        let progress = |rows: u64, total: Option<u64>, done: bool| self.cx.events.progress(PullProgress { table: table.clone(), rows, total, done });
        let order = WalkOrder { key: &decl.key, local_id: &decl.local_id, by_local_id: start.by_local_id };
        let page_query = |at: &PageAt| at.query(base, &order, upto, page);
        let mut at = start.at;
        let (mut rows, counted) = match start.first {
            Some(rows) => (rows, None),
            None => {
                report.requests += 1;
                self.get_page(table, page_query(&at), start.counted).await?
            }
        };
        let total = start.total.or(counted);
        // A page is marked with every range where it is known stored: when a page is
        // handed to the store, the one before may still be committing and may yet fail
        // (the one before that was seen stored), so a mark past it could skip its
        // rows. The walk that goes on from there meets that page's rows as taken keys
        // if they were stored, and merges them.
        let mark = || marks.map(|(r, _)| r.entry());
        // A page seen stored: its range goes on after it; progress.
        let seen_stored = |q_end: Option<PageAt>, then: u64, n: usize| {
            let all = match marks {
                Some((r, i)) => r.stored(i, q_end, then),
                None => then,
            };
            if n > 0 {
                progress(all, total, false);
            }
        };
        let mut so_far: u64 = start.so_far;
        let mut pages = 0;
        // The pages after a transaction being read inside (`Within`), asked alongside
        // its first such page: the transactions past it, and, read by local id, its
        // rows without one. When its rows run out, the walk goes on from them instead
        // of waiting for answers that are often empty.
        let mut ahead: Vec<(PageAt, Vec<RawRow>)> = vec![];
        // A restore's parents, found once for the whole walk (see `queue_restored`).
        let mut parents = ParentLocalIds::new();
        // The page the store may still be writing while the next one is built.
        let mut queued: Option<QueuedPage> = None;
        loop {
            pages += 1;
            so_far += rows.len() as u64;
            let mut next_at = at.next(ends(&rows)?.as_refs(), &order, page, table)?;
            while let Some(i) = next_at.as_ref().and_then(|n| ahead.iter().position(|(a, _)| a == n)) {
                let (a, more) = ahead.swap_remove(i);
                so_far += more.len() as u64;
                next_at = a.next(ends(&more)?.as_refs(), &order, page, table)?;
                rows.extend(more);
            }
            let Some(next_at) = next_at else {
                let last = self.queue_page(decl, rows, held, so_far, None, mark(), &mut parents).await?;
                if let Some(q) = queued.take() {
                    let (then, n, end) = (q.so_far, q.n, q.end.clone());
                    report.rows += self.page_stored(decl, q).await?;
                    seen_stored(end, then, n);
                }
                report.rows += self.page_stored(decl, last).await?;
                match marks {
                    Some((r, i)) => {
                        r.stored(i, None, so_far);
                        // A range done while others go on: said at once (the pages of
                        // the others carry it too).
                        if r.split() {
                            let _w = self.cx.writer.lock().await;
                            self.cx.store.apply(WriteBatch { meta: vec![r.entry()], ..Default::default() }).await?;
                        }
                    }
                    None if pages > 1 || total.is_some_and(|t| t > 0) => progress(so_far, total, true),
                    None => {}
                }
                break;
            };
            at = next_at;
            let ask: Vec<PageAt> = match &at {
                PageAt::Within(t, _) | PageAt::Unnamed(t, _) if ahead.iter().any(|(a, _)| *a == PageAt::Past(*t)) => vec![],
                PageAt::Within(t, RowAt::Local { local_id: Some(_), .. }) => vec![PageAt::Unnamed(*t, None), PageAt::Past(*t)],
                PageAt::Within(t, _) | PageAt::Unnamed(t, _) => vec![PageAt::Past(*t)],
                _ => vec![],
            };
            // The next page is on its way while this one is built and handed to the
            // store (the requests are polled first, so the HTTP client carries them
            // meanwhile), and then the page before it is waited for: the store writes
            // one page while the next is built.
            let (next, asked, stored) = futures_util::join!(
                self.get_page(table, page_query(&at), false),
                futures_util::future::join_all(ask.iter().map(|a| self.get_page(table, page_query(a), false))),
                async {
                    let q = self.queue_page(decl, rows, held, so_far, Some(at.clone()), mark(), &mut parents).await?;
                    let before = match queued.take() {
                        Some(b) => Some((b.so_far, b.n, b.end.clone(), self.page_stored(decl, b).await?)),
                        None => None,
                    };
                    Ok::<_, SyncError>((q, before))
                }
            );
            let (q, before) = stored?;
            queued = Some(q);
            report.requests += 1;
            for (a, answer) in ask.into_iter().zip(asked) {
                ahead.push((a, answer?.0));
                report.requests += 1;
            }
            if let Some((then, n, end, applied)) = before {
                report.rows += applied;
                seen_stored(end, then, n);
            }
            rows = next?.0;
        }
        Ok(())
    }

    /// A page built into rows and handed to the store under the writer lock: a
    /// restore's page goes without waiting for it to be stored (see
    /// [`Store::apply_queued`]); a page that may meet rows held is merged and stored.
    #[allow(clippy::too_many_arguments)]
    async fn queue_page(&self, decl: &TableDecl, raw: Vec<RawRow>, held: Held, so_far: u64, end: Option<PageAt>, mark: Option<MetaEntry>, parents: &mut ParentLocalIds) -> Result<QueuedPage, SyncError> {
        let _w = self.cx.writer.lock().await;
        let stored = |n, end| QueuedPage { raw: None, mark: None, n, so_far, end, stored: Box::pin(std::future::ready(Ok(()))), learned: vec![] };
        match held {
            Held::NoneYet => {
                // Rows kept as the server's text, only the columns read built (see
                // `NewRow::mirror_json`).
                let texts = raw.iter().map(|r| RowText::parse(r.get()).map_err(|e| broken_row(e, r))).collect::<Result<Vec<_>, _>>()?;
                let columns = restored_columns(decl, &self.cx.store.indexes(&decl.name).await?);
                let rows = texts.iter().map(|t| t.pick(|c| columns.contains(c))).collect::<Result<Vec<Row>, _>>().map_err(|e| SyncError::from(RequestError::BadAnswer(format!("a row of `{}`: {e}", decl.name))))?;
                let mut meta = self.strays_with(decl, &rows).await?;
                meta.extend(mark.clone());
                let wb = WriteBatch { meta, ..Default::default() };
                let parents = self.restored.known(decl, &rows, parents);
                match queue_restored(&self.cx, decl, rows, Some(&texts), wb, parents).await {
                    Ok((n, done, learned)) => Ok(QueuedPage { raw: Some(raw), mark, n, so_far, end, stored: done, learned }),
                    // A store that writes at once tells now that a key was taken.
                    Err(SyncError::Store(StoreError::Exists(_))) => Ok(stored(self.merge_page(decl, &raw, mark).await?, end)),
                    Err(e) => Err(e),
                }
            }
            Held::LookUp => {
                let rows = raw.iter().map(build).collect::<Result<Vec<Row>, SyncError>>()?;
                let mut meta = self.strays_with(decl, &rows).await?;
                meta.extend(mark);
                let wb = WriteBatch { meta, ..Default::default() };
                Ok(stored(apply_pulled(&self.cx, decl, rows, wb, Held::LookUp).await?, end))
            }
        }
    }

    /// A page merged with the rows the device holds (the writer lock held), with a
    /// restore's mark if it has one.
    async fn merge_page(&self, decl: &TableDecl, raw: &[RawRow], mark: Option<MetaEntry>) -> Result<usize, SyncError> {
        let rows = raw.iter().map(build).collect::<Result<Vec<Row>, SyncError>>()?;
        let mut meta = self.strays_with(decl, &rows).await?;
        meta.extend(mark);
        apply_pulled(&self.cx, decl, rows, WriteBatch { meta, ..Default::default() }, Held::LookUp).await
    }

    /// Wait until a page is stored; returns how many rows it held. A restore's page
    /// that met a taken key (two server rows under one local key: rows that others
    /// share with this user, their local ids unique only per owner) was not written at
    /// all: it is merged instead.
    async fn page_stored(&self, decl: &TableDecl, q: QueuedPage) -> Result<usize, SyncError> {
        match (q.stored.await, q.raw) {
            (Ok(()), _) => {
                self.restored.learn(&decl.name, q.learned);
                Ok(q.n)
            }
            (Err(StoreError::Exists(_)), Some(raw)) => {
                let _w = self.cx.writer.lock().await;
                self.merge_page(decl, &raw, q.mark).await
            }
            (Err(e), _) => Err(e.into()),
        }
    }

}
