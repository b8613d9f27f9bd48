//! A request's target table and its filters and order as SQL: `WHERE` for the
//! PostgREST operators (with `not`, `and`/`or` trees, `any`/`all`), and `ORDER BY` with
//! nulls first or last.

use std::sync::Arc;


use super::bind::{column_expr, ColumnKind, Params};
use super::error::RestError;
use supasync_query_syntax::{Cond, Leaf, Nulls, Op, OrderTerm, Quantifier};
use crate::schema::{SchemaCache, Table};

/// The table a request targets, resolved.
pub struct Target<'a> {
    pub cache: &'a SchemaCache,
    pub table: Arc<Table>,
}

impl Target<'_> {
    /// `WHERE` clause (without the keyword) for `conds` on alias `_t`; `TRUE` when empty.
    pub fn where_sql(&self, conds: &[Cond], p: &mut Params) -> Result<String, RestError> {
        self.where_as("_t", conds, p)
    }

    /// [`Target::where_sql`] over another alias (an embedded resource's).
    pub(super) fn where_as(&self, alias: &str, conds: &[Cond], p: &mut Params) -> Result<String, RestError> {
        if conds.is_empty() {
            return Ok("TRUE".into());
        }
        let parts: Result<Vec<String>, RestError> = conds.iter().map(|c| self.cond_sql(alias, c, p)).collect();
        Ok(parts?.join(" AND "))
    }

    fn cond_sql(&self, alias: &str, c: &Cond, p: &mut Params) -> Result<String, RestError> {
        let (negate, items, joiner) = match c {
            Cond::Leaf(l) => return self.leaf_sql(alias, l, p),
            Cond::And { negate, items } => (*negate, items, " AND "),
            Cond::Or { negate, items } => (*negate, items, " OR "),
        };
        let parts: Result<Vec<String>, RestError> = items.iter().map(|c| self.cond_sql(alias, c, p)).collect();
        let inner = format!("({})", parts?.join(joiner));
        Ok(if negate { format!("NOT {inner}") } else { inner })
    }

    fn leaf_sql(&self, alias: &str, l: &Leaf, p: &mut Params) -> Result<String, RestError> {
        let e = column_expr(&self.table, alias, &l.column, p)?;
        let (c, ty, tsvector) = match e.kind {
            ColumnKind::Plain(col) => (e.sql, col.sql_type.clone(), col.type_name == "tsvector"),
            ColumnKind::JsonText => (e.sql, "text".to_string(), false),
            ColumnKind::Json => (e.sql, "jsonb".to_string(), false),
        };
        let ty = &ty;
        let cmp = |op: &str, p: &mut Params| format!("{c} {op} CAST({} AS {ty})", p.text(Some(l.value.clone())));
        if let Some(q) = l.quantifier {
            let q = match q {
                Quantifier::Any => "ANY",
                Quantifier::All => "ALL",
            };
            let (lhs, op, elem) = match l.op {
                Op::Eq => (c.clone(), "=", ty.as_str()),
                Op::Neq => (c.clone(), "<>", ty.as_str()),
                Op::Gt => (c.clone(), ">", ty.as_str()),
                Op::Gte => (c.clone(), ">=", ty.as_str()),
                Op::Lt => (c.clone(), "<", ty.as_str()),
                Op::Lte => (c.clone(), "<=", ty.as_str()),
                Op::Like => (format!("{c}::text"), "LIKE", "text"),
                Op::Ilike => (format!("{c}::text"), "ILIKE", "text"),
                Op::Match => (format!("{c}::text"), "~", "text"),
                _ => (format!("{c}::text"), "~*", "text"),
            };
            let sql = format!("{lhs} {op} {q}(CAST({} AS {elem}[]))", p.text_array(l.list.clone()));
            return Ok(if l.negate { format!("NOT ({sql})") } else { sql });
        }
        let sql = match l.op {
            Op::Eq => cmp("=", p),
            Op::Neq => cmp("<>", p),
            Op::Gt => cmp(">", p),
            Op::Gte => cmp(">=", p),
            Op::Lt => cmp("<", p),
            Op::Lte => cmp("<=", p),
            Op::IsDistinct => cmp("IS DISTINCT FROM", p),
            Op::Contains => cmp("@>", p),
            Op::ContainedIn => cmp("<@", p),
            Op::Overlaps => cmp("&&", p),
            Op::StrictlyLeft => cmp("<<", p),
            Op::StrictlyRight => cmp(">>", p),
            Op::NotExtendRight => cmp("&<", p),
            Op::NotExtendLeft => cmp("&>", p),
            Op::Adjacent => cmp("-|-", p),
            Op::Fts | Op::Plfts | Op::Phfts | Op::Wfts => {
                let f = match l.op {
                    Op::Fts => "to_tsquery",
                    Op::Plfts => "plainto_tsquery",
                    Op::Phfts => "phraseto_tsquery",
                    _ => "websearch_to_tsquery",
                };
                // A tsvector column is searched as it is; any other as its text.
                let (doc, query) = match &l.config {
                    Some(cfg) => {
                        let cfg = format!("CAST({} AS regconfig)", p.text(Some(cfg.clone())));
                        let doc = if tsvector { c.clone() } else { format!("to_tsvector({cfg}, {c}::text)") };
                        (doc, format!("{f}({cfg}, {})", p.text(Some(l.value.clone()))))
                    }
                    None => {
                        let doc = if tsvector { c.clone() } else { format!("to_tsvector({c}::text)") };
                        (doc, format!("{f}({})", p.text(Some(l.value.clone()))))
                    }
                };
                format!("{doc} @@ {query}")
            }
            Op::Like => format!("{c}::text LIKE {}", p.text(Some(l.value.clone()))),
            Op::Ilike => format!("{c}::text ILIKE {}", p.text(Some(l.value.clone()))),
            Op::Match => format!("{c}::text ~ {}", p.text(Some(l.value.clone()))),
            Op::Imatch => format!("{c}::text ~* {}", p.text(Some(l.value.clone()))),
            Op::Is => match l.value.to_ascii_lowercase().as_str() {
                "null" => format!("{c} IS NULL"),
                "not_null" => format!("{c} IS NOT NULL"),
                "true" => format!("{c} IS TRUE"),
                "false" => format!("{c} IS FALSE"),
                _ => format!("{c} IS UNKNOWN"),
            },
            Op::In => {
                if l.list.is_empty() {
                    "FALSE".into()
                } else {
                    format!("{c} = ANY(CAST({} AS {ty}[]))", p.text_array(l.list.clone()))
                }
            }
        };
        Ok(if l.negate { format!("NOT ({sql})") } else { sql })
    }

    /// `ORDER BY …` (with the keyword) or an empty string.
    pub fn order_sql(&self, order: &[OrderTerm], p: &mut Params) -> Result<String, RestError> {
        self.order_as("_t", order, p)
    }

    pub(super) fn order_as(&self, alias: &str, order: &[OrderTerm], p: &mut Params) -> Result<String, RestError> {
        if order.is_empty() {
            return Ok(String::new());
        }
        let mut terms = vec![];
        for t in order {
            let e = column_expr(&self.table, alias, &t.column, p)?;
            let mut s = format!("{} {}", e.sql, if t.desc { "DESC" } else { "ASC" });
            match t.nulls {
                Some(Nulls::First) => s.push_str(" NULLS FIRST"),
                Some(Nulls::Last) => s.push_str(" NULLS LAST"),
                None => {}
            }
            terms.push(s);
        }
        Ok(format!(" ORDER BY {}", terms.join(", ")))
    }
}
