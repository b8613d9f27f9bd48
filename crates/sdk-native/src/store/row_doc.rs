//! A row as the `rows` table stores it: the key columns (`tbl`, `local_id`,
//! `server_id`) beside the row's document (`supasync_core::row_doc`, shared with the
//! browser's store), which leaves out what the columns hold and a `synced` status.
//!
//! Files written before format 4 hold the whole [`LocalRow`] in the document; its extra
//! fields are ignored on reading, and the columns are the truth.

use serde_json::Value;
use supasync_core::local_row::LocalRow;
use supasync_core::new_row::NewRow;
use supasync_core::row_doc::{self, Doc};
use supasync_core::store::StoreError;

/// The `server_id` column holds the server id, so documents leave it out.
const DOC: Doc = Doc { with_server_id: false };

/// The `server_id` column's text for a row: its server id as JSON (`"…"` or a number).
pub fn server_id_text(row: &LocalRow) -> Result<Option<String>, StoreError> {
    row.server_id.as_ref().map(|v| serde_json::to_string(v).map_err(cannot_encode)).transpose()
}

fn cannot_encode(e: serde_json::Error) -> StoreError {
    StoreError::Io(format!("cannot encode: {e}"))
}

/// The `data` column's text for a row.
pub fn encode(row: &LocalRow) -> Result<String, StoreError> {
    DOC.encode(row).map_err(cannot_encode)
}

/// The `data` column's text for a new row (a row kept as the server's text is
/// written around it).
pub fn encode_new(new: &NewRow) -> Result<String, StoreError> {
    DOC.encode_new(new).map_err(cannot_encode)
}

/// A row from its four columns.
pub fn decode(table: String, local_id: String, server_id: Option<String>, data: &str) -> Result<LocalRow, StoreError> {
    let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("{what} of row `{local_id}` in `{table}`: {e}"));
    let doc = row_doc::parse(data).map_err(|e| corrupt("document", e))?;
    let server_id: Option<Value> = server_id
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| corrupt("server id", e))?;
    Ok(doc.into_row(table, local_id, server_id))
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

    #[test]
    fn a_garbled_server_id_is_corrupt_not_a_panic() {
        let err = decode("messages".into(), "L1".into(), Some("{no".into()), r#"{"mirror":null}"#).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains("server id of row `L1`")), "{err:?}");
    }

    #[test]
    fn a_garbled_document_is_corrupt_and_names_its_row() {
        let err = decode("messages".into(), "L1".into(), None, "{no").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains("document of row `L1` in `messages`")), "{err:?}");
    }
}
