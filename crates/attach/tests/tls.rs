//! TLS to the database to sync to (issue 24: a hosted project's pooler): supasync-dev's
//! PostgreSQL is given a certificate of a CA made here (its own test binary, so its
//! own cluster), then `connect` is checked the way an operator would meet it: refused
//! when TLS is required and the server has none; refused when the server's certificate
//! is of an unknown CA; encrypted (as `pg_stat_ssl` says) and syncing when the CA is
//! given as `sslrootcert`; a missing `sslrootcert` named.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rusqlite::Connection;
use supasync_attach::capture;
use supasync_attach::connect::connect;
use supasync_attach::sync::sync;
use supasync_attach::tenant::Tenant;
use supasync_devserver::DevServer;

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(ok.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
}

/// A CA, and a certificate for 127.0.0.1 it signed, readable by the cluster's user.
fn certificates(dir: &Path) {
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=supasync test CA"]);
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(dir, &["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext"]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // As root the cluster runs as `postgres`, which must own its key.
    if running_as_root() {
        let id = |flag: &str| String::from_utf8(Command::new("id").args([flag, "postgres"]).output().unwrap().stdout).unwrap().trim().parse::<u32>().unwrap();
        for f in ["server.key", "server.crt"] {
            std::os::unix::fs::chown(dir.join(f), Some(id("-u")), Some(id("-g"))).unwrap();
        }
    }
}

fn running_as_root() -> bool {
    String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap().trim() == "0"
}

#[tokio::test]
async fn tls_is_required_when_asked_and_verified_against_the_given_root() {
    let s = DevServer::builder().shared_test_cluster().start().await.expect("dev server");
    let url = s.database_url().to_string();
    // No TLS on the server yet: `require` is refused, the default (`prefer`) goes plain.
    let e = connect(&format!("{url}?sslmode=require")).await.unwrap_err().to_string();
    assert!(e.to_lowercase().contains("tls") || e.to_lowercase().contains("ssl"), "{e}");
    let admin = connect(&url).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let path = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    // Settings through ALTER SYSTEM take literals: these are this test's own paths.
    for sql in [format!("ALTER SYSTEM SET ssl_cert_file = '{}'", path("server.crt")), format!("ALTER SYSTEM SET ssl_key_file = '{}'", path("server.key")), "ALTER SYSTEM SET ssl = on".into()] {
        admin.batch_execute(&sql).await.unwrap();
    }
    admin.execute("SELECT pg_reload_conf()", &[]).await.unwrap();
    // The reload reaches a session at its next statement.
    let mut waited = 0;
    while admin.query_one("SHOW ssl", &[]).await.unwrap().get::<_, String>(0) != "on" {
        waited += 1;
        assert!(waited < 200, "the server never took the certificate");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The server's certificate is of a CA nobody trusts: refused.
    let e = connect(&format!("{url}?sslmode=require")).await.unwrap_err().to_string();
    assert!(e.contains("certificate") || e.contains("Unknown"), "{e}");
    // A missing root file is named.
    let e = connect(&format!("{url}?sslmode=require&sslrootcert=/nowhere/ca.crt")).await.unwrap_err().to_string();
    assert!(e.contains("/nowhere/ca.crt"), "{e}");
    // Given the CA: encrypted, and a sync runs over it.
    let mut pg = connect(&format!("{url}?sslmode=require&sslrootcert={}", path("ca.crt"))).await.unwrap();
    let encrypted: bool = pg.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0);
    assert!(encrypted);
    let db = dir.path().join("webui.db");
    Connection::open(&db).unwrap().execute_batch("CREATE TABLE memory (id TEXT PRIMARY KEY, content TEXT); INSERT INTO memory VALUES ('m1', 'over TLS');").unwrap();
    let mut file = capture::open(&db, Duration::from_secs(2)).unwrap();
    let report = sync(&mut file, &mut pg, &Tenant::new("tls", "tls_tenant").unwrap(), &mut ()).await.unwrap();
    assert_eq!(report.pushed.upserted, 1);

    for sql in ["ALTER SYSTEM RESET ssl", "ALTER SYSTEM RESET ssl_cert_file", "ALTER SYSTEM RESET ssl_key_file", "SELECT pg_reload_conf()"] {
        admin.batch_execute(sql).await.unwrap();
    }
}
