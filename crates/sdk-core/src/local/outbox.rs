//! The outbox: local writes waiting to reach the server, in order (DESIGN §2.4).
//!
//! Each local write commits its row change and its outbox entry in one store batch, so a
//! crash or a closed tab loses nothing. Writes to a row coalesce while they wait: an
//! insert then updates is still one insert; updates merge into one PATCH of the changed
//! fields; an update then a delete is a delete; and an insert deleted before it was
//! pushed is never sent at all. A queued call never merges, nor is merged into: each
//! runs once on the server, in order with the row's other writes. An entry already
//! being pushed is never merged into: the
//! new write queues behind it. Nor is an entry whose push was already tried: the server
//! may have committed it with the answer lost, so merging would lose the new write (a
//! retried insert is ignored as a duplicate, with whatever fields were merged into it)
//! or leave the server's row behind forever (an insert "cancelled" by a delete).
//!
//! "Tried" must survive a crash in the middle of a request (the process killed after the
//! server committed, before the attempt was counted). So before each request the push
//! records the highest `seq` it is sending ([`SENT_THROUGH`]), one small write; every
//! entry at or below it may be on the server. That is conservative (an entry of a batch
//! skipped for a missing parent counts as tried too), which costs at most a request,
//! never a write.

use serde::{Deserialize, Serialize};

use crate::local::files::FileMeta;
use crate::local::local_row::Row;

/// What an entry asks of the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OutboxOp {
    /// Create the row (an upsert on (owner, local_id), so a retry is harmless).
    Insert { row: Row },
    /// Change these fields only.
    Update { fields: Row },
    /// Delete the row.
    Delete,
    /// Run a function the SQL kit allows (`supasync.allow_call`) on the row, once: a
    /// write that combines on the server (a counter bumped by many), where a field
    /// value would overwrite. `effect` is what the app shows until the server answers;
    /// the function's result (the row it changed) then replaces it. `call_id` makes a
    /// retry after a lost answer a replay, never a second run.
    Call { call_id: String, function: String, args: serde_json::Value, effect: Row },
    /// Store a file in Supabase Storage. The entry's table is `files:<bucket>`, its
    /// local id the file's path, and its bytes the store's blob of that name
    /// ([`crate::local::files`]). A large file goes over TUS; `resumable_url` is its
    /// upload's address once created, so a push after a crash resumes it.
    Upload {
        file: FileMeta,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumable_url: Option<String>,
    },
}

impl OutboxOp {
    /// The fields this write shows in the row until the server answers (`None` for a
    /// delete).
    pub fn shown_fields(&self) -> Option<Row> {
        match self {
            OutboxOp::Insert { row } => Some(row.clone()),
            OutboxOp::Update { fields } => Some(fields.clone()),
            OutboxOp::Call { effect, .. } => Some(effect.clone()),
            OutboxOp::Upload { file, .. } => Some(file.fields()),
            OutboxOp::Delete => None,
        }
    }
}

/// A new outbox entry; the store assigns its `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxEntry {
    pub table: String,
    pub local_id: String,
    pub op: OutboxOp,
    pub created_at_ms: i64,
}

/// One waiting write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Order of the writes; assigned by the store, increasing.
    pub seq: u64,
    pub table: String,
    pub local_id: String,
    pub op: OutboxOp,
    /// When the write was made (ms since the epoch).
    pub created_at_ms: i64,
    /// Push attempts so far, and the last transient error.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Being pushed now: never merged into.
    pub in_flight: bool,
    /// Refused by the server (permanent): kept for retry, edit or discard.
    pub rejected: Option<String>,
    /// Refused, then queued again by the app: the refusal proves the server holds none
    /// of it, whatever [`SENT_THROUGH`] says, until it is sent again.
    #[serde(default)]
    pub known_unsent: bool,
}

