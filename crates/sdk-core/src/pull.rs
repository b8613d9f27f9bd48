//! Pull and catch-up (DESIGN §2.5): bring back everything that changed on the server.
//!
//! Per table, parents first, with one server snapshot for the whole pull
//! (`supasync_snapshot()`, from the SQL kit): the rows of transactions that were still
//! running last time (*pending*), then keyset pages in `(sync_txid, key)` order below the
//! snapshot's `xmax`; then tombstones the same way. Each page lands in one store batch;
//! the cursor moves only when the table is done, so a crash re-pulls, never skips.
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

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::enc;
use crate::engine::{Engine, EngineError};
use crate::events::PullProgress;
use crate::local_row::{id_text, row_key, sync_txid, LocalRow, Overlay, RowStatus};
use crate::schema::TableDecl;
use crate::store::{Store, StoreError, WriteBatch};
use crate::transport::Http;
use crate::Row;

/// Where a table's pull resumes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Rows written by transactions from this id on.
    pub next_txid: i64,
    /// Transactions that were running at the last pull.
    pub pending: Vec<i64>,
}

/// What one pull brought.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullReport {
    pub rows: usize,
    pub deleted: usize,
    pub requests: usize,
}

/// An answer's rows as objects (anything else is a broken answer).
fn objects(rows: Vec<Value>) -> Result<Vec<Row>, EngineError> {
    rows.into_iter()
        .map(|r| match r {
            Value::Object(m) => Ok(m),
            other => Err(crate::client::RequestError::BadAnswer(format!("a row is not an object: {other}")).into()),
        })
        .collect()
}

/// One row of a pulled page, still the JSON text the server wrote.
type RawRow = Box<serde_json::value::RawValue>;

/// A pulled row built (anything but an object is a broken answer).
fn build(raw: &RawRow) -> Result<Row, EngineError> {
    serde_json::from_str(raw.get())
        .map_err(|e| crate::client::RequestError::BadAnswer(format!("a row is not an object: {e}: {}", raw.get())).into())
}

/// A page's length with its first and last rows built: all the walk needs to ask for
/// the page after it.
struct Ends {
    len: usize,
    first: Option<Row>,
    last: Option<Row>,
}

impl Ends {
    fn as_refs(&self) -> (usize, Option<&Row>, Option<&Row>) {
        (self.len, self.first.as_ref(), self.last.as_ref())
    }
}

fn ends(rows: &[RawRow]) -> Result<Ends, EngineError> {
    Ok(Ends {
        len: rows.len(),
        first: rows.first().map(build).transpose()?,
        last: rows.last().map(build).transpose()?,
    })
}

/// Where the next page of a table's keyset walk starts, in `(sync_txid, key)` order.
enum PageAt {
    /// The first page: transactions from this id on.
    From(i64),
    /// After this row (the last read), whose transaction has fewer rows left than a page.
    After(i64, String),
    /// Inside one transaction with more rows than a page: after this key.
    Within(i64, String),
    /// The transactions after this one.
    Past(i64),
}

impl PageAt {
    /// The request for this page: `base` (select and fixed filters) plus the keyset
    /// range below the snapshot's `upto`, ordered by `(sync_txid, key)`.
    fn query(&self, base: &str, key: &str, upto: i64, page: usize) -> String {
        let k = enc(key);
        match self {
            PageAt::From(t) => format!("{base}&sync_txid=gte.{t}&sync_txid=lt.{upto}&order=sync_txid.asc,{k}.asc&limit={page}"),
            // `sync_txid >= t` keeps the index range; the `or` only trims the rows of
            // txid `t` already read, fewer than a page (else it is `Within`).
            PageAt::After(t, id) => format!(
                "{base}&sync_txid=gte.{t}&or={}&sync_txid=lt.{upto}&order=sync_txid.asc,{k}.asc&limit={page}",
                enc(&format!("(sync_txid.gt.{t},{key}.gt.{})", quoted(id)))
            ),
            // A plain filter takes the value as it is (quotes belong to lists and `or`).
            PageAt::Within(t, id) => format!("{base}&sync_txid=eq.{t}&{k}=gt.{}&order={k}.asc&limit={page}", enc(id)),
            PageAt::Past(t) => format!("{base}&sync_txid=gt.{t}&sync_txid=lt.{upto}&order=sync_txid.asc,{k}.asc&limit={page}"),
        }
    }

