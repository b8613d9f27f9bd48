//! Writes: POST (insert and upsert), PUT (single-row upsert), PATCH and DELETE, with
//! `Prefer: return`, `missing=default`, `columns` and `on_conflict`.


use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::error::RestError;
use supasync_query_syntax::QueryParams;
use super::prefer::{Prefer, Resolution, Return};
use super::sql::{Params, Target};
use crate::gateway::Caller;
use crate::schema::{quote_ident, Table};
use crate::state::AppState;
use super::read::{content_range, first_object};
use super::response::{json_response, set_header, wants_single};
use super::tx::{Output, Stmt, TxPlan, run};

/// The rows of a write body, and the columns they name.
pub(super) fn body_rows(body: &[u8]) -> Result<(String, Vec<String>, bool), RestError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| RestError::body(format!("Empty or invalid json: {e}")))?;
    let (rows, is_array) = match v {
        Value::Object(_) => (vec![v], false),
        Value::Array(a) => (a, true),
        _ => return Err(RestError::body("Empty or invalid json: expected an object or an array of objects")),
    };
    let mut keys: Vec<String> = vec![];
    for r in &rows {
        let Value::Object(m) = r else {
            return Err(RestError::body("All object keys must match: every element must be an object"));
        };
        for k in m.keys() {
            if !keys.iter().any(|x| x == k) {
                keys.push(k.clone());
            }
        }
    }
    Ok((Value::Array(rows).to_string(), keys, is_array))
}

/// The `RETURNING` clause and the final SELECT of a write, per `Prefer: return`.
pub(super) fn write_tail(t: &Target<'_>, q: &QueryParams, prefer: &Prefer, p: &mut Params) -> Result<(String, String), RestError> {
    if prefer.ret == Return::Representation {
        let sel = t.select_sql(q.select.as_deref(), &q.embedded, p)?;
        Ok((
            "RETURNING _t.*".into(),
            format!("SELECT count(*), coalesce(json_agg(_s), '[]')::text FROM (SELECT {} FROM _w AS _t) _s", sel.list),
        ))
    } else {
        Ok(("RETURNING 1".into(), "SELECT count(*), NULL::text FROM _w".into()))
    }
}

pub(super) fn write_response(status_repr: StatusCode, status_minimal: StatusCode, out: &Output, prefer: &Prefer, single: bool) -> Response {
    let mut r = if prefer.ret == Return::Representation {
        let body = out.json.clone().unwrap_or_else(|| "[]".into());
        json_response(status_repr, if single { first_object(&body) } else { body })
    } else {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = status_minimal;
        r
    };
    let total = prefer.count.is_some().then_some(out.count);
    let range = if prefer.ret == Return::Representation {
        content_range(0, out.count, total)
    } else {
        format!("*/{}", total.map_or_else(|| "*".to_string(), |t| t.to_string()))
    };
    set_header(&mut r, "content-range", &range);
    prefer.applied(&mut r);
    r
}

