//! Queued calls (`OutboxOp::Call`), one request each, through the SQL kit's
//! `supasync_call`: the kit records the call's id and result with the call's own
//! effects, in one transaction, so a retry after a lost answer replays the result and
//! runs nothing twice. The result, when it is the row (the function returned it),
//! becomes the row's server version, replacing the call's optimistic effect. A refused
//! call is refused alone (the row's other writes do not depend on it), unless the row
//! itself is gone from the server: then the delete wins, as for any write.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{Push, PushReport, RunContext, RunOutcome};
use crate::local::local_row::{id_text, Row};
use crate::local::outbox::{OutboxEntry, OutboxOp};
use crate::local::store::{Store, WriteBatch};
use crate::net::classify::Failure;
use crate::net::transport::Http;
use crate::sync::error::SyncError;
use crate::sync::references::{to_local, ParentLocalIds};
use crate::sync::reject::reject_call;
use crate::sync::server_delete::server_deleted;
use crate::sync::tombstones::{tombstones_of, TombstoneKey};

impl<S: Store, H: Http> Push<'_, S, H> {
    /// One queued call.
    pub(super) async fn push_call(
        &self,
        e: OutboxEntry,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<RunOutcome, SyncError> {
        let OutboxOp::Call { call_id, function, args, .. } = &e.op else { return Ok(RunOutcome::Done) };
        let decl = self.cx.decl(&e.table)?.clone();
        let started = self.cx.now_ms();
        let server_id = {
            let _w = self.cx.writer.lock_step().await;
            let Some(row) = self.cx.store.get_row(&e.table, &e.local_id).await? else {
                // The row is gone here (the server deleted it, with its writes).
                self.cx.store.apply(WriteBatch { delete_outbox: vec![e.seq], ..Default::default() }).await?;
                return Ok(RunOutcome::Done);
            };
            let Some(server_id) = row.server_id else {
                return Ok(RunOutcome::Stop(format!("a call on {}/{} waits for its insert", e.table, e.local_id)));
            };
            report.requests += 1;
            self.note_sending(std::iter::once(&e)).await?;
            server_id
        };
        let body = json!({"call_id": call_id, "fn": function, "row_id": id_text(&server_id), "args": args});
        let res = self
            .cx
            .authed(|t| {
                let b = body.clone();
                async move { self.cx.client.rpc("supasync_call", &b, &t).await }
            })
            .await;
        let result = match res {
            Ok(v) => v,
            Err(err) if matches!(err.failure(), Failure::Transient | Failure::Unauthorized) => {
                let _w = self.cx.writer.lock_step().await;
                return self.retry_later(&e, &err).await;
            }
            Err(err) => {
                // Refused. The row may be gone from the server (deleted on another
                // device; a function then finds nothing to change): the delete wins.
                let id = id_text(&server_id);
                let gone = match tombstones_of(&self.cx, &e.table, TombstoneKey::RowIds(std::slice::from_ref(&id))).await {
                    Ok(g) => !g.is_empty(),
                    Err(asked) => {
                        let _w = self.cx.writer.lock_step().await;
                        return self.retry_later(&e, &asked).await;
                    }
                };
                let _w = self.cx.writer.lock_step().await;
                if gone {
                    let outbox = self.cx.store.outbox().await?;
                    let mut wb = WriteBatch::default();
                    if let Some(row) = self.cx.store.get_row(&e.table, &e.local_id).await? {
                        server_deleted(&self.cx, &row, "deleted on another device", &outbox, refused, &mut wb).await?;
                    }
                    self.cx.store.apply(wb).await?;
                } else {
                    reject_call(&self.cx, &e, &format!("{function}: {err}")).await?;
                    report.rejected += 1;
                }
                return Ok(RunOutcome::Done);
            }
        };
        let _w = self.cx.writer.lock_step().await;
        // The function returned the row it changed: that is the row now.
        let mirror = match result {
            Value::Object(m) if m.get(&decl.key).map(id_text) == Some(id_text(&server_id)) => {
                Some(to_local(self.cx.schema, self.cx.store, &e.table, m, &Row::new(), &mut ParentLocalIds::new()).await?)
            }
            _ => None,
        };
        let mut wb = WriteBatch::default();
        self.confirm_row(&e.table, &e.local_id, e.seq, None, mirror, &Row::new(), false, ctx, &mut wb).await?;
        wb.history.push(self.cx.history_line("push", Some(&e.table), 1, started, None, json!({"op": "call", "function": function})));
        self.cx.store.apply(wb).await?;
        report.pushed += 1;
        Ok(RunOutcome::Done)
    }
}
