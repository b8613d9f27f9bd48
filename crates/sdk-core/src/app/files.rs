//! Files, as the app sees them: `upload_file` (kept here at once, queued in the
//! outbox with the rows), `file` (its status), `read_file` (from the device when it is
//! kept, else downloaded and cached), `remove_file`, and the cache's budget, least
//! recently read first ([`crate::local::files`] says how files ride the outbox).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::engine::{Engine, EngineError};
use crate::local::files::{blob_key, check_name, files_table, md5_hex};
use crate::local::local_row::{LocalRow, Overlay, RowStatus};
use crate::local::store::{Store, WriteBatch};
use crate::local::writer::WriteError;
use crate::net::transport::Http;

/// A file as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileView {
    pub bucket: String,
    pub path: String,
    pub size: u64,
    pub content_type: String,
    /// `pending` (waiting to upload, or uploading), `synced` (Storage has it) or
    /// `rejected` (Storage refused it: the reason says why; retry or discard it).
    pub status: String,
    pub reason: Option<String>,
    /// The bytes are on this device (readable offline).
    pub cached: bool,
}

fn view(row: &LocalRow) -> Option<FileView> {
    view_with(row, None)
}

/// A file's view; `refused` is what its refused upload said of it (a refused upload
/// is rolled back, so the row itself shows nothing any more).
fn view_with(row: &LocalRow, refused: Option<crate::local::local_row::Row>) -> Option<FileView> {
    let fields = row.visible("path").or(refused)?;
    let s = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let (status, reason) = match &row.status {
        RowStatus::Synced => ("synced", None),
        RowStatus::Pending | RowStatus::Syncing => ("pending", None),
        RowStatus::Rejected { reason } => ("rejected", Some(reason.clone())),
    };
    Some(FileView {
        bucket: s("bucket"),
        path: row.local_id.clone(),
        size: fields.get("size").and_then(Value::as_u64).unwrap_or(0),
        content_type: s("content_type"),
        status: status.into(),
        reason,
        cached: fields.get("cached").and_then(Value::as_bool).unwrap_or(false),
    })
}

impl<S: Store, H: Http> Engine<S, H> {
    /// Keep `bytes` as `bucket/path` on this device at once and queue their upload
    /// (see [`crate::local::writer::LocalWriter::upload_file`]).
    pub async fn upload_file(&self, bucket: &str, path: &str, bytes: Vec<u8>, content_type: &str) -> Result<FileView, EngineError> {
        let _w = self.writer.lock().await;
        let r = self.local_writer().upload_file(bucket, path, bytes, content_type, self.now_ms()).await?;
        self.events.changed(vec![r.table.clone()], true);
        view(&r).ok_or_else(|| EngineError::Write(WriteError::NotFound { table: r.table.clone(), local_id: path.into() }))
    }

    /// What this device knows of `bucket/path` (`None`: nothing; it may still be in
    /// Storage, [`Engine::read_file`] fetches it).
    pub async fn file(&self, bucket: &str, path: &str) -> Result<Option<FileView>, EngineError> {
        check_name(bucket, path).map_err(WriteError::from)?;
        let Some(row) = self.store.get_row(&files_table(bucket), path).await? else { return Ok(None) };
        self.view_of(&row).await
    }

    /// The files of `bucket` this device knows, by path.
    pub async fn files(&self, bucket: &str) -> Result<Vec<FileView>, EngineError> {
        let mut out = vec![];
        for row in self.store.scan(&files_table(bucket)).await? {
            out.extend(self.view_of(&row).await?);
        }
        Ok(out)
    }

    async fn view_of(&self, row: &LocalRow) -> Result<Option<FileView>, EngineError> {
        if let Some(v) = view(row) {
            return Ok(Some(v));
        }
        let refused = self.store.last_outbox_entry(&row.table, &row.local_id).await?.and_then(|e| e.op.shown_fields());
        Ok(view_with(row, refused))
    }

