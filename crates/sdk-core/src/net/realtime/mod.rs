//! A Supabase Realtime client (Phoenix channels), independent of the socket library:
//! the platform hands in a [`WsConnector`](crate::net::transport::WsConnector) and a
//! [`Timer`](crate::platform::timer::Timer), and spawns the [`RealtimeDriver`]'s `run` future.
//!
//! Why a driver task and handles: one task owns the socket, the refs, the heartbeat and
//! every channel's state, so no lock is held across an await and nothing races a
//! reconnect. Apps and the live sync talk to it through cheap cloneable handles
//! ([`RealtimeClient`], [`Channel`]) over channels, and read events as streams.
//!
//! Behaviour, after realtime-js (`reference/supabase-protocol.md` §1.10), with two
//! deliberate differences for an SDK that must never stall:
//! - heartbeat every 25 s; an unanswered heartbeat drops the socket and reconnects;
//! - reconnects and rejoins back off with jitter ([`crate::net::backoff`]) instead of a fixed
//!   list, so a fleet of devices does not return in lock-step;
//! - a fresh access token is asked for before every (re)connect and on every heartbeat,
//!   and pushed to joined channels (`access_token`) whenever it changed;
//! - pushes made while a channel is not joined wait in a buffer (100 per channel, the
//!   oldest dropped with an error to its caller) and go out after the join;
//! - presence tracked on a channel is tracked again after every rejoin;
//! - a channel the *server* closes (an expired token, a crash) is rejoined with backoff
//!   and a fresh token, where realtime-js gives up; only `leave` ends a channel;
//! - malformed or unexpected frames are logged (without payloads: they may hold user
//!   data) and skipped.

mod driver;
pub mod frame;
pub mod presence;

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::net::backoff::Backoff;
use crate::platform::maybe_send::{MaybeSend, MaybeSync};

pub use driver::RealtimeDriver;
pub use presence::{PresenceChange, PresenceMap};

/// What a Realtime call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealtimeError {
    /// The server answered the push with an error.
    #[error("refused by the server: {0}")]
    Refused(String),
    /// No answer within the push timeout.
    #[error("no answer from the server in time")]
    Timeout,
    /// The push waited for a join and was pushed out by newer ones (100 per channel).
    #[error("dropped from the send buffer while the channel was not joined")]
    BufferFull,
    /// The channel was left, or the client shut down.
    #[error("the channel is closed")]
    Closed,
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    pub heartbeat_ms: u64,
    /// How long a join or a push waits for its reply.
    pub push_timeout_ms: u64,
    pub reconnect: Backoff,
    pub rejoin: Backoff,
    /// Milliseconds since the Unix epoch (the platform's clock).
    pub now_ms: fn() -> i64,
}

impl RealtimeConfig {
    /// realtime-js's timings with the given clock.
    pub fn with_clock(now_ms: fn() -> i64) -> RealtimeConfig {
        RealtimeConfig {
            heartbeat_ms: 25_000,
            push_timeout_ms: 10_000,
            reconnect: Backoff { initial_ms: 1_000, max_ms: 10_000 },
            rejoin: Backoff { initial_ms: 1_000, max_ms: 10_000 },
            now_ms,
        }
    }
}

crate::maybe_async_trait! {
    /// Where the client gets the user's access token (asked before every connect and
    /// join, and on every heartbeat). `None` means the anon key.
    pub trait AccessTokenSource: MaybeSend + MaybeSync {
        async fn access_token(&self) -> Option<String>;
    }
}

/// The socket's state, as reported to the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    Connecting,
    Open,
    /// Lost; a reconnect follows after `retry_in_ms`.
    Disconnected { reason: String, retry_in_ms: u64 },
    /// Shut down by the app.
    Closed,
}

/// A channel's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChannelState {
    Joining,
    Joined,
    /// Not joined now; a rejoin follows.
    Errored { reason: String },
    Closed,
}

/// One `postgres_changes` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgChangesSpec {
    /// `INSERT`, `UPDATE`, `DELETE` or `*`.
    pub event: String,
    pub schema: String,
    pub table: String,
    /// `column=op.value`, e.g. `user_id=eq.<uuid>`.
    pub filter: Option<String>,
}

