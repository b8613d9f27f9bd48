//! postgres_changes filters (reference §2.1): `column=op.value` with op in
//! `eq, neq, lt, lte, gt, gte, in` — the compatibility floor every Realtime supports.
//!
//! At join time the value is cast by PostgreSQL to the column's type and turned back into
//! JSON (`to_jsonb`), so `id=eq.007` on an integer column and `id=eq.7` are the same
//! filter and a value that does not fit the column is refused at once. Changes are then
//! compared in their JSON form, which `to_jsonb` produced in the same way.

use serde_json::Value;

/// The operators Realtime accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

/// A parsed filter; `values` are raw strings until [`Filter::canonical`] is filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub op: FilterOp,
    pub values: Vec<String>,
    /// The values cast to the column type and rendered by `to_jsonb`.
    pub canonical: Vec<Value>,
}

/// Parse `column=op.value`.
pub fn parse(s: &str) -> Result<Filter, String> {
    let (column, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("Error parsing `filter` params: {s}"))?;
    let (op, value) = rest
        .split_once('.')
        .ok_or_else(|| format!("Error parsing `filter` params: {s}"))?;
    let op = match op {
        "eq" => FilterOp::Eq,
        "neq" => FilterOp::Neq,
        "lt" => FilterOp::Lt,
        "lte" => FilterOp::Lte,
        "gt" => FilterOp::Gt,
        "gte" => FilterOp::Gte,
        "in" => FilterOp::In,
        other => return Err(format!("Error parsing `filter` params: operator `{other}` is not supported")),
    };
    let column = column.trim().to_string();
    if column.is_empty() {
        return Err(format!("Error parsing `filter` params: {s}"));
    }
    let values = if op == FilterOp::In {
        let inner = value
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or_else(|| format!("Error parsing `filter` params: {s}"))?;
        let items: Vec<String> = inner
            .split(',')
            .map(|x| x.trim().trim_matches('"').to_string())
            .collect();
        if items.len() > 100 {
            return Err("Error parsing `filter` params: too many values for `in` filter (max 100)".into());
        }
        items
    } else {
        vec![value.to_string()]
    };
    Ok(Filter {
        column,
        op,
        values,
        canonical: vec![],
    })
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn json_cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Filter {
    /// Whether a record passes. A missing or null column fails, as SQL's NULL would.
    pub fn passes(&self, record: &serde_json::Map<String, Value>) -> bool {
        let Some(v) = record.get(&self.column).filter(|v| !v.is_null()) else {
            return false;
        };
        let Some(first) = self.canonical.first() else {
            return false;
        };
        use std::cmp::Ordering::*;
        match self.op {
            FilterOp::Eq => json_eq(v, first),
            FilterOp::Neq => !json_eq(v, first),
            FilterOp::Lt => json_cmp(v, first) == Some(Less),
            FilterOp::Lte => matches!(json_cmp(v, first), Some(Less | Equal)),
            FilterOp::Gt => json_cmp(v, first) == Some(Greater),
            FilterOp::Gte => matches!(json_cmp(v, first), Some(Greater | Equal)),
            FilterOp::In => self.canonical.iter().any(|c| json_eq(v, c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_evaluates() {
        let mut f = parse("user_id=eq.abc").unwrap();
        f.canonical = vec![json!("abc")];
        assert!(f.passes(json!({"user_id":"abc"}).as_object().unwrap()));
        assert!(!f.passes(json!({"user_id":"abd"}).as_object().unwrap()));
        assert!(!f.passes(json!({"other":"abc"}).as_object().unwrap()));
        let mut g = parse("n=in.(1,2,3)").unwrap();
        g.canonical = vec![json!(1), json!(2), json!(3)];
        assert!(g.passes(json!({"n":2.0}).as_object().unwrap()));
        let mut h = parse("n=gte.5").unwrap();
        h.canonical = vec![json!(5)];
        assert!(h.passes(json!({"n":5}).as_object().unwrap()));
        assert!(!h.passes(json!({"n":4}).as_object().unwrap()));
        assert!(parse("n=like.x").is_err());
        assert!(parse("garbage").is_err());
        assert!(parse("n=in.1,2").is_err());
    }
}
