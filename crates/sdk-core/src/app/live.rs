//! Live sync (DESIGN §2.6): one task per replica that keeps it current.
//!
//! In the default realtime mode it joins one channel, `supasync:<user id>`, with one
//! `postgres_changes` listener per synced table filtered by owner, plus one on the
//! kit's tombstones (that is how deletes arrive), and for shared tables listeners by
//! the scope ids the replica holds ([`crate::app::listeners`]). When a pull changes
//! those ids (a membership granted or revoked, heard on the kit's access lines), it
//! joins again with the new ones. On every join it waits for the
//! server's "Subscribed to PostgreSQL", then pushes and pulls from the cursors while
//! the changes that keep arriving wait in the channel's queue; afterwards it applies
//! them in order, each checked against the replica's version
//! ([`crate::sync::remote_change`]). Changes made while the device was away come from the
//! pull, changes made during the pull from the queue: no gap, and a change seen twice
//! is applied once in effect.
//!
//! The outbox is pushed at once after a local write, after every (re)join, when the
//! access token changes, and on its own timer with jittered backoff while pushes fail.
//! Realtime promises no delivery, so a slow safety pull runs as well (every 5 minutes
//! by default). The other modes: `Every(ms)` polls (push and pull) instead of joining a
//! channel, `Manual` syncs only on [`LiveSync::sync_now`]; pause and resume leave and
//! rejoin. Everything the app shows about it comes as [`LiveStatus`] values.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_channel::{mpsc, oneshot};
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;

use crate::net::backoff::Backoff;
use crate::net::classify::Failure;
use crate::app::engine::{Engine, EngineError};
use crate::local::events::EngineEvent;
use crate::app::listeners::{channel_config, HeldScopes};
use crate::net::realtime::{AccessTokenSource, Channel, ChannelEvent, ChannelState, RealtimeClient};
use crate::sync::remote_change::Applied;
use crate::sync::scopes::ACCESS;
use crate::local::store::Store;
use crate::platform::timer::Timer;
use crate::net::transport::Http;

/// How a replica keeps up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum SyncMode {
    /// Realtime changes, plus pushes on every local write.
    Realtime,
    /// Push and pull every `ms` milliseconds (and push on local writes).
    Every { ms: u64 },
    /// Only on [`LiveSync::sync_now`].
    Manual,
}

/// What the live sync is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Joining the channel (or waiting for the server to be ready).
    Connecting,
    /// Joined; pushing and pulling what happened while away.
    CatchingUp,
    /// Caught up; changes arrive as they happen.
    Live,
    /// Polling mode, between polls.
    Polling,
    /// Manual mode, or paused by the app.
    Paused,
    /// The server cannot be reached; retrying.
    Offline,
}

/// A snapshot for the app's sync indicator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveStatus {
    pub phase: Phase,
    pub mode: SyncMode,
    pub pending: usize,
    pub rejected: usize,
    pub last_sync: serde_json::Map<String, serde_json::Value>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// While a pull brings many rows (a restore): which table, rows so far, the total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<crate::local::events::PullProgress>,
    /// While a file goes to Storage: which, and how many of its bytes are there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<crate::local::events::FileProgress>,
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub mode: SyncMode,
    /// Pacing of push retries while the server cannot take them.
    pub retry: Backoff,
    /// In realtime mode, a full pull this often anyway (Realtime may drop a change).
    pub safety_pull_ms: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            mode: SyncMode::Realtime,
            retry: Backoff { initial_ms: 1_000, max_ms: 30_000 },
            safety_pull_ms: 300_000,
        }
    }
}

enum LiveCmd {
    SyncNow(oneshot::Sender<Result<(), String>>),
    Pause,
    Resume,
    SetMode(SyncMode),
    WatchStatus(mpsc::UnboundedSender<LiveStatus>),
    TokenChanged,
    Stop,
}

/// The app's handle on a running live sync (cheap to clone).
#[derive(Clone)]
pub struct LiveSync {
    cmds: mpsc::UnboundedSender<LiveCmd>,
    /// Set by `pause()` itself, read by the driver before each push it starts on its
    /// own: the `Pause` command waits for the driver's loop, and a catch-up under way
    /// would otherwise push the writes made after `pause()` returned.
    held: Arc<AtomicBool>,
}

