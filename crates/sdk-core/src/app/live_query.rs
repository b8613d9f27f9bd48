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
    /// Rows shown before they were stored (see [`gather`]).
    in_flight: Vec<LocalRow>,
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
                let table = self.table.clone();
                let of_table = |t: &str| t == table;
                if !concerns(&of_table, &first) {
                    continue;
                }
                // Several changes may be queued: one answer for them all.
                changed = gather(first, &mut self.events, &of_table, &mut self.in_flight);
            }
            wait = true;
            let patched = match (&self.last, &changed) {
                (Some(last), Some(rows)) => self.patched(last, rows),
                _ => None,
            };
            let now = match patched {
                Some(now) => now,
                None => match self.engine.query(&self.table, &self.query).await {
                    // Rows shown before they were stored are not in the store yet.
                    Ok(r) => self.patched(&r, &self.in_flight).unwrap_or(r),
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
    /// `last` updated from changed rows (of any table), if the query allows it.
    fn patched(&self, last: &[RowView], rows: &[LocalRow]) -> Option<Vec<RowView>> {
        let views: Vec<(String, Option<RowView>)> = rows.iter().filter(|r| r.table == self.table).map(|r| (r.local_id.clone(), self.engine.view(r))).collect();
        if views.is_empty() {
            return None;
        }
        self.query.patched(last, &views)
    }
}

/// Whether an event is about a table `reads` says the query reads.
fn concerns(reads: &impl Fn(&str) -> bool, e: &EngineEvent) -> bool {
    match e {
        EngineEvent::Changed { tables, .. } => tables.iter().any(|t| reads(t)),
        EngineEvent::Arriving { table, .. } => reads(table),
        EngineEvent::Progress(_) | EngineEvent::FileProgress(_) => false,
    }
}

/// The changes queued since the last answer (`first` and whatever else is queued),
/// gathered into one: the rows they carry, or `None` when one of them did not say its
/// rows (then the query reads the store again). Keeps `in_flight`, the rows shown
/// before they were stored ([`EngineEvent::Arriving`]), up to date: a re-read answer
/// still shows them until the change that stored them (or failed to) comes.
fn gather(first: EngineEvent, events: &mut mpsc::UnboundedReceiver<EngineEvent>, reads: &impl Fn(&str) -> bool, in_flight: &mut Vec<LocalRow>) -> Option<Vec<LocalRow>> {
    let mut changed = Some(vec![]);
    let mut next = Some(first);
    while let Some(e) = next.take() {
        if concerns(reads, &e) {
            match e {
                EngineEvent::Arriving { rows, .. } => {
                    in_flight.extend(rows.0.iter().cloned());
                    if let Some(all) = &mut changed {
                        all.extend(rows.0.iter().cloned());
                    }
                }
                EngineEvent::Changed { rows: Some(rows), elsewhere, .. } => {
                    if !elsewhere {
                        in_flight.retain(|f| !rows.0.iter().any(|r| r.table == f.table && r.local_id == f.local_id));
                    }
                    if let Some(all) = &mut changed {
                        all.extend(rows.0.iter().cloned());
                    }
                }
                EngineEvent::Changed { elsewhere, .. } => {
                    // This process's change without rows (a store that failed to
                    // write what was shown, among others): read again.
                    if !elsewhere {
                        in_flight.clear();
                    }
                    changed = None;
                }
                EngineEvent::Progress(_) | EngineEvent::FileProgress(_) => {}
            }
        }
        next = events.try_recv().ok();
    }
    changed
}

/// Start a live query on a shared engine.
pub fn live_query<S: Store, H: Http>(engine: &Arc<Engine<S, H>>, table: &str, query: Query) -> LiveQuery<S, H> {
    LiveQuery {
        events: engine.subscribe(),
        engine: engine.clone(),
        table: table.to_string(),
        query,
        last: None,
        in_flight: vec![],
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
    /// Rows shown before they were stored (see [`gather`]).
    in_flight: Vec<LocalRow>,
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
                let tables = self.tables.clone();
                let reads = |t: &str| tables.contains(t);
                if !concerns(&reads, &first) {
                    continue;
                }
                changed = gather(first, &mut self.events, &reads, &mut self.in_flight);
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
                    // Rows shown before they were stored are not in the store yet.
                    Ok((now, Some(page))) if !self.in_flight.is_empty() => match select::select_patched(&self.engine.schema, &self.request, &page, &self.in_flight) {
                        Some((shown, page)) => {
                            self.page = Some(page);
                            shown
                        }
                        None => {
                            self.page = Some(page);
                            now
                        }
                    },
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
    Ok(LiveSelect { events: engine.subscribe(), engine: engine.clone(), request, tables, last: None, page: None, in_flight: vec![] })
}
