//! Signed URLs: a download link anyone can use until it expires, and a one-shot upload
//! link (valid two hours) that needs no other credential.
//!
//! Both are JWTs signed with the project's secret, as Supabase makes them: `{url:
//! "bucket/key", exp}` for a download, `{url, owner, upsert, exp}` for an upload. Signing
//! a download needs the caller to see the object (row-level security); signing an
//! upload needs the caller to be allowed to write it (tried in a transaction that is
//! rolled back). Using the link then runs as the server, with the owner the link names.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::access::{self, owner};
use super::error::StorageError;
use super::names::{check_bucket, check_key};
use super::objects::{self, find, serve};
use super::render::Transform;
use super::Ctx;
use crate::gateway::Caller;
use crate::jwt::now_secs;

const UPLOAD_LINK_SECS: i64 = 2 * 3600;
const NOT_FOUND_OR_DENIED: &str = "Either the object does not exist or you do not have access to it";

fn expires_in(body: &Value) -> Result<i64, StorageError> {
    body.get("expiresIn")
        .and_then(Value::as_i64)
        .filter(|n| *n > 0)
        .ok_or_else(|| StorageError::invalid("expiresIn must be a positive number of seconds"))
}

fn sign_download(ctx: &Ctx<'_>, bucket: &str, key: &str, secs: i64, transform: Option<&Transform>) -> String {
    let now = now_secs();
    let mut claims = json!({"url": format!("{bucket}/{key}"), "iat": now, "exp": now + secs});
    match transform {
        None => format!("/object/sign/{bucket}/{key}?token={}", ctx.st.keys.sign(&claims)),
        Some(t) => {
            claims["transformations"] = Value::String(t.to_query());
            format!("/render/image/sign/{bucket}/{key}?token={}", ctx.st.keys.sign(&claims))
        }
    }
}

/// `POST /object/sign/{bucket}/{key}` `{expiresIn}` → `{signedURL}`.
pub async fn sign_one(ctx: &Ctx<'_>, bucket: &str, key: &str, body: Value) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    check_key(key)?;
    let secs = expires_in(&body)?;
    let transform = body.get("transform").map(Transform::from_json).transpose()?.flatten();
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    find(&tx, bucket, key).await?;
    Ok(axum::Json(json!({"signedURL": sign_download(ctx, bucket, key, secs, transform.as_ref())})).into_response())
}

/// `POST /object/sign/{bucket}` `{expiresIn, paths}` → `[{path, signedURL, error}]`.
pub async fn sign_many(ctx: &Ctx<'_>, bucket: &str, body: Value) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    let secs = expires_in(&body)?;
    let paths: Vec<String> = body
        .get("paths")
        .and_then(Value::as_array)
        .ok_or_else(|| StorageError::invalid("body must have required property 'paths'"))?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| StorageError::invalid("paths must be strings")))
        .collect::<Result<_, _>>()?;
    let mut client = access::client(ctx.st).await?;
    let tx = access::begin(&mut client, &ctx.caller()?).await?;
    let rows = tx
        .query("SELECT name FROM storage.objects WHERE bucket_id = $1 AND name = ANY($2)", &[&bucket, &paths])
        .await
        .map_err(|e| StorageError::db(&e))?;
    let seen: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let out: Vec<Value> = paths
        .iter()
        .map(|p| {
            if seen.contains(p) {
                json!({"path": p, "signedURL": sign_download(ctx, bucket, p, secs, None), "error": null})
            } else {
                json!({"path": p, "signedURL": null, "error": NOT_FOUND_OR_DENIED})
            }
        })
        .collect();
    Ok(axum::Json(Value::Array(out)).into_response())
}

/// The claims of a link's token, checked against the object it is used for.
fn link_claims(ctx: &Ctx<'_>, bucket: &str, key: &str) -> Result<Map<String, Value>, StorageError> {
    let token = ctx.query_param("token").ok_or_else(|| StorageError::invalid("the query has no token"))?;
    let claims = ctx.st.keys.verify_own(&token)?;
    let url = claims.get("url").and_then(Value::as_str).unwrap_or("");
    if url != format!("{bucket}/{key}") {
        return Err(StorageError::jwt("the token was signed for another object"));
    }
    Ok(claims)
}

