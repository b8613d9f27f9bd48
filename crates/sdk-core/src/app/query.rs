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

impl Query {
    /// The answer from the rows that may match, given in local-id order: those whose
    /// values equal the filters', in the query's order (ties stay in local-id order),
    /// as many as the limit.
    pub(crate) fn arrange(&self, rows: Vec<RowView>) -> Vec<RowView> {
        let mut out: Vec<RowView> = rows.into_iter().filter(|v| self.matches(v)).collect();
        if let Some((col, desc)) = &self.order {
            out.sort_by(|a, b| {
                let o = compare(a.row.get(col), b.row.get(col));
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        if let Some(l) = self.limit {
            out.truncate(l);
        }
        out
    }

    fn matches(&self, v: &RowView) -> bool {
        self.filters.iter().all(|(k, want)| v.row.get(k).unwrap_or(&Value::Null) == want)
    }

    /// The answer after some rows changed, from the last answer and the changed rows
    /// alone (each by local id, with what the app now sees of it, or `None` if it is
    /// gone): no store read. `None` when that cannot be known: a row left a full page,
    /// and which row comes next only the store knows.
    pub(crate) fn patched(&self, last: &[RowView], changed: &[(String, Option<RowView>)]) -> Option<Vec<RowView>> {
        let ids: std::collections::HashSet<&str> = changed.iter().map(|(id, _)| id.as_str()).collect();
        let left = last.iter().any(|v| ids.contains(v.local_id.as_str()));
        if left && self.limit.is_some_and(|l| last.len() >= l) {
            return None;
        }
        let mut rows: Vec<RowView> = last.iter().filter(|v| !ids.contains(v.local_id.as_str())).cloned().collect();
        // A row changed twice: its last state.
        let latest: std::collections::HashMap<&str, &Option<RowView>> = changed.iter().map(|(id, v)| (id.as_str(), v)).collect();
        rows.extend(latest.into_values().filter_map(|v| v.clone()));
        rows.sort_by(|a, b| a.local_id.cmp(&b.local_id));
        Some(self.arrange(rows))
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
