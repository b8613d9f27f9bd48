//! The wasm-bindgen surface: a thin translation of the core's [`Replica`] into
//! JavaScript values. The npm package's TypeScript module (`js/index.ts`) wraps these
//! classes into the documented API (`openReplica`, `SupaSyncError`, several tabs);
//! nothing here decides anything about sync.
//!
//! Values cross as plain JSON-compatible JS objects and errors are thrown as
//! `{kind, message}` objects with the same kinds as the CLI's JSON errors (see
//! [`crate::js`]); opening a replica is [`crate::open`].

use std::rc::Rc;

use futures_channel::oneshot;
use futures_util::{FutureExt, StreamExt};
use supasync_core::auth::Session;
use supasync_core::events::EngineEvent;
use supasync_core::live_query::{live_query, live_select};
use supasync_core::realtime::{ChannelEvent, ChannelHandle};
use supasync_core::{Cardinality, EngineError, Query, SelectOptions, SelectRequest};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;

use crate::js::{engine_err, error, from_js, invalid, promise, to_js};
use crate::open::{self, parse_mode, Inner};
use crate::answers::{ShownRowViews, ShownSelects};
use crate::any_store::AnyStore;
use crate::IdbStore;

/// A local write's answer as the npm wrapper reads it (see `Engine::update_counted`).
#[derive(serde::Serialize)]
struct CountedJs<T> {
    view: T,
    waiting: Option<i64>,
}

impl<T> CountedJs<T> {
    fn of(c: supasync_core::engine::Counted<T>) -> CountedJs<T> {
        CountedJs { view: c.value, waiting: c.waiting }
    }
}

/// A JS function that stops a live answer (once; later calls do nothing).
fn stop_function(stop_tx: oneshot::Sender<()>) -> js_sys::Function {
    let stop = std::cell::RefCell::new(Some(stop_tx));
    let f = Closure::<dyn FnMut()>::new(move || {
        if let Some(t) = stop.borrow_mut().take() {
            let _ = t.send(());
        }
    });
    f.into_js_value().unchecked_into()
}

/// A URL-syntax query and its `{count, cardinality}` options.
fn select_request(url: &str, options: JsValue) -> Result<(SelectRequest, Cardinality), JsValue> {
    let options: SelectOptions = if options.is_undefined() || options.is_null() {
        SelectOptions::default()
    } else {
        serde_json::from_value(from_js(options, "options")?).map_err(|e| invalid(format!("options: {e}")))?
    };
    let req = SelectRequest::parse(url).map_err(|e| engine_err(e.into()))?;
    Ok((req.with_options(options), options.cardinality))
}

/// A signed-in session, opaque to JavaScript: tokens never become JS strings, so an
/// app cannot log them by accident. It can be handed to another replica
/// ([`WasmReplica::adopt_session`]) when the wrapper moves to the user's database.
#[wasm_bindgen]
pub struct WasmSession(Session);

#[wasm_bindgen]
impl WasmSession {
    #[wasm_bindgen(getter, js_name = userId)]
    pub fn user_id(&self) -> String {
        self.0.user_id.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn email(&self) -> Option<String> {
        self.0.email.clone()
    }
}

/// One replica (the wrapper's `Replica` class forwards to it).
#[wasm_bindgen]
pub struct WasmReplica {
    inner: Rc<Inner>,
    database: Option<String>,
}

/// Open a replica: `{url, anonKey, schema, database?, connection?, accessToken?, mode?,
/// network?}`. Without `database` the store is in memory.
#[wasm_bindgen(js_name = openWasmReplica)]
pub fn open_wasm_replica(options: JsValue) -> js_sys::Promise {
    promise(async move {
        let (inner, database) = open::open(&options).await?;
        Ok(WasmReplica { inner: Rc::new(inner), database }.into())
    })
}

/// Delete a replica's IndexedDB database (sign-out with wipe).
#[wasm_bindgen(js_name = deleteDatabase)]
pub fn delete_database(name: String) -> js_sys::Promise {
    promise(async move {
        IdbStore::delete(&name).await.map_err(|e| error("store", e))?;
        Ok(JsValue::UNDEFINED)
    })
}

fn parse_query(q: &JsValue) -> Result<Query, JsValue> {
    if q.is_undefined() || q.is_null() {
        return Ok(Query::default());
    }
    Query::from_json(&from_js(q.clone(), "query")?).map_err(invalid)
}

#[wasm_bindgen]
impl WasmReplica {
    fn promise<F>(&self, f: impl FnOnce(Rc<Inner>) -> F) -> js_sys::Promise
    where
        F: std::future::Future<Output = Result<JsValue, JsValue>> + 'static,
    {
        promise(f(self.inner.clone()))
    }

