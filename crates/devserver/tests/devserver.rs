//! The dev server as a library and as the `supasync-dev` binary: start-up, databases
//! from templates, migrations, clear start-up errors, and a clean stop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use supasync_devserver::{DevServer, StartError, DEMO_ANON_KEY, DEMO_SERVICE_ROLE_KEY};

fn fixtures(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

async fn get(server: &DevServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .get(format!("{}{path}", server.url()))
        .header("apikey", server.anon_key());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn starts_on_a_free_port_with_demo_keys_and_stops_on_drop() {
    let server = DevServer::builder()
        .migrations(fixtures("ok"))
        .shared_test_cluster()
        .start()
        .await
        .expect("start");
    assert_eq!(server.anon_key(), DEMO_ANON_KEY);
    assert_eq!(server.service_role_key(), DEMO_SERVICE_ROLE_KEY);
    let (status, body) = get(&server, "/rest/v1/open_items?select=name", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!([{"name": "seeded"}]));
    let url = server.url().to_string();
    drop(server);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(reqwest::get(format!("{url}/rest/v1/open_items")).await.is_err(), "stopped");
}

#[tokio::test]
async fn each_test_server_gets_its_own_database_from_the_template() {
    let a = DevServer::builder().migrations(fixtures("ok")).shared_test_cluster().start().await.unwrap();
    let b = DevServer::builder().migrations(fixtures("ok")).shared_test_cluster().start().await.unwrap();
    assert_ne!(a.database_url(), b.database_url());
    let res = reqwest::Client::new()
        .post(format!("{}/rest/v1/open_items", a.url()))
        .header("apikey", a.anon_key())
        .json(&json!({"name": "only on a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let (_, on_a) = get(&a, "/rest/v1/open_items?select=name&order=id", None).await;
    let (_, on_b) = get(&b, "/rest/v1/open_items?select=name&order=id", None).await;
    assert_eq!(on_a, json!([{"name": "seeded"}, {"name": "only on a"}]));
    assert_eq!(on_b, json!([{"name": "seeded"}]));
}

#[tokio::test]
async fn a_failing_migration_names_the_file_and_the_postgres_error() {
    let err = DevServer::builder()
        .migrations(fixtures("broken"))
        .shared_test_cluster()
        .start()
        .await
        .err()
        .expect("must fail");
    match err {
        StartError::Migration { file, message } => {
            assert_eq!(file, "002_bad.sql");
            assert!(message.contains("relation \"public.missing\" does not exist"), "{message}");
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn a_short_jwt_secret_is_refused() {
    let err = DevServer::builder().jwt_secret("short").start().await.err().expect("must fail");
    assert!(matches!(err, StartError::Config(_)));
}

#[tokio::test]
async fn new_tables_are_served_without_a_restart() {
    let server = DevServer::builder().shared_test_cluster().start().await.unwrap();
    let (status, _) = get(&server, "/rest/v1/late_table", None).await;
    assert_eq!(status, 404);
    let (client, conn) = tokio_postgres::connect(server.database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("create table public.late_table (id int primary key); insert into public.late_table values (7);")
        .await
        .unwrap();
    let (status, body) = get(&server, "/rest/v1/late_table", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!([{"id": 7}]));
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_supasync-dev"))
}

/// Run the binary until it prints its four lines; returns them and the child.
fn spawn_cli(args: &[&str], envs: &[(&str, &str)]) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(bin())
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn supasync-dev");
    let out = child.stdout.take().expect("stdout");
    let mut lines = vec![];
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        lines.push(line);
        if lines.len() == 4 {
            break;
        }
    }
    (child, lines)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn cli_prints_the_connection_lines_and_stops_postgres_on_sigterm() {
    let port = free_port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap().to_string();
    let mig = fixtures("ok");
    let args = ["--port", &port, "--migrations", mig.to_str().unwrap(), "--data-dir", &data_s];
    let (mut child, lines) = spawn_cli(&args, &[]);
    assert_eq!(lines[0], format!("SUPABASE_URL=http://127.0.0.1:{port}"));
    assert_eq!(lines[1], format!("SUPABASE_ANON_KEY={DEMO_ANON_KEY}"));
    assert_eq!(lines[2], format!("SUPABASE_SERVICE_ROLE_KEY={DEMO_SERVICE_ROLE_KEY}"));
    assert!(lines[3].starts_with("DATABASE_URL=postgres://"), "{}", lines[3]);
    let pg_port: u16 = lines[3].rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_err(), "postgres stopped");
    assert!(!data.join("pgdata/postmaster.pid").exists(), "clean shutdown");

    // Restart on the same data directory: data kept, migrations not applied twice.
    let (mut child, lines) = spawn_cli(&args, &[]);
    assert_eq!(lines.len(), 4, "restarted");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body: Value = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/rest/v1/open_items?select=name"))
            .header("apikey", DEMO_ANON_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(body, json!([{"name": "seeded"}]), "the seed migration ran once");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn cli_names_what_is_missing() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["--port", &free_port().to_string()])
        .env("PG_BIN", empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout before it is ready");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("initdb") && err.contains("apt-get install"), "{err}");

    // PostgreSQL without wal2json: a bin folder with the server but no plugin beside it.
    let fake = tempfile::tempdir().unwrap();
    let bin_dir = fake.path().join("15/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let real = Command::new("sh")
        .args(["-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1"])
        .output()
        .unwrap();
    let real = PathBuf::from(String::from_utf8_lossy(&real.stdout).trim());
    for b in ["initdb", "postgres", "pg_isready"] {
        std::os::unix::fs::symlink(real.join(b), bin_dir.join(b)).unwrap();
    }
    let out = Command::new(bin())
        .args(["--port", &free_port().to_string()])
        .env("PG_BIN", &bin_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wal2json") && err.contains("postgresql-15-wal2json"), "{err}");
}

#[test]
fn cli_reports_a_failing_migration() {
    let mig = fixtures("broken");
    let out = Command::new(bin())
        .args(["--port", &free_port().to_string(), "--migrations", mig.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("002_bad.sql") && err.contains("does not exist"), "{err}");
}

#[test]
fn cli_runs_as_an_ordinary_user_too() {
    // As root the cluster runs as `postgres`; as anyone else, as that user. CI runs as
    // root, so drop to `nobody` (setpriv execs in place, so signals reach the server).
    if !nix::unistd::Uid::effective().is_root() {
        let (mut child, lines) = spawn_cli(&["--port", &free_port().to_string()], &[]);
        assert_eq!(lines.len(), 4);
        child.kill().ok();
        return;
    }
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        panic!("no `nobody` user to run as");
    };
    let port = free_port().to_string();
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={}", nobody.uid),
            &format!("--regid={}", nobody.gid),
            "--clear-groups",
            "--",
        ])
        .arg(bin())
        .args(["--port", &port])
        .env("TMPDIR", "/tmp")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv");
    let out = child.stdout.take().unwrap();
    let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).take(4).collect();
    if lines.len() < 4 {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
        panic!("did not start as nobody: {err}");
    }
    assert_eq!(lines[0], format!("SUPABASE_URL=http://127.0.0.1:{port}"));
    let pg_port: u16 = lines[3].rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    let owner = Command::new("sh")
        .args(["-c", &format!("ps -o user= -C postgres -o args= | grep -- '-p {pg_port} ' | head -1 | cut -d' ' -f1")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&owner.stdout).trim(), "nobody", "the cluster runs as the caller");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}
