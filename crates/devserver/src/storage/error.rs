//! Storage's errors in Supabase Storage's shape: the HTTP status of the error code
//! (Supabase's error-code table: 404 `NoSuchKey`, 409 `KeyAlreadyExists`, 413
//! `EntityTooLarge`…) and a body `{statusCode, code, error, message}`. storage-js reads
//! `message` and `statusCode` (and `code`: `exists()` turns `NoSuchKey` into `false`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::jwt::JwtError;

/// A refusal, or a fault, of a Storage request.
#[derive(Debug, Clone)]
pub struct StorageError {
    pub status: StatusCode,
    pub code: &'static str,
    pub error: &'static str,
    pub message: String,
}

impl StorageError {
    pub fn new(status: StatusCode, code: &'static str, error: &'static str, message: impl Into<String>) -> StorageError {
        StorageError { status, code, error, message: message.into() }
    }
    pub fn no_bucket() -> StorageError {
        StorageError::new(StatusCode::NOT_FOUND, "NoSuchBucket", "Bucket not found", "Bucket not found")
    }
    pub fn no_object() -> StorageError {
        StorageError::new(StatusCode::NOT_FOUND, "NoSuchKey", "not_found", "Object not found")
    }
    pub fn no_upload() -> StorageError {
        StorageError::new(StatusCode::NOT_FOUND, "NoSuchUpload", "not_found", "Upload not found")
    }
    pub fn object_exists() -> StorageError {
        StorageError::new(StatusCode::CONFLICT, "KeyAlreadyExists", "Duplicate", "The resource already exists")
    }
    pub fn bucket_exists() -> StorageError {
        StorageError::new(StatusCode::CONFLICT, "BucketAlreadyExists", "Duplicate", "The resource already exists")
    }
    pub fn bucket_not_empty() -> StorageError {
        StorageError::new(
            StatusCode::CONFLICT,
            "InvalidRequest",
            "Bucket not empty",
            "The bucket you tried to delete is not empty",
        )
    }
    pub fn too_large() -> StorageError {
        StorageError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "EntityTooLarge",
            "Payload too large",
            "The object exceeded the maximum allowed size",
        )
    }
    pub fn mime(mime: &str) -> StorageError {
        StorageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidMimeType",
            "invalid_mime_type",
            format!("mime type {mime} is not supported"),
        )
    }
    pub fn invalid_key(name: &str) -> StorageError {
        StorageError::new(StatusCode::BAD_REQUEST, "InvalidKey", "Invalid Input", format!("Invalid key: {name}"))
    }
    pub fn invalid_bucket_name(name: &str) -> StorageError {
        StorageError::new(
            StatusCode::BAD_REQUEST,
            "InvalidBucketName",
            "Invalid Input",
            format!("Bucket name invalid: {name}"),
        )
    }
    pub fn invalid(message: impl Into<String>) -> StorageError {
        StorageError::new(StatusCode::BAD_REQUEST, "InvalidRequest", "Invalid Input", message)
    }
    /// Row-level security (or a missing grant) refused the caller.
    pub fn denied(message: impl Into<String>) -> StorageError {
        StorageError::new(StatusCode::FORBIDDEN, "AccessDenied", "Unauthorized", message)
    }
    pub fn jwt(message: impl Into<String>) -> StorageError {
        StorageError::new(StatusCode::UNAUTHORIZED, "InvalidJWT", "Unauthorized", message)
    }
    pub fn internal(message: impl Into<String>) -> StorageError {
        StorageError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "Internal", message)
    }
    pub fn not_found_route() -> StorageError {
        StorageError::new(StatusCode::NOT_FOUND, "InvalidRequest", "Not Found", "Route not found")
    }

    /// A database error: RLS refusals (42501) are `AccessDenied`, a unique violation
    /// a duplicate, the rest a fault whose message says what PostgreSQL said.
    pub fn db(e: &tokio_postgres::Error) -> StorageError {
        let parts = crate::pgerr::parts(e);
        match parts.code.as_str() {
            "42501" => StorageError::denied(parts.message),
            "23505" => StorageError::object_exists(),
            "22P02" | "22023" | "23514" | "23502" => StorageError::invalid(parts.message),
            _ => StorageError::internal(crate::pgerr::describe(e)),
        }
    }
    pub fn io(what: &str, e: std::io::Error) -> StorageError {
        StorageError::internal(format!("{what}: {e}"))
    }
}

impl From<JwtError> for StorageError {
    fn from(e: JwtError) -> StorageError {
        match e {
            JwtError::Expired { .. } => StorageError::jwt("jwt expired"),
            JwtError::Malformed(_) => StorageError::jwt("Invalid Compact JWS"),
            JwtError::BadSignature => StorageError::jwt("signature verification failed"),
            JwtError::Invalid(m) | JwtError::Claims(m) => StorageError::jwt(m),
        }
    }
}

impl IntoResponse for StorageError {
    fn into_response(self) -> Response {
        let body = json!({
            "statusCode": self.status.as_u16().to_string(),
            "code": self.code,
            "error": self.error,
            "message": self.message,
        });
        (self.status, axum::Json(body)).into_response()
    }
}
