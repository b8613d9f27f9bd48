//! `/realtime/v1`: Supabase Realtime's WebSocket endpoint (Phoenix channels with
//! broadcast, presence and postgres_changes) and its REST broadcast API.

mod cdc;
pub mod filter;
pub mod hub;
pub mod protocol;
mod socket;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::state::AppState;
pub use cdc::{open_slot, run as run_change_poller};
use protocol::Vsn;

/// Realtime's inbound frame limit.
const MAX_FRAME: usize = 5_000_000;

/// The routes under `/realtime/v1`.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/realtime/v1/websocket", get(websocket))
        .route("/realtime/v1/api/broadcast", post(rest_broadcast))
}

fn refuse(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({ "error": msg }))).into_response()
}

async fn websocket(
    State(st): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let token = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| params.get("apikey").cloned());
    let Some(token) = token else {
        return refuse(StatusCode::UNAUTHORIZED, "No api key or token provided");
    };
    if let Err(e) = st.keys.verify(&token) {
        return refuse(StatusCode::UNAUTHORIZED, &e.to_string());
    }
    let Some(vsn) = Vsn::parse(params.get("vsn").map(String::as_str)) else {
        return refuse(StatusCode::BAD_REQUEST, "unsupported serializer version");
    };
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| socket::serve(socket, st, vsn, token))
}

/// `POST /realtime/v1/api/broadcast` with `{"messages":[{topic, event, payload}]}` → 202.
async fn rest_broadcast(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let token = crate::gateway::bearer(&headers)
        .or_else(|| headers.get("apikey").and_then(|v| v.to_str().ok()).map(str::to_string));
    if token.as_deref().map(|t| st.keys.verify(t).is_ok()) != Some(true) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Unauthorized"}))).into_response();
    }
    let invalid = |m: &str| (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"message": m}))).into_response();
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return invalid("body is not JSON");
    };
    let Some(msgs) = v.get("messages").and_then(Value::as_array) else {
        return invalid("`messages` must be an array");
    };
    let mut checked = vec![];
    for m in msgs {
        let (Some(topic), Some(event)) = (m.get("topic").and_then(Value::as_str), m.get("event").and_then(Value::as_str)) else {
            return invalid("every message needs a `topic` and an `event`");
        };
        let payload = m.get("payload").cloned().unwrap_or_else(|| json!({}));
        if payload.to_string().len() > 3000 * 1024 {
            return invalid("payload_size_exceeded");
        }
        if m.get("private").and_then(Value::as_bool) == Some(true) {
            continue; // private channels are not supported here; denials are silent
        }
        checked.push((format!("realtime:{topic}"), json!({"type":"broadcast","event":event,"payload":payload})));
    }
    for (topic, p) in checked {
        st.realtime.broadcast_json(&topic, None, p);
    }
    StatusCode::ACCEPTED.into_response()
}
