//! A small client for the Supabase APIs the engine uses, on any [`Http`]: PostgREST
//! reads, writes and RPC, and GoTrue's token endpoints. It builds URLs and headers (the
//! `apikey` gateway header, the bearer token, `Prefer`), percent-encodes every value it
//! puts in a URL, and turns error answers into [`ServerError`]s.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use crate::net::classify::{classify, Failure, ServerError};
use crate::net::transport::{Http, HttpRequest, HttpResponse, TransportError};

/// Everything in a query value except unreserved characters is encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encode a value for a query string.
pub fn enc(v: &str) -> String {
    utf8_percent_encode(v, QUERY_VALUE).to_string()
}

/// A value as PostgREST reads it inside `in.(…)`, `or=(…)` and `columns=`:
/// double-quoted, so any text (commas, dots, parentheses) is one value.
pub fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `"a","b"`: a list of [`quoted`] values.
pub fn quoted_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(quoted).collect::<Vec<_>>().join(",")
}

/// A request that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Network(#[from] TransportError),
    #[error("{}", .0.reason())]
    Server(ServerError),
    #[error("the server's answer could not be read: {0}")]
    BadAnswer(String),
}

impl RequestError {
    /// What this failure means for the write or read that caused it.
    pub fn failure(&self) -> Failure {
        match self {
            RequestError::Network(_) => Failure::Transient,
            RequestError::Server(e) => classify(e),
            RequestError::BadAnswer(_) => Failure::Transient,
        }
    }
}

/// Where the project is and how to reach it.
#[derive(Debug, Clone)]
pub struct Project {
    /// `https://xyz.supabase.co` (or the dev server's URL), without a trailing slash.
    pub url: String,
    pub anon_key: String,
}

/// The Supabase APIs over an [`Http`].
pub struct Client<H: Http> {
    pub project: Project,
    pub http: H,
}

impl<H: Http> Client<H> {
    pub fn new(project: Project, http: H) -> Client<H> {
        let mut project = project;
        while project.url.ends_with('/') {
            project.url.pop();
        }
        Client { project, http }
    }

    async fn send(&self, method: &'static str, url: String, token: Option<&str>, prefer: Option<&str>, body: Option<Vec<u8>>) -> Result<HttpResponse, RequestError> {
        let mut headers = vec![
            ("apikey".to_string(), self.project.anon_key.clone()),
            (
                "authorization".to_string(),
                format!("Bearer {}", token.unwrap_or(&self.project.anon_key)),
            ),
            ("x-client-info".to_string(), "supasync/0.1".to_string()),
            ("x-supabase-api-version".to_string(), "2024-01-01".to_string()),
        ];
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if let Some(p) = prefer {
            headers.push(("prefer".into(), p.into()));
        }
        let res = self.http.send(HttpRequest { method, url, headers, body }).await?;
        if res.status >= 400 {
            return Err(RequestError::Server(ServerError::parse(res.status, &res.body)));
        }
        Ok(res)
    }

