//! PostgREST's error shape: `{"code","message","details","hint"}` with PostgREST's status
//! codes (reference §4.7), so supabase-js surfaces exactly what it would from Supabase.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::jwt::JwtError;
use crate::pgerr::DbErrorParts;

/// An error answer of the REST layer.
#[derive(Debug, Clone)]
pub struct RestError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Text, or (for PGRST201) the list of candidate relationships.
    pub details: Option<serde_json::Value>,
    pub hint: Option<String>,
}

impl From<supasync_query_syntax::SyntaxError> for RestError {
    fn from(e: supasync_query_syntax::SyntaxError) -> RestError {
        RestError::parse(e.message, e.details)
    }
}

impl RestError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> RestError {
        RestError {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            hint: None,
        }
    }

    pub fn details(mut self, d: impl Into<String>) -> RestError {
        self.details = Some(serde_json::Value::String(d.into()));
        self
    }

    /// Structured details (PostgREST sends PGRST201's candidates as a list).
    pub fn details_json(mut self, d: serde_json::Value) -> RestError {
        self.details = Some(d);
        self
    }

    pub fn hint(mut self, h: impl Into<String>) -> RestError {
        self.hint = Some(h.into());
        self
    }

    /// PGRST100: a query parameter could not be parsed.
    pub fn parse(message: impl Into<String>, details: impl Into<String>) -> RestError {
        RestError::new(StatusCode::BAD_REQUEST, "PGRST100", message).details(details)
    }

    /// PGRST102: the body is not what the endpoint takes.
    pub fn body(message: impl Into<String>) -> RestError {
        RestError::new(StatusCode::BAD_REQUEST, "PGRST102", message)
    }

    /// PGRST205: unknown table.
    pub fn no_table(schema: &str, table: &str) -> RestError {
        RestError::new(
            StatusCode::NOT_FOUND,
            "PGRST205",
            format!("Could not find the table '{schema}.{table}' in the schema cache"),
        )
    }

    /// 42703 (PostgREST passes Postgres's own error for an unknown column in a filter or
    /// select): `column t.x does not exist`.
    pub fn no_column(table: &str, column: &str) -> RestError {
        RestError::new(
            StatusCode::BAD_REQUEST,
            "42703",
            format!("column {table}.{column} does not exist"),
        )
    }

    /// PGRST204: a written column that does not exist.
    pub fn no_write_column(table: &str, column: &str) -> RestError {
        RestError::new(
            StatusCode::BAD_REQUEST,
            "PGRST204",
            format!("Could not find the '{column}' column of '{table}' in the schema cache"),
        )
    }

    /// A JWT problem (PGRST301 / PGRST303), always 401 with `WWW-Authenticate`.
    pub fn jwt(e: &JwtError) -> RestError {
        match e {
            JwtError::Expired { .. } => RestError::new(StatusCode::UNAUTHORIZED, "PGRST303", "JWT expired"),
            JwtError::Claims(m) => RestError::new(StatusCode::UNAUTHORIZED, "PGRST303", m.clone()),
            other => RestError::new(StatusCode::UNAUTHORIZED, "PGRST301", other.to_string()),
        }
    }

    /// A database error, with PostgREST's mapping of SQLSTATE to HTTP status.
    pub fn db(p: DbErrorParts, anon: bool) -> RestError {
        let status = db_status(&p.code, anon);
        RestError {
            status,
            code: p.code,
            message: p.message,
            details: p.details.map(serde_json::Value::String),
            hint: p.hint,
        }
    }
}

/// PostgREST's SQLSTATE → HTTP status table (`Error.hs`).
fn db_status(code: &str, anon: bool) -> StatusCode {
    let s = |n: u16| StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match code {
        "23505" | "23503" => s(409),
        "42501" => s(if anon { 401 } else { 403 }),
        "42P01" | "42883" => s(404),
        "25006" => s(405),
        "22023" => s(401),
        "57014" => s(500),
        "P0001" => s(400),
        c if c.starts_with("PT") => c[2..].parse::<u16>().map(s).unwrap_or(s(500)),
        c if c.starts_with("08") || c.starts_with("53") => s(503),
        c if c.starts_with("22") || c.starts_with("23") || c.starts_with("42") => s(400),
        "40001" | "40P01" => s(409),
        _ => s(500),
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "hint": self.hint,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("PostgREST; error={}", self.code)) {
            resp.headers_mut().insert("proxy-status", v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_mapping_matches_postgrest() {
        assert_eq!(db_status("23505", false), 409);
        assert_eq!(db_status("23503", false), 409);
        assert_eq!(db_status("42501", true), 401);
        assert_eq!(db_status("42501", false), 403);
        assert_eq!(db_status("23514", false), 400);
        assert_eq!(db_status("23502", false), 400);
        assert_eq!(db_status("22P02", false), 400);
        assert_eq!(db_status("PT418", false), 418);
        assert_eq!(db_status("53300", false), 503);
    }
}
