//! Writing files locally: an upload becomes, in one store batch, the file's bytes, its
//! row in `files:<bucket>` (status pending) and its outbox entry, like a row's insert
//! ([`crate::local::files`]); a removal drops the bytes and the row at once and queues
//! the removal. A file not pushed yet is replaced by a new upload of the same path,
//! and removed without the server ever hearing of it.

use serde_json::Value;

use crate::local::files::{blob_key, check_name, files_table, md5_hex, FileMeta};
use crate::local::local_row::{LocalRow, Overlay, RowStatus};
use crate::local::outbox::OutboxOp;
use crate::local::store::{Store, WriteBatch};
use crate::local::writer::{LocalWriter, WriteError};

impl<S: Store + ?Sized> LocalWriter<'_, S> {
    /// Keep `bytes` as `bucket/path` and queue their upload. A path already stored on
    /// the server is not replaced (remove it first, or use a new path): uploads never
    /// overwrite, which is what makes a retried one safe.
    pub async fn upload_file(&self, bucket: &str, path: &str, bytes: Vec<u8>, content_type: &str, now_ms: i64) -> Result<LocalRow, WriteError> {
        check_name(bucket, path)?;
        let table = files_table(bucket);
        let existing = self.store.get_row(&table, path).await?;
        match &existing {
            Some(r) if r.mirror.is_some() && !matches!(r.overlay, Some(Overlay::Deleted)) => {
                return Err(WriteError::AlreadyExists { table, local_id: path.into() });
            }
            Some(LocalRow { mirror: None, status: RowStatus::Rejected { reason }, .. }) => {
                return Err(WriteError::Rejected { table, local_id: path.into(), reason: reason.clone() });
            }
            _ => {}
        }
        let file = FileMeta {
            bucket: bucket.into(),
            path: path.into(),
            size: bytes.len() as u64,
            content_type: if content_type.trim().is_empty() { "application/octet-stream".into() } else { content_type.into() },
            md5: md5_hex(&bytes),
        };
        let mut fields = file.fields();
        fields.insert("cached".into(), Value::Bool(true));
        fields.insert("used".into(), Value::from(now_ms.saturating_mul(1000)));
        let mut batch = WriteBatch::default();
        self.queue(&table, path, OutboxOp::Upload { file, resumable_url: None }, now_ms, &mut batch).await?;
        let row = LocalRow {
            table: table.clone(),
            local_id: path.into(),
            server_id: None,
            mirror: None,
            overlay: Some(Overlay::Fields { fields }),
            status: RowStatus::Pending,
            last_pushed: None,
        };
        batch.put_rows.push(row.clone());
        batch.put_blobs.push((blob_key(bucket, path), bytes));
        self.store.apply(batch).await?;
        Ok(row)
    }

    /// Remove `bucket/path`: gone here at once (bytes and row), removed from Storage by
    /// the push (or never sent, if its upload had not gone yet).
    pub async fn remove_file(&self, bucket: &str, path: &str, now_ms: i64) -> Result<(), WriteError> {
        check_name(bucket, path)?;
        let table = files_table(bucket);
        let mut batch = WriteBatch::default();
        self.queue(&table, path, OutboxOp::Delete, now_ms, &mut batch).await?;
        batch.delete_rows.push((table, path.into()));
        batch.delete_blobs.push(blob_key(bucket, path));
        self.store.apply(batch).await?;
        Ok(())
    }
}
