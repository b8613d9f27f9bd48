//! Live queries: a query's current result, then a new result after every change that
//! touches its table and alters what it returns (a change that leaves the result as it
//! was, like the echo of this device's own confirmed write, yields nothing).

use std::sync::Arc;

use futures_channel::mpsc;
use futures_util::StreamExt;

use crate::app::engine::{Engine, EngineError, Query, RowView};
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