    /// The bytes of `bucket/path`: from this device when they are kept (offline too),
    /// else downloaded from Storage and kept within the cache's budget.
    pub async fn read_file(&self, bucket: &str, path: &str) -> Result<Vec<u8>, EngineError> {
        check_name(bucket, path).map_err(WriteError::from)?;
        let table = files_table(bucket);
        let key = blob_key(bucket, path);
        if let Some(bytes) = self.store.read_blob(&key, 0, None).await? {
            self.touch(&table, path).await?;
            return Ok(bytes);
        }
        let (bytes, content_type) = self
            .cx()
            .authed(|t| async move { self.client.storage_download(bucket, path, &t).await })
            .await?;
        let _w = self.writer.lock().await;
        // An upload of this path written while the download was out wins: it is what
        // the app wrote last (and its push will meet the stored object and say so).
        if self.store.get_row(&table, path).await?.is_some_and(|r| r.overlay.is_some()) {
            return Ok(bytes);
        }
        let mut mirror = serde_json::Map::new();
        for (k, v) in [
            ("bucket", json!(bucket)),
            ("path", json!(path)),
            ("size", json!(bytes.len())),
            ("content_type", json!(content_type.unwrap_or_else(|| "application/octet-stream".into()))),
            ("md5", json!(md5_hex(&bytes))),
            ("cached", json!(true)),
            ("used", json!(self.use_stamp())),
        ] {
            mirror.insert(k.into(), v);
        }
        let row = LocalRow {
            table: table.clone(),
            local_id: path.into(),
            server_id: Some(Value::String(path.into())),
            mirror: Some(mirror),
            overlay: None,
            status: RowStatus::Synced,
            last_pushed: None,
        };
        let mut batch = WriteBatch { put_rows: vec![row], put_blobs: vec![(key, bytes.clone())], ..Default::default() };
        self.evict_into(&table, path, bytes.len() as u64, &mut batch).await?;
        self.store.apply(batch).await?;
        self.events.changed(vec![table], false);
        Ok(bytes)
    }

    /// Remove `bucket/path` here at once, and from Storage by the push.
    pub async fn remove_file(&self, bucket: &str, path: &str) -> Result<(), EngineError> {
        let _w = self.writer.lock().await;
        self.local_writer().remove_file(bucket, path, self.now_ms()).await?;
        self.events.changed(vec![files_table(bucket)], true);
        Ok(())
    }

    /// A stamp for "read now" that orders reads strictly (microseconds of the clock,
    /// one more than the last stamp when reads come faster): the cache drops the file
    /// read longest ago, and two reads in one millisecond must not tie.
    pub(super) fn use_stamp(&self) -> i64 {
        use std::sync::atomic::Ordering;
        let now = self.now_ms().saturating_mul(1000);
        let prev = self.file_uses.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(now.max(last + 1))).unwrap_or(now);
        now.max(prev + 1)
    }

    /// Note that a kept file was read (the cache drops the least recently read first).
    async fn touch(&self, table: &str, path: &str) -> Result<(), EngineError> {
        let _w = self.writer.lock().await;
        let Some(mut row) = self.store.get_row(table, path).await? else { return Ok(()) };
        let now = json!(self.use_stamp());
        match (&mut row.overlay, &mut row.mirror) {
            (Some(Overlay::Fields { fields }), _) => {
                fields.insert("used".into(), now);
            }
            (None, Some(m)) => {
                m.insert("used".into(), now);
            }
            _ => return Ok(()),
        }
        self.store.apply(WriteBatch { put_rows: vec![row], ..Default::default() }).await?;
        Ok(())
    }

    /// Into `batch`: drop the least recently read downloaded files until `adding` more
    /// bytes fit the budget. Files waiting to upload, and `keep`, stay.
    async fn evict_into(&self, table: &str, keep: &str, adding: u64, batch: &mut WriteBatch) -> Result<(), EngineError> {
        let mut tables: Vec<String> = self.schema.tables().iter().flat_map(|t| t.files.values().map(|b| files_table(b))).collect();
        tables.push(table.to_string());
        tables.sort();
        tables.dedup();
        let mut cached: Vec<(i64, LocalRow, u64)> = vec![];
        let mut total = adding;
        for t in &tables {
            for r in self.store.scan(t).await? {
                let Some(m) = r.mirror.as_ref().filter(|_| r.overlay.is_none() && r.status == RowStatus::Synced) else {
                    // Waiting uploads count, and stay.
                    if let Some(Overlay::Fields { fields }) = &r.overlay {
                        total += fields.get("size").and_then(Value::as_u64).unwrap_or(0);
                    }
                    continue;
                };
                if m.get("cached") != Some(&Value::Bool(true)) || (t == table && r.local_id == keep) {
                    continue;
                }
                let size = m.get("size").and_then(Value::as_u64).unwrap_or(0);
                total += size;
                cached.push((m.get("used").and_then(Value::as_i64).unwrap_or(0), r, size));
            }
        }
        cached.sort_by_key(|(used, r, _)| (*used, r.local_id.clone()));
        for (_, mut r, size) in cached {
            if total <= self.cfg.file_cache_bytes {
                break;
            }
            let Some(bucket) = crate::local::files::bucket_of(&r.table) else { continue };
            batch.delete_blobs.push(blob_key(bucket, &r.local_id));
            if let Some(m) = r.mirror.as_mut() {
                m.insert("cached".into(), Value::Bool(false));
            }
            batch.put_rows.push(r);
            total -= size;
        }
        Ok(())
    }
}
