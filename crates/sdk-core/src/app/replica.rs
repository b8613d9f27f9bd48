//! The one-call facade every platform wraps: open a replica, and live sync runs by
//! itself whenever a user is signed in. Without it each platform would wire an
//! engine, a Realtime client, a live-sync task and status fan-out by hand, and wire
//! them differently; here it is done once, and the browser package, the native Rust
//! API and the uniffi bindings are thin translations of [`Replica`].
//!
//! What a platform supplies is a [`Runtime`]: its store, HTTP, WebSocket connector,
//! timer, clock and a way to spawn a task. The replica then owns:
//! - the [`Engine`] (local writes, queries, push/pull, auth);
//! - the network side, on while signed in and [`Replica::set_network`] allows it (a
//!   browser tab that does not lead turns it off: one tab per replica talks to the
//!   server): a Realtime client and the [`LiveSync`] task;
//! - status subscribers that outlive live-sync restarts (sign-out, sign-in, another
//!   tab taking the lead), each fed [`LiveStatus`] values.

use std::sync::{Arc, Mutex};

use futures_channel::mpsc;
use futures_util::StreamExt;

use crate::net::auth::{Session, TokenProvider};
use crate::net::backoff::Backoff;
use crate::net::client::Project;
use crate::app::engine::{Engine, EngineConfig, EngineError};
use crate::local::events::{EngineEvent, FileProgress, PullProgress};
use crate::app::live::{LiveConfig, LiveStatus, LiveSync, Phase, SessionTokens, SyncMode};
use crate::platform::maybe_send::{BoxTask, MaybeSend, MaybeSync};
use crate::net::realtime::{AccessTokenSource, Channel, ChannelConfig, RealtimeClient, RealtimeConfig};
use crate::local::schema::Schema;
use crate::app::settle::Settled;
use crate::local::store::Store;
use crate::platform::timer::Timer;
use crate::net::transport::{Http, WsConnector};
use crate::local::write_lock::SharedLock;

/// What a platform gives a replica to run on.
pub trait Runtime: MaybeSend + MaybeSync + Clone + 'static {
    type Timer: Timer + Clone + 'static;
    type Ws: WsConnector + Clone + 'static;
    fn timer(&self) -> Self::Timer;
    fn ws(&self) -> Self::Ws;
    /// Run `task` in the background (tokio natively, the microtask queue in a browser).
    fn spawn(&self, task: BoxTask);
    /// Milliseconds since the Unix epoch.
    fn now_ms() -> i64;
}

/// How to open a replica.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub project: Project,
    pub live: LiveConfig,
    /// Tunables; the clock is the runtime's.
    pub batch_size: Option<usize>,
    /// Whether background network work may start at open (see [`Replica::set_network`]).
    pub network: bool,
}

impl ReplicaConfig {
    pub fn new(url: &str, anon_key: &str) -> ReplicaConfig {
        ReplicaConfig {
            project: Project { url: url.trim_end_matches('/').to_string(), anon_key: anon_key.to_string() },
            live: LiveConfig::default(),
            batch_size: None,
            network: true,
        }
    }
}

struct Net {
    live: LiveSync,
    forward_stop: mpsc::UnboundedSender<()>,
}

struct State {
    /// Whether this replica may talk to the server in the background.
    network: bool,
    net: Option<Net>,
    mode: SyncMode,
    paused: bool,
    watchers: Vec<mpsc::UnboundedSender<LiveStatus>>,
    last: Option<LiveStatus>,
    realtime: Option<RealtimeClient>,
    closed: bool,
}

/// One user's replica on one device, with live sync on while signed in.
pub struct Replica<S: Store + 'static, H: Http + 'static, R: Runtime> {
    engine: Arc<Engine<S, H>>,
    runtime: R,
    cfg: ReplicaConfig,
    state: Arc<Mutex<State>>,
}

/// Why the facade refused a call (everything else is an [`EngineError`]).
fn closed() -> EngineError {
    EngineError::Closed
}

impl<S: Store + 'static, H: Http + 'static, R: Runtime> Replica<S, H, R> {
    /// Open a replica. With `tokens`, the app's own auth hands over tokens (the engine
    /// stores none). Live sync starts at once if a user is signed in.
    pub async fn open(schema: Schema, store: S, http: H, runtime: R, cfg: ReplicaConfig, tokens: Option<Box<dyn TokenProvider>>) -> Result<Self, EngineError> {
        Self::open_shared(schema, store, http, runtime, cfg, tokens, None).await
    }

