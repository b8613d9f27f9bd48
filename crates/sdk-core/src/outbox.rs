//! The outbox: local writes waiting to reach the server, in order (DESIGN §2.4).
//!
//! Each local write commits its row change and its outbox entry in one store batch, so a
//! crash or a closed tab loses nothing. Writes to a row coalesce while they wait: an
//! insert then updates is still one insert; updates merge into one PATCH of the changed
//! fields; an update then a delete is a delete; and an insert deleted before it was
//! pushed is never sent at all. An entry already being pushed is never merged into: the
//! new write queues behind it. Nor is an entry whose push was already tried: the server
//! may have committed it with the answer lost, so merging would lose the new write (a
//! retried insert is ignored as a duplicate, with whatever fields were merged into it)
//! or leave the server's row behind forever (an insert "cancelled" by a delete).

use serde::{Deserialize, Serialize};

use crate::Row;

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
}

impl OutboxEntry {
    /// A fresh entry with the `seq` its store assigned.
    pub fn new(seq: u64, n: crate::store::NewOutboxEntry) -> OutboxEntry {
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
        }
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

/// Combine `new` with `waiting` (the row's last entry, if any).
pub fn coalesce(waiting: Option<&OutboxEntry>, new: OutboxOp) -> Result<Coalesced, CoalesceError> {
    use OutboxOp::*;
    let Some(w) = waiting else {
        return Ok(Coalesced::Append(new));
    };
    match (&w.op, &new) {
        (Delete, _) => return Err(CoalesceError::AfterDelete),
        (_, Insert { .. }) => return Err(CoalesceError::InsertOverExisting),
        _ => {}
    }
    if w.in_flight || w.rejected.is_some() || w.attempts > 0 {
        return Ok(Coalesced::Append(new));
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
            crate::store::NewOutboxEntry {
                table: "t".into(),
                local_id: "L".into(),
                op: OutboxOp::Insert { row: Row::new() },
                created_at_ms: 0,
            },
        );
        assert_eq!(coalesce(Some(&insert), OutboxOp::Delete), Ok(Coalesced::Cancel));
        insert.attempts = 1; // the answer was lost: the server may have the row
        assert_eq!(coalesce(Some(&insert), OutboxOp::Delete), Ok(Coalesced::Append(OutboxOp::Delete)));
        let upd = OutboxOp::Update { fields: row(json!({"a": 1})) };
        assert_eq!(coalesce(Some(&insert), upd.clone()), Ok(Coalesced::Append(upd)));
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
        }
    }

    #[test]
    fn writes_to_one_row_coalesce() {
        let ins = entry(OutboxOp::Insert { row: row(json!({"a": 1, "b": 1})) });
        assert_eq!(
            coalesce(Some(&ins), OutboxOp::Update { fields: row(json!({"b": 2})) }),
            Ok(Coalesced::Replace(OutboxOp::Insert { row: row(json!({"a": 1, "b": 2})) }))
        );
        assert_eq!(coalesce(Some(&ins), OutboxOp::Delete), Ok(Coalesced::Cancel));
        let upd = entry(OutboxOp::Update { fields: row(json!({"a": 1})) });
        assert_eq!(
            coalesce(Some(&upd), OutboxOp::Update { fields: row(json!({"b": 2})) }),
            Ok(Coalesced::Replace(OutboxOp::Update { fields: row(json!({"a": 1, "b": 2})) }))
        );
        assert_eq!(coalesce(Some(&upd), OutboxOp::Delete), Ok(Coalesced::Replace(OutboxOp::Delete)));
        assert_eq!(coalesce(None, OutboxOp::Delete), Ok(Coalesced::Append(OutboxOp::Delete)));
    }

    #[test]
    fn in_flight_entries_are_never_merged_into() {
        let mut ins = entry(OutboxOp::Insert { row: row(json!({"a": 1})) });
        ins.in_flight = true;
        let upd = OutboxOp::Update { fields: row(json!({"a": 2})) };
        assert_eq!(coalesce(Some(&ins), upd.clone()), Ok(Coalesced::Append(upd)));
        assert_eq!(coalesce(Some(&ins), OutboxOp::Delete), Ok(Coalesced::Append(OutboxOp::Delete)));
    }

    #[test]
    fn impossible_sequences_are_errors() {
        let del = entry(OutboxOp::Delete);
        assert_eq!(coalesce(Some(&del), OutboxOp::Update { fields: Row::new() }), Err(CoalesceError::AfterDelete));
        let ins = entry(OutboxOp::Insert { row: Row::new() });
        assert_eq!(coalesce(Some(&ins), OutboxOp::Insert { row: Row::new() }), Err(CoalesceError::InsertOverExisting));
    }
}
