//! What Supabase's API gateway and services do before a request reaches SQL: the `apikey`
//! check (Kong accepts only the project's anon and service-role keys) and the choice of
//! bearer token (`Authorization`, else the `apikey` itself), verified as a JWT.
//!
//! `/rest/v1` is the one exception to "no key, no entry", as on `supabase start`: its
//! gateway route lets a request without any `apikey` through to PostgREST, which then
//! runs it as the anonymous role (or as the bearer token's role, when one is sent). A
//! wrong key is still refused. postgrest-js's own test suite relies on this.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::jwt::{JwtError, JwtKeys};

/// The caller, as the JWT says.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: String,
    pub claims: Map<String, Value>,
    pub role: String,
}

impl Caller {
    /// Whether the request runs as the anonymous role (42501 is then a 401, not a 403).
    pub fn is_anon(&self) -> bool {
        self.role == "anon"
    }
}

/// Why the gateway refused a request before any service saw it.
#[derive(Debug)]
pub enum GatewayError {
    NoApiKey,
    BadApiKey,
    Jwt(JwtError),
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        match self {
            GatewayError::NoApiKey => (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message":"No API key found in request","hint":"No `apikey` request header or url param was found."})),
            )
                .into_response(),
            GatewayError::BadApiKey => {
                (StatusCode::UNAUTHORIZED, axum::Json(json!({"message":"Invalid API key"}))).into_response()
            }
            GatewayError::Jwt(e) => crate::rest::error::RestError::jwt(&e).into_response(),
        }
    }
}

/// The `apikey` header (or `apikey` query parameter) must be one of the project's keys.
pub fn check_api_key(headers: &HeaderMap, query: Option<&str>, keys: &JwtKeys) -> Result<String, GatewayError> {
    let from_header = headers.get("apikey").and_then(|v| v.to_str().ok()).map(str::to_string);
    let from_query = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "apikey")
            .map(|(_, v)| v.into_owned())
    });
    let key = from_header.or(from_query).ok_or(GatewayError::NoApiKey)?;
    if !keys.is_api_key(&key) {
        return Err(GatewayError::BadApiKey);
    }
    Ok(key)
}

/// The bearer token of a request: `Authorization: Bearer …`, else the API key.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Gateway check plus JWT verification.
pub fn caller(headers: &HeaderMap, query: Option<&str>, keys: &JwtKeys) -> Result<Caller, GatewayError> {
    let api_key = check_api_key(headers, query, keys)?;
    verified(bearer(headers).unwrap_or(api_key), keys)
}

/// [`caller`] for `/rest/v1`, where a request without an `apikey` is let through: it runs
/// with its bearer token if it has one, else as the anonymous role.
pub fn rest_caller(headers: &HeaderMap, query: Option<&str>, keys: &JwtKeys) -> Result<Caller, GatewayError> {
    match check_api_key(headers, query, keys) {
        Ok(api_key) => verified(bearer(headers).unwrap_or(api_key), keys),
        Err(GatewayError::NoApiKey) => verified(bearer(headers).unwrap_or_else(|| keys.anon_key.clone()), keys),
        Err(e) => Err(e),
    }
}

fn verified(token: String, keys: &JwtKeys) -> Result<Caller, GatewayError> {
    let claims = keys.verify(&token).map_err(GatewayError::Jwt)?;
    let role = claims.get("role").and_then(Value::as_str).unwrap_or("anon").to_string();
    Ok(Caller { token, claims, role })
}
