//! Comparing values the way PostgreSQL does, so a filter or an order gives on the device
//! what it gives on the server.
//!
//! A row holds JSON as PostgREST sent it; a filter holds text from the URL. What a
//! comparison means depends on the column's type: the schema may declare it
//! (`"columns": {"created_at": "timestamptz"}`), otherwise the row's JSON says it (a
//! number compares as a number, a string as text). Text compares byte by byte (the
//! dev server's and Supabase's databases use the `C` collation for these columns' order
//! only where they say so; see the README's "Local queries"), timestamps as instants,
//! `NULL` never compares (SQL's unknown).

use std::cmp::Ordering;

use serde_json::Value;

pub use crate::local::time::instant;

/// How a column's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Bool,
    /// `timestamptz`, `timestamp`, `date`: compared as instants.
    Time,
    /// `json`, `jsonb`: equality and containment only.
    Json,
}

impl Kind {
    /// The kind of a declared PostgreSQL type name (`None` for a type compared as text).
    pub fn of_type(t: &str) -> Kind {
        let t = t.trim().to_ascii_lowercase();
        match t.as_str() {
            "int2" | "int4" | "int8" | "smallint" | "integer" | "int" | "bigint" | "float4" | "float8" | "real"
            | "double precision" | "numeric" | "decimal" | "serial" | "bigserial" => Kind::Number,
            "bool" | "boolean" => Kind::Bool,
            _ if crate::local::time::is_time_type(&t) => Kind::Time,
            "json" | "jsonb" => Kind::Json,
            _ if t.starts_with("numeric(") || t.starts_with("decimal(") => Kind::Number,
            _ => Kind::Text,
        }
    }

    /// The kind of an undeclared column, from a value it holds.
    pub fn of_value(v: &Value) -> Kind {
        match v {
            Value::Number(_) => Kind::Number,
            Value::Bool(_) => Kind::Bool,
            Value::Object(_) | Value::Array(_) => Kind::Json,
            _ => Kind::Text,
        }
    }
}

/// A filter's text that is not a value of the column's type: PostgreSQL's `22P02`
/// (`invalid input syntax for type …`), or `22007` for a timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLiteral {
    pub code: &'static str,
    pub message: String,
}

fn bad(kind: Kind, text: &str) -> BadLiteral {
    match kind {
        Kind::Number => BadLiteral { code: "22P02", message: format!("invalid input syntax for type numeric: \"{text}\"") },
        Kind::Bool => BadLiteral { code: "22P02", message: format!("invalid input syntax for type boolean: \"{text}\"") },
        Kind::Time => BadLiteral { code: "22007", message: format!("invalid input syntax for type timestamp with time zone: \"{text}\"") },
        Kind::Json => BadLiteral { code: "22P02", message: format!("invalid input syntax for type json: \"{text}\"") },
        Kind::Text => BadLiteral { code: "22P02", message: format!("invalid input syntax: \"{text}\"") },
    }
}

/// A filter's text read as a value of `kind`.
pub fn literal(kind: Kind, text: &str) -> Result<Value, BadLiteral> {
    match kind {
        Kind::Text => Ok(Value::String(text.to_string())),
        Kind::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| bad(kind, text)),
        Kind::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "y" | "on" | "1" => Ok(Value::Bool(true)),
            "f" | "false" | "no" | "n" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad(kind, text)),
        },
        Kind::Time => instant(text).map(|_| Value::String(text.to_string())).ok_or_else(|| bad(kind, text)),
        Kind::Json => serde_json::from_str(text).map_err(|_| bad(kind, text)),
    }
}

/// PostgreSQL's name for a declared type, as its errors spell it.
fn pg_name(ty: &str) -> String {
    match ty.trim().to_ascii_lowercase().as_str() {
        "int2" | "smallint" => "smallint".into(),
        "int4" | "int" | "integer" | "serial" => "integer".into(),
        "int8" | "bigint" | "bigserial" => "bigint".into(),
        "float4" | "real" => "real".into(),
        "float8" | "double precision" => "double precision".into(),
        "bool" | "boolean" => "boolean".into(),
        "timestamptz" | "timestamp with time zone" => "timestamp with time zone".into(),
        "timestamp" | "timestamp without time zone" => "timestamp without time zone".into(),
        "json" | "jsonb" => "json".into(),
        t if t.starts_with("numeric") || t.starts_with("decimal") => "numeric".into(),
        t => t.into(),
    }
}

/// A filter's text read as a value of the declared type `ty`: as [`literal`], and
/// also refusing what the type refuses that its kind would take (a fraction for an
/// integer, a malformed uuid), with PostgreSQL's message.
pub fn typed_literal(ty: &str, kind: Kind, text: &str) -> Result<Value, BadLiteral> {
    let name = pg_name(ty);
    let refuse = || BadLiteral {
        code: if kind == Kind::Time { "22007" } else { "22P02" },
        message: format!("invalid input syntax for type {name}: \"{text}\""),
    };
    let integer = matches!(name.as_str(), "smallint" | "integer" | "bigint");
    if integer && text.trim().parse::<i64>().is_err() {
        return Err(refuse());
    }
    if name == "uuid" && !is_uuid(text) {
        return Err(refuse());
    }
    literal(kind, text).map_err(|_| refuse())
}