pub(super) fn checked_columns(t: &Table, cols: &[String]) -> Result<Vec<String>, RestError> {
    cols.iter()
        .map(|c| {
            t.column(c)
                .map(|col| col.name.clone())
                .ok_or_else(|| RestError::no_write_column(&t.name, c))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn insert(st: &AppState, caller: &Caller, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer, body: &[u8]) -> Result<Response, RestError> {
    let (rows_json, keys, _) = body_rows(body)?;
    let cols = checked_columns(&t.table, q.columns.as_deref().unwrap_or(&keys))?;
    let mut p = Params::default();
    let body_param = p.text(Some(rows_json));
    let qt = t.table.qualified();
    let (select_exprs, from) = if prefer.missing_default {
        // Each row's defaults are evaluated whether or not the row gives the column, as
        // PostgREST does (a sequence advances once per row); the correlated `WHERE`
        // keeps the planner from evaluating them once for all rows.
        let (mut exprs, mut defaults) = (vec![], vec![]);
        for c in &cols {
            let col = t.table.column(c).ok_or_else(|| RestError::no_write_column(&t.table.name, c))?;
            let qc = quote_ident(c);
            match &col.default {
                Some(d) => {
                    let name = format!("_d{}", defaults.len());
                    exprs.push(format!("CASE WHEN _e.j ? {} THEN _r.{qc} ELSE _d.{name} END", p.text(Some(c.clone()))));
                    defaults.push(format!("{d} AS {name}"));
                }
                None => exprs.push(format!("_r.{qc}")),
            }
        }
        let defaults_sql = if defaults.is_empty() {
            String::new()
        } else {
            format!(" CROSS JOIN LATERAL (SELECT {} WHERE _e.j IS NOT NULL) AS _d", defaults.join(", "))
        };
        (
            exprs,
            format!("jsonb_array_elements(CAST({body_param} AS jsonb)) AS _e(j) CROSS JOIN LATERAL jsonb_populate_record(NULL::{qt}, _e.j) AS _r{defaults_sql}"),
        )
    } else {
        (
            cols.iter().map(|c| format!("_r.{}", quote_ident(c))).collect(),
            format!("json_populate_recordset(NULL::{qt}, CAST({body_param} AS json)) AS _r"),
        )
    };
    let col_list = cols.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    let mut sql = format!(
        "INSERT INTO {qt} AS _t ({col_list}) SELECT {} FROM {from}",
        select_exprs.join(", ")
    );
    if let Some(res) = prefer.resolution {
        let target = match &q.on_conflict {
            Some(c) => checked_columns(&t.table, c)?,
            None => t.table.primary_key.clone(),
        };
        if target.is_empty() {
            return Err(RestError::new(
                StatusCode::BAD_REQUEST,
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            ));
        }
        let target_sql = target.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
        if res == Resolution::Merge && !cols.is_empty() {
            let sets = cols
                .iter()
                .map(|c| format!("{q} = EXCLUDED.{q}", q = quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            sql.push_str(&format!(" ON CONFLICT ({target_sql}) DO UPDATE SET {sets}"));
        } else {
            sql.push_str(&format!(" ON CONFLICT ({target_sql}) DO NOTHING"));
        }
    }
    let (returning, tail) = write_tail(t, q, prefer, &mut p)?;
    // An upsert that returns its rows also says whether it inserted any (`xmax = 0` on
    // a row this statement inserted): PostgREST answers 200, not 201, when every row
    // already existed. (Without a representation the answer stays 201: reading `xmax`
    // would make the insert need a SELECT policy it does not otherwise need.)
    let counts_inserted = prefer.resolution == Some(Resolution::Merge) && prefer.ret == Return::Representation;
    let sql = if counts_inserted {
        format!(
            "WITH _w0 AS ({sql} RETURNING _t AS _row, (_t.xmax = 0) AS _ins), _w AS (SELECT (_w0._row).* FROM _w0)
             SELECT _o.*, NULL::int8, (SELECT count(*) FROM _w0 WHERE _ins) FROM ({tail}) _o"
        )
    } else {
        format!("WITH _w AS ({sql} {returning}) {tail}")
    };
    let stmt = Stmt::new(sql, p);
    let single = wants_single(headers);
    let out = run(
        st,
        caller,
        &Method::POST,
        path,
        headers,
        TxPlan { read_only: false, rollback: prefer.tx_rollback, single, max_affected: None },
        vec![stmt],
    )
    .await?;
    let status = if out[0].inserted == Some(0) { StatusCode::OK } else { StatusCode::CREATED };
    Ok(write_response(status, StatusCode::CREATED, &out[0], prefer, single))
}

/// `PUT`: one row, named by `eq` filters on every primary-key column, inserted or
/// replaced whole (PostgREST's single-row upsert). The body must be one object with the
/// same key values as the filters.
#[allow(clippy::too_many_arguments)]
pub(super) async fn put(st: &AppState, caller: &Caller, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer, body: &[u8]) -> Result<Response, RestError> {
    let pk = &t.table.primary_key;
    let keyed: Vec<(&str, &str)> = q
        .conds
        .iter()
        .filter_map(|c| match c {
            supasync_query_syntax::Cond::Leaf(l) if l.op == supasync_query_syntax::Op::Eq && !l.negate && l.quantifier.is_none() => Some((l.column.as_str(), l.value.as_str())),
            _ => None,
        })
        .collect();
    let exact = !pk.is_empty()
        && keyed.len() == q.conds.len()
        && keyed.len() == pk.len()
        && pk.iter().all(|k| keyed.iter().any(|(c, _)| c == k));
    if !exact || q.limit.is_some() || q.offset.is_some() {
        return Err(RestError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "PGRST105",
            "Filters must include all and only primary key columns with 'eq' operators",
        ));
    }
    let row: serde_json::Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(RestError::body("Empty or invalid json: PUT takes one object")),
        Err(e) => return Err(RestError::body(format!("Empty or invalid json: {e}"))),
    };
    let matches = keyed.iter().all(|(c, v)| match row.get(*c) {
        Some(Value::String(s)) => s == v,
        Some(Value::Number(n)) => n.to_string() == *v,
        _ => false,
    });
    if !matches {
        return Err(RestError::new(StatusCode::BAD_REQUEST, "PGRST115", "Payload values do not match URL in primary key column(s)"));
    }
    // The rest is an upsert of that row, merging on the primary key.
    let mut merge = prefer.clone();
    merge.resolution = Some(Resolution::Merge);
    let q = QueryParams { conds: vec![], on_conflict: None, ..q.clone() };
    let resp = insert(st, caller, path, headers, t, &q, &merge, body).await?;
    let mut resp = resp;
    // PUT answers 200 with the row, 204 without, whether it inserted or replaced.
    *resp.status_mut() = if prefer.ret == Return::Representation { StatusCode::OK } else { StatusCode::NO_CONTENT };
    Ok(resp)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn update(st: &AppState, caller: &Caller, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer, body: &[u8]) -> Result<Response, RestError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| RestError::body(format!("Empty or invalid json: {e}")))?;
    let Value::Object(m) = &v else {
        return Err(RestError::body("Empty or invalid json: PATCH takes one object"));
    };
    let cols = checked_columns(&t.table, &m.keys().cloned().collect::<Vec<_>>())?;
    let single = wants_single(headers);
    if cols.is_empty() {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        return Ok(r);
    }
    let mut p = Params::default();
    let body_param = p.text(Some(v.to_string()));
    let wh = t.where_sql(&q.conds, &mut p)?;
    let sets = cols
        .iter()
        .map(|c| format!("{q} = _r.{q}", q = quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let qt = t.table.qualified();
    let (returning, tail) = write_tail(t, q, prefer, &mut p)?;
    let stmt = Stmt::new(
        format!(
            "WITH _w AS (UPDATE {qt} AS _t SET {sets} FROM json_populate_record(NULL::{qt}, CAST({body_param} AS json)) AS _r WHERE {wh} {returning}) {tail}"
        ),
        p,
    );
    let out = run(
        st,
        caller,
        &Method::PATCH,
        path,
        headers,
        TxPlan { read_only: false, rollback: prefer.tx_rollback, single, max_affected: prefer.max_affected },
        vec![stmt],
    )
    .await?;
    Ok(write_response(StatusCode::OK, StatusCode::NO_CONTENT, &out[0], prefer, single))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn delete(st: &AppState, caller: &Caller, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer) -> Result<Response, RestError> {
    let mut p = Params::default();
    let wh = t.where_sql(&q.conds, &mut p)?;
    let (returning, tail) = write_tail(t, q, prefer, &mut p)?;
    let stmt = Stmt::new(
        format!("WITH _w AS (DELETE FROM {} AS _t WHERE {wh} {returning}) {tail}", t.table.qualified()),
        p,
    );
    let single = wants_single(headers);
    let out = run(
        st,
        caller,
        &Method::DELETE,
        path,
        headers,
        TxPlan { read_only: false, rollback: prefer.tx_rollback, single, max_affected: prefer.max_affected },
        vec![stmt],
    )
    .await?;
    Ok(write_response(StatusCode::OK, StatusCode::NO_CONTENT, &out[0], prefer, single))
}
