//! One value, three forms: as SQLite holds it, as the server's row type takes it (JSON
//! for `jsonb_populate_recordset`), and as a change log holds a key.
//!
//! Both directions live here, side by side, so that what goes up comes back down as
//! the app wrote it: integers stay integers, a `BOOLEAN` goes up as `true` and comes
//! back as `1`, a BLOB goes up as `\x…` hex and comes back as bytes, JSON held in text
//! goes up as the structure it holds and comes back as JSON text. [`canonical`] is the
//! form both sides are compared in (a restore's checksums): the server's form, with
//! numbers and objects written one way only.

use rusqlite::types::{Value as SqlValue, ValueRef};
use serde_json::{json, Map, Value};

use crate::tenant::PgType;

/// A value SQLite holds, as JSON for a change log's key: a BLOB (JSON has none) as
/// `{"$blob": "<HEX>"}`.
pub fn json_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => json!({"$blob": hex(b).to_uppercase()}),
    }
}

/// A logged key value (see [`json_value`]) as SQLite takes it back.
pub fn sql_value(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(*b as i64),
        Value::Number(n) => n.as_i64().map(SqlValue::Integer).unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Object(o) => match o.get("$blob").and_then(Value::as_str) {
            Some(h) => SqlValue::Blob(unhex(h).unwrap_or_default()),
            None => SqlValue::Text(v.to_string()),
        },
        Value::Array(_) => SqlValue::Text(v.to_string()),
    }
}

/// A value SQLite holds, as JSON the server turns into a value of `ty`; why not, when
/// it cannot be one (text in an integer column, a BLOB in a text column…).
pub fn to_pg(v: ValueRef<'_>, ty: PgType) -> Result<Value, String> {
    let text = |t: &[u8]| String::from_utf8(t.to_vec()).map_err(|_| "text that is not UTF-8".to_string());
    let number = |f: f64| serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("{f} has no JSON form"));
    Ok(match (ty, v) {
        (_, ValueRef::Null) => Value::Null,
        (PgType::Bigint, ValueRef::Integer(i)) => json!(i),
        (PgType::Bigint, ValueRef::Real(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => json!(f as i64),
        (PgType::Bigint, ValueRef::Text(t)) => json!(text(t)?.trim().parse::<i64>().map_err(|_| "text where an integer was declared".to_string())?),
        (PgType::Boolean, ValueRef::Integer(i)) => json!(i != 0),
        (PgType::Boolean, ValueRef::Text(t)) => match text(t)?.to_ascii_lowercase().as_str() {
            "1" | "true" | "t" => json!(true),
            "0" | "false" | "f" => json!(false),
            other => return Err(format!("{other:?} where a boolean was declared")),
        },
        (PgType::Double | PgType::Numeric | PgType::Any, ValueRef::Integer(i)) => json!(i),
        (PgType::Double | PgType::Numeric | PgType::Any, ValueRef::Real(f)) => number(f)?,
        (PgType::Double, ValueRef::Text(t)) => number(text(t)?.trim().parse::<f64>().map_err(|_| "text where a number was declared".to_string())?)?,
        (PgType::Numeric | PgType::Text | PgType::Any, ValueRef::Text(t)) => json!(text(t)?),
        (PgType::Text, ValueRef::Integer(i)) => json!(i.to_string()),
        (PgType::Text, ValueRef::Real(f)) => json!(f.to_string()),
        (PgType::Bytea, ValueRef::Blob(b) | ValueRef::Text(b)) => json!(format!("\\x{}", hex(b))),
        (PgType::Jsonb, ValueRef::Text(t)) => {
            let s = text(t)?;
            // JSON text as the structure it holds; anything else kept as a string.
            serde_json::from_str(&s).unwrap_or(Value::String(s))
        }
        (PgType::Jsonb, ValueRef::Integer(i)) => json!(i),
        (PgType::Jsonb, ValueRef::Real(f)) => number(f)?,
        (PgType::Any, ValueRef::Blob(b)) => json!({"$blob": hex(b).to_uppercase()}),
        (ty, ValueRef::Blob(_)) => return Err(format!("a BLOB where {} was declared", ty.sql())),
        (ty, other) => return Err(format!("{:?} does not fit {}", other.data_type(), ty.sql())),
    })
}

/// A value of a server row (`to_jsonb` of the row) as SQLite holds it for a column of
/// `ty`: the way back of [`to_pg`].
pub fn from_pg(v: &Value, ty: PgType) -> Result<SqlValue, String> {
    let unexpected = || format!("{v} where the server's column is {}", ty.sql());
    Ok(match (ty, v) {
        (_, Value::Null) => SqlValue::Null,
        (PgType::Boolean, Value::Bool(b)) => SqlValue::Integer(*b as i64),
        (PgType::Bigint | PgType::Numeric | PgType::Any, Value::Number(n)) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().ok_or_else(unexpected)?),
        },
        (PgType::Double, Value::Number(n)) => SqlValue::Real(n.as_f64().ok_or_else(unexpected)?),
        (PgType::Text | PgType::Any, Value::String(s)) => SqlValue::Text(s.clone()),
        (PgType::Bytea, Value::String(s)) => SqlValue::Blob(s.strip_prefix("\\x").and_then(unhex).ok_or_else(unexpected)?),
        // JSON text, as the app's JSON columns hold it.
        (PgType::Jsonb, v) => SqlValue::Text(v.to_string()),
        (PgType::Any, Value::Object(o)) if o.len() == 1 && o.contains_key("$blob") => SqlValue::Blob(o.get("$blob").and_then(Value::as_str).and_then(unhex).ok_or_else(unexpected)?),
        (PgType::Any, Value::Bool(b)) => SqlValue::Integer(*b as i64),
        (PgType::Any, v) => SqlValue::Text(v.to_string()),
        _ => return Err(unexpected()),
    })
}