/// `GET /object/sign/{bucket}/{key}?token=`.
pub async fn download(ctx: &Ctx<'_>, bucket: &str, key: &str, head: bool) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    check_key(key)?;
    let claims = link_claims(ctx, bucket, key)?;
    if claims.contains_key("owner") {
        return Err(StorageError::jwt("an upload link cannot download"));
    }
    let client = access::client(ctx.st).await?;
    let found = find(&client, bucket, key).await?;
    serve(ctx, &found, key, head).await
}

/// `GET /render/image/sign/{bucket}/{key}?token=`: the transformation the token names.
pub async fn render(ctx: &Ctx<'_>, bucket: &str, key: &str) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    check_key(key)?;
    let claims = link_claims(ctx, bucket, key)?;
    let query = claims.get("transformations").and_then(Value::as_str).unwrap_or("");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let t = Transform::parse(&pairs)?;
    let client = access::client(ctx.st).await?;
    let found = find(&client, bucket, key).await?;
    super::render::serve(ctx, &found, &t).await
}

/// Whether `caller` may write `bucket/key`: the write it would make (an insert, or for
/// an existing object an update) is tried and rolled back.
pub async fn check_can_write(ctx: &Ctx<'_>, caller: &Caller, bucket: &str, key: &str) -> Result<(), StorageError> {
    let mut client = access::client(ctx.st).await?;
    let tx = client.transaction().await.map_err(|e| StorageError::db(&e))?;
    let exists = tx
        .query_opt("SELECT 1 FROM storage.objects WHERE bucket_id = $1 AND name = $2", &[&bucket, &key])
        .await
        .map_err(|e| StorageError::db(&e))?
        .is_some();
    access::act_as(&tx, caller).await?;
    let sub = owner(caller);
    let probe = if exists {
        tx.execute("UPDATE storage.objects SET owner_id = $3 WHERE bucket_id = $1 AND name = $2", &[&bucket, &key, &sub])
            .await
            .map_err(|e| StorageError::db(&e))
            .and_then(|n| if n == 0 { Err(StorageError::denied("new row violates row-level security policy")) } else { Ok(()) })
    } else {
        tx.execute("INSERT INTO storage.objects (bucket_id, name, owner_id) VALUES ($1, $2, $3)", &[&bucket, &key, &sub])
            .await
            .map(|_| ())
            .map_err(|e| StorageError::db(&e))
    };
    let _ = tx.rollback().await;
    probe
}

/// `POST /object/upload/sign/{bucket}/{key}` (`x-upsert`) → `{url, token}`.
pub async fn sign_upload(ctx: &Ctx<'_>, bucket: &str, key: &str) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    check_key(key)?;
    let caller = ctx.caller()?;
    {
        let client = access::client(ctx.st).await?;
        access::bucket_as_server(&client, bucket).await?;
    }
    check_can_write(ctx, &caller, bucket, key).await?;
    let upsert = ctx.header("x-upsert").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let now = now_secs();
    let token = ctx.st.keys.sign(&json!({
        "url": format!("{bucket}/{key}"),
        "owner": owner(&caller),
        "upsert": upsert,
        "iat": now,
        "exp": now + UPLOAD_LINK_SECS,
    }));
    Ok(axum::Json(json!({"url": format!("/object/upload/sign/{bucket}/{key}?token={token}"), "token": token})).into_response())
}

/// `PUT /object/upload/sign/{bucket}/{key}?token=`: the upload, as the link's owner.
pub async fn upload_signed(ctx: &Ctx<'_>, bucket: &str, key: &str, body: Body) -> Result<Response, StorageError> {
    check_bucket(bucket)?;
    check_key(key)?;
    let claims = link_claims(ctx, bucket, key)?;
    if !claims.contains_key("owner") {
        return Err(StorageError::jwt("a download link cannot upload"));
    }
    let upsert = claims.get("upsert").and_then(Value::as_bool).unwrap_or(false);
    let mut as_claims = Map::new();
    as_claims.insert("role".into(), json!("service_role"));
    if let Some(sub) = claims.get("owner").and_then(Value::as_str) {
        as_claims.insert("sub".into(), json!(sub));
    }
    let link = Caller { token: String::new(), claims: as_claims, role: "service_role".into() };
    let b = {
        let client = access::client(ctx.st).await?;
        access::bucket_as_server(&client, bucket).await?
    };
    let incoming = objects::receive(ctx, &b, body).await?;
    let id = objects::store(ctx.st, &link, bucket, key, upsert, incoming).await?;
    Ok(axum::Json(json!({"Id": id, "Key": format!("{bucket}/{key}")})).into_response())
}
