//! Live queries: a query's current result, then a new result after every change that
//! touches its table and alters what it returns (a change that leaves the result as it
//! was, like the echo of this device's own confirmed write, yields nothing). The same
//! for queries in PostgREST's language ([`LiveSelect`]), which run again on a change to
//! any table they read, embeds included.

use std::sync::Arc;

use futures_channel::mpsc;
use futures_util::StreamExt;

use std::collections::BTreeSet;

use crate::app::engine::{Engine, EngineError, Query, RowView};
use crate::select::{tables_read, SelectRequest, SelectResult};
use crate::local::events::EngineEvent;
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
            if wait {
                match self.events.next().await? {
                    EngineEvent::Changed { tables, .. } if tables.contains(&self.table) => {
                        // Several changes may be queued: one query answers them all.
                        while self.events.try_recv().is_ok() {}
                    }
                    _ => continue,
                }
            }
            wait = true;
            let now = match self.engine.query(&self.table, &self.query).await {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            if self.last.as_ref() != Some(&now) {
                self.last = Some(now.clone());
                return Some(Ok(now));
            }
        }
    }
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
}

impl<S: Store, H: Http> LiveSelect<S, H> {
    /// The first call returns the current answer; later calls wait for a different
    /// one. `None` once the engine is gone.
    pub async fn next(&mut self) -> Option<Result<SelectResult, EngineError>> {
        let mut wait = self.last.is_some();
        loop {
            if wait {
                match self.events.next().await? {
                    EngineEvent::Changed { tables, .. } if tables.iter().any(|t| self.tables.contains(t)) => {
                        while self.events.try_recv().is_ok() {}
                    }
                    _ => continue,
                }
            }
            wait = true;
            let now = match self.engine.select(&self.request).await {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
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
    Ok(LiveSelect { events: engine.subscribe(), engine: engine.clone(), request, tables, last: None })
}
