//! supasync-devserver: a local server that behaves like Supabase (PostgREST, Auth,
//! Realtime, Storage) as the official clients see it, over a real PostgreSQL with real row-level
//! security.
//!
//! No Supabase can run on our build machines (no Docker), and every part of supasync is
//! tested against Supabase, so the project carries this stand-in. It is a test and demo
//! tool, never a production backend. The wire shapes follow
//! `shared/reference/supabase-protocol.md`, and the official supabase-js is the judge of
//! its fidelity (`tests/conformance`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), supasync_devserver::StartError> {
//! let server = supasync_devserver::DevServer::builder()
//!     .migrations("examples/chat/migrations")
//!     .start()
//!     .await?;
//! println!("{} {}", server.url(), server.anon_key());
//! # Ok(()) }
//! ```
//!
//! Layers: [`cluster`] owns a private PostgreSQL; [`database`] bootstraps it like Supabase
//! and applies migrations; [`rest`], [`auth`], [`realtime`] and [`storage`] serve the
//! four APIs;
//! [`gateway`] does what Supabase's API gateway does first (the `apikey` check).

pub mod auth;
mod dev_admin;
pub mod cluster;
pub mod database;
mod error;
pub mod fault_proxy;
pub mod gateway;
pub mod jwt;
mod pgerr;
pub mod realtime;
pub mod rest;
pub mod schema;
pub mod state;
pub mod storage;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use futures_util::StreamExt;
use tokio::sync::{oneshot, RwLock};
use tokio::task::JoinHandle;

pub use cluster::{ClusterOptions, PgCluster};
pub use error::StartError;
pub use jwt::{JwtKeys, DEMO_ANON_KEY, DEMO_SECRET, DEMO_SERVICE_ROLE_KEY};

use state::{AppState, Settings};

/// How to start a [`DevServer`].
#[derive(Debug, Clone)]
pub struct DevServerBuilder {
    port: u16,
    migrations: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    jwt_secret: String,
    jwt_exp_secs: i64,
    realtime_poll_ms: u64,
    schemas: Vec<String>,
    shared_cluster: bool,
    storage_dir: Option<PathBuf>,
}

impl Default for DevServerBuilder {
    fn default() -> Self {
        DevServerBuilder {
            port: 0,
            migrations: None,
            data_dir: None,
            database_url: None,
            jwt_secret: DEMO_SECRET.into(),
            jwt_exp_secs: 3600,
            realtime_poll_ms: 100,
            schemas: vec!["public".into()],
            shared_cluster: false,
            storage_dir: None,
        }
    }
}

impl DevServerBuilder {
    /// HTTP port on 127.0.0.1; 0 (the library's default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// A folder of `*.sql` migrations, applied in name order.
    pub fn migrations(mut self, dir: impl AsRef<Path>) -> Self {
        self.migrations = Some(dir.as_ref().to_path_buf());
        self
    }
    /// Keep the private cluster in this directory (reused on the next start).
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_path_buf());
        self
    }
    /// Use an existing database (a superuser URL) instead of a private cluster.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }
    /// The JWT secret (at least 32 bytes); the demo secret by default.
    pub fn jwt_secret(mut self, secret: impl Into<String>) -> Self {
        self.jwt_secret = secret.into();
        self
    }
    /// Lifetime of access tokens issued by `/auth/v1` (default 3600 s).
    pub fn jwt_expiry_secs(mut self, secs: i64) -> Self {
        self.jwt_exp_secs = secs;
        self
    }
    /// How often Realtime polls for database changes (default 100 ms).
    pub fn realtime_poll_ms(mut self, ms: u64) -> Self {
        self.realtime_poll_ms = ms;
        self
    }
    /// The schemas `/rest/v1` exposes, the first the default (Supabase's "exposed
    /// schemas" setting; `public` by default). Others are asked for with the
    /// `Accept-Profile` / `Content-Profile` headers (supabase-js: `.schema(name)`).
    pub fn schemas<S: Into<String>>(mut self, schemas: impl IntoIterator<Item = S>) -> Self {
        let list: Vec<String> = schemas.into_iter().map(Into::into).filter(|s: &String| !s.is_empty()).collect();
        if !list.is_empty() {
            self.schemas = list;
        }
        self
    }
    /// Keep Storage's files here (default: `storage/` in the data directory, else a
    /// temporary directory removed when the server stops).
    pub fn storage_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.storage_dir = Some(dir.as_ref().to_path_buf());
        self
    }
    /// For test suites: run in one PostgreSQL cluster shared by the whole process (with
    /// durability off), each server in a fresh database copied from a template of its
    /// migrations. Milliseconds per server instead of seconds.
    pub fn shared_test_cluster(mut self) -> Self {
        self.shared_cluster = true;
        self
    }

    /// Start the server; it is ready to serve when this returns.
    pub async fn start(self) -> Result<DevServer, StartError> {
        DevServer::start(self).await
    }
}

