//! `/storage/v1/bucket`: list, get, create, update, empty and delete buckets, each as
//! the caller (row-level security on `storage.buckets` decides; `service_role` passes).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::access::{self, owner};
use super::error::StorageError;
use super::names::{check_bucket, parse_size};
use super::{iso, Ctx};

/// A bucket as Supabase returns it.
fn bucket_json_sql() -> String {
    format!(
        "json_build_object('id', id, 'name', name, 'owner', coalesce(owner::text, ''), 'public', public,
            'file_size_limit', file_size_limit, 'allowed_mime_types', allowed_mime_types,
            'created_at', {}, 'updated_at', {})",
        iso("created_at"),
        iso("updated_at")
    )
}

/// `GET /bucket?limit&offset&search&sortColumn&sortOrder`.
pub async fn list(ctx: &Ctx<'_>) -> Result<Response, StorageError> {
    let q = ctx.query_pairs();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let limit: i64 = get("limit").map(|v| v.parse().map_err(|_| StorageError::invalid("limit must be a number"))).transpose()?.unwrap_or(i64::MAX);
    let offset: i64 = get("offset").map(|v| v.parse().map_err(|_| StorageError::invalid("offset must be a number"))).transpose()?.unwrap_or(0);
    let column = match get("sortColumn").as_deref() {
        None | Some("name") => "name",
        Some("id") => "id",
        Some("created_at") => "created_at",
        Some("updated_at") => "updated_at",
        Some(other) => return Err(StorageError::invalid(format!("sortColumn {other:?}: one of id, name, created_at, updated_at"))),
    };
    let order = match get("sortOrder").as_deref() {
        None | Some("asc") => "ASC",
        Some("desc") => "DESC",
        Some(other) => return Err(StorageError::invalid(format!("sortOrder {other:?}: asc or desc"))),
    };
    let search = get("search").unwrap_or_default();
    let sql = format!(
        "SELECT coalesce(json_agg(b.j ORDER BY b.k {order}), '[]'::json) FROM (
           SELECT {} AS j, {column} AS k FROM storage.buckets
           WHERE $1 = '' OR name ILIKE '%' || replace(replace(replace($1, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'
           ORDER BY {column} {order} LIMIT $2 OFFSET $3) b",
        bucket_json_sql()
    );
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    let row = tx.query_one(&sql, &[&search, &limit, &offset]).await.map_err(|e| StorageError::db(&e))?;
    let v: Value = row.get(0);
    Ok(axum::Json(v).into_response())
}

/// `GET /bucket/{id}`.
pub async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Response, StorageError> {
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    let row = tx
        .query_opt(&format!("SELECT {} FROM storage.buckets WHERE id = $1", bucket_json_sql()), &[&id])
        .await
        .map_err(|e| StorageError::db(&e))?
        .ok_or_else(StorageError::no_bucket)?;
    let v: Value = row.get(0);
    Ok(axum::Json(v).into_response())
}

/// The settable fields of a create or update body.
struct Settings {
    public: Option<bool>,
    /// `None`: not given; `Some(None)`: given as null (no limit).
    file_size_limit: Option<Option<i64>>,
    allowed_mime_types: Option<Option<Vec<String>>>,
}

fn settings(body: &Map<String, Value>) -> Result<Settings, StorageError> {
    let public = match body.get("public") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => return Err(StorageError::invalid(format!("public must be true or false, got {other}"))),
    };
    let file_size_limit = body.get("file_size_limit").map(parse_size).transpose()?;
    let allowed_mime_types = match body.get("allowed_mime_types") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Array(a)) => Some(Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| StorageError::invalid("allowed_mime_types must be strings")))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        Some(other) => return Err(StorageError::invalid(format!("allowed_mime_types must be a list, got {other}"))),
    };
    Ok(Settings { public, file_size_limit, allowed_mime_types })
}

