//! supabase-js's query builder for Rust: `SelectRequest::from("messages").select("*,
//! conversations(title)").eq("role", "user").order("timestamp", Order::desc())
//! .limit(20)`. It writes PostgREST's query string, as postgrest-js does, and the one
//! parser reads it: the builder, the URL form (`messages?select=…`) and every binding
//! mean the same thing by construction.

use crate::select::error::SelectError;
use crate::select::{Cardinality, SelectOptions, SelectRequest};

/// How an `order` term sorts.
#[derive(Debug, Clone, Default)]
pub struct Order {
    pub descending: bool,
    /// `Some(true)`: nulls first; `Some(false)`: nulls last; `None`: PostgreSQL's
    /// default (last ascending, first descending).
    pub nulls_first: Option<bool>,
    /// Order an embed's rows instead of the top table's (`messages.order=…`).
    pub referenced_table: Option<String>,
}

impl Order {
    pub fn asc() -> Order {
        Order::default()
    }
    pub fn desc() -> Order {
        Order { descending: true, ..Order::default() }
    }
}

/// A query being built.
#[derive(Debug, Clone)]
pub struct SelectBuilder {
    table: String,
    columns: String,
    pairs: Vec<(String, String)>,
    options: SelectOptions,
}

impl SelectRequest {
    /// Start a query of `table` (every column until [`SelectBuilder::select`]).
    pub fn from(table: &str) -> SelectBuilder {
        SelectBuilder { table: table.into(), columns: "*".into(), pairs: vec![], options: SelectOptions::default() }
    }
}

/// A value as a list item or a logic-tree operand: quoted when it holds what those
/// split on, as postgrest-js quotes it.
fn quote(v: &str) -> String {
    if v.contains([',', '(', ')', '"', ':']) || v.trim() != v {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

impl SelectBuilder {
    /// The columns and embeds, in PostgREST's `select` syntax.
    pub fn select(mut self, columns: &str) -> Self {
        // Whitespace outside quotes means nothing to PostgREST; postgrest-js drops it.
        let mut quoted = false;
        self.columns = columns
            .chars()
            .filter(|c| {
                if *c == '"' {
                    quoted = !quoted;
                }
                quoted || !c.is_whitespace()
            })
            .collect();
        self
    }

    /// Any filter: `column=op.value` (`op` as PostgREST spells it: `eq`, `ilike`, …).
    pub fn filter(mut self, column: &str, op: &str, value: &str) -> Self {
        self.pairs.push((column.into(), format!("{op}.{value}")));
        self
    }

    /// `column=not.op.value`.
    pub fn not(self, column: &str, op: &str, value: &str) -> Self {
        self.filter(column, &format!("not.{op}"), value)
    }

    pub fn eq(self, column: &str, value: &str) -> Self {
        self.filter(column, "eq", value)
    }
    pub fn neq(self, column: &str, value: &str) -> Self {
        self.filter(column, "neq", value)
    }
    pub fn gt(self, column: &str, value: &str) -> Self {
        self.filter(column, "gt", value)
    }
    pub fn gte(self, column: &str, value: &str) -> Self {
        self.filter(column, "gte", value)
    }
    pub fn lt(self, column: &str, value: &str) -> Self {
        self.filter(column, "lt", value)
    }
    pub fn lte(self, column: &str, value: &str) -> Self {
        self.filter(column, "lte", value)
    }
    /// `%` and `*` match any run, `_` one character.
    pub fn like(self, column: &str, pattern: &str) -> Self {
        self.filter(column, "like", pattern)
    }
    pub fn ilike(self, column: &str, pattern: &str) -> Self {
        self.filter(column, "ilike", pattern)
    }
    /// `null`, `not_null`, `true`, `false` or `unknown`.
    pub fn is(self, column: &str, value: &str) -> Self {
        self.filter(column, "is", value)
    }
    pub fn in_list(self, column: &str, values: &[&str]) -> Self {
        let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
        self.filter(column, "in", &format!("({})", list.join(",")))
    }
    /// JSON containment: the column holds `value` (JSON text).
    pub fn contains(self, column: &str, value: &str) -> Self {
        self.filter(column, "cs", value)
    }
    /// JSON containment: `value` (JSON text) holds the column.
    pub fn contained_by(self, column: &str, value: &str) -> Self {
        self.filter(column, "cd", value)
    }
    /// `or=(a.eq.1,b.gt.2)`, written as postgrest-js takes it: `"a.eq.1,b.gt.2"`.
    pub fn or(mut self, filters: &str) -> Self {
        self.pairs.push(("or".into(), format!("({filters})")));
        self
    }
    /// `order=column.desc.nullslast`; called again, it adds a term.
    pub fn order(mut self, column: &str, how: Order) -> Self {
        let mut term = column.to_string();
        term.push_str(if how.descending { ".desc" } else { ".asc" });
        match how.nulls_first {
            Some(true) => term.push_str(".nullsfirst"),
            Some(false) => term.push_str(".nullslast"),
            None => {}
        }
        let key = match &how.referenced_table {
            Some(t) => format!("{t}.order"),
            None => "order".into(),
        };
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&term);
            }
            None => self.pairs.push((key, term)),
        }
        self
    }
    pub fn limit(mut self, n: usize) -> Self {
        self.pairs.retain(|(k, _)| k != "limit");
        self.pairs.push(("limit".into(), n.to_string()));
        self
    }
    /// Rows `from` to `to`, both included, counted from 0.
    pub fn range(mut self, from: usize, to: usize) -> Self {
        self.pairs.retain(|(k, _)| k != "limit" && k != "offset");
        self.pairs.push(("offset".into(), from.to_string()));
        self.pairs.push(("limit".into(), (to + 1).saturating_sub(from).to_string()));
        self
    }
    /// Exactly one row, else `PGRST116`.
    pub fn single(mut self) -> Self {
        self.options.cardinality = Cardinality::One;
        self
    }
    /// At most one row, else `PGRST116`.
    pub fn maybe_single(mut self) -> Self {
        self.options.cardinality = Cardinality::MaybeOne;
        self
    }
    /// Count every row the filters keep (`count: 'exact'`).
    pub fn count(mut self) -> Self {
        self.options.count = true;
        self
    }

    /// The query string, as PostgREST takes it after `/rest/v1/`.
    pub fn url(&self) -> String {
        let mut s = form_urlencoded_pairs(&[("select".to_string(), self.columns.clone())]);
        if !self.pairs.is_empty() {
            s.push('&');
            s.push_str(&form_urlencoded_pairs(&self.pairs));
        }
        format!("{}?{s}", self.table)
    }

    /// The request, parsed as any URL is.
    pub fn build(&self) -> Result<SelectRequest, SelectError> {
        Ok(SelectRequest::parse(&self.url())?.with_options(self.options))
    }
}

fn form_urlencoded_pairs(pairs: &[(String, String)]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_postgrest_js_writes() {
        let b = SelectRequest::from("messages")
            .select("id, content, conversations ( title )")
            .eq("role", "user")
            .in_list("tag", &["a,b", "c"])
            .order("timestamp", Order::desc())
            .order("id", Order::asc())
            .range(10, 19)
            .count();
        let r = b.build().unwrap();
        assert_eq!(r.table, "messages");
        assert_eq!(r.params.limit, Some(10));
        assert_eq!(r.params.offset, Some(10));
        assert_eq!(r.params.order.len(), 2);
        assert_eq!(r.params.conds.len(), 2);
        assert!(r.options.count);
        assert!(b.url().contains("select=id%2Ccontent%2Cconversations%28title%29"), "{}", b.url());
    }
}
