//! `/realtime/v1`: Supabase Realtime's WebSocket endpoint (Phoenix channels with
//! broadcast, presence and postgres_changes) and its REST broadcast API.

pub mod authz;
mod bindings;
mod cdc;
pub mod filter;
pub mod hub;
pub mod protocol;
mod socket;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State, WebSocketUpgrade};
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
/// Largest broadcast payload accepted (Realtime's default tenant limit, 3000 KB).
const MAX_BROADCAST_BYTES: usize = 3000 * 1024;

/// The routes under `/realtime/v1`.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/realtime/v1/websocket", get(websocket))
        .route("/realtime/v1/api/broadcast", post(rest_broadcast))
        .route("/realtime/v1/api/broadcast/{topic}/events/{event}", post(rest_broadcast_one))
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

/// The 401 to answer unless the caller's token (bearer, else the API key) is valid.
fn broadcast_refusal(st: &AppState, headers: &HeaderMap) -> Option<Response> {
    let token = crate::gateway::bearer(headers)
        .or_else(|| headers.get("apikey").and_then(|v| v.to_str().ok()).map(str::to_string));
    (token.as_deref().map(|t| st.keys.verify(t).is_ok()) != Some(true))
        .then(|| (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Unauthorized"}))).into_response())
}

/// Whether the caller (bearer token, else the API key) may send on private `subtopic`.
async fn may_send(st: &AppState, headers: &HeaderMap, subtopic: &str) -> bool {
    let token = crate::gateway::bearer(headers).or_else(|| headers.get("apikey").and_then(|v| v.to_str().ok()).map(str::to_string));
    let Some(Ok(claims)) = token.map(|t| st.keys.verify(&t)) else { return false };
    let role = claims.get("role").and_then(Value::as_str).unwrap_or("anon").to_string();
    authz::check(st, subtopic, "broadcast", &role, &claims).await.is_ok_and(|a| a.write)
}

fn invalid(m: &str) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"message": m}))).into_response()
}

/// `POST /realtime/v1/api/broadcast/{topic}/events/{event}` (supabase-js `httpSend`, Realtime
/// ≥ 2.97): the body is the payload, JSON or raw bytes → 202.
async fn rest_broadcast_one(
    State(st): State<Arc<AppState>>,
    Path((topic, event)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = broadcast_refusal(&st, &headers) {
        return r;
    }
    if body.len() > MAX_BROADCAST_BYTES {
        return invalid("payload_size_exceeded");
    }
    let private = params.get("private").map(String::as_str) == Some("true");
    if private && !may_send(&st, &headers, &topic).await {
        return StatusCode::ACCEPTED.into_response(); // as Realtime: a refused send is dropped silently
    }
    let binary = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"));
    let wire = format!("realtime:{topic}");
    let topic = hub::hub_key(&wire, private);
    if binary {
        let b = protocol::BinaryBroadcast {
            join_ref: None,
            r#ref: None,
            topic: wire,
            event,
            meta: None,
            json: false,
            payload: body.to_vec(),
        };
        st.realtime.broadcast_binary(&topic, None, b);
    } else {
        let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
            return invalid("the payload is not JSON (send raw bytes as application/octet-stream)");
        };
        st.realtime.broadcast_json(&topic, None, json!({"type":"broadcast","event":event,"payload":payload}));
    }
    StatusCode::ACCEPTED.into_response()
}

/// `POST /realtime/v1/api/broadcast` with `{"messages":[{topic, event, payload}]}` → 202.
async fn rest_broadcast(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = broadcast_refusal(&st, &headers) {
        return r;
    }
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
        if payload.to_string().len() > MAX_BROADCAST_BYTES {
            return invalid("payload_size_exceeded");
        }
        let private = m.get("private").and_then(Value::as_bool) == Some(true);
        if private && !may_send(&st, &headers, topic).await {
            continue; // as Realtime: a refused send is dropped silently
        }
        checked.push((hub::hub_key(&format!("realtime:{topic}"), private), json!({"type":"broadcast","event":event,"payload":payload})));
    }
    for (topic, p) in checked {
        st.realtime.broadcast_json(&topic, None, p);
    }
    StatusCode::ACCEPTED.into_response()
}