    /// Where the page after this page's answer starts (its length, first and last
    /// rows); `None`: the walk is done.
    fn next(&self, (len, first, last): (usize, Option<&Row>, Option<&Row>), key: &str, page: usize, table: &str) -> Result<Option<PageAt>, EngineError> {
        let txid = |r: &Row| {
            r.get("sync_txid").and_then(Value::as_i64).ok_or_else(|| {
                EngineError::from(crate::client::RequestError::BadAnswer(format!(
                    "rows of `{table}` have no sync_txid; run supasync.enable_sync('{table}')"
                )))
            })
        };
        Ok(match (first, last) {
            (Some(first), Some(last)) if len >= page => {
                let (t, id) = (txid(last)?, last.get(key).map(id_text).unwrap_or_default());
                // A second full page of one transaction's rows: it is large, so read
                // on inside it by key alone (an index seek; the `or` form rescans the
                // rows of it already read). After its first full page the `or` form
                // is the cheaper guess: a transaction of exactly a page (what a push
                // of a page of writes makes) then costs one request that rescans a
                // page of index entries instead of two, the second often empty.
                let inside = match self {
                    PageAt::After(a, _) | PageAt::Within(a, _) => *a == t,
                    PageAt::From(_) | PageAt::Past(_) => false,
                };
                Some(if inside && txid(first)? == t { PageAt::Within(t, id) } else { PageAt::After(t, id) })
            }
            // The transaction read by key is done; the ones after it remain.
            _ => match self {
                PageAt::Within(t, _) => Some(PageAt::Past(*t)),
                _ => None,
            },
        })
    }
}

