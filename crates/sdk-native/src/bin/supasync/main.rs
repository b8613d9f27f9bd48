//! `supasync`: inspect and drive a local replica from the command line, on the native
//! SDK. Every command prints JSON on stdout; a failure prints `{"error": …}` on stderr
//! and exits non-zero. Local writes need no server: they wait in the outbox.
//!
//! The replica lives in `--store DIR`: one SQLite file per user
//! (`DIR/users/<user id>.db`) and `DIR/active_user`, the user signed in on this device.
//! `attach` works on another app's SQLite file instead ([`attach`]).
//!
//! An encrypted replica's key comes from `SUPASYNC_ENCRYPTION_KEY` or
//! `--encryption-key-file` (64 hex digits), never from an argument: arguments show in
//! `ps` and shell histories.

mod attach;
mod files;
mod readable;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use serde_json::{json, Value};
use supasync_core::auth;
use supasync_core::events::EngineEvent;
use supasync_core::client::{Client, Project};
use supasync_core::engine::Query;
use supasync_core::{Cardinality, SelectOptions, SelectRequest};
use supasync_core::engine::RowView;
use supasync_core::live::{LiveConfig, LiveSync};
use supasync_core::live_query::live_query;
use supasync_core::realtime::RealtimeConfig;
use supasync_core::{Backoff, Engine, EngineConfig, EngineError, Schema};
use supasync_native::{start_live, system_now_ms, EncryptionKey, ReplicaDir, ReqwestHttp, SqliteStore, TokioTimer};

type Replica = Arc<Engine<SqliteStore, ReqwestHttp>>;

