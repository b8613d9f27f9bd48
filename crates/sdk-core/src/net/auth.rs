//! The built-in Auth client (DESIGN §2.7): sign up, sign in with a password, refresh
//! with rotation, sign out. The session is persisted in the store (meta `session`), so
//! a restarted app is still signed in. Tokens are never logged: `Session`'s `Debug`
//! hides them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::net::client::{Client, RequestError};
use crate::platform::maybe_send::{MaybeSend, MaybeSync};
use crate::net::transport::Http;

/// Where the session is kept in the store.
pub const SESSION_KEY: &str = "session";

/// A signed-in user's tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub user_id: String,
    pub email: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("expires_at", &self.expires_at)
            .field("access_token", &"<hidden>")
            .field("refresh_token", &"<hidden>")
            .finish()
    }
}

impl Session {
    /// Read GoTrue's session answer.
    pub fn from_answer(v: &Value, now_s: i64) -> Result<Session, RequestError> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(access_token), Some(refresh_token)) = (s("access_token"), s("refresh_token")) else {
            return Err(RequestError::BadAnswer("the auth answer has no session (is email confirmation on?)".into()));
        };
        let user = v.get("user").cloned().unwrap_or(Value::Null);
        let user_id = user
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| RequestError::BadAnswer("the auth answer has no user id".into()))?
            .to_string();
        let expires_at = v
            .get("expires_at")
            .and_then(Value::as_i64)
            .or_else(|| v.get("expires_in").and_then(Value::as_i64).map(|e| now_s + e))
            .unwrap_or(now_s + 3600);
        Ok(Session {
            access_token,
            refresh_token,
            expires_at,
            user_id,
            email: user.get("email").and_then(Value::as_str).map(str::to_string),
        })
    }
}

/// A token handed over by the app's own auth (for example supabase-js's session).
#[derive(Clone, PartialEq, Eq)]
pub struct ProvidedToken {
    pub access_token: String,
    pub user_id: String,
}

impl std::fmt::Debug for ProvidedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvidedToken").field("user_id", &self.user_id).field("access_token", &"<hidden>").finish()
    }
}

crate::maybe_async_trait! {
    /// Tokens from an auth the app already runs. With a provider the engine never signs
    /// in, refreshes or stores tokens itself: it asks for the current token before each
    /// request and for a fresh one when the server refuses it (401).
    pub trait TokenProvider: MaybeSend + MaybeSync {
        /// The current token, or `None` when the user is signed out.
        async fn current(&self) -> Option<ProvidedToken>;
        /// The server refused the current token: refresh it (or `None` if that fails).
        async fn refresh(&self) -> Option<ProvidedToken>;
    }
}

/// `POST /auth/v1/signup`.
pub async fn sign_up<H: Http>(c: &Client<H>, email: &str, password: &str, now_s: i64) -> Result<Session, RequestError> {
    let v = c.auth("signup", &json!({"email": email, "password": password}), None).await?;
    Session::from_answer(&v, now_s)
}

/// `POST /auth/v1/token?grant_type=password`.
pub async fn sign_in<H: Http>(c: &Client<H>, email: &str, password: &str, now_s: i64) -> Result<Session, RequestError> {
    let v = c
        .auth("token?grant_type=password", &json!({"email": email, "password": password}), None)
        .await?;
    Session::from_answer(&v, now_s)
}

/// `POST /auth/v1/token?grant_type=refresh_token`: a new access token and a rotated
/// refresh token.
pub async fn refresh<H: Http>(c: &Client<H>, refresh_token: &str, now_s: i64) -> Result<Session, RequestError> {
    let v = c
        .auth("token?grant_type=refresh_token", &json!({"refresh_token": refresh_token}), None)
        .await?;
    Session::from_answer(&v, now_s)
}

/// `POST /auth/v1/logout?scope=local`: ends this device's session only.
pub async fn sign_out<H: Http>(c: &Client<H>, access_token: &str) -> Result<(), RequestError> {
    c.auth("logout?scope=local", &json!({}), Some(access_token)).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sessions_and_hides_tokens() {
        let v = json!({"access_token":"AAA","refresh_token":"RRR","expires_in":3600,"user":{"id":"u1","email":"a@b.c"}});
        let s = Session::from_answer(&v, 1000).unwrap();
        assert_eq!((s.expires_at, s.user_id.as_str()), (4600, "u1"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("AAA") && !dbg.contains("RRR"), "{dbg}");
        assert!(Session::from_answer(&json!({"user":{"id":"u1"}}), 0).is_err());
    }
}
