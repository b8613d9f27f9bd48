//! Resumable uploads over TUS 1.0.0 at `/storage/v1/upload/resumable`, as Supabase
//! offers them for large files (tus-js-client, Uppy, and our SDK's large files).
//!
//! `POST` creates an upload (`Upload-Length`, `Upload-Metadata` with `bucketName`,
//! `objectName`, `contentType`, `cacheControl`, `metadata`; `x-upsert`), after the same
//! checks an upload gets (bucket, key, size and MIME limits, the caller's right to
//! write, an existing object without upsert) so a refused file is refused before a
//! byte is sent. `PATCH` appends at `Upload-Offset`, which must be where the upload
//! is (else 409, and nothing changes); `HEAD` says how far it is; `DELETE` drops it.
//! Each request locks the upload's row, so two appends never interleave. The bytes
//! grow one file on disk (memory stays flat); when the last byte arrives the file
//! becomes the object, as the caller, exactly as a one-shot upload would.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};

use super::access::{self, owner};
use super::blobs::GLOBAL_LIMIT;
use super::error::StorageError;
use super::names::{check_bucket, check_key};
use super::objects::{self, Incoming};
use super::signed::check_can_write;
use super::Ctx;
use crate::gateway::Caller;

const TUS_VERSION: &str = "1.0.0";

fn tus(mut r: Response) -> Response {
    r.headers_mut().insert("tus-resumable", axum::http::HeaderValue::from_static(TUS_VERSION));
    r
}

/// `OPTIONS`: what this server speaks.
pub fn options() -> Response {
    tus(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header("tus-version", TUS_VERSION)
        .header("tus-extension", "creation,creation-with-upload,termination")
        .header("tus-max-size", GLOBAL_LIMIT.to_string())
        .body(Body::empty())
        .unwrap_or_default())
}

/// `Upload-Metadata`: `key base64,key base64,…`.
fn metadata(h: &str) -> Result<std::collections::HashMap<String, String>, StorageError> {
    let mut out = std::collections::HashMap::new();
    for pair in h.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once(' ').unwrap_or((pair, ""));
        let v = base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|_| StorageError::invalid(format!("Upload-Metadata: the value of {k} is not base64")))?;
        out.insert(k.to_string(), String::from_utf8(v).map_err(|_| StorageError::invalid(format!("Upload-Metadata: {k} is not UTF-8")))?);
    }
    Ok(out)
}

fn identity(caller: &Caller) -> Value {
    json!({"role": caller.role, "sub": owner(caller)})
}

fn require_tus(ctx: &Ctx<'_>) -> Result<(), StorageError> {
    match ctx.header("tus-resumable") {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(StorageError::new(StatusCode::PRECONDITION_FAILED, "InvalidRequest", "Invalid Input", "Tus-Resumable: 1.0.0 is required")),
    }
}

/// `POST /upload/resumable`.
pub async fn create(ctx: &Ctx<'_>) -> Result<Response, StorageError> {
    require_tus(ctx)?;
    let caller = ctx.caller()?;
    let length: i64 = ctx
        .header("upload-length")
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &i64| *n >= 0)
        .ok_or_else(|| StorageError::invalid("Upload-Length is required (a whole number of bytes)"))?;
    let meta = metadata(ctx.header("upload-metadata").unwrap_or(""))?;
    let bucket = meta.get("bucketName").ok_or_else(|| StorageError::invalid("Upload-Metadata must name bucketName"))?;
    let key = meta.get("objectName").ok_or_else(|| StorageError::invalid("Upload-Metadata must name objectName"))?;
    check_bucket(bucket)?;
    check_key(key)?;
    let content_type = meta.get("contentType").cloned().unwrap_or_else(|| "application/octet-stream".into());
    let cache_control = match meta.get("cacheControl") {
        Some(v) if v.chars().all(|c| c.is_ascii_digit()) && !v.is_empty() => format!("max-age={v}"),
        Some(v) if !v.is_empty() => v.clone(),
        _ => "no-cache".into(),
    };
    let user_metadata = match meta.get("metadata") {
        None => None,
        Some(t) => match serde_json::from_str::<Value>(t) {
            Ok(v @ Value::Object(_)) => Some(v),
            _ => return Err(StorageError::invalid("metadata must be a JSON object")),
        },
    };
    let upsert = ctx.header("x-upsert").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let client = access::client(ctx.st).await?;
    let b = access::bucket_as_server(&client, bucket).await?;
    if length as u64 > b.limit() {
        return Err(StorageError::too_large());
    }
    b.check_mime(&content_type)?;
    if !upsert {
        let exists = client
            .query_opt("SELECT 1 FROM storage.objects WHERE bucket_id = $1 AND name = $2", &[bucket, key])
            .await
            .map_err(|e| StorageError::db(&e))?;
        if exists.is_some() {
            return Err(StorageError::object_exists());
        }
    }
    drop(client);
    check_can_write(ctx, &caller, bucket, key).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let client = access::client(ctx.st).await?;
    client
        .execute(
            "INSERT INTO storage.resumable_uploads (id, bucket_id, name, upload_length, upsert, content_type, cache_control, user_metadata, claims)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&id, bucket, key, &length, &upsert, &content_type, &cache_control, &user_metadata, &identity(&caller)],
        )
        .await
        .map_err(|e| StorageError::db(&e))?;
    Ok(tus(Response::builder()
        .status(StatusCode::CREATED)
        .header("location", format!("{}/upload/resumable/{id}", ctx.base))
        .header("upload-offset", "0")
        .body(Body::empty())
        .unwrap_or_default()))
}

