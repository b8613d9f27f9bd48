//! Errors of starting the dev server. Request-time errors have their own enums in the
//! layer that produces them (`rest::RestError`, `auth::AuthError`, realtime's replies),
//! because each speaks the wire shape of the Supabase service it imitates.

/// Why the dev server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A tool the server needs is not installed; the message says how to install it.
    #[error("missing dependency: {0}")]
    Missing(String),
    /// PostgreSQL failed to initialise, start or answer.
    #[error("postgres: {0}")]
    Postgres(String),
    /// A migration file failed; names the file and PostgreSQL's message.
    #[error("migration {file} failed: {message}")]
    Migration { file: String, message: String },
    /// File system or socket trouble.
    #[error("{0}")]
    Io(String),
    /// Bad configuration (e.g. a JWT secret shorter than 32 bytes).
    #[error("configuration: {0}")]
    Config(String),
}

impl From<tokio_postgres::Error> for StartError {
    fn from(e: tokio_postgres::Error) -> Self {
        StartError::Postgres(crate::pgerr::describe(&e))
    }
}