impl LiveSync {
    /// A live sync of `engine` over `realtime`, and the task the platform must spawn.
    pub fn new<S: Store, H: Http>(engine: Arc<Engine<S, H>>, realtime: RealtimeClient, cfg: LiveConfig) -> (LiveSync, LiveDriver<S, H>) {
        let (tx, rx) = mpsc::unbounded();
        let local = engine.subscribe();
        let held = Arc::new(AtomicBool::new(false));
        let driver = LiveDriver {
            held: held.clone(),
            engine,
            realtime,
            mode: cfg.mode,
            cfg,
            cmds: rx,
            local,
            channel: None,
            phase: Phase::Connecting,
            paused: false,
            failures: 0,
            push_at: None,
            recount_at: None,
            counts_read_at: None,
            counts_unsure: false,
            pull_at: None,
            last_error: None,
            watchers: vec![],
            last_status: None,
            stopped: false,
            before_offline: None,
            scopes: HeldScopes::new(),
            rejoin: false,
        };
        (LiveSync { cmds: tx, held }, driver)
    }

    /// An access-token source for the Realtime client that reads the engine's session
    /// (refreshing it when due) and tells this live sync when the token changed, so
    /// that writes held back by an expired token go out at once.
    pub fn token_source<S: Store + 'static, H: Http + 'static>(&self, engine: Arc<Engine<S, H>>) -> Arc<dyn AccessTokenSource> {
        let live = self.clone();
        Arc::new(SessionTokens::new(engine, move || live.token_changed()))
    }

    /// Push and pull now; returns when done.
    pub async fn sync_now(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.cmds.unbounded_send(LiveCmd::SyncNow(tx)).map_err(|_| "live sync stopped".to_string())?;
        rx.await.map_err(|_| "live sync stopped".to_string())?
    }

    /// Stop pushing and listening: no push starts after this returns (one already
    /// sending finishes), until [`LiveSync::resume`] or an explicit `sync_now`.
    pub fn pause(&self) {
        self.held.store(true, Ordering::SeqCst);
        let _ = self.cmds.unbounded_send(LiveCmd::Pause);
    }

    pub fn resume(&self) {
        self.held.store(false, Ordering::SeqCst);
        let _ = self.cmds.unbounded_send(LiveCmd::Resume);
    }

    pub fn set_mode(&self, mode: SyncMode) {
        let _ = self.cmds.unbounded_send(LiveCmd::SetMode(mode));
    }

    /// Status changes, starting with the current status.
    pub fn statuses(&self) -> mpsc::UnboundedReceiver<LiveStatus> {
        let (tx, rx) = mpsc::unbounded();
        let _ = self.cmds.unbounded_send(LiveCmd::WatchStatus(tx));
        rx
    }

    /// The access token changed: writes held back by the old one go out now.
    pub fn token_changed(&self) {
        let _ = self.cmds.unbounded_send(LiveCmd::TokenChanged);
    }

    /// Leave the channel and end the task.
    pub fn stop(&self) {
        let _ = self.cmds.unbounded_send(LiveCmd::Stop);
    }
}

/// An access-token source that reads the engine's session (refreshing it when due) and
/// calls `on_change` when the token changed, so that whoever holds writes back for an
/// expired token (live sync) sends them at once.
pub struct SessionTokens<S: Store, H: Http> {
    engine: Arc<Engine<S, H>>,
    on_change: Box<dyn Fn() + Send + Sync>,
    last: async_lock::Mutex<Option<String>>,
}

impl<S: Store, H: Http> SessionTokens<S, H> {
    pub fn new(engine: Arc<Engine<S, H>>, on_change: impl Fn() + Send + Sync + 'static) -> SessionTokens<S, H> {
        SessionTokens { engine, on_change: Box::new(on_change), last: async_lock::Mutex::new(None) }
    }
}

crate::maybe_async_trait! {
    impl<S: Store, H: Http> AccessTokenSource for SessionTokens<S, H> {
        async fn access_token(&self) -> Option<String> {
            let token = self.engine.session().await.ok().map(|s| s.access_token);
            let mut last = self.last.lock().await;
            if last.is_some() && *last != token {
                (self.on_change)();
            }
            *last = token.clone();
            token
        }
    }
}

/// How often, at most, local writes make the driver read the counts (pending,
/// rejected) for the status stream: a write after a quiet spell is counted at once,
/// the writes of a burst once per this many ms. A read per write would cost each write
/// a read transaction of the outbox, which the next write must wait for (IndexedDB
/// runs a write after the reads of the same stores begun before it): in a browser that
/// was a quarter of a write's time. `status()` reads the counts at once.
pub const RECOUNT_AFTER_MS: i64 = 30;

