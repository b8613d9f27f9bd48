//! The task that owns the socket: connects, joins, heartbeats, routes frames to
//! channels, answers pushes, and reconnects with backoff. See the module above for the
//! behaviour; this file is the loop.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use futures_channel::{mpsc, oneshot};
use futures_util::{FutureExt, StreamExt};
use serde_json::{json, Value};

use super::frame::Frame;
use super::presence::PresenceSync;
use super::{AccessTokenSource, ChannelEvent, ChannelState, Command, ConnectionState, PgChange, RealtimeConfig, RealtimeError};
use crate::platform::timer::Timer;
use crate::net::transport::{WsConnector, WsMessage, WsSink, WsStream};

/// Pushes kept per channel while it is not joined.
const BUFFER: usize = 100;

type Reply = oneshot::Sender<Result<Value, RealtimeError>>;

struct Pending {
    event: String,
    payload: Value,
    reply: Reply,
    wants_reply: bool,
}

struct Slot {
    config: Value,
    state: ChannelState,
    join_ref: Option<String>,
    events: mpsc::UnboundedSender<ChannelEvent>,
    buffer: VecDeque<Pending>,
    rejoin_at: Option<i64>,
    rejoin_failures: u32,
    presence: PresenceSync,
    /// The last `track` payload: tracked again after every rejoin, so a device that
    /// reconnects shows up again without the app doing anything.
    tracked: Option<Value>,
}

impl Slot {
    fn emit(&self, e: ChannelEvent) {
        let _ = self.events.unbounded_send(e);
    }

    fn set_state(&mut self, s: ChannelState) {
        if self.state != s {
            self.state = s.clone();
            self.emit(ChannelEvent::State(s));
        }
    }
}

enum Waiting {
    Join(String),
    Push(Reply),
    Heartbeat,
    Leave,
}

struct InFlight {
    what: Waiting,
    deadline: i64,
}

/// Why a connected session ended.
enum End {
    Lost(String),
    Shutdown,
}

/// Runs the connection; spawn [`RealtimeDriver::run`] on the platform's executor.
pub struct RealtimeDriver {
    url: String,
    anon_key: String,
    cfg: RealtimeConfig,
    cmds: mpsc::UnboundedReceiver<Command>,
    channels: BTreeMap<String, Slot>,
    inflight: HashMap<String, InFlight>,
    next_ref: u64,
    token: Option<String>,
    watchers: Vec<mpsc::UnboundedSender<ConnectionState>>,
    conn_state: ConnectionState,
    shutting_down: bool,
}

impl RealtimeDriver {
    pub(crate) fn new(url: String, anon_key: String, cfg: RealtimeConfig, cmds: mpsc::UnboundedReceiver<Command>) -> Self {
        RealtimeDriver {
            url,
            anon_key,
            cfg,
            cmds,
            channels: BTreeMap::new(),
            inflight: HashMap::new(),
            next_ref: 0,
            token: None,
            watchers: vec![],
            conn_state: ConnectionState::Connecting,
            shutting_down: false,
        }
    }

    fn now(&self) -> i64 {
        (self.cfg.now_ms)()
    }

    fn make_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    fn set_conn(&mut self, s: ConnectionState) {
        self.conn_state = s.clone();
        self.watchers.retain(|w| w.unbounded_send(s.clone()).is_ok());
    }

    /// Run until the app disconnects or drops every handle.
    pub async fn run(mut self, connector: impl WsConnector, timer: impl Timer, tokens: Option<Arc<dyn AccessTokenSource>>) {
        let mut failures = 0u32;
        while !self.shutting_down {
            self.set_conn(ConnectionState::Connecting);
            if let Some(src) = &tokens {
                self.token = src.access_token().await;
            }
            let reason = match connector.connect(&self.url).await {
                Ok((sink, stream)) => {
                    failures = 0;
                    self.set_conn(ConnectionState::Open);
                    match self.session(sink, stream, &timer, tokens.as_deref()).await {
                        End::Shutdown => break,
                        End::Lost(why) => why,
                    }
                }
                Err(e) => e.to_string(),
            };
            self.lose_connection(&reason);
            failures += 1;
            let wait = self.cfg.reconnect.delay_ms(failures);
            tracing::info!(target: "supasync::realtime", "connection lost ({reason}); reconnecting in {wait} ms");
            self.set_conn(ConnectionState::Disconnected { reason, retry_in_ms: wait });
            self.idle(wait, &timer).await;
        }
        for (_, slot) in std::mem::take(&mut self.channels) {
            slot.emit(ChannelEvent::State(ChannelState::Closed));
            for p in slot.buffer {
                let _ = p.reply.send(Err(RealtimeError::Closed));
            }
        }
        self.set_conn(ConnectionState::Closed);
    }