#[derive(Parser)]
#[command(name = "supasync", version, about = "Inspect and drive a supasync replica")]
struct Cli {
    /// The replica's directory.
    #[arg(long, global = true, default_value = ".supasync")]
    store: PathBuf,
    /// The synced tables (JSON schema file).
    #[arg(long, global = true)]
    schema: Option<PathBuf>,
    /// A file holding the replica's encryption key (64 hex digits); or set
    /// SUPASYNC_ENCRYPTION_KEY. Without either, the replica is not encrypted.
    #[arg(long, global = true)]
    encryption_key_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create an account and sign in.
    Signup {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Sign in.
    Login {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Sign out; --wipe also deletes this user's local data.
    Logout {
        #[arg(long)]
        wipe: bool,
    },
    /// Insert a row (JSON object); prints it with its local id and status.
    Insert { table: String, json: String },
    /// Change fields of a row.
    Update { table: String, local_id: String, json: String },
    /// Delete a row.
    Delete { table: String, local_id: String },
    /// Queue a call of a server function on a row (one the SQL kit allows, e.g. a usage
    /// counter): it runs once on the server, in order with the row's writes. --effect
    /// is what the row shows until the server's result replaces it.
    Call {
        table: String,
        local_id: String,
        function: String,
        /// The function's arguments (a JSON object).
        #[arg(long, default_value = "{}")]
        args: String,
        /// Fields to show at once (a JSON object).
        #[arg(long, default_value = "{}")]
        effect: String,
    },
    /// Query the replica in PostgREST's URL syntax: `messages?select=*,conversations(title)&role=eq.user&order=timestamp.desc`
    /// (prints {"data", "count", "sync"}). A bare table name, with or without the older
    /// `--where COL=VALUE --order COL[.desc] --limit N`, prints its rows with their sync status.
    Query {
        /// `table?select=…&col=op.value&order=…&limit=…`, or a table name.
        table: String,
        /// Also count every row the filters keep (PostgREST's `Prefer: count=exact`).
        #[arg(long)]
        count: bool,
        /// Exactly one row, else an error (supabase-js's `single()`).
        #[arg(long, conflicts_with = "maybe_single")]
        single: bool,
        /// At most one row (supabase-js's `maybeSingle()`).
        #[arg(long)]
        maybe_single: bool,
        #[arg(long = "where")]
        filters: Vec<String>,
        #[arg(long)]
        order: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Push, then pull; done once the outbox is empty or only rejected writes remain.
    Sync {
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// Rows per insert request (hosted Supabase caps answers at 1,000 rows).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
        batch_size: u16,
    },
    /// Pending and rejected counts, last sync per table; with --follow, keep syncing
    /// live and print each change of status as a JSON line until stopped.
    Status {
        #[arg(long)]
        follow: bool,
    },
    /// Sync live and print one JSON line per change to TABLE (from any device) until
    /// stopped; the first line says when it is listening.
    Watch { table: String },
    /// Append a JSON-lines file of rows to TABLE as local inserts, one transaction per
    /// chunk (`sync` pushes them). Rows may set `local_id`, which other rows reference.
    /// A chunk with a row that does not fit the schema is not applied; every such row
    /// is reported by line number.
    Import {
        table: String,
        file: PathBuf,
        /// Rows per transaction.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        chunk: u32,
    },
    /// Writes the server refused, with the reasons.
    Rejected,
    /// The sync history, newest first.
    History {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Files in Supabase Storage, in the same outbox as the rows.
    Files {
        #[command(subcommand)]
        cmd: files::FilesCmd,
    },
    /// Encrypt the replica with a new key (every user's store on this device), from
    /// its current key (or from plaintext). The new key comes from --new-key-file or
    /// SUPASYNC_NEW_ENCRYPTION_KEY. Run it again with the same keys if it stopped.
    Rekey {
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
    /// Queue a rejected write again.
    Retry { local_id: String },
    /// Drop a rejected write.
    Discard { local_id: String },
    /// Capture an existing app's SQLite database as the app writes it: triggers log the
    /// key of every row its own SQL inserts, updates or deletes (the file is put in WAL
    /// mode). Safe to run again: it picks up tables the app has added since. Needs no
    /// account or server.
    /// With --deployment, also make it a deployment that syncs into its own tenant
    /// schema: back the file up, write its config, and copy it to the server now when
    /// SUPASYNC_DATABASE_URL (or database_url in DIR/config.json) says where.
    Attach {
        /// The app's database file (it must exist).
        #[arg(long)]
        db: PathBuf,
        /// Only print the rows waiting in the change log, per table.
        #[arg(long, conflicts_with_all = ["detach", "deployment"])]
        pending: bool,
        /// Remove the triggers and the log (the app's tables are untouched).
        #[arg(long, conflicts_with = "deployment")]
        detach: bool,
        /// The deployment's name (its config is DIR/NAME.json).
        #[arg(long, requires = "tenant_schema")]
        deployment: Option<String>,
        /// The Postgres schema its tables go to, e.g. acme_quantabase_io.
        #[arg(long, requires = "deployment")]
        tenant_schema: Option<String>,
        /// How often it syncs: manual, hourly, daily, or e.g. 1m, 5m, 2h.
        #[arg(long, default_value = "hourly")]
        interval: String,
        /// The deployments' config directory (default ~/.supasync/deployments).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The deployments of attached databases (see `attach --deployment`): status,
    /// sync-now, history, set-interval, enable, disable.
    Deployments {
        /// The deployments' config directory (default ~/.supasync/deployments).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: attach::DeploymentsCmd,
    },
    /// Run every enabled deployment in the config directory on its interval, several at
    /// once, until stopped; config changes take effect without a restart, and
    /// `deployments sync-now` is done by it. One JSON line per event (for systemd's
    /// journal; readable text on a terminal).
    Daemon {
        /// The deployments' config directory (default ~/.supasync/deployments).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seconds before a failed sync is tried again (at most its interval).
        #[arg(long, default_value_t = 60)]
        retry_secs: u64,
    },
}

/// A CLI failure: a kind for scripts and a message for people.
struct Failure {
    kind: &'static str,
    message: String,
    /// PostgREST's code of a refused local query (`PGRST200`, `42703`, …).
    code: Option<String>,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::Select(s) => Some(s.code.clone()),
            _ => None,
        };
        Failure { kind: e.kind(), message: e.to_string(), code }
    }
}

fn fail(kind: &'static str, message: impl Into<String>) -> Failure {
    Failure { kind, message: message.into(), code: None }
}

fn project() -> Result<Project, Failure> {
    let url = std::env::var("SUPABASE_URL").map_err(|_| fail("config", "SUPABASE_URL is not set"))?;
    let anon_key = std::env::var("SUPABASE_ANON_KEY").map_err(|_| fail("config", "SUPABASE_ANON_KEY is not set"))?;
    Ok(Project { url, anon_key })
}

fn project_or_offline() -> Project {
    // Local commands work without a configured server; network calls then fail clearly.
    project().unwrap_or(Project {
        url: "http://127.0.0.1:9".into(),
        anon_key: String::new(),
    })
}

fn load_schema(path: &Option<PathBuf>) -> Result<Schema, Failure> {
    let Some(p) = path else {
        return Schema::new(vec![]).map_err(|e| fail("invalid", e.to_string()));
    };
    let text = std::fs::read_to_string(p).map_err(|e| fail("config", format!("{}: {e}", p.display())))?;
    Schema::from_json(&text).map_err(|e| fail("invalid", format!("{}: {e}", p.display())))
}

fn active_user(store: &Path) -> Result<String, Failure> {
    ReplicaDir::new(store).active_user().ok_or_else(|| fail("auth", "not signed in on this device: run `supasync login`"))
}

/// An encryption key from `file`, else from the environment variable `var`.
fn read_key(file: &Option<PathBuf>, var: &str) -> Result<Option<EncryptionKey>, Failure> {
    let text = match (file, std::env::var(var)) {
        (Some(f), _) => std::fs::read_to_string(f).map_err(|e| fail("config", format!("{}: {e}", f.display())))?,
        (None, Ok(v)) => v,
        (None, Err(_)) => return Ok(None),
    };
    EncryptionKey::from_hex(&text).map(Some).map_err(|e| EngineError::Store(e).into())
}

/// The replica directory, with its key if one is given.
fn replica_dir(cli: &Cli) -> Result<ReplicaDir, Failure> {
    let dir = ReplicaDir::new(&cli.store);
    Ok(match read_key(&cli.encryption_key_file, "SUPASYNC_ENCRYPTION_KEY")? {
        Some(k) => dir.encrypted(k),
        None => dir,
    })
}

async fn open(dir: &ReplicaDir, schema: Schema, user: &str, batch_size: Option<usize>) -> Result<Engine<SqliteStore, ReqwestHttp>, Failure> {
    let db = dir.open_store(user).map_err(EngineError::Store)?;
    let http = ReqwestHttp::with_timeout(Duration::from_secs(15)).map_err(|e| fail("network", e.to_string()))?;
    let mut cfg = EngineConfig::with_clock(system_now_ms);
    if let Some(b) = batch_size {
        cfg.batch_size = b;
    }
    Ok(Engine::open(schema, db, http, project_or_offline(), cfg).await?)
}

async fn sign(cli: &Cli, email: &str, password: &str, new_account: bool) -> Result<Value, Failure> {
    let http = ReqwestHttp::new().map_err(|e| fail("network", e.to_string()))?;
    let client = Client::new(project()?, http);
    let now = system_now_ms() / 1000;
    let session = if new_account {
        auth::sign_up(&client, email, password, now).await
    } else {
        auth::sign_in(&client, email, password, now).await
    }
    .map_err(|e| fail("auth", e.to_string()))?;
    let engine = open(&replica_dir(cli)?, load_schema(&cli.schema)?, &session.user_id, None).await?;
    engine.set_session(session.clone()).await?;
    ReplicaDir::new(&cli.store).set_active_user(&session.user_id).map_err(|e| fail("store", e.to_string()))?;
    // Who is signed in, in the shape every binding gives it (`{id, email}`).
    Ok(json!(supasync_core::User::from(&session)))
}

/// `supasync import`: chunks of lines, each applied whole or not at all.
async fn import(e: &Engine<SqliteStore, ReqwestHttp>, table: &str, file: &Path, chunk: usize) -> Result<Value, Failure> {
    use std::io::BufRead;
    let f = std::fs::File::open(file).map_err(|err| fail("config", format!("{}: {err}", file.display())))?;
    let (mut imported, mut chunks, mut skipped) = (0usize, 0usize, 0usize);
    let mut refused: Vec<Value> = vec![];
    let mut rows: Vec<(usize, Value)> = Vec::with_capacity(chunk);
    let mut unreadable: Vec<(usize, String)> = vec![];
    let mut lines = std::io::BufReader::new(f).lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let line_no = i + 1;
        let text = line.map_err(|err| fail("config", format!("{}: line {line_no}: {err}", file.display())))?;
        if !text.trim().is_empty() {
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => rows.push((line_no, v)),
                Err(err) => unreadable.push((line_no, format!("not JSON: {err}"))),
            }
        }
        let full = rows.len() + unreadable.len() >= chunk;
        if !(full || lines.peek().is_none()) || rows.len() + unreadable.len() == 0 {
            continue;
        }
        chunks += 1;
        let batch = std::mem::take(&mut rows);
        let mut bad = std::mem::take(&mut unreadable);
        if bad.is_empty() {
            match e.import(table, batch).await? {
                Ok(n) => imported += n,
                Err(misfits) => bad = misfits,
            }
        }
        if !bad.is_empty() {
            skipped += 1;
            bad.sort();
            refused.extend(bad.into_iter().map(|(line, error)| json!({"line": line, "error": error})));
        }
    }
    let report = json!({"table": table, "imported": imported, "chunks": chunks, "chunks_skipped": skipped, "refused": refused});
    if refused.is_empty() {
        Ok(report)
    } else {
        let first = &refused[0];
        Err(fail(
            "invalid",
            format!(
                "{} lines do not fit, first line {}: {}; {skipped} of {chunks} chunks were not applied, {imported} rows were; report: {report}",
                refused.len(),
                first["line"],
                first["error"].as_str().unwrap_or_default()
            ),
        ))
    }
}

fn parse_json(s: &str) -> Result<Value, Failure> {
    serde_json::from_str(s).map_err(|e| fail("invalid", format!("not JSON: {e}")))
}

async fn run(cli: Cli) -> Result<Value, Failure> {
    match &cli.cmd {
        Cmd::Signup { email, password } => return sign(&cli, email, password, true).await,
        Cmd::Login { email, password } => return sign(&cli, email, password, false).await,
        Cmd::Attach { db, deployment: Some(name), tenant_schema: Some(schema), interval, config, .. } => {
            return attach::enable(&attach::config_dir(config), db, name, schema, interval).await;
        }
        Cmd::Attach { db, pending, detach, .. } => {
            let action = match (pending, detach) {
                (true, _) => attach::Action::Pending,
                (_, true) => attach::Action::Detach,
                _ => attach::Action::Install,
            };
            return attach::run(db, action);
        }
        Cmd::Deployments { .. } => {}
        Cmd::Daemon { config, retry_secs } => return attach::daemon(&attach::config_dir(config), Duration::from_secs(*retry_secs)).await,
        Cmd::Rekey { new_key_file } => {
            let new = read_key(new_key_file, "SUPASYNC_NEW_ENCRYPTION_KEY")?
                .ok_or_else(|| fail("config", "no new key: pass --new-key-file or set SUPASYNC_NEW_ENCRYPTION_KEY"))?;
            let dir = replica_dir(&cli)?;
            let users = dir.users().map_err(EngineError::Store)?;
            dir.rekey(new).map_err(EngineError::Store)?;
            return Ok(json!({"rekeyed": users}));
        }
        _ => {}
    }
    if let Cmd::Deployments { config, cmd } = cli.cmd {
        return attach::deployments(&attach::config_dir(&config), cmd).await;
    }
    let user = active_user(&cli.store)?;
    let batch_size = match &cli.cmd {
        Cmd::Sync { batch_size, .. } => Some(usize::from(*batch_size)),
        _ => None,
    };
    let e = open(&replica_dir(&cli)?, load_schema(&cli.schema)?, &user, batch_size).await?;
    Ok(match cli.cmd {
        Cmd::Signup { .. } | Cmd::Login { .. } | Cmd::Attach { .. } | Cmd::Deployments { .. } | Cmd::Daemon { .. } | Cmd::Rekey { .. } => {
            unreachable!("handled above")
        }
        Cmd::Logout { wipe } => {
            e.sign_out(wipe).await?;
            drop(e);
            let dir = ReplicaDir::new(&cli.store);
            if wipe {
                dir.wipe(&user);
            }
            dir.clear_active_user();
            json!({"signed_out": user, "wiped": wipe})
        }
        Cmd::Insert { table, json } => json!(e.insert(&table, &parse_json(&json)?).await?),
        Cmd::Update { table, local_id, json } => json!(e.update(&table, &local_id, &parse_json(&json)?).await?),
        Cmd::Delete { table, local_id } => {
            e.delete(&table, &local_id).await?;
            json!({"deleted": local_id})
        }
        Cmd::Call { table, local_id, function, args, effect } => {
            json!(e.call(&table, &local_id, &function, &parse_json(&args)?, &parse_json(&effect)?).await?)
        }
        Cmd::Query { table, count, single, maybe_single, .. } if table.contains('?') || count || single || maybe_single => {
            let cardinality = match (single, maybe_single) {
                (true, _) => Cardinality::One,
                (_, true) => Cardinality::MaybeOne,
                _ => Cardinality::Many,
            };
            let req = SelectRequest::parse(&table).map_err(EngineError::from)?.with_options(SelectOptions { count, cardinality });
            e.select(&req).await?.to_json(cardinality)
        }
        Cmd::Query { table, filters, order, limit, .. } => {
            let mut q = Query { limit, ..Default::default() };
            for f in filters {
                let (k, v) = f.split_once('=').ok_or_else(|| fail("invalid", format!("--where wants COL=VALUE, got `{f}`")))?;
                let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into()));
                q.filters.push((k.into(), v));
            }
            if let Some(o) = order {
                q = q.order_by(&o);
            }
            json!(e.query(&table, &q).await?)
        }
        Cmd::Sync { timeout, .. } => {
            let timeout_ms = (timeout.max(0.0) * 1000.0) as u64;
            let backoff = Backoff { initial_ms: 200, max_ms: 5_000 };
            // A long pull (a restore) reports how far it is, one JSON line per page on
            // stderr; stdout keeps the one JSON answer.
            let mut events = e.subscribe();
            let progress = tokio::spawn(async move {
                while let Some(ev) = events.next().await {
                    if let EngineEvent::Progress(p) = ev {
                        eprintln!("{}", json!({ "progress": p }));
                    }
                }
            });
            let settled = e.sync_until_settled(&TokioTimer, backoff, timeout_ms).await;
            progress.abort();
            json!(settled?)
        }
        Cmd::Import { table, file, chunk } => import(&e, &table, &file, chunk as usize).await?,
        Cmd::Status { follow: false } => json!(e.status().await?),
        Cmd::Status { follow: true } => {
            follow_status(Arc::new(e)).await?;
            return Ok(Value::Null);
        }
        Cmd::Watch { table } => {
            watch(Arc::new(e), &table).await?;
            return Ok(Value::Null);
        }
        Cmd::Files { cmd } => files::run(&e, cmd).await?,
        Cmd::Rejected => json!(e.rejected().await?),
        Cmd::History { limit } => json!(e.history(limit).await?),
        Cmd::Retry { local_id } => {
            e.retry(&local_id).await?;
            json!({"retried": local_id})
        }
        Cmd::Discard { local_id } => {
            e.discard(&local_id).await?;
            json!({"discarded": local_id})
        }
    })
}

