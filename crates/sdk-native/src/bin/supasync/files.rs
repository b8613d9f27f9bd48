//! `supasync files …`: the replica's files in Supabase Storage, as the SDK's file verbs
//! (`upload`, `read`, `file`, `files`, `remove`). An upload is kept in the replica at
//! once and goes with the next `sync`, before any row that names it.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};
use supasync_core::Engine;
use supasync_native::{ReqwestHttp, SqliteStore};

use super::{fail, Failure};

#[derive(Subcommand)]
pub enum FilesCmd {
    /// Keep FILE as BUCKET/PATH and queue its upload (it goes with the next `sync`).
    Upload {
        bucket: String,
        path: String,
        /// The file to read.
        #[arg(long)]
        file: PathBuf,
        /// Its MIME type (what Storage serves it as, and what a bucket's allowed types
        /// are checked against).
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
    },
    /// Write BUCKET/PATH's bytes to OUT: from the replica when kept, else downloaded.
    Read {
        bucket: String,
        path: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// What the replica knows of BUCKET/PATH (status, size, whether it is kept here).
    File { bucket: String, path: String },
    /// The files of BUCKET the replica knows.
    List { bucket: String },
    /// Remove BUCKET/PATH here at once, and from Storage with the next `sync`.
    Remove { bucket: String, path: String },
}

pub async fn run(e: &Engine<SqliteStore, ReqwestHttp>, cmd: FilesCmd) -> Result<Value, Failure> {
    Ok(match cmd {
        FilesCmd::Upload { bucket, path, file, content_type } => {
            let bytes = std::fs::read(&file).map_err(|x| fail("invalid", format!("cannot read {}: {x}", file.display())))?;
            json!(e.upload_file(&bucket, &path, bytes, &content_type).await?)
        }
        FilesCmd::Read { bucket, path, out } => {
            let bytes = e.read_file(&bucket, &path).await?;
            std::fs::write(&out, &bytes).map_err(|x| fail("io", format!("cannot write {}: {x}", out.display())))?;
            json!({"bucket": bucket, "path": path, "bytes": bytes.len(), "out": out})
        }
        FilesCmd::File { bucket, path } => json!(e.file(&bucket, &path).await?),
        FilesCmd::List { bucket } => json!(e.files(&bucket).await?),
        FilesCmd::Remove { bucket, path } => {
            e.remove_file(&bucket, &path).await?;
            json!({"removed": format!("{bucket}/{path}")})
        }
    })
}
