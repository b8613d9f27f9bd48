//! `supasync attach` and `supasync deployments`: an existing app's SQLite database,
//! captured as the app writes it and mirrored into its own tenant schema
//! (supasync-attach). They need no account: the file, the deployment's config and a
//! Postgres connection string are all they use.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{json, Value};
use supasync_attach::capture::{self, DEFAULT_WAIT};
use supasync_attach::deployment::{back_up, Deployment, Deployments, Interval};
use supasync_attach::push::push;
use supasync_attach::tenant::METADATA;
use supasync_attach::{AttachError, KeyRule};

use crate::{fail, Failure};

impl From<AttachError> for Failure {
    fn from(e: AttachError) -> Self {
        let kind = match &e {
            AttachError::NotADatabase { .. } | AttachError::Invalid(_) | AttachError::Value { .. } => "invalid",
            AttachError::Busy { .. } => "busy",
            AttachError::Postgres(_) => "network",
            AttachError::Sqlite(_) | AttachError::Corrupt(_) => "store",
        };
        fail(kind, e.to_string())
    }
}

/// What `supasync attach` was asked to do.
pub enum Action {
    /// Capture every table (again: it is safe to repeat, and picks up new tables).
    Install,
    /// The rows waiting in the change log, per table.
    Pending,
    /// Remove the triggers and the log.
    Detach,
}

/// The deployments' config directory: `--config`, else `~/.supasync/deployments`.
pub fn config_dir(given: &Option<PathBuf>) -> PathBuf {
    given.clone().unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".supasync/deployments"))
}

pub fn run(db: &Path, action: Action) -> Result<Value, Failure> {
    let mut conn = capture::open(db, DEFAULT_WAIT)?;
    Ok(match action {
        Action::Install => {
            let done = capture::install(&mut conn)?;
            json!({"db": db.display().to_string(), "journal_mode": done.journal_mode, "tables": tables_json(&done.tables), "fresh": done.fresh})
        }
        Action::Pending => json!({"db": db.display().to_string(), "pending": capture::pending(&conn)?}),
        Action::Detach => {
            capture::detach(&mut conn)?;
            json!({"detached": db.display().to_string()})
        }
    })
}

fn tables_json(tables: &[supasync_attach::AppTable]) -> Vec<Value> {
    tables
        .iter()
        .map(|t| {
            let key = match &t.key {
                KeyRule::PrimaryKey(cols) => json!(cols),
                KeyRule::RowId => json!("rowid"),
            };
            json!({"name": t.name, "key": key, "columns": t.columns.len()})
        })
        .collect()
}

/// `supasync attach --deployment`: make `db` a deployment that syncs into
/// `tenant_schema`: back the file up, capture it, write its config, and (when a
/// database to sync to is configured) copy it whole to the server now.
pub async fn enable(config: &Path, db: &Path, name: &str, tenant_schema: &str, interval: &str) -> Result<Value, Failure> {
    let deployments = Deployments::new(config);
    let d = Deployment { name: name.into(), db: db.to_path_buf(), tenant_schema: tenant_schema.into(), interval: Interval::try_from(interval.to_string())?, enabled: true };
    d.tenant()?;
    let mut conn = capture::open(db, DEFAULT_WAIT)?;
    let backup = back_up(&conn, &deployments, name, supasync_native::system_now_ms())?;
    let installed = capture::install(&mut conn)?;
    deployments.save(&d)?;
    let synced = match deployments.database_url() {
        Ok(url) => Some(serde_json::to_value(push(&mut conn, &mut connect(&url).await?, &d.tenant()?).await?).unwrap_or(Value::Null)),
        Err(_) => None,
    };
    Ok(json!({"deployment": name, "db": db.display().to_string(), "tenant_schema": tenant_schema, "interval": String::from(d.interval),
              "backup": backup.display().to_string(), "tables": tables_json(&installed.tables), "synced": synced}))
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, Failure> {
    // The connection string holds a password: never echoed in errors.
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| fail("network", format!("cannot reach the database to sync to: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(target: "supasync::attach", "database connection ended: {e}");
        }
    });
    Ok(client)
}