/// A running dev server. Dropping it stops it (and its private cluster, if it owns one).
pub struct DevServer {
    url: String,
    database_url: String,
    keys: JwtKeys,
    shutdown: Option<oneshot::Sender<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    state: Arc<AppState>,
    _cluster: Option<Arc<PgCluster>>,
    /// Storage's files when no directory was given (removed on drop).
    _storage_tmp: Option<tempfile::TempDir>,
}

static SHARED_CLUSTER: OnceLock<Arc<PgCluster>> = OnceLock::new();
static SHARED_INIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Remove the data directories of shared test clusters whose process is gone.
fn clean_stale_shared_dirs(tmp: &Path) {
    let Ok(rd) = std::fs::read_dir(tmp) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("supasync-dev-shared-").and_then(|p| p.parse::<i32>().ok()) {
            let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
            if !alive {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

async fn shared_cluster() -> Result<Arc<PgCluster>, StartError> {
    let _g = SHARED_INIT.lock().await;
    if let Some(c) = SHARED_CLUSTER.get() {
        return Ok(c.clone());
    }
    let tmp = std::env::temp_dir();
    clean_stale_shared_dirs(&tmp);
    let dir = tmp.join(format!("supasync-dev-shared-{}", std::process::id()));
    let opts = ClusterOptions {
        data_dir: Some(dir),
        fast_unsafe: true,
    };
    let c = tokio::task::spawn_blocking(move || PgCluster::start(&opts))
        .await
        .map_err(|e| StartError::Io(e.to_string()))??;
    let c = Arc::new(c);
    let _ = SHARED_CLUSTER.set(c.clone());
    Ok(c)
}

impl DevServer {
    /// A builder with the defaults of `supabase start` (demo keys, 100 ms Realtime polls).
    pub fn builder() -> DevServerBuilder {
        DevServerBuilder::default()
    }

    async fn start(b: DevServerBuilder) -> Result<DevServer, StartError> {
        if b.jwt_secret.len() < 32 {
            return Err(StartError::Config("the JWT secret must be at least 32 characters long".into()));
        }
        let (db_url, cluster) = if let Some(url) = &b.database_url {
            database::bootstrap(url).await?;
            if let Some(m) = &b.migrations {
                database::migrate(url, m).await?;
            }
            (url.clone(), None)
        } else if b.shared_cluster {
            let c = shared_cluster().await?;
            let name = format!(
                "supasync_db_{}_{}",
                std::process::id(),
                DB_COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let port = c.port();
            let url_for = move |db: &str| format!("postgres://postgres@127.0.0.1:{port}/{db}");
            database::create_from_template(url_for, b.migrations.as_deref(), &name).await?;
            (c.url(&name), Some(c))
        } else {
            let opts = ClusterOptions {
                data_dir: b.data_dir.clone(),
                fast_unsafe: false,
            };
            let c = tokio::task::spawn_blocking(move || PgCluster::start(&opts))
                .await
                .map_err(|e| StartError::Io(e.to_string()))??;
            let url = c.url("postgres");
            database::bootstrap(&url).await?;
            if let Some(m) = &b.migrations {
                database::migrate(&url, m).await?;
            }
            (url, Some(Arc::new(c)))
        };

        let pg_config = tokio_postgres::Config::from_str(&db_url)
            .map_err(|e| StartError::Config(format!("bad database URL: {e}")))?;
        let mgr = deadpool_postgres::Manager::from_config(
            pg_config,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        // Last in, first out: a request gets the connection used most recently, whose
        // backend has the catalog and the policies cached. First in, first out rotated
        // every request through all the pool's connections, and each cold one cost a
        // few milliseconds (a 0.7 ms request took 2-4 ms that way, measured with curl).
        let pool = deadpool_postgres::Pool::builder(mgr)
            .max_size(24)
            .queue_mode(deadpool_postgres::QueueMode::Lifo)
            .build()
            .map_err(|e| StartError::Config(e.to_string()))?;
        let settings = Settings {
            jwt_exp_secs: b.jwt_exp_secs,
            realtime_poll_ms: b.realtime_poll_ms,
            schemas: b.schemas.clone(),
        };
        let cache = {
            let client = pool.get().await.map_err(|e| StartError::Postgres(e.to_string()))?;
            schema::SchemaCache::load(&client, &settings.schemas).await?
        };
        let (storage_root, storage_tmp) = match (&b.storage_dir, &b.data_dir) {
            (Some(d), _) => (d.clone(), None),
            (None, Some(d)) => (d.join("storage"), None),
            (None, None) => {
                let t = tempfile::Builder::new()
                    .prefix("supasync-dev-storage-")
                    .tempdir()
                    .map_err(|e| StartError::Io(format!("cannot make a directory for Storage's files: {e}")))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let blobs = storage::blobs::BlobStore::open(&storage_root)
            .map_err(|e| StartError::Io(format!("cannot use {} for Storage's files: {e}", storage_root.display())))?;
        let keys = JwtKeys::new(&b.jwt_secret);
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState {
            pool,
            keys: keys.clone(),
            settings,
            schema: RwLock::new(Arc::new(cache)),
            realtime: realtime::hub::Hub::default(),
            blobs,
            stopping,
        });

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", b.port))
            .await
            .map_err(|e| StartError::Io(format!("cannot listen on 127.0.0.1:{}: {e}", b.port)))?;
        let port = listener.local_addr().map_err(|e| StartError::Io(e.to_string()))?.port();

        let mut tasks = vec![];
        tasks.push(tokio::spawn(watch_schema(state.clone(), db_url.clone())));
        let slot = format!(
            "supasync_rt_{}_{}",
            std::process::id(),
            DB_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let slot = realtime::open_slot(&db_url, &slot)
            .await
            .map_err(|e| StartError::Postgres(format!("cannot create the Realtime replication slot: {e}")))?;
        tasks.push(tokio::spawn(realtime::run_change_poller(state.clone(), db_url.clone(), slot)));

        let app = axum::Router::new()
            .merge(rest::router())
            .merge(auth::router())
            .merge(realtime::router())
            .merge(storage::router())
            .merge(dev_admin::router())
            .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
            .layer(cors())
            .with_state(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tasks.push(tokio::spawn(async move {
            // Realtime frames are small and clients rarely send: without TCP_NODELAY,
            // Nagle's algorithm waits for delayed ACKs and adds up to 200 ms per frame.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        }));

        Ok(DevServer {
            url: format!("http://127.0.0.1:{port}"),
            database_url: db_url,
            keys,
            shutdown: Some(tx),
            stop,
            tasks,
            state,
            _cluster: cluster,
            _storage_tmp: storage_tmp,
        })
    }

    /// `http://127.0.0.1:PORT`, what `SUPABASE_URL` is set to.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The anon key.
    pub fn anon_key(&self) -> &str {
        &self.keys.anon_key
    }
    /// The service-role key (for tests and tools; the SDK never needs it).
    pub fn service_role_key(&self) -> &str {
        &self.keys.service_role_key
    }
    /// A superuser URL of the database behind the server.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }
    /// Expire every access token issued so far, as if they all ran out at once (tests:
    /// a token expiring mid-push). Refresh tokens stay valid.
    pub fn expire_tokens(&self) {
        self.keys.expire_issued_tokens();
    }

    /// The signing keys, so tests can mint their own tokens (expired, odd claims…).
    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }
    /// How many Realtime channels are joined right now.
    pub fn realtime_channels(&self) -> usize {
        self.state.realtime.channel_count()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// CORS as Supabase's gateway answers it: any origin, method and header, and the
/// answer headers a browser client reads exposed (a fetch cannot see others): PostgREST's
/// `Content-Range`, Storage's `ETag`, `Content-Disposition` and `X-Transformations`, and
/// TUS's `Location`, `Upload-Offset` and friends, without which a resumable upload from
/// a page cannot learn where its upload is.
fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::HeaderName;
    let exposed = [
        "content-range", "content-location", "location", "etag", "content-disposition", "x-transformations",
        "upload-offset", "upload-length", "tus-resumable", "tus-version", "tus-extension", "tus-max-size",
        "x-supabase-api-version", "x-sb-error-code",
    ];
    tower_http::cors::CorsLayer::very_permissive().expose_headers(exposed.map(HeaderName::from_static))
}

/// Log to stderr, filtered by `SUPASYNC_DEV_LOG` (default `warn`). Tokens are never
/// logged at any level.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUPASYNC_DEV_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
}

/// Reload the schema cache whenever DDL runs (`NOTIFY pgrst` from the event trigger).
async fn watch_schema(st: Arc<AppState>, url: String) {
    let Ok((client, mut conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await else {
        tracing::warn!("schema watcher: cannot connect; the cache reloads on misses only");
        return;
    };
    let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                    let _ = ntx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    if client.batch_execute("LISTEN pgrst").await.is_err() {
        return;
    }
    while nrx.recv().await.is_some() {
        // Coalesce a burst of DDL into one reload.
        tokio::time::sleep(Duration::from_millis(20)).await;
        while nrx.try_recv().is_ok() {}
        if let Err(e) = st.reload_schema().await {
            tracing::warn!("schema reload failed: {e}");
        }
    }
}
