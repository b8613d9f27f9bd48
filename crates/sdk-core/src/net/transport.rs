//! HTTP as the engine needs it, behind a trait: native apps use reqwest
//! (`supasync-native`), the browser uses fetch (`supasync-wasm`), tests use a fake.
//! The engine builds every request itself (URL, headers, JSON body) so that each
//! platform's transport is a few lines with no Supabase knowledge.

use crate::platform::maybe_send::{MaybeSend, MaybeSync};

/// One HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// One HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The request never got an HTTP answer (connection refused or cut, timeout, DNS).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network: {0}")]
pub struct TransportError(pub String);

crate::maybe_async_trait! {
    /// Sends HTTP requests.
    pub trait Http: MaybeSend + MaybeSync {
        async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError>;
    }
}

/// One WebSocket message, as the Realtime client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    Text(String),
    Binary(Vec<u8>),
}

crate::maybe_async_trait! {
    /// Opens WebSockets (tokio-tungstenite natively, `web-sys` in the browser).
    pub trait WsConnector: MaybeSend + MaybeSync {
        /// Connect; the halves are used concurrently (one task reads while it writes).
        async fn connect(&self, url: &str) -> Result<(Box<dyn WsSink>, Box<dyn WsStream>), TransportError>;
    }
}

crate::maybe_async_trait! {
    /// The writing half of a WebSocket.
    pub trait WsSink: MaybeSend {
        async fn send(&mut self, text: String) -> Result<(), TransportError>;
        /// Close cleanly (best effort).
        async fn close(&mut self);
    }
}

crate::maybe_async_trait! {
    /// The reading half of a WebSocket. Cancel-safe: a `next()` dropped before it
    /// finished loses no message.
    pub trait WsStream: MaybeSend {
        /// The next message; `None` once the socket is closed.
        async fn next(&mut self) -> Option<Result<WsMessage, TransportError>>;
    }
}
