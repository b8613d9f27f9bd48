//! Listing a bucket, as the caller (rows hidden by row-level security are not listed).
//!
//! v1 (`POST /object/list/{bucket}`) lists one folder level: the objects directly in
//! `prefix` and its sub-folders (folders have no id, dates or metadata), filtered by a
//! name `search`, sorted, paged by `limit`/`offset`. v2 (`/object/list-v2/{bucket}`)
//! lists keys under a raw prefix, recursively, or one level with `with_delimiter`
//! (folders apart from objects), paged by an opaque `cursor` with an exact `hasNext`.
//! Columns and directions come from fixed lists; values are always bound parameters.

use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};

use super::access;
use super::error::StorageError;
use super::names::check_bucket;
use super::{iso, Ctx};

fn sort_of(body: &Value, columns: &[&'static str]) -> Result<(&'static str, &'static str), StorageError> {
    let sort = body.get("sortBy");
    let column = sort.and_then(|s| s.get("column")).and_then(Value::as_str).unwrap_or("name");
    let column = columns
        .iter()
        .find(|c| **c == column)
        .ok_or_else(|| StorageError::invalid(format!("sortBy.column {column:?}: one of {}", columns.join(", "))))?;
    let order = match sort.and_then(|s| s.get("order")).and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => "ASC",
        Some("desc") => "DESC",
        Some(other) => return Err(StorageError::invalid(format!("sortBy.order {other:?}: asc or desc"))),
    };
    Ok((column, order))
}

fn int(body: &Value, key: &str, default: i64) -> Result<i64, StorageError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_i64().filter(|n| *n >= 0).ok_or_else(|| StorageError::invalid(format!("{key} must be a whole number"))),
    }
}

/// `ILIKE` pattern text for a literal prefix (`%`, `_` and `\` escaped), in SQL.
const LIKE_ESCAPED: &str = "replace(replace(replace($3, '\\', '\\\\'), '%', '\\%'), '_', '\\_')";

/// The fields of a listed entry, for `json_build_object`.
fn entry_fields() -> String {
    format!(
        "'name', name, 'id', id, 'updated_at', {}, 'created_at', {}, 'last_accessed_at', {}, 'metadata', metadata",
        iso("updated_at"),
        iso("created_at"),
        iso("last_accessed_at")
    )
}

/// `POST /object/list/{bucket}` `{prefix, limit, offset, sortBy, search}`.
pub async fn list_v1(ctx: &Ctx<'_>, bucket: &str, body: Value) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    let prefix = body.get("prefix").and_then(Value::as_str).unwrap_or("").trim_matches('/').to_string();
    let base = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
    let limit = int(&body, "limit", 100)?;
    let offset = int(&body, "offset", 0)?;
    let search = body.get("search").and_then(Value::as_str).unwrap_or("").to_string();
    let (column, order) = sort_of(&body, &["name", "created_at", "updated_at", "last_accessed_at"])?;
    let sql = format!(
        "WITH o AS (
           SELECT substr(name, char_length($2) + 1) AS rest, id, created_at, updated_at, last_accessed_at, metadata
           FROM storage.objects WHERE bucket_id = $1 AND starts_with(name, $2)),
         e AS (
           SELECT rest AS name, id, created_at, updated_at, last_accessed_at, metadata FROM o WHERE strpos(rest, '/') = 0
           UNION ALL
           SELECT DISTINCT split_part(rest, '/', 1), NULL::uuid, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::jsonb
           FROM o WHERE strpos(rest, '/') > 0),
         page AS (
           SELECT * FROM e WHERE $3 = '' OR name ILIKE {LIKE_ESCAPED} || '%'
           ORDER BY {column} {order}, name {order} LIMIT $4 OFFSET $5)
         SELECT coalesce(json_agg(json_build_object({fields}) ORDER BY {column} {order}, name {order}), '[]'::json)
         FROM page",
        fields = entry_fields(),
    );
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    let row = tx.query_one(&sql, &[&bucket, &base, &search, &limit, &offset]).await.map_err(|e| StorageError::db(&e))?;
    let v: Value = row.get(0);
    Ok(axum::Json(v).into_response())
}

/// `POST /object/list-v2/{bucket}` `{prefix, cursor, limit, with_delimiter, sortBy}`.
pub async fn list_v2(ctx: &Ctx<'_>, bucket: &str, body: Value) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    let prefix = body.get("prefix").and_then(Value::as_str).unwrap_or("").to_string();
    let limit = int(&body, "limit", 1000)?.clamp(1, 1000);
    let delimiter = body.get("with_delimiter").and_then(Value::as_bool).unwrap_or(false);
    let (column, order) = sort_of(&body, &["name", "created_at", "updated_at"])?;
    let offset: i64 = match body.get("cursor").and_then(Value::as_str) {
        None | Some("") => 0,
        Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
            .ok_or_else(|| StorageError::invalid("the cursor is not one this server gave"))?,
    };
    // Entries: (kind, name), folders first when grouped; `$3` says whether to group.
    let sql = format!(
        "WITH o AS (
           SELECT name, substr(name, char_length($2) + 1) AS rest, id, created_at, updated_at, last_accessed_at, metadata
           FROM storage.objects WHERE bucket_id = $1 AND starts_with(name, $2)),
         e AS (
           SELECT 'object' AS kind, name, id, created_at, updated_at, last_accessed_at, metadata
           FROM o WHERE NOT $3 OR strpos(rest, '/') = 0
           UNION ALL
           SELECT DISTINCT 'folder', $2 || split_part(rest, '/', 1) || '/', NULL::uuid, NULL::timestamptz,
                  NULL::timestamptz, NULL::timestamptz, NULL::jsonb
           FROM o WHERE $3 AND strpos(rest, '/') > 0),
         page AS (
           SELECT * FROM e ORDER BY {column} {order} NULLS FIRST, name {order} LIMIT $4::bigint + 1 OFFSET $5::bigint)
         SELECT coalesce(json_agg(json_build_object('kind', kind, {fields})
                  ORDER BY {column} {order} NULLS FIRST, name {order}), '[]'::json)
         FROM page",
        fields = entry_fields(),
    );
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    let row = tx
        .query_one(&sql, &[&bucket, &prefix, &delimiter, &limit, &offset])
        .await
        .map_err(|e| StorageError::db(&e))?;
    let Value::Array(mut entries) = row.get::<_, Value>(0) else { return Err(StorageError::internal("list: not an array")) };
    let has_next = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let mut folders = vec![];
    let mut objects = vec![];
    for mut e in entries {
        let name = e.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        if e.get("kind").and_then(Value::as_str) == Some("folder") {
            folders.push(json!({"key": name.trim_end_matches('/'), "name": name}));
        } else if let Value::Object(m) = &mut e {
            m.remove("kind");
            m.insert("key".into(), Value::String(name));
            objects.push(e);
        }
    }
    let mut out = json!({"hasNext": has_next, "folders": folders, "objects": objects});
    if has_next {
        out["nextCursor"] = Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{}", offset + limit)));
    }
    Ok(axum::Json(out).into_response())
}
