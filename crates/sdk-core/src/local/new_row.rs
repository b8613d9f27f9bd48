//! A row new to the store ([`crate::local::store::WriteBatch::new_rows`]), and the
//! restore's way of keeping a server row's JSON text as its mirror.
//!
//! **Why.** A restore writes every row of an account once, straight from the server's
//! answer. Building each row's JSON into a map and encoding the map again as the
//! store's document was about a third of the device's work in a 20k-row restore
//! (parsing 17%, encoding 10%, freeing the maps 4% of the pull's CPU, measured with
//! `perf`). So a restored row keeps the server's text ([`NewRow::mirror_json`]) with
//! only its references rewritten to local ids, and builds just the columns a store
//! reads to file it: its key, its local id, its references and the columns of the
//! table's indexes ([`RowText::pick`]). A store writes the text as the row's mirror
//! (`row_doc::Doc::encode_new` writes the document around it) and takes
//! everything else from [`NewRow::row`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::local::local_row::{LocalRow, Row};

/// A row new to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRow {
    /// The row. With [`NewRow::mirror_json`], its mirror holds only the columns a store
    /// reads to file it (see the module's docs); the text is the whole mirror.
    pub row: LocalRow,
    /// The whole mirror as JSON text (an object), when the row was kept as the server
    /// wrote it.
    pub mirror_json: Option<String>,
}

impl From<LocalRow> for NewRow {
    fn from(row: LocalRow) -> NewRow {
        NewRow { row, mirror_json: None }
    }
}

impl NewRow {
    /// The row with its whole mirror built (a store that keeps rows as values).
    pub fn into_row(self) -> serde_json::Result<LocalRow> {
        let NewRow { mut row, mirror_json } = self;
        if let Some(text) = mirror_json {
            row.mirror = Some(serde_json::from_str(&text)?);
        }
        Ok(row)
    }
}

/// A JSON object's fields as their text, in the object's order: a server row read
/// without building it.
pub struct RowText<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RowText<'a> {
    /// Read an object's fields (anything else is an error).
    pub fn parse(text: &'a str) -> serde_json::Result<RowText<'a>> {
        serde_json::from_str(text)
    }

    /// The row of just the fields `wanted` says yes to, built.
    pub fn pick(&self, wanted: impl Fn(&str) -> bool) -> serde_json::Result<Row> {
        let mut row = Row::new();
        for (k, v) in &self.fields {
            if wanted(k) {
                row.insert(k.to_string(), serde_json::from_str(v.get())?);
            }
        }
        Ok(row)
    }

    /// The object as JSON text, the fields `replaced` says yes to written from `row`
    /// (the others as they came).
    pub fn write(&self, row: &Row, replaced: impl Fn(&str) -> bool) -> serde_json::Result<String> {
        let mut out = String::with_capacity(self.fields.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + 2);
        out.push('{');
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if k.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
                out.push('"');
                out.push_str(k);
                out.push('"');
            } else {
                out.push_str(&serde_json::to_string(k.as_ref())?);
            }
            out.push(':');
            match Some(k.as_ref()).filter(|k| replaced(k)).and_then(|k| row.get(k)) {
                Some(value) => out.push_str(&serde_json::to_string(value)?),
                None => out.push_str(v.get()),
            }
        }
        out.push('}');
        Ok(out)
    }
}

/// A field's name, borrowed from the text where it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for RowText<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = RowText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RowText<'de>, A::Error> {
                let mut fields = Vec::with_capacity(m.size_hint().unwrap_or(16));
                while let Some((Key(k), v)) = m.next_entry::<Key<'de>, &'de RawValue>()? {
                    fields.push((k, v));
                }
                Ok(RowText { fields })
            }
        }
        d.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::local_row::RowStatus;
    use serde_json::json;

    #[test]
    fn a_row_kept_as_text_writes_the_same_document_as_the_row_built() {
        let text = r#"{"id": "s1", "body": "a \"quoted\"\nline é", "conversation_id": "c-server", "n": 1.5, "meta": {"a": [1, null]}, "we\u0069rd": true}"#;
        let fields = RowText::parse(text).unwrap();
        let mut picked = fields.pick(|c| c == "id" || c == "conversation_id").unwrap();
        assert_eq!(picked, *json!({"id": "s1", "conversation_id": "c-server"}).as_object().unwrap());
        picked.insert("conversation_id".into(), json!("c-local"));
        let mirror = fields.write(&picked, |c| c == "conversation_id").unwrap();
        let mut built: Row = serde_json::from_str(text).unwrap();
        built.insert("conversation_id".into(), json!("c-local"));
        assert_eq!(serde_json::from_str::<Row>(&mirror).unwrap(), built, "{mirror}");
        assert_eq!(serde_json::from_str::<Row>(&mirror).unwrap().keys().collect::<Vec<_>>(), built.keys().collect::<Vec<_>>(), "fields keep their order");

        let row = LocalRow {
            table: "messages".into(),
            local_id: "L1".into(),
            server_id: Some(json!("s1")),
            mirror: Some(picked),
            overlay: None,
            status: RowStatus::Synced,
            last_pushed: None,
        };
        let new = NewRow { row: row.clone(), mirror_json: Some(mirror) };
        let whole = LocalRow { mirror: Some(built), ..row };
        assert_eq!(new.into_row().unwrap(), whole);
        assert_eq!(NewRow::from(whole.clone()).into_row().unwrap(), whole);
    }

    #[test]
    fn text_that_is_not_an_object_is_an_error() {
        for bad in ["[1]", "\"x\"", "{\"a\": }", "{\"a\": 1"] {
            assert!(RowText::parse(bad).is_err(), "{bad}");
        }
    }
}