    fn json(res: &HttpResponse) -> Result<Value, RequestError> {
        if res.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&res.body).map_err(|e| RequestError::BadAnswer(e.to_string()))
    }

    fn rows(res: &HttpResponse) -> Result<Vec<Value>, RequestError> {
        match Self::json(res)? {
            Value::Array(a) => Ok(a),
            Value::Null => Ok(vec![]),
            other => Err(RequestError::BadAnswer(format!("expected a JSON array, got {}", short(&other)))),
        }
    }

    /// `GET` as [`Client::select`], with the rows left as the JSON text the server
    /// wrote: a pulled page is split without being built, so that the next page can be
    /// asked for (it needs only the last row) before this one is built and written.
    /// With `counted`, also how many rows match in all, as cheaply as the server can
    /// say (`Prefer: count=estimated`: PostgREST answers from the planner's estimate for
    /// large tables); `None` when it does not say.
    pub async fn select_raw(&self, table: &str, query: &str, token: &str, counted: bool) -> Result<(Vec<Box<serde_json::value::RawValue>>, Option<u64>), RequestError> {
        let url = format!("{}/rest/v1/{}?{}", self.project.url, enc(table), query);
        let res = self.send("GET", url, Some(token), counted.then_some("count=estimated"), None).await?;
        let total = if counted { Self::total(&res) } else { None };
        if res.body.is_empty() {
            return Ok((vec![], total));
        }
        let rows: Option<Vec<Box<serde_json::value::RawValue>>> =
            serde_json::from_slice(&res.body).map_err(|e| RequestError::BadAnswer(format!("expected a JSON array of rows: {e}")))?;
        Ok((rows.unwrap_or_default(), total))
    }

    /// The total of `Content-Range: 0-999/10000` (`*/0`, or `0-999/*` when not counted).
    fn total(res: &HttpResponse) -> Option<u64> {
        res.header("content-range").and_then(|r| r.rsplit('/').next()).and_then(|t| t.trim().parse().ok())
    }

    /// `GET /rest/v1/{table}?{query}` → rows.
    pub async fn select(&self, table: &str, query: &str, token: &str) -> Result<Vec<Value>, RequestError> {
        let url = format!("{}/rest/v1/{}?{}", self.project.url, enc(table), query);
        let res = self.send("GET", url, Some(token), None, None).await?;
        Self::rows(&res)
    }

    /// `POST /rest/v1/{table}?{query}` with `Prefer` → the rows returned.
    pub async fn insert(&self, table: &str, query: &str, prefer: &str, body: &Value, token: &str) -> Result<Vec<Value>, RequestError> {
        let url = format!("{}/rest/v1/{}?{}", self.project.url, enc(table), query);
        let res = self
            .send("POST", url, Some(token), Some(prefer), Some(body.to_string().into_bytes()))
            .await?;
        Self::rows(&res)
    }

    /// `PATCH /rest/v1/{table}?{query}` → the rows changed.
    pub async fn update(&self, table: &str, query: &str, body: &Value, token: &str) -> Result<Vec<Value>, RequestError> {
        let url = format!("{}/rest/v1/{}?{}", self.project.url, enc(table), query);
        let res = self
            .send("PATCH", url, Some(token), Some("return=representation"), Some(body.to_string().into_bytes()))
            .await?;
        Self::rows(&res)
    }

    /// `DELETE /rest/v1/{table}?{query}` → the rows deleted.
    pub async fn delete(&self, table: &str, query: &str, token: &str) -> Result<Vec<Value>, RequestError> {
        let url = format!("{}/rest/v1/{}?{}", self.project.url, enc(table), query);
        let res = self.send("DELETE", url, Some(token), Some("return=representation"), None).await?;
        Self::rows(&res)
    }

    /// `POST /rest/v1/rpc/{name}`.
    pub async fn rpc(&self, name: &str, args: &Value, token: &str) -> Result<Value, RequestError> {
        let url = format!("{}/rest/v1/rpc/{}", self.project.url, enc(name));
        let res = self
            .send("POST", url, Some(token), None, Some(args.to_string().into_bytes()))
            .await?;
        Self::json(&res)
    }

    /// `POST /auth/v1/{path}` with the anon key (or a user token) → the JSON answer.
    pub async fn auth(&self, path_and_query: &str, body: &Value, token: Option<&str>) -> Result<Value, RequestError> {
        let url = format!("{}/auth/v1/{}", self.project.url, path_and_query);
        let res = self
            .send("POST", url, token, None, Some(body.to_string().into_bytes()))
            .await?;
        Self::json(&res)
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!("{}…", &s[..s.char_indices().nth(120).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(super::enc("a b&c=d,e(f)\"g'"), "a%20b%26c%3Dd%2Ce%28f%29%22g%27");
        assert_eq!(super::enc("0195a4b2-7c1e_x.y~"), "0195a4b2-7c1e_x.y~");
    }
}
