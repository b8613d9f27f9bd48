//! One page of a pull's keyset walk: where it starts ([`PageAt`], in `(sync_txid, key)`
//! order below the snapshot, or for a restore `(sync_txid, local id, key)`: see
//! [`WalkOrder`]), and the answer as the server wrote it (rows kept as JSON
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
    serde_json::from_str(raw.get()).map_err(|e| broken_row(e, raw))
}

/// The error for a pulled row that is not an object.
pub(super) fn broken_row(e: serde_json::Error, raw: &RawRow) -> SyncError {
    RequestError::BadAnswer(format!("a row is not an object: {e}: {}", raw.get())).into()
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

/// How a walk orders the rows of one transaction: by primary key, or by local id and
/// then primary key (rows without a local id, made on the server, last).
///
/// A restore walks by local id where the server has the index for it (the SQL kit's
/// `<table>_supasync_restore`, named by `supasync_snapshot()`): that is the order the
/// device's store keeps rows in, so a million rows written in one server transaction
/// are appended to the store's B-trees instead of written all over them (measured in
/// `bench/experiments/fill_order.py`: by server id, rows per second fell from 77k at
/// 10k rows to 15k at 1M; by local id they held). Other walks keep the primary key.
#[derive(Debug, Clone, Copy)]
pub(super) struct WalkOrder<'a> {
    pub key: &'a str,
    pub local_id: &'a str,
    /// A walk's pages that start a transaction afresh ([`PageAt::From`], [`PageAt::Past`])
    /// read it by local id; a page inside one reads it the way its [`RowAt`] says.
    pub by_local_id: bool,
}

/// The last row read inside a transaction, in the order its walk reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum RowAt {
    /// By primary key (a mark of a build before walks by local id reads as this).
    Key(String),
    /// By local id (`None`: the row has none), then primary key.
    Local { local_id: Option<String>, key: String },
}

impl From<&str> for RowAt {
    fn from(key: &str) -> RowAt {
        RowAt::Key(key.to_string())
    }
}

/// Where the next page of a table's keyset walk starts, in `(sync_txid, row)` order.
/// A restore keeps it with each page it stores, to go on from there after a kill
/// ([`super::resume`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum PageAt {
    /// The first page: transactions from this id on.
    From(i64),
    /// After this row (the last read), whose transaction has fewer rows left than a page.
    After(i64, RowAt),
    /// Inside one transaction with more rows than a page: after this row.
    Within(i64, RowAt),
    /// Inside one transaction read by local id, its rows without one (they come last):
    /// after this key (`None`: from the first).
    Unnamed(i64, Option<String>),
    /// The transactions after this one.
    Past(i64),
}

impl PageAt {
    /// Whether this page reads its transaction by local id.
    fn by_local_id(&self, order: &WalkOrder) -> bool {
        match self {
            PageAt::From(_) | PageAt::Past(_) => order.by_local_id,
            PageAt::After(_, r) | PageAt::Within(_, r) => matches!(r, RowAt::Local { .. }),
            PageAt::Unnamed(..) => true,
        }
    }