/// The task behind a [`LiveSync`]; run it with [`LiveDriver::run`].
pub struct LiveDriver<S: Store, H: Http> {
    /// The app paused (see [`LiveSync::held`]).
    held: Arc<AtomicBool>,
    engine: Arc<Engine<S, H>>,
    realtime: RealtimeClient,
    cfg: LiveConfig,
    mode: SyncMode,
    cmds: mpsc::UnboundedReceiver<LiveCmd>,
    local: mpsc::UnboundedReceiver<EngineEvent>,
    channel: Option<Channel>,
    phase: Phase,
    paused: bool,
    failures: u32,
    push_at: Option<i64>,
    pull_at: Option<i64>,
    /// When to read the counts after local writes (see [`RECOUNT_AFTER_MS`]).
    recount_at: Option<i64>,
    /// When local writes last made the driver read the counts (other reads, as for a
    /// new watcher, do not hold back the next write's).
    counts_read_at: Option<i64>,
    /// A local write came since the counts were last read: the next read is sent even
    /// if it equals the last one sent, because a watcher may have read the counts
    /// in between (the npm package reads them after each write) and shows newer ones.
    counts_unsure: bool,
    last_error: Option<String>,
    watchers: Vec<mpsc::UnboundedSender<LiveStatus>>,
    last_status: Option<LiveStatus>,
    stopped: bool,
    /// The phase a push found unreachable replaced (restored when a push goes through).
    before_offline: Option<Phase>,
    /// The shared tables' scope ids the channel listens with.
    scopes: HeldScopes,
    /// A pull changed those ids: join again with the new ones.
    rejoin: bool,
}

enum Woke {
    Cmd(Option<LiveCmd>),
    Channel(Option<ChannelEvent>),
    Local(Option<EngineEvent>),
    Timer,
}

impl<S: Store, H: Http> LiveDriver<S, H> {
    fn now(&self) -> i64 {
        self.engine.now_ms()
    }

    /// Run until stopped. Needs a signed-in engine.
    pub async fn run(mut self, timer: impl Timer) -> Result<(), EngineError> {
        let user_id = self.engine.session().await?.user_id;
        self.scopes = self.engine.held_scopes().await?;
        self.start(&user_id);
        self.publish().await;
        // The wait for the next deadline, kept across wakes while that deadline stands:
        // a new timer per wake cost every write of a burst a browser timer set and
        // cleared (the recount's deadline stays put through the burst).
        let mut sleeping = None;
        while !self.stopped {
            let now = self.now();
            let wake = [self.push_at, self.pull_at, self.recount_at].into_iter().flatten().min();
            match wake {
                None => sleeping = None,
                Some(t) if sleeping.as_ref().is_some_and(|(at, _)| *at == t) => {}
                Some(t) => sleeping = Some((t, timer.sleep_ms((t - now).max(0) as u64).fuse())),
            }
            let mut sleep = match sleeping.as_mut() {
                Some((_, s)) => s.left_future(),
                None => futures_util::future::pending().right_future(),
            }
            .fuse();
            let mut cmd = self.cmds.next().fuse();
            let mut local = self.local.next().fuse();
            let mut chan = match self.channel.as_mut() {
                Some(c) => Box::pin(c.next()).left_future(),
                None => futures_util::future::pending().right_future(),
            }
            .fuse();
            let woke = futures_util::select_biased! {
                c = cmd => Woke::Cmd(c),
                e = chan => Woke::Channel(e),
                l = local => Woke::Local(l),
                _ = sleep => Woke::Timer,
            };
            drop((sleep, cmd, local, chan));
            if matches!(woke, Woke::Timer) {
                sleeping = None;
            }
            // Whether the counts (pending, rejected, last sync) may have changed: not
            // by a server row applied, nor by the change events that follow it, so
            // the status after them needs no store read (a Realtime change's latency
            // is every read on its way).
            let mut counts_changed = !matches!(woke, Woke::Local(Some(EngineEvent::Changed { local: false, .. } | EngineEvent::Arriving { .. })));
            match woke {
                Woke::Cmd(None) => self.stopped = true,
                Woke::Cmd(Some(c)) => self.command(c, &user_id).await,
                Woke::Channel(Some(e)) => counts_changed = self.channel_event(e).await,
                Woke::Channel(None) => self.channel = None,
                Woke::Local(Some(EngineEvent::Changed { local: true, .. })) => {
                    if !self.paused && self.mode != SyncMode::Manual {
                        // A push already due stays due (and its timer stands).
                        let now = self.now();
                        self.push_at = Some(self.push_at.map_or(now, |t| t.min(now)));
                    }
                    // A write after a quiet spell is counted at once (the stream shows
                    // it waiting); in a burst, the counts are read once per
                    // RECOUNT_AFTER_MS.
                    self.counts_unsure = true;
                    let now = self.now();
                    let next = self.counts_read_at.map_or(now, |t| t + RECOUNT_AFTER_MS);
                    if self.recount_at.is_some() || next > now {
                        counts_changed = false;
                        self.recount_at.get_or_insert(next);
                    } else {
                        self.counts_read_at = Some(now);
                    }
                }
                Woke::Local(_) => {}
                Woke::Timer => self.timers().await,
            }
            if std::mem::take(&mut self.rejoin) && self.channel.is_some() {
                self.start(&user_id);
            }
            if counts_changed {
                self.publish().await;
            } else {
                self.publish_phase();
            }
        }
        if let Some(c) = self.channel.take() {
            c.leave();
        }
        Ok(())
    }

