//! Objects: upload (POST, or PUT which replaces), download, info, delete, move and
//! copy. Row changes run as the caller (row-level security), bytes go to [`super::blobs`].
//!
//! An upload is streamed to a temporary file within the bucket's size limit (its MIME
//! type checked before a byte is kept), put in place under a fresh version id, and only
//! then is the row written; if the row is refused the version is removed, and a
//! replaced version is removed once the new row has committed. So a reader sees the
//! old object or the new one, never a half-written one, and a refusal changes nothing.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};

use super::access::{self, owner, Bucket};
use super::blobs::Staged;
use super::error::StorageError;
use super::names::{check_bucket, check_key};
use super::route::Mode;
use super::{iso, Ctx};
use crate::gateway::Caller;
use crate::state::AppState;

/// An upload's bytes (staged) and what the request said about them.
pub struct Incoming {
    pub staged: Staged,
    pub content_type: String,
    pub cache_control: String,
    pub user_metadata: Option<Value>,
}

fn cache_control(v: Option<&str>) -> String {
    match v.map(str::trim) {
        None | Some("") => "no-cache".into(),
        Some(v) if v.chars().all(|c| c.is_ascii_digit()) => format!("max-age={v}"),
        Some(v) => v.to_string(),
    }
}

fn user_metadata_from_json(text: &str) -> Result<Value, StorageError> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(StorageError::invalid("metadata must be a JSON object")),
    }
}

/// How much of a refused upload's body is read and dropped before the refusal is sent
/// (see [`receive`]); a larger rest is left, and the connection with it.
const DRAIN_LIMIT: u64 = 8 << 20;

/// Read an upload's body (raw, or `multipart/form-data` as storage-js sends Blobs and
/// FormData) into a staged file, within `bucket`'s size and MIME limits.
///
/// A refusal (size, type, bad metadata) first reads what is left of the body (up to
/// [`DRAIN_LIMIT`]): a server that answers and closes with request bytes still unread
/// makes the kernel reset the connection, and the client may then see the reset rather
/// than the answer (supabase-js's storage client reported a network error instead of
/// 413, now and then).
pub async fn receive(ctx: &Ctx<'_>, bucket: &Bucket, body: Body) -> Result<Incoming, StorageError> {
    let ct = ctx.header("content-type").unwrap_or("application/octet-stream").to_string();
    let mut stream = body.into_data_stream();
    if ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(&ct).map_err(|e| StorageError::invalid(format!("bad multipart body: {e}")))?;
        let mut form = multer::Multipart::new(stream, boundary);
        let received = receive_multipart(ctx, bucket, &mut form).await;
        if received.is_err() {
            drain_form(&mut form).await;
        }
        return received;
    }
    let received = receive_raw(ctx, bucket, &ct, &mut stream).await;
    if received.is_err() {
        let mut left = 0u64;
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut stream).await {
            left += chunk.len() as u64;
            if left > DRAIN_LIMIT {
                break;
            }
        }
    }
    received
}

/// Read and drop the rest of a refused form (see [`receive`]).
async fn drain_form(form: &mut multer::Multipart<'_>) {
    let mut left = 0u64;
    while let Ok(Some(mut field)) = form.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            left += chunk.len() as u64;
            if left > DRAIN_LIMIT {
                return;
            }
        }
    }
}

async fn receive_raw(ctx: &Ctx<'_>, bucket: &Bucket, ct: &str, stream: &mut axum::body::BodyDataStream) -> Result<Incoming, StorageError> {
    bucket.check_mime(ct)?;
    let user_metadata = match ctx.header("x-metadata") {
        None => None,
        Some(b64) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| StorageError::invalid("x-metadata must be base64-encoded JSON"))?;
            Some(user_metadata_from_json(&String::from_utf8_lossy(&raw))?)
        }
    };
    let staged = ctx.st.blobs.stage(stream, bucket.limit()).await?;
    Ok(Incoming {
        staged,
        content_type: ct.to_string(),
        cache_control: cache_control(ctx.header("cache-control")),
        user_metadata,
    })
}

