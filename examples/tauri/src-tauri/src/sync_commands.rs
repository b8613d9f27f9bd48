//! The replica as Tauri commands and events: the shell between the web UI and
//! supasync-native. Every command translates JSON in and out and calls the replica;
//! nothing here decides anything about sync. Errors reach JavaScript as
//! `{kind, message}` (the kinds of the CLI and the npm package), which the UI's
//! `SupaSyncError` carries.
//!
//! Events: `supasync://status` (every status, across sign-ins), `supasync://user`
//! (after sign-in and sign-out), `supasync://rows` (`{id, rows}` or `{id, error}` for
//! the live query started under `id`), `supasync://channel` (`{id, event}`).

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use supasync_native::core::live::SyncMode;
use supasync_native::core::realtime::ChannelHandle;
use supasync_native::core::{Cardinality, EngineError, Query, SelectOptions, SelectRequest};
use supasync_native::NativeReplica;
use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Emitter, State};

/// A failure as JavaScript sees it.
#[derive(Debug, Serialize)]
pub struct CommandError {
    kind: String,
    message: String,
    /// A refused local query: PostgREST's code.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
}

impl CommandError {
    fn new(kind: &str, message: impl ToString) -> CommandError {
        CommandError { kind: kind.into(), message: message.to_string(), code: None }
    }
}

impl From<EngineError> for CommandError {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::Select(s) => Some(s.code.clone()),
            _ => None,
        };
        CommandError { code, ..CommandError::new(e.kind(), e) }
    }
}

type Answer<T = Value> = Result<T, CommandError>;

fn to_json(v: impl Serialize) -> Answer {
    serde_json::to_value(v).map_err(|e| CommandError::new("store", e))
}

/// The app's replica and what runs on its behalf.
pub struct SyncState {
    replica: NativeReplica,
    device: String,
    lives: Mutex<HashMap<u32, JoinHandle<()>>>,
    channels: Mutex<HashMap<u32, (ChannelHandle, JoinHandle<()>)>>,
}

impl SyncState {
    pub fn new(replica: NativeReplica, device: String) -> SyncState {
        SyncState { replica, device, lives: Mutex::default(), channels: Mutex::default() }
    }

    /// Emit every status to the UI for as long as the replica is open.
    pub fn forward_statuses(&self, app: AppHandle) -> Result<(), EngineError> {
        let mut statuses = Box::pin(self.replica.statuses()?);
        tauri::async_runtime::spawn(async move {
            while let Some(s) = statuses.next().await {
                let _ = app.emit("supasync://status", &s);
            }
        });
        Ok(())
    }