/// One JSON line on stdout, flushed (streaming commands feed scripts line by line).
fn line(v: &Value) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}").and_then(|_| out.flush()).map_err(|e| fail("io", e.to_string()))
}

fn start(e: &Replica) -> Result<LiveSync, Failure> {
    let p = project()?;
    Ok(start_live(e.clone(), &p.url, &p.anon_key, RealtimeConfig::with_clock(system_now_ms), LiveConfig::default()).0)
}

/// Until SIGINT or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Run `printing` until it ends or the process is told to stop; then stop live sync.
async fn print_until_stopped(live: &LiveSync, printing: impl std::future::Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    let r = tokio::select! {
        r = printing => r,
        _ = stopped() => Ok(()),
    };
    live.stop();
    r
}

async fn follow_status(e: Replica) -> Result<(), Failure> {
    let live = start(&e)?;
    let mut statuses = live.statuses();
    let printing = async {
        while let Some(s) = statuses.next().await {
            line(&json!(s))?;
        }
        Ok(())
    };
    print_until_stopped(&live, printing).await
}

/// Diff two results of the watched table into change lines.
fn changes(table: &str, before: &BTreeMap<String, RowView>, after: &BTreeMap<String, RowView>) -> Vec<Value> {
    let mut out = vec![];
    for (id, now) in after {
        match before.get(id) {
            None => out.push(json!({"table": table, "op": "insert", "local_id": id, "row": now.row, "status": now.status})),
            Some(was) if was != now => out.push(json!({"table": table, "op": "update", "local_id": id, "row": now.row, "status": now.status})),
            Some(_) => {}
        }
    }
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        out.push(json!({"table": table, "op": "delete", "local_id": id}));
    }
    out
}

