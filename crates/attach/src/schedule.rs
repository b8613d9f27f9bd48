//! The scheduler: every enabled deployment in a config directory synced on its own
//! interval, several at once (`supasync daemon --config DIR`), and one deployment
//! synced now, by the daemon if one runs, else by the caller.
//!
//! The directory is read again at every tick, so a deployment added, edited, disabled
//! or removed (by `supasync deployments …` or by hand) is in effect within a second,
//! with no restart. Each deployment keeps a small status file beside its config
//! (`status/NAME.json`: when its last sync started and ended, its outcome, its progress
//! while it runs): it is what `deployments status` shows when the server is down, and
//! what a restarted daemon schedules from.
//!
//! A deployment never syncs twice at once: each sync holds `status/NAME.lock` (an OS
//! file lock, let go by the OS if the process dies), whoever runs it. A sync that fails
//! (the server down, the file locked) is tried again after `Settings::retry`, or its
//! interval if that is shorter; the failure is in its status and, once the server is
//! back, in the server's history. Killing the daemon mid-sync is safe: each batch is
//! forgotten only after the other side committed it (see `push`, `pull`).
//!
//! `sync-now` reaches a running daemon through a Unix socket in the directory
//! (`daemon.sock`, one JSON line each way), so the sync is the daemon's: it waits its
//! turn behind a sync of the same deployment already running, and shows in the
//! daemon's log like any other.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::capture::{self, DEFAULT_WAIT};
use crate::connect::connect;
use crate::deployment::{Deployment, Deployments, Interval};
use crate::error::AttachError;
use crate::progress::{Progress, Step};
use crate::sync::{sync, SyncReport};
use crate::tenant::METADATA;

/// How the daemon paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How often the directory is read and due deployments started.
    pub tick: Duration,
    /// How soon a failed sync is tried again (at most its interval).
    pub retry: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { tick: Duration::from_secs(1), retry: Duration::from_secs(60) }
    }
}

/// A deployment's local status file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalStatus {
    pub last_started_ms: Option<i64>,
    pub last_finished_ms: Option<i64>,
    /// Whether the last sync that finished succeeded.
    pub last_ok: Option<bool>,
    pub last_error: Option<String>,
    pub last_report: Option<Value>,
    /// While a sync runs: how far it has come.
    pub progress: Option<Value>,
    /// Failures the server's history could not be told of (it was down, or the file
    /// could not be opened first): written to `owui_sync_log` at the next connection.
    #[serde(default)]
    pub unlogged_failures: Vec<UnloggedFailure>,
    /// Failed syncs in a row (the retry delay doubles with each).
    #[serde(default)]
    pub failures_in_a_row: u32,
}

/// A failed sync not yet in the server's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnloggedFailure {
    pub started_ms: i64,
    pub finished_ms: i64,
    pub error: String,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn status_dir(all: &Deployments) -> PathBuf {
    all.dir().join("status")
}

/// A deployment's local status (empty if it never synced here).
pub fn local_status(all: &Deployments, name: &str) -> LocalStatus {
    std::fs::read_to_string(status_dir(all).join(format!("{name}.json"))).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn save_status(all: &Deployments, name: &str, s: &LocalStatus) {
    let dir = status_dir(all);
    let path = dir.join(format!("{name}.json"));
    let tmp = dir.join(format!("{name}.json.tmp"));
    // A status that cannot be written is not worth failing a sync for.
    let _ = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&tmp, serde_json::to_vec(s).unwrap_or_default())).and_then(|_| std::fs::rename(&tmp, &path));
}