    /// The IndexedDB database name, or undefined for an in-memory replica.
    #[wasm_bindgen(getter)]
    pub fn database(&self) -> Option<String> {
        self.database.clone()
    }

    #[wasm_bindgen(js_name = signUp)]
    pub fn sign_up(&self, email: String, password: String) -> js_sys::Promise {
        self.promise(|r| async move { Ok(WasmSession(r.sign_up(&email, &password).await.map_err(engine_err)?).into()) })
    }

    #[wasm_bindgen(js_name = signIn)]
    pub fn sign_in(&self, email: String, password: String) -> js_sys::Promise {
        self.promise(|r| async move { Ok(WasmSession(r.sign_in(&email, &password).await.map_err(engine_err)?).into()) })
    }

    /// Keep a session signed in elsewhere (another replica of this page).
    #[wasm_bindgen(js_name = adoptSession)]
    pub fn adopt_session(&self, session: &WasmSession) -> js_sys::Promise {
        let s = session.0.clone();
        self.promise(|r| async move {
            r.adopt_session(s).await.map_err(engine_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The signed-in session (`undefined` when signed out).
    pub fn session(&self) -> js_sys::Promise {
        self.promise(|r| async move {
            Ok(match r.engine().session().await {
                Ok(s) => WasmSession(s).into(),
                Err(EngineError::NotSignedIn) => JsValue::UNDEFINED,
                Err(e) => return Err(engine_err(e)),
            })
        })
    }

    #[wasm_bindgen(js_name = signOut)]
    pub fn sign_out(&self, wipe: bool) -> js_sys::Promise {
        self.promise(|r| async move {
            r.sign_out(wipe).await.map_err(engine_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    pub fn insert(&self, table: String, row: JsValue) -> js_sys::Promise {
        self.promise(|r| async move {
            let row = from_js(row, "row")?;
            to_js(&r.engine().insert(&table, &row).await.map_err(engine_err)?)
        })
    }

    /// `{ view, waiting }`: the row's view, and how the write changed the count of
    /// waiting writes (null when unknown), so the wrapper's status needs no read.
    pub fn update(&self, table: String, local_id: String, fields: JsValue) -> js_sys::Promise {
        self.promise(|r| async move {
            let fields = from_js(fields, "fields")?;
            to_js(&CountedJs::of(r.engine().update_counted(&table, &local_id, &fields).await.map_err(engine_err)?))
        })
    }

    /// `{ view, waiting }`, as [`WasmReplica::update`].
    pub fn call(&self, table: String, local_id: String, function: String, args: JsValue, effect: JsValue) -> js_sys::Promise {
        self.promise(|r| async move {
            let args = from_js(args, "args")?;
            let effect = from_js(effect, "effect")?;
            to_js(&CountedJs::of(r.engine().call_counted(&table, &local_id, &function, &args, &effect).await.map_err(engine_err)?))
        })
    }

    /// `{ view: null, waiting }`, as [`WasmReplica::update`].
    pub fn delete(&self, table: String, local_id: String) -> js_sys::Promise {
        self.promise(|r| async move { to_js(&CountedJs::of(r.engine().delete_counted(&table, &local_id).await.map_err(engine_err)?)) })
    }

    pub fn get(&self, table: String, local_id: String) -> js_sys::Promise {
        self.promise(|r| async move { to_js(&r.engine().get(&table, &local_id).await.map_err(engine_err)?) })
    }

    pub fn query(&self, table: String, query: JsValue) -> js_sys::Promise {
        self.promise(|r| async move {
            let q = parse_query(&query)?;
            to_js(&r.engine().query(&table, &q).await.map_err(engine_err)?)
        })
    }

    /// A query in PostgREST's URL syntax answered from the replica: `{data, count, sync}`.
    pub fn select(&self, url: String, options: JsValue) -> js_sys::Promise {
        self.promise(|r| async move {
            let (req, cardinality) = select_request(&url, options)?;
            to_js(&r.engine().select(&req).await.map_err(engine_err)?.to_json(cardinality))
        })
    }

    /// Keep `data` as `bucket/path` in IndexedDB at once and queue its upload.
    #[wasm_bindgen(js_name = uploadFile)]
    pub fn upload_file(&self, bucket: String, path: String, data: Vec<u8>, content_type: String) -> js_sys::Promise {
        self.promise(|r| async move { to_js(&r.engine().upload_file(&bucket, &path, data, &content_type).await.map_err(engine_err)?) })
    }

    /// What this tab's replica knows of a file (`undefined`: nothing).
    pub fn file(&self, bucket: String, path: String) -> js_sys::Promise {
        self.promise(|r| async move { to_js(&r.engine().file(&bucket, &path).await.map_err(engine_err)?) })
    }

    pub fn files(&self, bucket: String) -> js_sys::Promise {
        self.promise(|r| async move { to_js(&r.engine().files(&bucket).await.map_err(engine_err)?) })
    }

    /// A file's bytes (`Uint8Array`): from IndexedDB when kept, else downloaded and kept.
    #[wasm_bindgen(js_name = readFile)]
    pub fn read_file(&self, bucket: String, path: String) -> js_sys::Promise {
        self.promise(|r| async move {
            let bytes = r.engine().read_file(&bucket, &path).await.map_err(engine_err)?;
            Ok(js_sys::Uint8Array::from(&bytes[..]).into())
        })
    }

    #[wasm_bindgen(js_name = removeFile)]
    pub fn remove_file(&self, bucket: String, path: String) -> js_sys::Promise {
        self.promise(|r| async move {
            r.engine().remove_file(&bucket, &path).await.map_err(engine_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// [`WasmReplica::select`], live: `callback(answer)` now and after every change to a
    /// table the query reads that alters the answer; returns the function that stops it.
    #[wasm_bindgen(js_name = liveSelect, unchecked_return_type = "() => void")]
    pub fn live_select(&self, url: String, options: JsValue, callback: js_sys::Function, on_error: js_sys::Function) -> Result<js_sys::Function, JsValue> {
        let (req, cardinality) = select_request(&url, options)?;
        let mut ls = live_select(self.inner.engine(), req).map_err(engine_err)?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        spawn_local(async move {
            let mut stop_rx = stop_rx.fuse();
            let mut shown = ShownSelects::default();
            loop {
                let next = futures_util::select! {
                    n = ls.next().fuse() => n,
                    _ = stop_rx => None,
                };
                match next {
                    Some(Ok(answer)) => {
                        if let Ok(v) = shown.answer(answer, cardinality) {
                            let _ = callback.call1(&JsValue::NULL, &v);
                        }
                    }
                    Some(Err(e)) => {
                        let _ = on_error.call1(&JsValue::NULL, &engine_err(e));
                        break;
                    }
                    None => break,
                }
            }
        });
        Ok(stop_function(stop_tx))
    }

    /// Call `callback(rows)` with the query's result now and after every change that
    /// alters it; returns the function that stops it.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn live(&self, table: String, query: JsValue, callback: js_sys::Function, on_error: js_sys::Function) -> Result<js_sys::Function, JsValue> {
        let q = parse_query(&query)?;
        self.inner.engine().schema.table(&table).map_err(invalid)?;
        let mut lq = live_query(self.inner.engine(), &table, q);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        spawn_local(async move {
            let mut stop_rx = stop_rx.fuse();
            let mut shown = ShownRowViews::default();
            loop {
                let next = futures_util::select! {
                    n = lq.next().fuse() => n,
                    _ = stop_rx => None,
                };
                match next {
                    Some(Ok(rows)) => {
                        if let Ok(v) = shown.answer(rows) {
                            let _ = callback.call1(&JsValue::NULL, &v);
                        }
                    }
                    Some(Err(e)) => {
                        let _ = on_error.call1(&JsValue::NULL, &engine_err(e));
                    }
                    None => break,
                }
            }
        });
        Ok(stop_function(stop_tx))
    }

    /// `callback({tables, local})` after every change this replica makes (not those
    /// reported by [`WasmReplica::changed_elsewhere`]): the wrapper tells the other tabs.
    #[wasm_bindgen(js_name = onChange)]
    pub fn on_change(&self, callback: js_sys::Function) {
        let mut events = self.inner.engine().subscribe();
        spawn_local(async move {
            while let Some(event) = events.next().await {
                let EngineEvent::Changed { tables, local, elsewhere: false, .. } = event else { continue };
                if let Ok(v) = to_js(&serde_json::json!({"tables": tables, "local": local})) {
                    let _ = callback.call1(&JsValue::NULL, &v);
                }
            }
        });
    }

    /// `callback({count, reason})` each time the IndexedDB connection is reopened after
    /// the browser (or a tab upgrading the database) closed it; never for a replica in
    /// memory. The wrapper puts it in the status.
    #[wasm_bindgen(js_name = onReopened)]
    pub fn on_reopened(&self, callback: js_sys::Function) {
        if let AnyStore::Idb(s) = &self.inner.engine().store {
            s.on_reopened(move |count, reason| {
                if let Ok(v) = to_js(&serde_json::json!({"count": count, "reason": reason})) {
                    let _ = callback.call1(&JsValue::NULL, &v);
                }
            });
        }
    }

    /// The schema's tables, by name.
    #[wasm_bindgen(js_name = tableNames)]
    pub fn table_names(&self) -> Vec<String> {
        self.inner.engine().schema.tables().iter().map(|t| t.name.clone()).collect()
    }

    /// Another tab changed these tables in the shared store.
    #[wasm_bindgen(js_name = changedElsewhere)]
    pub fn changed_elsewhere(&self, tables: Vec<String>, local: bool) {
        self.inner.changed_elsewhere(tables, local);
    }

    /// Background network work on or off (the leading tab has it on).
    #[wasm_bindgen(js_name = setNetwork)]
    pub fn set_network(&self, on: bool) -> js_sys::Promise {
        self.promise(|r| async move {
            r.set_network(on).await;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = isLive)]
    pub fn is_live(&self) -> bool {
        self.inner.is_live()
    }

    pub fn sync(&self, timeout_ms: f64) -> js_sys::Promise {
        self.promise(|r| async move { to_js(&r.sync(timeout_ms.max(0.0) as u64).await.map_err(engine_err)?) })
    }

    #[wasm_bindgen(js_name = syncNow)]
    pub fn sync_now(&self) -> js_sys::Promise {
        self.promise(|r| async move {
            r.sync_now().await.map_err(engine_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `{phase, mode, last_error}` now, without the counts (no store read).
    #[wasm_bindgen(js_name = phaseNow)]
    pub fn phase_now(&self) -> Result<JsValue, JsValue> {
        let (phase, mode, last_error) = self.inner.phase();
        to_js(&serde_json::json!({"phase": phase, "mode": mode, "last_error": last_error}))
    }

    pub fn status(&self) -> js_sys::Promise {
        self.promise(|r| async move { to_js(&r.status().await.map_err(engine_err)?) })
    }

    /// `callback(status)` now and on every change of status; returns the stop function.
    #[wasm_bindgen(js_name = onStatus, unchecked_return_type = "() => void")]
    pub fn on_status(&self, callback: js_sys::Function) -> js_sys::Function {
        let mut statuses = self.inner.statuses();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        spawn_local(async move {
            let mut stop_rx = stop_rx.fuse();
            loop {
                let next = futures_util::select! {
                    s = statuses.next() => s,
                    _ = stop_rx => None,
                };
                let Some(s) = next else { break };
                if let Ok(v) = to_js(&s) {
                    let _ = callback.call1(&JsValue::NULL, &v);
                }
            }
        });
        let stop = std::cell::RefCell::new(Some(stop_tx));
        Closure::<dyn FnMut()>::new(move || {
            if let Some(t) = stop.borrow_mut().take() {
                let _ = t.send(());
            }
        })
        .into_js_value()
        .unchecked_into()
    }

    pub fn rejected(&self) -> js_sys::Promise {
        self.promise(|r| async move { to_js(&r.engine().rejected().await.map_err(engine_err)?) })
    }

    pub fn retry(&self, local_id: String) -> js_sys::Promise {
        self.promise(|r| async move {
            r.engine().retry(&local_id).await.map_err(engine_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    pub fn discard(&self, local_id: String) -> js_sys::Promise {
        self.promise(|r| async move {
            r.engine().discard(&local_id).await.map_err(engine_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    pub fn history(&self, limit: f64) -> js_sys::Promise {
        self.promise(|r| async move { to_js(&r.engine().history(limit.max(0.0) as usize).await.map_err(engine_err)?) })
    }

    #[wasm_bindgen(js_name = setMode)]
    pub fn set_mode(&self, mode: JsValue) -> Result<(), JsValue> {
        self.inner.set_mode(parse_mode(&mode)?);
        Ok(())
    }

    pub fn pause(&self) {
        self.inner.pause();
    }

    pub fn resume(&self) {
        self.inner.resume();
    }

    /// A broadcast and presence channel on the replica's socket.
    pub fn channel(&self, name: String, presence_key: Option<String>) -> Result<WasmChannel, JsValue> {
        let (handle, events) = self.inner.channel(&name, presence_key).map_err(engine_err)?.split();
        Ok(WasmChannel { handle, events: std::cell::RefCell::new(Some(events)) })
    }

    pub fn close(&self) {
        self.inner.close();
    }
}

/// A Realtime channel for broadcast (acknowledged) and presence.
#[wasm_bindgen]
pub struct WasmChannel {
    handle: ChannelHandle,
    events: std::cell::RefCell<Option<futures_channel::mpsc::UnboundedReceiver<ChannelEvent>>>,
}

#[wasm_bindgen]
impl WasmChannel {
    /// Broadcast `payload` as `event`; resolves when the server acknowledged it.
    pub fn send(&self, event: String, payload: JsValue) -> js_sys::Promise {
        let ch = self.handle.clone();
        promise(async move {
            let p = from_js(payload, "payload")?;
            ch.broadcast(&event, p).await.map_err(|e| error("server", e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    pub fn track(&self, payload: JsValue) -> js_sys::Promise {
        let ch = self.handle.clone();
        promise(async move {
            let p = from_js(payload, "presence payload")?;
            ch.track(p).await.map_err(|e| error("server", e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    pub fn untrack(&self) -> js_sys::Promise {
        let ch = self.handle.clone();
        promise(async move {
            ch.untrack().await.map_err(|e| error("server", e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `callback(event)` for each event: `{type: 'state', state}`,
    /// `{type: 'broadcast', event, payload}`, `{type: 'presence', state}` (the whole
    /// picture), `{type: 'join' | 'leave', key, metas}`. Once per channel.
    pub fn listen(&self, callback: js_sys::Function) -> Result<(), JsValue> {
        let mut events = self.events.borrow_mut().take().ok_or_else(|| invalid("listen() is called once per channel"))?;
        spawn_local(async move {
            while let Some(ev) = events.next().await {
                let Some(v) = ev.app_json() else { continue };
                if let Ok(v) = to_js(&v) {
                    let _ = callback.call1(&JsValue::NULL, &v);
                }
            }
        });
        Ok(())
    }

    pub fn leave(&self) {
        self.handle.leave();
    }
}