impl OutboxEntry {
    /// A fresh entry with the `seq` its store assigned.
    pub fn new(seq: u64, n: NewOutboxEntry) -> OutboxEntry {
        OutboxEntry {
            seq,
            table: n.table,
            local_id: n.local_id,
            op: n.op,
            created_at_ms: n.created_at_ms,
            attempts: 0,
            last_error: None,
            in_flight: false,
            rejected: None,
            known_unsent: false,
        }
    }
}

/// The metadata key under which the push records the highest `seq` it has sent.
pub const SENT_THROUGH: &str = "outbox:sent_through";

impl OutboxEntry {
    /// Whether the server may already hold this write: being pushed, pushed with the
    /// answer lost, or sent by a process that died before it heard back.
    pub fn may_be_on_server(&self, sent_through: u64) -> bool {
        self.in_flight || self.attempts > 0 || (self.seq <= sent_through && !self.known_unsent)
    }
}

/// How a new write combines with the row's waiting entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Coalesced {
    /// Queue a new entry.
    Append(OutboxOp),
    /// Replace the waiting entry's operation.
    Replace(OutboxOp),
    /// The waiting insert and this delete cancel out: remove the entry, send nothing.
    Cancel,
}

/// Why a write cannot follow the waiting one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoalesceError {
    #[error("the row is deleted locally")]
    AfterDelete,
    #[error("the row already exists")]
    InsertOverExisting,
}