/// The lock a sync of `name` holds, or `None` if another sync of it holds it.
fn try_lock(all: &Deployments, name: &str) -> Result<Option<File>, AttachError> {
    let dir = status_dir(all);
    std::fs::create_dir_all(&dir).map_err(|e| AttachError::Invalid(format!("{}: {e}", dir.display())))?;
    let path = dir.join(format!("{name}.lock"));
    let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(|e| AttachError::Invalid(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(AttachError::Invalid(format!("{}: {e}", path.display()))),
    }
}

/// Sync one deployment now (both ways), holding its lock, keeping its status file, and
/// keeping the server's copy of its config (interval, enabled) in step with its file.
/// If another sync of it is running: waits for it when `wait`, else is `Busy`.
pub async fn sync_deployment(all: &Deployments, d: &Deployment, wait: bool, progress: &mut dyn Progress) -> Result<SyncReport, AttachError> {
    let lock = loop {
        match try_lock(all, &d.name)? {
            Some(lock) => break lock,
            None if wait => tokio::time::sleep(Duration::from_millis(100)).await,
            None => return Err(AttachError::Busy { what: format!("another sync of {} is running", d.name), waited_ms: 0 }),
        }
    };
    let mut status = local_status(all, &d.name);
    status.last_started_ms = Some(now_ms());
    status.progress = None;
    save_status(all, &d.name, &status);
    let mut reached_log = false;
    let outcome = run_one(all, d, &mut status, &mut reached_log, progress).await;
    status.last_finished_ms = Some(now_ms());
    status.last_ok = Some(outcome.is_ok());
    status.failures_in_a_row = if outcome.is_ok() { 0 } else { status.failures_in_a_row.saturating_add(1) };
    status.progress = None;
    match &outcome {
        Ok(report) => {
            status.last_error = None;
            status.last_report = serde_json::to_value(report).ok();
        }
        Err(e) => {
            status.last_error = Some(e.to_string());
            // The sync logs its own failure on the server, unless it never got that far
            // or the server went away under it.
            let server_gone = matches!(e, AttachError::Postgres(p) if p.as_db_error().is_none());
            if !reached_log || server_gone {
                status.unlogged_failures.push(UnloggedFailure { started_ms: status.last_started_ms.unwrap_or(0), finished_ms: now_ms(), error: e.to_string() });
            }
        }
    }
    save_status(all, &d.name, &status);
    drop(lock);
    outcome
}

async fn run_one(all: &Deployments, d: &Deployment, status: &mut LocalStatus, reached_log: &mut bool, progress: &mut dyn Progress) -> Result<SyncReport, AttachError> {
    let tenant = d.tenant()?;
    let mut pg = connect(&all.database_url()?).await?;
    // The server is back: first, the failures it could not hear of.
    if !status.unlogged_failures.is_empty() {
        crate::setup::ensure_metadata(&mut pg).await?;
        for f in &status.unlogged_failures {
            pg.execute(
                &format!("INSERT INTO {METADATA}.owui_sync_log (deployment, direction, started_at, finished_at, error) VALUES ($1, 'both', to_timestamp($2::float8 / 1000), to_timestamp($3::float8 / 1000), $4)"),
                &[&d.name, &(f.started_ms as f64), &(f.finished_ms as f64), &f.error],
            )
            .await?;
        }
        status.unlogged_failures.clear();
        save_status(all, &d.name, status);
    }
    let mut db = capture::open(&d.db, DEFAULT_WAIT)?;
    *reached_log = true;
    // Progress to the caller, and to the status file (at most once a second).
    let mut last_saved = 0;
    let mut both = |s: &Step| {
        progress.step(s);
        if now_ms() - last_saved >= 1000 {
            last_saved = now_ms();
            status.progress = serde_json::to_value(s).ok();
            save_status(all, &d.name, status);
        }
    };
    let report = sync(&mut db, &mut pg, &tenant, &mut both).await?;
    publish_config(&pg, d).await?;
    Ok(report)
}

/// Keep the server's copy of a deployment's config (`client_config`: interval,
/// enabled) in step with its file, which is the one the scheduler follows.
pub async fn publish_config(pg: &tokio_postgres::Client, d: &Deployment) -> Result<(), AttachError> {
    pg.execute(
        &format!("UPDATE {METADATA}.client_config SET sync_interval = $2, enabled = $3, updated_at = now() WHERE deployment = $1 AND (sync_interval, enabled) IS DISTINCT FROM ($2, $3)"),
        &[&d.name, &String::from(d.interval), &d.enabled],
    )
    .await?;
    Ok(())
}

/// When a deployment is next due, from its status: its interval after its last start
/// (the retry delay, if shorter, after a failure); now if it never synced here, or if
/// its last sync never finished.
fn due_ms(d: &Deployment, s: &LocalStatus, settings: &Settings) -> Option<i64> {
    let Interval::Every(every) = d.interval else { return None };
    if !d.enabled {
        return None;
    }
    // A sync cut short (the process died in it) is taken up again at once.
    if s.last_started_ms.is_some() && s.last_finished_ms.is_none_or(|f| Some(f) < s.last_started_ms) {
        return Some(0);
    }
    // After failures, sooner than the interval: the retry delay, doubled with each
    // failure in a row (exponential backoff), never longer than the interval.
    let wait = if s.last_ok == Some(false) { every.min(settings.retry.saturating_mul(1 << s.failures_in_a_row.saturating_sub(1).min(16))) } else { every };
    Some(s.last_started_ms.map_or(0, |t| t + wait.as_millis() as i64))
}

/// The deployments a sync is running for in this daemon.
type Running = Arc<Mutex<BTreeSet<String>>>;

/// The daemon's socket in a config directory.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("daemon.sock")
}

