//! A private PostgreSQL cluster owned by the dev server.
//!
//! Supabase cannot run on our machines (no Docker), so the dev server brings its own
//! PostgreSQL: `initdb` into a directory, `postgres` started as a child process with
//! `wal_level=logical` (Realtime needs logical decoding), listening on 127.0.0.1 only, on a
//! free port. When we run as root the cluster runs as the `postgres` user, because
//! `initdb` and `postgres` refuse to run as root.
//!
//! The postmaster is spawned from a dedicated supervisor thread with `PR_SET_PDEATHSIG`,
//! so that even a `SIGKILL`ed dev server (or a test binary that exits without dropping
//! its cluster) never leaves a stray PostgreSQL behind. Dropping the cluster performs a
//! fast shutdown (`SIGINT`) and waits for it, then removes a temporary data directory.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::StartError;

/// Options for [`PgCluster::start`].
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Where the cluster lives; a temporary directory (removed at exit) when `None`.
    /// An existing, initialised directory is reused.
    pub data_dir: Option<PathBuf>,
    /// Trade durability for speed (`fsync=off`): for test suites, never for data you keep.
    pub fast_unsafe: bool,
}

/// A running private PostgreSQL cluster. Stops on drop.
pub struct PgCluster {
    port: u16,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    stop_tx: Option<mpsc::Sender<()>>,
    supervisor: Option<std::thread::JoinHandle<()>>,
}

