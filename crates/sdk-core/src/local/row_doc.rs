//! A row's document: the JSON text a store keeps beside the row's key, shared by the
//! SQLite and IndexedDB stores. It leaves out what the key already holds (table and
//! local id), the status when it is `synced` (most rows), and, where the store keeps
//! the server id readable beside it, the server id too.
//!
//! **Why.** A restore encodes, writes and commits every byte of every row, so each
//! byte left out is paid for once per row of an account. In Firefox the size decides
//! more than time per byte: its IndexedDB keeps a record of more than about a
//! kilobyte on an overflow page of its own (SQLite's limit for a row of an index
//! B-tree), so a message just over the line takes a whole page on disk and in every
//! commit. An encrypted store keeps the server id only as a keyed hash beside the row,
//! so its documents keep the server id (see [`Doc::with_server_id`]).
//!
//! Documents written before this form (the whole [`LocalRow`]) still read: their extra
//! fields are ignored, their server id is taken when the store has none beside the row.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::local::local_row::{LocalRow, Overlay, Row, RowStatus};
use crate::local::new_row::NewRow;

/// The document written for a row (borrowing it: nothing is copied to encode).
#[derive(Serialize)]
struct DocOut<'a, M: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    server_id: Option<&'a Value>,
    mirror: M,
    #[serde(skip_serializing_if = "Option::is_none")]
    overlay: &'a Option<Overlay>,
    #[serde(skip_serializing_if = "is_synced")]
    status: &'a RowStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_pushed: &'a Option<Row>,
}

/// The document read back (an old document's `table` and `local_id` are ignored).
#[derive(Deserialize)]
struct DocIn {
    #[serde(default)]
    server_id: Option<Value>,
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

/// How a store writes its documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doc {
    /// Whether the document holds the row's server id: a store that keeps it only
    /// hashed (an encrypted IndexedDB store) needs it there.
    pub with_server_id: bool,
}

impl Doc {
    /// A row's document.
    pub fn encode(self, row: &LocalRow) -> serde_json::Result<String> {
        serde_json::to_string(&self.out(row, &row.mirror))
    }

    /// A new row's document: a row kept as the server's text is written around that
    /// text (its mirror is not encoded again).
    pub fn encode_new(self, new: &NewRow) -> serde_json::Result<String> {
        let Some(text) = &new.mirror_json else { return self.encode(&new.row) };
        if plain_synced(&new.row) {
            // What a restore writes for every row: the text with at most its server id
            // before it, not read again.
            return Ok(match self.server_id(&new.row) {
                Some(id) => format!("{{\"server_id\":{},\"mirror\":{text}}}", serde_json::to_string(id)?),
                None => format!("{{\"mirror\":{text}}}"),
            });
        }
        let mirror: &RawValue = serde_json::from_str(text)?;
        serde_json::to_string(&self.out(&new.row, mirror))
    }

    /// The server id the document holds, if it holds one.
    fn server_id(self, r: &LocalRow) -> Option<&Value> {
        r.server_id.as_ref().filter(|_| self.with_server_id)
    }

    fn out<'a, M: Serialize>(self, r: &'a LocalRow, mirror: M) -> DocOut<'a, M> {
        DocOut {
            server_id: self.server_id(r),
            mirror,
            overlay: &r.overlay,
            status: &r.status,
            last_pushed: &r.last_pushed,
        }
    }
}

/// A synced row with nothing over its mirror: its document is the mirror alone.
fn plain_synced(r: &LocalRow) -> bool {
    r.overlay.is_none() && r.last_pushed.is_none() && is_synced(&&r.status)
}

/// A document read, before it is made a row (see [`Parsed::into_row`]).
pub struct Parsed(DocIn);

/// Read a document.
pub fn parse(text: &str) -> serde_json::Result<Parsed> {
    serde_json::from_str(text).map(Parsed)
}