    /// Every channel is no longer joined; unanswered pushes fail.
    fn lose_connection(&mut self, reason: &str) {
        for (_, f) in self.inflight.drain() {
            if let Waiting::Push(r) = f.what {
                let _ = r.send(Err(RealtimeError::Timeout));
            }
        }
        for slot in self.channels.values_mut() {
            slot.join_ref = None;
            slot.rejoin_at = None;
            slot.set_state(ChannelState::Errored { reason: format!("connection lost: {reason}") });
        }
    }

    /// Wait `ms` while disconnected, still taking commands.
    async fn idle(&mut self, ms: u64, timer: &impl Timer) {
        let until = self.now() + ms as i64;
        while !self.shutting_down {
            let left = until - self.now();
            if left <= 0 {
                return;
            }
            let mut sleep = timer.sleep_ms(left as u64).fuse();
            let mut next = self.cmds.next().fuse();
            futures_util::select_biased! {
                cmd = next => match cmd {
                    Some(c) => self.command_offline(c),
                    None => self.shutting_down = true,
                },
                _ = sleep => return,
            }
        }
    }

    fn command_offline(&mut self, cmd: Command) {
        match cmd {
            Command::Join { topic, config, events } => self.add_channel(topic, config, events),
            Command::Leave { topic } => {
                if let Some(slot) = self.channels.remove(&topic) {
                    slot.emit(ChannelEvent::State(ChannelState::Closed));
                }
            }
            Command::Push { topic, event, payload, reply, wants_reply } => self.buffer(topic, Pending { event, payload, reply, wants_reply }),
            Command::SetToken(t) => self.token = t,
            Command::WatchConnection(w) => {
                if w.unbounded_send(self.conn_state.clone()).is_ok() {
                    self.watchers.push(w);
                }
            }
            Command::Disconnect => self.shutting_down = true,
        }
    }

    fn add_channel(&mut self, topic: String, config: Value, events: mpsc::UnboundedSender<ChannelEvent>) {
        let slot = Slot {
            config,
            state: ChannelState::Joining,
            join_ref: None,
            events,
            buffer: VecDeque::new(),
            rejoin_at: None,
            rejoin_failures: 0,
            presence: PresenceSync::default(),
            tracked: None,
        };
        slot.emit(ChannelEvent::State(ChannelState::Joining));
        if let Some(old) = self.channels.insert(topic, slot) {
            old.emit(ChannelEvent::State(ChannelState::Closed));
        }
    }

    fn buffer(&mut self, topic: String, p: Pending) {
        match self.channels.get_mut(&topic) {
            Some(slot) => {
                if slot.buffer.len() >= BUFFER {
                    if let Some(old) = slot.buffer.pop_front() {
                        let _ = old.reply.send(Err(RealtimeError::BufferFull));
                    }
                }
                slot.buffer.push_back(p);
            }
            None => {
                let _ = p.reply.send(Err(RealtimeError::Closed));
            }
        }
    }

    async fn send(&mut self, sink: &mut Box<dyn WsSink>, f: Frame) -> Result<(), End> {
        sink.send(f.encode()).await.map_err(|e| End::Lost(e.to_string()))
    }

    fn access_token(&self) -> String {
        self.token.clone().unwrap_or_else(|| self.anon_key.clone())
    }

    async fn join(&mut self, sink: &mut Box<dyn WsSink>, topic: &str) -> Result<(), End> {
        let r = self.make_ref();
        let token = self.access_token();
        let deadline = self.now() + self.cfg.push_timeout_ms as i64;
        let Some(slot) = self.channels.get_mut(topic) else { return Ok(()) };
        slot.join_ref = Some(r.clone());
        slot.rejoin_at = None;
        slot.presence.reset();
        slot.set_state(ChannelState::Joining);
        let payload = json!({"config": slot.config, "access_token": token});
        self.inflight.insert(r.clone(), InFlight { what: Waiting::Join(topic.into()), deadline });
        self.send(sink, Frame::new(Some(&r), &r, topic, "phx_join", payload)).await
    }

