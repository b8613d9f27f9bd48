//! The replica of whoever is signed in on this device. A [`Replica`] is one store, and
//! a store holds one user's data; an app, though, has one replica object for its whole
//! life while users sign in, out, and in as someone else. [`DeviceReplica`] is that
//! object: it keeps each user's replica in that user's own store (so signing out and
//! back in finds the data, and a second user on the device never sees the first's),
//! uses a throwaway store while nobody is signed in, remembers who was signed in last,
//! and moves live queries and status subscribers to the new user's replica at sign-in.
//!
//! Every platform needs exactly this, so it lives here once; a platform says only
//! where a user's store is ([`UserStores`]: a directory of SQLite files natively).
//! The sign-in request goes straight to Auth, not through the current replica's
//! engine, so that signing in as B never writes B's session into A's store.

use std::sync::{Arc, Mutex};

use futures_channel::mpsc;
use futures_util::future::Either;
use futures_util::stream::{self, Stream};
use futures_util::StreamExt;
use serde_json::Value;

use crate::net::auth::{self, Session};
use crate::net::client::Client;
use crate::app::engine::{EngineError, Query, RowView};
use crate::app::files::FileView;
use crate::app::live::{LiveStatus, SyncMode};
use crate::app::live_query::{live_query, live_select};
use crate::select::{self, SelectRequest, SelectResult};
use crate::platform::maybe_send::{BoxCallback, MaybeSend, MaybeSync};
use crate::local::outbox::OutboxEntry;
use crate::net::realtime::Channel;
use crate::app::replica::{Replica, ReplicaConfig, Runtime};
use crate::local::schema::Schema;
use crate::app::settle::Settled;
use crate::local::store::{HistoryEntry, Store, StoreError};
use crate::net::transport::Http;

crate::maybe_async_trait! {
    /// Where a device keeps each user's replica.
    pub trait UserStores: MaybeSend + MaybeSync + 'static {
        type Store: Store + 'static;
        /// The user signed in on this device when the app last ran, if any.
        async fn active_user(&self) -> Option<String>;
        /// Record who is signed in here now (`None`: nobody).
        async fn set_active_user(&self, user_id: Option<&str>) -> Result<(), StoreError>;
        /// Open `user_id`'s store, or a throwaway one for nobody (`None`).
        async fn open(&self, user_id: Option<&str>) -> Result<Self::Store, StoreError>;
        /// Delete `user_id`'s store (it is closed by then).
        async fn wipe(&self, user_id: &str) -> Result<(), StoreError>;
    }
}

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    pub id: String,
    pub email: Option<String>,
}

impl From<&Session> for User {
    fn from(s: &Session) -> User {
        User { id: s.user_id.clone(), email: s.email.clone() }
    }
}

type Inner<U, H, R> = Replica<<U as UserStores>::Store, H, R>;

struct State<U: UserStores, H: Http + 'static, R: Runtime> {
    current: Arc<Inner<U, H, R>>,
    /// Called with every new current replica, under this lock, so that the streams
    /// following it subscribe before it starts syncing; dropped at close, which ends
    /// them. A follower that returns false (its stream was dropped) is forgotten.
    followers: Vec<BoxCallback<Arc<Inner<U, H, R>>>>,
    mode: SyncMode,
    paused: bool,
    closed: bool,
}

/// The replica of the user signed in on this device (see the module docs).
pub struct DeviceReplica<U: UserStores, H: Http + Clone + 'static, R: Runtime> {
    schema: Schema,
    stores: U,
    http: H,
    runtime: R,
    cfg: ReplicaConfig,
    state: Mutex<State<U, H, R>>,
    /// One sign-in, sign-out or close at a time.
    switching: futures_util::lock::Mutex<()>,
}