    /// The request for this page: `base` (select and fixed filters) plus the keyset
    /// range below the snapshot's `upto`, in the walk's order.
    pub(super) fn query(&self, base: &str, order: &WalkOrder, upto: i64, page: usize) -> String {
        let (k, l) = (enc(order.key), enc(order.local_id));
        let (key, local) = (order.key, order.local_id);
        let by = if self.by_local_id(order) { format!("sync_txid.asc,{l}.asc,{k}.asc") } else { format!("sync_txid.asc,{k}.asc") };
        let below = format!("sync_txid=lt.{upto}&order={by}&limit={page}");
        match self {
            PageAt::From(t) => format!("{base}&sync_txid=gte.{t}&{below}"),
            PageAt::Past(t) => format!("{base}&sync_txid=gt.{t}&{below}"),
            // `sync_txid >= t` keeps the index range; the `or` only trims the rows of
            // txid `t` already read, fewer than a page (else it is `Within`).
            PageAt::After(t, row) => {
                let rest = match row {
                    RowAt::Key(id) => format!("{key}.gt.{}", quoted(id)),
                    // Nulls come last: after a named row, the rest of the named ones
                    // and every unnamed one.
                    RowAt::Local { local_id: Some(lid), key: id } => {
                        format!("{local}.gt.{},{local}.is.null,and({local}.eq.{},{key}.gt.{})", quoted(lid), quoted(lid), quoted(id))
                    }
                    RowAt::Local { local_id: None, key: id } => format!("and({local}.is.null,{key}.gt.{})", quoted(id)),
                };
                format!("{base}&sync_txid=gte.{t}&or={}&{below}", enc(&format!("(sync_txid.gt.{t},{rest})")))
            }
            // A plain filter takes the value as it is (quotes belong to lists and `or`).
            PageAt::Within(t, RowAt::Key(id)) => format!("{base}&sync_txid=eq.{t}&{k}=gt.{}&order={k}.asc&limit={page}", enc(id)),
            // An index seek to the local id, then the `or` trims its rows already read
            // (one, unless others share the local id).
            PageAt::Within(t, RowAt::Local { local_id: Some(lid), key: id }) => format!(
                "{base}&sync_txid=eq.{t}&{l}=gte.{}&or={}&order={l}.asc,{k}.asc&limit={page}",
                enc(lid),
                enc(&format!("({local}.gt.{},{key}.gt.{})", quoted(lid), quoted(id)))
            ),
            PageAt::Within(t, RowAt::Local { local_id: None, key: id }) => PageAt::Unnamed(*t, Some(id.clone())).query(base, order, upto, page),
            PageAt::Unnamed(t, after) => {
                let after = after.as_ref().map(|id| format!("&{k}=gt.{}", enc(id))).unwrap_or_default();
                format!("{base}&sync_txid=eq.{t}&{l}=is.null{after}&order={k}.asc&limit={page}")
            }
        }
    }