async fn receive_multipart(ctx: &Ctx<'_>, bucket: &Bucket, form: &mut multer::Multipart<'_>) -> Result<Incoming, StorageError> {
    let mut cache = None;
    let mut user_metadata = None;
    let mut file: Option<(Staged, String)> = None;
    while let Some(field) = form.next_field().await.map_err(|e| StorageError::invalid(format!("bad multipart body: {e}")))? {
        let is_file = field.file_name().is_some() || field.name().is_none_or(str::is_empty);
        if is_file {
            if file.is_some() {
                return Err(StorageError::invalid("the form has more than one file"));
            }
            let mime = field.content_type().map(|m| m.to_string()).unwrap_or_else(|| "application/octet-stream".into());
            bucket.check_mime(&mime)?;
            let staged = ctx.st.blobs.stage(field, bucket.limit()).await?;
            file = Some((staged, mime));
            continue;
        }
        let name = field.name().unwrap_or("").to_string();
        let text = field.text().await.map_err(|e| StorageError::invalid(format!("bad multipart field {name}: {e}")))?;
        match name.as_str() {
            "cacheControl" => cache = Some(text),
            "metadata" => user_metadata = Some(user_metadata_from_json(&text)?),
            _ => {}
        }
    }
    let (staged, content_type) = file.ok_or_else(|| StorageError::invalid("the form has no file"))?;
    Ok(Incoming { staged, content_type, cache_control: cache_control(cache.as_deref()), user_metadata })
}

/// The `metadata` column Supabase keeps for an object (`lastModified` is added by the
/// statement that writes the row, from the database's clock).
fn object_metadata(size: u64, md5: &str, content_type: &str, cache_control: &str) -> Value {
    json!({
        "eTag": format!("\"{md5}\""),
        "size": size,
        "mimetype": content_type,
        "cacheControl": cache_control,
        "contentLength": size,
        "httpStatusCode": 200,
    })
}

/// Write (or with `upsert`, replace) the row of `bucket/key` pointing at `version`, as
/// `caller`. Returns the row's id and the version it replaced.
#[allow(clippy::too_many_arguments)]
pub async fn write_row(
    st: &AppState,
    caller: &Caller,
    bucket: &str,
    key: &str,
    upsert: bool,
    version: &str,
    metadata: &Value,
    user_metadata: &Option<Value>,
) -> Result<(String, Option<String>), StorageError> {
    let mut client = access::client(st).await?;
    let tx = client.transaction().await.map_err(|e| StorageError::db(&e))?;
    // As the server: lock the row so two uploads of one key replace it one at a time.
    let old = tx
        .query_opt("SELECT id::text, version FROM storage.objects WHERE bucket_id = $1 AND name = $2 FOR UPDATE", &[&bucket, &key])
        .await
        .map_err(|e| StorageError::db(&e))?
        .map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1)));
    if old.is_some() && !upsert {
        return Err(StorageError::object_exists());
    }
    access::act_as(&tx, caller).await?;
    let sub = owner(caller);
    // No RETURNING: as on Supabase, an upload needs the INSERT policy only (RETURNING
    // would need the SELECT policy too); a replacement needs UPDATE (and so SELECT).
    let id = match &old {
        Some((id, _)) => {
            let n = tx
                .execute(
                    &format!(
                        "UPDATE storage.objects SET version = $3, metadata = $4 || jsonb_build_object('lastModified', {now}),
                           user_metadata = $5, owner = {owner_uuid}, owner_id = $6, updated_at = now(), last_accessed_at = now()
                         WHERE bucket_id = $1 AND name = $2",
                        now = iso("now()"),
                        owner_uuid = OWNER_UUID,
                    ),
                    &[&bucket, &key, &version, metadata, user_metadata, &sub],
                )
                .await
                .map_err(|e| StorageError::db(&e))?;
            if n == 0 {
                return Err(StorageError::denied("new row violates row-level security policy"));
            }
            id.clone()
        }
        None => {
            let id = uuid::Uuid::new_v4();
            tx.execute(
                &format!(
                    "INSERT INTO storage.objects (id, bucket_id, name, version, metadata, user_metadata, owner, owner_id)
                     VALUES ($7, $1, $2, $3, $4 || jsonb_build_object('lastModified', {now}), $5, {owner_uuid}, $6)",
                    now = iso("now()"),
                    owner_uuid = OWNER_UUID,
                ),
                &[&bucket, &key, &version, metadata, user_metadata, &sub, &id],
            )
            .await
            .map_err(|e| StorageError::db(&e))?;
            id.to_string()
        }
    };
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    Ok((id, old.and_then(|(_, v)| v)))
}

/// The `owner` column from the owner id (`$6`), when it is a user's UUID.
const OWNER_UUID: &str = "CASE WHEN $6 ~ '^[0-9a-fA-F-]{36}$' THEN $6::uuid END";

