//! One page of a pull's keyset walk: where it starts ([`PageAt`], in `(sync_txid, key)`
//! order below the snapshot), and the answer as the server wrote it (rows kept as JSON
//! text, only the first and last built before the next page is asked for).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::local::local_row::{id_text, Row};
use crate::net::client::{enc, quoted, RequestError};
use crate::sync::error::SyncError;

/// An answer's rows as objects (anything else is a broken answer).
pub(super) fn objects(rows: Vec<Value>) -> Result<Vec<Row>, SyncError> {
    rows.into_iter()
        .map(|r| match r {
            Value::Object(m) => Ok(m),
            other => Err(RequestError::BadAnswer(format!("a row is not an object: {other}")).into()),
        })
        .collect()
}

/// One row of a pulled page, still the JSON text the server wrote.
pub(super) type RawRow = Box<serde_json::value::RawValue>;

/// A pulled row built (anything but an object is a broken answer).
pub(super) fn build(raw: &RawRow) -> Result<Row, SyncError> {
    serde_json::from_str(raw.get())
        .map_err(|e| RequestError::BadAnswer(format!("a row is not an object: {e}: {}", raw.get())).into())
}

/// A page's length with its first and last rows built: all the walk needs to ask for
/// the page after it.
pub(super) struct Ends {
    len: usize,
    first: Option<Row>,
    last: Option<Row>,
}

impl Ends {
    pub(super) fn as_refs(&self) -> (usize, Option<&Row>, Option<&Row>) {
        (self.len, self.first.as_ref(), self.last.as_ref())
    }
}

pub(super) fn ends(rows: &[RawRow]) -> Result<Ends, SyncError> {
    Ok(Ends {
        len: rows.len(),
        first: rows.first().map(build).transpose()?,
        last: rows.last().map(build).transpose()?,
    })
}

/// Where the next page of a table's keyset walk starts, in `(sync_txid, key)` order.
/// A restore keeps it with each page it stores, to go on from there after a kill
/// ([`super::resume`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum PageAt {
    /// The first page: transactions from this id on.
    From(i64),
    /// After this row (the last read), whose transaction has fewer rows left than a page.
    After(i64, String),
    /// Inside one transaction with more rows than a page: after this key.
    Within(i64, String),
    /// The transactions after this one.
    Past(i64),
}

impl PageAt {
    /// The request for this page: `base` (select and fixed filters) plus the keyset
    /// range below the snapshot's `upto`, ordered by `(sync_txid, key)`.
    pub(super) fn query(&self, base: &str, key: &str, upto: i64, page: usize) -> String {
        let k = enc(key);
        match self {
            PageAt::From(t) => format!("{base}&sync_txid=gte.{t}&sync_txid=lt.{upto}&order=sync_txid.asc,{k}.asc&limit={page}"),
            // `sync_txid >= t` keeps the index range; the `or` only trims the rows of
            // txid `t` already read, fewer than a page (else it is `Within`).
            PageAt::After(t, id) => format!(
                "{base}&sync_txid=gte.{t}&or={}&sync_txid=lt.{upto}&order=sync_txid.asc,{k}.asc&limit={page}",
                enc(&format!("(sync_txid.gt.{t},{key}.gt.{})", quoted(id)))
            ),
            // A plain filter takes the value as it is (quotes belong to lists and `or`).
            PageAt::Within(t, id) => format!("{base}&sync_txid=eq.{t}&{k}=gt.{}&order={k}.asc&limit={page}", enc(id)),
            PageAt::Past(t) => format!("{base}&sync_txid=gt.{t}&sync_txid=lt.{upto}&order=sync_txid.asc,{k}.asc&limit={page}"),
        }
    }

    /// Where the page after this page's answer starts (its length, first and last
    /// rows); `None`: the walk is done.
    pub(super) fn next(&self, (len, first, last): (usize, Option<&Row>, Option<&Row>), key: &str, page: usize, table: &str) -> Result<Option<PageAt>, SyncError> {
        let txid = |r: &Row| {
            r.get("sync_txid").and_then(Value::as_i64).ok_or_else(|| {
                SyncError::from(RequestError::BadAnswer(format!(
                    "rows of `{table}` have no sync_txid; run supasync.enable_sync('{table}')"
                )))
            })
        };
        Ok(match (first, last) {
            (Some(first), Some(last)) if len >= page => {
                let (t, id) = (txid(last)?, last.get(key).map(id_text).unwrap_or_default());
                // A second full page of one transaction's rows: it is large, so read
                // on inside it by key alone (an index seek; the `or` form rescans the
                // rows of it already read). After its first full page the `or` form
                // is the cheaper guess: a transaction of exactly a page (what a push
                // of a page of writes makes) then costs one request that rescans a
                // page of index entries instead of two, the second often empty.
                let inside = match self {
                    PageAt::After(a, _) | PageAt::Within(a, _) => *a == t,
                    PageAt::From(_) | PageAt::Past(_) => false,
                };
                Some(if inside && txid(first)? == t { PageAt::Within(t, id) } else { PageAt::After(t, id) })
            }
            // The transaction read by key is done; the ones after it remain.
            _ => match self {
                PageAt::Within(t, _) => Some(PageAt::Past(*t)),
                _ => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(text: &str) -> RawRow {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn a_page_needs_only_its_ends_built_to_ask_for_the_next() {
        let page: Vec<RawRow> = (0..3).map(|i| raw(&format!(r#"{{"id": "k{i}", "sync_txid": 7}}"#))).collect();
        let e = ends(&page).unwrap();
        let (len, first, last) = e.as_refs();
        assert_eq!((len, first.and_then(|r| r.get("id")), last.and_then(|r| r.get("id"))), (3, Some(&json!("k0")), Some(&json!("k2"))));
        // A full page of one transaction, first met: read on after its last row.
        let next = PageAt::From(0).next(e.as_refs(), "id", 3, "messages").unwrap();
        assert!(matches!(next, Some(PageAt::After(7, ref id)) if id == "k2"));
        // Met again full: it is large, read on inside it by key.
        let next = PageAt::After(7, "a".into()).next(e.as_refs(), "id", 3, "messages").unwrap();
        assert!(matches!(next, Some(PageAt::Within(7, ref id)) if id == "k2"));
        assert!(ends(&[]).unwrap().first.is_none());
    }

    #[test]
    fn a_row_that_is_not_an_object_is_a_broken_answer() {
        for bad in ["[1, 2]", "\"text\"", "null"] {
            let err = build(&raw(bad)).unwrap_err();
            assert!(err.to_string().contains("a row is not an object"), "{bad}: {err}");
        }
        let err = ends(&[raw(r#"{"id": 1}"#), raw("3")]).err().expect("the last row is broken");
        assert!(err.to_string().contains("a row is not an object"), "{err}");
    }
}