/// A key as PostgREST compares it: double-quoted, so any text (commas, dots) is one value.
fn quoted(id: &str) -> String {
    format!("\"{}\"", id.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether a page's rows may already be on this device.
#[derive(Clone, Copy)]
enum Held {
    /// Look them up (one read for the page).
    LookUp,
    /// The table held nothing when the walk began, and a walk meets each row once.
    NoneYet,
}

struct Snapshot {
    xmax: i64,
    xip: Vec<i64>,
}

impl<S: Store, H: Http> Engine<S, H> {
    async fn snapshot(&self) -> Result<Snapshot, EngineError> {
        let v = self
            .authed(|t| async move { self.client.rpc("supasync_snapshot", &json!({}), &t).await })
            .await?;
        let xmax = v.get("xmax").and_then(Value::as_i64);
        let xip = v.get("xip").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_i64).collect());
        match (xmax, xip) {
            (Some(xmax), Some(xip)) => Ok(Snapshot { xmax, xip }),
            _ => Err(crate::client::RequestError::BadAnswer(format!(
                "supasync_snapshot() returned {v}; is the SQL kit applied?"
            ))
            .into()),
        }
    }

    pub(crate) async fn cursor(&self, key: &str) -> Result<Cursor, EngineError> {
        match self.store.meta(key).await? {
            Some(v) => Ok(serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?),
            None => Ok(Cursor::default()),
        }
    }

    async fn get_rows(&self, table: &str, query: String) -> Result<Vec<Row>, EngineError> {
        let rows = self
            .authed(|t| {
                let q = query.clone();
                async move { self.client.select(table, &q, &t).await }
            })
            .await?;
        objects(rows)
    }

    /// A page of rows as the server wrote them (see [`Client::select_raw`]).
    ///
    /// [`Client::select_raw`]: crate::client::Client::select_raw
    async fn get_page(&self, table: &str, query: String, counted: bool) -> Result<(Vec<RawRow>, Option<u64>), EngineError> {
        Ok(self
            .authed(|t| {
                let q = query.clone();
                async move { self.client.select_raw(table, &q, &t, counted).await }
            })
            .await?)
    }

    /// Pull every table, parents first.
    pub async fn pull(&self) -> Result<PullReport, EngineError> {
        let _one_pull = self.puller.lock().await;
        let mut report = PullReport::default();
        let snap = self.snapshot().await?;
        report.requests += 1;
        let tables: Vec<TableDecl> = self.schema.parent_order().cloned().collect();
        for decl in &tables {
            let started = self.now_ms();
            let before = (report.rows, report.deleted);
            let never_pulled = self.store.meta(&format!("cursor:{}", decl.name)).await?.is_none();
            let local = if never_pulled { self.store.scan(&decl.name).await? } else { vec![] };
            // A table this device never pulled, none of whose rows ever reached the
            // server: no tombstone can concern it, so old ones need not be walked.
            let nothing_to_delete = never_pulled && !local.iter().any(|r| r.server_id.is_some());
            // Nothing here yet (a restore): the walk meets each row once, so pages need
            // not look for rows this device holds.
            let held = if never_pulled && local.is_empty() { Held::NoneYet } else { Held::LookUp };
            drop(local);
            self.pull_rows(decl, &snap, held, &mut report).await?;
            self.pull_tombstones(decl, &snap, nothing_to_delete, &mut report).await?;
            let mut wb = WriteBatch::default();
            wb.meta.push((format!("last_sync:{}", decl.name), Some(json!(self.now_ms()))));
            let (rows, deleted) = (report.rows - before.0, report.deleted - before.1);
            wb.history.push(self.history_line(
                "pull",
                Some(&decl.name),
                (rows + deleted) as u64,
                started,
                None,
                json!({"rows": rows, "deleted": deleted}),
            ));
            {
                let _w = self.writer.lock().await;
                self.store.apply(wb).await?;
            }
            if rows + deleted > 0 {
                self.events.changed(vec![decl.name.clone()], false);
            }
        }
        Ok(report)
    }

    async fn pull_rows(&self, decl: &TableDecl, snap: &Snapshot, held: Held, report: &mut PullReport) -> Result<(), EngineError> {
        let key = format!("cursor:{}", decl.name);
        let cur = self.cursor(&key).await?;
        let page = self.cfg.page_size;
        if !cur.pending.is_empty() {
            let ids: Vec<String> = cur.pending.iter().map(|x| x.to_string()).collect();
            let rows = self
                .get_rows(&decl.name, format!("select=*&sync_txid=in.({})", enc(&ids.join(","))))
                .await?;
            report.requests += 1;
            let _w = self.writer.lock().await;
            report.rows += self.apply_server_rows(decl, rows, WriteBatch::default()).await?;
        }
        let table = &decl.name;
        // A page is built into rows and written while the next one is on its way: only
        // its first and last rows are built before the next request goes out.
        let apply = |raw: Vec<RawRow>| async move {
            let _w = self.writer.lock().await;
            let build_all = || raw.iter().map(build).collect::<Result<Vec<Row>, EngineError>>();
            match self.apply_pulled(decl, build_all()?, WriteBatch::default(), held).await {
                // Two server rows under one local key (rows that others share with this
                // user, their local ids unique only per owner): a restore's plain
                // inserts refuse the page, and nothing of it was written. Merge it.
                Err(EngineError::Store(StoreError::Exists(_))) if matches!(held, Held::NoneYet) => {
                    self.apply_pulled(decl, build_all()?, WriteBatch::default(), Held::LookUp).await
                }
                other => other,
            }
        };
        let page_query = |at: &PageAt| at.query("select=*", &decl.key, snap.xmax, page);
        let mut at = PageAt::From(cur.next_txid);
        // A table never pulled here (a restore) asks for the count with its first page,
        // to report progress against it.
        let (mut rows, total) = self.get_page(table, page_query(&at), cur == Cursor::default()).await?;
        report.requests += 1;
        let mut so_far: u64 = 0;
        let mut pages = 0;
        // The page past a transaction being read by key (`Within`), asked alongside its
        // first such page: when that transaction's rows run out, the walk goes on from
        // it instead of waiting for an answer that is often empty.
        let mut past: Option<(i64, Vec<RawRow>)> = None;
        loop {
            pages += 1;
            so_far += rows.len() as u64;
            let mut next_at = at.next(ends(&rows)?.as_refs(), &decl.key, page, table)?;
            if let Some(PageAt::Past(t)) = next_at {
                if let Some((_, ahead)) = past.take_if(|(pt, _)| *pt == t) {
                    so_far += ahead.len() as u64;
                    next_at = PageAt::Past(t).next(ends(&ahead)?.as_refs(), &decl.key, page, table)?;
                    rows.extend(ahead);
                }
            }
            let Some(next_at) = next_at else {
                report.rows += apply(rows).await?;
                if pages > 1 || total.is_some_and(|t| t > 0) {
                    self.events.progress(PullProgress { table: table.clone(), rows: so_far, total, done: true });
                }
                break;
            };
            at = next_at;
            let ask_past = match at {
                PageAt::Within(t, _) if past.is_none() => Some(t),
                _ => None,
            };
            let n = rows.len();
            // The next page is on its way while this one is built and written (the
            // requests are polled first, so the HTTP client carries them meanwhile).
            let (next, ahead, applied) = futures_util::join!(
                self.get_page(table, page_query(&at), false),
                async {
                    match ask_past {
                        Some(t) => Some((t, self.get_page(table, page_query(&PageAt::Past(t)), false).await)),
                        None => None,
                    }
                },
                apply(rows)
            );
            report.rows += applied?;
            report.requests += 1;
            if let Some((t, ahead)) = ahead {
                past = Some((t, ahead?.0));
                report.requests += 1;
            }
            if n > 0 {
                self.events.progress(PullProgress { table: table.clone(), rows: so_far, total, done: false });
            }
            rows = next?.0;
        }
        let next = Cursor {
            next_txid: snap.xmax,
            pending: snap.xip.clone(),
        };
        let _w = self.writer.lock().await;
        self.store
            .apply(WriteBatch {
                meta: vec![(key, Some(json!(next)))],
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    async fn pull_tombstones(&self, decl: &TableDecl, snap: &Snapshot, nothing_to_delete: bool, report: &mut PullReport) -> Result<(), EngineError> {
        let key = format!("tombstones:{}", decl.name);
        let cur = self.cursor(&key).await?;
        if nothing_to_delete && cur == Cursor::default() {
            // Start at this snapshot instead of walking every delete ever made. (Rows
            // pulled just now exist on the server as of this snapshot.)
            let start = Cursor {
                next_txid: snap.xmax,
                pending: snap.xip.clone(),
            };
            let _w = self.writer.lock().await;
            self.store
                .apply(WriteBatch {
                    meta: vec![(key, Some(json!(start)))],
                    ..Default::default()
                })
                .await?;
            return Ok(());
        }
        let base = format!("select=row_id,local_id,sync_txid,id&table_name=eq.{}", enc(&decl.name));
        let mut found: Vec<Row> = vec![];
        if !cur.pending.is_empty() {
            let ids: Vec<String> = cur.pending.iter().map(|x| x.to_string()).collect();
            found.extend(self.get_rows("supasync_tombstones", format!("{base}&sync_txid=in.({})", enc(&ids.join(",")))).await?);
            report.requests += 1;
        }
        let mut at = PageAt::From(cur.next_txid);
        loop {
            let page = self
                .get_rows("supasync_tombstones", at.query(&base, "id", snap.xmax, self.cfg.page_size))
                .await?;
            report.requests += 1;
            let next = at.next((page.len(), page.first(), page.last()), "id", self.cfg.page_size, "supasync_tombstones")?;
            found.extend(page);
            match next {
                Some(n) => at = n,
                None => break,
            }
        }
        let _w = self.writer.lock().await;
        let mut wb = WriteBatch::default();
        let outbox = if found.is_empty() { vec![] } else { self.store.outbox().await? };
        let mut settled = std::collections::HashSet::new();
        for t in found {
            self.graveyard.bury_tombstone(&decl.name, &t);
            if let Some(r) = self.tombstone_target(decl, &t).await? {
                if settled.contains(&(r.table.clone(), r.local_id.clone())) {
                    continue;
                }
                self.server_deleted(&r, "deleted on the server", &outbox, &mut settled, &mut wb).await?;
                report.deleted += 1;
            }
        }
        wb.meta.push((
            key,
            Some(json!(Cursor {
                next_txid: snap.xmax,
                pending: snap.xip.clone(),
            })),
        ));
        self.store.apply(wb).await?;
        Ok(())
    }

    /// The local row a tombstone (`local_id`, `row_id`) names, if this device has it.
    pub(crate) async fn tombstone_target(&self, decl: &TableDecl, t: &Row) -> Result<Option<LocalRow>, EngineError> {
        if let Some(l) = t.get("local_id").and_then(Value::as_str) {
            if let Some(r) = self.store.get_row(&decl.name, l).await? {
                return Ok(Some(r));
            }
        }
        match t.get("row_id").and_then(Value::as_str) {
            Some(id) => self.find_by_server_text(decl, id).await,
            None => Ok(None),
        }
    }

    /// A row by its server id given as text (tombstones store ids as text).
    pub(crate) async fn find_by_server_text(&self, decl: &TableDecl, id: &str) -> Result<Option<LocalRow>, EngineError> {
        if let Some(r) = self.store.find_by_server_id(&decl.name, &Value::String(id.into())).await? {
            return Ok(Some(r));
        }
        if let Ok(n) = id.parse::<i64>() {
            return Ok(self.store.find_by_server_id(&decl.name, &json!(n)).await?);
        }
        Ok(None)
    }

    /// Apply server rows in one batch; returns how many.
    pub(crate) async fn apply_server_rows(&self, decl: &TableDecl, rows: Vec<Row>, wb: WriteBatch) -> Result<usize, EngineError> {
        self.apply_pulled(decl, rows, wb, Held::LookUp).await
    }

    async fn apply_pulled(&self, decl: &TableDecl, rows: Vec<Row>, mut wb: WriteBatch, held: Held) -> Result<usize, EngineError> {
        if let Held::NoneYet = held {
            return self.apply_restored(decl, rows, wb).await;
        }
        let n = rows.len();
        let mut seen: std::collections::HashMap<String, LocalRow> = std::collections::HashMap::new();
        // Parent server id → local id, looked up once per page.
        let mut parents = crate::push::ParentLocalIds::new();
        // Rows whose server id this device learns now (children may wait for it).
        let mut learned: Vec<(Value, String)> = vec![];
        // Every row of the page this device already holds, in one read.
        let mut held: std::collections::HashMap<String, LocalRow> = match held {
            Held::NoneYet => Default::default(),
            Held::LookUp => {
                let keys: Vec<String> = rows.iter().filter_map(|r| row_key(decl, r)).collect();
                self.store
                    .get_rows(&decl.name, &keys)
                    .await?
                    .into_iter()
                    .flatten()
                    .map(|r| (r.local_id.clone(), r))
                    .collect()
            }
        };
        for server in rows {
            let server_id = server.get(&decl.key).cloned();
            let Some(local_id) = row_key(decl, &server) else { continue };
            // Older than the version this device holds (a push's answer applied while
            // this page was on its way): the newer one stays.
            let holds = seen.get(&local_id).or_else(|| held.get(&local_id));
            if let (Some(have), Some(got)) = (holds.and_then(|r| sync_txid(r.mirror.as_ref()?)), sync_txid(&server)) {
                if got < have {
                    continue;
                }
            }
            let mirror = self.map_to_local(&decl.name, server, &Row::new(), &mut parents).await?;
            let existing = match seen.remove(&local_id) {
                Some(r) => Some(r),
                None => held.remove(&local_id),
            };
            if let (None | Some(LocalRow { server_id: None, .. }), Some(sid)) = (&existing, &server_id) {
                learned.push((sid.clone(), local_id.clone()));
            }
            let row = match existing {
                Some(mut r) => {
                    if let Some(mine) = r.last_pushed.as_mut() {
                        let overwritten: Vec<(String, Value, Value)> = mine
                            .iter()
                            .filter_map(|(k, v)| {
                                let now = mirror.get(k)?;
                                (now != v).then(|| (k.clone(), v.clone(), now.clone()))
                            })
                            .collect();
                        for (field, was, by) in overwritten {
                            mine.remove(&field);
                            wb.history.push(self.history_line(
                                "conflict",
                                Some(&decl.name),
                                1,
                                self.now_ms(),
                                None,
                                json!({"local_id": local_id, "field": field, "overwritten": was, "by": by,
                                       "rule": "last write wins"}),
                            ));
                        }
                    }
                    if matches!(r.status, RowStatus::Rejected { .. }) && r.overlay.is_none() {
                        r.status = RowStatus::Synced;
                    }
                    r.server_id = server_id;
                    r.mirror = Some(mirror);
                    if r.overlay.is_none() {
                        r.status = RowStatus::Synced;
                    }
                    r
                }
                None => LocalRow {
                    table: decl.name.clone(),
                    local_id: local_id.clone(),
                    server_id,
                    mirror: Some(mirror),
                    overlay: None::<Overlay>,
                    status: RowStatus::Synced,
                    last_pushed: None,
                },
            };
            seen.insert(local_id, row);
        }
        // In key order: neighbours in the store's B-trees are written together.
        let mut rows: Vec<LocalRow> = seen.into_values().collect();
        rows.sort_by(|a, b| a.local_id.cmp(&b.local_id));
        wb.put_rows.extend(rows);
        self.adopt_children(&decl.name, &learned, &mut wb).await?;
        self.store.apply(wb).await?;
        Ok(n)
    }

    /// A page of a table that held nothing when the walk began (a restore): every row
    /// is new, so none is looked up or merged, and the page goes to the store as new
    /// rows ([`WriteBatch::new_rows`]), which it writes without looking for old ones.
    async fn apply_restored(&self, decl: &TableDecl, rows: Vec<Row>, mut wb: WriteBatch) -> Result<usize, EngineError> {
        let n = rows.len();
        let mut parents = crate::push::ParentLocalIds::new();
        let mut learned: Vec<(Value, String)> = Vec::with_capacity(n);
        let mut out: Vec<LocalRow> = Vec::with_capacity(n);
        for server in rows {
            let server_id = server.get(&decl.key).cloned();
            let Some(local_id) = row_key(decl, &server) else { continue };
            let mirror = self.map_to_local(&decl.name, server, &Row::new(), &mut parents).await?;
            if let Some(sid) = &server_id {
                learned.push((sid.clone(), local_id.clone()));
            }
            out.push(LocalRow {
                table: decl.name.clone(),
                local_id,
                server_id,
                mirror: Some(mirror),
                overlay: None,
                status: RowStatus::Synced,
                last_pushed: None,
            });
        }
        // In key order: neighbours in the store's B-trees are written together. A key
        // met twice in one page (two server rows claiming one local id) keeps the later.
        out.sort_by(|a, b| a.local_id.cmp(&b.local_id));
        out.reverse();
        out.dedup_by(|earlier, later| earlier.local_id == later.local_id);
        out.reverse();
        wb.new_rows.extend(out);
        self.adopt_children(&decl.name, &learned, &mut wb).await?;
        self.store.apply(wb).await?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawRow {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn a_page_needs_only_its_ends_built_to_ask_for_the_next() {
        let page: Vec<RawRow> = (0..3).map(|i| raw(&format!(r#"{{"id": "k{i}", "sync_txid": 7}}"#))).collect();
        let e = ends(&page).unwrap();
        let (len, first, last) = e.as_refs();
        assert_eq!((len, first.and_then(|r| r.get("id")), last.and_then(|r| r.get("id"))), (3, Some(&json!("k0")), Some(&json!("k2"))));
        // A full page of one transaction, first met: read on after its last row.
        let next = PageAt::From(0).next(e.as_refs(), "id", 3, "messages").unwrap();
        assert!(matches!(next, Some(PageAt::After(7, ref id)) if id == "k2"));
        // Met again full: it is large, read on inside it by key.
        let next = PageAt::After(7, "a".into()).next(e.as_refs(), "id", 3, "messages").unwrap();
        assert!(matches!(next, Some(PageAt::Within(7, ref id)) if id == "k2"));
        assert!(ends(&[]).unwrap().first.is_none());
    }

    #[test]
    fn a_row_that_is_not_an_object_is_a_broken_answer() {
        for bad in ["[1, 2]", "\"text\"", "null"] {
            let err = build(&raw(bad)).unwrap_err();
            assert!(err.to_string().contains("a row is not an object"), "{bad}: {err}");
        }
        let err = ends(&[raw(r#"{"id": 1}"#), raw("3")]).err().expect("the last row is broken");
        assert!(err.to_string().contains("a row is not an object"), "{err}");
    }
}
