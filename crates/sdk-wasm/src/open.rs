//! Opening a replica from JavaScript: the options `openReplica` passes (checked here
//! once more, since the wasm module can be called directly), the app's own token
//! source (supabase-js's `accessToken()`), and the store the replica keeps: IndexedDB,
//! from a connection the page may have opened already while the module compiled, or
//! memory.

use serde_json::Value;
use supasync_core::auth::{ProvidedToken, TokenProvider};
use supasync_core::live::SyncMode;
use supasync_core::store::MemoryStore;
use supasync_core::{Replica, ReplicaConfig, Schema};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::any_store::AnyStore;
use crate::http::FetchHttp;
use crate::js::{engine_err, error, invalid, str_field};
use crate::runtime::BrowserRuntime;
use crate::web_lock::WebLock;
use crate::store::StoreCipher;
use crate::IdbStore;

/// A store's failure to open: a key that does not fit is its own kind, `key`.
fn store_error(e: supasync_core::store::StoreError) -> JsValue {
    match e {
        supasync_core::store::StoreError::Key(m) => error("key", m),
        e => error("store", e),
    }
}

/// The core's replica on the browser's platform.
pub(crate) type Inner = Replica<AnyStore, FetchHttp, BrowserRuntime>;

/// Options of [`WasmReplica::open`] (the TypeScript wrapper checks and documents them).
struct OpenOptions {
    url: String,
    anon_key: String,
    schema: Schema,
    /// IndexedDB database name; `None`: an in-memory store.
    database: Option<String>,
    access_token: Option<js_sys::Function>,
    mode: SyncMode,
    network: bool,
    /// A connection to `database` the page opened while the module compiled.
    connection: Option<web_sys::IdbDatabase>,
    /// Key material to encrypt `database` with (see `store::cipher`), and whose
    /// database it is (each user's keys are their own).
    encryption: Option<(JsValue, String)>,
}

pub(crate) fn parse_mode(v: &JsValue) -> Result<SyncMode, JsValue> {
    if v.is_undefined() || v.is_null() {
        return Ok(SyncMode::Realtime);
    }
    if let Some(s) = v.as_string() {
        return match s.as_str() {
            "realtime" => Ok(SyncMode::Realtime),
            "manual" => Ok(SyncMode::Manual),
            other => Err(invalid(format!("unknown sync mode `{other}` (realtime, manual, or {{ everyMs }})"))),
        };
    }
    match js_sys::Reflect::get(v, &"everyMs".into()).ok().and_then(|n| n.as_f64()) {
        Some(ms) if ms >= 1.0 => Ok(SyncMode::Every { ms: ms as u64 }),
        _ => Err(invalid("a sync mode is 'realtime', 'manual' or { everyMs: N } with N ≥ 1")),
    }
}

