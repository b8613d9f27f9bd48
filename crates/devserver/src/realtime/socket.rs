//! One Realtime WebSocket connection: the Phoenix channel protocol as Realtime's server
//! speaks it (reference §1): heartbeats, `phx_join` with broadcast / presence /
//! postgres_changes config, `access_token` refresh (never answered), broadcast with
//! `self` and `ack`, presence track/untrack, `phx_leave`, token expiry, and the `system`
//! messages, notably "Subscribed to PostgreSQL" once changes will flow.
//!
//! Malformed frames never end the connection: they get an error message on the
//! `phoenix` topic and the socket keeps serving. Oversized frames (over Realtime's 5 MB)
//! close the socket, as Phoenix does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::bindings::validate_bindings;
use super::hub::{PgSub, SocketTx};
use super::MAX_BROADCAST_BYTES;
use super::protocol::{decode_binary, decode_text, encode, BinaryBroadcast, Frame, Msg, Outbound, Vsn};
use crate::jwt::{now_secs, JwtError};
use crate::state::AppState;

/// Phoenix closes sockets that send nothing (not even heartbeats) for this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

struct Chan {
    channel_id: u64,
    join_ref: Option<String>,
    subtopic: String,
    token: String,
    exp: i64,
    presence_key: String,
    /// Whether this channel has had its `presence_state`: at join when it asked for
    /// presence, else on its first track (supabase-js joins without presence when no
    /// presence listener is attached, then tracks; Realtime enables it then).
    presence_enabled: bool,
    ack: bool,
    /// The hub's key for this channel (private channels are kept apart from public ones
    /// of the same name).
    hub: String,
    /// Whether this caller may send on it (always, unless the channel is private and
    /// the `realtime.messages` policies say no).
    can_write: bool,
}

struct Conn {
    st: Arc<AppState>,
    vsn: Vsn,
    tx: SocketTx,
    connect_token: String,
    chans: HashMap<String, Chan>,
}