    /// Stop everything (the app exits).
    pub async fn close(&self) {
        for (_, t) in lock(&self.lives).drain() {
            t.abort();
        }
        for (_, (h, t)) in lock(&self.channels).drain() {
            h.leave();
            t.abort();
        }
        self.replica.close().await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn user_changed(app: &AppHandle, db: &NativeReplica) -> Answer {
    let user = to_json(db.user().await?)?;
    let _ = app.emit("supasync://user", &user);
    Ok(user)
}

#[tauri::command]
async fn device_name(state: State<'_, SyncState>) -> Answer<String> {
    Ok(state.device.clone())
}

#[tauri::command]
async fn sign_up(app: AppHandle, state: State<'_, SyncState>, email: String, password: String) -> Answer {
    state.replica.sign_up(&email, &password).await?;
    user_changed(&app, &state.replica).await
}

#[tauri::command]
async fn sign_in(app: AppHandle, state: State<'_, SyncState>, email: String, password: String) -> Answer {
    state.replica.sign_in(&email, &password).await?;
    user_changed(&app, &state.replica).await
}

#[tauri::command]
async fn sign_out(app: AppHandle, state: State<'_, SyncState>, wipe: bool) -> Answer {
    state.replica.sign_out(wipe).await?;
    user_changed(&app, &state.replica).await
}

#[tauri::command]
async fn user(state: State<'_, SyncState>) -> Answer {
    to_json(state.replica.user().await?)
}

#[tauri::command]
async fn insert(state: State<'_, SyncState>, table: String, row: Value) -> Answer {
    to_json(state.replica.insert(&table, &row).await?)
}

#[tauri::command]
async fn update(state: State<'_, SyncState>, table: String, local_id: String, fields: Value) -> Answer {
    to_json(state.replica.update(&table, &local_id, &fields).await?)
}

/// A queued call of a server function on a row (sharing a conversation, say).
#[tauri::command]
async fn queue_call(state: State<'_, SyncState>, table: String, local_id: String, function: String, args: Value, effect: Value) -> Answer {
    to_json(state.replica.call(&table, &local_id, &function, &args, &effect).await?)
}

#[tauri::command]
async fn delete(state: State<'_, SyncState>, table: String, local_id: String) -> Answer<()> {
    Ok(state.replica.delete(&table, &local_id).await?)
}

#[tauri::command]
async fn get(state: State<'_, SyncState>, table: String, local_id: String) -> Answer {
    to_json(state.replica.get(&table, &local_id).await?)
}

fn query_of(q: &Value) -> Answer<Query> {
    Query::from_json(q).map_err(|e| CommandError::new("invalid", e))
}

#[tauri::command]
async fn query(state: State<'_, SyncState>, table: String, query: Value) -> Answer {
    to_json(state.replica.query(&table, &query_of(&query)?).await?)
}

/// Start a live query; its results arrive as `supasync://rows` events under `id`.
#[tauri::command]
async fn live_start(app: AppHandle, state: State<'_, SyncState>, id: u32, table: String, query: Value) -> Answer<()> {
    let mut rows = Box::pin(state.replica.live(&table, query_of(&query)?)?);
    let task = tauri::async_runtime::spawn(async move {
        while let Some(next) = rows.next().await {
            let ev = match next {
                Ok(rows) => json!({"id": id, "rows": rows}),
                Err(e) => json!({"id": id, "error": CommandError::from(e)}),
            };
            let _ = app.emit("supasync://rows", ev);
        }
    });
    if let Some(old) = lock(&state.lives).insert(id, task) {
        old.abort();
    }
    Ok(())
}

/// A URL-syntax query and its `{count, cardinality}` options.
fn select_of(url: &str, options: Value) -> Answer<(SelectRequest, Cardinality)> {
    let options: SelectOptions = if options.is_null() {
        SelectOptions::default()
    } else {
        serde_json::from_value(options).map_err(|e| CommandError::new("invalid", format!("options: {e}")))?
    };
    let req = SelectRequest::parse(url).map_err(EngineError::from)?;
    Ok((req.with_options(options), options.cardinality))
}

/// A query in PostgREST's URL syntax, answered from the replica.
#[tauri::command]
async fn select(state: State<'_, SyncState>, url: String, options: Value) -> Answer {
    let (req, cardinality) = select_of(&url, options)?;
    Ok(state.replica.select(&req).await?.to_json(cardinality))
}

/// `select`, live: its answers arrive as `supasync://rows` events under `id`.
#[tauri::command]
async fn live_select_start(app: AppHandle, state: State<'_, SyncState>, id: u32, url: String, options: Value) -> Answer<()> {
    let (req, cardinality) = select_of(&url, options)?;
    let mut answers = Box::pin(state.replica.live_select(req)?);
    let task = tauri::async_runtime::spawn(async move {
        while let Some(next) = answers.next().await {
            let ev = match next {
                Ok(a) => json!({"id": id, "answer": a.to_json(cardinality)}),
                Err(e) => json!({"id": id, "error": CommandError::from(e)}),
            };
            let _ = app.emit("supasync://rows", ev);
        }
    });
    if let Some(old) = lock(&state.lives).insert(id, task) {
        old.abort();
    }
    Ok(())
}

#[tauri::command]
async fn live_stop(state: State<'_, SyncState>, id: u32) -> Answer<()> {
    if let Some(t) = lock(&state.lives).remove(&id) {
        t.abort();
    }
    Ok(())
}

#[tauri::command]
async fn sync(state: State<'_, SyncState>, timeout_ms: u64) -> Answer {
    to_json(state.replica.sync(timeout_ms).await?)
}

#[tauri::command]
async fn sync_now(state: State<'_, SyncState>) -> Answer<()> {
    Ok(state.replica.sync_now().await?)
}

#[tauri::command]
async fn status(state: State<'_, SyncState>) -> Answer {
    to_json(state.replica.status().await?)
}

#[tauri::command]
async fn rejected(state: State<'_, SyncState>) -> Answer {
    to_json(state.replica.rejected().await?)
}

#[tauri::command]
async fn retry(state: State<'_, SyncState>, local_id: String) -> Answer<()> {
    Ok(state.replica.retry(&local_id).await?)
}

#[tauri::command]
async fn discard(state: State<'_, SyncState>, local_id: String) -> Answer<()> {
    Ok(state.replica.discard(&local_id).await?)
}

#[tauri::command]
async fn history(state: State<'_, SyncState>, limit: usize) -> Answer {
    to_json(state.replica.history(limit).await?)
}

/// Files: kept in the replica at once, uploaded before the messages that name them.
#[tauri::command]
async fn upload_file(state: State<'_, SyncState>, bucket: String, path: String, data: Vec<u8>, content_type: String) -> Answer {
    to_json(state.replica.upload_file(&bucket, &path, data, &content_type).await?)
}

#[tauri::command]
async fn file(state: State<'_, SyncState>, bucket: String, path: String) -> Answer {
    to_json(state.replica.file(&bucket, &path).await?)
}

#[tauri::command]
async fn files(state: State<'_, SyncState>, bucket: String) -> Answer {
    to_json(state.replica.files(&bucket).await?)
}

/// The bytes as a binary answer (an `ArrayBuffer` in the webview, not a JSON array).
#[tauri::command]
async fn read_file(state: State<'_, SyncState>, bucket: String, path: String) -> Result<tauri::ipc::Response, CommandError> {
    Ok(tauri::ipc::Response::new(state.replica.read_file(&bucket, &path).await?))
}

#[tauri::command]
async fn remove_file(state: State<'_, SyncState>, bucket: String, path: String) -> Answer {
    state.replica.remove_file(&bucket, &path).await?;
    Ok(Value::Null)
}

/// `"realtime"`, `"manual"` or `{everyMs: N}` (the npm package's SyncMode).
#[tauri::command]
async fn set_mode(state: State<'_, SyncState>, mode: Value) -> Answer<()> {
    let m = match &mode {
        Value::String(s) if s == "realtime" => SyncMode::Realtime,
        Value::String(s) if s == "manual" => SyncMode::Manual,
        v => match v.get("everyMs").and_then(Value::as_u64) {
            Some(ms) if ms >= 1 => SyncMode::Every { ms },
            _ => return Err(CommandError::new("invalid", format!("unknown sync mode {mode}: 'realtime', 'manual' or {{everyMs: N}}"))),
        },
    };
    Ok(state.replica.set_mode(m)?)
}

#[tauri::command]
async fn pause(state: State<'_, SyncState>) -> Answer<()> {
    Ok(state.replica.pause()?)
}

#[tauri::command]
async fn resume(state: State<'_, SyncState>) -> Answer<()> {
    Ok(state.replica.resume()?)
}

/// Join a broadcast and presence channel; its events arrive as `supasync://channel`.
#[tauri::command]
async fn channel_join(app: AppHandle, state: State<'_, SyncState>, id: u32, name: String, presence_key: Option<String>) -> Answer<()> {
    let (handle, mut events) = state.replica.channel(&name, presence_key)?.split();
    let task = tauri::async_runtime::spawn(async move {
        while let Some(ev) = events.next().await {
            if let Some(event) = ev.app_json() {
                let _ = app.emit("supasync://channel", json!({"id": id, "event": event}));
            }
        }
    });
    if let Some((old, t)) = lock(&state.channels).insert(id, (handle, task)) {
        old.leave();
        t.abort();
    }
    Ok(())
}

fn channel(state: &SyncState, id: u32) -> Answer<ChannelHandle> {
    lock(&state.channels).get(&id).map(|(h, _)| h.clone()).ok_or_else(|| CommandError::new("not_found", format!("no channel {id}: it was left")))
}

#[tauri::command]
async fn channel_send(state: State<'_, SyncState>, id: u32, event: String, payload: Value) -> Answer<()> {
    channel(&state, id)?.broadcast(&event, payload).await.map_err(|e| CommandError::new("server", e))
}

#[tauri::command]
async fn channel_track(state: State<'_, SyncState>, id: u32, payload: Value) -> Answer<()> {
    channel(&state, id)?.track(payload).await.map_err(|e| CommandError::new("server", e))
}

#[tauri::command]
async fn channel_untrack(state: State<'_, SyncState>, id: u32) -> Answer<()> {
    channel(&state, id)?.untrack().await.map_err(|e| CommandError::new("server", e))
}

#[tauri::command]
async fn channel_leave(state: State<'_, SyncState>, id: u32) -> Answer<()> {
    if let Some((h, t)) = lock(&state.channels).remove(&id) {
        h.leave();
        t.abort();
    }
    Ok(())
}

/// Every command above, for `Builder::invoke_handler`.
pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        device_name,
        sign_up,
        sign_in,
        sign_out,
        user,
        insert,
        update,
        queue_call,
        delete,
        get,
        query,
        live_start,
        live_stop,
        select,
        live_select_start,
        sync,
        sync_now,
        status,
        rejected,
        retry,
        discard,
        history,
        upload_file,
        file,
        files,
        read_file,
        remove_file,
        set_mode,
        pause,
        resume,
        channel_join,
        channel_send,
        channel_track,
        channel_untrack,
        channel_leave,
    ]
}
