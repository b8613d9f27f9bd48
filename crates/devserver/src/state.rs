//! The state every request handler shares: the connection pool, the keys, the schema
//! cache, the Realtime hub and Storage's files.

use std::sync::Arc;

use tokio::sync::RwLock;

use crate::jwt::JwtKeys;
use crate::schema::{SchemaCache, Table};

/// Tunables fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lifetime of access tokens issued by `/auth/v1`, in seconds.
    pub jwt_exp_secs: i64,
    /// How often Realtime polls the replication slot.
    pub realtime_poll_ms: u64,
    /// Schemas exposed over REST.
    pub schemas: Vec<String>,
}

/// Shared by all handlers.
pub struct AppState {
    pub pool: deadpool_postgres::Pool,
    pub keys: JwtKeys,
    pub settings: Settings,
    pub schema: RwLock<Arc<SchemaCache>>,
    pub realtime: crate::realtime::hub::Hub,
    /// Storage's bytes on disk.
    pub blobs: crate::storage::blobs::BlobStore,
    /// Turns true when the server stops: open sockets close (they outlive the HTTP
    /// server's graceful shutdown, being upgraded connections).
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    /// The current schema cache.
    pub async fn cache(&self) -> Arc<SchemaCache> {
        self.schema.read().await.clone()
    }

    /// Reload the schema cache from the catalog.
    pub async fn reload_schema(&self) -> Result<Arc<SchemaCache>, String> {
        let client = self.client().await?;
        let fresh = Arc::new(
            SchemaCache::load(&client, &self.settings.schemas)
                .await
                .map_err(|e| crate::pgerr::describe(&e))?,
        );
        *self.schema.write().await = fresh.clone();
        Ok(fresh)
    }

    /// A pooled connection; the error says why none could be had.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, String> {
        self.pool.get().await.map_err(|e| format!("could not get a database connection: {e}"))
    }

    /// Find a table, reloading the cache once if it is not known yet.
    pub async fn table(&self, schema: &str, name: &str) -> Option<(Arc<SchemaCache>, Arc<Table>)> {
        let cache = self.cache().await;
        if let Some(t) = cache.table(schema, name) {
            return Some((cache, t));
        }
        let cache = self.reload_schema().await.ok()?;
        let t = cache.table(schema, name)?;
        Some((cache, t))
    }
}
