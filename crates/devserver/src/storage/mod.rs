//! `/storage/v1`: Supabase Storage as storage-js (and so supabase-js) uses it.
//!
//! Buckets (public and private, size and MIME limits), objects (upload by POST, PUT
//! with upsert, raw or multipart; download authenticated, public or signed, with byte
//! ranges; info; list v1 and v2; move; copy; remove), signed URLs and signed upload
//! URLs, resumable uploads over TUS at `/storage/v1/upload/resumable`, and image
//! transformations.
//!
//! Access is PostgreSQL's: object and bucket rows live in `storage.objects` and
//! `storage.buckets` (schema.sql, as Supabase lays them out), and every read and write
//! of them runs as the caller with row-level security ([`access`]), so the policies
//! users write for Supabase (with `storage.foldername()` and friends) work unchanged.
//! The bytes live on disk under the server's data directory ([`blobs`]), named by
//! version ids, and are put in place only once the row's transaction can commit.
//!
//! Image transformations (`/render/image/…`) resize JPEG and PNG ([`render`]).
//!
//! Routing is by hand ([`route`]): object keys hold `/` and arbitrary characters, and
//! Supabase's routes overlap (`/object/{bucket}/{key}` against `/object/sign/…`), so a
//! small parser in Supabase's order of precedence is clearer than a router's rules.

pub mod access;
pub mod blobs;
mod buckets;
pub mod error;
mod list;
pub mod names;
mod objects;
mod render;
mod route;
mod signed;
mod tus;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::gateway::Caller;
use crate::state::AppState;
use error::StorageError;

/// The routes under `/storage/v1`.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/storage/v1/{*rest}", axum::routing::any(handle))
}

/// What every handler needs from the request.
pub struct Ctx<'a> {
    pub st: &'a AppState,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    /// `http://host:port/storage/v1`, as the client reached us (for TUS `Location`).
    pub base: String,
}

impl Ctx<'_> {
    /// The caller, from the `Authorization` header or the `apikey`.
    pub fn caller(&self) -> Result<Caller, StorageError> {
        access::caller(self.headers, self.query, &self.st.keys)
    }
    /// The query string's pairs, decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A timestamp column as Supabase (and JavaScript's `toISOString`) writes it.
pub(crate) fn iso(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
}

/// Each request's work runs in its own task, so a client that goes away mid-request
/// (a page reloaded during the last chunk of an upload) cannot cut it between two
/// steps: an upload that got its last byte always becomes its object, or is refused
/// whole. The body still ends with the connection, so a cut chunk is still cut.
async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    match tokio::spawn(serve(st, req)).await {
        Ok(r) => r,
        Err(e) => StorageError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Internal Server Error",
            format!("the request's task failed: {e}"),
        )
        .into_response(),
    }
}

async fn serve(st: Arc<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let host = parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let ctx = Ctx {
        st: &st,
        headers: &parts.headers,
        query: parts.uri.query(),
        base: format!("http://{host}/storage/v1"),
    };
    let rest = parts.uri.path().strip_prefix("/storage/v1/").unwrap_or("");
    match dispatch(&ctx, &parts.method, rest, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(ctx: &Ctx<'_>, method: &axum::http::Method, rest: &str, body: Body) -> Result<Response, StorageError> {
    use route::Route as R;
    let route = route::parse(method, rest)?;
    match route {
        R::ListBuckets => buckets::list(ctx).await,
        R::GetBucket(id) => buckets::get(ctx, &id).await,
        R::CreateBucket => buckets::create(ctx, json_body(body).await?).await,
        R::UpdateBucket(id) => buckets::update(ctx, &id, json_body(body).await?).await,
        R::EmptyBucket(id) => buckets::empty(ctx, &id).await,
        R::DeleteBucket(id) => buckets::delete(ctx, &id).await,
        R::Upload { bucket, key, put } => objects::upload(ctx, &bucket, &key, put, body).await,
        R::Download { mode, bucket, key, head } => objects::download(ctx, mode, &bucket, &key, head).await,
        R::Info { mode, bucket, key } => objects::info(ctx, mode, &bucket, &key).await,
        R::DeleteOne { bucket, key } => objects::delete_one(ctx, &bucket, &key).await,
        R::DeleteMany(bucket) => objects::delete_many(ctx, &bucket, json_body(body).await?).await,
        R::Move => objects::move_object(ctx, json_body(body).await?).await,
        R::Copy => objects::copy_object(ctx, json_body(body).await?).await,
        R::List(bucket) => list::list_v1(ctx, &bucket, json_body(body).await?).await,
        R::ListV2(bucket) => list::list_v2(ctx, &bucket, json_body(body).await?).await,
        R::SignedDownload { bucket, key, head } => signed::download(ctx, &bucket, &key, head).await,
        R::SignOne { bucket, key } => signed::sign_one(ctx, &bucket, &key, json_body(body).await?).await,
        R::SignMany(bucket) => signed::sign_many(ctx, &bucket, json_body(body).await?).await,
        R::SignUpload { bucket, key } => signed::sign_upload(ctx, &bucket, &key).await,
        R::UploadSigned { bucket, key } => signed::upload_signed(ctx, &bucket, &key, body).await,
        R::Render { mode, bucket, key } => {
            let t = render::Transform::parse(&ctx.query_pairs())?;
            let found = objects::find_for(ctx, mode, &bucket, &key).await?;
            render::serve(ctx, &found, &t).await
        }
        R::RenderSigned { bucket, key } => signed::render(ctx, &bucket, &key).await,
        R::TusOptions => Ok(tus::options()),
        R::TusCreate => tus::create(ctx).await,
        R::TusHead(id) => tus::head(ctx, &id).await,
        R::TusPatch(id) => tus::patch(ctx, &id, body).await,
        R::TusDelete(id) => tus::delete(ctx, &id).await,
    }
}

/// A JSON body (an empty one is `{}`).
async fn json_body(body: Body) -> Result<serde_json::Value, StorageError> {
    let bytes = axum::body::to_bytes(body, 4 * 1024 * 1024)
        .await
        .map_err(|e| StorageError::invalid(format!("cannot read the body: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(&bytes).map_err(|e| StorageError::invalid(format!("the body is not valid JSON: {e}")))
}
