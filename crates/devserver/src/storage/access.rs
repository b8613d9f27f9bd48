//! Who is asking, and running Storage's SQL as them.
//!
//! Supabase Storage decides access with PostgreSQL's row-level security on
//! `storage.objects` and `storage.buckets`: every read and write of those rows runs as
//! the caller's role with their JWT claims set, so `auth.uid()`, `auth.role()` and the
//! policies users write for Supabase work unchanged, and `service_role` passes them all.
//! Two lookups run as the server itself, as Supabase does: a bucket's limits on upload
//! (so object policies alone decide who may upload) and a public bucket's objects.

use axum::http::HeaderMap;
use serde_json::Value;

use super::error::StorageError;
use crate::gateway::{bearer, check_api_key, Caller, GatewayError};
use crate::jwt::JwtKeys;
use crate::state::AppState;

/// The caller of a Storage request. As on `supabase start`, a request needs no
/// `apikey` (a wrong one is refused); the token is the bearer token, else the key.
pub fn caller(headers: &HeaderMap, query: Option<&str>, keys: &JwtKeys) -> Result<Caller, StorageError> {
    let key = match check_api_key(headers, query, keys) {
        Ok(k) => Some(k),
        Err(GatewayError::NoApiKey) => None,
        Err(_) => return Err(StorageError::jwt("Invalid API key")),
    };
    let token = bearer(headers).or(key).unwrap_or_default();
    let claims = keys.verify(&token)?;
    let role = claims.get("role").and_then(Value::as_str).unwrap_or("anon").to_string();
    Ok(Caller { token, claims, role })
}

/// The caller's user id (`sub`), if the token has one.
pub fn owner(caller: &Caller) -> Option<String> {
    caller.claims.get("sub").and_then(Value::as_str).map(str::to_string)
}

/// A pooled connection.
pub async fn client(st: &AppState) -> Result<deadpool_postgres::Object, StorageError> {
    st.client().await.map_err(StorageError::internal)
}

/// Start a transaction running as `caller` (role and claims set for it alone).
pub async fn begin<'c>(
    client: &'c mut deadpool_postgres::Object,
    caller: &Caller,
) -> Result<deadpool_postgres::Transaction<'c>, StorageError> {
    let tx = client.transaction().await.map_err(|e| StorageError::db(&e))?;
    act_as(&tx, caller).await?;
    Ok(tx)
}

/// From here to the end of `tx`, run as `caller`.
pub async fn act_as(tx: &deadpool_postgres::Transaction<'_>, caller: &Caller) -> Result<(), StorageError> {
    let claims = Value::Object(caller.claims.clone()).to_string();
    tx.execute(
        "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
        &[&caller.role, &claims],
    )
    .await
    .map_err(|e| StorageError::jwt(format!("the token's role cannot be used: {}", crate::pgerr::parts(&e).message)))?;
    Ok(())
}

/// A bucket's settings.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub id: String,
    pub public: bool,
    pub file_size_limit: Option<i64>,
    pub allowed_mime_types: Option<Vec<String>>,
}

const BUCKET_COLUMNS: &str = "id, public, file_size_limit, allowed_mime_types";

fn bucket_from(row: &tokio_postgres::Row) -> Bucket {
    Bucket {
        id: row.get(0),
        public: row.get(1),
        file_size_limit: row.get(2),
        allowed_mime_types: row.get(3),
    }
}

/// Find a bucket as the server (no row-level security).
pub async fn bucket_as_server(client: &deadpool_postgres::Object, id: &str) -> Result<Bucket, StorageError> {
    let row = client
        .query_opt(&format!("SELECT {BUCKET_COLUMNS} FROM storage.buckets WHERE id = $1"), &[&id])
        .await
        .map_err(|e| StorageError::db(&e))?;
    row.as_ref().map(bucket_from).ok_or_else(StorageError::no_bucket)
}

/// Find a bucket the caller can see.
pub async fn bucket_as_caller(tx: &deadpool_postgres::Transaction<'_>, id: &str) -> Result<Bucket, StorageError> {
    let row = tx
        .query_opt(&format!("SELECT {BUCKET_COLUMNS} FROM storage.buckets WHERE id = $1"), &[&id])
        .await
        .map_err(|e| StorageError::db(&e))?;
    row.as_ref().map(bucket_from).ok_or_else(StorageError::no_bucket)
}

impl Bucket {
    /// The most bytes an object of this bucket may have.
    pub fn limit(&self) -> u64 {
        let global = super::blobs::GLOBAL_LIMIT;
        self.file_size_limit.map(|l| (l.max(0) as u64).min(global)).unwrap_or(global)
    }

    /// Refuse a content type the bucket does not allow (`image/*` wildcards allowed).
    pub fn check_mime(&self, content_type: &str) -> Result<(), StorageError> {
        let Some(allowed) = &self.allowed_mime_types else { return Ok(()) };
        if allowed.is_empty() {
            return Ok(());
        }
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let ok = allowed.iter().any(|a| {
            let a = a.trim().to_ascii_lowercase();
            match a.strip_suffix("/*") {
                Some(top) => essence.split('/').next() == Some(top),
                None => a == essence,
            }
        });
        if ok {
            Ok(())
        } else {
            Err(StorageError::mime(&essence))
        }
    }
}
