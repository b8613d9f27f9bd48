//! The two things every statement is built from: values bound as parameters (never
//! spliced into the SQL), and column references checked against the schema cache
//! before they are quoted in (a plain column, a JSON path, a cast).

use tokio_postgres::types::{ToSql, Type};

use super::error::RestError;
use crate::schema::{quote_ident, Table};

/// Bound parameters of one statement, each with its type: a statement whose parameter
/// types are given is parsed, bound and run in one round trip (no prepare first).
#[derive(Default)]
pub struct Params {
    values: Vec<(Box<dyn ToSql + Sync + Send>, Type)>,
}

impl Params {
    /// Bind a text value; returns its placeholder, typed `text`.
    pub fn text(&mut self, v: Option<String>) -> String {
        self.values.push((Box::new(v), Type::TEXT));
        format!("${}::text", self.values.len())
    }

    /// Bind a text array; returns its placeholder, typed `text[]`.
    pub fn text_array(&mut self, v: Vec<String>) -> String {
        self.values.push((Box::new(v), Type::TEXT_ARRAY));
        format!("${}::text[]", self.values.len())
    }

    /// Bind an integer; returns its placeholder, typed `int8`.
    pub fn int(&mut self, v: i64) -> String {
        self.values.push((Box::new(v), Type::INT8));
        format!("${}::int8", self.values.len())
    }

    /// The parameters as `tokio_postgres` wants them for a prepared statement.
    pub fn as_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|(b, _)| b.as_ref() as &(dyn ToSql + Sync)).collect()
    }

    /// The parameters with their types, for `query_typed`.
    pub fn typed(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.values.iter().map(|(b, t)| (b.as_ref() as &(dyn ToSql + Sync), t.clone())).collect()
    }
}

/// What a column reference in a request reads: a column, or a JSON path into one.
pub struct ColumnExpr<'t> {
    /// SQL over the given alias (path keys bound as parameters).
    pub sql: String,
    /// The name a selected value takes by default: the column, or the path's last key.
    pub name: String,
    pub kind: ColumnKind<'t>,
}

pub enum ColumnKind<'t> {
    Plain(&'t crate::schema::Column),
    /// Ends in `->>`: text.
    JsonText,
    /// Ends in `->`: JSON, compared as `jsonb`.
    Json,
}

/// `col`, or `col->key->>key` / `col->0` (a number is an array index): the column is
/// checked against the catalog, every key is a bound value.
pub fn column_expr<'t>(table: &'t Table, alias: &str, raw: &str, p: &mut Params) -> Result<ColumnExpr<'t>, RestError> {
    let (name, mut rest) = match raw.find("->") {
        Some(i) => (raw[..i].trim(), &raw[i..]),
        None => (raw.trim(), ""),
    };
    // A column, or a computed field (the function applied to the row).
    let (col, mut sql) = match table.column(name) {
        Some(col) => (col, format!("{alias}.{}", quote_ident(&col.name))),
        None => match table.computed_field(name) {
            Some(f) => (&f.column, format!("{}({alias})", f.function)),
            None => return Err(RestError::no_column(&shown_name(table, alias), name)),
        },
    };
    let mut out = ColumnExpr { sql: String::new(), name: col.name.clone(), kind: ColumnKind::Plain(col) };
    while !rest.is_empty() {
        let (text, after) = match (rest.strip_prefix("->>"), rest.strip_prefix("->")) {
            (Some(a), _) => (true, a),
            (None, Some(a)) => (false, a),
            _ => return Err(RestError::parse(format!("\"failed to parse JSON path ({raw})\""), "expecting -> or ->>")),
        };
        let end = after.find("->").unwrap_or(after.len());
        let key = after[..end].trim();
        if key.is_empty() {
            return Err(RestError::parse(format!("\"failed to parse JSON path ({raw})\""), "empty key"));
        }
        let k = match key.parse::<i32>() {
            Ok(n) => format!("CAST({} AS int4)", p.int(i64::from(n))),
            Err(_) => p.text(Some(key.trim_matches('"').to_string())),
        };
        sql = format!("({sql} {} {k})", if text { "->>" } else { "->" });
        out.name = key.trim_matches('"').to_string();
        out.kind = if text { ColumnKind::JsonText } else { ColumnKind::Json };
        rest = &after[end..];
    }
    out.sql = match out.kind {
        ColumnKind::Json => format!("CAST({sql} AS jsonb)"),
        _ => sql,
    };
    Ok(out)
}

/// A relation as PostgREST names it in errors: inside an embed (alias `_eN`) `table_N`.
pub(super) fn shown_name(table: &Table, alias: &str) -> String {
    match alias.strip_prefix("_e") {
        Some(n) => format!("{}_{n}", table.name),
        None => table.name.clone(),
    }
}