fn is_uuid(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Compare two non-null values of one column. `None` when they cannot be compared
/// (different JSON types under an undeclared column).
pub fn compare(kind: Kind, a: &Value, b: &Value) -> Option<Ordering> {
    match (kind, a, b) {
        (Kind::Time, Value::String(x), Value::String(y)) => match (instant(x), instant(y)) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => Some(x.as_bytes().cmp(y.as_bytes())),
        },
        (_, Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return Some(x.cmp(&y));
            }
            x.as_f64()?.partial_cmp(&y.as_f64()?)
        }
        (_, Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (_, Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (_, x, y) if kind == Kind::Json => Some(jsonb_order(x, y)),
        // A number column compared with a text literal that parsed as a number.
        (_, Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        _ => None,
    }
}

/// jsonb's own order: object > array > boolean > number > string > null, then by value.
fn jsonb_order(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::String(_) => 1,
            Value::Number(_) => 2,
            Value::Bool(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len().cmp(&y.len()).then_with(|| {
            x.iter().zip(y).map(|(p, q)| jsonb_order(p, q)).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
        }),
        (Value::Object(x), Value::Object(y)) => x.len().cmp(&y.len()).then_with(|| {
            x.iter()
                .zip(y)
                .map(|((kx, vx), (ky, vy))| kx.cmp(ky).then_with(|| jsonb_order(vx, vy)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        }),
        _ if rank(a) == rank(b) => compare(Kind::Text, a, b).unwrap_or(Ordering::Equal),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Whether `a` and `b` are equal as PostgreSQL sees them (`NULL` aside).
pub fn equal(kind: Kind, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => a == b,
        _ => compare(kind, a, b) == Some(Ordering::Equal),
    }
}

/// jsonb containment (`@>`): every key of an object in `b` is in `a` with a contained
/// value; every element of an array in `b` is contained by some element of `a`; a
/// scalar equals; an array contains a scalar it holds.
pub fn contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => y.iter().all(|(k, vy)| x.get(k).is_some_and(|vx| contains(vx, vy))),
        (Value::Array(x), Value::Array(y)) => y.iter().all(|vy| x.iter().any(|vx| contains(vx, vy))),
        (Value::Array(x), y) if !y.is_array() && !y.is_object() => x.iter().any(|vx| vx == y),
        (x, y) => equal(Kind::Json, x, y),
    }
}

/// SQL `LIKE` (`%` any run, `_` one character, `\` escapes the next), case-folded for
/// `ILIKE` as PostgreSQL folds under the `C` collation: ASCII letters only (`Ï` and `ï`
/// stay different, as the differential test shows).
pub fn like(text: &str, pattern: &str, fold: bool) -> bool {
    let lower = |s: &str| if fold { s.to_ascii_lowercase() } else { s.to_string() };
    let t: Vec<char> = lower(text).chars().collect();
    let mut p: Vec<(char, bool)> = vec![];
    let mut chars = lower(pattern).chars().collect::<Vec<_>>().into_iter();
    while let Some(c) = chars.next() {
        match c {
            '\\' => p.push((chars.next().unwrap_or('\\'), true)),
            c => p.push((c, false)),
        }
    }
    // Iterative wildcard match with one backtrack point (linear in practice).
    let (mut ti, mut pi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        match p.get(pi) {
            Some(('%', false)) => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            Some(('_', false)) => {
                ti += 1;
                pi += 1;
            }
            Some((c, _)) if *c == t[ti] => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|x| *x == ('%', false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn like_and_ilike() {
        assert!(like("Lisbon trip", "%bon%", false));
        assert!(!like("Lisbon trip", "%BON%", false));
        assert!(like("Lisbon trip", "%BON%", true));
        assert!(like("a_b", "a\\_b", false) && !like("axb", "a\\_b", false));
        assert!(like("abc", "a_c", false) && !like("abbc", "a_c", false));
        assert!(like("", "%", false) && !like("", "_", false));
        assert!(like("Pastéis", "PAST%is", true));
        assert!(!like("naïve", "%AÏV%", true), "only ASCII letters fold");
    }

    #[test]
    fn timestamps_compare_as_instants() {
        let a = instant("2026-12-03T10:00:00+00:00").unwrap();
        assert_eq!(instant("2026-12-03 11:00:00+01:00"), Some(a));
        assert_eq!(instant("2026-12-03T10:00:00Z"), Some(a));
        assert!(instant("2026-12-03T10:00:00.5+00:00").unwrap() > a);
        assert_eq!(instant("2026-12-03"), Some(a - 10 * 3_600_000_000));
        assert_eq!(instant("1970-01-01"), Some(0));
        assert_eq!(instant("yesterday"), None);
        assert_eq!(compare(Kind::Time, &json!("2026-12-03T10:00:00+00:00"), &json!("2026-12-03")), Some(Ordering::Greater));
    }

    #[test]
    fn numbers_bools_and_json() {
        assert_eq!(literal(Kind::Number, "2.5"), Ok(json!(2.5)));
        assert_eq!(literal(Kind::Number, "x").unwrap_err().code, "22P02");
        assert_eq!(compare(Kind::Number, &json!(10), &json!(9.5)), Some(Ordering::Greater));
        assert_eq!(literal(Kind::Bool, "TRUE"), Ok(json!(true)));
        assert!(contains(&json!({"a": 1, "b": [1, 2]}), &json!({"b": [2]})));
        assert!(!contains(&json!({"a": 1}), &json!({"a": 2})));
        assert!(contains(&json!(["x", "y"]), &json!("x")));
        assert_eq!(compare(Kind::Text, &json!("B"), &json!("a")), Some(Ordering::Less), "byte order (C collation)");
    }
}
