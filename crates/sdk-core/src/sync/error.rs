//! The sync layer's error: what a push, a pull or a remote change can fail with. The
//! engine turns it into [`EngineError`](crate::engine::EngineError) variant for
//! variant, so callers see the same errors as before the layers were split.

use crate::local::schema::SchemaError;
use crate::local::store::StoreError;
use crate::net::client::RequestError;

/// Why a sync step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// A table the schema does not declare.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The local store failed; nothing of the step's batch was written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server failed or refused in a way the step cannot settle itself.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// No session to sync with.
    #[error("not signed in")]
    NotSignedIn,
}
