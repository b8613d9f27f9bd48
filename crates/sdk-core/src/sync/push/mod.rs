//! Push: drain the outbox to the server exactly once, in order (DESIGN §2.4).
//!
//! - Runs of inserts into one table go as one bulk request: an upsert on
//!   `(owner, local_id)` with `resolution=ignore-duplicates`, so a retry after a lost
//!   answer creates no duplicate and overwrites nothing newer; rows the server already
//!   had are fetched by local id and confirmed.
//! - References are rewritten from the parent's local id to its server id. Parents go
//!   first because they were written first; a child whose parent has no server id waits.
//! - Updates are PATCHes of the changed fields by server id; deletes are DELETEs;
//!   queued calls go through the kit's `supasync_call`, exactly once by their id.
//! - Failures: transient ones stop the run (order kept, retried next push); a refused
//!   token is refreshed once; anything permanent in a batch is bisected down to the rows
//!   at fault, which are rejected with the server's reason and rolled back, their
//!   dependents with them, while the other rows go through.
//! - The app keeps writing while a request is out: the writer lock is taken per step,
//!   never across a request. A write made meanwhile becomes a new entry behind those
//!   the push read (never merged into them, or the push would send the old version and
//!   then drop the entry), and a confirmation reads back any row such a write may have
//!   touched, so an answer never undoes it.
//!
//! This module is the run loop and what the steps share; the steps are its
//! submodules: runs of inserts (`inserts`), updates and deletes (`change`), queued
//! calls (`call`), files (`file`: uploads, one request or TUS, and removals), and what
//! the push records in the replica between requests (`record`).

mod call;
mod change;
mod file;
mod inserts;
mod record;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::context::SyncContext;
use super::error::SyncError;
use crate::local::files::bucket_of;
use crate::local::local_row::{LocalRow, Row, RowStatus};
use crate::local::outbox::{OutboxEntry, OutboxOp};
use crate::local::store::{sent_through, Store, StoreError};
use crate::net::client::RequestError;
use crate::net::transport::Http;

/// What one push did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushReport {
    /// Writes the server confirmed.
    pub pushed: usize,
    /// Writes the server refused (now in the rejected list).
    pub rejected: usize,
    /// HTTP requests made.
    pub requests: usize,
    /// Why the push stopped early, if it did (the rest waits for the next push).
    pub stopped: Option<String>,
    /// It stopped because the server could not be reached (no HTTP answer at all):
    /// the device is offline, as far as the app's indicator is concerned.
    pub unreachable: bool,
}

impl PushReport {
    /// Note how a run ended; true when the push must stop here.
    fn stop(&mut self, outcome: RunOutcome) -> bool {
        match outcome {
            RunOutcome::Done => false,
            RunOutcome::Stop(why) => {
                self.stopped = Some(why);
                true
            }
            RunOutcome::Unreachable(why) => {
                self.stopped = Some(why);
                self.unreachable = true;
                true
            }
        }
    }
}

/// What one push run knows without asking the store again. Writes of this process may
/// land between its steps (see [`crate::local::write_lock`]), but never merge into the entries
/// it read; a confirmation reads back any row once something else has written.
#[derive(Default)]
struct RunContext {
    /// Waiting entries per row when the push read the outbox: more than one means later
    /// writes queue behind.
    entries_per_row: HashMap<(String, String), usize>,
    /// [`crate::local::write_lock::WriterLock::others`] when the push read the outbox.
    others_at_start: u64,
    /// [`crate::local::outbox::SENT_THROUGH`] when the push read the outbox: which
    /// entries an earlier push may have landed on the server.
    sent_through_at_start: u64,
    /// Parent local id → server id, as resolved so far in this run.
    parents: HashMap<(String, String), Value>,
}

/// The server's answer to one batch of inserts: its rows, and the local ids of the rows
/// of the batch it skipped because they were deleted there after an earlier attempt
/// landed.
struct InsertAnswer {
    rows: Vec<Value>,
    gone: HashSet<String>,
}

/// The push floor ([`SyncContext::push_floor`]) for one push, back to 0 when the push
/// ends however it ends.
struct PushFloor<'a>(&'a AtomicU64);

impl<'a> PushFloor<'a> {
    fn set(floor: &'a AtomicU64, seq: u64) -> PushFloor<'a> {
        floor.store(seq, Ordering::SeqCst);
        PushFloor(floor)
    }
}

impl Drop for PushFloor<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::SeqCst);
    }
}

/// An insert ready to send: its outbox entry and the row as the server takes it.
type Ready = (OutboxEntry, Row);

/// The result of sending one run of inserts.
enum RunOutcome {
    Done,
    Stop(String),
    /// Stopped by a request that got no answer (see `PushReport::unreachable`).
    Unreachable(String),
}

impl RunOutcome {
    /// Stop for this request error: unreachable when no HTTP answer came back.
    fn stop_for(e: &RequestError) -> RunOutcome {
        match e {
            RequestError::Network(_) => RunOutcome::Unreachable(e.to_string()),
            _ => RunOutcome::Stop(e.to_string()),
        }
    }
}

fn short_json(rows: &[Value]) -> String {
    let s = Value::Array(rows.to_vec()).to_string();
    s.chars().take(200).collect()
}

/// One push: the engine's parts it reads and writes through. Pushes run one at a time
/// (the engine holds a lock around [`Push::run`]).
pub struct Push<'a, S: Store, H: Http> {
    cx: SyncContext<'a, S, H>,
}