    /// Enter the current mode.
    fn start(&mut self, user_id: &str) {
        if let Some(c) = self.channel.take() {
            c.leave();
        }
        self.push_at = None;
        self.pull_at = None;
        if self.paused {
            self.phase = Phase::Paused;
            return;
        }
        match self.mode {
            SyncMode::Realtime => {
                self.phase = Phase::Connecting;
                self.channel = Some(self.realtime.channel(&format!("supasync:{user_id}"), &channel_config(&self.engine.schema, user_id, &self.scopes)));
            }
            SyncMode::Every { .. } => {
                self.phase = Phase::Polling;
                self.pull_at = Some(self.now());
            }
            SyncMode::Manual => self.phase = Phase::Paused,
        }
    }

    async fn command(&mut self, c: LiveCmd, user_id: &str) {
        match c {
            LiveCmd::SyncNow(reply) => {
                let r = self.sync(true).await;
                let _ = reply.send(r);
            }
            LiveCmd::Pause => {
                self.paused = true;
                self.start(user_id);
            }
            LiveCmd::Resume => {
                if self.paused {
                    self.paused = false;
                    self.start(user_id);
                }
            }
            LiveCmd::SetMode(m) => {
                if m != self.mode {
                    self.mode = m;
                    self.start(user_id);
                }
            }
            LiveCmd::WatchStatus(w) => {
                if let Some(s) = &self.last_status {
                    if w.unbounded_send(s.clone()).is_err() {
                        return;
                    }
                }
                self.watchers.push(w);
            }
            LiveCmd::TokenChanged => {
                if !self.paused && self.mode != SyncMode::Manual {
                    self.push_at = Some(self.now());
                }
            }
            LiveCmd::Stop => self.stopped = true,
        }
    }

    /// Handle one event of the channel; returns whether the counts may have changed
    /// (all but a server row applied, or a change skipped).
    async fn channel_event(&mut self, e: ChannelEvent) -> bool {
        if matches!(e, ChannelEvent::State(_) | ChannelEvent::PostgresReady) {
            // The channel's own news decides the phase from here.
            self.before_offline = None;
        }
        match e {
            ChannelEvent::State(ChannelState::Joined) => self.phase = Phase::Connecting,
            ChannelEvent::State(ChannelState::Errored { reason }) => {
                self.phase = Phase::Offline;
                self.last_error = Some(reason);
            }
            ChannelEvent::PostgresReady => {
                // Changes that arrive from now on queue in the channel while we catch up.
                self.phase = Phase::CatchingUp;
                self.publish().await;
                if self.sync(false).await.is_ok() {
                    self.phase = Phase::Live;
                    self.pull_at = Some(self.now() + self.cfg.safety_pull_ms as i64);
                } else {
                    self.phase = Phase::Offline;
                }
            }
            ChannelEvent::PostgresError(msg) => {
                // The channel stays; fall back to polling until it works.
                self.last_error = Some(format!("Realtime cannot deliver changes: {msg}"));
                self.pull_at = Some(self.now() + 30_000);
            }
            ChannelEvent::Change(c) if c.table == ACCESS => {
                // A membership of this user changed: pull (rows granted come, rows lost
                // go), then listen with the new scope ids.
                self.pull_at = Some(self.now());
            }
            ChannelEvent::Change(c) => match self.engine.apply_change(&c).await {
                // A delete takes the row's waiting writes with it: those counts change.
                Ok(applied) => return applied == Applied::Deleted,
                Err(err) => {
                    tracing::warn!(target: "supasync::live", "could not apply a {} change on {}: {err}", c.kind, c.table);
                    self.last_error = Some(err.to_string());
                    // The next pull brings it.
                    self.pull_at = Some(self.now());
                }
            },
            _ => {}
        }
        true
    }