    async fn push_now(&mut self, sink: &mut Box<dyn WsSink>, topic: &str, p: Pending) -> Result<(), End> {
        if p.event == "presence" {
            if let Some(slot) = self.channels.get_mut(topic) {
                match p.payload.get("event").and_then(Value::as_str) {
                    Some("track") => slot.tracked = Some(p.payload.clone()),
                    Some("untrack") => slot.tracked = None,
                    _ => {}
                }
            }
        }
        let r = self.make_ref();
        let join_ref = self.channels.get(topic).and_then(|s| s.join_ref.clone());
        let frame = Frame::new(join_ref.as_deref(), &r, topic, &p.event, p.payload);
        self.send(sink, frame).await?;
        if p.wants_reply {
            let deadline = self.now() + self.cfg.push_timeout_ms as i64;
            self.inflight.insert(r, InFlight { what: Waiting::Push(p.reply), deadline });
        } else {
            let _ = p.reply.send(Ok(Value::Null));
        }
        Ok(())
    }

    async fn session(
        &mut self,
        mut sink: Box<dyn WsSink>,
        mut stream: Box<dyn WsStream>,
        timer: &impl Timer,
        tokens: Option<&dyn AccessTokenSource>,
    ) -> End {
        let topics: Vec<String> = self.channels.keys().cloned().collect();
        for t in topics {
            if let Err(e) = self.join(&mut sink, &t).await {
                return e;
            }
        }
        let mut heartbeat_due = self.now() + self.cfg.heartbeat_ms as i64;
        let end = loop {
            let now = self.now();
            let wake = self
                .channels
                .values()
                .filter_map(|s| s.rejoin_at)
                .chain(self.inflight.values().map(|f| f.deadline))
                .fold(heartbeat_due, i64::min);
            let mut sleep = timer.sleep_ms((wake - now).max(0) as u64).fuse();
            let mut next_cmd = self.cmds.next().fuse();
            let mut next_msg = stream.next().fuse();
            enum Woke {
                Msg(Option<Result<WsMessage, crate::net::transport::TransportError>>),
                Cmd(Option<Command>),
                Timer,
            }
            let woke = futures_util::select_biased! {
                m = next_msg => Woke::Msg(m),
                c = next_cmd => Woke::Cmd(c),
                _ = sleep => Woke::Timer,
            };
            drop((next_msg, next_cmd, sleep));
            let step = match woke {
                Woke::Msg(None) => Err(End::Lost("the server closed the socket".into())),
                Woke::Msg(Some(Err(e))) => Err(End::Lost(e.to_string())),
                Woke::Msg(Some(Ok(WsMessage::Text(t)))) => self.on_text(&mut sink, &t).await,
                Woke::Msg(Some(Ok(WsMessage::Binary(b)))) => {
                    tracing::debug!(target: "supasync::realtime", "skipped a binary frame of {} bytes", b.len());
                    Ok(())
                }
                Woke::Cmd(None) => Err(End::Shutdown),
                Woke::Cmd(Some(c)) => self.command_online(&mut sink, c).await,
                Woke::Timer => self.on_timer(&mut sink, &mut heartbeat_due, tokens).await,
            };
            if let Err(end) = step {
                break end;
            }
        };
        if matches!(end, End::Shutdown) {
            // Leave cleanly; the socket goes with us.
            let topics: Vec<(String, Option<String>)> = self.channels.iter().map(|(t, s)| (t.clone(), s.join_ref.clone())).collect();
            for (t, jr) in topics {
                let r = self.make_ref();
                let _ = sink.send(Frame::new(jr.as_deref(), &r, &t, "phx_leave", json!({})).encode()).await;
            }
            sink.close().await;
        }
        end
    }

