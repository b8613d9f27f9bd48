//! IndexedDB's callbacks as futures: one request's result, one transaction's end, one
//! open request with its upgrade and blocked events. This is all the store needs of
//! an IndexedDB wrapper, written on `web-sys` directly (see the crate docs for why not
//! `indexed_db_futures`).
//!
//! A transaction stays active while the microtasks queued by a request's success
//! callback run, and `wasm-bindgen-futures` wakes futures in microtasks, so a store
//! method can `await` one request and issue the next in the same transaction.

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::oneshot;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DomException, IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransaction, IdbVersionChangeEvent};

/// What IndexedDB failed with: the `DOMException`'s name (`QuotaExceededError`,
/// `InvalidStateError`, `VersionError`, …) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdbError {
    pub name: String,
    pub message: String,
}

impl IdbError {
    pub fn new(name: &str, message: impl Into<String>) -> IdbError {
        IdbError { name: name.into(), message: message.into() }
    }

    /// From a thrown value or an `error` property.
    pub fn from_js(v: &JsValue) -> IdbError {
        if let Some(d) = v.dyn_ref::<DomException>() {
            return IdbError::new(&d.name(), d.message());
        }
        if let Some(e) = v.dyn_ref::<js_sys::Error>() {
            return IdbError::new(&String::from(e.name()), String::from(e.message()));
        }
        IdbError::new("Error", format!("{v:?}"))
    }

    /// What a connection the browser closed under the app fails with: a new
    /// transaction throws `InvalidStateError` ("the database connection is closing"),
    /// one in flight aborts with `UnknownError` (Chromium's "Connection is closing",
    /// WebKit's "Connection to Indexed Database server lost") and its requests with
    /// `AbortError`. Reopening and trying again is safe: an aborted transaction applied
    /// nothing.
    pub fn is_lost_connection(&self) -> bool {
        matches!(self.name.as_str(), "InvalidStateError" | "UnknownError" | "AbortError")
    }
}

impl std::fmt::Display for IdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

/// Wait for one request's result. The callbacks are attached at once (not when the
/// future is first polled), so requests issued together can be awaited one by one.
pub fn request(req: IdbRequest) -> impl std::future::Future<Output = Result<JsValue, IdbError>> {
    let (tx, rx) = oneshot::channel::<Result<JsValue, IdbError>>();
    let tx = Rc::new(RefCell::new(Some(tx)));
    let ok_tx = tx.clone();
    let ok_req = req.clone();
    let on_ok = Closure::once(move |_: web_sys::Event| {
        if let Some(t) = ok_tx.borrow_mut().take() {
            let _ = t.send(ok_req.result().map_err(|e| IdbError::from_js(&e)));
        }
    });
    let err_req = req.clone();
    let on_err = Closure::once(move |ev: web_sys::Event| {
        // Handled here: the error still aborts the transaction, which its owner sees.
        ev.prevent_default();
        ev.stop_propagation();
        let e = match err_req.error() {
            Ok(Some(d)) => IdbError::new(&d.name(), d.message()),
            _ => IdbError::new("UnknownError", "the request failed"),
        };
        if let Some(t) = tx.borrow_mut().take() {
            let _ = t.send(Err(e));
        }
    });
    req.set_onsuccess(Some(on_ok.as_ref().unchecked_ref()));
    req.set_onerror(Some(on_err.as_ref().unchecked_ref()));
    let attached = Attached::new(move || {
        req.set_onsuccess(None);
        req.set_onerror(None);
    })
    .keep(on_ok)
    .keep(on_err);
    async move {
        let out = rx.await.unwrap_or_else(|_| Err(IdbError::new("AbortError", "the request was dropped")));
        drop(attached);
        out
    }
}

/// Callbacks attached to an IndexedDB object, detached before they are freed, also
/// when the future waiting for them is dropped half-way (a cancelled live query, a
/// `select!` that took the other branch): a callback freed while still attached would
/// throw "closure invoked after being dropped" when its event fires.
pub struct Attached {
    detach: Option<Box<dyn FnOnce()>>,
    closures: Vec<Box<dyn std::any::Any>>,
}

impl Attached {
    pub fn new(detach: impl FnOnce() + 'static) -> Attached {
        Attached { detach: Some(Box::new(detach)), closures: vec![] }
    }

    /// Keep `c` alive until detached.
    pub fn keep<T: 'static>(mut self, c: T) -> Attached {
        self.closures.push(Box::new(c));
        self
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Some(d) = self.detach.take() {
            d();
        }
        // The closures are freed after this, with the fields.
    }
}

