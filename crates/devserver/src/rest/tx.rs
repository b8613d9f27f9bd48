//! A request's statements, run in one transaction as PostgREST runs them: `role` and
//! `request.jwt.claims` set transaction-locally first (so RLS and `auth.uid()` are
//! PostgreSQL's own), READ ONLY for reads, rolled back on `Prefer: tx=rollback`, a
//! single-object or max-affected check before the commit.


use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use tokio_postgres::types::Type;

use super::error::RestError;
use super::sql::Params;
use crate::gateway::Caller;
use crate::state::AppState;
use super::response::{not_single, profile};

/// One statement to run inside the request's transaction.
pub(super) struct Stmt {
    pub(super) sql: String,
    pub(super) params: Params,
    /// Run as `EXPLAIN (FORMAT JSON)` and return the planner's row estimate as the count
    /// (`Prefer: count=planned`).
    pub(super) planned: bool,
    /// Run as `EXPLAIN (these options)` and return the plan as the text.
    pub(super) explain: Option<String>,
}

impl Stmt {
    pub(super) fn new(sql: String, params: Params) -> Stmt {
        Stmt { sql, params, planned: false, explain: None }
    }
}

/// What a statement of ours returns: `(row count, json text)`.
pub(super) struct Output {
    pub(super) count: i64,
    pub(super) json: Option<String>,
    /// A third column, when the statement has one: the total for `Prefer: count`.
    pub(super) total: Option<i64>,
    /// A fourth column, when the statement has one: how many rows an upsert inserted.
    pub(super) inserted: Option<i64>,
}

/// How the request's transaction should end.
pub(super) struct TxPlan {
    pub(super) read_only: bool,
    pub(super) rollback: bool,
    /// Fail with PGRST116 (and roll back) unless the last statement returned one row.
    pub(super) single: bool,
    /// Fail with PGRST124 (and roll back) if the last statement touched more rows.
    pub(super) max_affected: Option<i64>,
}

pub(super) async fn run(st: &AppState, caller: &Caller, method: &Method, path: &str, headers: &HeaderMap, plan: TxPlan, stmts: Vec<Stmt>) -> Result<Vec<Output>, RestError> {
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
pub(super) async fn run_one(tx: &tokio_postgres::Transaction<'_>, s: &Stmt) -> Result<Output, tokio_postgres::Error> {
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