    /// Where the page after this page's answer starts (its length, first and last
    /// rows); `None`: the walk is done.
    pub(super) fn next(&self, (len, first, last): (usize, Option<&Row>, Option<&Row>), order: &WalkOrder, page: usize, table: &str) -> Result<Option<PageAt>, SyncError> {
        let txid = |r: &Row| {
            r.get("sync_txid").and_then(Value::as_i64).ok_or_else(|| {
                SyncError::from(RequestError::BadAnswer(format!(
                    "rows of `{table}` have no sync_txid; run supasync.enable_sync('{table}')"
                )))
            })
        };
        let by_local_id = self.by_local_id(order);
        let row_at = |r: &Row| {
            let key = r.get(order.key).map(id_text).unwrap_or_default();
            if by_local_id {
                RowAt::Local { local_id: r.get(order.local_id).filter(|v| !v.is_null()).map(id_text), key }
            } else {
                RowAt::Key(key)
            }
        };
        Ok(match (first, last) {
            (Some(first), Some(last)) if len >= page => {
                let (t, row) = (txid(last)?, row_at(last));
                // A second full page of one transaction's rows: it is large, so read
                // on inside it by key alone (an index seek; the `or` form rescans the
                // rows of it already read). After its first full page the `or` form
                // is the cheaper guess: a transaction of exactly a page (what a push
                // of a page of writes makes) then costs one request that rescans a
                // page of index entries instead of two, the second often empty.
                let inside = match self {
                    PageAt::After(a, _) | PageAt::Within(a, _) | PageAt::Unnamed(a, _) => *a == t,
                    PageAt::From(_) | PageAt::Past(_) => false,
                };
                Some(match row {
                    RowAt::Local { local_id: None, key } if inside && txid(first)? == t => PageAt::Unnamed(t, Some(key)),
                    row if inside && txid(first)? == t => PageAt::Within(t, row),
                    row => PageAt::After(t, row),
                })
            }
            // The transaction read by key is done; the ones after it remain (read by
            // local id, its rows without one first).
            _ => match self {
                PageAt::Within(t, RowAt::Local { local_id: Some(_), .. }) => Some(PageAt::Unnamed(*t, None)),
                PageAt::Within(t, _) | PageAt::Unnamed(t, _) => Some(PageAt::Past(*t)),
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
        let by_key = WalkOrder { key: "id", local_id: "local_id", by_local_id: false };
        let next = PageAt::From(0).next(e.as_refs(), &by_key, 3, "messages").unwrap();
        assert_eq!(next, Some(PageAt::After(7, "k2".into())));
        // Met again full: it is large, read on inside it by key.
        let next = PageAt::After(7, "a".into()).next(e.as_refs(), &by_key, 3, "messages").unwrap();
        assert_eq!(next, Some(PageAt::Within(7, "k2".into())));
        assert!(ends(&[]).unwrap().first.is_none());
    }

    #[test]
    fn a_transaction_read_by_local_id_goes_on_to_its_rows_without_one_then_past_it() {
        let order = WalkOrder { key: "id", local_id: "local_id", by_local_id: true };
        let rows = |l: &[Option<&str>]| -> Vec<RawRow> {
            l.iter().enumerate().map(|(i, l)| raw(&json!({"id": format!("k{i}"), "local_id": l, "sync_txid": 7}).to_string())).collect()
        };
        let named = RowAt::Local { local_id: Some("b".into()), key: "k2".into() };
        // A full page read by local id, first met: after its last row, the `or` form.
        let full = rows(&[Some("a"), Some("a"), Some("b")]);
        let next = PageAt::From(0).next(ends(&full).unwrap().as_refs(), &order, 3, "messages").unwrap();
        assert_eq!(next, Some(PageAt::After(7, named.clone())));
        let q = next.clone().unwrap().query("select=*", &order, 9, 3);
        assert!(q.contains("order=sync_txid.asc,local_id.asc,id.asc"), "{q}");
        assert!(q.contains(&enc(r#"(sync_txid.gt.7,local_id.gt."b",local_id.is.null,and(local_id.eq."b",id.gt."k2"))"#)), "{q}");
        // Met again full: inside it, an index seek to the local id.
        let next = next.unwrap().next(ends(&full).unwrap().as_refs(), &order, 3, "messages").unwrap();
        assert_eq!(next, Some(PageAt::Within(7, named.clone())));
        let q = next.clone().unwrap().query("select=*", &order, 9, 3);
        assert!(q.starts_with("select=*&sync_txid=eq.7&local_id=gte.b&or="), "{q}");
        // Its named rows run out: its rows without a local id (last in its order) next.
        let short = rows(&[Some("c")]);
        let next = next.unwrap().next(ends(&short).unwrap().as_refs(), &order, 3, "messages").unwrap();
        assert_eq!(next, Some(PageAt::Unnamed(7, None)));
        assert_eq!(next.clone().unwrap().query("select=*", &order, 9, 3), "select=*&sync_txid=eq.7&local_id=is.null&order=id.asc&limit=3");
        let unnamed = rows(&[None, None, None]);
        let next = next.unwrap().next(ends(&unnamed).unwrap().as_refs(), &order, 3, "messages").unwrap();
        assert_eq!(next, Some(PageAt::Unnamed(7, Some("k2".into()))));
        assert!(next.clone().unwrap().query("select=*", &order, 9, 3).contains("&local_id=is.null&id=gt.k2&"));
        // Those run out too: the transactions after it.
        let next = next.unwrap().next(ends(&[]).unwrap().as_refs(), &order, 3, "messages").unwrap();
        assert_eq!(next, Some(PageAt::Past(7)));
        // A full page whose last row has no local id, first met: after it, among the unnamed.
        let next = PageAt::Past(3).next(ends(&rows(&[Some("z"), None, None])).unwrap().as_refs(), &order, 3, "messages").unwrap();
        assert_eq!(next, Some(PageAt::After(7, RowAt::Local { local_id: None, key: "k2".into() })));
        assert!(next.unwrap().query("select=*", &order, 9, 3).contains(&enc(r#"(sync_txid.gt.7,and(local_id.is.null,id.gt."k2"))"#)));
        // A page inside a transaction by key (a mark of an older build) stays by key.
        let q = PageAt::After(7, "k2".into()).query("select=*", &order, 9, 3);
        assert!(q.contains("order=sync_txid.asc,id.asc&"), "{q}");
        let next = PageAt::After(7, "k0".into()).next(ends(&full).unwrap().as_refs(), &order, 3, "messages").unwrap();
        assert_eq!(next, Some(PageAt::Within(7, "k2".into())));
    }

    #[test]
    fn marks_of_builds_before_walks_by_local_id_still_read() {
        let old: PageAt = serde_json::from_value(json!({"within": [7, "k2"]})).unwrap();
        assert_eq!(old, PageAt::Within(7, RowAt::Key("k2".into())));
        let new = PageAt::After(7, RowAt::Local { local_id: None, key: "k2".into() });
        assert_eq!(serde_json::from_value::<PageAt>(serde_json::to_value(&new).unwrap()).unwrap(), new);
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
