//! Live queries: a query's current result, then a new result after every change that
//! touches its table and alters what it returns (a change that leaves the result as it
//! was, like the echo of this device's own confirmed write, yields nothing). A change
//! that brings the rows it wrote (a local write, a server row from Realtime) updates
//! the last answer from them without reading the store, unless a row left a full page. The same
//! for queries in PostgREST's language ([`LiveSelect`]), which run again on a change to
//! any table they read, embeds included.

use std::sync::Arc;

use futures_channel::mpsc;
use futures_util::StreamExt;

use std::collections::BTreeSet;

use crate::app::engine::{Engine, EngineError, Query, RowView};
use crate::select::{self, tables_read, PageRows, SelectRequest, SelectResult};
use crate::local::events::EngineEvent;
use crate::local::local_row::LocalRow;
use crate::local::store::Store;
use crate::net::transport::Http;

/// A query that keeps answering.
pub struct LiveQuery<S: Store, H: Http> {
    engine: Arc<Engine<S, H>>,
    table: String,
    query: Query,
    events: mpsc::UnboundedReceiver<EngineEvent>,
    last: Option<Vec<RowView>>,
}

impl<S: Store, H: Http> LiveQuery<S, H> {
    /// The result last returned.
    pub fn last(&self) -> Option<&[RowView]> {
        self.last.as_deref()
    }

    /// The first call returns the current result; later calls wait for a different one.
    /// `None` once the engine is gone.
    pub async fn next(&mut self) -> Option<Result<Vec<RowView>, EngineError>> {
        let mut wait = self.last.is_some();
        loop {
            // The rows that changed, when every change since the last answer said them.
            let mut changed: Option<Vec<LocalRow>> = None;
            if wait {
                let first = self.events.next().await?;
                if !self.concerns(&first) {
                    continue;
                }
                changed = Some(vec![]);
                // Several changes may be queued: one answer for them all.
                let mut more = Some(first);
                while let Some(e) = more.take() {
                    if self.concerns(&e) {
                        match (&mut changed, e) {
                            (Some(all), EngineEvent::Changed { rows: Some(rows), .. }) => all.extend(rows.0.iter().filter(|r| r.table == self.table).cloned()),
                            _ => changed = None,
                        }
                    }
                    more = self.events.try_recv().ok();
                }
            }
            wait = true;
            let patched = match (&self.last, &changed) {
                (Some(last), Some(rows)) => {
                    let views: Vec<(String, Option<RowView>)> = rows.iter().map(|r| (r.local_id.clone(), self.engine.view(r))).collect();
                    self.query.patched(last, &views)
                }
                _ => None,
            };
            let now = match patched {
                Some(now) => now,
                None => match self.engine.query(&self.table, &self.query).await {
                    Ok(r) => r,
                    Err(e) => return Some(Err(e)),
                },
            };
            if self.last.as_ref() != Some(&now) {
                self.last = Some(now.clone());
                return Some(Ok(now));
            }
        }
    }
}

impl<S: Store, H: Http> LiveQuery<S, H> {
    fn concerns(&self, e: &EngineEvent) -> bool {
        matches!(e, EngineEvent::Changed { tables, .. } if tables.contains(&self.table))
    }
}

/// Whether a change is to one of `tables`.
fn concerns(tables: &BTreeSet<String>, e: &EngineEvent) -> bool {
    matches!(e, EngineEvent::Changed { tables: changed, .. } if changed.iter().any(|t| tables.contains(t)))
}

/// Start a live query on a shared engine.
pub fn live_query<S: Store, H: Http>(engine: &Arc<Engine<S, H>>, table: &str, query: Query) -> LiveQuery<S, H> {
    LiveQuery {
        events: engine.subscribe(),
        engine: engine.clone(),
        table: table.to_string(),
        query,
        last: None,
    }
}

/// A query in PostgREST's language that keeps answering.
pub struct LiveSelect<S: Store, H: Http> {
    engine: Arc<Engine<S, H>>,
    request: SelectRequest,
    tables: BTreeSet<String>,
    events: mpsc::UnboundedReceiver<EngineEvent>,
    last: Option<SelectResult>,
    /// The last page's rows, for a query simple enough to update from changed rows.
    page: Option<PageRows>,
}

impl<S: Store, H: Http> LiveSelect<S, H> {
    /// The first call returns the current answer; later calls wait for a different
    /// one. `None` once the engine is gone.
    pub async fn next(&mut self) -> Option<Result<SelectResult, EngineError>> {
        let mut wait = self.last.is_some();
        loop {
            let mut changed: Option<Vec<LocalRow>> = None;
            if wait {
                let first = self.events.next().await?;
                if !concerns(&self.tables, &first) {
                    continue;
                }
                changed = Some(vec![]);
                let mut more = Some(first);
                while let Some(e) = more.take() {
                    if concerns(&self.tables, &e) {
                        match (&mut changed, e) {
                            (Some(all), EngineEvent::Changed { rows: Some(rows), .. }) => all.extend(rows.0.iter().cloned()),
                            _ => changed = None,
                        }
                    }
                    more = self.events.try_recv().ok();
                }
            }
            wait = true;
            let patched = match (&self.page, &changed) {
                (Some(page), Some(rows)) => select::select_patched(&self.engine.schema, &self.request, page, rows),
                _ => None,
            };
            let now = match patched {
                Some((now, page)) => {
                    self.page = Some(page);
                    now
                }
                None => match self.engine.select_keeping(&self.request).await {
                    Ok((now, page)) => {
                        self.page = page;
                        now
                    }
                    Err(e) => return Some(Err(e)),
                },
            };
            if self.last.as_ref() != Some(&now) {
                self.last = Some(now.clone());
                return Some(Ok(now));
            }
        }
    }
}

/// Start a live query in PostgREST's language; an invalid query is refused at once.
pub fn live_select<S: Store, H: Http>(engine: &Arc<Engine<S, H>>, request: SelectRequest) -> Result<LiveSelect<S, H>, EngineError> {
    let tables = tables_read(&engine.schema, &request)?;
    Ok(LiveSelect { events: engine.subscribe(), engine: engine.clone(), request, tables, last: None, page: None })
}
