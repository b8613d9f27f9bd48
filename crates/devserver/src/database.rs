//! Preparing a database the way Supabase does: the bootstrap of roles, the `auth` schema,
//! the `supabase_realtime` publication and default grants, then the app's migrations in
//! name order (recorded in `supabase_migrations.schema_migrations`, so a reused data
//! directory only applies new files).
//!
//! Tests that want their own database get one from a template: the first request for a
//! given migrations folder builds a template database, every later one is a `CREATE
//! DATABASE … TEMPLATE`, which takes milliseconds instead of a new cluster's seconds.

use std::path::{Path, PathBuf};

use tokio_postgres::NoTls;

use crate::error::StartError;

const BOOTSTRAP_SQL: &str = include_str!("bootstrap.sql");
const STORAGE_SQL: &str = include_str!("storage/schema.sql");

/// Connect once to `url` (a short-lived admin connection).
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, StartError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| StartError::Postgres(format!("cannot connect to the database: {}", crate::pgerr::describe(&e))))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Apply the Supabase bootstrap to the database at `url`.
pub async fn bootstrap(url: &str) -> Result<(), StartError> {
    let client = connect(url).await?;
    // Roles are cluster-wide; two databases bootstrapping at once could race on CREATE
    // ROLE, so take a cluster-wide advisory lock.
    client.execute("SELECT pg_advisory_lock(4242001)", &[]).await?;
    let mut res = client.batch_execute(BOOTSTRAP_SQL).await;
    if res.is_ok() {
        res = client.batch_execute(STORAGE_SQL).await;
    }
    client.execute("SELECT pg_advisory_unlock(4242001)", &[]).await?;
    res.map_err(|e| StartError::Postgres(format!("bootstrap failed: {}", crate::pgerr::describe(&e))))
}

/// The `*.sql` files of a migrations folder, in name order.
pub fn migration_files(dir: &Path) -> Result<Vec<PathBuf>, StartError> {
    let rd = std::fs::read_dir(dir).map_err(|e| StartError::Io(format!("migrations folder {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Apply every migration of `dir` not yet recorded, each in its own transaction.
pub async fn migrate(url: &str, dir: &Path) -> Result<usize, StartError> {
    let files = migration_files(dir)?;
    let mut client = connect(url).await?;
    let mut applied = 0;
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let version = name.trim_end_matches(".sql").to_string();
        let done = client
            .query_opt("SELECT 1 FROM supabase_migrations.schema_migrations WHERE version = $1", &[&version])
            .await?;
        if done.is_some() {
            continue;
        }
        let sql = std::fs::read_to_string(&file).map_err(|e| StartError::Migration {
            file: name.clone(),
            message: e.to_string(),
        })?;
        let tx = client.transaction().await?;
        if let Err(e) = tx.batch_execute(&sql).await {
            return Err(StartError::Migration {
                file: name,
                message: crate::pgerr::describe(&e),
            });
        }
        tx.execute(
            "INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await?;
        tx.commit().await?;
        applied += 1;
    }
    Ok(applied)
}

/// A name for the template of a migrations folder: a hash of its files' names and
/// contents, so a changed migration gets a fresh template.
pub fn template_name(dir: Option<&Path>) -> Result<String, StartError> {
    // FNV-1a: stable across runs and builds (std's hasher is not).
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    feed(BOOTSTRAP_SQL.as_bytes());
    if let Some(dir) = dir {
        for f in migration_files(dir)? {
            feed(f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().as_bytes());
            feed(&std::fs::read(&f).map_err(|e| StartError::Io(format!("{}: {e}", f.display())))?);
        }
    }
    Ok(format!("supasync_tpl_{h:016x}"))
}

/// Create `name` as a copy of the template for `migrations` in the cluster reached by
/// `admin_url` (a URL on the `postgres` database), building the template first if needed.
pub async fn create_from_template(
    admin_url_for: impl Fn(&str) -> String,
    migrations: Option<&Path>,
    name: &str,
) -> Result<(), StartError> {
    static TEMPLATE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = TEMPLATE_LOCK.lock().await;
    let template = template_name(migrations)?;
    let admin = connect(&admin_url_for("postgres")).await?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await?
        .is_some();
    if !exists {
        // Build under a scratch name, then rename: a half-built template is never used.
        let scratch = format!("{template}_building");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{scratch}\""))
            .await?;
        admin.batch_execute(&format!("CREATE DATABASE \"{scratch}\"")).await?;
        let url = admin_url_for(&scratch);
        bootstrap(&url).await?;
        if let Some(dir) = migrations {
            migrate(&url, dir).await?;
        }
        retry_busy(&admin, &format!("ALTER DATABASE \"{scratch}\" RENAME TO \"{template}\"")).await?;
    }
    retry_busy(&admin, &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")).await?;
    // Per-database settings are not copied from a template.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" SET search_path TO \"$user\", public, extensions"
        ))
        .await?;
    Ok(())
}

/// Run a statement that fails while a just-closed connection still lingers on the
/// database (SQLSTATE 55006), retrying for a moment.
async fn retry_busy(client: &tokio_postgres::Client, sql: &str) -> Result<(), StartError> {
    let mut tries = 0;
    loop {
        match client.batch_execute(sql).await {
            Ok(()) => return Ok(()),
            Err(e) if tries < 100 && e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
