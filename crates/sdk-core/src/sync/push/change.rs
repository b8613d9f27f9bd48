//! Updates and deletes, one request each by server id, and what an answer that matched
//! nothing means: a tombstone says the row was deleted elsewhere (the delete wins),
//! none says a policy hides it (a refusal). Also a child's insert refused for a
//! missing parent, whose parent may be gone from the server.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{short_json, Push, PushReport, RunContext, RunOutcome};
use crate::local::local_row::id_text;
use crate::local::outbox::{OutboxEntry, OutboxOp};
use crate::local::store::{Store, WriteBatch};
use crate::net::classify::Failure;
use crate::net::client::{enc, RequestError};
use crate::net::transport::Http;
use crate::sync::error::SyncError;
use crate::sync::references::{to_local, ParentLocalIds};
use crate::sync::reject::{reject, reject_into};
use crate::sync::scopes;
use crate::sync::server_delete::server_deleted;
use crate::sync::tombstones::{tombstones_of, TombstoneKey};

impl<S: Store, H: Http> Push<'_, S, H> {
    /// An update or delete.
    pub(super) async fn push_change(
        &self,
        e: OutboxEntry,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<RunOutcome, SyncError> {
        let decl = self.cx.decl(&e.table)?.clone();
        let started = self.cx.now_ms();
        // Before the request: what to send, and the entry marked as possibly sent.
        let (server_id, body) = {
            let _w = self.cx.writer.lock_step().await;
            let row = self.cx.store.get_row(&e.table, &e.local_id).await?;
            let Some(row) = row else {
                // The row is gone here (removed with its writes when the server deleted
                // it; an entry left behind by an older build): nothing can be sent for it.
                self.cx.store.apply(WriteBatch { delete_outbox: vec![e.seq], ..Default::default() }).await?;
                return Ok(RunOutcome::Done);
            };
            let Some(server_id) = row.server_id.clone() else {
                if matches!(e.op, OutboxOp::Delete) && row.mirror.is_none() {
                    // Never reached the server: nothing to delete there.
                    self.cx.store
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
                        report.rejected += reject(&self.cx, &e, &why, refused).await?;
                        return Ok(RunOutcome::Done);
                    }
                },
                _ => None,
            };
            (server_id, body)
        };
        let id = id_text(&server_id);
        let q = format!("{}=eq.{}&select=*", enc(&decl.key), enc(&id));
        let res = match &body {
            Some(body) => {
                self.cx.authed(|t| {
                    let (q, b) = (q.clone(), body.clone());
                    let table = e.table.clone();
                    async move { self.cx.client.update(&table, &q, &b, &t).await }
                })
                .await
            }
            None => {
                self.cx.authed(|t| {
                    let q = q.clone();
                    let table = e.table.clone();
                    async move { self.cx.client.delete(&table, &q, &t).await }
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
            Err(err) if matches!(err.failure(), Failure::Transient | Failure::Unauthorized) => {
                let _w = self.cx.writer.lock_step().await;
                return self.retry_later(&e, &err).await;
            }
            Err(err) => match self.update_landed_earlier(&e, &decl.key, &id, body.as_ref(), ctx).await {
                Ok(Some(row)) => vec![row],
                Ok(None) => {
                    let _w = self.cx.writer.lock_step().await;
                    report.rejected += reject(&self.cx, &e, &err.to_string(), refused).await?;
                    return Ok(RunOutcome::Done);
                }
                Err(lookup) => {
                    let _w = self.cx.writer.lock_step().await;
                    return self.retry_later(&e, &lookup).await;
                }
            },
        };
        let first = rows.into_iter().next();
        // Nothing matched: deleted elsewhere (its tombstone says so), or a policy hides
        // the row from this user (a refusal). Asked before the answer is written.
        let gone = match (&e.op, &first) {
            (_, None) => match tombstones_of(&self.cx, &e.table, TombstoneKey::RowIds(std::slice::from_ref(&id))).await {
                Ok(g) => Some(!g.is_empty()),
                Err(err) => {
                    let _w = self.cx.writer.lock_step().await;
                    return self.retry_later(&e, &err).await;
                }
            },
            _ => None,
        };
        // Matched nothing though the row is there: an update that landed before the
        // policy stopped letting this user change the row is found as it landed.
        let first = match (first, gone) {
            (None, Some(false)) => match self.update_landed_earlier(&e, &decl.key, &id, body.as_ref(), ctx).await {
                Ok(found) => found,
                Err(err) => {
                    let _w = self.cx.writer.lock_step().await;
                    return self.retry_later(&e, &err).await;
                }
            },
            (first, _) => first,
        };
        // Hidden rather than gone: for a shared row, whether this user left its scope.
        let held = match gone {
            Some(false) if first.is_none() && decl.shared_by.is_some() => self.cx.store.get_row(&e.table, &e.local_id).await?,
            _ => None,
        };
        let hidden = match held {
            Some(row) => match scopes::why_hidden(&self.cx, &decl, &row).await {
                Ok(why) => why,
                Err(SyncError::Request(err)) => {
                    let _w = self.cx.writer.lock_step().await;
                    return self.retry_later(&e, &err).await;
                }
                Err(other) => return Err(other),
            },
            None => None,
        };
        let _w = self.cx.writer.lock_step().await;
        let mut wb = WriteBatch::default();
        match (&e.op, first) {
            (OutboxOp::Update { fields }, Some(Value::Object(server))) => {
                let mirror = to_local(self.cx.schema, self.cx.store, &e.table, server.clone(), fields, &mut ParentLocalIds::new()).await?;
                self.confirm_row(&e.table, &e.local_id, e.seq, None, Some(mirror), fields, false, ctx, &mut wb).await?;
                wb.history.push(self.cx.history_line("push", Some(&e.table), 1, started, None, json!({"op": "update"})));
            }
            (_, None) => {
                if gone != Some(true) {
                    let verb = if matches!(e.op, OutboxOp::Delete) { "delete" } else { "change" };
                    let why = match hidden {
                        Some(why) => format!("the server did not let this user {verb} the row: {why}"),
                        None => format!("the server did not let this user {verb} the row (no row matched; a policy hides it)"),
                    };
                    report.rejected += reject(&self.cx, &e, &why, refused).await?;
                    return Ok(RunOutcome::Done);
                }
                let outbox = self.cx.store.outbox().await?;
                // Read again: a local write may have changed it while the request was out.
                if let Some(row) = self.cx.store.get_row(&e.table, &e.local_id).await? {
                    server_deleted(&self.cx, &row, "deleted on another device", &outbox, refused, &mut wb).await?;
                }
                if matches!(e.op, OutboxOp::Delete) {
                    wb.history.push(self.cx.history_line(
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
                self.cx.graveyard.bury(&e.table, &e.local_id);
                wb.history.push(self.cx.history_line("push", Some(&e.table), 1, started, None, json!({"op": "delete"})));
            }
        }
        self.cx.store.apply(wb).await?;
        report.pushed += 1;
        Ok(RunOutcome::Done)
    }

    /// The row as the server holds it, if a refused update `e` already landed there: an
    /// earlier attempt may have (its answer lost) before the server stopped letting this
    /// user change the row (an edit window that closed, a role taken away), and its
    /// retry is refused or matches nothing, yet the row holds every field it sent.
    /// Confirmed then, not rolled back (with the row's later writes, a delete among
    /// them). Only for an update that may be on the server, read by key as this user
    /// may read it; a field the server keeps in another form (a timestamp it rewrote)
    /// does not count as held, so such an update is refused as before.
    async fn update_landed_earlier(&self, e: &OutboxEntry, key: &str, id: &str, sent: Option<&Value>, ctx: &RunContext) -> Result<Option<Value>, RequestError> {
        let (OutboxOp::Update { .. }, Some(Value::Object(sent))) = (&e.op, sent) else { return Ok(None) };
        if !e.may_be_on_server(ctx.sent_through_at_start) {
            return Ok(None);
        }
        let q = format!("{}=eq.{}&select=*", enc(key), enc(id));
        let rows = self.cx
            .authed(|t| {
                let q = q.clone();
                let table = e.table.clone();
                async move { self.cx.client.select(&table, &q, &t).await }
            })
            .await?;
        Ok(match rows.as_slice() {
            [Value::Object(server)] if sent.iter().all(|(k, v)| server.get(k) == Some(v)) => rows.into_iter().next(),
            _ => None,
        })
    }

    /// A child's insert was refused for a missing parent: if a parent it references is
    /// gone from the server (a tombstone), the delete wins: the parent goes here too and
    /// the child is rejected with that reason. Returns how many rows were rejected.
    pub(super) async fn parents_deleted(&self, table: &str, e: &OutboxEntry, refused: &mut HashSet<(String, String)>) -> Result<usize, SyncError> {
        let OutboxOp::Insert { row } = &e.op else { return Ok(0) };
        let decl = self.cx.decl(table)?.clone();
        // The parents as this device holds them (their server ids), read under the lock.
        let mut parents: Vec<(&str, &str, Option<Option<String>>)> = vec![];
        {
            let _w = self.cx.writer.lock_step().await;
            for (col, parent) in &decl.references {
                let Some(local) = row.get(col).and_then(Value::as_str) else { continue };
                let held = self.cx.store.get_row(parent, local).await?.map(|p| p.server_id.as_ref().map(id_text));
                parents.push((parent.as_str(), local, held));
            }
        }
        // Which of them the server deleted: asked without the lock.
        let mut deleted_parents: Vec<(&str, &str)> = vec![];
        let mut reasons: Vec<String> = vec![];
        for (parent, local, held) in parents {
            match held {
                Some(Some(id)) => {
                    if !tombstones_of(&self.cx, parent, TombstoneKey::RowIds(&[id])).await?.is_empty() {
                        deleted_parents.push((parent, local));
                    }
                }
                Some(None) => {}
                None => {
                    // Gone here already (the child was written as its tombstone came in,
                    // or it never was here): the reference went out as it is, so ask
                    // for a tombstone under that id, local or server.
                    let key = [local.to_string()];
                    let gone = !tombstones_of(&self.cx, parent, TombstoneKey::LocalIds(&key)).await?.is_empty()
                        || !tombstones_of(&self.cx, parent, TombstoneKey::RowIds(&key)).await?.is_empty();
                    if gone {
                        reasons.push(format!("its parent {parent}/{local} was deleted on the server"));
                    }
                }
            }
        }
        if deleted_parents.is_empty() && reasons.is_empty() {
            return Ok(0);
        }
        let _w = self.cx.writer.lock_step().await;
        let outbox = self.cx.store.outbox().await?;
        let mut wb = WriteBatch::default();
        for (parent, local) in deleted_parents {
            // Read again: it may have changed while the tombstones were asked for.
            if let Some(p) = self.cx.store.get_row(parent, local).await? {
                server_deleted(&self.cx, &p, "deleted on another device", &outbox, refused, &mut wb).await?;
            }
        }
        for reason in reasons {
            reject_into(&self.cx, e, &reason, refused, &outbox, &mut wb).await?;
        }
        let rejected = wb.put_outbox.iter().filter(|x| x.rejected.is_some()).map(|x| (&x.table, &x.local_id)).collect::<HashSet<_>>().len();
        if !wb.is_empty() {
            self.cx.store.apply(wb).await?;
        }
        Ok(rejected)
    }
}