impl<U: UserStores, H: Http + Clone + 'static, R: Runtime> DeviceReplica<U, H, R> {
    /// Open the replica of the user signed in here last (live sync starts at once),
    /// or a signed-out one until someone signs in.
    pub async fn open(schema: Schema, stores: U, http: H, runtime: R, cfg: ReplicaConfig) -> Result<Self, EngineError> {
        let user = stores.active_user().await;
        let mode = cfg.live.mode;
        let store = stores.open(user.as_deref()).await?;
        let current = Arc::new(Replica::open(schema.clone(), store, http.clone(), runtime.clone(), cfg.clone(), None).await?);
        Ok(DeviceReplica {
            schema,
            stores,
            http,
            runtime,
            cfg,
            state: Mutex::new(State { current, followers: Vec::new(), mode, paused: false, closed: false }),
            switching: futures_util::lock::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<U, H, R>> {
        // Plain fields: a panic elsewhere cannot leave them half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The signed-in user's replica now (it changes at sign-in and sign-out).
    pub fn current(&self) -> Result<Arc<Inner<U, H, R>>, EngineError> {
        self.current_with(|_| ())
    }

    /// The current replica, after `change` to the device's settings under the same lock
    /// (so a replica switched in at the same time gets them: see `switch_to`).
    fn current_with(&self, change: impl FnOnce(&mut State<U, H, R>)) -> Result<Arc<Inner<U, H, R>>, EngineError> {
        let mut st = self.lock();
        if st.closed {
            return Err(EngineError::Closed);
        }
        change(&mut st);
        Ok(st.current.clone())
    }

    /// The schema the replica syncs.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Create an account and sign in: that user's replica opens, live sync starts.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<User, EngineError> {
        self.sign(email, password, true).await
    }

    /// Sign in: the user's replica on this device opens (or is created), live sync starts.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<User, EngineError> {
        self.sign(email, password, false).await
    }

    async fn sign(&self, email: &str, password: &str, new_account: bool) -> Result<User, EngineError> {
        self.current()?;
        let client = Client::new(self.cfg.project.clone(), self.http.clone());
        let now = R::now_ms() / 1000;
        let session = if new_account {
            auth::sign_up(&client, email, password, now).await
        } else {
            auth::sign_in(&client, email, password, now).await
        }
        .map_err(EngineError::Auth)?;
        self.adopt_session(session).await
    }

    /// Move to the user of a session obtained elsewhere (the app's own Auth client).
    pub async fn adopt_session(&self, session: Session) -> Result<User, EngineError> {
        let _one = self.switching.lock().await;
        self.current()?;
        let store = self.stores.open(Some(&session.user_id)).await?;
        // Quiet until the followers have moved to it, then live sync starts.
        let next = self.open_replica(store, false).await?;
        next.adopt_session(session.clone()).await?;
        self.stores.set_active_user(Some(&session.user_id)).await?;
        let next = self.switch_to(next);
        if self.cfg.network {
            next.set_network(true).await;
        }
        Ok(User::from(&session))
    }

    /// Sign out: live sync stops and a signed-out replica takes over; `wipe` also
    /// deletes the user's replica from this device.
    pub async fn sign_out(&self, wipe: bool) -> Result<(), EngineError> {
        let _one = self.switching.lock().await;
        let old = self.current()?;
        let user = old.engine().session().await.ok().map(|s| s.user_id);
        old.sign_out(wipe).await?;
        let store = self.stores.open(None).await?;
        let next = self.open_replica(store, true).await?;
        self.stores.set_active_user(None).await?;
        self.switch_to(next);
        drop(old);
        if let (true, Some(u)) = (wipe, user) {
            self.stores.wipe(&u).await?;
        }
        Ok(())
    }

    async fn open_replica(&self, store: U::Store, network: bool) -> Result<Inner<U, H, R>, EngineError> {
        let (mode, paused) = {
            let st = self.lock();
            (st.mode, st.paused)
        };
        let mut cfg = self.cfg.clone();
        cfg.live.mode = mode;
        cfg.network = network && self.cfg.network;
        let r = Replica::open(self.schema.clone(), store, self.http.clone(), self.runtime.clone(), cfg, None).await?;
        if paused {
            r.pause();
        }
        Ok(r)
    }

    fn switch_to(&self, next: Inner<U, H, R>) -> Arc<Inner<U, H, R>> {
        let next = Arc::new(next);
        let old = {
            let mut st = self.lock();
            // A pause or a mode the app set while `next` was opening (a sign-in awaits
            // its store) went to the replica it replaces: it holds for `next` too.
            // Under the lock, so no pause() or resume() falls between.
            next.set_mode(st.mode);
            if st.paused {
                next.pause();
            }
            st.followers.retain_mut(|follow| follow(&next));
            std::mem::replace(&mut st.current, next.clone())
        };
        old.close();
        next
    }

    /// The signed-in user, if any.
    pub async fn user(&self) -> Result<Option<User>, EngineError> {
        Ok(self.current()?.engine().session().await.ok().map(|s| User::from(&s)))
    }

    /// A stream made by `make` from the current replica, then from each next one (made
    /// at the switch, before the new replica syncs), for as long as this one is open.
    fn follow<T, S>(&self, make: impl Fn(&Arc<Inner<U, H, R>>) -> S + MaybeSend + 'static) -> Result<impl Stream<Item = T> + MaybeSend + 'static, EngineError>
    where
        T: MaybeSend + 'static,
        S: Stream<Item = T> + Unpin + MaybeSend + 'static,
    {
        let mut st = self.lock();
        if st.closed {
            return Err(EngineError::Closed);
        }
        let (tx, rx) = mpsc::unbounded();
        let _ = tx.unbounded_send(make(&st.current));
        st.followers.push(Box::new(move |next| tx.unbounded_send(make(next)).is_ok()));
        Ok(latest(rx))
    }

    /// Write a new row locally (durable at once); it is pushed when possible.
    pub async fn insert(&self, table: &str, row: &Value) -> Result<RowView, EngineError> {
        self.current()?.engine().insert(table, row).await
    }

    /// Change some fields of a row, by local id.
    pub async fn update(&self, table: &str, local_id: &str, fields: &Value) -> Result<RowView, EngineError> {
        self.current()?.engine().update(table, local_id, fields).await
    }

    pub async fn delete(&self, table: &str, local_id: &str) -> Result<(), EngineError> {
        self.current()?.engine().delete(table, local_id).await
    }

    /// Queue a call of a server function on a row (see [`crate::engine::Engine::call`]).
    pub async fn call(&self, table: &str, local_id: &str, function: &str, args: &Value, effect: &Value) -> Result<RowView, EngineError> {
        self.current()?.engine().call(table, local_id, function, args, effect).await
    }

    pub async fn get(&self, table: &str, local_id: &str) -> Result<Option<RowView>, EngineError> {
        self.current()?.engine().get(table, local_id).await
    }

    pub async fn query(&self, table: &str, q: &Query) -> Result<Vec<RowView>, EngineError> {
        self.current()?.engine().query(table, q).await
    }

    /// A query in PostgREST's language (`messages?select=*,conversations(title)&…`, or
    /// [`SelectRequest::from`]'s builder), answered from the replica.
    pub async fn select(&self, req: &SelectRequest) -> Result<SelectResult, EngineError> {
        self.current()?.engine().select(req).await
    }

    /// A query's answer now and after every change that alters it, across sign-ins.
    /// An invalid query is refused at once.
    pub fn live_select(&self, req: SelectRequest) -> Result<impl Stream<Item = Result<SelectResult, EngineError>> + MaybeSend + 'static, EngineError> {
        select::tables_read(&self.current()?.engine().schema, &req)?;
        self.follow(move |r| answers_of(r, req.clone()))
    }

    /// The query's rows now and after every change that alters them, across sign-ins
    /// (a new user's replica runs the query again). Ends when the replica closes.
    pub fn live(&self, table: &str, q: Query) -> Result<impl Stream<Item = Result<Vec<RowView>, EngineError>> + MaybeSend + 'static, EngineError> {
        self.current()?.engine().schema.table(table)?;
        let table = table.to_string();
        self.follow(move |r| rows_of(r, &table, q.clone()))
    }

    /// Status snapshots, now and on every change, across sign-ins. Ends at close.
    pub fn statuses(&self) -> Result<impl Stream<Item = LiveStatus> + MaybeSend + 'static, EngineError> {
        self.follow(|r| r.statuses())
    }

    /// The status now (live sync's phase, and counts read from the store).
    pub async fn status(&self) -> Result<LiveStatus, EngineError> {
        self.current()?.status().await
    }

    /// Push then pull until no write waits, or until `timeout_ms`.
    pub async fn sync(&self, timeout_ms: u64) -> Result<Settled, EngineError> {
        self.current()?.sync(timeout_ms).await
    }

    /// Push and pull once, now.
    pub async fn sync_now(&self) -> Result<(), EngineError> {
        self.current()?.sync_now().await
    }

    /// Writes the server refused, each with its reason.
    pub async fn rejected(&self) -> Result<Vec<OutboxEntry>, EngineError> {
        self.current()?.engine().rejected().await
    }

    /// Queue a refused write again.
    pub async fn retry(&self, local_id: &str) -> Result<(), EngineError> {
        self.current()?.engine().retry(local_id).await
    }

    /// Drop a refused write; the row goes back to the server's version.
    pub async fn discard(&self, local_id: &str) -> Result<(), EngineError> {
        self.current()?.engine().discard(local_id).await
    }

    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, EngineError> {
        self.current()?.engine().history(limit).await
    }

    /// Keep a file here at once and queue its upload (see
    /// [`crate::engine::Engine::upload_file`]).
    pub async fn upload_file(&self, bucket: &str, path: &str, bytes: Vec<u8>, content_type: &str) -> Result<FileView, EngineError> {
        self.current()?.engine().upload_file(bucket, path, bytes, content_type).await
    }

    /// What this device knows of a file (its status and whether it is kept here).
    pub async fn file(&self, bucket: &str, path: &str) -> Result<Option<FileView>, EngineError> {
        self.current()?.engine().file(bucket, path).await
    }

    /// The files of a bucket this device knows.
    pub async fn files(&self, bucket: &str) -> Result<Vec<FileView>, EngineError> {
        self.current()?.engine().files(bucket).await
    }

    /// A file's bytes: kept here, else downloaded (and kept within the cache budget).
    pub async fn read_file(&self, bucket: &str, path: &str) -> Result<Vec<u8>, EngineError> {
        self.current()?.engine().read_file(bucket, path).await
    }

    /// Remove a file here at once, and from Storage by the push.
    pub async fn remove_file(&self, bucket: &str, path: &str) -> Result<(), EngineError> {
        self.current()?.engine().remove_file(bucket, path).await
    }

    /// Realtime, every N ms, or manual; kept across sign-ins.
    pub fn set_mode(&self, mode: SyncMode) -> Result<(), EngineError> {
        let current = self.current_with(|st| st.mode = mode)?;
        current.set_mode(mode);
        Ok(())
    }

    /// Stop background sync until [`DeviceReplica::resume`]; kept across sign-ins.
    pub fn pause(&self) -> Result<(), EngineError> {
        let current = self.current_with(|st| st.paused = true)?;
        current.pause();
        Ok(())
    }

    pub fn resume(&self) -> Result<(), EngineError> {
        let current = self.current_with(|st| st.paused = false)?;
        current.resume();
        Ok(())
    }

    /// A broadcast and presence channel on the current user's socket (join it again
    /// after a sign-in: channels belong to the user who joined them).
    pub fn channel(&self, name: &str, presence_key: Option<String>) -> Result<Channel, EngineError> {
        self.current()?.channel(name, presence_key)
    }

    /// Stop syncing and release the store: live queries and status streams end, later
    /// calls fail with [`EngineError::Closed`].
    pub async fn close(&self) {
        let _one = self.switching.lock().await;
        let mut st = self.lock();
        st.closed = true;
        st.followers.clear();
        st.current.close();
    }

    /// Whether [`DeviceReplica::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// A live query on `replica` as a stream.
