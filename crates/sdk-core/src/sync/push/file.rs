//! Files in the push (`files:<bucket>` entries, see [`crate::local::files`]).
//!
//! An upload goes in one request up to [`ONE_SHOT_MAX`] bytes, else over TUS in
//! [`CHUNK`]-byte pieces read from the store one at a time (memory flat in the file's
//! size). The TUS upload's URL is kept in the outbox entry as soon as it exists, so a
//! push after a crash asks the server how far it got and sends the rest.
//!
//! Exactly once: uploads never replace (`x-upsert: false`), so a retry after a lost
//! answer meets `KeyAlreadyExists`; the object's ETag is then compared with the file's
//! MD5, and a match (the earlier attempt) is confirmed. Other bytes holding the path
//! are a refusal. A refused upload refuses
//! the rows that name the file ([`crate::sync::reject`]), with Storage's reason.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{Push, PushReport, RunContext, RunOutcome};
use crate::local::events::FileProgress;
use crate::local::files::{blob_key, FileMeta};
use crate::local::local_row::Row;
use crate::local::outbox::{OutboxEntry, OutboxOp};
use crate::local::store::{Store, WriteBatch};
use crate::net::classify::Failure;
use crate::net::classify::ServerError;
use crate::net::client::RequestError;
use crate::net::transport::Http;
use crate::sync::error::SyncError;
use crate::sync::reject::reject;

/// Files up to this size go in one request (Supabase's advice: TUS above 6 MB).
pub const ONE_SHOT_MAX: u64 = 6 * 1024 * 1024;
/// The size of each TUS chunk (Supabase Storage takes 6 MB chunks).
pub const CHUNK: u64 = 6 * 1024 * 1024;

/// How many times one push asks again where a TUS upload is after a PATCH found it
/// elsewhere (409) before it gives up (the upload is retried later, not refused).
const MAX_OFFSET_CONFLICTS: u32 = 3;

/// What Storage holds at a file's path (see `Push::stored_bytes`).
enum Stored {
    Same,
    /// Other bytes, or no object.
    Other,
    Unknown(RequestError),
}

/// How an upload ended.
enum Sent {
    Stored,
    /// Refused for good, with Storage's reason.
    Refused(String),
    /// Try again later (network, a server fault, a TUS upload that expired).
    Later(RequestError),
}

