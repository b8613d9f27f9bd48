//! Push: drain the outbox to the server exactly once, in order (DESIGN §2.4).
//!
//! - Runs of inserts into one table go as one bulk request: an upsert on
//!   `(owner, local_id)` with `resolution=ignore-duplicates`, so a retry after a lost
//!   answer creates no duplicate and overwrites nothing newer; rows the server already
//!   had are fetched by local id and confirmed.
//! - References are rewritten from the parent's local id to its server id. Parents go
//!   first because they were written first; a child whose parent has no server id waits.
//! - Updates are PATCHes of the changed fields by server id; deletes are DELETEs.
//! - Failures: transient ones stop the run (order kept, retried next push); a refused
//!   token is refreshed once; anything permanent in a batch is bisected down to the rows
//!   at fault, which are rejected with the server's reason and rolled back, their
//!   dependents with them, while the other rows go through.
//! - The app keeps writing while a request is out: the writer lock is taken per step,
//!   never across a request. A write made meanwhile becomes a new entry behind those
//!   the push read (never merged into them, or the push would send the old version and
//!   then drop the entry), and a confirmation reads back any row such a write may have
//!   touched, so an answer never undoes it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::classify::Failure;
use crate::client::{enc, RequestError};
use crate::engine::{Engine, EngineError};
use crate::local_row::{id_text, sync_txid, LocalRow, RowStatus};
use crate::outbox::{OutboxEntry, OutboxOp};
use crate::server_delete::TombstoneKey;
use crate::store::{Store, WriteBatch};
use crate::transport::Http;
use crate::Row;

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
/// land between its steps (see [`crate::write_lock`]), but never merge into the entries
/// it read; a confirmation reads back any row once something else has written.
#[derive(Default)]
struct RunContext {
    /// Waiting entries per row when the push read the outbox: more than one means later
    /// writes queue behind.
    entries_per_row: HashMap<(String, String), usize>,
    /// [`crate::write_lock::WriterLock::others`] when the push read the outbox.
    others_at_start: u64,
    /// Parent local id → server id, as resolved so far in this run.
    parents: HashMap<(String, String), Value>,
}

/// (parent table, server id as JSON text) → the parent's local id, if this device has it.
pub(crate) type ParentLocalIds = HashMap<(String, String), Option<String>>;

/// The server's answer to one batch of inserts: its rows, and the local ids of the rows
/// of the batch it skipped because they were deleted there after an earlier attempt
/// landed.
struct InsertAnswer {
    rows: Vec<Value>,
    gone: HashSet<String>,
}

/// `Engine::push_floor` for one push, back to 0 when the push ends however it ends.
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

/// `"a","b"` quoting for `in.(…)` and `columns=`.
pub(crate) fn quoted_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(",")
}

impl<S: Store, H: Http> Engine<S, H> {
    /// Push every waiting write that can go now.
    ///
    /// One push runs at a time, and other processes sharing the store wait for it. The
    /// writer lock is taken for each step between requests, never across one, so the
    /// app's writes go on while a request is on its way; they queue as new entries
    /// behind what this push read (`push_floor`), and the next push sends them.
    pub async fn push(&self) -> Result<PushReport, EngineError> {
        let _one_push = self.pusher.lock().await;
        let _others_wait = self.writer.hold_shared().await;
        let user_id = self.session().await?.user_id;
        let mut report = PushReport::default();
        let mut ctx = RunContext::default();
        let (outbox, _floor) = {
            let _w = self.writer.lock_step().await;
            let outbox: Vec<OutboxEntry> = self.store.outbox().await?.into_iter().filter(|e| e.rejected.is_none()).collect();
            ctx.others_at_start = self.writer.others();
            let read_through = outbox.iter().map(|e| e.seq).max().unwrap_or(0);
            (outbox, PushFloor::set(&self.push_floor, read_through))
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
            self.events.changed(tables, false);
        }
        Ok(report)
    }

