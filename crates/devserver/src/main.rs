//! `supasync-dev`: run the Supabase-compatible dev server from the command line.
//!
//! Prints `SUPABASE_URL=…`, `SUPABASE_ANON_KEY=…`, `SUPABASE_SERVICE_ROLE_KEY=…` and
//! `DATABASE_URL=…` on stdout once it serves, and only then, so scripts can wait for
//! those lines. Stops cleanly (PostgreSQL included) on SIGINT or SIGTERM.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use supasync_devserver::{DevServer, DEMO_SECRET};

#[derive(Parser, Debug)]
#[command(name = "supasync-dev", version, about = "A local Supabase-compatible server over a real PostgreSQL")]
struct Args {
    /// HTTP port on 127.0.0.1 (as `supabase start`).
    #[arg(long, default_value_t = 54321)]
    port: u16,
    /// Folder of *.sql migrations, applied in name order.
    #[arg(long)]
    migrations: Option<PathBuf>,
    /// Keep the private PostgreSQL cluster here (a temporary directory otherwise).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep Storage's files here (default: `storage/` in --data-dir, else a temporary
    /// directory).
    #[arg(long)]
    storage_dir: Option<PathBuf>,
    /// Use this database (superuser URL) instead of a private cluster.
    #[arg(long)]
    database_url: Option<String>,
    /// JWT secret; the Supabase CLI's demo secret by default.
    #[arg(long, default_value = DEMO_SECRET, hide_default_value = true)]
    jwt_secret: String,
    /// How often Realtime polls for database changes, in milliseconds.
    #[arg(long, default_value_t = 100)]
    realtime_poll_ms: u64,
    /// Lifetime of access tokens issued by /auth/v1, in seconds.
    #[arg(long, default_value_t = 3600)]
    jwt_expiry: i64,
    /// Schemas exposed over /rest/v1, comma-separated, the first the default (others
    /// are chosen with the Accept-Profile / Content-Profile headers).
    #[arg(long, default_value = "public", value_delimiter = ',')]
    schemas: Vec<String>,
}

#[tokio::main]
async fn main() {
    supasync_devserver::init_logging();
    let args = Args::parse();
    let mut b = DevServer::builder()
        .port(args.port)
        .jwt_secret(args.jwt_secret)
        .realtime_poll_ms(args.realtime_poll_ms)
        .jwt_expiry_secs(args.jwt_expiry)
        .schemas(args.schemas);
    if let Some(m) = &args.migrations {
        b = b.migrations(m);
    }
    if let Some(d) = &args.data_dir {
        b = b.data_dir(d);
    }
    if let Some(d) = &args.storage_dir {
        b = b.storage_dir(d);
    }
    if let Some(u) = args.database_url {
        b = b.database_url(u);
    }
    let server = match b.start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("supasync-dev: {e}");
            std::process::exit(1);
        }
    };
    // Handle SIGINT/SIGTERM before announcing readiness: a script may signal as soon as
    // it has read the lines.
    let handlers = (
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()),
    );
    let (mut term, mut int) = match handlers {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("supasync-dev: cannot handle SIGTERM/SIGINT: {e}");
            std::process::exit(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "SUPABASE_URL={}", server.url());
        let _ = writeln!(out, "SUPABASE_ANON_KEY={}", server.anon_key());
        let _ = writeln!(out, "SUPABASE_SERVICE_ROLE_KEY={}", server.service_role_key());
        let _ = writeln!(out, "DATABASE_URL={}", server.database_url());
        let _ = out.flush();
    }
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    drop(server);
}
