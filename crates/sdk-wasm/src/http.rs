//! The core's [`Http`] on `fetch`. A request that gets no answer within the timeout is
//! aborted (`AbortController`) and reported as a network failure, like a refused or
//! cut connection, so the engine retries it later.

use js_sys::{Reflect, Uint8Array};
use supasync_core::transport::{Http, HttpRequest, HttpResponse, TransportError};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

/// Sends requests with the page's (or worker's) `fetch`.
#[derive(Debug, Clone)]
pub struct FetchHttp {
    pub timeout_ms: u32,
}

impl Default for FetchHttp {
    fn default() -> Self {
        FetchHttp { timeout_ms: 30_000 }
    }
}

fn net(what: &str, e: JsValue) -> TransportError {
    TransportError(format!("{what}: {}", crate::js::js_message(&e)))
}

supasync_core::maybe_async_trait! {
    impl Http for FetchHttp {
        async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
            let init = RequestInit::new();
            init.set_method(req.method);
            let headers = Headers::new().map_err(|e| net("headers", e))?;
            for (k, v) in &req.headers {
                headers.append(k, v).map_err(|e| net("header", e))?;
            }
            init.set_headers(&headers);
            if let Some(body) = &req.body {
                init.set_body(&Uint8Array::from(body.as_slice()));
            }
            let abort = AbortController::new().map_err(|e| net("abort controller", e))?;
            init.set_signal(Some(&abort.signal()));
            let request = Request::new_with_str_and_init(&req.url, &init).map_err(|e| net("request", e))?;
            let fetch = Reflect::get(&js_sys::global(), &JsValue::from_str("fetch"))
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .ok_or_else(|| TransportError("this environment has no fetch".into()))?;
            let promise: js_sys::Promise = fetch
                .call1(&js_sys::global(), &request)
                .map_err(|e| net("fetch", e))?
                .unchecked_into();
            let timer = gloo_timers::callback::Timeout::new(self.timeout_ms, move || abort.abort());
            let answer = JsFuture::from(promise).await;
            let resp: Response = match answer {
                Ok(r) => r.unchecked_into(),
                Err(e) => return Err(net("fetch failed", e)),
            };
            let mut out_headers = Vec::new();
            if let Ok(Some(iter)) = js_sys::try_iter(&resp.headers()) {
                for pair in iter.flatten() {
                    let pair = js_sys::Array::from(&pair);
                    if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                        out_headers.push((k, v));
                    }
                }
            }
            let buf = JsFuture::from(resp.array_buffer().map_err(|e| net("body", e))?)
                .await
                .map_err(|e| net("reading the body", e))?;
            drop(timer);
            Ok(HttpResponse { status: resp.status(), headers: out_headers, body: Uint8Array::new(&buf).to_vec() })
        }
    }
}
