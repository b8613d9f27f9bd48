//! The exported replica. It holds the core's `Replica` for the signed-in user (in that
//! user's SQLite file under the replica directory, the CLI's layout) or, while nobody
//! is signed in, one in memory; signing in moves to the user's file.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{json, Value};
use supasync_core::auth::{self, Session};
use supasync_core::client::{Client, Project};
use supasync_core::live::SyncMode;
use supasync_core::live_query::live_query;
use supasync_core::realtime::{ChannelEvent, ChannelHandle, PresenceChange};
use supasync_core::{Query, Replica, ReplicaConfig, Schema};
use supasync_native::{system_now_ms, ReplicaDir, ReqwestHttp, SqliteStore, TokioRuntime};
use tokio::sync::RwLock;

use crate::runtime::{run, spawn};
use crate::subscription::{ChannelListener, RowsListener, StatusListener, Subscription};
use crate::SupaSyncError;

type Inner = Replica<SqliteStore, ReqwestHttp, TokioRuntime>;

fn invalid(m: impl ToString) -> SupaSyncError {
    SupaSyncError::new("invalid", m)
}

fn parse(text: &str, what: &str) -> Result<Value, SupaSyncError> {
    serde_json::from_str(text).map_err(|e| invalid(format!("{what}: not JSON: {e}")))
}

fn text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| json!({"error": e.to_string()}).to_string())
}

fn parse_mode(mode: &str) -> Result<SyncMode, SupaSyncError> {
    match mode {
        "realtime" => Ok(SyncMode::Realtime),
        "manual" => Ok(SyncMode::Manual),
        m => match m.strip_prefix("every:").and_then(|n| n.parse::<u64>().ok()) {
            Some(ms) if ms >= 1 => Ok(SyncMode::Every { ms }),
            _ => Err(invalid(format!("unknown sync mode `{m}`: realtime, manual or every:<ms>"))),
        },
    }
}

/// One user's replica on this device.
#[derive(uniffi::Object)]
pub struct FfiReplica {
    schema: Schema,
    project: Project,
    dir: Option<ReplicaDir>,
    inner: RwLock<Arc<Inner>>,
    /// Set at close: every subscription ends.
    closed: tokio::sync::watch::Sender<bool>,
}

/// Open the replica of the user signed in on this device (`path` is the replica
/// directory; without one, the replica lives in memory). `schema_json` is the CLI's
/// JSON schema. Live sync starts by itself while a user is signed in.
#[uniffi::export]
pub async fn open_replica(url: String, anon_key: String, schema_json: String, path: Option<String>) -> Result<Arc<FfiReplica>, SupaSyncError> {
    run(async move {
        let schema = Schema::from_json(&schema_json).map_err(|e| invalid(format!("schema: {e}")))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!("url: `{url}` is not an http(s) URL")));
        }
        let project = Project { url: url.trim_end_matches('/').to_string(), anon_key };
        let dir = path.map(ReplicaDir::new);
        let user = dir.as_ref().and_then(|d| d.active_user());
        let inner = open_inner(&schema, &project, dir.as_ref(), user.as_deref()).await?;
        let (closed, _) = tokio::sync::watch::channel(false);
        Ok(Arc::new(FfiReplica { schema, project, dir, inner: RwLock::new(Arc::new(inner)), closed }))
    })
    .await
}

async fn open_inner(schema: &Schema, project: &Project, dir: Option<&ReplicaDir>, user: Option<&str>) -> Result<Inner, SupaSyncError> {
    let store = match (dir, user) {
        (Some(d), Some(u)) => d.open_store(u),
        _ => SqliteStore::in_memory(),
    }
    .map_err(|e| SupaSyncError::new("store", e))?;
    let http = ReqwestHttp::new().map_err(|e| SupaSyncError::new("config", e))?;
    let cfg = ReplicaConfig::new(&project.url, &project.anon_key);
    Ok(Replica::open(schema.clone(), store, http, TokioRuntime, cfg, None).await?)
}

/// What ends a subscription: its handle cancelled or dropped, or the replica closed.
struct Ends {
    stop: futures_channel::oneshot::Receiver<()>,
    closed: tokio::sync::watch::Receiver<bool>,
}

impl Ends {
    /// `fut`'s output, or `None` once the subscription has ended.
    async fn before<T>(&mut self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            _ = &mut self.stop => None,
            _ = self.closed.wait_for(|c| *c) => None,
            out = fut => Some(out),
        }
    }
}

impl FfiReplica {
    fn subscription(&self) -> (Arc<Subscription>, Ends) {
        let (sub, stop) = Subscription::new();
        (sub, Ends { stop, closed: self.closed.subscribe() })
    }

    async fn current(&self) -> Arc<Inner> {
        self.inner.read().await.clone()
    }