impl<S: Store, H: Http> Push<'_, S, H> {
    /// One file entry: an upload or a removal.
    pub(super) async fn push_file(
        &self,
        mut e: OutboxEntry,
        report: &mut PushReport,
        refused: &mut HashSet<(String, String)>,
        ctx: &mut RunContext,
    ) -> Result<RunOutcome, SyncError> {
        let bucket = crate::local::files::bucket_of(&e.table).unwrap_or_default().to_string();
        {
            let _w = self.cx.writer.lock_step().await;
            report.requests += 1;
            self.note_sending(std::iter::once(&e)).await?;
        }
        let started = self.cx.now_ms();
        let sent = match e.op.clone() {
            OutboxOp::Upload { file, resumable_url } => self.upload(&mut e, &file, resumable_url).await?,
            OutboxOp::Delete => {
                let path = e.local_id.clone();
                let res = self
                    .cx
                    .authed(|t| {
                        let (b, p) = (bucket.clone(), path.clone());
                        async move { self.cx.client.storage_remove(&b, &[p.as_str()], &t).await }
                    })
                    .await;
                match res {
                    Ok(_) => Sent::Stored,
                    Err(err) => self.judge(err),
                }
            }
            _ => Sent::Refused("a file takes only uploads and deletes".into()),
        };
        let _w = self.cx.writer.lock_step().await;
        match sent {
            Sent::Later(err) => self.retry_later(&e, &err).await,
            Sent::Refused(reason) => {
                report.rejected += reject(&self.cx, &e, &reason, refused).await?;
                Ok(RunOutcome::Done)
            }
            Sent::Stored => {
                let mut wb = WriteBatch::default();
                if let OutboxOp::Upload { file, .. } = &e.op {
                    let mut mirror = file.fields();
                    mirror.insert("cached".into(), Value::Bool(true));
                    mirror.insert("used".into(), json!(self.cx.now_ms().saturating_mul(1000)));
                    let stored = Some(Value::String(e.local_id.clone()));
                    self.confirm_row(&e.table, &e.local_id, e.seq, stored, Some(mirror), &Row::new(), false, ctx, &mut wb).await?;
                    ctx.parents.insert((e.table.clone(), e.local_id.clone()), Value::String(e.local_id.clone()));
                    self.cx.events.file_progress(FileProgress { bucket: bucket.clone(), path: e.local_id.clone(), sent: file.size, size: file.size, done: true });
                } else {
                    // The row went when the delete was written; only the entry is left.
                    wb.delete_outbox.push(e.seq);
                }
                let op = if matches!(e.op, OutboxOp::Delete) { "remove" } else { "upload" };
                wb.history.push(self.cx.history_line("push", Some(&e.table), 1, started, None, json!({"op": op, "path": e.local_id})));
                self.cx.store.apply(wb).await?;
                report.pushed += 1;
                self.cx.events.changed(vec![e.table.clone()], false);
                Ok(RunOutcome::Done)
            }
        }
    }

    /// What a failed Storage request means.
    fn judge(&self, err: RequestError) -> Sent {
        match err.failure() {
            Failure::Transient | Failure::Unauthorized => Sent::Later(err),
            _ => Sent::Refused(err.to_string()),
        }
    }

    /// `e` is kept as it is stored: a resumable upload's address, once kept, must not be
    /// written over by the retry that follows a failed chunk (the next attempt would
    /// start over).
    async fn upload(&self, e: &mut OutboxEntry, file: &FileMeta, resumable_url: Option<String>) -> Result<Sent, SyncError> {
        let key = blob_key(&file.bucket, &file.path);
        if self.cx.store.blob_len(&key).await?.is_none() {
            return Ok(Sent::Refused("the file's bytes are no longer on this device".into()));
        }
        let res = if file.size <= ONE_SHOT_MAX {
            let bytes = self.cx.store.read_blob(&key, 0, None).await?.unwrap_or_default();
            self.cx
                .authed(|t| {
                    let b = bytes.clone();
                    async move { self.cx.client.storage_upload(&file.bucket, &file.path, &file.content_type, b, &t).await }
                })
                .await
        } else {
            self.resumable(e, file, &key, resumable_url).await?
        };
        Ok(match res {
            Ok(()) => Sent::Stored,
            Err(RequestError::Server(s)) if s.code == "KeyAlreadyExists" || (s.status == 409 && s.code.is_empty()) => {
                // Our own earlier attempt whose answer was lost, or the very same
                // bytes put there otherwise: either way the file the app wrote is
                // stored. Other bytes under the path are a refusal; an object that
                // could not be looked at is asked about again on the next push.
                match self.stored_bytes(file).await {
                    Stored::Same => Sent::Stored,
                    Stored::Other => Sent::Refused(format!("{} ({} {}): another file is stored at {}/{}", s.message, s.status, s.code, file.bucket, file.path)),
                    Stored::Unknown(err) => Sent::Later(err),
                }
            }
            Err(err) => self.judge(err),
        })
    }

    /// What Storage holds at the file's path: the file's bytes (the object's ETag is
    /// the MD5 of what was uploaded in one request; a TUS upload's too, on
    /// supasync-dev and on Supabase's file backend), something else or nothing, or
    /// unknown because Storage could not be asked (network, a server fault, the page
    /// going away): then nothing may be concluded from it.
    async fn stored_bytes(&self, file: &FileMeta) -> Stored {
        let info = self.cx.authed(|t| async move { self.cx.client.storage_info(&file.bucket, &file.path, &t).await }).await;
        match info {
            Ok(v) => match v.get("etag").and_then(Value::as_str) {
                Some(etag) if etag.trim_matches('"') == file.md5 => Stored::Same,
                _ => Stored::Other,
            },
            Err(err) if matches!(err.failure(), Failure::Transient | Failure::Unauthorized) => Stored::Unknown(err),
            Err(_) => Stored::Other,
        }
    }

    /// The upload is gone (404, 410): it expired, or an attempt whose answer was lost
    /// finished it. If Storage holds the file's bytes it is stored; if Storage holds
    /// something else or nothing, the address is forgotten and the next push starts
    /// over (never a refusal); if Storage cannot be asked, the address stays, so the
    /// next push asks again rather than uploading a file that may be there already
    /// (a page reloaded while its last piece was on the way, say).
    async fn upload_gone(&self, e: &mut OutboxEntry, file: &FileMeta, s: ServerError) -> Result<Result<(), RequestError>, SyncError> {
        match self.stored_bytes(file).await {
            Stored::Same => return Ok(Ok(())),
            Stored::Unknown(err) => return Ok(Err(err)),
            Stored::Other => {}
        }
        let _w = self.cx.writer.lock_step().await;
        let mut fresh = e.clone();
        fresh.op = OutboxOp::Upload { file: file.clone(), resumable_url: None };
        self.cx.store.apply(WriteBatch { put_outbox: vec![fresh.clone()], ..Default::default() }).await?;
        *e = fresh;
        Ok(Err(RequestError::BadAnswer(format!("TUS: the upload is gone ({}); it starts again on the next push", s.reason()))))
    }

    /// A TUS upload, created or resumed, sent to the end.
    async fn resumable(&self, e: &mut OutboxEntry, file: &FileMeta, key: &str, url: Option<String>) -> Result<Result<(), RequestError>, SyncError> {
        let url = match url {
            Some(u) => u,
            None => {
                let created = self
                    .cx
                    .authed(|t| async move { self.cx.client.tus_create(&file.bucket, &file.path, &file.content_type, file.size, &t).await })
                    .await;
                let u = match created {
                    Ok(u) => u,
                    Err(err) => return Ok(Err(err)),
                };
                // Keep the upload's address before a byte goes: a crash from here on
                // resumes it instead of starting over.
                let _w = self.cx.writer.lock_step().await;
                let mut kept = e.clone();
                kept.op = OutboxOp::Upload { file: file.clone(), resumable_url: Some(u.clone()) };
                self.cx.store.apply(WriteBatch { put_outbox: vec![kept.clone()], ..Default::default() }).await?;
                *e = kept;
                u
            }
        };
        let mut offset = match self.cx.authed(|t| { let u = url.clone(); async move { self.cx.client.tus_offset(&u, &t).await } }).await {
            Ok(o) => o.offset,
            Err(RequestError::Server(s)) if s.status == 404 || s.status == 410 => return self.upload_gone(e, file, s).await,
            Err(err) => return Ok(Err(err)),
        };
        let mut conflicts = 0;
        // Whether `offset` is what the server said when asked (HEAD) rather than the
        // answer to our own last chunk: an upload another attempt finished is only
        // stored once Storage holds the file's bytes.
        let mut asked = true;
        while offset < file.size {
            let chunk = self.cx.store.read_blob(key, offset, Some(CHUNK)).await?.unwrap_or_default();
            if chunk.is_empty() {
                return Ok(Err(RequestError::BadAnswer("the file's bytes ended before its size".into())));
            }
            let sent = self
                .cx
                .authed(|t| {
                    let (u, c) = (url.clone(), chunk.clone());
                    async move { self.cx.client.tus_patch(&u, offset, c, &t).await }
                })
                .await;
            offset = match sent {
                Ok(o) => {
                    asked = false;
                    o
                }
                // 409: the upload is not at the offset we sent. Another request moved it
                // after we asked: an earlier attempt of this device whose chunk still
                // arrived after a reload, a crash or a cut connection. TUS's answer is to
                // ask again where it is and go on from there (not a refusal: it would
                // roll back the file and its rows).
                // Finished by an earlier attempt's last chunk while we sent ours.
                Err(RequestError::Server(s)) if s.status == 404 || s.status == 410 => return self.upload_gone(e, file, s).await,
                Err(RequestError::Server(s)) if s.status == 409 => {
                    conflicts += 1;
                    if conflicts > MAX_OFFSET_CONFLICTS {
                        return Ok(Err(RequestError::BadAnswer(format!("TUS: the upload kept moving under this push ({}); it is tried again later", s.reason()))));
                    }
                    asked = true;
                    match self.cx.authed(|t| { let u = url.clone(); async move { self.cx.client.tus_offset(&u, &t).await } }).await {
                        Ok(o) => o.offset,
                        Err(RequestError::Server(s)) if s.status == 404 || s.status == 410 => return self.upload_gone(e, file, s).await,
                        Err(err) => return Ok(Err(err)),
                    }
                }
                Err(err) => return Ok(Err(err)),
            };
            self.cx.events.file_progress(FileProgress { bucket: file.bucket.clone(), path: file.path.clone(), sent: offset, size: file.size, done: false });
        }
        if asked {
            match self.stored_bytes(file).await {
                Stored::Same => {}
                Stored::Unknown(err) => return Ok(Err(err)),
                Stored::Other => {
                    return Ok(Err(RequestError::BadAnswer("TUS: the upload has all its bytes but Storage does not hold the file yet; it is asked again on the next push".into())))
                }
            }
        }
        Ok(Ok(()))
    }
}