/// Combine `new` with `waiting` (the row's last entry, if any); `sent_through` is the
/// store's [`SENT_THROUGH`].
pub fn coalesce(waiting: Option<&OutboxEntry>, sent_through: u64, new: OutboxOp) -> Result<Coalesced, CoalesceError> {
    use OutboxOp::*;
    let Some(w) = waiting else {
        return Ok(Coalesced::Append(new));
    };
    match (&w.op, &new) {
        (Delete, _) => return Err(CoalesceError::AfterDelete),
        (_, Insert { .. }) => return Err(CoalesceError::InsertOverExisting),
        (_, Upload { .. }) if !matches!(w.op, Upload { .. }) => return Err(CoalesceError::InsertOverExisting),
        _ => {}
    }
    if w.rejected.is_some() || w.may_be_on_server(sent_through) || matches!(w.op, Call { .. }) || matches!(new, Call { .. }) {
        return Ok(Coalesced::Append(new));
    }
    if let Upload { .. } = &w.op {
        // A file not sent yet: a new version replaces it, a delete cancels it.
        return Ok(match new {
            Upload { .. } => Coalesced::Replace(new),
            Delete => Coalesced::Cancel,
            _ => Coalesced::Append(new),
        });
    }
    Ok(match (&w.op, new) {
        (Insert { row }, Update { fields }) => {
            let mut row = row.clone();
            row.extend(fields);
            Coalesced::Replace(Insert { row })
        }
        (Insert { .. }, _) => Coalesced::Cancel,
        (Update { fields: old }, Update { fields }) => {
            let mut merged = old.clone();
            merged.extend(fields);
            Coalesced::Replace(Update { fields: merged })
        }
        (Update { .. }, _) => Coalesced::Replace(Delete),
        (Delete, _) => return Err(CoalesceError::AfterDelete),
        (Call { .. } | Upload { .. }, new) => Coalesced::Append(new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_write_after_a_tried_push_queues_behind_it() {
        let mut insert = OutboxEntry::new(
            1,
            crate::local::store::NewOutboxEntry {
                table: "t".into(),
                local_id: "L".into(),
                op: OutboxOp::Insert { row: Row::new() },
                created_at_ms: 0,
            },
        );
        assert_eq!(coalesce(Some(&insert), 0, OutboxOp::Delete), Ok(Coalesced::Cancel));
        // Sent by a push that died before it counted the attempt: it may be there.
        assert_eq!(coalesce(Some(&insert), 1, OutboxOp::Delete), Ok(Coalesced::Append(OutboxOp::Delete)));
        // Unless the server refused it since (and the app queued it again).
        insert.known_unsent = true;
        assert_eq!(coalesce(Some(&insert), 1, OutboxOp::Delete), Ok(Coalesced::Cancel));
        insert.attempts = 1; // the answer was lost: the server may have the row
        assert_eq!(coalesce(Some(&insert), 0, OutboxOp::Delete), Ok(Coalesced::Append(OutboxOp::Delete)));
        let upd = OutboxOp::Update { fields: row(json!({"a": 1})) };
        assert_eq!(coalesce(Some(&insert), 0, upd.clone()), Ok(Coalesced::Append(upd)));
    }

    fn row(v: serde_json::Value) -> Row {
        v.as_object().cloned().unwrap_or_default()
    }

    fn entry(op: OutboxOp) -> OutboxEntry {
        OutboxEntry {
            seq: 1,
            table: "t".into(),
            local_id: "L".into(),
            op,
            created_at_ms: 0,
            attempts: 0,
            last_error: None,
            in_flight: false,
            rejected: None,
            known_unsent: false,
        }
    }

    #[test]
    fn writes_to_one_row_coalesce() {
        let ins = entry(OutboxOp::Insert { row: row(json!({"a": 1, "b": 1})) });
        assert_eq!(
            coalesce(Some(&ins), 0, OutboxOp::Update { fields: row(json!({"b": 2})) }),
            Ok(Coalesced::Replace(OutboxOp::Insert { row: row(json!({"a": 1, "b": 2})) }))
        );
        assert_eq!(coalesce(Some(&ins), 0, OutboxOp::Delete), Ok(Coalesced::Cancel));
        let upd = entry(OutboxOp::Update { fields: row(json!({"a": 1})) });
        assert_eq!(
            coalesce(Some(&upd), 0, OutboxOp::Update { fields: row(json!({"b": 2})) }),
            Ok(Coalesced::Replace(OutboxOp::Update { fields: row(json!({"a": 1, "b": 2})) }))
        );
        assert_eq!(coalesce(Some(&upd), 0, OutboxOp::Delete), Ok(Coalesced::Replace(OutboxOp::Delete)));
        assert_eq!(coalesce(None, 0, OutboxOp::Delete), Ok(Coalesced::Append(OutboxOp::Delete)));
    }

    #[test]
    fn queued_calls_neither_merge_nor_are_merged_into() {
        let call = OutboxOp::Call { call_id: "c1".into(), function: "bump".into(), args: json!({}), effect: row(json!({"n": 2})) };
        let ins = entry(OutboxOp::Insert { row: row(json!({"n": 1})) });
        assert_eq!(coalesce(Some(&ins), 0, call.clone()), Ok(Coalesced::Append(call.clone())));
        let queued = entry(call.clone());
        let upd = OutboxOp::Update { fields: row(json!({"a": 1})) };
        assert_eq!(coalesce(Some(&queued), 0, upd.clone()), Ok(Coalesced::Append(upd)));
        assert_eq!(coalesce(Some(&queued), 0, OutboxOp::Delete), Ok(Coalesced::Append(OutboxOp::Delete)));
        assert_eq!(coalesce(Some(&queued), 0, call.clone()), Ok(Coalesced::Append(call)));
    }

    #[test]
    fn in_flight_entries_are_never_merged_into() {
        let mut ins = entry(OutboxOp::Insert { row: row(json!({"a": 1})) });
        ins.in_flight = true;
        let upd = OutboxOp::Update { fields: row(json!({"a": 2})) };
        assert_eq!(coalesce(Some(&ins), 0, upd.clone()), Ok(Coalesced::Append(upd)));
        assert_eq!(coalesce(Some(&ins), 0, OutboxOp::Delete), Ok(Coalesced::Append(OutboxOp::Delete)));
    }

    #[test]
    fn impossible_sequences_are_errors() {
        let del = entry(OutboxOp::Delete);
        assert_eq!(coalesce(Some(&del), 0, OutboxOp::Update { fields: Row::new() }), Err(CoalesceError::AfterDelete));
        let ins = entry(OutboxOp::Insert { row: Row::new() });
        assert_eq!(coalesce(Some(&ins), 0, OutboxOp::Insert { row: Row::new() }), Err(CoalesceError::InsertOverExisting));
    }
}