/// Put an upload in place and write its row; on any refusal nothing is left behind.
pub async fn store(st: &AppState, caller: &Caller, bucket: &str, key: &str, upsert: bool, incoming: Incoming) -> Result<String, StorageError> {
    let version = uuid::Uuid::new_v4().to_string();
    if let Err(e) = st.blobs.place(&incoming.staged, &version).await {
        st.blobs.discard(&incoming.staged).await;
        return Err(e);
    }
    let metadata = object_metadata(incoming.staged.size, &incoming.staged.md5, &incoming.content_type, &incoming.cache_control);
    match write_row(st, caller, bucket, key, upsert, &version, &metadata, &incoming.user_metadata).await {
        Ok((id, old)) => {
            st.blobs.remove(old).await;
            Ok(id)
        }
        Err(e) => {
            st.blobs.remove([version]).await;
            Err(e)
        }
    }
}

/// `POST /object/{bucket}/{key}` (`x-upsert`) and `PUT` (replace).
pub async fn upload(ctx: &Ctx<'_>, bucket: &str, key: &str, put: bool, body: Body) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    check_key(key)?;
    let caller = ctx.caller()?;
    let b = {
        let client = access::client(ctx.st).await?;
        access::bucket_as_server(&client, bucket).await?
    };
    let upsert = put || ctx.header("x-upsert").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let incoming = receive(ctx, &b, body).await?;
    let id = store(ctx.st, &caller, bucket, key, upsert, incoming).await?;
    Ok(axum::Json(json!({"Id": id, "Key": format!("{bucket}/{key}")})).into_response())
}

/// What a download needs of a row.
pub struct Found {
    pub(super) version: String,
    content_type: String,
    pub(super) cache_control: String,
    etag: String,
    pub(super) size: i64,
    last_modified: String,
}