    /// Move to `session`'s user: their store, this session, live sync on.
    async fn enter(&self, session: Session) -> Result<String, SupaSyncError> {
        let inner = open_inner(&self.schema, &self.project, self.dir.as_ref(), Some(&session.user_id)).await?;
        inner.adopt_session(session.clone()).await?;
        if let Some(d) = &self.dir {
            d.set_active_user(&session.user_id).map_err(|e| SupaSyncError::new("store", e))?;
        }
        let old = std::mem::replace(&mut *self.inner.write().await, Arc::new(inner));
        old.close();
        Ok(text(&json!({"id": session.user_id, "email": session.email})))
    }

    async fn sign(&self, email: String, password: String, new_account: bool) -> Result<String, SupaSyncError> {
        if self.current().await.is_closed() {
            return Err(SupaSyncError::new("closed", "the replica is closed"));
        }
        let client = Client::new(self.project.clone(), ReqwestHttp::new().map_err(|e| SupaSyncError::new("config", e))?);
        let now = system_now_ms() / 1000;
        let session = if new_account {
            auth::sign_up(&client, &email, &password, now).await
        } else {
            auth::sign_in(&client, &email, &password, now).await
        }
        .map_err(|e| SupaSyncError::new("auth", e))?;
        self.enter(session).await
    }
}

#[uniffi::export]
impl FfiReplica {
    /// Create an account and sign in; returns `{id, email}`.
    pub async fn sign_up(self: Arc<Self>, email: String, password: String) -> Result<String, SupaSyncError> {
        run(async move { self.sign(email, password, true).await }).await
    }

    /// Sign in; returns `{id, email}`. The user's replica on this device opens.
    pub async fn sign_in(self: Arc<Self>, email: String, password: String) -> Result<String, SupaSyncError> {
        run(async move { self.sign(email, password, false).await }).await
    }

    /// Sign out; `wipe` also deletes this user's replica from the device.
    pub async fn sign_out(self: Arc<Self>, wipe: bool) -> Result<(), SupaSyncError> {
        run(async move {
            let inner = self.current().await;
            let user = inner.engine().session().await.ok().map(|s| s.user_id);
            inner.sign_out(wipe).await?;
            let fresh = open_inner(&self.schema, &self.project, None, None).await?;
            let old = std::mem::replace(&mut *self.inner.write().await, Arc::new(fresh));
            old.close();
            drop(old);
            drop(inner);
            if let (Some(d), Some(u)) = (&self.dir, user) {
                d.clear_active_user();
                if wipe {
                    d.wipe(&u);
                }
            }
            Ok(())
        })
        .await
    }

    /// The signed-in user as `{id, email}`, or none.
    pub async fn user(self: Arc<Self>) -> Result<Option<String>, SupaSyncError> {
        run(async move {
            Ok(match self.current().await.engine().session().await {
                Ok(s) => Some(text(&json!({"id": s.user_id, "email": s.email}))),
                Err(_) => None,
            })
        })
        .await
    }

    /// Write a new row locally; returns `{local_id, row, status}`.
    pub async fn insert(self: Arc<Self>, table: String, row_json: String) -> Result<String, SupaSyncError> {
        run(async move {
            let row = parse(&row_json, "row")?;
            Ok(text(&self.current().await.engine().insert(&table, &row).await?))
        })
        .await
    }

    pub async fn update(self: Arc<Self>, table: String, local_id: String, fields_json: String) -> Result<String, SupaSyncError> {
        run(async move {
            let fields = parse(&fields_json, "fields")?;
            Ok(text(&self.current().await.engine().update(&table, &local_id, &fields).await?))
        })
        .await
    }