/// A server-form value written one way only, for comparing the two sides: numbers of
/// a `double`/`numeric` column as floats, hex in lower case, object keys sorted.
pub fn canonical(v: &Value, ty: PgType) -> Value {
    match (ty, v) {
        (PgType::Double | PgType::Numeric, Value::Number(n)) => n.as_f64().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null),
        (PgType::Bytea, Value::String(s)) => Value::String(s.to_lowercase()),
        (_, v) => sorted(v),
    }
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&o[k]))).collect::<Map<_, _>>())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len() / 2).map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_goes_up_comes_back_as_the_app_wrote_it() {
        let cases: Vec<(SqlValue, PgType)> = vec![
            (SqlValue::Integer(1733300000), PgType::Bigint),
            (SqlValue::Integer(1), PgType::Boolean),
            (SqlValue::Real(4.5), PgType::Double),
            (SqlValue::Text("olá".into()), PgType::Text),
            (SqlValue::Blob(vec![0, 255, 16]), PgType::Bytea),
            (SqlValue::Text(r#"{"a":[1,2]}"#.into()), PgType::Jsonb),
            (SqlValue::Integer(7), PgType::Any),
            (SqlValue::Text("seven".into()), PgType::Any),
            (SqlValue::Blob(vec![1, 2]), PgType::Any),
            (SqlValue::Null, PgType::Text),
        ];
        for (v, ty) in cases {
            let up = to_pg(ValueRef::from(&v), ty).unwrap();
            assert_eq!(from_pg(&up, ty).unwrap(), v, "{ty:?}");
        }
    }

    #[test]
    fn a_server_value_of_the_wrong_kind_is_refused_with_why() {
        let e = from_pg(&json!("yes"), PgType::Bigint).unwrap_err();
        assert!(e.contains("bigint"), "{e}");
        assert!(from_pg(&json!("\\xzz"), PgType::Bytea).is_err());
    }
}