const FOUND_SQL: &str = "SELECT version, coalesce(metadata->>'mimetype', 'application/octet-stream'),
    coalesce(metadata->>'cacheControl', 'no-cache'), coalesce(metadata->>'eTag', ''),
    coalesce((metadata->>'size')::bigint, 0),
    to_char(updated_at AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS \"GMT\"')
  FROM storage.objects WHERE bucket_id = $1 AND name = $2";

pub async fn find<C: GenericClient>(c: &C, bucket: &str, key: &str) -> Result<Found, StorageError> {
    let row = c.query_opt(FOUND_SQL, &[&bucket, &key]).await.map_err(|e| StorageError::db(&e))?.ok_or_else(StorageError::no_object)?;
    let version: Option<String> = row.get(0);
    Ok(Found {
        version: version.ok_or_else(StorageError::no_object)?,
        content_type: row.get(1),
        cache_control: row.get(2),
        etag: row.get(3),
        size: row.get(4),
        last_modified: row.get(5),
    })
}

/// Find an object as the caller, or (for `Public`) as anyone if its bucket is public.
pub(super) async fn find_for(ctx: &Ctx<'_>, mode: Mode, bucket: &str, key: &str) -> Result<Found, StorageError> {
    check_bucket(bucket)?;
    check_key(key)?;
    let mut client = access::client(ctx.st).await?;
    match mode {
        Mode::Public => {
            let b = access::bucket_as_server(&client, bucket).await?;
            if !b.public {
                return Err(StorageError::no_bucket());
            }
            find(&client, bucket, key).await
        }
        Mode::Authenticated => {
            let tx = access::begin(&mut client, &ctx.caller()?).await?;
            find(&tx, bucket, key).await
        }
    }
}

/// `GET|HEAD /object/{bucket}/{key}`, `/object/authenticated/…`, `/object/public/…`.
pub async fn download(ctx: &Ctx<'_>, mode: Mode, bucket: &str, key: &str, head: bool) -> Result<Response, StorageError> {
    let found = find_for(ctx, mode, bucket, key).await?;
    serve(ctx, &found, key, head).await
}

/// Send an object's bytes: whole, or the one byte range asked for (`Range: bytes=a-b`),
/// streamed from disk; `?download[=name]` makes it an attachment.
pub async fn serve(ctx: &Ctx<'_>, found: &Found, key: &str, head: bool) -> Result<Response, StorageError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let size = found.size.max(0) as u64;
    let range = match ctx.header("range") {
        None => None,
        Some(r) => Some(parse_range(r, size).ok_or_else(|| {
            StorageError::new(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange", "Invalid Range", format!("the range {r:?} is not satisfiable for {size} bytes"))
        })?),
    };
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = if head {
        Body::empty()
    } else {
        let mut file = ctx.st.blobs.open_version(&found.version).await?;
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| StorageError::io("cannot read the object", e))?;
        }
        Body::from_stream(tokio_util::io::ReaderStream::new(file.take(len)))
    };
    let mut resp = Response::builder()
        .status(status)
        .header("content-type", &found.content_type)
        .header("content-length", len.to_string())
        .header("cache-control", &found.cache_control)
        .header("etag", &found.etag)
        .header("last-modified", &found.last_modified)
        .header("accept-ranges", "bytes");
    if let Some((a, b)) = range {
        resp = resp.header("content-range", format!("bytes {a}-{b}/{size}"));
    }
    if let Some(name) = ctx.query_param("download") {
        let name = if name.is_empty() { key.rsplit('/').next().unwrap_or(key).to_string() } else { name };
        const ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
        let encoded = percent_encoding::utf8_percent_encode(&name, ATTR).to_string();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}")) {
            resp = resp.header("content-disposition", v);
        }
    }
    resp.body(body).map_err(|e| StorageError::internal(e.to_string()))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` within `size`; `None` if not satisfiable.
fn parse_range(h: &str, size: u64) -> Option<(u64, u64)> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

/// `GET /object/info/{bucket}/{key}` (and `/info/authenticated/…`, `/info/public/…`).
pub async fn info(ctx: &Ctx<'_>, mode: Mode, bucket: &str, key: &str) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    check_key(key)?;
    let sql = format!(
        "SELECT json_build_object('id', id, 'name', name, 'version', version, 'bucket_id', bucket_id,
            'size', (metadata->>'size')::bigint, 'content_type', metadata->>'mimetype',
            'cache_control', metadata->>'cacheControl', 'etag', metadata->>'eTag',
            'metadata', coalesce(user_metadata, '{{}}'::jsonb), 'last_modified', {}, 'created_at', {})
         FROM storage.objects WHERE bucket_id = $1 AND name = $2",
        iso("updated_at"),
        iso("created_at")
    );
    let mut client = access::client(ctx.st).await?;
    let row = match mode {
        Mode::Public => {
            let b = access::bucket_as_server(&client, bucket).await?;
            if !b.public {
                return Err(StorageError::no_bucket());
            }
            client.query_opt(&sql, &[&bucket, &key]).await
        }
        Mode::Authenticated => {
            let tx = access::begin(&mut client, &ctx.caller()?).await?;
            tx.query_opt(&sql, &[&bucket, &key]).await
        }
    }
    .map_err(|e| StorageError::db(&e))?
    .ok_or_else(StorageError::no_object)?;
    let v: Value = row.get(0);
    Ok(axum::Json(v).into_response())
}

/// An object row as the remove and list answers give it.
pub(super) fn object_json_sql() -> String {
    format!(
        "json_build_object('name', name, 'id', id, 'bucket_id', bucket_id, 'owner', owner, 'owner_id', owner_id,
            'updated_at', {}, 'created_at', {}, 'last_accessed_at', {}, 'metadata', metadata)",
        iso("updated_at"),
        iso("created_at"),
        iso("last_accessed_at")
    )
}

/// `DELETE /object/{bucket}` `{prefixes: [keys]}`: the objects the caller may delete go;
/// the answer lists them.
pub async fn delete_many(ctx: &Ctx<'_>, bucket: &str, body: Value) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    let keys: Vec<String> = body
        .get("prefixes")
        .and_then(Value::as_array)
        .ok_or_else(|| StorageError::invalid("body must have required property 'prefixes'"))?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| StorageError::invalid("prefixes must be strings")))
        .collect::<Result<_, _>>()?;
    if keys.is_empty() || keys.len() > 1000 {
        return Err(StorageError::invalid("prefixes must hold 1 to 1000 keys"));
    }
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    let rows = tx
        .query(
            &format!("DELETE FROM storage.objects WHERE bucket_id = $1 AND name = ANY($2) RETURNING {}, version", object_json_sql()),
            &[&bucket, &keys],
        )
        .await
        .map_err(|e| StorageError::db(&e))?;
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    let out: Vec<Value> = rows.iter().map(|r| r.get(0)).collect();
    let versions: Vec<String> = rows.iter().filter_map(|r| r.get::<_, Option<String>>(1)).collect();
    ctx.st.blobs.remove(versions).await;
    Ok(axum::Json(Value::Array(out)).into_response())
}

/// `DELETE /object/{bucket}/{key}`.
pub async fn delete_one(ctx: &Ctx<'_>, bucket: &str, key: &str) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    check_key(key)?;
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    let row = tx
        .query_opt("DELETE FROM storage.objects WHERE bucket_id = $1 AND name = $2 RETURNING version", &[&bucket, &key])
        .await
        .map_err(|e| StorageError::db(&e))?
        .ok_or_else(StorageError::no_object)?;
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    ctx.st.blobs.remove(row.get::<_, Option<String>>(0)).await;
    Ok(axum::Json(json!({"message": "Successfully deleted"})).into_response())
}

/// The source and destination of a move or copy.
struct Transfer {
    from_bucket: String,
    from_key: String,
    to_bucket: String,
    to_key: String,
}

fn transfer(body: &Value) -> Result<Transfer, StorageError> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let from_bucket = s("bucketId").ok_or_else(|| StorageError::invalid("body must have required property 'bucketId'"))?;
    let from_key = s("sourceKey").ok_or_else(|| StorageError::invalid("body must have required property 'sourceKey'"))?;
    let to_key = s("destinationKey").ok_or_else(|| StorageError::invalid("body must have required property 'destinationKey'"))?;
    let to_bucket = s("destinationBucket").unwrap_or_else(|| from_bucket.clone());
    check_bucket(&from_bucket)?;
    check_bucket(&to_bucket)?;
    check_key(&from_key)?;
    check_key(&to_key)?;
    Ok(Transfer { from_bucket, from_key, to_bucket, to_key })
}

fn fk_or_db(e: &tokio_postgres::Error) -> StorageError {
    if crate::pgerr::parts(e).code == "23503" {
        StorageError::no_bucket()
    } else {
        StorageError::db(e)
    }
}

/// `POST /object/move` `{bucketId, sourceKey, destinationKey, destinationBucket}`: the row
/// is renamed (the bytes stay where they are, under their version id).
pub async fn move_object(ctx: &Ctx<'_>, body: Value) -> Result<Response, StorageError> {
    let t = transfer(&body)?;
    let mut client = access::client(ctx.st).await?;
    access::bucket_as_server(&client, &t.to_bucket).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    let n = tx
        .execute(
            "UPDATE storage.objects SET bucket_id = $3, name = $4, updated_at = now() WHERE bucket_id = $1 AND name = $2",
            &[&t.from_bucket, &t.from_key, &t.to_bucket, &t.to_key],
        )
        .await
        .map_err(|e| fk_or_db(&e))?;
    if n == 0 {
        return Err(StorageError::no_object());
    }
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    Ok(axum::Json(json!({"message": "Successfully moved"})).into_response())
}

/// `POST /object/copy`: a new object with a copy of the bytes (`x-upsert` replaces an
/// existing destination); its user metadata is copied unless `copyMetadata` is false.
pub async fn copy_object(ctx: &Ctx<'_>, body: Value) -> Result<Response, StorageError> {
    let t = transfer(&body)?;
    let caller = ctx.caller()?;
    let (version, metadata, user_metadata) = {
        let mut client = access::client(ctx.st).await?;
        access::bucket_as_server(&client, &t.to_bucket).await?;
        let tx = access::begin(&mut client, &caller).await?;
        let row = tx
            .query_opt(
                "SELECT version, metadata, user_metadata FROM storage.objects WHERE bucket_id = $1 AND name = $2",
                &[&t.from_bucket, &t.from_key],
            )
            .await
            .map_err(|e| StorageError::db(&e))?
            .ok_or_else(StorageError::no_object)?;
        let v: Option<String> = row.get(0);
        (v.ok_or_else(StorageError::no_object)?, row.get::<_, Option<Value>>(1).unwrap_or(Value::Null), row.get::<_, Option<Value>>(2))
    };
    let user_metadata = if body.get("copyMetadata") == Some(&Value::Bool(false)) { body.get("metadata").cloned() } else { user_metadata };
    let upsert = ctx.header("x-upsert").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let new_version = uuid::Uuid::new_v4().to_string();
    ctx.st.blobs.copy(&version, &new_version).await?;
    match write_row(ctx.st, &caller, &t.to_bucket, &t.to_key, upsert, &new_version, &metadata, &user_metadata).await {
        Ok((id, old)) => {
            ctx.st.blobs.remove(old).await;
            Ok(axum::Json(json!({"Id": id, "Key": format!("{}/{}", t.to_bucket, t.to_key)})).into_response())
        }
        Err(e) => {
            ctx.st.blobs.remove([new_version]).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

}