/// Run every deployment in `all` on its interval until `stop` resolves. Each sync's
/// outcome (and each change of the directory it noticed) goes to `log`, one JSON value
/// per event. Refuses to start if another daemon serves the directory.
pub async fn run_daemon(all: Deployments, settings: Settings, log: Arc<dyn Fn(Value) + Send + Sync>, stop: impl std::future::Future<Output = ()>) -> Result<(), AttachError> {
    let sock = socket_path(all.dir());
    std::fs::create_dir_all(all.dir()).map_err(|e| AttachError::Invalid(format!("{}: {e}", all.dir().display())))?;
    if UnixStream::connect(&sock).await.is_ok() {
        return Err(AttachError::Invalid(format!("a daemon already serves {} ({})", all.dir().display(), sock.display())));
    }
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).map_err(|e| AttachError::Invalid(format!("{}: {e}", sock.display())))?;
    let all = Arc::new(all);
    let running: Running = Arc::default();
    let mut known: BTreeMap<String, Deployment> = BTreeMap::new();
    let mut ticker = tokio::time::interval(settings.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    log(json!({"daemon": "started", "config": all.dir(), "socket": sock}));
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                let now = all.all()?.into_iter().filter_map(Result::ok).map(|d| (d.name.clone(), d)).collect::<BTreeMap<_, _>>();
                for (name, d) in &now {
                    if known.get(name) != Some(d) {
                        log(json!({"deployment": name, "config": if known.contains_key(name) { "changed" } else { "found" }, "interval": String::from(d.interval), "enabled": d.enabled}));
                    }
                }
                for name in known.keys().filter(|n| !now.contains_key(*n)) {
                    log(json!({"deployment": name, "config": "removed"}));
                }
                known = now;
                for d in known.values() {
                    let busy = running.lock().map(|r| r.contains(&d.name)).unwrap_or(true);
                    if busy || due_ms(d, &local_status(&all, &d.name), &settings).is_none_or(|due| due > now_ms()) {
                        continue;
                    }
                    spawn_sync(all.clone(), d.clone(), running.clone(), log.clone(), "schedule", None);
                }
            }
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let (all, running, log) = (all.clone(), running.clone(), log.clone());
                    tokio::spawn(async move { serve(stream, all, running, log).await });
                }
            }
        }
    }
    let _ = std::fs::remove_file(&sock);
    log(json!({"daemon": "stopped"}));
    Ok(())
}

