//! The native HTTP transport: reqwest with rustls, one connection pool per engine, a
//! timeout on every request so a dead network never hangs a push.

use std::time::Duration;

use supasync_core::transport::{Http, HttpRequest, HttpResponse, TransportError};

/// `supasync-core`'s [`Http`] on reqwest.
#[derive(Clone)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

impl ReqwestHttp {
    /// A client with a 30 s request timeout.
    pub fn new() -> Result<ReqwestHttp, TransportError> {
        Self::with_timeout(Duration::from_secs(30))
    }

    /// A client with the given request timeout.
    pub fn with_timeout(timeout: Duration) -> Result<ReqwestHttp, TransportError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| TransportError(e.to_string()))?;
        Ok(ReqwestHttp { client })
    }
}

supasync_core::maybe_async_trait! {
    impl Http for ReqwestHttp {
        async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
            let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| TransportError(e.to_string()))?;
            let mut rb = self.client.request(method, &req.url);
            for (k, v) in &req.headers {
                rb = rb.header(k, v);
            }
            if let Some(b) = req.body {
                rb = rb.body(b);
            }
            let res = rb.send().await.map_err(|e| TransportError(e.to_string()))?;
            let status = res.status().as_u16();
            let headers = res
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect();
            let body = res.bytes().await.map_err(|e| TransportError(e.to_string()))?.to_vec();
            Ok(HttpResponse { status, headers, body })
        }
    }
}

/// Milliseconds since the Unix epoch from the system clock (the engine's clock natively).
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
