//! `/auth/v1`: the GoTrue endpoints supasync and supabase-js use (reference §5): signup
//! (confirmed at once, returning a session), password and refresh-token grants with
//! rotation, logout, and the user endpoints.
//!
//! Passwords are hashed with bcrypt (GoTrue's KDF, cost 10). Refresh tokens rotate: each
//! use revokes the token and issues a child; presenting the revoked parent of the active
//! token (a lost response) returns the active one again, and any other reuse revokes the
//! whole session, as GoTrue does. Errors take the 2024-01-01 shape when the client sends
//! `X-Supabase-Api-Version`, the legacy shape otherwise.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Value};

mod error;

use self::error::{finish, AuthError};
use crate::gateway;
use crate::jwt::now_secs;
use crate::state::AppState;

/// How long a revoked refresh token may still be exchanged (GoTrue's reuse interval).
const REUSE_INTERVAL_SECS: f64 = 10.0;
const BCRYPT_COST: u32 = 10;

/// The routes under `/auth/v1`.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/auth/v1/signup", post(signup))
        .route("/auth/v1/token", post(token))
        .route("/auth/v1/logout", post(logout))
        .route("/auth/v1/user", get(get_user).put(put_user))
        .route("/auth/v1/health", get(|| async { axum::Json(json!({"name":"GoTrue","version":"supasync-dev"})) }))
}

fn parse_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, AuthError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(AuthError::new(StatusCode::BAD_REQUEST, "bad_json", "Could not parse request body as JSON")),
    }
}

fn str_field<'a>(m: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else { return false };
    !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !e.contains(char::is_whitespace) && e.len() <= 255
}

async fn db(st: &AppState) -> Result<deadpool_postgres::Object, AuthError> {
    st.client().await.map_err(AuthError::internal)
}

fn dberr(e: tokio_postgres::Error) -> AuthError {
    AuthError::internal(format!("Database error: {}", crate::pgerr::describe(&e)))
}

const USER_COLUMNS: &str = "id::text, aud, role, email, email_confirmed_at, last_sign_in_at,
    raw_app_meta_data, raw_user_meta_data, is_anonymous, created_at, updated_at";