/// Start a sync of `d` in its own task; `reply` gets its outcome.
fn spawn_sync(all: Arc<Deployments>, d: Deployment, running: Running, log: Arc<dyn Fn(Value) + Send + Sync>, why: &'static str, reply: Option<tokio::sync::oneshot::Sender<Value>>) {
    if let Ok(mut r) = running.lock() {
        r.insert(d.name.clone());
    }
    tokio::spawn(async move {
        log(json!({"deployment": d.name, "sync": "started", "why": why}));
        let outcome = sync_deployment(&all, &d, true, &mut ()).await;
        let line = match &outcome {
            Ok(report) => json!({"deployment": d.name, "sync": "done", "why": why, "synced": report}),
            Err(e) => json!({"deployment": d.name, "sync": "failed", "why": why, "error": e.to_string()}),
        };
        if let Ok(mut r) = running.lock() {
            r.remove(&d.name);
        }
        log(line.clone());
        if let Some(reply) = reply {
            let _ = reply.send(line);
        }
    });
}

/// One request on the socket: `{"sync_now": NAME}`, answered with the sync's outcome.
async fn serve(stream: UnixStream, all: Arc<Deployments>, running: Running, log: Arc<dyn Fn(Value) + Send + Sync>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    if BufReader::new(read).read_line(&mut line).await.is_err() {
        return;
    }
    let answer = match serde_json::from_str::<Value>(&line).ok().and_then(|v| v.get("sync_now").and_then(Value::as_str).map(String::from)) {
        None => json!({"error": "expected {\"sync_now\": NAME}"}),
        Some(name) => match all.get(&name) {
            Err(e) => json!({"error": e.to_string()}),
            Ok(d) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                spawn_sync(all.clone(), d, running, log, "sync-now", Some(tx));
                rx.await.unwrap_or_else(|_| json!({"error": "the sync ended without an answer"}))
            }
        },
    };
    let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
}

/// Ask the daemon serving `dir` to sync `name` now: `None` if no daemon serves it; an
/// error if one did but ended before it answered (the sync may have been cut short:
/// the next one carries on from where it was).
pub async fn ask_daemon(dir: &Path, name: &str) -> Result<Option<Value>, AttachError> {
    let Ok(stream) = UnixStream::connect(socket_path(dir)).await else { return Ok(None) };
    let lost = |why: String| AttachError::Invalid(format!("the daemon serving {} ended before it answered: {why}", dir.display()));
    let (read, mut write) = stream.into_split();
    write.write_all(format!("{}\n", json!({"sync_now": name})).as_bytes()).await.map_err(|e| lost(e.to_string()))?;
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await.map_err(|e| lost(e.to_string()))?;
    serde_json::from_str(&line).map(Some).map_err(|_| lost("no answer".into()))
}

/// Whether a daemon serves `dir`.
pub async fn daemon_running(dir: &Path) -> bool {
    UnixStream::connect(socket_path(dir)).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_deployment_is_retried_sooner_with_the_delay_doubling_up_to_its_interval() {
        let d = Deployment { name: "acme".into(), db: "webui.db".into(), tenant_schema: "acme_io".into(), interval: Interval::Every(Duration::from_secs(3600)), enabled: true };
        let settings = Settings { retry: Duration::from_secs(60), ..Settings::default() };
        let failed = |n: u32| LocalStatus { last_started_ms: Some(1_000), last_finished_ms: Some(2_000), last_ok: Some(false), failures_in_a_row: n, ..LocalStatus::default() };
        assert_eq!(due_ms(&d, &failed(1), &settings), Some(1_000 + 60_000));
        assert_eq!(due_ms(&d, &failed(3), &settings), Some(1_000 + 240_000));
        assert_eq!(due_ms(&d, &failed(12), &settings), Some(1_000 + 3_600_000), "never later than the interval");
        let ok = LocalStatus { last_ok: Some(true), failures_in_a_row: 0, ..failed(0) };
        assert_eq!(due_ms(&d, &ok, &settings), Some(1_000 + 3_600_000));
        let cut_short = LocalStatus { last_finished_ms: Some(500), ..ok.clone() };
        assert_eq!(due_ms(&d, &cut_short, &settings), Some(0), "a sync cut short is taken up at once");
        assert_eq!(due_ms(&Deployment { enabled: false, ..d.clone() }, &ok, &settings), None);
        assert_eq!(due_ms(&Deployment { interval: Interval::Manual, ..d }, &ok, &settings), None);
    }
}