    /// [`Replica::open`] on a store other processes share (browser tabs): `lock` keeps
    /// their writes one at a time (see [`crate::local::write_lock`]).
    pub async fn open_shared(
        schema: Schema,
        store: S,
        http: H,
        runtime: R,
        cfg: ReplicaConfig,
        tokens: Option<Box<dyn TokenProvider>>,
        lock: Option<Box<dyn SharedLock>>,
    ) -> Result<Self, EngineError> {
        let mut ecfg = EngineConfig::with_clock(R::now_ms);
        if let Some(b) = cfg.batch_size {
            ecfg.batch_size = b;
        }
        let mut engine = Engine::open(schema, store, http, cfg.project.clone(), ecfg).await?;
        if let Some(p) = tokens {
            engine = engine.with_boxed_token_provider(p);
        }
        if let Some(l) = lock {
            engine = engine.with_shared_writer_lock(l);
        }
        let (mode, network) = (cfg.live.mode, cfg.network);
        let r = Replica {
            engine: Arc::new(engine),
            runtime,
            cfg,
            state: Arc::new(Mutex::new(State {
                network,
                net: None,
                mode,
                paused: false,
                watchers: vec![],
                last: None,
                realtime: None,
                closed: false,
            })),
        };
        r.reconcile().await;
        r.watch_idle();
        Ok(r)
    }

    /// While live sync does not run here, local writes still change the counts the
    /// status shows (pending, rejected): publish an idle status after each change.
    fn watch_idle(&self) {
        let mut events = self.engine.subscribe();
        let engine = self.engine.clone();
        let state = self.state.clone();
        self.runtime.spawn(Box::pin(async move {
            while let Some(e) = events.next().await {
                // Rows shown before they are stored change no count; their `Changed` follows.
                if matches!(e, EngineEvent::Arriving { .. }) {
                    continue;
                }
                while events.try_recv().is_ok() {}
                let (idle, closed) = {
                    let st = state.lock().unwrap_or_else(|p| p.into_inner());
                    (st.net.is_none(), st.closed)
                };
                if closed {
                    break;
                }
                if idle {
                    publish_idle(&engine, &state).await;
                }
            }
        }));
    }

    /// The engine: local writes, queries, rejected writes, history.
    pub fn engine(&self) -> &Arc<Engine<S, H>> {
        &self.engine
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it inconsistent (plain fields).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_open(&self) -> Result<(), EngineError> {
        if self.lock().closed {
            Err(closed())
        } else {
            Ok(())
        }
    }

    /// Create an account and sign in; live sync starts.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<Session, EngineError> {
        self.check_open()?;
        let s = self.engine.sign_up(email, password).await?;
        self.reconcile().await;
        Ok(s)
    }