    pub async fn delete(self: Arc<Self>, table: String, local_id: String) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.current().await.engine().delete(&table, &local_id).await?) }).await
    }

    pub async fn get(self: Arc<Self>, table: String, local_id: String) -> Result<Option<String>, SupaSyncError> {
        run(async move { Ok(self.current().await.engine().get(&table, &local_id).await?.map(|r| text(&r))) }).await
    }

    /// Rows as a JSON array; `query_json` is `{where, order, limit}`.
    pub async fn query(self: Arc<Self>, table: String, query_json: String) -> Result<String, SupaSyncError> {
        run(async move {
            let q = Query::from_json(&parse(&query_json, "query")?).map_err(invalid)?;
            Ok(text(&self.current().await.engine().query(&table, &q).await?))
        })
        .await
    }

    /// Push then pull until no write waits, or until `timeout_ms` (as `supasync sync`).
    pub async fn sync(self: Arc<Self>, timeout_ms: u64) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.current().await.sync(timeout_ms).await?)) }).await
    }

    pub async fn sync_now(self: Arc<Self>) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.current().await.sync_now().await?) }).await
    }

    pub async fn status(self: Arc<Self>) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.current().await.status().await?)) }).await
    }

    /// Writes the server refused, each with its reason (`rejected`).
    pub async fn rejected(self: Arc<Self>) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.current().await.engine().rejected().await?)) }).await
    }

    pub async fn retry(self: Arc<Self>, local_id: String) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.current().await.engine().retry(&local_id).await?) }).await
    }

    pub async fn discard(self: Arc<Self>, local_id: String) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.current().await.engine().discard(&local_id).await?) }).await
    }

    pub async fn history(self: Arc<Self>, limit: u32) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.current().await.engine().history(limit as usize).await?)) }).await
    }

    /// `realtime`, `manual` or `every:<ms>`.
    pub async fn set_mode(self: Arc<Self>, mode: String) -> Result<(), SupaSyncError> {
        let m = parse_mode(&mode)?;
        run(async move {
            self.current().await.set_mode(m);
            Ok(())
        })
        .await
    }

    pub async fn pause(self: Arc<Self>) -> Result<(), SupaSyncError> {
        run(async move {
            self.current().await.pause();
            Ok(())
        })
        .await
    }

    pub async fn resume(self: Arc<Self>) -> Result<(), SupaSyncError> {
        run(async move {
            self.current().await.resume();
            Ok(())
        })
        .await
    }

    /// A live query: `listener.on_rows` now and after every change that alters the
    /// rows. Start it after sign-in: it follows the replica it was started on.
    pub async fn live(self: Arc<Self>, table: String, query_json: String, listener: Arc<dyn RowsListener>) -> Result<Arc<Subscription>, SupaSyncError> {
        run(async move {
            let q = Query::from_json(&parse(&query_json, "query")?).map_err(invalid)?;
            let inner = self.current().await;
            inner.engine().schema.table(&table).map_err(invalid)?;
            let mut lq = live_query(inner.engine(), &table, q);
            let (sub, mut ends) = self.subscription();
            spawn(async move {
                while let Some(Some(next)) = ends.before(lq.next()).await {
                    match next {
                        Ok(rows) => listener.on_rows(text(&rows)),
                        Err(e) => {
                            listener.on_error(e.kind().into(), e.to_string());
                            break;
                        }
                    }
                }
                listener.on_end();
            })?;
            Ok(sub)
        })
        .await
    }

    /// Status snapshots: now and on every change.
    pub async fn statuses(self: Arc<Self>, listener: Arc<dyn StatusListener>) -> Result<Arc<Subscription>, SupaSyncError> {
        run(async move {
            let inner = self.current().await;
            let mut st = inner.statuses();
            let (sub, mut ends) = self.subscription();
            spawn(async move {
                while let Some(Some(s)) = ends.before(st.next()).await {
                    listener.on_status(text(&s));
                }
                listener.on_end();
            })?;
            Ok(sub)
        })
        .await
    }

    /// A broadcast (acknowledged) and presence channel on the replica's socket.
    pub async fn channel(self: Arc<Self>, name: String, presence_key: Option<String>, listener: Arc<dyn ChannelListener>) -> Result<Arc<FfiChannel>, SupaSyncError> {
        run(async move {
            let (handle, mut events) = self.current().await.channel(&name, presence_key)?.split();
            spawn(async move {
                while let Some(ev) = events.next().await {
                    let v = match ev {
                        ChannelEvent::State(s) => json!({"type": "state", "state": s}),
                        ChannelEvent::Broadcast { event, payload } => json!({"type": "broadcast", "event": event, "payload": payload}),
                        ChannelEvent::PresenceSync(state) => json!({"type": "presence", "state": state}),
                        ChannelEvent::Presence(PresenceChange::Join { key, metas }) => json!({"type": "join", "key": key, "metas": metas}),
                        ChannelEvent::Presence(PresenceChange::Leave { key, metas }) => json!({"type": "leave", "key": key, "metas": metas}),
                        _ => continue,
                    };
                    listener.on_event(v.to_string());
                }
            })?;
            Ok(Arc::new(FfiChannel { handle }))
        })
        .await
    }

    /// Stop syncing and release the replica; later calls fail with kind `closed`.
    /// (Not `close`: generated Kotlin classes are `AutoCloseable`, whose `close` frees
    /// the native handle.)
    pub async fn close_replica(self: Arc<Self>) -> Result<(), SupaSyncError> {
        run(async move {
            self.current().await.close();
            self.closed.send_replace(true);
            Ok(())
        })
        .await
    }
}

/// A Realtime channel: broadcast and presence.
#[derive(uniffi::Object)]
pub struct FfiChannel {
    handle: ChannelHandle,
}

#[uniffi::export]
impl FfiChannel {
    /// Broadcast; returns when the server acknowledged it.
    pub async fn send(self: Arc<Self>, event: String, payload_json: String) -> Result<(), SupaSyncError> {
        run(async move {
            let p = parse(&payload_json, "payload")?;
            self.handle.broadcast(&event, p).await.map_err(|e| SupaSyncError::new("server", e))
        })
        .await
    }

    pub async fn track(self: Arc<Self>, payload_json: String) -> Result<(), SupaSyncError> {
        run(async move {
            let p = parse(&payload_json, "presence payload")?;
            self.handle.track(p).await.map_err(|e| SupaSyncError::new("server", e))
        })
        .await
    }

    pub async fn untrack(self: Arc<Self>) -> Result<(), SupaSyncError> {
        run(async move { self.handle.untrack().await.map_err(|e| SupaSyncError::new("server", e)) }).await
    }

    pub fn leave(&self) {
        self.handle.leave();
    }
}
