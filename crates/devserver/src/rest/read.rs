//! Reads: `select` with embeds, filters, order and paging (query and `Range`), counts,
//! and the 200/206/416 answers with `Content-Range`; a function's rows read the same way.


use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::error::RestError;
use supasync_query_syntax::QueryParams;
use super::prefer::Prefer;
use super::sql::{Params, SelectSql, Target};
use crate::gateway::Caller;
use crate::schema::quote_ident;
use crate::state::AppState;
use super::response::{Media, json_response, not_single, set_header, wants_single};
use super::tx::{Output, Stmt, TxPlan, run};

/// `Range: a-b` as (offset, limit).
pub(super) fn range_header(headers: &HeaderMap) -> Option<(i64, Option<i64>)> {
    let v = headers.get("range")?.to_str().ok()?;
    let (a, b) = v.trim().split_once('-')?;
    let a: i64 = a.trim().parse().ok()?;
    let b: Option<i64> = if b.trim().is_empty() { None } else { b.trim().parse().ok() };
    Some((a, b.map(|b| (b - a + 1).max(0))))
}

pub(super) fn content_range(offset: i64, n: i64, total: Option<i64>) -> String {
    let total = total.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
    if n == 0 {
        format!("*/{total}")
    } else {
        format!("{}-{}/{}", offset, offset + n - 1, total)
    }
}

/// `offset` and `limit` from the query and the `Range` header (the narrower wins).
pub(super) fn page_bounds(q: &QueryParams, headers: &HeaderMap) -> (i64, Option<i64>) {
    let mut offset = q.offset.unwrap_or(0);
    let mut limit = q.limit;
    if let Some((a, l)) = range_header(headers) {
        offset = offset.max(a);
        limit = match (limit, l) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
    }
    (offset, limit)
}

/// ` LIMIT $n OFFSET $m`, as far as given.
pub(super) fn page_sql(offset: i64, limit: Option<i64>, p: &mut Params) -> String {
    let mut page = String::new();
    if let Some(l) = limit {
        page.push_str(&format!(" LIMIT {}", p.int(l)));
    }
    if offset > 0 {
        page.push_str(&format!(" OFFSET {}", p.int(offset)));
    }
    page
}

/// The answer to a read (of a table, or of a function's rows): 206 and `Content-Range`
/// against the total when one was counted, 416 past the end, one object when asked.
pub(super) fn rows_response(method: &Method, rows: &Output, total: Option<i64>, offset: i64, single: bool, prefer: &Prefer) -> Result<Response, RestError> {
    if let Some(total) = total {
        if offset > 0 && rows.count == 0 && offset >= total {
            return Err(RestError::new(StatusCode::RANGE_NOT_SATISFIABLE, "PGRST103", "Requested range not satisfiable")
                .details(format!("An offset of {offset} was requested, but there are only {total} rows.")));
        }
    }
    let status = match total {
        Some(total) if offset > 0 || rows.count < total => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    };
    let body = rows.json.clone().unwrap_or_else(|| "[]".into());
    let body = if single { first_object(&body) } else { body };
    let mut r = if *method == Method::HEAD {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = status;
        set_header(&mut r, "content-type", "application/json; charset=utf-8");
        r
    } else {
        json_response(status, body)
    };
    set_header(&mut r, "content-range", &content_range(offset, rows.count, total));
    prefer.applied(&mut r);
    Ok(r)
}

/// The pieces of a read over alias `_t`: select list, `WHERE` (with `!inner` embeds'
/// conditions), `ORDER BY`, `LIMIT`/`OFFSET`, and the offset for `Content-Range`.
pub(super) struct ReadParts {
    pub(super) sel: SelectSql,
    pub(super) wh: String,
    pub(super) order: String,
    pub(super) page: String,
    pub(super) offset: i64,
}