    async fn timers(&mut self) {
        let now = self.now();
        if self.recount_at.is_some_and(|t| t <= now) {
            self.counts_read_at = Some(now);
            // The counts are read after every wake by a timer (see `run`).
            self.recount_at = None;
        }
        if self.pull_at.is_some_and(|t| t <= now) {
            self.pull_at = None;
            let _ = self.sync(false).await;
            match self.mode {
                SyncMode::Every { ms } if !self.paused => self.pull_at = Some(self.now() + ms as i64),
                SyncMode::Realtime if self.phase == Phase::Live => self.pull_at = Some(self.now() + self.cfg.safety_pull_ms as i64),
                _ => {}
            }
        } else if self.push_at.is_some_and(|t| t <= now) {
            self.push_at = None;
            if !self.held.load(Ordering::SeqCst) {
                self.push().await;
            }
        }
    }

    fn failed(&mut self, err: String) {
        self.failures += 1;
        self.last_error = Some(err);
        self.push_at = Some(self.now() + self.cfg.retry.delay_ms(self.failures) as i64);
    }

    async fn push(&mut self) {
        match self.engine.push().await {
            Ok(r) => match r.stopped {
                Some(why) if r.pushed == 0 => {
                    if r.unreachable {
                        self.unreachable();
                    }
                    self.failed(why)
                }
                Some(_) => self.push_at = Some(self.now()),
                None => {
                    self.failures = 0;
                    self.last_error = None;
                    self.reachable();
                }
            },
            Err(e) => self.failed(e.to_string()),
        }
    }

    /// A push got no answer at all while the channel looked fine (a socket can stay
    /// open for a while after the network went): the indicator says offline.
    fn unreachable(&mut self) {
        if matches!(self.phase, Phase::Live | Phase::Polling) {
            self.before_offline = Some(self.phase);
            self.phase = Phase::Offline;
        }
    }

    /// A push went through: back to what the phase was before the network went.
    fn reachable(&mut self) {
        if let Some(p) = self.before_offline.take() {
            if self.phase == Phase::Offline {
                self.phase = p;
            }
        }
    }

    /// Push, then pull.
    /// Push (unless the app paused and did not ask for this sync itself), then pull.
    async fn sync(&mut self, asked: bool) -> Result<(), String> {
        if asked || !self.held.load(Ordering::SeqCst) {
            self.push().await;
        }
        match self.engine.pull().await {
            Ok(_) => {
                if self.failures == 0 {
                    self.last_error = None;
                }
                if let Ok(now) = self.engine.held_scopes().await {
                    if now != self.scopes {
                        self.scopes = now;
                        self.rejoin = true;
                    }
                }
                Ok(())
            }
            Err(e) => {
                let transient = matches!(&e, EngineError::Request(r) if r.failure() == Failure::Transient);
                let msg = e.to_string();
                self.last_error = Some(msg.clone());
                if transient && self.mode == SyncMode::Realtime && self.phase != Phase::Live {
                    // Retry the catch-up with the push timer's pacing.
                    self.pull_at = Some(self.now() + self.cfg.retry.delay_ms(self.failures.max(1)) as i64);
                }
                Err(msg)
            }
        }
    }

    /// Publish the phase and last error with the counts last read (see [`Self::publish`]).
    fn publish_phase(&mut self) {
        let Some(last) = &self.last_status else { return };
        let status = LiveStatus { phase: self.phase, mode: self.mode, last_error: self.last_error.clone(), ..last.clone() };
        if *last != status {
            self.watchers.retain(|w| w.unbounded_send(status.clone()).is_ok());
            self.last_status = Some(status);
        }
    }

    async fn publish(&mut self) {
        if self.watchers.is_empty() {
            self.last_status = None;
            return;
        }
        let Ok(st) = self.engine.status().await else { return };
        let status = LiveStatus {
            phase: self.phase,
            mode: self.mode,
            pending: st.pending,
            rejected: st.rejected,
            last_sync: st.last_sync,
            last_error: self.last_error.clone(),
            progress: None,
            upload: None,
        };
        if std::mem::take(&mut self.counts_unsure) || self.last_status.as_ref() != Some(&status) {
            self.watchers.retain(|w| w.unbounded_send(status.clone()).is_ok());
            self.last_status = Some(status);
        }
    }
}