impl<'a, S: Store, H: Http> Push<'a, S, H> {
    pub fn new(cx: SyncContext<'a, S, H>) -> Self {
        Push { cx }
    }
}

impl<S: Store, H: Http> Push<'_, S, H> {
    /// Push every waiting write that can go now.
    ///
    /// One push runs at a time, and other processes sharing the store wait for it. The
    /// writer lock is taken for each step between requests, never across one, so the
    /// app's writes go on while a request is on its way; they queue as new entries
    /// behind what this push read (`push_floor`), and the next push sends them.
    pub async fn run(&self) -> Result<PushReport, SyncError> {
        let _others_wait = self.cx.writer.hold_shared().await;
        let user_id = self.cx.session().await?.user_id;
        let mut report = PushReport::default();
        let mut ctx = RunContext::default();
        let (outbox, _floor) = {
            let _w = self.cx.writer.lock_step().await;
            let outbox: Vec<OutboxEntry> = self.cx.store.outbox().await?.into_iter().filter(|e| e.rejected.is_none()).collect();
            ctx.others_at_start = self.cx.writer.others();
            ctx.sent_through_at_start = sent_through(self.cx.store).await?;
            let read_through = outbox.iter().map(|e| e.seq).max().unwrap_or(0);
            (outbox, PushFloor::set(self.cx.push_floor, read_through))
        };
        let mut refused: HashSet<(String, String)> = HashSet::new();
        for e in &outbox {
            *ctx.entries_per_row.entry((e.table.clone(), e.local_id.clone())).or_default() += 1;
        }
        let mut i = 0;
        while i < outbox.len() {
            let e = &outbox[i];
            if refused.contains(&(e.table.clone(), e.local_id.clone())) {
                i += 1;
                continue;
            }
            match &e.op {
                OutboxOp::Insert { .. } => {
                    let mut run = vec![e.clone()];
                    let mut j = i + 1;
                    while j < outbox.len()
                        && outbox[j].table == e.table
                        && matches!(outbox[j].op, OutboxOp::Insert { .. })
                    {
                        run.push(outbox[j].clone());
                        j += 1;
                    }
                    i = j;
                    let outcome = self.push_inserts(run, &user_id, &mut report, &mut refused, &mut ctx).await?;
                    if report.stop(outcome) {
                        break;
                    }
                }
                _ if bucket_of(&e.table).is_some() => {
                    i += 1;
                    let outcome = match self.push_file(e.clone(), &mut report, &mut refused, &mut ctx).await {
                        // Another tab settled this entry while our copy of it was in
                        // flight (a page reloaded mid-upload: the old page's last
                        // transaction can commit after its lock is gone). Our write of
                        // it changed nothing; the entry's outcome is that tab's.
                        Err(SyncError::Store(StoreError::NotFound(what))) if what == format!("outbox entry {}", e.seq) => RunOutcome::Done,
                        other => other?,
                    };
                    if report.stop(outcome) {
                        break;
                    }
                }
                OutboxOp::Call { .. } => {
                    i += 1;
                    let outcome = self.push_call(e.clone(), &mut report, &mut refused, &mut ctx).await?;
                    if report.stop(outcome) {
                        break;
                    }
                }
                _ => {
                    i += 1;
                    let outcome = self.push_change(e.clone(), &mut report, &mut refused, &mut ctx).await?;
                    if report.stop(outcome) {
                        break;
                    }
                }
            }
        }
        if report.pushed + report.rejected > 0 {
            let mut tables: Vec<String> = outbox.iter().map(|e| e.table.clone()).collect();
            tables.sort();
            tables.dedup();
            self.cx.events.changed(tables, false);
        }
        Ok(report)
    }

    /// The server id a reference should carry: `Ok(None)` when the parent is known but
    /// has no server id yet (wait), `Err(reason)` when the parent was rejected.
    async fn server_ref(&self, parent_table: &str, local: &str, ctx: &mut RunContext) -> Result<Result<Option<Value>, String>, SyncError> {
        if let Some(v) = ctx.parents.get(&(parent_table.to_string(), local.to_string())) {
            return Ok(Ok(Some(v.clone())));
        }
        match self.cx.store.get_row(parent_table, local).await? {
            Some(p) if p.server_id.is_some() => {
                let v = p.server_id.unwrap_or(Value::Null);
                ctx.parents.insert((parent_table.to_string(), local.to_string()), v.clone());
                Ok(Ok(Some(v)))
            }
            Some(LocalRow { status: RowStatus::Rejected { reason }, .. }) => {
                Ok(Err(format!("its parent {parent_table}/{local} was rejected: {reason}")))
            }
            Some(_) => Ok(Ok(None)),
            // A reference to a row this device never saw: send it as is and let the
            // server's foreign key decide.
            None => Ok(Ok(Some(Value::String(local.into())))),
        }
    }

    /// Rewrite a row's references to server ids. `Ok(None)`: a parent is not pushed yet.
    async fn to_server(&self, table: &str, fields: &Row, ctx: &mut RunContext) -> Result<Result<Option<Row>, String>, SyncError> {
        let decl = self.cx.decl(table)?;
        let mut out = fields.clone();
        for (col, parent) in decl.dependencies() {
            if let Some(Value::String(local)) = fields.get(col) {
                match self.server_ref(&parent, local, ctx).await? {
                    Ok(Some(server)) => {
                        out.insert(col.clone(), server);
                    }
                    Ok(None) => return Ok(Ok(None)),
                    Err(why) => return Ok(Err(why)),
                }
            }
        }
        Ok(Ok(Some(out)))
    }
}
