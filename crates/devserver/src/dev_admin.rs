//! Test hooks that hosted Supabase has no API for but that tests of token handling
//! need at a moment they choose: `POST /_dev/expire-tokens` makes every access token
//! issued so far expired (refresh tokens stay valid), as if they had all run out.
//! Only the service-role key may call it; nothing of an app's data is reachable here.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

use std::sync::Arc;

use crate::state::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/_dev/expire-tokens", post(expire_tokens))
}

async fn expire_tokens(State(state): State<Arc<AppState>>, headers: HeaderMap) -> StatusCode {
    let key = headers.get("apikey").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !state.keys.is_service_key(key) {
        return StatusCode::FORBIDDEN;
    }
    state.keys.expire_issued_tokens();
    StatusCode::NO_CONTENT
}