/// One upload's row.
struct Upload {
    bucket: String,
    key: String,
    length: i64,
    offset: i64,
    upsert: bool,
    content_type: String,
    cache_control: String,
    user_metadata: Option<Value>,
    claims: Value,
}

async fn load<C: deadpool_postgres::GenericClient>(c: &C, id: &str, lock: bool) -> Result<Upload, StorageError> {
    let sql = format!(
        "SELECT bucket_id, name, upload_length, upload_offset, upsert, content_type, cache_control, user_metadata, claims
         FROM storage.resumable_uploads WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let r = c.query_opt(&sql, &[&id]).await.map_err(|e| StorageError::db(&e))?.ok_or_else(StorageError::no_upload)?;
    Ok(Upload {
        bucket: r.get(0),
        key: r.get(1),
        length: r.get(2),
        offset: r.get(3),
        upsert: r.get(4),
        content_type: r.get(5),
        cache_control: r.get(6),
        user_metadata: r.get(7),
        claims: r.get(8),
    })
}

/// The caller must be who created the upload.
fn same_caller(ctx: &Ctx<'_>, up: &Upload) -> Result<Caller, StorageError> {
    let caller = ctx.caller()?;
    if identity(&caller) != up.claims {
        return Err(StorageError::no_upload());
    }
    Ok(caller)
}

/// `HEAD /upload/resumable/{id}`.
pub async fn head(ctx: &Ctx<'_>, id: &str) -> Result<Response, StorageError> {
    let client = access::client(ctx.st).await?;
    let up = load(&client, id, false).await?;
    same_caller(ctx, &up)?;
    Ok(tus(Response::builder()
        .status(StatusCode::OK)
        .header("upload-offset", up.offset.to_string())
        .header("upload-length", up.length.to_string())
        .header("cache-control", "no-store")
        .body(Body::empty())
        .unwrap_or_default()))
}

/// `PATCH /upload/resumable/{id}`: append at `Upload-Offset`; the last byte finishes.
pub async fn patch(ctx: &Ctx<'_>, id: &str, body: Body) -> Result<Response, StorageError> {
    require_tus(ctx)?;
    if ctx.header("content-type").map(str::trim) != Some("application/offset+octet-stream") {
        return Err(StorageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidRequest",
            "Invalid Input",
            "a PATCH must have Content-Type: application/offset+octet-stream",
        ));
    }
    let claimed: i64 = ctx
        .header("upload-offset")
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &i64| *n >= 0)
        .ok_or_else(|| StorageError::invalid("Upload-Offset is required (a whole number of bytes)"))?;
    let mut client = access::client(ctx.st).await?;
    let tx = client.transaction().await.map_err(|e| StorageError::db(&e))?;
    let up = load(&tx, id, true).await?;
    let caller = same_caller(ctx, &up)?;
    if claimed != up.offset {
        return Err(StorageError::new(
            StatusCode::CONFLICT,
            "InvalidRequest",
            "Conflict",
            format!("Upload-Offset {claimed} is not where the upload is ({})", up.offset),
        ));
    }
    let offset = ctx.st.blobs.append(id, up.offset as u64, body, up.length as u64).await? as i64;
    tx.execute("UPDATE storage.resumable_uploads SET upload_offset = $2 WHERE id = $1", &[&id, &offset])
        .await
        .map_err(|e| StorageError::db(&e))?;
    if offset < up.length {
        tx.commit().await.map_err(|e| StorageError::db(&e))?;
        return Ok(done(offset));
    }
    // The last byte: the file becomes the object while this request still holds the
    // upload's row, so anyone who asks sees the upload where it was until the object is
    // in place, and once the upload is gone the object is there (or it was refused).
    // (The request runs in its own task: a client going away cannot cut this in two.)
    let stored = finish(ctx, &caller, id, up).await;
    tx.execute("DELETE FROM storage.resumable_uploads WHERE id = $1", &[&id]).await.map_err(|e| StorageError::db(&e))?;
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    stored?;
    Ok(done(offset))
}

/// A finished upload's bytes become its object, as the caller who created it.
async fn finish(ctx: &Ctx<'_>, caller: &Caller, id: &str, up: Upload) -> Result<(), StorageError> {
    let staged = ctx.st.blobs.stage_resumable(id).await?;
    let incoming = Incoming {
        staged,
        content_type: up.content_type,
        cache_control: up.cache_control,
        user_metadata: up.user_metadata,
    };
    objects::store(ctx.st, caller, &up.bucket, &up.key, up.upsert, incoming).await?;
    Ok(())
}

fn done(offset: i64) -> Response {
    tus(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header("upload-offset", offset.to_string())
        .body(Body::empty())
        .unwrap_or_default())
}

/// `DELETE /upload/resumable/{id}` (termination).
pub async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Response, StorageError> {
    require_tus(ctx)?;
    let mut client = access::client(ctx.st).await?;
    let tx = client.transaction().await.map_err(|e| StorageError::db(&e))?;
    let up = load(&tx, id, true).await?;
    same_caller(ctx, &up)?;
    tx.execute("DELETE FROM storage.resumable_uploads WHERE id = $1", &[&id]).await.map_err(|e| StorageError::db(&e))?;
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    ctx.st.blobs.remove_resumable(id).await;
    Ok(tus(StatusCode::NO_CONTENT.into_response()))
}
