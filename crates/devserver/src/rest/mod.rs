//! `/rest/v1`: the PostgREST behaviour that supabase-js and our SDK use.
//!
//! Every request runs in one transaction that first sets, transaction-locally, `role` to
//! the JWT's role and `request.jwt.claims` to its claims, exactly as PostgREST does, so
//! row-level security is PostgreSQL's own and `auth.uid()` works in policies. Reads run
//! in READ ONLY transactions. Responses are built by PostgreSQL's `json_agg`, so values
//! are rendered exactly as PostgREST renders them.

pub mod error;
pub mod params;
mod prefer;
pub mod sql;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::Value;
use tokio_postgres::types::Type;

use self::error::RestError;
use self::params::{parse_query, QueryParams};
use self::prefer::{Prefer, Resolution, Return};
use self::sql::{Params, SelectSql, Target};
use crate::gateway::{self, Caller};
use crate::schema::{quote_ident, Function, Table};
use crate::state::AppState;

/// The `/rest/v1` routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/rest/v1/rpc/{function}", get(rpc).post(rpc))
        .route("/rest/v1/{table}", any(table))
}

/// One statement to run inside the request's transaction.
struct Stmt {
    sql: String,
    params: Params,
    /// Run as `EXPLAIN (FORMAT JSON)` and return the planner's row estimate as the count
    /// (`Prefer: count=planned`).
    planned: bool,
    /// Run as `EXPLAIN (these options)` and return the plan as the text.
    explain: Option<String>,
}

impl Stmt {
    fn new(sql: String, params: Params) -> Stmt {
        Stmt { sql, params, planned: false, explain: None }
    }
}

/// What a statement of ours returns: `(row count, json text)`.
struct Output {
    count: i64,
    json: Option<String>,
    /// A third column, when the statement has one: the total for `Prefer: count`.
    total: Option<i64>,
    /// A fourth column, when the statement has one: how many rows an upsert inserted.
    inserted: Option<i64>,
}

/// How the request's transaction should end.
struct TxPlan {
    read_only: bool,
    rollback: bool,
    /// Fail with PGRST116 (and roll back) unless the last statement returned one row.
    single: bool,
    /// Fail with PGRST124 (and roll back) if the last statement touched more rows.
    max_affected: Option<i64>,
}

async fn run(st: &AppState, caller: &Caller, method: &Method, path: &str, headers: &HeaderMap, plan: TxPlan, stmts: Vec<Stmt>) -> Result<Vec<Output>, RestError> {
    let mut client = st
        .client()
        .await
        .map_err(|m| RestError::new(StatusCode::SERVICE_UNAVAILABLE, "PGRST000", m))?;
    let db = |e: tokio_postgres::Error| RestError::db(crate::pgerr::parts(&e), caller.is_anon());
    let tx = client.build_transaction().read_only(plan.read_only).start().await.map_err(db)?;
    if stmts.iter().any(|s| s.explain.as_deref().is_some_and(|o| o.contains("VERBOSE"))) {
        // A verbose plan shows the query identifier (set while still the superuser).
        tx.batch_execute("SET LOCAL compute_query_id = on").await.map_err(db)?;
    }
    let claims = Value::Object(caller.claims.clone()).to_string();
    let hdrs: serde_json::Map<String, Value> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), Value::String(v.to_str().ok()?.to_string()))))
        .collect();
    let hdrs = Value::Object(hdrs).to_string();
    // PostgREST's search path: the request's schema, then Supabase's extra search path.
    let schema = profile(st, method, headers).unwrap_or_else(|_| "public".into());
    let search_path = format!("\"{}\", \"public\", \"extensions\"", schema.replace('"', "\"\""));
    let method_name = method.as_str();
    let settings: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 6] = [
        (&caller.role, Type::TEXT),
        (&claims, Type::TEXT),
        (&method_name, Type::TEXT),
        (&path, Type::TEXT),
        (&hdrs, Type::TEXT),
        (&search_path, Type::TEXT),
    ];
    let setup = tx.execute_typed(
        "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
                set_config('request.method', $3, true), set_config('request.path', $4, true),
                set_config('request.headers', $5, true), set_config('search_path', $6, true)",
        &settings,
    );
    // The settings and the first statement go out together (typed statements are
    // parsed, bound and run in one message each, and PostgreSQL runs them in order):
    // one round trip instead of four. Should the settings fail, the statement fails
    // too (the transaction is aborted) and the settings' error is the one reported.
    let mut out = Vec::with_capacity(stmts.len());
    let mut rest = stmts.iter();
    match rest.next() {
        Some(first) => {
            let (set, first) = tokio::join!(setup, run_one(&tx, first));
            set.map_err(db)?;
            out.push(first.map_err(db)?);
        }
        None => {
            setup.await.map_err(db)?;
        }
    }
    for s in rest {
        out.push(run_one(&tx, s).await.map_err(db)?);
    }
    if plan.single {
        if let Some(last) = out.last() {
            if last.count != 1 {
                let _ = tx.rollback().await;
                return Err(not_single(last.count));
            }
        }
    }
    if let (Some(max), Some(last)) = (plan.max_affected, out.last()) {
        if last.count > max {
            let _ = tx.rollback().await;
            return Err(RestError::new(StatusCode::BAD_REQUEST, "PGRST124", "Query result exceeds max-affected preference constraint")
                .details(format!("The query affects {} rows", last.count)));
        }
    }
    if plan.rollback {
        tx.rollback().await.map_err(db)?;
    } else {
        tx.commit().await.map_err(db)?;
    }
    Ok(out)
}