fn rows_of<S: Store + 'static, H: Http + 'static, R: Runtime>(
    replica: &Replica<S, H, R>,
    table: &str,
    q: Query,
) -> std::pin::Pin<Box<impl Stream<Item = Result<Vec<RowView>, EngineError>> + MaybeSend + 'static>> {
    let lq = live_query(replica.engine(), table, q);
    Box::pin(stream::unfold(lq, |mut lq| async move { lq.next().await.map(|r| (r, lq)) }))
}

/// A live select on `replica` as a stream (a query refused here ends it after its error).
fn answers_of<S: Store + 'static, H: Http + 'static, R: Runtime>(
    replica: &Replica<S, H, R>,
    req: SelectRequest,
) -> std::pin::Pin<Box<impl Stream<Item = Result<SelectResult, EngineError>> + MaybeSend + 'static>> {
    let first = live_select(replica.engine(), req);
    Box::pin(stream::unfold(Some(first), |state| async move {
        match state? {
            Ok(mut ls) => ls.next().await.map(|r| (r, Some(Ok(ls)))),
            Err(e) => Some((Err(e), None)),
        }
    }))
}

/// The items of the latest stream in `streams`: when a new stream arrives, the old one
/// is dropped. Ends when `streams` ends (the replica closed).
fn latest<T, S, SS>(streams: SS) -> impl Stream<Item = T> + MaybeSend + 'static
where
    T: MaybeSend + 'static,
    S: Stream<Item = T> + Unpin + MaybeSend + 'static,
    SS: Stream<Item = S> + Unpin + MaybeSend + 'static,
{
    stream::unfold((streams, None::<S>), |(mut streams, mut cur)| async move {
        loop {
            let Some(c) = cur.as_mut() else {
                cur = Some(streams.next().await?);
                continue;
            };
            let step = match futures_util::future::select(streams.next(), c.next()).await {
                Either::Left((switched, _)) => Err(switched),
                Either::Right((item, _)) => Ok(item),
            };
            match step {
                Err(Some(next)) => cur = Some(next),
                Err(None) => return None,
                Ok(Some(item)) => return Some((item, (streams, cur))),
                // The current replica's stream ended (it was closed): wait for the next.
                Ok(None) => cur = Some(streams.next().await?),
            }
        }
    })
}