pub(super) fn read_parts(t: &Target<'_>, q: &QueryParams, headers: &HeaderMap, p: &mut Params) -> Result<ReadParts, RestError> {
    let (offset, limit) = page_bounds(q, headers);
    let sel = t.select_sql(q.select.as_deref(), &q.embedded, p)?;
    let mut wh = t.where_sql(&q.conds, p)?;
    for c in &sel.inner_conds {
        wh = format!("{wh} AND {c}");
    }
    let order = t.order_sql(&q.order, p)?;
    let page = page_sql(offset, limit, p);
    Ok(ReadParts { sel, wh, order, page, offset })
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn read(st: &AppState, caller: &Caller, method: &Method, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer, answer: &Media) -> Result<Response, RestError> {
    let mut p = Params::default();
    let ReadParts { sel, wh, order, page, offset } = read_parts(t, q, headers, &mut p)?;
    // The rows, aggregated into the answer's format.
    let body = match answer {
        Media::Json { strip_nulls: false } | Media::Plan { .. } => "coalesce(json_agg(_s), '[]')::text".to_string(),
        Media::Json { strip_nulls: true } => "coalesce(json_strip_nulls(json_agg(_s)), '[]')::text".to_string(),
        // PostgREST's CSV: the column names, then each row as PostgreSQL writes a record
        // (quoted where needed, NULL as nothing) without its parentheses.
        Media::Csv => format!(
            "{} || chr(10) || coalesce(string_agg(substring(_s::text, 2, length(_s::text) - 2), chr(10)), '')",
            p.text(Some(sel.names.join(",")))
        ),
        Media::GeoJson => {
            let Some(postgis) = &t.cache.postgis else {
                return Err(RestError::new(StatusCode::NOT_ACCEPTABLE, "PGRST107", "None of these media types are available: application/geo+json")
                    .hint("GeoJSON answers need the PostGIS extension in the database"));
            };
            format!(
                "json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg({}.ST_AsGeoJSON(_s)::json), '[]'))::text",
                quote_ident(postgis)
            )
        }
    };
    // `planned`: the planner's estimate for the rows (206 when it says more than came),
    // from its own EXPLAIN over the filters. `exact` and `estimated` count exactly, in
    // the same statement (PostgREST counts `estimated` exactly below `db-max-rows`, and
    // supasync-dev sets no such limit).
    let planned = prefer.count.as_deref() == Some("planned");
    let exact = prefer.count.is_some() && !planned;
    let qt = t.table.qualified();
    let total_col = if exact { format!(", (SELECT count(*) FROM {qt} AS _t WHERE {wh})") } else { String::new() };
    let mut data = Stmt::new(
        format!(
            "SELECT count(*), {body}{total_col} FROM (SELECT {} FROM {qt} AS _t WHERE {wh}{}{order}{page}) _s",
            sel.list, sel.group_by
        ),
        p,
    );
    if let Media::Plan { text, options } = answer {
        let mut opts = vec![if *text { "FORMAT TEXT" } else { "FORMAT JSON" }];
        opts.extend(options.iter().copied());
        data.explain = Some(opts.join(", "));
    }
    let mut stmts = vec![data];
    if planned {
        let mut cp = Params::default();
        let cwh = t.where_sql(&q.conds, &mut cp)?;
        stmts.push(Stmt { sql: format!("SELECT 1 FROM {qt} AS _t WHERE {cwh}"), params: cp, planned: true, explain: None });
    }
    let single = wants_single(headers);
    let out = run(
        st,
        caller,
        method,
        path,
        headers,
        TxPlan { read_only: true, rollback: false, single: false, max_affected: None },
        stmts,
    )
    .await?;
    let content_type = match answer {
        Media::Json { .. } => None,
        Media::Csv => Some("text/csv; charset=utf-8"),
        Media::GeoJson => Some("application/geo+json; charset=utf-8"),
        Media::Plan { text: true, .. } => Some("application/vnd.pgrst.plan+text; for=\"application/json\"; charset=utf-8"),
        Media::Plan { text: false, .. } => Some("application/vnd.pgrst.plan+json; for=\"application/json\"; charset=utf-8"),
    };
    if let Some(content_type) = content_type {
        let mut r = Response::new(Body::from(out[0].json.clone().unwrap_or_default()));
        set_header(&mut r, "content-type", content_type);
        if !matches!(answer, Media::Plan { .. }) {
            set_header(&mut r, "content-range", &content_range(offset, out[0].count, out[0].total));
        }
        return Ok(r);
    }
    // `single` is checked on the rows, not on the estimate that may follow them.
    if single && out[0].count != 1 {
        return Err(not_single(out[0].count));
    }
    let total = if planned { Some(out[1].count) } else { out[0].total };
    rows_response(method, &out[0], total, offset, single, prefer)
}

/// A function's rows read like a table's: `select` (embeds included, when the rows are
/// a table's), filters, `order`, `limit`/`offset`/`Range` and `Prefer: count`. The
/// function runs once (`MATERIALIZED`): a volatile one must not run again for the count.
#[allow(clippy::too_many_arguments)]
pub(super) async fn rpc_rows(
    st: &AppState,
    caller: &Caller,
    method: &Method,
    name: &str,
    headers: &HeaderMap,
    t: &Target<'_>,
    call: &str,
    mut p: Params,
    q: &QueryParams,
    prefer: &Prefer,
    plan: TxPlan,
    returns_set: bool,
) -> Result<Response, RestError> {
    let ReadParts { sel, wh, order, page, offset } = read_parts(t, q, headers, &mut p)?;
    let total = if prefer.count.is_some() {
        format!("(SELECT count(*) FROM _src AS _t WHERE {wh})")
    } else {
        "NULL::int8".into()
    };
    let sql = format!(
        "WITH _src AS MATERIALIZED (SELECT * FROM {call} AS _f) \
         SELECT count(*), coalesce(json_agg(_s), '[]')::text, {total} FROM (SELECT {} FROM _src AS _t WHERE {wh}{}{order}{page}) _s",
        sel.list,
        sel.group_by
    );
    let out = run(st, caller, method, &format!("/rpc/{name}"), headers, plan, vec![Stmt::new(sql, p)]).await?;
    let single = wants_single(headers) || !returns_set;
    rows_response(method, &out[0], out[0].total, offset, single, prefer)
}

/// The one object of a one-element JSON array.
pub(super) fn first_object(json_array: &str) -> String {
    match serde_json::from_str::<Value>(json_array) {
        Ok(Value::Array(mut a)) if !a.is_empty() => a.swap_remove(0).to_string(),
        _ => "null".into(),
    }
}
