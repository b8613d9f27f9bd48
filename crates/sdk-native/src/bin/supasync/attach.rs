//! `supasync attach` and `supasync deployments`: an existing app's SQLite database,
//! captured as the app writes it and mirrored into its own tenant schema
//! (supasync-attach). They need no account: the file, the deployment's config and a
//! Postgres connection string are all they use.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::{json, Value};
use supasync_attach::capture::{self, DEFAULT_WAIT};
use supasync_attach::deployment::{back_up, Deployment, Deployments, Interval};
use supasync_attach::progress::{Progress, Step};
use supasync_attach::restore::restore;
use supasync_attach::schedule::{self, ask_daemon, daemon_running, local_status, sync_deployment, Settings};
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
    drop(conn);
    deployments.save(&d)?;
    let synced = match deployments.database_url() {
        Ok(_) => Some(serde_json::to_value(sync_deployment(&deployments, &d, false, &mut display()).await.map_err(network)?).unwrap_or(Value::Null)),
        Err(_) => None,
    };
    Ok(json!({"deployment": name, "db": db.display().to_string(), "tenant_schema": tenant_schema, "interval": String::from(d.interval),
              "backup": backup.display().to_string(), "tables": tables_json(&installed.tables), "synced": synced}))
}

/// A failure to reach the server said as such (the connection string is never in it).
fn network(e: AttachError) -> Failure {
    match &e {
        AttachError::Postgres(p) if p.as_db_error().is_none() => fail("network", format!("cannot reach the database to sync to ({e})")),
        _ => e.into(),
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, Failure> {
    supasync_attach::connect::connect(url).await.map_err(network)
}

/// Progress of a long sync on stderr: one line rewritten in place on a terminal, a
/// JSON line at most once a second otherwise (a log, a pipe).
fn display() -> impl Progress {
    let terminal = std::io::stderr().is_terminal();
    let mut last: Option<Instant> = None;
    move |s: &Step| {
        let finished = s.total == Some(s.done);
        let every = if terminal { Duration::from_millis(200) } else { Duration::from_secs(1) };
        if last.is_some_and(|t| t.elapsed() < every) && !finished {
            return;
        }
        last = Some(Instant::now());
        let mut err = std::io::stderr();
        if terminal {
            let of = s.total.map(|t| format!("/{t} ({}%)", (s.done * 100).checked_div(t).unwrap_or(100))).unwrap_or_default();
            let _ = write!(err, "\r\x1b[K{} {}: {}{of} rows{}", s.phase, s.table, s.done, if finished { "\n" } else { "" });
        } else {
            let _ = writeln!(err, "{}", json!({"progress": s}));
        }
    }
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
    /// Build a new SQLite file for NAME from its tenant schema (on a new host, say),
    /// check it against the server (rows and a checksum per table), and make it NAME's
    /// database here, syncing on from there.
    Restore {
        name: String,
        /// The new file (it must not exist).
        #[arg(long)]
        to: PathBuf,
    },
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
                    Ok(d) => status(config, &d, pg.as_ref()).await,
                    Err(e) => json!({"error": e.to_string()}),
                });
            }
            json!({"deployments": out, "daemon": daemon_running(config).await})
        }
        DeploymentsCmd::SyncNow { name } => {
            let d = all.get(&name)?;
            // A running daemon does it (in turn with its own syncs of NAME); else this process.
            match ask_daemon(config, &name).await.map_err(|e| fail("network", e.to_string()))? {
                Some(answer) if answer.get("error").is_some() && answer.get("sync").is_none() => return Err(fail("invalid", answer["error"].as_str().unwrap_or_default().to_string())),
                Some(answer) if answer["sync"] == "failed" => return Err(fail("network", format!("the daemon's sync failed: {}", answer["error"].as_str().unwrap_or_default()))),
                Some(answer) => json!({"deployment": name, "via": "daemon", "synced": answer["synced"]}),
                None => json!({"deployment": name, "via": "this process", "synced": sync_deployment(&all, &d, false, &mut display()).await.map_err(network)?}),
            }
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
            saved(&all, d).await?
        }
        DeploymentsCmd::Enable { name } => saved(&all, Deployment { enabled: true, ..all.get(&name)? }).await?,
        DeploymentsCmd::Disable { name } => saved(&all, Deployment { enabled: false, ..all.get(&name)? }).await?,
        DeploymentsCmd::Restore { name, to } => {
            let mut pg = connect(&all.database_url()?).await?;
            let report = restore(&mut pg, &name, &to, &mut display()).await.map_err(network)?;
            let interval = Interval::try_from(report.interval.clone()).unwrap_or(Interval::Manual);
            // NAME's config here now names the new file (made from the server's if new).
            let d = match all.get(&name) {
                Ok(d) => Deployment { db: to.clone(), ..d },
                Err(_) => Deployment { name: name.clone(), db: to.clone(), tenant_schema: report.tenant_schema.clone(), interval, enabled: report.enabled },
            };
            all.save(&d)?;
            json!({"restored": report, "deployment": d})
        }
    })
}

/// Save a deployment's changed config; the daemon reads it at its next tick, and the
/// server's copy (`client_config`) is updated now if the server can be reached (else
/// at its next sync).
async fn saved(all: &Deployments, d: Deployment) -> Result<Value, Failure> {
    all.save(&d)?;
    let on_server = match all.database_url() {
        Ok(url) => match connect(&url).await {
            Ok(pg) => schedule::publish_config(&pg, &d).await.is_ok(),
            Err(_) => false,
        },
        Err(_) => false,
    };
    let mut out = json!(d);
    out["server_updated"] = json!(on_server);
    Ok(out)
}

/// `supasync daemon`: every deployment in `config` on its interval, until stopped
/// (Ctrl-C, or SIGTERM from systemd). One JSON line per event on stdout (readable
/// text on a terminal).
pub async fn daemon(config: &Path, retry: Duration) -> Result<Value, Failure> {
    let terminal = std::io::stdout().is_terminal();
    // A closed stdout (the journal restarting, a pipe's reader gone) must not stop it.
    let log: Arc<dyn Fn(Value) + Send + Sync> = Arc::new(move |v: Value| {
        let mut out = std::io::stdout().lock();
        let _ = if terminal { writeln!(out, "{}\n", crate::readable::render(&v).trim_end()) } else { writeln!(out, "{v}") };
        let _ = out.flush();
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| fail("runtime", e.to_string()))?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    schedule::run_daemon(Deployments::new(config), Settings { retry, ..Settings::default() }, log, stop).await?;
    Ok(Value::Null)
}

/// One deployment's status: its config, the rows waiting in its file's log, and its
/// last sync from the server's history (when the server is reachable).
async fn status(dir: &Path, d: &Deployment, pg: Option<&tokio_postgres::Client>) -> Value {
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
    json!({"name": d.name, "db": d.db, "tenant_schema": d.tenant_schema, "interval": String::from(d.interval), "enabled": d.enabled, "pending": pending, "last_sync": last, "here": local_status(&Deployments::new(dir), &d.name)})
}
