//! Auth's errors in the shape the client asked for: GoTrue's 2024-01-01 shape
//! (`code`, `message`) when the client sends `X-Supabase-Api-Version`, the legacy one
//! (`code`, `error_code`, `msg`) otherwise, with `x-sb-error-code` on both.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The API version whose error shape a versioned client gets.
const API_VERSION: &str = "2024-01-01";

/// An Auth error, rendered in the shape the client asked for.
#[derive(Debug)]
pub struct AuthError {
    status: StatusCode,
    code: &'static str,
    message: String,
    versioned: bool,
}

impl AuthError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AuthError {
        AuthError {
            status,
            code,
            message: message.into(),
            versioned: false,
        }
    }
    pub(super) fn internal(message: impl Into<String>) -> AuthError {
        AuthError::new(StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure", message)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = if self.versioned {
            json!({"code": self.code, "message": self.message})
        } else {
            json!({"code": self.status.as_u16(), "error_code": self.code, "msg": self.message})
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(self.code) {
            r.headers_mut().insert("x-sb-error-code", v);
        }
        if self.versioned {
            r.headers_mut()
                .insert("x-supabase-api-version", HeaderValue::from_static(API_VERSION));
        }
        r
    }
}

fn versioned(headers: &HeaderMap) -> bool {
    headers.get("x-supabase-api-version").is_some()
}

pub(super) fn finish(headers: &HeaderMap, r: Result<Response, AuthError>) -> Response {
    match r {
        Ok(mut resp) => {
            if versioned(headers) {
                resp.headers_mut()
                    .insert("x-supabase-api-version", HeaderValue::from_static(API_VERSION));
            }
            resp
        }
        Err(mut e) => {
            e.versioned = versioned(headers);
            e.into_response()
        }
    }
}
