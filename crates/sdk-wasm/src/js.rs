//! Values and errors across the wasm boundary, one way for every export: errors thrown
//! as `{kind, message}` objects (with PostgREST's `code`, `details` and `hint` for a
//! refused query), values as JSON-compatible JS objects, futures as promises.

use serde::Serialize;
use serde_json::Value;
use supasync_core::EngineError;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// A thrown error: `{kind, message}`.
pub(crate) fn error(kind: &str, message: impl std::fmt::Display) -> JsValue {
    let o = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&o, &"kind".into(), &kind.into());
    let _ = js_sys::Reflect::set(&o, &"message".into(), &message.to_string().into());
    o.into()
}

type JsResultFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue, JsValue>>>>;

/// A promise for a future. Boxed on purpose: `future_to_promise` is generic, and one
/// instantiation for every exported method cost tens of KB of wasm.
pub(crate) fn promise(f: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static) -> js_sys::Promise {
    let boxed: JsResultFuture = Box::pin(f);
    future_to_promise(boxed)
}

pub(crate) fn engine_err(e: EngineError) -> JsValue {
    let o = error(e.kind(), &e);
    if let EngineError::Select(s) = &e {
        // A refused query also carries PostgREST's code, details and hint.
        let _ = js_sys::Reflect::set(&o, &"code".into(), &s.code.as_str().into());
        if let Some(d) = &s.details {
            let _ = js_sys::Reflect::set(&o, &"details".into(), &d.as_str().into());
        }
        if let Some(h) = &s.hint {
            let _ = js_sys::Reflect::set(&o, &"hint".into(), &h.as_str().into());
        }
    }
    o
}

pub(crate) fn invalid(message: impl std::fmt::Display) -> JsValue {
    error("invalid", message)
}

/// A value for JavaScript, through JSON text: one string crosses into JavaScript and
/// `JSON.parse` builds the objects, several times faster for a page of rows than
/// building them one property at a time across the boundary.
pub(crate) fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(v).map_err(|e| error("invalid", e))?;
    js_sys::JSON::parse(&text)
}

/// A value from JavaScript, through JSON text: `JSON.stringify` (the browser's own,
/// one call) and one string across, rather than a call across the boundary per
/// property. It is also supabase-js's reading of a row: a `Date` becomes its ISO text,
/// `undefined` properties are left out, `NaN` is `null`; a `BigInt` or a cycle is a
/// clear `invalid` error. `undefined` itself reads as `null`.
pub(crate) fn from_js(v: JsValue, what: &str) -> Result<Value, JsValue> {
    if v.is_undefined() {
        return Ok(Value::Null);
    }
    let text = js_sys::JSON::stringify(&v).map_err(|e| invalid(format!("{what}: {}", js_message(&e))))?;
    let Some(text) = text.as_string() else {
        // A function or a symbol: JSON has nothing for it.
        return Err(invalid(format!("{what}: not a JSON value")));
    };
    serde_json::from_str(&text).map_err(|e| invalid(format!("{what}: {e}")))
}

/// What a thrown JavaScript value says (an `Error`'s message, else its text).
pub(crate) fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).or_else(|| e.as_string()).unwrap_or_else(|| format!("{e:?}"))
}

pub(crate) fn str_field(o: &JsValue, name: &str) -> Option<String> {
    js_sys::Reflect::get(o, &name.into()).ok().and_then(|v| v.as_string())
}
