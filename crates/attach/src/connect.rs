//! The connection to the database to sync to, with TLS as libpq's options ask for it.
//!
//! A connection string's `sslmode` decides: `disable` is plain TCP; `prefer` (the
//! default) uses TLS when the server offers it; `require` refuses a server that does not.
//! Unlike libpq's `require`, the server's certificate is always verified (an encrypted
//! connection to anyone is not worth having for a job that holds every tenant's data):
//! against the public roots (webpki-roots), plus the certificates in `sslrootcert` when
//! given. Hosted Supabase's pooler presents a certificate of Supabase's own root CA:
//! download it from the project's database settings and pass
//! `?sslmode=require&sslrootcert=/etc/supasync/prod-ca-2021.crt`.
//!
//! The connection string holds a password: it is never part of an error or a log line.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};

use crate::error::AttachError;

/// Connect as `url` says (a `postgres://` URL or `key=value` pairs).
pub async fn connect(url: &str) -> Result<Client, AttachError> {
    let (rest, rootcert) = take_rootcert(url);
    let config: Config = rest.parse().map_err(|e| AttachError::Invalid(format!("the database connection string: {e}")))?;
    let client = match config.get_ssl_mode() {
        SslMode::Disable => {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                // The client's next request reports a connection that ended.
                let _ = conn.await;
            });
            client
        }
        _ => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(rootcert.as_deref())?);
            let (client, conn) = config.connect(tls).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
    };
    Ok(client)
}

/// The roots a server's certificate is checked against.
fn tls_config(rootcert: Option<&str>) -> Result<rustls::ClientConfig, AttachError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = rootcert {
        let bad = |why: String| AttachError::Invalid(format!("sslrootcert {path}: {why}"));
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?.collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AttachError::Invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `sslrootcert` taken out of a connection string (tokio-postgres does not read it):
/// the rest, and its value.
fn take_rootcert(url: &str) -> (String, Option<String>) {
    if let Some((base, query)) = url.split_once('?') {
        let mut found = None;
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| match kv.split_once('=') {
                Some(("sslrootcert", v)) => {
                    found = Some(v.replace("%2F", "/").replace("%2f", "/"));
                    false
                }
                _ => true,
            })
            .collect();
        let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        return (rest, found);
    }
    if !url.contains("://") {
        let mut found = None;
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|kv| match kv.strip_prefix("sslrootcert=") {
                Some(v) => {
                    found = Some(v.trim_matches('\'').to_string());
                    false
                }
                None => true,
            })
            .collect();
        return (kept.join(" "), found);
    }
    (url.to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslrootcert_is_taken_out_of_either_form() {
        assert_eq!(take_rootcert("postgres://u:p@h:6543/db?sslmode=require&sslrootcert=%2Fetc%2Fca.crt"), ("postgres://u:p@h:6543/db?sslmode=require".into(), Some("/etc/ca.crt".into())));
        assert_eq!(take_rootcert("postgres://u@h/db?sslrootcert=/ca.crt"), ("postgres://u@h/db".into(), Some("/ca.crt".into())));
        assert_eq!(take_rootcert("host=h user=u sslrootcert=/ca.crt sslmode=require"), ("host=h user=u sslmode=require".into(), Some("/ca.crt".into())));
        assert_eq!(take_rootcert("postgres://u@h/db"), ("postgres://u@h/db".into(), None));
    }
}