/// What a channel subscribes to.
#[derive(Debug, Clone, Default)]
pub struct ChannelConfig {
    pub postgres_changes: Vec<PgChangesSpec>,
    /// Receive this channel's own broadcasts.
    pub broadcast_self: bool,
    /// Have the server acknowledge each broadcast.
    pub broadcast_ack: bool,
    /// Enable presence, under this key (empty: a key the server picks).
    pub presence_key: Option<String>,
}

impl ChannelConfig {
    fn join_config(&self) -> Value {
        let pg: Vec<Value> = self
            .postgres_changes
            .iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("event".into(), json!(s.event));
                m.insert("schema".into(), json!(s.schema));
                m.insert("table".into(), json!(s.table));
                if let Some(f) = &s.filter {
                    m.insert("filter".into(), json!(f));
                }
                Value::Object(m)
            })
            .collect();
        json!({
            "broadcast": {"ack": self.broadcast_ack, "self": self.broadcast_self},
            "presence": {"key": self.presence_key.clone().unwrap_or_default(), "enabled": self.presence_key.is_some()},
            "postgres_changes": pg,
            "private": false,
        })
    }
}

/// A row change delivered by `postgres_changes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgChange {
    pub schema: String,
    pub table: String,
    /// `INSERT`, `UPDATE` or `DELETE`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub record: Map<String, Value>,
    #[serde(default)]
    pub old_record: Map<String, Value>,
    #[serde(default)]
    pub commit_timestamp: Option<String>,
    #[serde(default)]
    pub errors: Option<Value>,
}

/// Something that happened on a channel.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelEvent {
    State(ChannelState),
    /// "Subscribed to PostgreSQL": from now on, changes flow (sent after every join).
    PostgresReady,
    /// The server could not set up a `postgres_changes` listener (the channel stays).
    PostgresError(String),
    Change(PgChange),
    Broadcast { event: String, payload: Value },
    /// The whole presence picture after a state or diff.
    PresenceSync(PresenceMap),
    Presence(PresenceChange),
    /// A `system` message that is none of the above.
    System(Value),
}

impl ChannelEvent {
    /// The event as every SDK hands it to an app's channel listener (the npm package,
    /// the bindings, a Tauri app): `{type: "broadcast", event, payload}`,
    /// `{type: "presence", state}`, `{type: "join" | "leave", key, metas}`,
    /// `{type: "state", state}`. `None` for what an app channel does not surface
    /// (database changes and system messages are the sync engine's).
    pub fn app_json(&self) -> Option<Value> {
        Some(match self {
            ChannelEvent::State(s) => json!({"type": "state", "state": s}),
            ChannelEvent::Broadcast { event, payload } => json!({"type": "broadcast", "event": event, "payload": payload}),
            ChannelEvent::PresenceSync(state) => json!({"type": "presence", "state": state}),
            ChannelEvent::Presence(PresenceChange::Join { key, metas }) => json!({"type": "join", "key": key, "metas": metas}),
            ChannelEvent::Presence(PresenceChange::Leave { key, metas }) => json!({"type": "leave", "key": key, "metas": metas}),
            _ => return None,
        })
    }
}

pub(crate) enum Command {
    Join {
        topic: String,
        config: Value,
        events: mpsc::UnboundedSender<ChannelEvent>,
    },
    Leave {
        topic: String,
    },
    Push {
        topic: String,
        event: String,
        payload: Value,
        reply: oneshot::Sender<Result<Value, RealtimeError>>,
        /// Wait for the server's reply; otherwise `reply` resolves once sent.
        wants_reply: bool,
    },
    SetToken(Option<String>),
    WatchConnection(mpsc::UnboundedSender<ConnectionState>),
    Disconnect,
}

/// A handle on the Realtime connection (cheap to clone).
#[derive(Clone)]
pub struct RealtimeClient {
    cmds: mpsc::UnboundedSender<Command>,
}