/// Run one statement of a request: as itself, as its plan, or as the planner's count.
async fn run_one(tx: &tokio_postgres::Transaction<'_>, s: &Stmt) -> Result<Output, tokio_postgres::Error> {
    let params = s.params.typed();
    if let Some(options) = &s.explain {
        let rows = tx.query_typed(&format!("EXPLAIN ({options}) {}", s.sql), &params).await?;
        let text = if options.contains("FORMAT JSON") {
            rows.first().map(|r| r.get::<_, Value>(0).to_string()).unwrap_or_default()
        } else {
            rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
        };
        return Ok(Output { count: 0, json: Some(text), total: None, inserted: None });
    }
    if s.planned {
        let row = tx.query_typed_one(&format!("EXPLAIN (FORMAT JSON) {}", s.sql), &params).await?;
        let plan: Value = row.get(0);
        let rows = plan.pointer("/0/Plan/Plan Rows").and_then(Value::as_f64).unwrap_or(0.0);
        return Ok(Output { count: rows.round() as i64, json: None, total: None, inserted: None });
    }
    let row = tx.query_typed_one(&s.sql, &params).await?;
    Ok(Output {
        count: row.get(0),
        json: row.get(1),
        total: if row.len() > 2 { row.get(2) } else { None },
        inserted: if row.len() > 3 { row.get(3) } else { None },
    })
}

fn not_single(n: i64) -> RestError {
    RestError::new(StatusCode::NOT_ACCEPTABLE, "PGRST116", "Cannot coerce the result to a single JSON object")
        .details(format!("The result contains {n} rows"))
}

/// What a read answers with, from `Accept` (the first type it can produce wins).
#[derive(Debug, Clone, PartialEq)]
enum Media {
    /// JSON rows; `nulls=stripped` drops null fields.
    Json { strip_nulls: bool },
    /// `text/csv`: a header line, then each row as PostgreSQL writes a record.
    Csv,
    /// `application/geo+json`: a FeatureCollection (PostGIS's `ST_AsGeoJSON` per row).
    GeoJson,
    /// `application/vnd.pgrst.plan[+json|+text]`: the statement's execution plan, when
    /// `pgrst.db_plan_enabled` is on.
    Plan { text: bool, options: Vec<&'static str> },
}

fn media(headers: &HeaderMap, config: &crate::schema::InDatabaseConfig) -> Result<Media, RestError> {
    let Some(accept) = headers.get("accept").and_then(|v| v.to_str().ok()) else { return Ok(Media::Json { strip_nulls: false }) };
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let ty = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<String> = parts.map(|p| p.replace(' ', "").to_ascii_lowercase()).collect();
        let strip_nulls = params.iter().any(|p| p == "nulls=stripped");
        match ty.as_str() {
            "" | "*/*" | "application/*" | "application/json" | "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object"
            | "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => return Ok(Media::Json { strip_nulls }),
            "text/csv" => return Ok(Media::Csv),
            "application/geo+json" => return Ok(Media::GeoJson),
            "application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+json" | "application/vnd.pgrst.plan+text" if config.plans => {
                let options = params
                    .iter()
                    .filter_map(|p| p.strip_prefix("options="))
                    .flat_map(|o| o.split('|'))
                    .filter_map(|o| match o {
                        "analyze" => Some("ANALYZE"),
                        "verbose" => Some("VERBOSE"),
                        "settings" => Some("SETTINGS"),
                        "buffers" => Some("BUFFERS"),
                        "wal" => Some("WAL"),
                        _ => None,
                    })
                    .collect();
                return Ok(Media::Plan { text: ty.ends_with("+text"), options });
            }
            _ => {}
        }
    }
    // PostgREST's status for an Accept it cannot meet: 406 (its own test suite pins it).
    Err(RestError::new(
        StatusCode::NOT_ACCEPTABLE,
        "PGRST107",
        format!("None of these media types are available: {accept}"),
    ))
}