async fn watch(e: Replica, table: &str) -> Result<(), Failure> {
    e.schema.table(table).map_err(|err| fail("invalid", err.to_string()))?;
    let live = start(&e)?;
    let mut statuses = live.statuses();
    let mut q = live_query(&e, table, Query::default());
    let index = |rows: Vec<RowView>| rows.into_iter().map(|r| (r.local_id.clone(), r)).collect::<BTreeMap<_, _>>();
    let printing = async {
        // Listening once the first catch-up is done.
        while let Some(s) = statuses.next().await {
            if s.phase == supasync_core::live::Phase::Live {
                break;
            }
        }
        let mut seen = index(q.next().await.ok_or_else(|| fail("store", "the replica closed"))??);
        line(&json!({"watching": table, "rows": seen.len()}))?;
        while let Some(rows) = q.next().await {
            let now = index(rows?);
            for c in changes(table, &seen, &now) {
                line(&c)?;
            }
            seen = now;
        }
        Ok(())
    };
    print_until_stopped(&live, printing).await
}

fn main() {
    let cli = Cli::parse();
    // The operator's commands answer a person at a terminal in text.
    let for_people = matches!(cli.cmd, Cmd::Attach { .. } | Cmd::Deployments { .. }) && std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Two workers: a push's next request travels while the SQLite store writes the last
    // batch's confirmations on the other (see the push module in supasync-core).
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}", json!({"error": e.to_string(), "kind": "runtime"}));
            std::process::exit(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(Value::Null) => {}
        Ok(v) if for_people => print!("{}", readable::render(&v)),
        Ok(v) => println!("{v}"),
        Err(f) => {
            let mut err = json!({"error": f.message, "kind": f.kind});
            if let Some(code) = f.code {
                err["code"] = json!(code);
            }
            eprintln!("{err}");
            std::process::exit(1);
        }
    }
}
