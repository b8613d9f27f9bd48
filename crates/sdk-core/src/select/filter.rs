//! Filters as SQL evaluates them: three-valued (a comparison with `NULL` is unknown, and
//! an unknown row is left out, even under `neq` or `not`), `and`/`or` trees with
//! `not.`, and every operator the local language takes.

use serde_json::Value;
use supasync_query_syntax::{Cond, Leaf, Op, Quantifier};

use crate::local::local_row::Row;
use crate::select::error::SelectError;
use crate::select::plan::Level;
use crate::select::value::{self, Kind};

/// Whether a row passes every condition of its level.
pub fn passes(level: &Level<'_>, row: &Row) -> Result<bool, SelectError> {
    for c in &level.conds {
        if cond(level, row, c)? != Some(true) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One condition: `Some(true)`, `Some(false)`, or `None` (unknown).
pub fn cond(level: &Level<'_>, row: &Row, c: &Cond) -> Result<Option<bool>, SelectError> {
    let (negate, r) = match c {
        Cond::Leaf(l) => (false, leaf(level, row, l)?),
        Cond::And { negate, items } => {
            let mut out = Some(true);
            for i in items {
                match cond(level, row, i)? {
                    Some(false) => {
                        out = Some(false);
                        break;
                    }
                    None => out = None,
                    Some(true) => {}
                }
            }
            (*negate, out)
        }
        Cond::Or { negate, items } => {
            let mut out = Some(false);
            for i in items {
                match cond(level, row, i)? {
                    Some(true) => {
                        out = Some(true);
                        break;
                    }
                    None => out = None,
                    Some(false) => {}
                }
            }
            (*negate, out)
        }
    };
    Ok(if negate { r.map(|b| !b) } else { r })
}

fn leaf(level: &Level<'_>, row: &Row, l: &Leaf) -> Result<Option<bool>, SelectError> {
    let v = row.get(&l.column).unwrap_or(&Value::Null);
    let kind = level.kind(&l.column, v);
    let declared = level.decl.columns.get(&l.column);
    let lit = |t: &str| -> Result<Value, SelectError> {
        Ok(match declared {
            Some(ty) => value::typed_literal(ty, kind, t)?,
            None => value::literal(kind, t)?,
        })
    };
    let r = match &l.op {
        Op::Is => Some(match l.value.to_ascii_lowercase().as_str() {
            "null" | "unknown" => v.is_null(),
            "not_null" => !v.is_null(),
            "true" => *v == Value::Bool(true),
            _ => *v == Value::Bool(false),
        }),
        Op::IsDistinct if v.is_null() => Some(true),
        _ if v.is_null() => None,
        op if l.quantifier.is_some() => {
            let mut results = vec![];
            for t in &l.list {
                results.push(test(op, kind, v, &lit(t)?, t));
            }
            match l.quantifier {
                Some(Quantifier::All) => Some(results.iter().all(|b| *b)),
                _ => Some(results.iter().any(|b| *b)),
            }
        }
        Op::In => {
            let mut found = false;
            for t in &l.list {
                if value::equal(kind, v, &lit(t)?) {
                    found = true;
                    break;
                }
            }
            Some(found)
        }
        Op::IsDistinct => Some(!value::equal(kind, v, &lit(&l.value)?)),
        Op::Contains | Op::ContainedIn => {
            let other = container(v, &l.value)?;
            Some(if l.op == Op::Contains { value::contains(v, &other) } else { value::contains(&other, v) })
        }
        op => Some(test(op, kind, v, &lit(&l.value)?, &l.value)),
    };
    Ok(if l.negate { r.map(|b| !b) } else { r })
}

/// One comparison of a non-null value with a literal.
fn test(op: &Op, kind: Kind, v: &Value, lit: &Value, raw: &str) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Like | Op::Ilike => value::like(&as_text(v), raw, *op == Op::Ilike),
        Op::Eq => value::equal(kind, v, lit),
        Op::Neq => !value::equal(kind, v, lit),
        _ => match value::compare(kind, v, lit) {
            Some(o) => match op {
                Op::Gt => o == Greater,
                Op::Gte => o != Less,
                Op::Lt => o == Less,
                Op::Lte => o != Greater,
                _ => false,
            },
            None => false,
        },
    }
}

/// A value as text, as a `like` on a non-text column casts it.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The right side of `cs`/`cd`: JSON for a JSON column, or PostgreSQL's array literal
/// (`{a,b}`) for an array column.
fn container(v: &Value, text: &str) -> Result<Value, SelectError> {
    if v.is_array() {
        if let Some(inner) = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let items = if inner.trim().is_empty() { vec![] } else { inner.split(',').map(|s| s.trim().trim_matches('"').to_string()).collect() };
            let numbers = v.as_array().is_some_and(|a| a.iter().all(Value::is_number));
            return Ok(Value::Array(
                items
                    .into_iter()
                    .map(|s| match (numbers, s.parse::<f64>().ok().and_then(serde_json::Number::from_f64)) {
                        (true, Some(n)) => Value::Number(n),
                        _ => Value::String(s),
                    })
                    .collect(),
            ));
        }
    }
    Ok(value::literal(Kind::Json, text)?)
}
