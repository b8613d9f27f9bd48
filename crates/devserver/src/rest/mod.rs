//! `/rest/v1`: the PostgREST behaviour that supabase-js and our SDK use.
//!
//! Every request runs in one transaction that first sets, transaction-locally, `role` to
//! the JWT's role and `request.jwt.claims` to its claims, exactly as PostgREST does, so
//! row-level security is PostgreSQL's own and `auth.uid()` works in policies. Reads run
//! in READ ONLY transactions. Responses are built by PostgreSQL's `json_agg`, so values
//! are rendered exactly as PostgREST renders them.

mod bind;
pub mod error;
mod filter_sql;
mod prefer;
mod read;
mod response;
mod rpc;
pub mod sql;
mod tx;
mod write;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

use self::error::RestError;
use supasync_query_syntax::parse_query;
use self::prefer::Prefer;
use self::sql::Target;
use self::read::read;
use self::response::{Media, json_only, media, profile};
use self::write::{delete, insert, put, update};
use crate::gateway::{self, Caller};
use crate::state::AppState;

/// The `/rest/v1` routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/rest/v1/rpc/{function}", get(rpc::rpc).post(rpc::rpc))
        .route("/rest/v1/{table}", any(table))
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