/// Writes and RPC answer JSON only.
fn json_only(headers: &HeaderMap) -> Result<bool, RestError> {
    match media(headers, &crate::schema::InDatabaseConfig::default())? {
        Media::Json { strip_nulls } => Ok(strip_nulls),
        _ => Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST107",
            format!(
                "None of these media types are available: {}",
                headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default()
            ),
        )),
    }
}

fn wants_single(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/vnd.pgrst.object+json"))
}

/// The schema a request targets: `Accept-Profile` for reads, `Content-Profile` for writes.
fn profile(st: &AppState, method: &Method, headers: &HeaderMap) -> Result<String, RestError> {
    let h = if matches!(*method, Method::GET | Method::HEAD) { "accept-profile" } else { "content-profile" };
    let schema = headers
        .get(h)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| st.settings.schemas[0].clone());
    if !st.settings.schemas.contains(&schema) {
        return Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST106",
            format!("The schema must be one of the following: {}", st.settings.schemas.join(", ")),
        ));
    }
    Ok(schema)
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

fn set_header(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

async fn table(
    State(st): State<Arc<AppState>>,
    method: Method,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match gateway::rest_caller(&headers, query.as_deref(), &st.keys) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match handle_table(&st, &caller, method, &name, query.as_deref().unwrap_or(""), &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle_table(
    st: &AppState,
    caller: &Caller,
    method: Method,
    name: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, RestError> {
    let schema = profile(st, &method, headers)?;
    let (cache, table) = st.table(&schema, name).await.ok_or_else(|| RestError::no_table(&schema, name))?;
    let answer = media(headers, &cache.config)?;
    if answer != (Media::Json { strip_nulls: false }) && !matches!(method, Method::GET | Method::HEAD) {
        json_only(headers)?;
    }
    let q = parse_query(query, false)?;
    let prefer = Prefer::parse(headers)?;
    let target = Target { cache: &cache, table: table.clone() };
    let path = format!("/{name}");
    match method {
        Method::GET | Method::HEAD => read(st, caller, &method, &path, headers, &target, &q, &prefer, &answer).await,
        Method::POST => insert(st, caller, &path, headers, &target, &q, &prefer, &body).await,
        Method::PATCH => update(st, caller, &path, headers, &target, &q, &prefer, &body).await,
        Method::DELETE => delete(st, caller, &path, headers, &target, &q, &prefer).await,
        Method::PUT => put(st, caller, &path, headers, &target, &q, &prefer, &body).await,
        _ => Err(RestError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "PGRST117",
            format!("Unsupported HTTP method: {method}"),
        )),
    }
}

/// `Range: a-b` as (offset, limit).
fn range_header(headers: &HeaderMap) -> Option<(i64, Option<i64>)> {
    let v = headers.get("range")?.to_str().ok()?;
    let (a, b) = v.trim().split_once('-')?;
    let a: i64 = a.trim().parse().ok()?;
    let b: Option<i64> = if b.trim().is_empty() { None } else { b.trim().parse().ok() };
    Some((a, b.map(|b| (b - a + 1).max(0))))
}

fn content_range(offset: i64, n: i64, total: Option<i64>) -> String {
    let total = total.map(|t| t.to_string()).unwrap_or_else(|| "*".into());
    if n == 0 {
        format!("*/{total}")
    } else {
        format!("{}-{}/{}", offset, offset + n - 1, total)
    }
}

/// `offset` and `limit` from the query and the `Range` header (the narrower wins).
fn page_bounds(q: &QueryParams, headers: &HeaderMap) -> (i64, Option<i64>) {
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
fn page_sql(offset: i64, limit: Option<i64>, p: &mut Params) -> String {
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
fn rows_response(method: &Method, rows: &Output, total: Option<i64>, offset: i64, single: bool, prefer: &Prefer) -> Result<Response, RestError> {
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
struct ReadParts {
    sel: SelectSql,
    wh: String,
    order: String,
    page: String,
    offset: i64,
}

fn read_parts(t: &Target<'_>, q: &QueryParams, headers: &HeaderMap, p: &mut Params) -> Result<ReadParts, RestError> {
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
async fn read(st: &AppState, caller: &Caller, method: &Method, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer, answer: &Media) -> Result<Response, RestError> {
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
async fn rpc_rows(
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
fn first_object(json_array: &str) -> String {
    match serde_json::from_str::<Value>(json_array) {
        Ok(Value::Array(mut a)) if !a.is_empty() => a.swap_remove(0).to_string(),
        _ => "null".into(),
    }
}

/// The rows of a write body, and the columns they name.
fn body_rows(body: &[u8]) -> Result<(String, Vec<String>, bool), RestError> {
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
fn write_tail(t: &Target<'_>, q: &QueryParams, prefer: &Prefer, p: &mut Params) -> Result<(String, String), RestError> {
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

fn write_response(status_repr: StatusCode, status_minimal: StatusCode, out: &Output, prefer: &Prefer, single: bool) -> Response {
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

fn checked_columns(t: &Table, cols: &[String]) -> Result<Vec<String>, RestError> {
    cols.iter()
        .map(|c| {
            t.column(c)
                .map(|col| col.name.clone())
                .ok_or_else(|| RestError::no_write_column(&t.name, c))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn insert(st: &AppState, caller: &Caller, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer, body: &[u8]) -> Result<Response, RestError> {
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
async fn put(st: &AppState, caller: &Caller, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer, body: &[u8]) -> Result<Response, RestError> {
    let pk = &t.table.primary_key;
    let keyed: Vec<(&str, &str)> = q
        .conds
        .iter()
        .filter_map(|c| match c {
            params::Cond::Leaf(l) if l.op == params::Op::Eq && !l.negate && l.quantifier.is_none() => Some((l.column.as_str(), l.value.as_str())),
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
async fn update(st: &AppState, caller: &Caller, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer, body: &[u8]) -> Result<Response, RestError> {
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
async fn delete(st: &AppState, caller: &Caller, path: &str, headers: &HeaderMap, t: &Target<'_>, q: &QueryParams, prefer: &Prefer) -> Result<Response, RestError> {
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

async fn rpc(
    State(st): State<Arc<AppState>>,
    method: Method,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match gateway::rest_caller(&headers, query.as_deref(), &st.keys) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match handle_rpc(&st, &caller, method, &name, query.as_deref().unwrap_or(""), &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A function whose one argument is unnamed and of a type that can take the whole request
/// body (PostgREST passes such a body as it came).
fn takes_body(f: &Function) -> bool {
    f.args.len() == 1 && f.args[0].0.is_empty() && matches!(f.args[0].1.as_str(), "json" | "jsonb" | "text" | "xml" | "bytea")
}

/// The overloads of a function that fit the arguments given by name, as PostgREST picks
/// them: every given name is a parameter and every parameter without a default is given;
/// no arguments fit a function without parameters; any body fits a function taking the
/// whole body (and no body, if its argument has a default). Other unnamed parameters
/// cannot be passed over HTTP.
fn fitting_functions<'a>(fns: &'a [Arc<Function>], given: &[String]) -> Vec<&'a Arc<Function>> {
    fns.iter()
        .filter(|f| {
            if takes_body(f) {
                return !given.is_empty() || f.defaults >= 1;
            }
            if f.args.iter().any(|(n, _)| n.is_empty()) {
                return false;
            }
            let names: Vec<&str> = f.args.iter().map(|(n, _)| n.as_str()).collect();
            let required = f.args.len() - f.defaults.min(f.args.len());
            given.iter().all(|g| names.contains(&g.as_str())) && f.args[..required].iter().all(|(n, _)| given.contains(n))
        })
        .collect()
}

/// Whether PostgREST can call `f` at all: every argument named, or one unnamed argument
/// that takes the body. Others are not in its schema cache (nor in its hints).
fn callable(f: &Function) -> bool {
    takes_body(f) || f.args.iter().all(|(n, _)| !n.is_empty())
}

/// How alike two names are, as PostgREST's fuzzy set scores them: one minus the edit
/// distance over the longer length, case-insensitively.
fn similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.to_lowercase().chars().collect(), b.to_lowercase().chars().collect());
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    1.0 - prev[b.len()] as f64 / longest as f64
}

/// The best of `candidates` for `wanted`, if it scores at least `min`.
fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>, min: f64) -> Option<&'a str> {
    candidates
        .map(|c| (similarity(wanted, c), c))
        .filter(|(score, _)| *score >= min)
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, c)| c)
}

/// PGRST202's hint, as PostgREST gives it: with no callable function of that name, the
/// closest function name of the schema (at least 0.75 alike); with some, the closest of
/// their parameter lists (at least 0.33 alike).
fn no_function_hint(cache: &crate::schema::SchemaCache, schema: &str, name: &str, given: &[String]) -> Option<String> {
    let list = |names: &mut Vec<&str>| {
        names.sort();
        format!("({})", names.join(", "))
    };
    let same: Vec<&Arc<Function>> = cache
        .functions
        .get(&(schema.to_string(), name.to_string()))
        .map(|fns| fns.iter().filter(|f| callable(f)).collect())
        .unwrap_or_default();
    let suggestion = if same.is_empty() {
        let names = cache
            .functions
            .iter()
            .filter(|((s, _), fns)| s == schema && fns.iter().any(|f| callable(f)))
            .map(|((_, n), _)| n.as_str());
        closest(name, names, 0.75).map(str::to_string)
    } else {
        let lists: Vec<String> = same.iter().map(|f| list(&mut f.args.iter().map(|(n, _)| n.as_str()).collect())).collect();
        let wanted = list(&mut given.iter().map(String::as_str).collect());
        closest(&wanted, lists.iter().map(String::as_str), 0.33).map(|l| format!("{name}{l}"))
    };
    suggestion.map(|s| format!("Perhaps you meant to call the function {schema}.{s}"))
}

/// `schema.name(a => integer, b => text)`, as PGRST203 lists candidates.
fn signature(f: &Function) -> String {
    let args: Vec<String> = f.args.iter().map(|(n, t)| format!("{n} => {t}")).collect();
    format!("{}.{}({})", f.schema, f.name, args.join(", "))
}

async fn handle_rpc(st: &AppState, caller: &Caller, method: Method, name: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, RestError> {
    json_only(headers)?;
    let schema = profile(st, &method, headers)?;
    let q = parse_query(query, true)?;
    let args: serde_json::Map<String, Value> = if method == Method::POST && !body.is_empty() {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(RestError::body("Empty or invalid json: RPC arguments must be an object")),
            Err(e) => return Err(RestError::body(format!("Empty or invalid json: {e}"))),
        }
    } else {
        q.other.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
    };
    let given: Vec<String> = args.keys().cloned().collect();
    let key = (schema.clone(), name.to_string());
    let mut cache = st.cache().await;
    if !cache.functions.contains_key(&key) {
        cache = st
            .reload_schema()
            .await
            .map_err(|m| RestError::new(StatusCode::SERVICE_UNAVAILABLE, "PGRST000", m))?;
    }
    let not_found = || {
        let (message, searched) = if given.is_empty() {
            (format!("Could not find the function {schema}.{name} without parameters in the schema cache"), "without parameters".to_string())
        } else {
            (
                format!("Could not find the function {schema}.{name}({}) in the schema cache", given.join(", ")),
                format!("with parameter{} {}", if given.len() > 1 { "s" } else { "" }, given.join(", ")),
            )
        };
        let e = RestError::new(StatusCode::NOT_FOUND, "PGRST202", message).details(format!(
            "Searched for the function {schema}.{name} {searched} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."
        ));
        match no_function_hint(&cache, &schema, name, &given) {
            Some(h) => e.hint(h),
            None => e,
        }
    };
    let fitting = cache.functions.get(&key).map(|fns| fitting_functions(fns, &given)).unwrap_or_default();
    let f = match fitting.as_slice() {
        [] => return Err(not_found()),
        [one] => Arc::clone(one),
        several => {
            let mut sigs: Vec<(&Vec<(String, String)>, String)> = several.iter().map(|f| (&f.args, signature(f))).collect();
            sigs.sort();
            let sigs: Vec<String> = sigs.into_iter().map(|(_, s)| s).collect();
            return Err(RestError::new(
                StatusCode::MULTIPLE_CHOICES,
                "PGRST203",
                format!("Could not choose the best candidate function between: {}", sigs.join(", ")),
            )
            .hint("Try renaming the parameters or the function itself in the database so function overloading can be resolved"));
        }
    };
    let mut p = Params::default();
    let mut call_args = vec![];
    if takes_body(&f) && !given.is_empty() {
        // The whole body, as it came, is the one argument.
        let raw = String::from_utf8_lossy(body).into_owned();
        call_args.push(format!("CAST({} AS {})", p.text(Some(raw)), f.args[0].1));
    }
    for (n, ty) in f.args.iter().filter(|(n, _)| !n.is_empty()) {
        let Some(v) = args.get(n) else { continue };
        let expr = match v {
            Value::Null => format!("CAST(NULL AS {ty})"),
            Value::String(s) if ty != "json" && ty != "jsonb" => format!("CAST({} AS {ty})", p.text(Some(s.clone()))),
            // A row-typed argument (a table's or a composite type): the object's fields.
            Value::Object(_) if ty != "json" && ty != "jsonb" => {
                format!("json_populate_record(CAST(NULL AS {ty}), CAST({} AS json))", p.text(Some(v.to_string())))
            }
            Value::Array(_) if ty.ends_with("[]") => format!(
                "CAST(ARRAY(SELECT jsonb_array_elements_text(CAST({} AS jsonb))) AS {ty})",
                p.text(Some(v.to_string()))
            ),
            other => format!("CAST({} AS {ty})", p.text(Some(other.to_string()))),
        };
        call_args.push(format!("{} := {expr}", quote_ident(n)));
    }
    let call = format!("{}.{}({})", quote_ident(&f.schema), quote_ident(&f.name), call_args.join(", "));
    let sql = if f.returns_set {
        format!("SELECT count(*), coalesce(json_agg(_f), '[]')::text FROM {call} AS _f")
    } else if f.returns_row {
        format!("SELECT count(*), (array_agg(to_json(_f)))[1]::text FROM {call} AS _f")
    } else {
        format!("SELECT 1::int8, to_json({call})::text")
    };
    let read_only = method == Method::GET || f.volatility != 'v';
    let prefer = Prefer::parse(headers)?;
    if let (Some(result), true) = (&f.result, f.returns_set || f.returns_row) {
        // A table's or view's rows: the cache's copy, which has its computed fields.
        let table = match result.oid {
            0 => Arc::clone(result),
            _ => cache.table(&result.schema, &result.name).unwrap_or_else(|| Arc::clone(result)),
        };
        let t = Target { cache: &cache, table };
        let plan = TxPlan { read_only, rollback: prefer.tx_rollback, single: wants_single(headers), max_affected: prefer.max_affected };
        return rpc_rows(st, caller, &method, name, headers, &t, &call, p, &q, &prefer, plan, f.returns_set).await;
    }
    let out = run(
        st,
        caller,
        &method,
        &format!("/rpc/{name}"),
        headers,
        TxPlan { read_only, rollback: prefer.tx_rollback, single: false, max_affected: prefer.max_affected },
        vec![Stmt::new(sql, p)],
    )
    .await?;
    if f.returns_void {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        return Ok(r);
    }
    let body = out[0].json.clone().unwrap_or_else(|| "null".into());
    let single = wants_single(headers);
    let body = if single && f.returns_set { first_object(&body) } else { body };
    let mut r = json_response(StatusCode::OK, body);
    // A scalar result is one row; a set of scalars, as many as it has.
    let n = out[0].count;
    set_header(&mut r, "content-range", &content_range(0, n, prefer.count.is_some().then_some(n)));
    prefer.applied(&mut r);
    Ok(r)
}