#[derive(Subcommand)]
pub enum DeploymentsCmd {
    /// Each deployment (or NAME): its config, rows waiting, and the last sync.
    Status { name: Option<String> },
    /// Sync NAME now (SQLite to Supabase), whatever its interval.
    SyncNow { name: String },
    /// NAME's sync history on the server, newest first.
    History {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// How often NAME syncs: manual, hourly, daily, or e.g. 1m, 5m, 2h.
    SetInterval { name: String, interval: String },
    Enable { name: String },
    Disable { name: String },
}

pub async fn deployments(config: &Path, cmd: DeploymentsCmd) -> Result<Value, Failure> {
    let all = Deployments::new(config);
    Ok(match cmd {
        DeploymentsCmd::Status { name } => {
            let list = match name {
                Some(n) => vec![Ok(all.get(&n)?)],
                None => all.all()?,
            };
            let pg = match all.database_url() {
                Ok(url) => connect(&url).await.ok(),
                Err(_) => None,
            };
            let mut out = vec![];
            for d in list {
                out.push(match d {
                    Ok(d) => status(&d, pg.as_ref()).await,
                    Err(e) => json!({"error": e.to_string()}),
                });
            }
            json!({"deployments": out})
        }
        DeploymentsCmd::SyncNow { name } => {
            let d = all.get(&name)?;
            let mut conn = capture::open(&d.db, DEFAULT_WAIT)?;
            let mut pg = connect(&all.database_url()?).await?;
            json!({"deployment": name, "synced": push(&mut conn, &mut pg, &d.tenant()?).await?})
        }
        DeploymentsCmd::History { name, limit } => {
            all.get(&name)?;
            let pg = connect(&all.database_url()?).await?;
            let rows = pg
                .query(
                    &format!("SELECT jsonb_build_object('direction', direction, 'started_at', started_at, 'finished_at', finished_at, 'rows_upserted', rows_upserted, 'rows_deleted', rows_deleted, 'tables', tables, 'error', error) FROM {METADATA}.owui_sync_log WHERE deployment = $1 ORDER BY id DESC LIMIT $2"),
                    &[&name, &limit],
                )
                .await
                .map_err(|e| fail("network", e.to_string()))?;
            json!({"deployment": name, "history": rows.iter().map(|r| r.get::<_, Value>(0)).collect::<Vec<_>>()})
        }
        DeploymentsCmd::SetInterval { name, interval } => {
            let mut d = all.get(&name)?;
            d.interval = Interval::try_from(interval)?;
            all.save(&d)?;
            json!(d)
        }
        DeploymentsCmd::Enable { name } => set_enabled(&all, &name, true)?,
        DeploymentsCmd::Disable { name } => set_enabled(&all, &name, false)?,
    })
}

fn set_enabled(all: &Deployments, name: &str, enabled: bool) -> Result<Value, Failure> {
    let mut d = all.get(name)?;
    d.enabled = enabled;
    all.save(&d)?;
    Ok(json!(d))
}

/// One deployment's status: its config, the rows waiting in its file's log, and its
/// last sync from the server's history (when the server is reachable).
async fn status(d: &Deployment, pg: Option<&tokio_postgres::Client>) -> Value {
    let pending = capture::open(&d.db, DEFAULT_WAIT).and_then(|c| capture::pending(&c)).map(|p| json!(p)).unwrap_or_else(|e| json!({"error": e.to_string()}));
    let last = match pg {
        Some(pg) => pg
            .query_opt(
                &format!("SELECT jsonb_build_object('finished_at', finished_at, 'rows_upserted', rows_upserted, 'rows_deleted', rows_deleted, 'error', error) FROM {METADATA}.owui_sync_log WHERE deployment = $1 ORDER BY id DESC LIMIT 1"),
                &[&d.name],
            )
            .await
            .ok()
            .flatten()
            .map(|r| r.get::<_, Value>(0)),
        None => None,
    };
    json!({"name": d.name, "db": d.db, "tenant_schema": d.tenant_schema, "interval": String::from(d.interval), "enabled": d.enabled, "pending": pending, "last_sync": last})
}
