//! The exported replica: the core's `DeviceReplica` on native ground (the replica of
//! whoever is signed in, in that user's SQLite file under the replica directory, the
//! CLI's layout). Every method translates JSON text in and out; moving between users
//! at sign-in, and live queries that follow, are the core's.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{json, Value};
use supasync_core::live::SyncMode;
use supasync_core::realtime::ChannelHandle;
use supasync_core::{Cardinality, Query, ReplicaConfig, Schema, SelectOptions, SelectRequest};
use supasync_native::{EncryptionKey, NativeReplica};

use crate::callback_gate::{deliver, release};
use crate::runtime::{run, spawn};
use crate::subscription::{ChannelListener, RowsListener, StatusListener, Subscription};
use crate::SupaSyncError;

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

/// A URL-syntax query and its options (`{"count", "cardinality"}`).
fn select_request(url: &str, options_json: &str) -> Result<(SelectRequest, Cardinality), SupaSyncError> {
    let options: SelectOptions = if options_json.trim().is_empty() {
        SelectOptions::default()
    } else {
        serde_json::from_value(parse(options_json, "options")?).map_err(|e| invalid(format!("options: {e}")))?
    };
    let req = SelectRequest::parse(url).map_err(supasync_core::EngineError::from)?;
    Ok((req.with_options(options), options.cardinality))
}

/// The replica of the user signed in on this device.
#[derive(uniffi::Object)]
pub struct FfiReplica {
    inner: NativeReplica,
    /// Where `file_url` writes files for native views: the replica directory, or a
    /// temporary one for a replica in memory.
    files_root: std::path::PathBuf,
}

/// Open the replica of the user signed in on this device (`path` is the replica
/// directory; without one, the replica lives in memory). `schema_json` is the CLI's
/// JSON schema. Live sync starts by itself while a user is signed in.
#[uniffi::export]
pub async fn open_replica(url: String, anon_key: String, schema_json: String, path: Option<String>) -> Result<Arc<FfiReplica>, SupaSyncError> {
    open_with(url, anon_key, schema_json, path, None).await
}

/// [`open_replica`] encrypted at rest: every user's store in `path` is an AEGIS-256
/// (SQLite3MC) file under a key derived from `encryption_key` (32 bytes, kept in the platform's
/// keychain by the app). Plaintext stores there are encrypted as they open, pending
/// writes kept; a key that does not open them fails with kind `key`.
#[uniffi::export]
pub async fn open_encrypted_replica(
    url: String,
    anon_key: String,
    schema_json: String,
    path: String,
    encryption_key: Vec<u8>,
) -> Result<Arc<FfiReplica>, SupaSyncError> {
    let key = EncryptionKey::from_bytes(&encryption_key).map_err(supasync_core::EngineError::Store)?;
    open_with(url, anon_key, schema_json, Some(path), Some(key)).await
}

/// Change the key of the replica in `path` (closed) from `old_key` (`None`: it is
/// plaintext) to `new_key`, every user's store included. Run it again with the same
/// keys if it stopped half way.
#[uniffi::export]
pub fn rekey_replica(path: String, old_key: Option<Vec<u8>>, new_key: Vec<u8>) -> Result<(), SupaSyncError> {
    let key = |b: &[u8]| EncryptionKey::from_bytes(b).map_err(supasync_core::EngineError::Store);
    let old = old_key.as_deref().map(key).transpose()?;
    Ok(supasync_native::rekey_replica(std::path::Path::new(&path), old, key(&new_key)?)?)
}

async fn open_with(url: String, anon_key: String, schema_json: String, path: Option<String>, key: Option<EncryptionKey>) -> Result<Arc<FfiReplica>, SupaSyncError> {
    run(async move {
        let schema = Schema::from_json(&schema_json).map_err(|e| invalid(format!("schema: {e}")))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!("url: `{url}` is not an http(s) URL")));
        }
        let cfg = ReplicaConfig::new(&url, &anon_key);
        let inner = match (path.as_deref(), key) {
            (Some(p), Some(k)) => supasync_native::open_encrypted_replica(schema, cfg, std::path::Path::new(p), k).await?,
            (p, _) => supasync_native::open_replica(schema, cfg, p.map(std::path::Path::new)).await?,
        };
        let files_root = match &path {
            Some(p) => std::path::PathBuf::from(p),
            None => std::env::temp_dir().join(format!("supasync-files-{}", std::process::id())),
        };
        Ok(Arc::new(FfiReplica { inner, files_root }))
    })
    .await
}

/// Send `items` of a stream to `each` until the subscription is cancelled or the
/// stream ends (the replica closed), then call `end`.
fn forward<T: Send + 'static>(
    mut items: impl futures_util::Stream<Item = T> + Send + Unpin + 'static,
    mut each: impl FnMut(T) -> bool + Send + 'static,
    end: impl FnOnce() + Send + 'static,
) -> Result<Arc<Subscription>, SupaSyncError> {
    let (sub, mut stop) = Subscription::new();
    spawn(async move {
        loop {
            let next = tokio::select! {
                _ = &mut stop => None,
                item = items.next() => item,
            };
            let mut go_on = false;
            if let Some(item) = next {
                deliver(|| go_on = each(item));
            }
            if !go_on {
                break;
            }
        }
        let mut end = Some(end);
        deliver(|| end.take().map_or((), |f| f()));
        release((each, end));
    })?;
    Ok(sub)
}