    async fn command_online(&mut self, sink: &mut Box<dyn WsSink>, cmd: Command) -> Result<(), End> {
        match cmd {
            Command::Join { topic, config, events } => {
                self.add_channel(topic.clone(), config, events);
                self.join(sink, &topic).await
            }
            Command::Leave { topic } => {
                if let Some(slot) = self.channels.remove(&topic) {
                    let r = self.make_ref();
                    let deadline = self.now() + self.cfg.push_timeout_ms as i64;
                    self.inflight.insert(r.clone(), InFlight { what: Waiting::Leave, deadline });
                    slot.emit(ChannelEvent::State(ChannelState::Closed));
                    self.send(sink, Frame::new(slot.join_ref.as_deref(), &r, &topic, "phx_leave", json!({}))).await?;
                }
                Ok(())
            }
            Command::Push { topic, event, payload, reply, wants_reply } => {
                let p = Pending { event, payload, reply, wants_reply };
                match self.channels.get(&topic).map(|s| s.state == ChannelState::Joined) {
                    Some(true) => self.push_now(sink, &topic, p).await,
                    _ => {
                        self.buffer(topic, p);
                        Ok(())
                    }
                }
            }
            Command::SetToken(t) => self.update_token(sink, t).await,
            Command::Disconnect => Err(End::Shutdown),
            other => {
                self.command_offline(other);
                Ok(())
            }
        }
    }

    /// A new token goes to every joined channel (the server re-checks it and re-registers
    /// the channel's change listeners under the new claims). No reply comes.
    async fn update_token(&mut self, sink: &mut Box<dyn WsSink>, t: Option<String>) -> Result<(), End> {
        if t == self.token {
            return Ok(());
        }
        self.token = t;
        let token = self.access_token();
        let joined: Vec<(String, Option<String>)> = self
            .channels
            .iter()
            .filter(|(_, s)| s.state == ChannelState::Joined)
            .map(|(t, s)| (t.clone(), s.join_ref.clone()))
            .collect();
        for (topic, jr) in joined {
            let r = self.make_ref();
            self.send(sink, Frame::new(jr.as_deref(), &r, &topic, "access_token", json!({"access_token": token}))).await?;
        }
        Ok(())
    }