impl OpenOptions {
    fn parse(o: &JsValue) -> Result<OpenOptions, JsValue> {
        let url = str_field(o, "url").ok_or_else(|| invalid("openReplica needs `url`, the project's URL"))?;
        let anon_key = str_field(o, "anonKey").ok_or_else(|| invalid("openReplica needs `anonKey`, the project's anon key"))?;
        let schema_v = js_sys::Reflect::get(o, &"schema".into()).unwrap_or(JsValue::UNDEFINED);
        let schema_text = match schema_v.as_string() {
            Some(s) => s,
            None if schema_v.is_object() => js_sys::JSON::stringify(&schema_v).map(String::from).map_err(|_| invalid("schema: not JSON"))?,
            None => return Err(invalid("openReplica needs `schema`: the tables to sync, as the CLI's JSON schema")),
        };
        let schema = Schema::from_json(&schema_text).map_err(|e| invalid(format!("schema: {e}")))?;
        let access_token = js_sys::Reflect::get(o, &"accessToken".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let mode = parse_mode(&js_sys::Reflect::get(o, &"mode".into()).unwrap_or(JsValue::UNDEFINED))?;
        let network = js_sys::Reflect::get(o, &"network".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true);
        let connection = js_sys::Reflect::get(o, &"connection".into()).ok().and_then(|c| c.dyn_into::<web_sys::IdbDatabase>().ok());
        let key = js_sys::Reflect::get(o, &"encryptionKey".into()).unwrap_or(JsValue::UNDEFINED);
        let encryption = match (key.is_undefined() || key.is_null(), str_field(o, "userId")) {
            (true, _) => None,
            (false, Some(user)) => Some((key, user)),
            (false, None) => return Err(invalid("an encrypted replica needs `userId`: each user's store has its own keys")),
        };
        Ok(OpenOptions { url, anon_key, schema, database: str_field(o, "database"), access_token, mode, network, connection, encryption })
    }
}

/// Tokens from the app's own auth: `accessToken()` as supabase-js's option (an async
/// function returning the current JWT, or null when signed out).
struct JsTokens(js_sys::Function);

impl JsTokens {
    async fn ask(&self) -> Option<ProvidedToken> {
        let v = self.0.call0(&JsValue::NULL).ok()?;
        let v = match v.dyn_into::<js_sys::Promise>() {
            Ok(p) => JsFuture::from(p).await.ok()?,
            Err(v) => v,
        };
        let token = v.as_string()?;
        let user_id = jwt_subject(&token)?;
        Some(ProvidedToken { access_token: token, user_id })
    }
}

supasync_core::maybe_async_trait! {
    impl TokenProvider for JsTokens {
        async fn current(&self) -> Option<ProvidedToken> {
            self.ask().await
        }

        async fn refresh(&self) -> Option<ProvidedToken> {
            // supabase-js refreshes on its own; asking again gets its newest token.
            self.ask().await
        }
    }
}

/// The `sub` claim of a JWT (the user id), read without verifying: the server
/// verifies; this only names whose replica it is.
pub fn jwt_subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let mut b64 = payload.replace('-', "+").replace('_', "/");
    while b64.len() % 4 != 0 {
        b64.push('=');
    }
    let atob = js_sys::Reflect::get(&js_sys::global(), &"atob".into()).ok()?.dyn_into::<js_sys::Function>().ok()?;
    let text = atob.call1(&JsValue::NULL, &b64.into()).ok()?.as_string()?;
    let claims: Value = serde_json::from_str(&text).ok()?;
    claims.get("sub")?.as_str().map(str::to_string)
}

/// Open a replica: `{url, anonKey, schema, database?, connection?, accessToken?, mode?,
/// network?, encryptionKey?, userId?}`. Without `database` the store is in memory
/// (and `encryptionKey` has nothing to encrypt: memory is not at rest).
pub(crate) async fn open(options: &JsValue) -> Result<(Inner, Option<String>), JsValue> {
    let o = OpenOptions::parse(options)?;
    let store = match &o.database {
        Some(name) => {
            let cipher = match &o.encryption {
                Some((key, user)) => Some(StoreCipher::for_user(key, user).await.map_err(store_error)?),
                None => None,
            };
            AnyStore::Idb(IdbStore::open_from(name, o.connection.clone(), cipher).await.map_err(store_error)?)
        }
        None => {
            if let Some(c) = &o.connection {
                c.close();
            }
            AnyStore::Memory(MemoryStore::new())
        }
    };
    let mut cfg = ReplicaConfig::new(&o.url, &o.anon_key);
    cfg.live.mode = o.mode;
    cfg.network = o.network;
    let tokens = o.access_token.map(|f| Box::new(JsTokens(f)) as Box<dyn TokenProvider>);
    let http = FetchHttp::default();
    // Tabs sharing the database take turns writing (Web Locks, by database name).
    let lock = o
        .database
        .as_ref()
        .and_then(|d| WebLock::new(format!("supasync-writer:{d}")))
        .map(|l| Box::new(l) as Box<dyn supasync_core::write_lock::SharedLock>);
    let inner = Replica::open_shared(o.schema, store, http, BrowserRuntime, cfg, tokens, lock).await.map_err(engine_err)?;
    Ok((inner, o.database))
}
