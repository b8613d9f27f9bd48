//! What a push writes to the replica between its requests: a confirmed write (mirror,
//! server id, the entry dropped, the overlay cleared unless a later write waits), an
//! attempt that failed for now, and the mark of what may be on the server before a
//! request goes out.

use serde_json::{json, Value};

use super::{Push, RunContext, RunOutcome};
use crate::local::local_row::{sync_txid, LocalRow, Row, RowStatus};
use crate::local::outbox::{OutboxEntry, SENT_THROUGH};
use crate::local::store::{sent_through, Store, WriteBatch};
use crate::net::client::RequestError;
use crate::net::transport::Http;
use crate::sync::error::SyncError;

impl<S: Store, H: Http> Push<'_, S, H> {
    /// The server confirmed entry `seq` of a row: update mirror and id, drop the entry,
    /// and clear the overlay unless newer local writes wait behind it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn confirm_row(
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
    ) -> Result<(), SyncError> {
        wb.delete_outbox.push(seq);
        let key = (table.to_string(), local_id.to_string());
        let waiting = ctx.entries_per_row.get(&key).copied().unwrap_or(1);
        ctx.entries_per_row.insert(key, waiting.saturating_sub(1));
        // Something else wrote while this push ran: the row may have a write queued
        // behind this one that the push never read, or a newer server version.
        let interleaved = self.cx.writer.others() != ctx.others_at_start;
        let later = waiting > 1 || (interleaved && self.cx.store.last_outbox_entry(table, local_id).await?.is_some_and(|x| x.seq > seq));
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
            _ => match self.cx.store.get_row(table, local_id).await? {
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

    pub(super) async fn note_attempt(&self, batch: &[(OutboxEntry, Row)], e: &RequestError) -> Result<(), SyncError> {
        let mut wb = WriteBatch::default();
        for (entry, _) in batch {
            let mut entry = entry.clone();
            entry.attempts += 1;
            entry.last_error = Some(e.to_string());
            wb.put_outbox.push(entry);
        }
        Ok(self.cx.store.apply(wb).await?)
    }

    /// Record, before a request goes out, that these entries may reach the server (see
    /// [`SENT_THROUGH`]): a crash mid-request must not let a later write
    /// merge into one the server already has.
    pub(super) async fn note_sending<'a>(&self, entries: impl Iterator<Item = &'a OutboxEntry>) -> Result<(), SyncError> {
        let mut wb = WriteBatch::default();
        let mut max = 0;
        for e in entries {
            max = max.max(e.seq);
            if e.known_unsent {
                wb.put_outbox.push(OutboxEntry { known_unsent: false, ..e.clone() });
            }
        }
        if max > sent_through(self.cx.store).await? {
            wb.meta.push((SENT_THROUGH.to_string(), Some(json!(max))));
        }
        if !wb.is_empty() {
            self.cx.store.apply(wb).await?;
        }
        Ok(())
    }

    /// A transient failure of one entry: count the attempt, stop this run.
    pub(super) async fn retry_later(&self, e: &OutboxEntry, err: &RequestError) -> Result<RunOutcome, SyncError> {
        let mut entry = e.clone();
        entry.attempts += 1;
        entry.last_error = Some(err.to_string());
        self.cx.store.apply(WriteBatch { put_outbox: vec![entry], ..Default::default() }).await?;
        Ok(RunOutcome::stop_for(err))
    }
}