    async fn on_timer(&mut self, sink: &mut Box<dyn WsSink>, heartbeat_due: &mut i64, tokens: Option<&dyn AccessTokenSource>) -> Result<(), End> {
        let now = self.now();
        // Expired pushes and joins.
        let expired: Vec<String> = self.inflight.iter().filter(|(_, f)| f.deadline <= now).map(|(r, _)| r.clone()).collect();
        for r in expired {
            let Some(f) = self.inflight.remove(&r) else { continue };
            match f.what {
                Waiting::Push(reply) => {
                    let _ = reply.send(Err(RealtimeError::Timeout));
                }
                Waiting::Join(topic) => self.join_failed(&topic, "no join reply in time".into()),
                Waiting::Heartbeat => return Err(End::Lost("heartbeat timeout".into())),
                Waiting::Leave => {}
            }
        }
        // Rejoins that are due.
        let due: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, s)| s.rejoin_at.is_some_and(|t| t <= now))
            .map(|(t, _)| t.clone())
            .collect();
        for t in due {
            if let Some(src) = tokens {
                self.token = src.access_token().await;
            }
            self.join(sink, &t).await?;
        }
        if now >= *heartbeat_due {
            if self.inflight.values().any(|f| matches!(f.what, Waiting::Heartbeat)) {
                return Err(End::Lost("heartbeat timeout".into()));
            }
            if let Some(src) = tokens {
                let t = src.access_token().await;
                self.update_token(sink, t).await?;
            }
            let r = self.make_ref();
            // The next heartbeat is due one interval on; this one must be answered by then.
            *heartbeat_due = now + self.cfg.heartbeat_ms as i64;
            self.inflight.insert(r.clone(), InFlight { what: Waiting::Heartbeat, deadline: *heartbeat_due });
            self.send(sink, Frame::new(None, &r, "phoenix", "heartbeat", json!({}))).await?;
        }
        Ok(())
    }

    fn join_failed(&mut self, topic: &str, reason: String) {
        let now = self.now();
        let rejoin = self.cfg.rejoin;
        if let Some(slot) = self.channels.get_mut(topic) {
            slot.rejoin_failures += 1;
            slot.join_ref = None;
            slot.rejoin_at = Some(now + rejoin.delay_ms(slot.rejoin_failures) as i64);
            tracing::info!(target: "supasync::realtime", "channel {topic} not joined ({reason}); rejoining");
            slot.set_state(ChannelState::Errored { reason });
        }
    }

    async fn on_text(&mut self, sink: &mut Box<dyn WsSink>, text: &str) -> Result<(), End> {
        let f = match Frame::decode(text) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(target: "supasync::realtime", "skipped a frame: {e} ({} bytes)", text.len());
                return Ok(());
            }
        };
        if f.event == "phx_reply" {
            return self.on_reply(sink, f).await;
        }
        let Some(slot) = self.channels.get_mut(&f.topic) else {
            tracing::debug!(target: "supasync::realtime", "skipped `{}` for unknown topic {}", f.event, f.topic);
            return Ok(());
        };
        // A message for an earlier join of this channel is stale.
        if f.join_ref.is_some() && f.join_ref != slot.join_ref {
            return Ok(());
        }
        match f.event.as_str() {
            "postgres_changes" => match f.payload.get("data").cloned().map(serde_json::from_value::<PgChange>) {
                Some(Ok(c)) => slot.emit(ChannelEvent::Change(c)),
                _ => tracing::warn!(target: "supasync::realtime", "skipped a postgres_changes event without readable data"),
            },
            "broadcast" => {
                let event = f.payload.get("event").and_then(Value::as_str).unwrap_or_default().to_string();
                let payload = f.payload.get("payload").cloned().unwrap_or(Value::Null);
                slot.emit(ChannelEvent::Broadcast { event, payload });
            }
            "presence_state" | "presence_diff" => {
                let changes = if f.event == "presence_state" {
                    slot.presence.apply_state(&f.payload)
                } else {
                    slot.presence.apply_diff(&f.payload)
                };
                if !changes.is_empty() {
                    for c in changes {
                        slot.emit(ChannelEvent::Presence(c));
                    }
                    slot.emit(ChannelEvent::PresenceSync(slot.presence.state().clone()));
                }
            }
            "system" => {
                let ext = f.payload.get("extension").and_then(Value::as_str).unwrap_or_default();
                let ok = f.payload.get("status").and_then(Value::as_str) == Some("ok");
                let msg = f.payload.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
                match (ext, ok) {
                    ("postgres_changes", true) => slot.emit(ChannelEvent::PostgresReady),
                    ("postgres_changes", false) => slot.emit(ChannelEvent::PostgresError(msg)),
                    _ => slot.emit(ChannelEvent::System(f.payload.clone())),
                }
            }
            "phx_close" | "phx_error" => {
                let why = if f.event == "phx_close" { "closed by the server" } else { "the server's channel failed" };
                let topic = f.topic.clone();
                self.join_failed(&topic, why.into());
            }
            other => tracing::debug!(target: "supasync::realtime", "skipped unexpected event `{other}`"),
        }
        Ok(())
    }

    async fn on_reply(&mut self, sink: &mut Box<dyn WsSink>, f: Frame) -> Result<(), End> {
        let Some(r) = f.r#ref.clone() else { return Ok(()) };
        let Some(waiting) = self.inflight.remove(&r) else { return Ok(()) };
        let ok = f.payload.get("status").and_then(Value::as_str) == Some("ok");
        let response = f.payload.get("response").cloned().unwrap_or(Value::Null);
        let reason = || {
            response
                .get("reason")
                .or_else(|| response.get("error"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| response.to_string())
        };
        match waiting.what {
            Waiting::Heartbeat | Waiting::Leave => Ok(()),
            Waiting::Push(reply) => {
                let _ = reply.send(if ok { Ok(response) } else { Err(RealtimeError::Refused(reason())) });
                Ok(())
            }
            Waiting::Join(topic) => {
                if !ok {
                    self.join_failed(&topic, reason());
                    return Ok(());
                }
                let Some(slot) = self.channels.get_mut(&topic) else { return Ok(()) };
                slot.rejoin_failures = 0;
                slot.set_state(ChannelState::Joined);
                let retrack = slot.tracked.clone();
                let waiting: Vec<Pending> = slot.buffer.drain(..).collect();
                if let (Some(payload), false) = (retrack, waiting.iter().any(|p| p.event == "presence")) {
                    let (reply, _) = oneshot::channel();
                    self.push_now(sink, &topic, Pending { event: "presence".into(), payload, reply, wants_reply: false }).await?;
                }
                for p in waiting {
                    self.push_now(sink, &topic, p).await?;
                }
                Ok(())
            }
        }
    }
}
