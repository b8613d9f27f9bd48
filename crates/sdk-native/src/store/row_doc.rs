//! A row as the `rows` table stores it: the key columns (`tbl`, `local_id`,
//! `server_id`) beside a JSON document of the rest (mirror, overlay, status, pushed
//! values). The document leaves out what the columns already hold, and the status when
//! it is `synced` (most rows): a restore encodes, writes and checkpoints every byte of
//! it, so each byte left out is paid for a million times on a large replica.
//!
//! Files written before format 4 hold the whole [`LocalRow`] in the document; its extra
//! fields are ignored on reading, and the columns are the truth.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use supasync_core::local_row::{LocalRow, Overlay, RowStatus};
use supasync_core::new_row::NewRow;
use supasync_core::store::StoreError;
use supasync_core::Row;

/// The document written for a row (borrowing it: nothing is copied to encode).
#[derive(Serialize)]
struct DocOut<'a, M: Serialize> {
    mirror: M,
    #[serde(skip_serializing_if = "Option::is_none")]
    overlay: &'a Option<Overlay>,
    #[serde(skip_serializing_if = "is_synced")]
    status: &'a RowStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_pushed: &'a Option<Row>,
}

/// The document read back (old documents' `table`, `local_id`, `server_id` are ignored).
#[derive(Deserialize)]
struct DocIn {
    mirror: Option<Row>,
    #[serde(default)]
    overlay: Option<Overlay>,
    #[serde(default = "synced")]
    status: RowStatus,
    #[serde(default)]
    last_pushed: Option<Row>,
}

fn is_synced(s: &&RowStatus) -> bool {
    matches!(s, RowStatus::Synced)
}

fn synced() -> RowStatus {
    RowStatus::Synced
}

/// The `server_id` column's text for a row: its server id as JSON (`"…"` or a number).
pub fn server_id_text(row: &LocalRow) -> Result<Option<String>, StoreError> {
    row.server_id.as_ref().map(encode_json).transpose()
}

/// The `data` column's text for a row.
pub fn encode(row: &LocalRow) -> Result<String, StoreError> {
    encode_json(&DocOut {
        mirror: &row.mirror,
        overlay: &row.overlay,
        status: &row.status,
        last_pushed: &row.last_pushed,
    })
}

/// The `data` column's text for a new row: a row kept as the server's text is
/// written around it (its mirror is not encoded again).
pub fn encode_new(new: &NewRow) -> Result<String, StoreError> {
    let Some(text) = &new.mirror_json else { return encode(&new.row) };
    let r = &new.row;
    if r.overlay.is_none() && r.last_pushed.is_none() && is_synced(&&r.status) {
        return Ok(format!("{{\"mirror\":{text}}}"));
    }
    let mirror: &RawValue = serde_json::from_str(text).map_err(|e| StoreError::Io(format!("cannot encode: {e}")))?;
    encode_json(&DocOut { mirror, overlay: &r.overlay, status: &r.status, last_pushed: &r.last_pushed })
}

fn encode_json<T: Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Io(format!("cannot encode: {e}")))
}

/// A row from its four columns.
pub fn decode(table: String, local_id: String, server_id: Option<String>, data: &str) -> Result<LocalRow, StoreError> {
    let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("{what} of row `{local_id}` in `{table}`: {e}"));
    let doc: DocIn = serde_json::from_str(data).map_err(|e| corrupt("document", e))?;
    let server_id: Option<Value> = server_id
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| corrupt("server id", e))?;
    Ok(LocalRow {
        table,
        local_id,
        server_id,
        mirror: doc.mirror,
        overlay: doc.overlay,
        status: doc.status,
        last_pushed: doc.last_pushed,
    })
}

/// The columns [`decode`] reads, in its order, for a `SELECT` on `rows`.
pub const COLUMNS: &str = "tbl, local_id, server_id, data";

/// Decode the current row of a query that selected [`COLUMNS`] first.
pub fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LocalRow, StoreError>> {
    let data: String = r.get(3)?;
    Ok(decode(r.get(0)?, r.get(1)?, r.get(2)?, &data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(status: RowStatus, overlay: Option<Overlay>) -> LocalRow {
        LocalRow {
            table: "messages".into(),
            local_id: "L1".into(),
            server_id: Some(json!("5f0c")),
            mirror: json!({"id": "5f0c", "body": "hi"}).as_object().cloned(),
            overlay,
            status,
            last_pushed: None,
        }
    }

    #[test]
    fn a_synced_row_stores_only_its_mirror_and_reads_back_whole() {
        let r = row(RowStatus::Synced, None);
        let doc = encode(&r).unwrap();
        assert_eq!(doc, r#"{"mirror":{"id":"5f0c","body":"hi"}}"#, "the mirror as the server gave it, keys in its order");
        assert_eq!(decode("messages".into(), "L1".into(), server_id_text(&r).unwrap(), &doc).unwrap(), r);
    }

    #[test]
    fn a_rejected_row_with_an_overlay_keeps_both() {
        let fields = json!({"body": "bye"}).as_object().cloned().unwrap_or_default();
        let r = row(RowStatus::Rejected { reason: "no".into() }, Some(Overlay::Fields { fields }));
        let doc = encode(&r).unwrap();
        assert_eq!(decode("messages".into(), "L1".into(), server_id_text(&r).unwrap(), &doc).unwrap(), r);
    }

    #[test]
    fn a_document_from_before_format_4_still_reads() {
        let r = row(RowStatus::Pending, None);
        let old = serde_json::to_string(&r).unwrap();
        assert!(old.contains("\"table\""), "the old form holds the whole row: {old}");
        assert_eq!(decode("messages".into(), "L1".into(), server_id_text(&r).unwrap(), &old).unwrap(), r);
    }

    #[test]
    fn a_garbled_server_id_is_corrupt_not_a_panic() {
        let err = decode("messages".into(), "L1".into(), Some("{no".into()), r#"{"mirror":null}"#).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains("server id of row `L1`")), "{err:?}");
    }
}