    /// Sign in; live sync starts.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Session, EngineError> {
        self.check_open()?;
        let s = self.engine.sign_in(email, password).await?;
        self.reconcile().await;
        Ok(s)
    }

    /// Keep a session signed in elsewhere (another replica of the same page, before it
    /// moved to this user's store); live sync starts if this replica may talk.
    pub async fn adopt_session(&self, s: Session) -> Result<(), EngineError> {
        self.check_open()?;
        self.engine.set_session(s).await?;
        self.reconcile().await;
        Ok(())
    }

    /// Sign out: live sync stops; `wipe` also deletes the replica's rows and outbox.
    pub async fn sign_out(&self, wipe: bool) -> Result<(), EngineError> {
        self.check_open()?;
        self.stop_net();
        self.engine.sign_out(wipe).await?;
        self.reconcile().await;
        Ok(())
    }

    /// Allow or forbid background network work (push, pull, Realtime). A browser tab
    /// that does not lead its replica turns it off; the leading tab turns it on.
    pub async fn set_network(&self, on: bool) {
        let was = std::mem::replace(&mut self.lock().network, on);
        if !on {
            self.stop_net();
        } else if !was {
            // Taking over from another process: its session may be newer than ours.
            if let Err(e) = self.engine.reload_session().await {
                tracing::warn!(target: "supasync::live", "reloading the session: {e}");
            }
        }
        self.reconcile().await;
    }

    /// Whether live sync runs here now.
    pub fn is_live(&self) -> bool {
        self.lock().net.is_some()
    }

    /// Start live sync if it should run and does not.
    async fn reconcile(&self) {
        let signed_in = self.engine.session().await.is_ok();
        let (should, running) = {
            let st = self.lock();
            (st.network && !st.closed && signed_in, st.net.is_some())
        };
        if !should || running {
            if !should {
                self.publish_idle().await;
            }
            return;
        }
        let rt = self.realtime_client();
        // Subscribed before live sync starts, so a restore's first progress is heard.
        let mut events = self.engine.subscribe();
        let (live, driver) = LiveSync::new(self.engine.clone(), rt, LiveConfig { mode: self.lock().mode, ..self.cfg.live.clone() });
        let timer = self.runtime.timer();
        self.runtime.spawn(Box::pin(async move {
            if let Err(e) = driver.run(timer).await {
                tracing::warn!(target: "supasync::live", "live sync ended: {e}");
            }
        }));
        if self.lock().paused {
            live.pause();
        }
        // Fan statuses out to every subscriber, across restarts, with the progress of
        // a long pull (a restore) and of an upload merged in as the engine reports them.
        let mut statuses = live.statuses();
        let (stop_tx, mut stop_rx) = mpsc::unbounded::<()>();
        let state = self.state.clone();
        self.runtime.spawn(Box::pin(async move {
            let mut progress: Option<PullProgress> = None;
            let mut upload: Option<FileProgress> = None;
            loop {
                let next = futures_util::select! {
                    s = statuses.next() => s.map(Ok),
                    e = events.next() => match e {
                        Some(EngineEvent::Progress(p)) => Some(Err(Ok(p))),
                        Some(EngineEvent::FileProgress(p)) => Some(Err(Err(p))),
                        Some(_) => continue,
                        None => None,
                    },
                    _ = stop_rx.next() => None,
                };
                let Some(next) = next else { break };
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                let status = match next {
                    Ok(s) => s,
                    Err(report) => {
                        match report {
                            Ok(p) => progress = (!p.done).then_some(p),
                            Err(f) => upload = (!f.done).then_some(f),
                        }
                        match st.last.clone() {
                            Some(s) => s,
                            None => continue,
                        }
                    }
                };
                let status = LiveStatus { progress: progress.clone(), upload: upload.clone(), ..status };
                st.watchers.retain(|w| w.unbounded_send(status.clone()).is_ok());
                st.last = Some(status);
            }
        }));
        let mut st = self.lock();
        if let Some(old) = st.net.replace(Net { live, forward_stop: stop_tx }) {
            old.live.stop();
        }
        // Until live sync publishes, the status says it is starting, not the idle
        // status from before it ran (`paused`).
        let phase = starting_phase(&st);
        if let Some(last) = st.last.as_mut().filter(|l| l.phase == Phase::Paused) {
            last.phase = phase;
        }
    }

    fn stop_net(&self) {
        if let Some(net) = self.lock().net.take() {
            net.live.stop();
            let _ = net.forward_stop.unbounded_send(());
        }
    }

    /// A status for when live sync does not run here (signed out, or another tab leads).
    async fn publish_idle(&self) {
        publish_idle(&self.engine, &self.state).await;
    }

    /// The shared Realtime client (live sync and app channels use one socket).
    fn realtime_client(&self) -> RealtimeClient {
        let mut st = self.lock();
        if let Some(c) = &st.realtime {
            return c.clone();
        }
        let (client, driver) = RealtimeClient::new(&self.cfg.project.url, &self.cfg.project.anon_key, RealtimeConfig::with_clock(R::now_ms));
        // A token change reaches whichever live sync runs at the time.
        let state = self.state.clone();
        let tokens: Arc<dyn AccessTokenSource> = Arc::new(SessionTokens::new(self.engine.clone(), move || {
            if let Some(n) = &state.lock().unwrap_or_else(|p| p.into_inner()).net {
                n.live.token_changed();
            }
        }));
        let (ws, timer) = (self.runtime.ws(), self.runtime.timer());
        self.runtime.spawn(Box::pin(driver.run(ws, timer, Some(tokens))));
        st.realtime = Some(client.clone());
        client
    }

    /// Status changes, starting with the current status.
    pub fn statuses(&self) -> mpsc::UnboundedReceiver<LiveStatus> {
        let (tx, rx) = mpsc::unbounded();
        let mut st = self.lock();
        if let Some(l) = &st.last {
            let _ = tx.unbounded_send(l.clone());
        }
        st.watchers.push(tx);
        rx
    }

    /// The last status (live sync's, or an idle one computed when it does not run).
    pub async fn status(&self) -> Result<LiveStatus, EngineError> {
        self.check_open()?;
        let s = self.engine.status().await?;
        let (phase, mode, last_error) = self.phase();
        Ok(LiveStatus { phase, mode, pending: s.pending, rejected: s.rejected, last_sync: s.last_sync, last_error, progress: None, upload: None })
    }

    /// Live sync's phase, mode and last error now: the part of [`Replica::status`] that
    /// needs no store read.
    pub fn phase(&self) -> (Phase, SyncMode, Option<String>) {
        let st = self.lock();
        match (&st.net, &st.last) {
            (Some(_), Some(l)) => (l.phase, l.mode, l.last_error.clone()),
            // Live sync runs but has not said anything yet.
            (Some(_), None) => (starting_phase(&st), st.mode, None),
            (None, _) => (Phase::Paused, st.mode, None),
        }
    }

    /// Realtime, every N ms, or manual.
    pub fn set_mode(&self, mode: SyncMode) {
        let mut st = self.lock();
        st.mode = mode;
        if let Some(n) = &st.net {
            n.live.set_mode(mode);
        }
    }

    pub fn pause(&self) {
        let mut st = self.lock();
        st.paused = true;
        if let Some(n) = &st.net {
            n.live.pause();
        }
    }

    pub fn resume(&self) {
        let mut st = self.lock();
        st.paused = false;
        if let Some(n) = &st.net {
            n.live.resume();
        }
    }

    /// Push and pull once now. Where live sync runs this goes through it (so it is
    /// ordered with the channel); elsewhere it syncs directly.
    pub async fn sync_now(&self) -> Result<(), EngineError> {
        self.check_open()?;
        let live = self.lock().net.as_ref().map(|n| n.live.clone());
        match live {
            Some(l) => l.sync_now().await.map_err(EngineError::Live),
            None => self.engine.sync().await.map(|_| ()),
        }
    }

    /// Push then pull until no write waits, or until `timeout_ms` (as `supasync sync`).
    pub async fn sync(&self, timeout_ms: u64) -> Result<Settled, EngineError> {
        self.check_open()?;
        self.engine.sync_until_settled(&self.runtime.timer(), Backoff { initial_ms: 200, max_ms: 5_000 }, timeout_ms).await
    }

    /// An app channel for broadcast and presence, on the replica's socket.
    pub fn channel(&self, name: &str, presence_key: Option<String>) -> Result<Channel, EngineError> {
        self.check_open()?;
        let config = ChannelConfig { postgres_changes: vec![], broadcast_self: false, broadcast_ack: true, presence_key };
        Ok(self.realtime_client().channel(name, &config))
    }

    /// Stop live sync, close the socket; later calls fail with [`EngineError::Closed`].
    pub fn close(&self) {
        self.stop_net();
        let mut st = self.lock();
        st.closed = true;
        st.watchers.clear();
        if let Some(rt) = st.realtime.take() {
            rt.disconnect();
        }
    }

    /// Whether [`Replica::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Tell live sync that a write happened elsewhere (another tab of this replica):
    /// it pushes as after a local write, and live queries here re-run.
    pub fn changed_elsewhere(&self, tables: Vec<String>, local: bool) {
        self.engine.notify_changed(tables, local);
    }
}

/// The phase live sync starts in: connecting, unless paused or in manual mode.
fn starting_phase(st: &State) -> Phase {
    if st.paused || st.mode == SyncMode::Manual {
        Phase::Paused
    } else {
        Phase::Connecting
    }
}

/// Publish a status computed from the store, for when live sync does not run.
async fn publish_idle<S: Store, H: Http>(engine: &Engine<S, H>, state: &Mutex<State>) {
    let Ok(s) = engine.status().await else { return };
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    let status = LiveStatus {
        phase: Phase::Paused,
        mode: st.mode,
        pending: s.pending,
        rejected: s.rejected,
        last_sync: s.last_sync,
        last_error: None,
        progress: None,
        upload: None,
    };
    if st.last.as_ref() != Some(&status) {
        st.watchers.retain(|w| w.unbounded_send(status.clone()).is_ok());
        st.last = Some(status);
    }
}
