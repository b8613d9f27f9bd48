//! Local queries as every binding passes them: equality filters, one order, a limit
//! ([`Query`]), and the rows they return with their sync status ([`RowView`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::local::local_row::{Row, RowStatus};

/// A row as queries return it: what the app sees, plus its sync status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowView {
    pub local_id: String,
    pub row: Row,
    pub status: RowStatus,
}

/// A local query: equality filters, one order, a limit.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filters: Vec<(String, Value)>,
    pub order: Option<(String, bool)>,
    pub limit: Option<usize>,
}

impl Query {
    /// A query as every binding passes it: `{"where": {col: value}, "order": "col.desc",
    /// "limit": N}`, each part optional.
    pub fn from_json(v: &Value) -> Result<Query, String> {
        let mut q = Query::default();
        let Some(o) = v.as_object() else {
            return if v.is_null() { Ok(q) } else { Err("a query is an object: {where, order, limit}".into()) };
        };
        for k in o.keys() {
            if !matches!(k.as_str(), "where" | "order" | "limit") {
                return Err(format!("unknown query option `{k}` (where, order, limit)"));
            }
        }
        match o.get("where") {
            None | Some(Value::Null) => {}
            Some(Value::Object(w)) => q.filters = w.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(_) => return Err("`where` is an object of column: value".into()),
        }
        match o.get("order") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => q = q.order_by(s),
            Some(_) => return Err("`order` is a column name, optionally with .asc or .desc".into()),
        }
        match o.get("limit") {
            None | Some(Value::Null) => {}
            Some(n) => match n.as_u64() {
                Some(n) => q.limit = Some(n as usize),
                None => return Err("`limit` is a whole number ≥ 0".into()),
            },
        }
        Ok(q)
    }

    /// The order as the CLI and the JavaScript API spell it: `col`, `col.asc` or
    /// `col.desc` (PostgREST's spelling).
    pub fn order_by(mut self, spec: &str) -> Query {
        self.order = Some(match spec.strip_suffix(".desc") {
            Some(c) => (c.into(), true),
            None => (spec.trim_end_matches(".asc").into(), false),
        });
        self
    }
}

/// Order JSON values for local queries: null first, then numbers, strings, others.
pub(crate) fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    use Value::*;
    match (a.unwrap_or(&Null), b.unwrap_or(&Null)) {
        (Null, Null) => Equal,
        (Null, _) => Less,
        (_, Null) => Greater,
        (Number(x), Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Equal),
        (String(x), String(y)) => x.cmp(y),
        (Bool(x), Bool(y)) => x.cmp(y),
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}