impl RealtimeClient {
    /// A client for the project at `project_url` (`https://xyz.supabase.co`), and the
    /// driver future the platform must spawn.
    pub fn new(project_url: &str, anon_key: &str, cfg: RealtimeConfig) -> (RealtimeClient, RealtimeDriver) {
        let (tx, rx) = mpsc::unbounded();
        let ws = project_url.trim_end_matches('/').replacen("http", "ws", 1);
        let url = format!("{ws}/realtime/v1/websocket?apikey={}&vsn=1.0.0", crate::net::client::enc(anon_key));
        (RealtimeClient { cmds: tx }, RealtimeDriver::new(url, anon_key.to_string(), cfg, rx))
    }

    /// Join `realtime:<name>` with `config`; events arrive on the returned channel.
    pub fn channel(&self, name: &str, config: &ChannelConfig) -> Channel {
        let topic = format!("realtime:{name}");
        let (tx, rx) = mpsc::unbounded();
        let _ = self.cmds.unbounded_send(Command::Join {
            topic: topic.clone(),
            config: config.join_config(),
            events: tx,
        });
        Channel {
            handle: ChannelHandle { topic, ack: config.broadcast_ack, cmds: self.cmds.clone() },
            events: rx,
        }
    }

    /// Use this access token from now on (pushed to every joined channel).
    pub fn set_access_token(&self, token: Option<String>) {
        let _ = self.cmds.unbounded_send(Command::SetToken(token));
    }

    /// Connection state changes, starting with the current one.
    pub fn connection_states(&self) -> mpsc::UnboundedReceiver<ConnectionState> {
        let (tx, rx) = mpsc::unbounded();
        let _ = self.cmds.unbounded_send(Command::WatchConnection(tx));
        rx
    }

    /// Leave every channel and close the socket; the driver's future then ends.
    pub fn disconnect(&self) {
        let _ = self.cmds.unbounded_send(Command::Disconnect);
    }
}

/// One joined channel: its events, broadcast and presence. Sending goes through the
/// [`ChannelHandle`] it derefs to; [`Channel::split`] separates the two when one task
/// reads events while others send.
pub struct Channel {
    handle: ChannelHandle,
    events: mpsc::UnboundedReceiver<ChannelEvent>,
}

/// The sending side of a channel (cheap to clone).
#[derive(Clone)]
pub struct ChannelHandle {
    topic: String,
    ack: bool,
    cmds: mpsc::UnboundedSender<Command>,
}

impl std::ops::Deref for Channel {
    type Target = ChannelHandle;
    fn deref(&self) -> &ChannelHandle {
        &self.handle
    }
}

impl Channel {
    /// The next event; `None` once the channel is left or the client is gone.
    pub async fn next(&mut self) -> Option<ChannelEvent> {
        self.events.next().await
    }

    /// The sending handle and the event stream, apart.
    pub fn split(self) -> (ChannelHandle, mpsc::UnboundedReceiver<ChannelEvent>) {
        (self.handle, self.events)
    }

    /// Leave the channel.
    pub fn leave(self) {
        self.handle.leave();
    }
}

impl ChannelHandle {
    /// `realtime:<name>`.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Leave the channel (its event stream ends).
    pub fn leave(&self) {
        let _ = self.cmds.unbounded_send(Command::Leave { topic: self.topic.clone() });
    }

    async fn push(&self, event: &str, payload: Value, wants_reply: bool) -> Result<Value, RealtimeError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .unbounded_send(Command::Push {
                topic: self.topic.clone(),
                event: event.into(),
                payload,
                reply: tx,
                wants_reply,
            })
            .map_err(|_| RealtimeError::Closed)?;
        rx.await.map_err(|_| RealtimeError::Closed)?
    }

    /// Send a broadcast; with `broadcast_ack`, returns once the server confirmed it.
    pub async fn broadcast(&self, event: &str, payload: Value) -> Result<(), RealtimeError> {
        let body = json!({"type": "broadcast", "event": event, "payload": payload});
        self.push("broadcast", body, self.ack).await.map(|_| ())
    }

    /// Announce this client's presence on the channel (replaces an earlier track).
    pub async fn track(&self, payload: Value) -> Result<(), RealtimeError> {
        let body = json!({"type": "presence", "event": "track", "payload": payload});
        self.push("presence", body, true).await.map(|_| ())
    }

    /// Withdraw this client's presence.
    pub async fn untrack(&self) -> Result<(), RealtimeError> {
        self.push("presence", json!({"type": "presence", "event": "untrack"}), true).await.map(|_| ())
    }

}