/// `POST /bucket` `{id, name, public, file_size_limit, allowed_mime_types}`.
pub async fn create(ctx: &Ctx<'_>, body: Value) -> Result<Response, StorageError> {
    let Value::Object(body) = body else { return Err(StorageError::invalid("the body must be a JSON object")) };
    let name = body.get("name").and_then(Value::as_str).ok_or_else(|| StorageError::invalid("body must have required property 'name'"))?;
    let id = body.get("id").and_then(Value::as_str).unwrap_or(name);
    check_bucket(id)?;
    check_bucket(name)?;
    let s = settings(&body)?;
    let caller = ctx.caller()?;
    let sub = owner(&caller);
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &caller).await?;
    let res = tx
        .execute(
            "INSERT INTO storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)
             VALUES ($1, $2, CASE WHEN $3 ~ '^[0-9a-fA-F-]{36}$' THEN $3::uuid END, $3, $4, $5, $6)",
            &[&id, &name, &sub, &s.public.unwrap_or(false), &s.file_size_limit.flatten(), &s.allowed_mime_types.flatten()],
        )
        .await;
    match res {
        Ok(_) => {}
        Err(e) if crate::pgerr::parts(&e).code == "23505" => return Err(StorageError::bucket_exists()),
        Err(e) => return Err(StorageError::db(&e)),
    }
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    Ok(axum::Json(json!({"name": name})).into_response())
}

/// `PUT /bucket/{id}`: only the fields given change.
pub async fn update(ctx: &Ctx<'_>, id: &str, body: Value) -> Result<Response, StorageError> {
    let Value::Object(body) = body else { return Err(StorageError::invalid("the body must be a JSON object")) };
    let s = settings(&body)?;
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    let n = tx
        .execute(
            "UPDATE storage.buckets SET
               public = coalesce($2, public),
               file_size_limit = CASE WHEN $3 THEN $4 ELSE file_size_limit END,
               allowed_mime_types = CASE WHEN $5 THEN $6 ELSE allowed_mime_types END,
               updated_at = now()
             WHERE id = $1",
            &[
                &id,
                &s.public,
                &s.file_size_limit.is_some(),
                &s.file_size_limit.flatten(),
                &s.allowed_mime_types.is_some(),
                &s.allowed_mime_types.flatten(),
            ],
        )
        .await
        .map_err(|e| StorageError::db(&e))?;
    if n == 0 {
        return Err(StorageError::no_bucket());
    }
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    Ok(axum::Json(json!({"message": "Successfully updated"})).into_response())
}

/// `POST /bucket/{id}/empty`: every object the caller may delete goes (at once here;
/// Supabase queues it, and its message says so, which clients may match).
pub async fn empty(ctx: &Ctx<'_>, id: &str) -> Result<Response, StorageError> {
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    access::bucket_as_caller(&tx, id).await?;
    let rows = tx
        .query("DELETE FROM storage.objects WHERE bucket_id = $1 RETURNING version", &[&id])
        .await
        .map_err(|e| StorageError::db(&e))?;
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    let versions: Vec<String> = rows.iter().filter_map(|r| r.get::<_, Option<String>>(0)).collect();
    ctx.st.blobs.remove(versions).await;
    Ok(axum::Json(json!({"message": "Empty bucket has been queued. Completion may take up to an hour."})).into_response())
}

/// `DELETE /bucket/{id}`: only an empty bucket.
pub async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Response, StorageError> {
    let mut client = access::client(ctx.st).await?;
    // Whether objects remain is the server's question (the caller may not see them all).
    let left: i64 = client
        .query_one("SELECT count(*) FROM (SELECT 1 FROM storage.objects WHERE bucket_id = $1 LIMIT 1) o", &[&id])
        .await
        .map_err(|e| StorageError::db(&e))?
        .get(0);
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    access::bucket_as_caller(&tx, id).await?;
    if left > 0 {
        return Err(StorageError::bucket_not_empty());
    }
    let n = tx.execute("DELETE FROM storage.buckets WHERE id = $1", &[&id]).await.map_err(|e| StorageError::db(&e))?;
    if n == 0 {
        return Err(StorageError::denied("the bucket cannot be deleted by this user (row-level security)"));
    }
    tx.commit().await.map_err(|e| StorageError::db(&e))?;
    Ok((StatusCode::OK, axum::Json(json!({"message": "Successfully deleted"}))).into_response())
}