fn ts(v: Option<std::time::SystemTime>) -> Value {
    match v {
        Some(t) => {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            Value::String(rfc3339(d.as_secs() as i64, d.subsec_micros()))
        }
        None => Value::Null,
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` from Unix seconds (UTC), without a date crate.
pub fn rfc3339(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{micros:06}Z")
}

fn user_json(r: &tokio_postgres::Row) -> Value {
    let id: String = r.get(0);
    let email: Option<String> = r.get(3);
    let confirmed = ts(r.get(4));
    let app_meta: Value = r.get(6);
    let user_meta: Value = r.get(7);
    let identity = json!({
        "identity_id": id, "id": id, "user_id": id,
        "identity_data": {"email": email, "email_verified": true, "phone_verified": false, "sub": id},
        "provider": "email", "last_sign_in_at": ts(r.get(5)), "created_at": ts(r.get(9)),
        "updated_at": ts(r.get(10)), "email": email
    });
    json!({
        "id": id,
        "aud": r.get::<_, String>(1),
        "role": r.get::<_, String>(2),
        "email": email,
        "email_confirmed_at": confirmed,
        "confirmed_at": confirmed,
        "phone": "",
        "last_sign_in_at": ts(r.get(5)),
        "app_metadata": app_meta,
        "user_metadata": user_meta,
        "identities": [identity],
        "created_at": ts(r.get(9)),
        "updated_at": ts(r.get(10)),
        "is_anonymous": r.get::<_, bool>(8),
    })
}

/// Issue an access token for `user` in `session_id`.
fn access_token(st: &AppState, user: &Value, session_id: &str) -> (String, i64, i64) {
    let iat = now_secs();
    let exp = iat + st.settings.jwt_exp_secs;
    let claims = json!({
        "aud": "authenticated",
        "exp": exp,
        "iat": iat,
        "iss": "http://127.0.0.1/auth/v1",
        "sub": user["id"],
        "email": user["email"],
        "phone": "",
        "app_metadata": user["app_metadata"],
        "user_metadata": user["user_metadata"],
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": iat}],
        "session_id": session_id,
        "is_anonymous": false,
    });
    (st.keys.sign(&claims), iat, exp)
}

fn new_refresh_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 12).to_lowercase()
}

fn session_json(st: &AppState, user: Value, session_id: &str, refresh: &str) -> Value {
    let (token, _iat, exp) = access_token(st, &user, session_id);
    json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": st.settings.jwt_exp_secs,
        "expires_at": exp,
        "refresh_token": refresh,
        "user": user,
    })
}

/// Start a new session for `user_id`: a session row and its first refresh token.
async fn new_session(st: &AppState, c: &deadpool_postgres::Object, user_id: &str) -> Result<Value, AuthError> {
    let s = c
        .query_one(
            "WITH s AS (INSERT INTO auth.sessions (user_id) VALUES ($1::text::uuid) RETURNING id)
             SELECT id::text FROM s",
            &[&user_id],
        )
        .await
        .map_err(dberr)?;
    let session_id: String = s.get(0);
    let refresh = new_refresh_token();
    c.execute(
        "INSERT INTO auth.refresh_tokens (token, user_id, session_id) VALUES ($1, $2::text::uuid, $3::text::uuid)",
        &[&refresh, &user_id, &session_id],
    )
    .await
    .map_err(dberr)?;
    let row = c
        .query_one(
            &format!("UPDATE auth.users SET last_sign_in_at = now() WHERE id = $1::text::uuid RETURNING {USER_COLUMNS}"),
            &[&user_id],
        )
        .await
        .map_err(dberr)?;
    Ok(session_json(st, user_json(&row), &session_id, &refresh))
}

async fn signup(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        gateway::check_api_key(&headers, q.as_deref(), &st.keys).map_err(|_| {
            AuthError::new(StatusCode::UNAUTHORIZED, "no_authorization", "Invalid API key")
        })?;
        let m = parse_body(&body)?;
        let email = str_field(&m, "email")
            .ok_or_else(|| AuthError::new(StatusCode::BAD_REQUEST, "validation_failed", "Signup requires an email address"))?
            .to_lowercase();
        if !valid_email(&email) {
            return Err(AuthError::new(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "Unable to validate email address: invalid format",
            ));
        }
        let password = str_field(&m, "password")
            .ok_or_else(|| AuthError::new(StatusCode::BAD_REQUEST, "validation_failed", "Signup requires a valid password"))?;
        if password.chars().count() < 6 {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_password",
                "Password should be at least 6 characters.",
            ));
        }
        if password.len() > 72 {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_password",
                "Password cannot be longer than 72 characters",
            ));
        }
        let data = m.get("data").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        let pw = password.to_string();
        let hash = tokio::task::spawn_blocking(move || bcrypt::hash(pw, BCRYPT_COST))
            .await
            .map_err(|e| AuthError::internal(e.to_string()))?
            .map_err(|e| AuthError::internal(e.to_string()))?;
        let c = db(&st).await?;
        let row = c
            .query_opt(
                "INSERT INTO auth.users (email, encrypted_password, email_confirmed_at, raw_user_meta_data)
                 VALUES ($1, $2, now(), $3) ON CONFLICT (email) DO NOTHING RETURNING id::text",
                &[&email, &hash, &data],
            )
            .await
            .map_err(dberr)?;
        let Some(row) = row else {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "user_already_exists",
                "User already registered",
            ));
        };
        let id: String = row.get(0);
        let session = new_session(&st, &c, &id).await?;
        Ok(axum::Json(session).into_response())
    }
    .await;
    finish(&headers, r)
}

async fn token(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        gateway::check_api_key(&headers, q.as_deref(), &st.keys).map_err(|_| {
            AuthError::new(StatusCode::UNAUTHORIZED, "no_authorization", "Invalid API key")
        })?;
        let grant = q
            .as_deref()
            .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "grant_type").map(|(_, v)| v.into_owned()))
            .unwrap_or_default();
        let m = parse_body(&body)?;
        match grant.as_str() {
            "password" => password_grant(&st, &m).await,
            "refresh_token" => refresh_grant(&st, &m).await,
            _ => Err(AuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "unsupported_grant_type",
            )),
        }
        .map(|v| axum::Json(v).into_response())
    }
    .await;
    finish(&headers, r)
}

async fn password_grant(st: &AppState, m: &serde_json::Map<String, Value>) -> Result<Value, AuthError> {
    let Some(email) = str_field(m, "email") else {
        return Err(AuthError::new(StatusCode::BAD_REQUEST, "validation_failed", "missing email or phone"));
    };
    let Some(password) = str_field(m, "password") else {
        return Err(AuthError::new(StatusCode::BAD_REQUEST, "validation_failed", "missing password"));
    };
    let invalid = || AuthError::new(StatusCode::BAD_REQUEST, "invalid_credentials", "Invalid login credentials");
    let c = db(st).await?;
    let row = c
        .query_opt(
            "SELECT id::text, encrypted_password FROM auth.users WHERE email = $1",
            &[&email.to_lowercase()],
        )
        .await
        .map_err(dberr)?;
    let Some(row) = row else {
        return Err(invalid());
    };
    let id: String = row.get(0);
    let hash: Option<String> = row.get(1);
    let pw = password.to_string();
    let ok = match hash {
        Some(h) => tokio::task::spawn_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false))
            .await
            .unwrap_or(false),
        None => false,
    };
    if !ok {
        return Err(invalid());
    }
    new_session(st, &c, &id).await
}

async fn refresh_grant(st: &AppState, m: &serde_json::Map<String, Value>) -> Result<Value, AuthError> {
    let Some(token) = str_field(m, "refresh_token") else {
        return Err(AuthError::new(StatusCode::BAD_REQUEST, "validation_failed", "refresh_token required"));
    };
    let mut c = db(st).await?;
    let tx = c.transaction().await.map_err(dberr)?;
    let row = tx
        .query_opt(
            "SELECT id, user_id::text, session_id::text, revoked,
                    extract(epoch FROM (now() - updated_at))::float8
             FROM auth.refresh_tokens WHERE token = $1 FOR UPDATE",
            &[&token],
        )
        .await
        .map_err(dberr)?;
    let Some(row) = row else {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "refresh_token_not_found",
            "Invalid Refresh Token: Refresh Token Not Found",
        ));
    };
    let id: i64 = row.get(0);
    let user_id: String = row.get(1);
    let session_id: String = row.get(2);
    let revoked: bool = row.get(3);
    let age: f64 = row.get(4);
    let refresh = if revoked {
        // The active child of this token, if it is the latest one of the session.
        let child = tx
            .query_opt(
                "SELECT token FROM auth.refresh_tokens WHERE parent = $1 AND NOT revoked",
                &[&token],
            )
            .await
            .map_err(dberr)?;
        let active = match child {
            Some(ch) => Some(ch.get::<_, String>(0)),
            None if age <= REUSE_INTERVAL_SECS => tx
                .query_opt(
                    "SELECT token FROM auth.refresh_tokens WHERE session_id = $1::text::uuid AND NOT revoked
                     ORDER BY id DESC LIMIT 1",
                    &[&session_id],
                )
                .await
                .map_err(dberr)?
                .map(|r| r.get::<_, String>(0)),
            None => None,
        };
        match active {
            Some(t) => t,
            None => {
                // Reuse of an old token: revoke the whole session (the token family).
                tx.execute("DELETE FROM auth.sessions WHERE id = $1::text::uuid", &[&session_id])
                    .await
                    .map_err(dberr)?;
                tx.commit().await.map_err(dberr)?;
                return Err(AuthError::new(
                    StatusCode::BAD_REQUEST,
                    "refresh_token_already_used",
                    "Invalid Refresh Token: Already Used",
                ));
            }
        }
    } else {
        let fresh = new_refresh_token();
        tx.execute(
            "UPDATE auth.refresh_tokens SET revoked = true, updated_at = now() WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(dberr)?;
        tx.execute(
            "INSERT INTO auth.refresh_tokens (token, user_id, session_id, parent)
             VALUES ($1, $2::text::uuid, $3::text::uuid, $4)",
            &[&fresh, &user_id, &session_id, &token],
        )
        .await
        .map_err(dberr)?;
        tx.execute("UPDATE auth.sessions SET updated_at = now() WHERE id = $1::text::uuid", &[&session_id])
            .await
            .map_err(dberr)?;
        fresh
    };
    let user = tx
        .query_one(
            &format!("SELECT {USER_COLUMNS} FROM auth.users WHERE id = $1::text::uuid"),
            &[&user_id],
        )
        .await
        .map_err(dberr)?;
    tx.commit().await.map_err(dberr)?;
    Ok(session_json(st, user_json(&user), &session_id, &refresh))
}

/// The user a bearer token names, and the token's session, or the error GoTrue gives.
async fn bearer_user(st: &AppState, headers: &HeaderMap) -> Result<(deadpool_postgres::Object, String, String), AuthError> {
    let token = gateway::bearer(headers).ok_or_else(|| {
        AuthError::new(StatusCode::UNAUTHORIZED, "no_authorization", "This endpoint requires a Bearer token")
    })?;
    let claims = st.keys.verify(&token).map_err(|e| {
        AuthError::new(StatusCode::FORBIDDEN, "bad_jwt", format!("invalid JWT: unable to parse or verify signature, {e}"))
    })?;
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_string();
    let session = claims.get("session_id").and_then(Value::as_str).unwrap_or_default().to_string();
    if sub.is_empty() || uuid::Uuid::parse_str(&sub).is_err() {
        return Err(AuthError::new(StatusCode::FORBIDDEN, "bad_jwt", "invalid claim: missing sub claim"));
    }
    let c = db(st).await?;
    if uuid::Uuid::parse_str(&session).is_err()
        || c.query_opt("SELECT 1 FROM auth.sessions WHERE id = $1::text::uuid", &[&session])
            .await
            .map_err(dberr)?
            .is_none()
    {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "session_not_found",
            "Session from session_id claim in JWT does not exist",
        ));
    }
    Ok((c, sub, session))
}

async fn logout(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let r = async {
        gateway::check_api_key(&headers, q.as_deref(), &st.keys).map_err(|_| {
            AuthError::new(StatusCode::UNAUTHORIZED, "no_authorization", "Invalid API key")
        })?;
        let scope = q
            .as_deref()
            .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned()))
            .unwrap_or_else(|| "global".into());
        let (c, sub, session) = bearer_user(&st, &headers).await?;
        let sql = match scope.as_str() {
            "local" => "DELETE FROM auth.sessions WHERE id = $2::text::uuid AND user_id = $1::text::uuid",
            "others" => "DELETE FROM auth.sessions WHERE user_id = $1::text::uuid AND id <> $2::text::uuid",
            "global" => "DELETE FROM auth.sessions WHERE user_id = $1::text::uuid AND $2::text IS NOT NULL",
            _ => {
                return Err(AuthError::new(
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    "Unsupported logout scope",
                ))
            }
        };
        c.execute(sql, &[&sub, &session]).await.map_err(dberr)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    finish(&headers, r)
}

async fn get_user(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let r = async {
        gateway::check_api_key(&headers, q.as_deref(), &st.keys).map_err(|_| {
            AuthError::new(StatusCode::UNAUTHORIZED, "no_authorization", "Invalid API key")
        })?;
        let (c, sub, _) = bearer_user(&st, &headers).await?;
        let row = c
            .query_opt(&format!("SELECT {USER_COLUMNS} FROM auth.users WHERE id = $1::text::uuid"), &[&sub])
            .await
            .map_err(dberr)?
            .ok_or_else(|| AuthError::new(StatusCode::FORBIDDEN, "user_not_found", "User from sub claim in JWT does not exist"))?;
        Ok(axum::Json(user_json(&row)).into_response())
    }
    .await;
    finish(&headers, r)
}

async fn put_user(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let r = async {
        gateway::check_api_key(&headers, q.as_deref(), &st.keys).map_err(|_| {
            AuthError::new(StatusCode::UNAUTHORIZED, "no_authorization", "Invalid API key")
        })?;
        let (c, sub, _) = bearer_user(&st, &headers).await?;
        let m = parse_body(&body)?;
        if let Some(data) = m.get("data").filter(|d| d.is_object()) {
            c.execute(
                "UPDATE auth.users SET raw_user_meta_data = raw_user_meta_data || $2, updated_at = now() WHERE id = $1::text::uuid",
                &[&sub, data],
            )
            .await
            .map_err(dberr)?;
        }
        if let Some(pw) = str_field(&m, "password") {
            if pw.chars().count() < 6 {
                return Err(AuthError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "weak_password",
                    "Password should be at least 6 characters.",
                ));
            }
            let pw = pw.to_string();
            let hash = tokio::task::spawn_blocking(move || bcrypt::hash(pw, BCRYPT_COST))
                .await
                .map_err(|e| AuthError::internal(e.to_string()))?
                .map_err(|e| AuthError::internal(e.to_string()))?;
            c.execute(
                "UPDATE auth.users SET encrypted_password = $2, updated_at = now() WHERE id = $1::text::uuid",
                &[&sub, &hash],
            )
            .await
            .map_err(dberr)?;
        }
        if let Some(email) = str_field(&m, "email") {
            if !valid_email(email) {
                return Err(AuthError::new(
                    StatusCode::BAD_REQUEST,
                    "validation_failed",
                    "Unable to validate email address: invalid format",
                ));
            }
            c.execute(
                "UPDATE auth.users SET email = $2, updated_at = now() WHERE id = $1::text::uuid",
                &[&sub, &email.to_lowercase()],
            )
            .await
            .map_err(|_| AuthError::new(StatusCode::UNPROCESSABLE_ENTITY, "email_exists", "A user with this email address has already been registered"))?;
        }
        let row = c
            .query_one(&format!("SELECT {USER_COLUMNS} FROM auth.users WHERE id = $1::text::uuid"), &[&sub])
            .await
            .map_err(dberr)?;
        Ok(axum::Json(user_json(&row)).into_response())
    }
    .await;
    finish(&headers, r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(super::rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(super::rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000005Z");
    }
}