impl Parsed {
    /// The row, given its key and the server id its store keeps beside it (if any:
    /// else the document's is taken).
    pub fn into_row(self, table: String, local_id: String, server_id: Option<Value>) -> LocalRow {
        let doc = self.0;
        LocalRow {
            table,
            local_id,
            server_id: server_id.or(doc.server_id).filter(|v| !v.is_null()),
            mirror: doc.mirror,
            overlay: doc.overlay,
            status: doc.status,
            last_pushed: doc.last_pushed,
        }
    }
}

/// A row from its key, the server id its store keeps beside it (if any) and its
/// document: [`parse`] then [`Parsed::into_row`].
pub fn decode(table: String, local_id: String, server_id: Option<Value>, text: &str) -> serde_json::Result<LocalRow> {
    Ok(parse(text)?.into_row(table, local_id, server_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BESIDE: Doc = Doc { with_server_id: false };
    const INSIDE: Doc = Doc { with_server_id: true };

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

    fn read(doc: &str, server_id: Option<Value>) -> LocalRow {
        decode("messages".into(), "L1".into(), server_id, doc).unwrap()
    }

    #[test]
    fn a_synced_row_stores_only_its_mirror_and_reads_back_whole() {
        let r = row(RowStatus::Synced, None);
        let doc = BESIDE.encode(&r).unwrap();
        assert_eq!(doc, r#"{"mirror":{"id":"5f0c","body":"hi"}}"#, "the mirror as the server gave it, keys in its order");
        assert_eq!(read(&doc, Some(json!("5f0c"))), r);
    }

    #[test]
    fn a_document_with_the_server_id_reads_without_one_beside_it() {
        let r = row(RowStatus::Synced, None);
        let doc = INSIDE.encode(&r).unwrap();
        assert_eq!(doc, r#"{"server_id":"5f0c","mirror":{"id":"5f0c","body":"hi"}}"#);
        assert_eq!(read(&doc, None), r);
        let fresh = LocalRow { server_id: None, mirror: None, status: RowStatus::Pending, ..r };
        assert_eq!(read(&INSIDE.encode(&fresh).unwrap(), None), fresh, "no server id yet: none read");
    }

    #[test]
    fn a_rejected_row_with_an_overlay_keeps_both() {
        let fields = json!({"body": "bye"}).as_object().cloned().unwrap_or_default();
        let r = row(RowStatus::Rejected { reason: "no".into() }, Some(Overlay::Fields { fields }));
        assert_eq!(read(&BESIDE.encode(&r).unwrap(), Some(json!("5f0c"))), r);
        assert_eq!(read(&INSIDE.encode(&r).unwrap(), None), r);
    }

    #[test]
    fn a_new_row_kept_as_text_is_written_around_it() {
        let r = row(RowStatus::Synced, None);
        let text = r#"{"id":"5f0c","body":"hi"}"#.to_string();
        let new = NewRow { row: LocalRow { mirror: None, ..r.clone() }, mirror_json: Some(text) };
        assert_eq!(BESIDE.encode_new(&new).unwrap(), r#"{"mirror":{"id":"5f0c","body":"hi"}}"#);
        assert_eq!(read(&INSIDE.encode_new(&new).unwrap(), None), r);
        let pending = NewRow { row: LocalRow { status: RowStatus::Pending, ..new.row.clone() }, ..new };
        assert_eq!(read(&BESIDE.encode_new(&pending).unwrap(), Some(json!("5f0c"))), LocalRow { status: RowStatus::Pending, ..r });
    }

    #[test]
    fn a_document_of_the_whole_row_still_reads() {
        let r = row(RowStatus::Pending, None);
        let old = serde_json::to_string(&r).unwrap();
        assert!(old.contains("\"table\""), "the old form holds the whole row: {old}");
        assert_eq!(read(&old, Some(json!("5f0c"))), r);
        assert_eq!(read(&old, None), r, "its own server id when none is beside it");
    }

    #[test]
    fn the_server_id_beside_the_row_wins_over_the_documents() {
        let old = serde_json::to_string(&row(RowStatus::Synced, None)).unwrap();
        assert_eq!(read(&old, Some(json!(7))).server_id, Some(json!(7)));
    }
}
