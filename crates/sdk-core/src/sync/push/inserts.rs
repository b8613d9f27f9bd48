//! Runs of inserts: batched upserts on `(owner, local_id)` that a retry cannot double,
//! the next batch's request out while the last batch's confirmations are written,
//! and a refused batch bisected down to the rows at fault.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::{short_json, InsertAnswer, Push, PushReport, Ready, RunContext, RunOutcome};
use crate::local::local_row::Row;
use crate::local::outbox::{OutboxEntry, OutboxOp};
use crate::local::schema::TableDecl;
use crate::local::store::{Store, WriteBatch};
use crate::net::classify::Failure;
use crate::net::client::{enc, quoted_list, RequestError};
use crate::net::transport::Http;
use crate::sync::error::SyncError;
use crate::sync::references::{adopt_children, to_local, ParentLocalIds};
use crate::sync::scopes;
use crate::sync::reject::reject;
use crate::sync::server_delete::server_deleted;
use crate::sync::tombstones::{tombstones_of, TombstoneKey};

impl<S: Store, H: Http> Push<'_, S, H> {
    /// Push a run of inserts into one table, `batch_size` rows per request. While one
    /// batch's confirmations are written locally, the next batch's request is already
    /// in flight (when the answer settled every row it sent): the server and the local
    /// store work at the same time instead of taking turns. Both batches are marked
    /// as possibly sent before their requests go out, so a crash with two in flight
    /// retries both as writes the server may have (found and confirmed, never doubled).
    pub(super) async fn push_inserts(
        &self,
        run: Vec<OutboxEntry>,
        user_id: &str,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<RunOutcome, SyncError> {
        let table = run[0].table.clone();
        let decl = self.cx.decl(&table)?.clone();
        let size = self.cx.cfg.batch_size.max(1);
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
                        let _w = self.cx.writer.lock_step().await;
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
                    let _w = self.cx.writer.lock_step().await;
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
    pub(super) async fn prepare_inserts(
        &self,
        table: &str,
        decl: &TableDecl,
        chunk: Vec<OutboxEntry>,
        user_id: &str,
        waiting: &mut bool,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<Vec<Ready>, SyncError> {
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
                    report.rejected += reject(&self.cx, &e, &why, refused).await?;
                }
            }
        }
        Ok(ready)
    }

    /// A batch whose request failed: stop on a transient failure (`Some`), else bisect
    /// it down to the rows at fault, which are rejected with the server's reason while
    /// the others go through (in order: a stack of halves).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn settle_refused_batch(
        &self,
        table: &str,
        decl: &TableDecl,
        batch: Vec<Ready>,
        error: RequestError,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<Option<RunOutcome>, SyncError> {
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
                        let _w = self.cx.writer.lock_step().await;
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
                let _w = self.cx.writer.lock_step().await;
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
            // An earlier attempt may have landed (its answer lost) before the server
            // stopped letting this user write the row (a share withdrawn): the retry
            // is refused, yet the row is there. Found by its key, it is confirmed, not
            // rolled back (with the row's later writes, a delete among them).
            if batch[0].0.may_be_on_server(ctx.sent_through_at_start) {
                match self.landed_earlier(table, decl, &batch[0]).await {
                    Ok(None) => {}
                    Ok(Some(row)) => {
                        let answer = InsertAnswer { rows: vec![row], gone: HashSet::new() };
                        report.pushed += self.confirm_inserts(table, &batch, answer, report, refused, ctx).await?;
                        continue;
                    }
                    Err(err) => {
                        let _w = self.cx.writer.lock_step().await;
                        self.note_attempt(&batch, &err).await?;
                        return Ok(Some(RunOutcome::stop_for(&err)));
                    }
                }
            }
            // Its parent may be gone from the server (deleted on another device): then
            // the delete wins and this insert is rejected with that reason. A missing
            // parent says so; so may a policy refusal, when the app's policy checks the
            // parent (messages only into conversations the user may write to).
            if failure == Failure::MissingParent || (failure == Failure::Permanent && !decl.references.is_empty()) {
                let gone = self.parents_deleted(table, &batch[0].0, refused).await?;
                if gone > 0 {
                    report.rejected += gone;
                    continue;
                }
                if failure == Failure::MissingParent && batch[0].0.attempts + 1 < self.cx.cfg.max_parent_waits {
                    let _w = self.cx.writer.lock_step().await;
                    self.note_attempt(&batch, &e).await?;
                    return Ok(Some(RunOutcome::Stop(e.to_string())));
                }
            }
            // A shared row refused because the user left its scope id: say so.
            let left = match (failure, self.cx.store.get_row(table, &batch[0].0.local_id).await?) {
                (Failure::Permanent, Some(row)) => scopes::why_hidden(&self.cx, decl, &row).await.ok().flatten(),
                _ => None,
            };
            let reason = match left {
                Some(why) => format!("{e} ({why})"),
                None => e.to_string(),
            };
            let _w = self.cx.writer.lock_step().await;
            report.rejected += reject(&self.cx, &batch[0].0, &reason, refused).await?;
        }
        Ok(None)
    }

    /// The row of a refused insert if the server holds it after all, found by its
    /// `(owner, local_id)` key as this user may read it.
    async fn landed_earlier(&self, table: &str, decl: &TableDecl, (e, row): &Ready) -> Result<Option<Value>, RequestError> {
        let Some(Value::String(owner)) = row.get(&decl.owner) else { return Ok(None) };
        let q = format!("select=*&{}=eq.{}&{}=eq.{}", enc(&decl.owner), enc(owner), enc(&decl.local_id), enc(&e.local_id));
        let rows = self.cx.authed(|t| {
            let q = q.clone();
            async move { self.cx.client.select(table, &q, &t).await }
        })
        .await?;
        let ours = |r: &Value| r.get(&decl.local_id).and_then(Value::as_str) == Some(e.local_id.as_str()) && r.get(&decl.key).is_some();
        match rows.len() {
            0 => Ok(None),
            1 if ours(&rows[0]) => Ok(rows.into_iter().next()),
            _ => Err(RequestError::BadAnswer(format!("the lookup answer is not the row asked for: {}", short_json(&rows)))),
        }
    }

    /// Send one batch of inserts.
    pub(super) async fn send_inserts(&self, table: &str, decl: &TableDecl, batch: &[(OutboxEntry, Row)]) -> Result<InsertAnswer, RequestError> {
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
        // Their echo is a row this device holds: never shown early (see `sync::forecast`).
        self.cx.forecast.pushing(table, batch.iter().map(|(e, _)| e.local_id.as_str()));
        let mut rows = self.cx
            .authed(|t| {
                let (q, b) = (query.clone(), body.clone());
                async move {
                    self.cx.client
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
            let existing = self.cx.authed(|t| {
                let q = q.clone();
                async move { self.cx.client.select(table, &q, &t).await }
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
            gone = tombstones_of(&self.cx, table, TombstoneKey::LocalIds(&missing)).await?;
        }
        Ok(InsertAnswer { rows, gone })
    }

    pub(super) async fn confirm_inserts(
        &self,
        table: &str,
        batch: &[(OutboxEntry, Row)],
        answer: InsertAnswer,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<usize, SyncError> {
        let started = self.cx.now_ms();
        let _w = self.cx.writer.lock_step().await;
        let InsertAnswer { rows, gone } = answer;
        let decl = self.cx.decl(table)?;
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
            let outbox = self.cx.store.outbox().await?;
            for (e, _) in batch.iter().filter(|(e, _)| gone.contains(&e.local_id)) {
                if let Some(row) = self.cx.store.get_row(table, &e.local_id).await? {
                    server_deleted(&self.cx, &row, "deleted on another device after an earlier attempt landed", &outbox, refused, &mut wb)
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
                report.rejected += reject(&self.cx, e, &reason, &mut HashSet::new()).await?;
                continue;
            };
            let OutboxOp::Insert { row: sent } = &e.op else { continue };
            let mirror = to_local(self.cx.schema, self.cx.store, table, server.clone(), sent, &mut ParentLocalIds::new()).await?;
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
        adopt_children(self.cx.schema, self.cx.store, table, &learned, &mut wb).await?;
        if self.cx.schema.is_referenced(table) {
            self.cx.forecast.learn_ids(table, &learned);
        }
        wb.history.push(self.cx.history_line("push", Some(table), confirmed as u64, started, None, json!({"op": "insert"})));
        self.cx.store.apply(wb).await?;
        Ok(confirmed)
    }
}
