//! HTTP as the engine needs it, behind a trait: native apps use reqwest
//! (`supasync-native`), the browser uses fetch (`supasync-wasm`), tests use a fake.
//! The engine builds every request itself (URL, headers, JSON body) so that each
//! platform's transport is a few lines with no Supabase knowledge.

use crate::maybe_send::{MaybeSend, MaybeSync};

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