/// Issue a request (or report why it could not be issued).
pub fn issue(r: Result<IdbRequest, JsValue>) -> Result<IdbRequest, IdbError> {
    r.map_err(|e| IdbError::from_js(&e))
}

/// Wait until a transaction commits; its error if it aborts.
///
/// A transaction is never ended with an explicit `IDBTransaction.commit()`: it ends
/// by itself once every request issued in it has succeeded, and is aborted if one
/// failed, as the spec says. After an explicit `commit()` the engines part ways:
/// Firefox commits a transaction whose request failed afterwards, and WebKitGTK 2.50
/// was seen to keep only part of one when its tab closed mid-commit (a confirmation's
/// outbox deletes stayed, its rows and history line did not: writes left pending with
/// nothing to push them; `tabs.test.mjs` caught it about once in six runs under load).
/// Letting the transaction end by itself costs nothing measurable here: the browser
/// benchmark's write is the same within noise either way (Chromium 1.53x vs 1.65x a
/// raw put, Firefox 2.28x vs 2.29x, one run each, same session).
pub async fn commit(t: &IdbTransaction) -> Result<(), IdbError> {
    committing(t).await
}

/// [`commit`], with the transaction's handlers set now rather than when the future is
/// first polled: a caller may hold the future while the transaction ends.
pub fn committing(t: &IdbTransaction) -> impl std::future::Future<Output = Result<(), IdbError>> + 'static {
    let (tx, rx) = oneshot::channel::<Result<(), IdbError>>();
    let mut tx = Some(tx);
    // The transaction ended (`complete` or `abort`): no event of it comes after, so
    // its handlers need not be taken off.
    let ended = Rc::new(std::cell::Cell::new(false));
    let ended_here = ended.clone();
    let t2 = t.clone();
    // One handler for the three events (one closure per write, not three).
    let on_event = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        let outcome = match ev.type_().as_str() {
            "complete" => {
                ended_here.set(true);
                Some(Ok(()))
            }
            "abort" => {
                ended_here.set(true);
                Some(Err(match t2.error() {
                    Some(d) => IdbError::new(&d.name(), d.message()),
                    None => IdbError::new("AbortError", "the transaction was aborted"),
                }))
            }
            // A failed request's `error` event reaches the transaction before the
            // abort does, and before the transaction's own `error` is set: its request
            // says why (a `ConstraintError` for a taken key, say). A request that only
            // failed because its transaction was aborted (`AbortError`) does not: the
            // `abort` event then brings the transaction's reason (`QuotaExceededError`;
            // `UnknownError` when the browser closed the connection under it). Called
            // for every failed request of the transaction (each bubbles here: a page of
            // new rows whose keys are taken fails a request per row).
            _ => ev
                .target()
                .and_then(|t| t.dyn_into::<IdbRequest>().ok())
                .and_then(|r| r.error().ok().flatten())
                .filter(|d| d.name() != "AbortError")
                .map(|d| Err(IdbError::new(&d.name(), d.message()))),
        };
        if let Some(o) = outcome {
            if let Some(s) = tx.take() {
                let _ = s.send(o);
            }
        }
    });
    let f: &js_sys::Function = on_event.as_ref().unchecked_ref();
    t.set_oncomplete(Some(f));
    t.set_onabort(Some(f));
    t.set_onerror(Some(f));
    let t3 = t.clone();
    let attached = Attached::new(move || {
        if !ended.get() {
            t3.set_oncomplete(None);
            t3.set_onabort(None);
            t3.set_onerror(None);
        }
    })
    .keep(on_event);
    async move {
        let out = rx.await.unwrap_or_else(|_| Err(IdbError::new("AbortError", "the transaction was dropped")));
        drop(attached);
        out
    }
}

/// How an open request ended.
pub enum Opened {
    Db(IdbDatabase),
    /// Another connection holds an older version open and did not close it.
    Blocked,
}

