//! Supabase Storage as the engine uses it (`/storage/v1`): one-shot uploads, object
//! info, downloads, removal, and resumable uploads over TUS 1.0.0 for large files.
//! Every path segment is percent-encoded; errors come back as [`RequestError`]s with
//! Storage's code (`KeyAlreadyExists`, `EntityTooLarge`…) and message.

use serde_json::{json, Value};

use crate::net::classify::ServerError;
use crate::net::client::{enc, Client, RequestError};
use crate::net::transport::{Http, HttpRequest, HttpResponse};

/// A bucket and path as a URL path (`bucket/a/b.jpg`, each part encoded).
fn object_path(bucket: &str, path: &str) -> String {
    std::iter::once(bucket).chain(path.split('/')).map(enc).collect::<Vec<_>>().join("/")
}

/// A TUS upload's state on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TusOffset {
    pub offset: u64,
    pub length: u64,
}

impl<H: Http> Client<H> {
    async fn storage_send(&self, method: &'static str, url: String, token: &str, extra: Vec<(String, String)>, body: Option<Vec<u8>>) -> Result<HttpResponse, RequestError> {
        let mut headers = vec![
            ("apikey".to_string(), self.project.anon_key.clone()),
            ("authorization".to_string(), format!("Bearer {token}")),
            ("x-client-info".to_string(), "supasync/0.1".to_string()),
        ];
        headers.extend(extra);
        let res = self.http.send(HttpRequest { method, url, headers, body }).await?;
        if res.status >= 400 {
            return Err(RequestError::Server(ServerError::parse(res.status, &res.body)));
        }
        Ok(res)
    }

    fn storage_url(&self, rest: &str) -> String {
        format!("{}/storage/v1/{rest}", self.project.url)
    }

    /// Upload `bytes` as `bucket/path` in one request (never replacing: a file already
    /// there is a `KeyAlreadyExists` refusal).
    pub async fn storage_upload(&self, bucket: &str, path: &str, content_type: &str, bytes: Vec<u8>, token: &str) -> Result<(), RequestError> {
        let url = self.storage_url(&format!("object/{}", object_path(bucket, path)));
        let headers = vec![
            ("content-type".to_string(), content_type.to_string()),
            ("x-upsert".to_string(), "false".to_string()),
            ("cache-control".to_string(), "max-age=3600".to_string()),
        ];
        self.storage_send("POST", url, token, headers, Some(bytes)).await.map(|_| ())
    }

    /// An object's info (`etag`, `size`, …) as the caller may see it.
    pub async fn storage_info(&self, bucket: &str, path: &str, token: &str) -> Result<Value, RequestError> {
        let url = self.storage_url(&format!("object/info/authenticated/{}", object_path(bucket, path)));
        let res = self.storage_send("GET", url, token, vec![], None).await?;
        serde_json::from_slice(&res.body).map_err(|e| RequestError::BadAnswer(format!("object info: {e}")))
    }

    /// An object's bytes, and its content type.
    pub async fn storage_download(&self, bucket: &str, path: &str, token: &str) -> Result<(Vec<u8>, Option<String>), RequestError> {
        let url = self.storage_url(&format!("object/authenticated/{}", object_path(bucket, path)));
        let res = self.storage_send("GET", url, token, vec![], None).await?;
        let ct = res.header("content-type").map(str::to_string);
        Ok((res.body, ct))
    }

    /// Remove objects; the answer lists those removed (the caller may remove).
    pub async fn storage_remove(&self, bucket: &str, paths: &[&str], token: &str) -> Result<Vec<Value>, RequestError> {
        let url = self.storage_url(&format!("object/{}", enc(bucket)));
        let body = json!({ "prefixes": paths }).to_string().into_bytes();
        let res = self
            .storage_send("DELETE", url, token, vec![("content-type".into(), "application/json".into())], Some(body))
            .await?;
        match serde_json::from_slice(&res.body) {
            Ok(Value::Array(a)) => Ok(a),
            _ => Err(RequestError::BadAnswer("remove: expected a list".into())),
        }
    }

    /// Start a TUS upload of `length` bytes; the answer is its URL.
    pub async fn tus_create(&self, bucket: &str, path: &str, content_type: &str, length: u64, token: &str) -> Result<String, RequestError> {
        use base64::Engine;
        let encode = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
        let meta = format!(
            "bucketName {},objectName {},contentType {},cacheControl {}",
            encode(bucket),
            encode(path),
            encode(content_type),
            encode("3600")
        );
        let headers = vec![
            ("tus-resumable".to_string(), "1.0.0".to_string()),
            ("upload-length".to_string(), length.to_string()),
            ("upload-metadata".to_string(), meta),
            ("x-upsert".to_string(), "false".to_string()),
        ];
        let res = self.storage_send("POST", self.storage_url("upload/resumable"), token, headers, None).await?;
        res.header("location").map(str::to_string).ok_or_else(|| RequestError::BadAnswer("TUS: no Location".into()))
    }

    /// Where a TUS upload is.
    pub async fn tus_offset(&self, url: &str, token: &str) -> Result<TusOffset, RequestError> {
        let res = self.storage_send("HEAD", url.to_string(), token, vec![("tus-resumable".into(), "1.0.0".into())], None).await?;
        let num = |h: &str| res.header(h).and_then(|v| v.trim().parse::<u64>().ok());
        match (num("upload-offset"), num("upload-length")) {
            (Some(offset), Some(length)) => Ok(TusOffset { offset, length }),
            _ => Err(RequestError::BadAnswer("TUS: HEAD without Upload-Offset/Upload-Length".into())),
        }
    }

    /// Send one chunk at `offset`; the answer is the new offset.
    pub async fn tus_patch(&self, url: &str, offset: u64, chunk: Vec<u8>, token: &str) -> Result<u64, RequestError> {
        let headers = vec![
            ("tus-resumable".to_string(), "1.0.0".to_string()),
            ("upload-offset".to_string(), offset.to_string()),
            ("content-type".to_string(), "application/offset+octet-stream".to_string()),
        ];
        let res = self.storage_send("PATCH", url.to_string(), token, headers, Some(chunk)).await?;
        res.header("upload-offset")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| RequestError::BadAnswer("TUS: PATCH without Upload-Offset".into()))
    }
}