/// The user the cluster runs as, when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl PgCluster {
    /// Create (or reuse) and start a cluster. Blocks until it accepts connections.
    pub fn start(opts: &ClusterOptions) -> Result<PgCluster, StartError> {
        let bin = find_pg_bin()?;
        check_wal2json(&bin)?;
        let run_as = run_as()?;

        let (temp, root) = match &opts.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StartError::Io(format!("{}: {e}", dir.display())))?;
                (None, dir.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("supasync-dev-")
                    .tempdir()
                    .map_err(|e| StartError::Io(format!("temporary directory: {e}")))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let data_dir = root.join("pgdata");
        if let Some(ra) = run_as {
            chown(&root, ra)?;
        }

        if !data_dir.join("PG_VERSION").exists() {
            let mut cmd = Command::new(bin.join("initdb"));
            cmd.arg("-D")
                .arg(&data_dir)
                .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if let Some(ra) = run_as {
                cmd.uid(ra.uid).gid(ra.gid);
            }
            let out = cmd.output().map_err(|e| StartError::Postgres(format!("cannot run initdb: {e}")))?;
            if !out.status.success() {
                return Err(StartError::Postgres(format!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }

        let port = free_port()?;
        let mut args: Vec<String> = vec![
            "-D".into(),
            data_dir.display().to_string(),
            "-p".into(),
            port.to_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-c".into(),
            format!("unix_socket_directories={}", root.display()),
            "-c".into(),
            "wal_level=logical".into(),
            "-c".into(),
            "max_replication_slots=64".into(),
            "-c".into(),
            "max_wal_senders=64".into(),
            "-c".into(),
            "max_connections=300".into(),
            "-c".into(),
            "TimeZone=UTC".into(),
            "-c".into(),
            "log_min_messages=fatal".into(),
            // As the database `supabase start` runs (its image's setting; plans show it).
            "-c".into(),
            "effective_cache_size=128MB".into(),
        ];
        if opts.fast_unsafe {
            for o in ["fsync=off", "synchronous_commit=off", "full_page_writes=off"] {
                args.push("-c".into());
                args.push(o.into());
            }
        }
        let postgres = bin.join("postgres");
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<Result<(), String>>();
        let log_path = root.join("postgres.log");
        let supervisor = std::thread::Builder::new()
            .name("pg-supervisor".into())
            .spawn(move || supervise(postgres, args, run_as, log_path, started_tx, stop_rx))
            .map_err(|e| StartError::Io(format!("cannot spawn supervisor thread: {e}")))?;
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StartError::Postgres(e)),
            Err(_) => return Err(StartError::Postgres("postgres supervisor died".into())),
        }
        let mut cluster = PgCluster {
            port,
            data_dir,
            _temp: temp,
            stop_tx: Some(stop_tx),
            supervisor: Some(supervisor),
        };
        cluster.wait_ready(&root)?;
        Ok(cluster)
    }

    fn wait_ready(&mut self, root: &Path) -> Result<(), StartError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // The port accepts before the database is out of recovery; a query tells.
                let ok = Command::new(find_pg_bin()?.join("pg_isready"))
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-q"])
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(true);
                if ok {
                    return Ok(());
                }
            }
            if self.supervisor.as_ref().is_some_and(|s| s.is_finished()) || Instant::now() > deadline {
                let log = std::fs::read_to_string(root.join("postgres.log")).unwrap_or_default();
                return Err(StartError::Postgres(format!(
                    "postgres did not become ready: {}",
                    log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The TCP port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A connection URL for the superuser on `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, database)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.supervisor.take() {
            let _ = h.join();
        }
    }
}

/// Runs on its own thread for the life of the cluster: spawns the postmaster (so that
/// the parent-death signal is tied to a thread that lives as long as the cluster), then
/// waits for the stop request and shuts PostgreSQL down.
fn supervise(
    postgres: PathBuf,
    args: Vec<String>,
    run_as: Option<RunAs>,
    log_path: PathBuf,
    started: mpsc::Sender<Result<(), String>>,
    stop: mpsc::Receiver<()>,
) {
    let log = match std::fs::File::create(&log_path) {
        Ok(f) => f,
        Err(e) => {
            let _ = started.send(Err(format!("cannot create {}: {e}", log_path.display())));
            return;
        }
    };
    if let Some(ra) = run_as {
        let _ = std::os::unix::fs::chown(&log_path, Some(ra.uid), Some(ra.gid));
    }
    let log_err = log.try_clone();
    let mut cmd = Command::new(&postgres);
    cmd.args(&args).stdin(Stdio::null()).stdout(Stdio::null());
    match log_err {
        Ok(l) => {
            cmd.stderr(l);
        }
        Err(_) => {
            cmd.stderr(Stdio::null());
        }
    }
    if let Some(ra) = run_as {
        cmd.uid(ra.uid).gid(ra.gid);
    }
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child: Child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = started.send(Err(format!("cannot start {}: {e}", postgres.display())));
            return;
        }
    };
    let _ = started.send(Ok(()));
    // Wait for the stop request (or for the owner to vanish).
    let _ = stop.recv();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
                let _ = child.wait();
                return;
            }
        }
    }
}

/// PostgreSQL's server binaries: `$PG_BIN`, the newest `/usr/lib/postgresql/*/bin`, or
/// the directory of `initdb` on `PATH`.
fn find_pg_bin() -> Result<PathBuf, StartError> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        let p = PathBuf::from(&dir);
        if p.join("postgres").exists() && p.join("initdb").exists() {
            return Ok(p);
        }
        return Err(StartError::Missing(format!(
            "PG_BIN={dir} has no PostgreSQL server binaries (initdb, postgres): install them with \
             `apt-get install -y postgresql postgresql-15-wal2json` or fix PG_BIN"
        )));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").exists() && dir.join("postgres").exists() {
                return Ok(dir);
            }
        }
    }
    Err(StartError::Missing(
        "PostgreSQL server binaries (initdb, postgres) were not found: install them with \
         `apt-get install -y postgresql postgresql-15-wal2json`, set PG_BIN, or pass --database-url"
            .into(),
    ))
}

fn check_wal2json(bin: &Path) -> Result<(), StartError> {
    // bin is .../<version>/bin; the plugins live in .../<version>/lib.
    let lib = bin.parent().map(|p| p.join("lib").join("wal2json.so"));
    let via_pg_config = Command::new(bin.join("pg_config"))
        .arg("--pkglibdir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("wal2json.so"));
    if lib.iter().chain(via_pg_config.iter()).any(|p| p.exists()) {
        return Ok(());
    }
    let version = bin
        .parent()
        .and_then(|p| p.file_name())
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_else(|| "15".into());
    Err(StartError::Missing(format!(
        "the wal2json logical decoding plugin is not installed (Realtime needs it): \
         `apt-get install -y postgresql-{version}-wal2json`"
    )))
}

fn run_as() -> Result<Option<RunAs>, StartError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(u)) => Ok(Some(RunAs {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        })),
        _ => Err(StartError::Missing(
            "running as root, but there is no `postgres` user to run the cluster as \
             (it comes with the postgresql package)"
                .into(),
        )),
    }
}

fn chown(path: &Path, ra: RunAs) -> Result<(), StartError> {
    std::os::unix::fs::chown(path, Some(ra.uid), Some(ra.gid))
        .map_err(|e| StartError::Io(format!("chown {}: {e}", path.display())))
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16, StartError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| StartError::Io(format!("no free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| StartError::Io(format!("no free port: {e}")))
}