    /// The server id a reference should carry: `Ok(None)` when the parent is known but
    /// has no server id yet (wait), `Err(reason)` when the parent was rejected.
    async fn server_ref(&self, parent_table: &str, local: &str, ctx: &mut RunContext) -> Result<Result<Option<Value>, String>, EngineError> {
        if let Some(v) = ctx.parents.get(&(parent_table.to_string(), local.to_string())) {
            return Ok(Ok(Some(v.clone())));
        }
        match self.store.get_row(parent_table, local).await? {
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
    async fn to_server(&self, table: &str, fields: &Row, ctx: &mut RunContext) -> Result<Result<Option<Row>, String>, EngineError> {
        let decl = self.decl(table)?;
        let mut out = fields.clone();
        for (col, parent) in &decl.references {
            if let Some(Value::String(local)) = fields.get(col) {
                match self.server_ref(parent, local, ctx).await? {
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

    /// A server row as the mirror keeps it: references as local ids. `known` holds the
    /// local ids this device sent (no lookup needed); `seen` caches parent lookups
    /// (parent table, server id) → local id across the rows of one page or batch.
    pub(crate) async fn to_local(&self, table: &str, server_row: &Row, known: &Row, seen: &mut ParentLocalIds) -> Result<Row, EngineError> {
        self.map_to_local(table, server_row.clone(), known, seen).await
    }

    /// [`Engine::to_local`] on a row the caller gives up (a pulled page's rows are
    /// mapped in place instead of copied).
    pub(crate) async fn map_to_local(&self, table: &str, mut row: Row, known: &Row, seen: &mut ParentLocalIds) -> Result<Row, EngineError> {
        let decl = self.decl(table)?;
        for (col, parent) in &decl.references {
            let Some(v) = row.get(col).filter(|v| !v.is_null()) else { continue };
            if let Some(local) = known.get(col).filter(|k| !k.is_null()) {
                row.insert(col.clone(), local.clone());
                continue;
            }
            let key = (parent.clone(), v.to_string());
            let local = match seen.get(&key) {
                Some(l) => l.clone(),
                None => {
                    let l = self.store.find_by_server_id(parent, v).await?.map(|p| p.local_id);
                    seen.insert(key, l.clone());
                    l
                }
            };
            if let Some(l) = local {
                row.insert(col.clone(), Value::String(l));
            }
        }
        Ok(row)
    }

    /// Push a run of inserts into one table, `batch_size` rows per request. While one
    /// batch's confirmations are written locally, the next batch's request is already
    /// in flight (when the answer settled every row it sent): the server and the local
    /// store work at the same time instead of taking turns. Both batches are marked
    /// as possibly sent before their requests go out, so a crash with two in flight
    /// retries both as writes the server may have (found and confirmed, never doubled).
    async fn push_inserts(
        &self,
        run: Vec<OutboxEntry>,
        user_id: &str,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<RunOutcome, EngineError> {
        let table = run[0].table.clone();
        let decl = self.decl(&table)?.clone();
        let size = self.cfg.batch_size.max(1);
        let mut chunks = run.chunks(size).map(<[OutboxEntry]>::to_vec).collect::<Vec<_>>().into_iter();
        let mut waiting = false;
        // The batch sent last and its answer, when it was sent ahead.
        let mut ahead: Option<(Vec<Ready>, Result<InsertAnswer, RequestError>)> = None;
        loop {
            let (batch, answer) = match ahead.take() {
                Some(sent) => sent,
                None => {
                    let Some(chunk) = chunks.next().filter(|_| !waiting) else { break };
                    let ready = {
                        let _w = self.writer.lock_step().await;
                        let ready = self.prepare_inserts(&table, &decl, chunk, user_id, &mut waiting, report, refused, ctx).await?;
                        if !ready.is_empty() {
                            self.note_sending(ready.iter().map(|(e, _)| e)).await?;
                        }
                        ready
                    };
                    if ready.is_empty() {
                        continue;
                    }
                    report.requests += 1;
                    let answer = self.send_inserts(&table, &decl, &ready).await;
                    (ready, answer)
                }
            };
            let answer = match answer {
                Ok(a) => a,
                Err(e) => match self.settle_refused_batch(&table, &decl, batch, e, report, refused, ctx).await? {
                    Some(stop) => return Ok(stop),
                    None => continue,
                },
            };
            let settles_all = answer.gone.is_empty() && answer.rows.len() == batch.len();
            let next = match chunks.next().filter(|_| settles_all && !waiting) {
                Some(chunk) => {
                    // The next batch may reference rows of this one: their server ids
                    // are in the answer already.
                    for r in &answer.rows {
                        if let (Some(l), Some(id)) = (r.get(&decl.local_id).and_then(Value::as_str), r.get(&decl.key)) {
                            ctx.parents.insert((table.clone(), l.to_string()), id.clone());
                        }
                    }
                    let _w = self.writer.lock_step().await;
                    let next = self.prepare_inserts(&table, &decl, chunk, user_id, &mut waiting, report, refused, ctx).await?;
                    if !next.is_empty() {
                        self.note_sending(next.iter().map(|(e, _)| e)).await?;
                    }
                    next
                }
                None => vec![],
            };
            if next.is_empty() {
                report.pushed += self.confirm_inserts(&table, &batch, answer, report, refused, ctx).await?;
                continue;
            }
            report.requests += 1;
            // The request is polled first, so it is on its way (the HTTP client's
            // connection task carries it) before the store takes this thread.
            let (next_answer, confirmed) = futures_util::join!(
                self.send_inserts(&table, &decl, &next),
                self.confirm_inserts(&table, &batch, answer, report, refused, ctx)
            );
            report.pushed += confirmed?;
            ahead = Some((next, next_answer));
        }
        Ok(if waiting {
            RunOutcome::Stop("a row waits for its parent to be pushed".into())
        } else {
            RunOutcome::Done
        })
    }

    /// The rows of `chunk` as the server takes them (references as server ids, the
    /// owner set), in order, up to the first that must wait for its parent (`waiting`);
    /// rows whose parent was refused are rejected here.
    #[allow(clippy::too_many_arguments)]
    async fn prepare_inserts(
        &self,
        table: &str,
        decl: &crate::schema::TableDecl,
        chunk: Vec<OutboxEntry>,
        user_id: &str,
        waiting: &mut bool,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<Vec<Ready>, EngineError> {
        let mut ready: Vec<Ready> = vec![];
        for e in chunk {
            let OutboxOp::Insert { row } = &e.op else { continue };
            if refused.contains(&(e.table.clone(), e.local_id.clone())) {
                continue;
            }
            match self.to_server(table, row, ctx).await? {
                Ok(Some(mut r)) => {
                    r.insert(decl.owner.clone(), Value::String(user_id.into()));
                    ready.push((e, r));
                }
                Ok(None) => {
                    *waiting = true;
                    break;
                }
                Err(why) => {
                    report.rejected += self.reject(&e, &why, refused).await?;
                }
            }
        }
        Ok(ready)
    }

    /// A batch whose request failed: stop on a transient failure (`Some`), else bisect
    /// it down to the rows at fault, which are rejected with the server's reason while
    /// the others go through (in order: a stack of halves).
    #[allow(clippy::too_many_arguments)]
    async fn settle_refused_batch(
        &self,
        table: &str,
        decl: &crate::schema::TableDecl,
        batch: Vec<Ready>,
        error: RequestError,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<Option<RunOutcome>, EngineError> {
        let mut stack: Vec<(Vec<Ready>, Option<RequestError>)> = vec![(batch, Some(error))];
        while let Some((batch, known)) = stack.pop() {
            let e = match known {
                Some(e) => e,
                None => {
                    // Rows settled meanwhile (rejected, or gone with a parent) are not sent.
                    let batch: Vec<Ready> =
                        batch.into_iter().filter(|(e, _)| !refused.contains(&(e.table.clone(), e.local_id.clone()))).collect();
                    if batch.is_empty() {
                        continue;
                    }
                    report.requests += 1;
                    {
                        let _w = self.writer.lock_step().await;
                        self.note_sending(batch.iter().map(|(e, _)| e)).await?;
                    }
                    match self.send_inserts(table, decl, &batch).await {
                        Ok(answer) => {
                            report.pushed += self.confirm_inserts(table, &batch, answer, report, refused, ctx).await?;
                            continue;
                        }
                        Err(e) => {
                            stack.push((batch, Some(e)));
                            continue;
                        }
                    }
                }
            };
            let failure = e.failure();
            if matches!(failure, Failure::Transient | Failure::Unauthorized) {
                let _w = self.writer.lock_step().await;
                self.note_attempt(&batch, &e).await?;
                return Ok(Some(RunOutcome::stop_for(&e)));
            }
            if batch.len() > 1 {
                let mut first = batch;
                let second = first.split_off(first.len() / 2);
                stack.push((second, None));
                stack.push((first, None));
                continue;
            }
            if failure == Failure::MissingParent {
                // Its parent may be gone from the server (deleted on another device):
                // then the delete wins and this insert is rejected with that reason.
                let gone = self.parents_deleted(table, &batch[0].0, refused).await?;
                if gone > 0 {
                    report.rejected += gone;
                    continue;
                }
                if batch[0].0.attempts + 1 < self.cfg.max_parent_waits {
                    let _w = self.writer.lock_step().await;
                    self.note_attempt(&batch, &e).await?;
                    return Ok(Some(RunOutcome::Stop(e.to_string())));
                }
            }
            let reason = e.to_string();
            let _w = self.writer.lock_step().await;
            report.rejected += self.reject(&batch[0].0, &reason, refused).await?;
        }
        Ok(None)
    }

    /// Send one batch of inserts.
    async fn send_inserts(&self, table: &str, decl: &crate::schema::TableDecl, batch: &[(OutboxEntry, Row)]) -> Result<InsertAnswer, RequestError> {
        let mut cols: Vec<&str> = vec![];
        for (_, r) in batch {
            for k in r.keys() {
                if !cols.contains(&k.as_str()) {
                    cols.push(k);
                }
            }
        }
        let query = format!(
            "on_conflict={}&columns={}&select=*",
            enc(&format!("{},{}", decl.owner, decl.local_id)),
            enc(&quoted_list(cols.iter().copied()))
        );
        let body = Value::Array(batch.iter().map(|(_, r)| Value::Object(r.clone())).collect());
        let mut rows = self
            .authed(|t| {
                let (q, b) = (query.clone(), body.clone());
                async move {
                    self.client
                        .insert(table, &q, "return=representation,resolution=ignore-duplicates,missing=default", &b, &t)
                        .await
                }
            })
            .await?;
        // Every answer row must be one of ours; anything else is a broken answer, which
        // is retried later, never taken as a refusal.
        let well_formed = |rows: &[Value]| {
            rows.iter()
                .all(|r| r.get(&decl.local_id).and_then(Value::as_str).is_some_and(|l| batch.iter().any(|(e, _)| e.local_id == l)))
        };
        if !well_formed(&rows) {
            return Err(RequestError::BadAnswer(format!("the insert answer is not the rows sent: {}", short_json(&rows))));
        }
        // Rows the server already had (a retry after a lost answer) are not returned by
        // DO NOTHING: fetch them, without touching them.
        if rows.len() < batch.len() {
            let got: HashSet<String> = rows
                .iter()
                .filter_map(|r| r.get(&decl.local_id).and_then(Value::as_str).map(str::to_string))
                .collect();
            let missing: Vec<&str> = batch
                .iter()
                .map(|(e, _)| e.local_id.as_str())
                .filter(|l| !got.contains(*l))
                .collect();
            let q = format!("select=*&{}=in.({})", enc(&decl.local_id), enc(&quoted_list(missing.into_iter())));
            let existing = self.authed(|t| {
                let q = q.clone();
                async move { self.client.select(table, &q, &t).await }
            })
            .await?;
            if !well_formed(&existing) {
                return Err(RequestError::BadAnswer(format!("the lookup answer is not the rows asked for: {}", short_json(&existing))));
            }
            rows.extend(existing);
        }
        // Still missing: the SQL kit skips an insert whose row was deleted (a retry
        // after a lost answer, the row deleted meanwhile elsewhere). Its tombstone says so.
        let mut gone = HashSet::new();
        if rows.len() < batch.len() {
            let got: HashSet<&str> = rows.iter().filter_map(|r| r.get(&decl.local_id).and_then(Value::as_str)).collect();
            let missing: Vec<String> = batch.iter().map(|(e, _)| e.local_id.clone()).filter(|l| !got.contains(l.as_str())).collect();
            gone = self.tombstones_of(table, TombstoneKey::LocalIds(&missing)).await?;
        }
        Ok(InsertAnswer { rows, gone })
    }

    async fn confirm_inserts(
        &self,
        table: &str,
        batch: &[(OutboxEntry, Row)],
        answer: InsertAnswer,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<usize, EngineError> {
        let started = self.now_ms();
        let _w = self.writer.lock_step().await;
        let InsertAnswer { rows, gone } = answer;
        let decl = self.decl(table)?;
        let by_local: HashMap<String, Row> = rows
            .into_iter()
            .filter_map(|r| match r {
                Value::Object(m) => Some((m.get(&decl.local_id)?.as_str()?.to_string(), m)),
                _ => None,
            })
            .collect();
        let mut wb = WriteBatch::default();
        let mut confirmed = 0;
        if !gone.is_empty() {
            let outbox = self.store.outbox().await?;
            for (e, _) in batch.iter().filter(|(e, _)| gone.contains(&e.local_id)) {
                if let Some(row) = self.store.get_row(table, &e.local_id).await? {
                    self.server_deleted(&row, "deleted on another device after an earlier attempt landed", &outbox, refused, &mut wb)
                        .await?;
                }
            }
        }
        for (e, _) in batch {
            if gone.contains(&e.local_id) {
                continue;
            }
            let Some(server) = by_local.get(&e.local_id) else {
                // Neither inserted nor found: the server hides it (RLS on select).
                let reason = "the server accepted the row but does not let this user read it back".to_string();
                report.rejected += self.reject(e, &reason, &mut HashSet::new()).await?;
                continue;
            };
            let OutboxOp::Insert { row: sent } = &e.op else { continue };
            let mirror = self.to_local(table, server, sent, &mut ParentLocalIds::new()).await?;
            let server_id = server.get(&decl.key).cloned();
            if let Some(id) = &server_id {
                ctx.parents.insert((table.to_string(), e.local_id.clone()), id.clone());
            }
            self.confirm_row(table, &e.local_id, e.seq, server_id, Some(mirror), sent, true, ctx, &mut wb).await?;
            confirmed += 1;
        }
        let learned: Vec<(Value, String)> = wb
            .put_rows
            .iter()
            .filter_map(|r| Some((r.server_id.clone()?, r.local_id.clone())))
            .collect();
        self.adopt_children(table, &learned, &mut wb).await?;
        wb.history.push(self.history_line("push", Some(table), confirmed as u64, started, None, json!({"op": "insert"})));
        self.store.apply(wb).await?;
        Ok(confirmed)
    }

    /// The server confirmed entry `seq` of a row: update mirror and id, drop the entry,
    /// and clear the overlay unless newer local writes wait behind it.
    #[allow(clippy::too_many_arguments)]
    async fn confirm_row(
        &self,
        table: &str,
        local_id: &str,
        seq: u64,
        server_id: Option<Value>,
        mirror: Option<Row>,
        sent: &Row,
        fresh_insert: bool,
        ctx: &mut RunContext,
        wb: &mut WriteBatch,
    ) -> Result<(), EngineError> {
        wb.delete_outbox.push(seq);
        let key = (table.to_string(), local_id.to_string());
        let waiting = ctx.entries_per_row.get(&key).copied().unwrap_or(1);
        ctx.entries_per_row.insert(key, waiting.saturating_sub(1));
        // Something else wrote while this push ran: the row may have a write queued
        // behind this one that the push never read, or a newer server version.
        let interleaved = self.writer.others() != ctx.others_at_start;
        let later = waiting > 1 || (interleaved && self.store.last_outbox_entry(table, local_id).await?.is_some_and(|x| x.seq > seq));
        let mut row = match (fresh_insert && !later && !interleaved, &server_id, &mirror) {
            // A confirmed insert with nothing queued behind it: the stored row holds
            // nothing the answer does not replace (no overlay survives, nothing was
            // pushed before), so it is not read back — half the cost of a bulk push.
            (true, Some(_), Some(_)) => LocalRow {
                table: table.to_string(),
                local_id: local_id.to_string(),
                server_id: None,
                mirror: None,
                overlay: None,
                status: RowStatus::Synced,
                last_pushed: None,
            },
            _ => match self.store.get_row(table, local_id).await? {
                Some(row) => row,
                None => return Ok(()),
            },
        };
        if server_id.is_some() {
            row.server_id = server_id;
        }
        // A pull or a Realtime change between this push's request and now may have
        // brought a newer version than the answer: it stays.
        let newer_held = matches!(
            (row.mirror.as_ref().and_then(sync_txid), mirror.as_ref().and_then(sync_txid)),
            (Some(held), Some(answer)) if held > answer
        );
        if mirror.is_some() && !newer_held {
            row.mirror = mirror;
        }
        let mut pushed = row.last_pushed.take().unwrap_or_default();
        pushed.extend(sent.clone());
        row.last_pushed = Some(pushed);
        if !later {
            row.overlay = None;
            row.status = RowStatus::Synced;
        }
        wb.put_rows.push(row);
        Ok(())
    }

    async fn note_attempt(&self, batch: &[(OutboxEntry, Row)], e: &RequestError) -> Result<(), EngineError> {
        let mut wb = WriteBatch::default();
        for (entry, _) in batch {
            let mut entry = entry.clone();
            entry.attempts += 1;
            entry.last_error = Some(e.to_string());
            wb.put_outbox.push(entry);
        }
        Ok(self.store.apply(wb).await?)
    }

    /// An update or delete.
    async fn push_change(
        &self,
        e: OutboxEntry,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<RunOutcome, EngineError> {
        let decl = self.decl(&e.table)?.clone();
        let started = self.now_ms();
        // Before the request: what to send, and the entry marked as possibly sent.
        let (server_id, body) = {
            let _w = self.writer.lock_step().await;
            let row = self.store.get_row(&e.table, &e.local_id).await?;
            let Some(row) = row else {
                // The row is gone here (removed with its writes when the server deleted
                // it; an entry left behind by an older build): nothing can be sent for it.
                self.store.apply(WriteBatch { delete_outbox: vec![e.seq], ..Default::default() }).await?;
                return Ok(RunOutcome::Done);
            };
            let Some(server_id) = row.server_id.clone() else {
                if matches!(e.op, OutboxOp::Delete) && row.mirror.is_none() {
                    // Never reached the server: nothing to delete there.
                    self.store
                        .apply(WriteBatch {
                            delete_outbox: vec![e.seq],
                            delete_rows: vec![(e.table.clone(), e.local_id.clone())],
                            ..Default::default()
                        })
                        .await?;
                    return Ok(RunOutcome::Done);
                }
                return Ok(RunOutcome::Stop(format!("{}/{} waits for its insert", e.table, e.local_id)));
            };
            report.requests += 1;
            self.note_sending(std::iter::once(&e)).await?;
            let body = match &e.op {
                OutboxOp::Update { fields } => match self.to_server(&e.table, fields, ctx).await? {
                    Ok(Some(b)) => Some(Value::Object(b)),
                    Ok(None) => return Ok(RunOutcome::Stop("an update waits for a parent".into())),
                    Err(why) => {
                        report.rejected += self.reject(&e, &why, refused).await?;
                        return Ok(RunOutcome::Done);
                    }
                },
                _ => None,
            };
            (server_id, body)
        };
        let id = id_text(&server_id);
        let q = format!("{}=eq.{}&select=*", enc(&decl.key), enc(&id));
        let res = match body {
            Some(body) => {
                self.authed(|t| {
                    let (q, b) = (q.clone(), body.clone());
                    let table = e.table.clone();
                    async move { self.client.update(&table, &q, &b, &t).await }
                })
                .await
            }
            None => {
                self.authed(|t| {
                    let q = q.clone();
                    let table = e.table.clone();
                    async move { self.client.delete(&table, &q, &t).await }
                })
                .await
            }
        };
        // An answer that is not rows of this table (with its key) is broken: retry later.
        let res = res.and_then(|rows| {
            if rows.iter().all(|r| r.get(&decl.key).is_some()) {
                Ok(rows)
            } else {
                Err(RequestError::BadAnswer(format!("the answer is not rows of `{}`: {}", e.table, short_json(&rows))))
            }
        });
        let rows = match res {
            Ok(rows) => rows,
            Err(err) => {
                let _w = self.writer.lock_step().await;
                return match err.failure() {
                    Failure::Transient | Failure::Unauthorized => self.retry_later(&e, &err).await,
                    _ => {
                        report.rejected += self.reject(&e, &err.to_string(), refused).await?;
                        Ok(RunOutcome::Done)
                    }
                };
            }
        };
        let first = rows.into_iter().next();
        // Nothing matched: deleted elsewhere (its tombstone says so), or a policy hides
        // the row from this user (a refusal). Asked before the answer is written.
        let gone = match (&e.op, &first) {
            (_, None) => match self.tombstones_of(&e.table, TombstoneKey::RowIds(std::slice::from_ref(&id))).await {
                Ok(g) => Some(!g.is_empty()),
                Err(err) => {
                    let _w = self.writer.lock_step().await;
                    return self.retry_later(&e, &err).await;
                }
            },
            _ => None,
        };
        let _w = self.writer.lock_step().await;
        let mut wb = WriteBatch::default();
        match (&e.op, first) {
            (OutboxOp::Update { fields }, Some(Value::Object(server))) => {
                let mirror = self.to_local(&e.table, &server, fields, &mut ParentLocalIds::new()).await?;
                self.confirm_row(&e.table, &e.local_id, e.seq, None, Some(mirror), fields, false, ctx, &mut wb).await?;
                wb.history.push(self.history_line("push", Some(&e.table), 1, started, None, json!({"op": "update"})));
            }
            (_, None) => {
                if gone != Some(true) {
                    let verb = if matches!(e.op, OutboxOp::Delete) { "delete" } else { "change" };
                    let why = format!("the server did not let this user {verb} the row (no row matched; a policy hides it)");
                    report.rejected += self.reject(&e, &why, refused).await?;
                    return Ok(RunOutcome::Done);
                }
                let outbox = self.store.outbox().await?;
                // Read again: a local write may have changed it while the request was out.
                if let Some(row) = self.store.get_row(&e.table, &e.local_id).await? {
                    self.server_deleted(&row, "deleted on another device", &outbox, refused, &mut wb).await?;
                }
                if matches!(e.op, OutboxOp::Delete) {
                    wb.history.push(self.history_line(
                        "push",
                        Some(&e.table),
                        1,
                        started,
                        None,
                        json!({"op": "delete", "local_id": e.local_id, "note": "already deleted on the server"}),
                    ));
                }
            }
            _ => {
                wb.delete_outbox.push(e.seq);
                wb.delete_rows.push((e.table.clone(), e.local_id.clone()));
                self.graveyard.bury(&e.table, &e.local_id);
                wb.history.push(self.history_line("push", Some(&e.table), 1, started, None, json!({"op": "delete"})));
            }
        }
        self.store.apply(wb).await?;
        report.pushed += 1;
        Ok(RunOutcome::Done)
    }

    /// Record, before a request goes out, that these entries may reach the server (see
    /// [`crate::outbox::SENT_THROUGH`]): a crash mid-request must not let a later write
    /// merge into one the server already has.
    async fn note_sending<'a>(&self, entries: impl Iterator<Item = &'a OutboxEntry>) -> Result<(), EngineError> {
        let mut wb = WriteBatch::default();
        let mut max = 0;
        for e in entries {
            max = max.max(e.seq);
            if e.known_unsent {
                wb.put_outbox.push(OutboxEntry { known_unsent: false, ..e.clone() });
            }
        }
        if max > crate::outbox::sent_through(&self.store).await? {
            wb.meta.push((crate::outbox::SENT_THROUGH.to_string(), Some(json!(max))));
        }
        if !wb.is_empty() {
            self.store.apply(wb).await?;
        }
        Ok(())
    }

    /// A transient failure of one entry: count the attempt, stop this run.
    async fn retry_later(&self, e: &OutboxEntry, err: &RequestError) -> Result<RunOutcome, EngineError> {
        let mut entry = e.clone();
        entry.attempts += 1;
        entry.last_error = Some(err.to_string());
        self.store.apply(WriteBatch { put_outbox: vec![entry], ..Default::default() }).await?;
        Ok(RunOutcome::stop_for(err))
    }

    /// A child's insert was refused for a missing parent: if a parent it references is
    /// gone from the server (a tombstone), the delete wins: the parent goes here too and
    /// the child is rejected with that reason. Returns how many rows were rejected.
    async fn parents_deleted(&self, table: &str, e: &OutboxEntry, refused: &mut HashSet<(String, String)>) -> Result<usize, EngineError> {
        let OutboxOp::Insert { row } = &e.op else { return Ok(0) };
        let decl = self.decl(table)?.clone();
        // The parents as this device holds them (their server ids), read under the lock.
        let mut parents: Vec<(&str, &str, Option<Option<String>>)> = vec![];
        {
            let _w = self.writer.lock_step().await;
            for (col, parent) in &decl.references {
                let Some(local) = row.get(col).and_then(Value::as_str) else { continue };
                let held = self.store.get_row(parent, local).await?.map(|p| p.server_id.as_ref().map(id_text));
                parents.push((parent.as_str(), local, held));
            }
        }
        // Which of them the server deleted: asked without the lock.
        let mut deleted_parents: Vec<(&str, &str)> = vec![];
        let mut reasons: Vec<String> = vec![];
        for (parent, local, held) in parents {
            match held {
                Some(Some(id)) => {
                    if !self.tombstones_of(parent, TombstoneKey::RowIds(&[id])).await?.is_empty() {
                        deleted_parents.push((parent, local));
                    }
                }
                Some(None) => {}
                None => {
                    // Gone here already (the child was written as its tombstone came in,
                    // or it never was here): the reference went out as it is, so ask
                    // for a tombstone under that id, local or server.
                    let key = [local.to_string()];
                    let gone = !self.tombstones_of(parent, TombstoneKey::LocalIds(&key)).await?.is_empty()
                        || !self.tombstones_of(parent, TombstoneKey::RowIds(&key)).await?.is_empty();
                    if gone {
                        reasons.push(format!("its parent {parent}/{local} was deleted on the server"));
                    }
                }
            }
        }
        if deleted_parents.is_empty() && reasons.is_empty() {
            return Ok(0);
        }
        let _w = self.writer.lock_step().await;
        let outbox = self.store.outbox().await?;
        let mut wb = WriteBatch::default();
        for (parent, local) in deleted_parents {
            // Read again: it may have changed while the tombstones were asked for.
            if let Some(p) = self.store.get_row(parent, local).await? {
                self.server_deleted(&p, "deleted on another device", &outbox, refused, &mut wb).await?;
            }
        }
        for reason in reasons {
            self.reject_into(e, &reason, refused, &outbox, &mut wb).await?;
        }
        let rejected = wb.put_outbox.iter().filter(|x| x.rejected.is_some()).map(|x| (&x.table, &x.local_id)).collect::<HashSet<_>>().len();
        if !wb.is_empty() {
            self.store.apply(wb).await?;
        }
        Ok(rejected)
    }

    /// Refuse a write for good: keep it (with the reason) in the rejected list, roll the
    /// row back to the server's version, and reject the writes that depend on it (the
    /// row's later writes, and inserts of rows that reference it).
    /// Returns how many rows were rejected (the row and its dependents).
    pub(crate) async fn reject(&self, e: &OutboxEntry, reason: &str, refused: &mut HashSet<(String, String)>) -> Result<usize, EngineError> {
        let outbox = self.store.outbox().await?;
        let mut wb = WriteBatch::default();
        let n = self.reject_into(e, reason, refused, &outbox, &mut wb).await?;
        self.store.apply(wb).await?;
        Ok(n)
    }

    /// [`Engine::reject`] into a batch the caller applies, with the outbox it loaded.
    pub(crate) async fn reject_into(
        &self,
        e: &OutboxEntry,
        reason: &str,
        refused: &mut HashSet<(String, String)>,
        outbox: &[OutboxEntry],
        wb: &mut WriteBatch,
    ) -> Result<usize, EngineError> {
        let started = self.now_ms();
        let mut queue = vec![(e.table.clone(), e.local_id.clone(), reason.to_string())];
        let mut done: HashSet<(String, String)> = HashSet::new();
        while let Some((table, local_id, why)) = queue.pop() {
            if !done.insert((table.clone(), local_id.clone())) {
                continue;
            }
            refused.insert((table.clone(), local_id.clone()));
            for entry in outbox.iter().filter(|x| x.table == table && x.local_id == local_id && x.rejected.is_none()) {
                if wb.delete_outbox.contains(&entry.seq) {
                    continue;
                }
                let mut x = entry.clone();
                x.rejected = Some(why.clone());
                x.in_flight = false;
                wb.put_outbox.push(x);
            }
            if let Some(mut row) = self.store.get_row(&table, &local_id).await? {
                row.overlay = None;
                row.status = RowStatus::Rejected { reason: why.clone() };
                wb.put_rows.push(row);
            }
            wb.history.push(self.history_line(
                "reject",
                Some(&table),
                1,
                started,
                Some(why.clone()),
                json!({"local_id": local_id}),
            ));
            // Dependents: waiting inserts whose references point at this row.
            for x in self.unsent_children(&table, &local_id, outbox) {
                queue.push((x.table.clone(), x.local_id.clone(), format!("its parent {table}/{local_id} was rejected: {why}")));
            }
        }
        // A rolled-back insert keeps its row as a marker (status rejected, no mirror):
        // queries hide it, `rejected()` lists its entry with the reason.
        Ok(done.len())
    }
}