#[uniffi::export]
impl FfiReplica {
    /// Create an account and sign in; returns `{id, email}`.
    pub async fn sign_up(self: Arc<Self>, email: String, password: String) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.inner.sign_up(&email, &password).await?)) }).await
    }

    /// Sign in; returns `{id, email}`. The user's replica on this device opens.
    pub async fn sign_in(self: Arc<Self>, email: String, password: String) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.inner.sign_in(&email, &password).await?)) }).await
    }

    /// Sign out; `wipe` also deletes this user's replica from the device.
    pub async fn sign_out(self: Arc<Self>, wipe: bool) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.inner.sign_out(wipe).await?) }).await
    }

    /// The signed-in user as `{id, email}`, or none.
    pub async fn user(self: Arc<Self>) -> Result<Option<String>, SupaSyncError> {
        run(async move { Ok(self.inner.user().await?.map(|u| text(&u))) }).await
    }

    /// Write a new row locally; returns `{local_id, row, status}`.
    pub async fn insert(self: Arc<Self>, table: String, row_json: String) -> Result<String, SupaSyncError> {
        run(async move {
            let row = parse(&row_json, "row")?;
            Ok(text(&self.inner.insert(&table, &row).await?))
        })
        .await
    }

    pub async fn update(self: Arc<Self>, table: String, local_id: String, fields_json: String) -> Result<String, SupaSyncError> {
        run(async move {
            let fields = parse(&fields_json, "fields")?;
            Ok(text(&self.inner.update(&table, &local_id, &fields).await?))
        })
        .await
    }

    /// Queue a call of a server function on a row (a usage counter, say): it runs once
    /// on the server; `effect_json` shows at once until its result replaces it.
    pub async fn call(self: Arc<Self>, table: String, local_id: String, function: String, args_json: String, effect_json: String) -> Result<String, SupaSyncError> {
        run(async move {
            let args = parse(&args_json, "args")?;
            let effect = parse(&effect_json, "effect")?;
            Ok(text(&self.inner.call(&table, &local_id, &function, &args, &effect).await?))
        })
        .await
    }

    pub async fn delete(self: Arc<Self>, table: String, local_id: String) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.inner.delete(&table, &local_id).await?) }).await
    }

    pub async fn get(self: Arc<Self>, table: String, local_id: String) -> Result<Option<String>, SupaSyncError> {
        run(async move { Ok(self.inner.get(&table, &local_id).await?.map(|r| text(&r))) }).await
    }

    /// Rows as a JSON array; `query_json` is `{where, order, limit}`.
    pub async fn query(self: Arc<Self>, table: String, query_json: String) -> Result<String, SupaSyncError> {
        run(async move {
            let q = Query::from_json(&parse(&query_json, "query")?).map_err(invalid)?;
            Ok(text(&self.inner.query(&table, &q).await?))
        })
        .await
    }

    /// A query in PostgREST's URL syntax (`messages?select=*,conversations(title)&…`),
    /// answered from the replica: `{"data", "count", "sync"}` as JSON. `options_json`:
    /// `{"count": true, "cardinality": "many" | "one" | "maybe_one"}`, each optional.
    pub async fn select(self: Arc<Self>, url: String, options_json: String) -> Result<String, SupaSyncError> {
        run(async move {
            let (req, cardinality) = select_request(&url, &options_json)?;
            Ok(self.inner.select(&req).await?.to_json(cardinality).to_string())
        })
        .await
    }

    /// [`FfiReplica::select`], live: `listener.on_rows` gets the answer now and after
    /// every change to a table the query reads that alters it.
    pub async fn live_select(self: Arc<Self>, url: String, options_json: String, listener: Arc<dyn RowsListener>) -> Result<Arc<Subscription>, SupaSyncError> {
        run(async move {
            let (req, cardinality) = select_request(&url, &options_json)?;
            let answers = Box::pin(self.inner.live_select(req)?);
            let on_end = listener.clone();
            forward(
                answers,
                move |next| match next {
                    Ok(answer) => {
                        listener.on_rows(answer.to_json(cardinality).to_string());
                        true
                    }
                    Err(e) => {
                        listener.on_error(e.kind().into(), e.to_string());
                        false
                    }
                },
                move || on_end.on_end(),
            )
        })
        .await
    }

    /// Push then pull until no write waits, or until `timeout_ms` (as `supasync sync`).
    pub async fn sync(self: Arc<Self>, timeout_ms: u64) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.inner.sync(timeout_ms).await?)) }).await
    }

    pub async fn sync_now(self: Arc<Self>) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.inner.sync_now().await?) }).await
    }

    pub async fn status(self: Arc<Self>) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.inner.status().await?)) }).await
    }

    /// Writes the server refused, each with its reason (`rejected`).
    pub async fn rejected(self: Arc<Self>) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.inner.rejected().await?)) }).await
    }

    pub async fn retry(self: Arc<Self>, local_id: String) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.inner.retry(&local_id).await?) }).await
    }

    pub async fn discard(self: Arc<Self>, local_id: String) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.inner.discard(&local_id).await?) }).await
    }

    /// Keep `data` as `bucket/path` here at once and queue its upload (it goes before
    /// any row that names it); returns the file as `{bucket, path, size, content_type,
    /// status, reason, cached}`.
    pub async fn upload_file(self: Arc<Self>, bucket: String, path: String, data: Vec<u8>, content_type: String) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.inner.upload_file(&bucket, &path, data, &content_type).await?)) }).await
    }

    /// What this device knows of a file, or none.
    pub async fn file(self: Arc<Self>, bucket: String, path: String) -> Result<Option<String>, SupaSyncError> {
        run(async move { Ok(self.inner.file(&bucket, &path).await?.map(|f| text(&f))) }).await
    }

    /// The files of a bucket this device knows, as a JSON array.
    pub async fn files(self: Arc<Self>, bucket: String) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.inner.files(&bucket).await?)) }).await
    }

    /// A file's bytes: kept here (offline too), else downloaded and kept.
    pub async fn read_file(self: Arc<Self>, bucket: String, path: String) -> Result<Vec<u8>, SupaSyncError> {
        run(async move { Ok(self.inner.read_file(&bucket, &path).await?) }).await
    }

    /// A `file://` URL a native view can show, offline too.
    pub async fn file_url(self: Arc<Self>, bucket: String, path: String) -> Result<String, SupaSyncError> {
        run(async move { Ok(supasync_native::file_url(&self.inner, &self.files_root, &bucket, &path).await?) }).await
    }

    /// Remove a file here at once, and from Storage by the next push.
    pub async fn remove_file(self: Arc<Self>, bucket: String, path: String) -> Result<(), SupaSyncError> {
        run(async move { Ok(self.inner.remove_file(&bucket, &path).await?) }).await
    }

    pub async fn history(self: Arc<Self>, limit: u32) -> Result<String, SupaSyncError> {
        run(async move { Ok(text(&self.inner.history(limit as usize).await?)) }).await
    }

    /// `realtime`, `manual` or `every:<ms>`.
    pub async fn set_mode(self: Arc<Self>, mode: String) -> Result<(), SupaSyncError> {
        let m = parse_mode(&mode)?;
        run(async move {
            Ok(self.inner.set_mode(m)?)
        })
        .await
    }

    pub async fn pause(self: Arc<Self>) -> Result<(), SupaSyncError> {
        run(async move {
            Ok(self.inner.pause()?)
        })
        .await
    }

    pub async fn resume(self: Arc<Self>) -> Result<(), SupaSyncError> {
        run(async move {
            Ok(self.inner.resume()?)
        })
        .await
    }

    /// A live query: `listener.on_rows` now and after every change that alters the
    /// rows, across sign-ins (the new user's rows), until cancelled or closed.
    pub async fn live(self: Arc<Self>, table: String, query_json: String, listener: Arc<dyn RowsListener>) -> Result<Arc<Subscription>, SupaSyncError> {
        run(async move {
            let q = Query::from_json(&parse(&query_json, "query")?).map_err(invalid)?;
            let rows = Box::pin(self.inner.live(&table, q)?);
            let on_end = listener.clone();
            forward(
                rows,
                move |next| match next {
                    Ok(rows) => {
                        listener.on_rows(text(&rows));
                        true
                    }
                    Err(e) => {
                        listener.on_error(e.kind().into(), e.to_string());
                        false
                    }
                },
                move || on_end.on_end(),
            )
        })
        .await
    }

    /// Status snapshots: now and on every change, across sign-ins.
    pub async fn statuses(self: Arc<Self>, listener: Arc<dyn StatusListener>) -> Result<Arc<Subscription>, SupaSyncError> {
        run(async move {
            let statuses = Box::pin(self.inner.statuses()?);
            let on_end = listener.clone();
            forward(
                statuses,
                move |s| {
                    listener.on_status(text(&s));
                    true
                },
                move || on_end.on_end(),
            )
        })
        .await
    }

    /// A broadcast (acknowledged) and presence channel on the replica's socket.
    pub async fn channel(self: Arc<Self>, name: String, presence_key: Option<String>, listener: Arc<dyn ChannelListener>) -> Result<Arc<FfiChannel>, SupaSyncError> {
        run(async move {
            let (handle, mut events) = self.inner.channel(&name, presence_key)?.split();
            spawn(async move {
                while let Some(ev) = events.next().await {
                    let Some(v) = ev.app_json() else { continue };
                    if !deliver(|| listener.on_event(v.to_string())) {
                        break;
                    }
                }
                release(listener);
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
            self.inner.close().await;
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