/// Serve one upgraded socket until it closes.
pub async fn serve(ws: WebSocket, st: Arc<AppState>, vsn: Vsn, connect_token: String) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Outbound>();
    let writer = tokio::spawn(async move {
        while let Some(o) = rx.recv().await {
            if let Outbound::Close(code) = o {
                let frame = code.map(|(code, reason)| axum::extract::ws::CloseFrame {
                    code,
                    reason: reason.into(),
                });
                let _ = sink.send(Message::Close(frame)).await;
                break;
            }
            let frame = match encode(vsn, &o) {
                Some(Frame::Text(t)) => Message::Text(t.into()),
                Some(Frame::Binary(b)) => Message::Binary(b.into()),
                None => continue,
            };
            if sink.send(frame).await.is_err() {
                break;
            }
        }
    });
    let mut conn = Conn {
        st,
        vsn,
        tx: tx.clone(),
        connect_token,
        chans: HashMap::new(),
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last_seen = Instant::now();
    let mut stopping = conn.st.stopping.clone();
    loop {
        tokio::select! {
            // The only change ever sent is "stopping" (or the server is gone).
            _ = stopping.changed() => {
                let _ = tx.send(Outbound::Close(Some((1001, "server shutting down"))));
                break;
            }
            frame = stream.next() => {
                let frame = match frame {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => {
                        // Phoenix answers a frame over the limit with 1009 (message too big).
                        let text = e.to_string();
                        if text.contains("too long") || text.contains("Space limit") {
                            let _ = tx.send(Outbound::Close(Some((1009, "message too big"))));
                        }
                        break;
                    }
                    None => break,
                };
                last_seen = Instant::now();
                match frame {
                    Message::Text(t) => match decode_text(vsn, t.as_str()) {
                        Ok(m) => conn.on_msg(m).await,
                        Err(e) => conn.malformed(&e),
                    },
                    Message::Binary(b) => match decode_binary(&b) {
                        Ok(bb) => conn.on_binary(bb),
                        Err(e) => conn.malformed(&e),
                    },
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            _ = ticker.tick() => {
                conn.expire_tokens();
                if last_seen.elapsed() > IDLE_TIMEOUT {
                    break;
                }
            }
        }
    }
    conn.leave_all();
    let _ = tx.send(Outbound::Close(None));
    drop(conn);
    drop(tx);
    let _ = writer.await;
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}


fn jwt_reason(e: &JwtError) -> String {
    match e {
        JwtError::Expired { seconds_ago } => format!("InvalidJWTToken: Token has expired {seconds_ago} seconds ago"),
        JwtError::Malformed(_) | JwtError::Invalid(_) => "MalformedJWT: The token provided is not a valid JWT".into(),
        JwtError::BadSignature => "JwtSignatureError: Failed to validate JWT signature".into(),
        JwtError::Claims(m) => format!("InvalidJWTToken: {m}"),
    }
}

impl Conn {
    fn push(&self, join_ref: Option<String>, r: Option<String>, topic: &str, event: &str, payload: Value) {
        let _ = self.tx.send(Outbound::Msg(Msg {
            join_ref,
            r#ref: r,
            topic: topic.to_string(),
            event: event.to_string(),
            payload,
        }));
    }

    fn reply(&self, m: &Msg, status: &str, response: Value) {
        self.push(
            m.join_ref.clone(),
            m.r#ref.clone(),
            &m.topic,
            "phx_reply",
            json!({"status": status, "response": response}),
        );
    }

    fn malformed(&self, why: &str) {
        tracing::debug!("realtime: malformed frame: {why}");
        self.push(None, None, "phoenix", "phx_error", json!({"reason": format!("malformed message: {why}")}));
    }

    fn system(&self, topic: &str, extension: &str, status: &str, message: &str) {
        let Some(c) = self.chans.get(topic) else { return };
        self.push(
            c.join_ref.clone(),
            None,
            topic,
            "system",
            json!({"extension": extension, "status": status, "message": message, "channel": c.subtopic}),
        );
    }

    /// End a channel from the server side with `phx_close`.
    fn close_chan(&mut self, topic: &str) {
        if let Some(c) = self.chans.remove(topic) {
            self.st.realtime.leave(&c.hub, c.channel_id);
            self.push(c.join_ref.clone(), c.join_ref, topic, "phx_close", json!({}));
        }
    }

    fn leave_all(&mut self) {
        for (_, c) in self.chans.drain() {
            self.st.realtime.leave(&c.hub, c.channel_id);
        }
    }

    fn expire_tokens(&mut self) {
        let now = now_secs();
        let expired: Vec<(String, i64)> = self
            .chans
            .iter()
            .filter(|(_, c)| c.exp <= now)
            .map(|(t, c)| (t.clone(), now - c.exp))
            .collect();
        for (topic, ago) in expired {
            self.system(&topic, "system", "error", &format!("Token has expired {ago} seconds ago"));
            self.close_chan(&topic);
        }
    }

    async fn on_msg(&mut self, m: Msg) {
        if m.topic == "phoenix" {
            if m.event == "heartbeat" {
                self.reply(&m, "ok", json!({}));
            }
            return;
        }
        if m.event == "phx_join" {
            return self.join(m).await;
        }
        if !self.chans.contains_key(&m.topic) {
            self.reply(&m, "error", json!({"reason": "unmatched topic"}));
            return;
        }
        match m.event.as_str() {
            "phx_leave" => {
                self.reply(&m, "ok", json!({}));
                self.close_chan(&m.topic);
            }
            "access_token" => self.access_token(&m),
            "broadcast" => self.broadcast(&m),
            "presence" => self.presence(&m),
            _ => {} // unknown events on a joined channel are ignored, as Realtime does
        }
    }

    fn access_token(&mut self, m: &Msg) {
        let Some(token) = m.payload.get("access_token").and_then(Value::as_str) else { return };
        let Some(c) = self.chans.get(&m.topic) else { return };
        if token == c.token || token.starts_with("sb_") {
            return;
        }
        match self.st.keys.verify(token) {
            Ok(claims) => {
                let role = claims.get("role").and_then(Value::as_str).unwrap_or("anon").to_string();
                let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
                let id = c.channel_id;
                if let Some(c) = self.chans.get_mut(&m.topic) {
                    c.token = token.to_string();
                    c.exp = exp;
                }
                self.st.realtime.update_claims(id, &role, claims);
            }
            Err(e) => {
                let reason = match e {
                    JwtError::Expired { seconds_ago } => format!("Token has expired {seconds_ago} seconds ago"),
                    other => jwt_reason(&other),
                };
                self.system(&m.topic, "system", "error", &reason);
                self.close_chan(&m.topic);
            }
        }
    }

    fn broadcast(&self, m: &Msg) {
        let Some(c) = self.chans.get(&m.topic) else { return };
        let size = m.payload.to_string().len();
        if size > MAX_BROADCAST_BYTES {
            if c.ack {
                self.reply(m, "error", json!({"error": "payload_size_exceeded"}));
            }
            return;
        }
        let mut p = m.payload.clone();
        if let Value::Object(o) = &mut p {
            o.entry("type").or_insert_with(|| json!("broadcast"));
        }
        // A private channel's sender without an INSERT policy is dropped silently, as
        // Realtime does (the ack still comes).
        if c.can_write {
            self.st.realtime.broadcast_json(&c.hub, Some(c.channel_id), p);
        }
        if c.ack {
            self.reply(m, "ok", json!({}));
        }
    }

    fn on_binary(&self, b: BinaryBroadcast) {
        let Some(c) = self.chans.get(&b.topic) else {
            self.push(b.join_ref, b.r#ref, &b.topic, "phx_reply", json!({"status":"error","response":{"reason":"unmatched topic"}}));
            return;
        };
        let ack = c.ack;
        let (join_ref, r, topic) = (b.join_ref.clone(), b.r#ref.clone(), b.topic.clone());
        if b.payload.len() > MAX_BROADCAST_BYTES {
            if ack {
                self.push(join_ref, r, &topic, "phx_reply", json!({"status":"error","response":{"error":"payload_size_exceeded"}}));
            }
            return;
        }
        if c.can_write {
            self.st.realtime.broadcast_binary(&c.hub, Some(c.channel_id), b);
        }
        if ack {
            self.push(join_ref, r, &topic, "phx_reply", json!({"status":"ok","response":{}}));
        }
    }

    fn presence(&mut self, m: &Msg) {
        let Some(c) = self.chans.get(&m.topic) else { return };
        let (channel_id, key, join_ref, hub, can_write) = (c.channel_id, c.presence_key.clone(), c.join_ref.clone(), c.hub.clone(), c.can_write);
        let ev = m.payload.get("event").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
        match ev.as_str() {
            "track" => match m.payload.get("payload") {
                Some(Value::Object(_)) if !can_write => {
                    self.reply(m, "error", json!({"reason": "You do not have permissions to track presence on this private channel"}));
                }
                Some(Value::Object(fields)) => {
                    self.st.realtime.track(&hub, channel_id, &key, fields.clone());
                    self.reply(m, "ok", json!({}));
                    let enabled_now = self
                        .chans
                        .get_mut(&m.topic)
                        .is_some_and(|c| !std::mem::replace(&mut c.presence_enabled, true));
                    if enabled_now {
                        // The state after the track that enabled presence (its own
                        // diff, which came first, waits in the client until then).
                        let state = self.st.realtime.presence_state(&hub);
                        self.push(join_ref, None, &m.topic, "presence_state", state);
                    }
                }
                _ => self.reply(m, "error", json!({"reason": "Presence track payload must be a map"})),
            },
            "untrack" => {
                self.st.realtime.untrack(&hub, channel_id);
                self.reply(m, "ok", json!({}));
            }
            _ => self.reply(m, "error", json!({"reason": "Unknown presence event"})),
        }
    }

    /// Where the WAL ends now: changes committed from here on are a new subscription's.
    async fn wal_end(&self) -> Result<u64, String> {
        let c = self.st.client().await?;
        let row = c
            .query_one("SELECT pg_current_wal_lsn()", &[])
            .await
            .map_err(|e| format!("Realtime could not read the WAL position: {}", crate::pgerr::describe(&e)))?;
        Ok(u64::from(row.get::<_, tokio_postgres::types::PgLsn>(0)))
    }

    async fn join(&mut self, m: Msg) {
        let Some(sub) = m.topic.strip_prefix("realtime:") else {
            self.reply(&m, "error", json!({"reason": "unmatched topic"}));
            return;
        };
        if sub.is_empty() {
            self.reply(&m, "error", json!({"reason": "TopicNameRequired: You must provide a topic name"}));
            return;
        }
        let subtopic = sub.to_string();
        if self.chans.contains_key(&m.topic) {
            self.close_chan(&m.topic);
        }
        let config = m.payload.get("config").cloned().unwrap_or_else(|| json!({}));
        let token = ["access_token", "user_token"]
            .iter()
            .find_map(|k| m.payload.get(*k).and_then(Value::as_str).filter(|t| !t.is_empty()))
            .unwrap_or(&self.connect_token)
            .to_string();
        let claims = match self.st.keys.verify(&token) {
            Ok(c) => c,
            Err(e) => {
                self.reply(&m, "error", json!({"reason": jwt_reason(&e)}));
                return;
            }
        };
        let role = claims.get("role").and_then(Value::as_str).unwrap_or("anon").to_string();
        // A private channel: the `realtime.messages` policies decide who joins (reads)
        // and who may send (writes).
        let private = truthy(config.get("private"));
        let can_write = if private {
            match super::authz::check(&self.st, &subtopic, "broadcast", &role, &claims).await {
                Ok(a) if a.read => a.write,
                Ok(_) => {
                    self.reply(
                        &m,
                        "error",
                        json!({"reason": format!("Unauthorized: You do not have permissions to read from this Channel topic: {subtopic}")}),
                    );
                    return;
                }
                Err(e) => {
                    self.reply(&m, "error", json!({"reason": e}));
                    return;
                }
            }
        } else {
            true
        };
        let hub = super::hub::hub_key(&m.topic, private);
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let bc = config.get("broadcast");
        let receive_own = truthy(bc.and_then(|b| b.get("self")));
        let ack = truthy(bc.and_then(|b| b.get("ack")));
        let pres = config.get("presence");
        let presence_enabled = truthy(pres.and_then(|p| p.get("enabled")));
        let presence_key = pres
            .and_then(|p| p.get("key"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let entries: Vec<Value> = match config.get("postgres_changes") {
            Some(Value::Array(a)) => a.clone(),
            _ => vec![],
        };
        let (bindings, echo, pg_error) = validate_bindings(&self.st, &role, &entries).await;

        let channel_id = self.st.realtime.next_channel_id();
        self.st.realtime.join(&hub, channel_id, self.tx.clone(), self.vsn, receive_own);
        self.chans.insert(
            m.topic.clone(),
            Chan {
                channel_id,
                join_ref: m.join_ref.clone(),
                subtopic: subtopic.clone(),
                token,
                exp,
                presence_key,
                presence_enabled,
                ack,
                hub: hub.clone(),
                can_write,
            },
        );
        // Register the subscription before replying, so that changes flow by the time
        // the client sees SUBSCRIBED (Realtime itself only promises that once it sends
        // "Subscribed to PostgreSQL", which follows).
        let pg_error = if entries.is_empty() {
            None
        } else {
            let pg_error = match pg_error {
                None if !self.st.realtime.wait_cdc_ready(Duration::from_secs(10)).await => {
                    Some("Realtime could not start capturing changes from PostgreSQL; retrying".to_string())
                }
                other => other,
            };
            let since = match pg_error {
                None => self.wal_end().await,
                Some(e) => Err(e),
            };
            let pg_error = since.as_ref().err().cloned();
            if let Ok(since_lsn) = since {
                self.st.realtime.set_pg(
                    channel_id,
                    PgSub {
                        tx: self.tx.clone(),
                        topic: m.topic.clone(),
                        role,
                        claims,
                        bindings,
                        since_lsn,
                    },
                );
            }
            pg_error
        };
        self.reply(&m, "ok", json!({"postgres_changes": echo}));
        if presence_enabled {
            let state = self.st.realtime.presence_state(&hub);
            self.push(m.join_ref.clone(), None, &m.topic, "presence_state", state);
        }
        if !entries.is_empty() {
            match pg_error {
                None => self.system(&m.topic, "postgres_changes", "ok", "Subscribed to PostgreSQL"),
                Some(e) => self.system(&m.topic, "postgres_changes", "error", &e),
            }
        }
    }

}
