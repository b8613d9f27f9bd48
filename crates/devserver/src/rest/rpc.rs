//! `/rest/v1/rpc/{function}`: overload resolution by the arguments given, PGRST202 with
//! PostgREST's "Perhaps you meant" hint, scalar and set-returning functions.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::RestError;
use supasync_query_syntax::parse_query;
use super::prefer::Prefer;
use super::sql::{Params, Target};
use crate::gateway::{self, Caller};
use crate::schema::{quote_ident, Function};
use crate::state::AppState;
use super::read::{content_range, first_object, rpc_rows};
use super::response::{json_only, json_response, profile, set_header, wants_single};
use super::tx::{Stmt, TxPlan, run};

pub(super) async fn rpc(
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
pub(super) fn takes_body(f: &Function) -> bool {
    f.args.len() == 1 && f.args[0].0.is_empty() && matches!(f.args[0].1.as_str(), "json" | "jsonb" | "text" | "xml" | "bytea")
}

/// The overloads of a function that fit the arguments given by name, as PostgREST picks
/// them: every given name is a parameter and every parameter without a default is given;
/// no arguments fit a function without parameters; any body fits a function taking the
/// whole body (and no body, if its argument has a default). Other unnamed parameters
/// cannot be passed over HTTP.
pub(super) fn fitting_functions<'a>(fns: &'a [Arc<Function>], given: &[String]) -> Vec<&'a Arc<Function>> {
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
pub(super) fn callable(f: &Function) -> bool {
    takes_body(f) || f.args.iter().all(|(n, _)| !n.is_empty())
}

/// How alike two names are, as PostgREST's fuzzy set scores them: one minus the edit
/// distance over the longer length, case-insensitively.
pub(super) fn similarity(a: &str, b: &str) -> f64 {
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
pub(super) fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>, min: f64) -> Option<&'a str> {
    candidates
        .map(|c| (similarity(wanted, c), c))
        .filter(|(score, _)| *score >= min)
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, c)| c)
}

/// PGRST202's hint, as PostgREST gives it: with no callable function of that name, the
/// closest function name of the schema (at least 0.75 alike); with some, the closest of
/// their parameter lists (at least 0.33 alike).
pub(super) fn no_function_hint(cache: &crate::schema::SchemaCache, schema: &str, name: &str, given: &[String]) -> Option<String> {
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
pub(super) fn signature(f: &Function) -> String {
    let args: Vec<String> = f.args.iter().map(|(n, t)| format!("{n} => {t}")).collect();
    format!("{}.{}({})", f.schema, f.name, args.join(", "))
}

pub(super) async fn handle_rpc(st: &AppState, caller: &Caller, method: Method, name: &str, query: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, RestError> {
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