/// Open `name` at `version`, running `upgrade(db, tx, old, new)` in the
/// `versionchange` transaction when the stored version is older.
pub async fn open(
    name: &str,
    version: u32,
    upgrade: impl FnOnce(&IdbDatabase, &IdbTransaction, u32, u32) -> Result<(), JsValue> + 'static,
) -> Result<Opened, IdbError> {
    let factory = factory()?;
    let req: IdbOpenDbRequest = factory.open_with_u32(name, version).map_err(|e| IdbError::from_js(&e))?;
    let (tx, rx) = oneshot::channel::<Result<Opened, IdbError>>();
    let tx = Rc::new(RefCell::new(Some(tx)));
    let send = move |r: Result<Opened, IdbError>| {
        if let Some(t) = tx.borrow_mut().take() {
            let _ = t.send(r);
        }
    };
    let send = Rc::new(send);

    let (s1, r1) = (send.clone(), req.clone());
    let on_ok = Closure::once(move |_: web_sys::Event| {
        s1(r1.result().map(|v| Opened::Db(v.unchecked_into())).map_err(|e| IdbError::from_js(&e)))
    });
    let (s2, r2) = (send.clone(), req.clone());
    let on_err = Closure::once(move |ev: web_sys::Event| {
        ev.prevent_default();
        let e = match r2.error() {
            Ok(Some(d)) => IdbError::new(&d.name(), d.message()),
            _ => IdbError::new("UnknownError", "opening the database failed"),
        };
        s2(Err(e))
    });
    let s3 = send.clone();
    let on_blocked = Closure::once(move |_: web_sys::Event| s3(Ok(Opened::Blocked)));
    let r4 = req.clone();
    let on_upgrade = Closure::once(move |ev: IdbVersionChangeEvent| {
        let old = ev.old_version() as u32;
        let new = ev.new_version().unwrap_or(0.0) as u32;
        let (Ok(db), Some(t)) = (r4.result(), r4.transaction()) else { return };
        let db: IdbDatabase = db.unchecked_into();
        if let Err(e) = upgrade(&db, &t, old, new) {
            // Abort: the database keeps its old version and data; the open fails.
            let _ = t.abort();
            send(Err(IdbError::new("UpgradeError", IdbError::from_js(&e).to_string())));
        }
    });
    req.set_onsuccess(Some(on_ok.as_ref().unchecked_ref()));
    req.set_onerror(Some(on_err.as_ref().unchecked_ref()));
    req.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let r5 = req.clone();
    let attached = Attached::new(move || {
        r5.set_onsuccess(None);
        r5.set_onerror(None);
        r5.set_onblocked(None);
        r5.set_onupgradeneeded(None);
    })
    .keep(on_ok)
    .keep(on_err)
    .keep(on_blocked)
    .keep(on_upgrade);
    let out = rx.await.unwrap_or_else(|_| Err(IdbError::new("AbortError", "the open request was dropped")));
    drop(attached);
    if matches!(out, Ok(Opened::Blocked)) {
        // If the other connection closes later, the open goes on; close what it opens.
        let late = req.clone();
        let close_late = Closure::once_into_js(move |_: web_sys::Event| {
            if let Ok(db) = late.result() {
                db.unchecked_into::<IdbDatabase>().close();
            }
        });
        req.set_onsuccess(Some(close_late.unchecked_ref()));
        // This open was given up: if it proceeds once unblocked, it must not upgrade
        // (the next open does, with its migrations), so abort its upgrade.
        let late = req.clone();
        let abort_late = Closure::once_into_js(move |_: web_sys::Event| {
            if let Some(t) = late.transaction() {
                let _ = t.abort();
            }
        });
        req.set_onupgradeneeded(Some(abort_late.unchecked_ref()));
    }
    out
}

/// The stored version of `name` without upgrading it (0 when it does not exist).
pub async fn stored_version(name: &str) -> Result<u32, IdbError> {
    let factory = factory()?;
    let req: IdbOpenDbRequest = factory.open(name).map_err(|e| IdbError::from_js(&e))?;
    let db: IdbDatabase = request(req.unchecked_into()).await?.unchecked_into();
    let v = db.version() as u32;
    db.close();
    Ok(v)
}

/// Delete a database (used by sign-out with wipe, and tests).
pub async fn delete_database(name: &str) -> Result<(), IdbError> {
    let factory = factory()?;
    let req = factory.delete_database(name).map_err(|e| IdbError::from_js(&e))?;
    request(req.unchecked_into()).await.map(|_| ())
}

/// `indexedDB` of the window or worker, or a clear error where there is none (Node).
pub fn factory() -> Result<web_sys::IdbFactory, IdbError> {
    let global = js_sys::global();
    let idb = js_sys::Reflect::get(&global, &JsValue::from_str("indexedDB")).unwrap_or(JsValue::UNDEFINED);
    if idb.is_undefined() || idb.is_null() {
        return Err(IdbError::new(
            "NotSupportedError",
            "IndexedDB is not available here (Node or a sandboxed frame); pass `store: 'memory'` to openReplica for an in-memory replica",
        ));
    }
    Ok(idb.unchecked_into())
}
