//! Listeners the foreign side implements (callback interfaces) and the handle that
//! stops a subscription: cancelled by `cancel()`, by dropping the handle (garbage
//! collection, `use`/`with` blocks), or when the replica closes.

use std::sync::{Arc, Mutex};

use futures_channel::oneshot;

/// Receives a live query's rows: now, then after every change that alters them.
#[uniffi::export(with_foreign)]
pub trait RowsListener: Send + Sync {
    /// The rows, as a JSON array of `{local_id, row, status}`.
    fn on_rows(&self, rows_json: String);
    /// The query failed (the subscription ends).
    fn on_error(&self, kind: String, message: String);
    /// The subscription ended (cancelled, or the replica closed).
    fn on_end(&self);
}

/// Receives status snapshots (JSON: `{phase, mode, pending, rejected, last_sync, last_error}`).
#[uniffi::export(with_foreign)]
pub trait StatusListener: Send + Sync {
    fn on_status(&self, status_json: String);
    fn on_end(&self);
}

/// Receives a channel's events as JSON: `{type: "broadcast", event, payload}`,
/// `{type: "presence", state}`, `{type: "join" | "leave", key, metas}`,
/// `{type: "state", state}`.
#[uniffi::export(with_foreign)]
pub trait ChannelListener: Send + Sync {
    fn on_event(&self, event_json: String);
}

/// A running subscription; it stops when cancelled or dropped.
#[derive(uniffi::Object)]
pub struct Subscription {
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Subscription {
    pub(crate) fn new() -> (Arc<Subscription>, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Arc::new(Subscription { stop: Mutex::new(Some(tx)) }), rx)
    }
}

#[uniffi::export]
impl Subscription {
    /// Stop it (idempotent).
    pub fn cancel(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}
