//! The local model of one row (DESIGN §2.2): the **mirror** (the last version the server
//! confirmed, with references mapped to local ids), the **overlay** (local changes the
//! server has not confirmed yet), the server id once known, and a status. What queries
//! see is the overlay over the mirror. Rolling back is dropping the overlay; a server
//! version never overwrites a pending overlay, it replaces the mirror underneath.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A row as the app and the server see it: a JSON object.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// Where a row stands with the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RowStatus {
    /// What the app sees is what the server has.
    Synced,
    /// Local changes wait in the outbox.
    Pending,
    /// Local changes are being pushed right now.
    Syncing,
    /// The server refused the last local change; the reason says why.
    Rejected { reason: String },
}

/// Local changes on top of the mirror.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Overlay {
    /// Fields set locally (the whole row for a local insert).
    Fields { fields: Row },
    /// Deleted locally.
    Deleted,
}

/// One row as a device holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalRow {
    pub table: String,
    pub local_id: String,
    pub server_id: Option<Value>,
    pub mirror: Option<Row>,
    /// Absent when there is none (most rows): stores keep smaller documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
    pub status: RowStatus,
    /// Field values this device pushed and the server confirmed, until a pull shows
    /// them overwritten by another write (then the history records a conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pushed: Option<Row>,
}

/// A server id as text, the way URLs and tombstones carry it.
pub fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The version of a server row: the SQL kit's `sync_txid`, the id of the transaction
/// that wrote it last (ids only grow). Realtime sends it as a number or as text.
pub fn sync_txid(row: &Row) -> Option<i64> {
    match row.get("sync_txid")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The local key derived from a server id given as text: `srv:<id>`.
pub fn server_key(id_text: &str) -> String {
    format!("srv:{id_text}")
}

impl LocalRow {
    /// The row the app sees (overlay over mirror), with its local id; `None` when the row
    /// is deleted locally or has no content.
    pub fn visible(&self, local_id_column: &str) -> Option<Row> {
        let mut out = match (&self.mirror, &self.overlay) {
            (_, Some(Overlay::Deleted)) => return None,
            (None, None) => return None,
            (Some(m), None) => m.clone(),
            (None, Some(Overlay::Fields { fields })) => fields.clone(),
            (Some(m), Some(Overlay::Fields { fields })) => {
                let mut m = m.clone();
                for (k, v) in fields {
                    m.insert(k.clone(), v.clone());
                }
                m
            }
        };
        out.insert(local_id_column.to_string(), Value::String(self.local_id.clone()));
        Some(out)
    }

    /// Whether local changes wait to be confirmed.
    pub fn has_local_changes(&self) -> bool {
        self.overlay.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Row {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn overlay_wins_over_mirror_and_delete_hides() {
        let mut r = LocalRow {
            table: "t".into(),
            local_id: "L".into(),
            server_id: Some(json!(1)),
            mirror: Some(obj(json!({"a": 1, "b": 1}))),
            overlay: Some(Overlay::Fields { fields: obj(json!({"b": 2})) }),
            status: RowStatus::Pending,
            last_pushed: None,
        };
        assert_eq!(Value::Object(r.visible("local_id").unwrap()), json!({"a": 1, "b": 2, "local_id": "L"}));
        r.overlay = None;
        assert_eq!(Value::Object(r.visible("local_id").unwrap()), json!({"a": 1, "b": 1, "local_id": "L"}));
        r.overlay = Some(Overlay::Deleted);
        assert_eq!(r.visible("local_id"), None);
    }
}
