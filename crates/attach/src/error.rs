//! What can go wrong with an attached database, one enum for the crate.

/// An attached database's failure.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The file is not there, or is not a SQLite database.
    #[error("{path}: {why}")]
    NotADatabase { path: String, why: String },
    /// The app (or another process) held the database longer than we wait.
    #[error("the database stayed locked by another connection for {waited_ms} ms: {what}")]
    Busy { what: String, waited_ms: u64 },
    /// Something SQLite refused.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A name, value or setting that cannot be used, and why.
    #[error("{0}")]
    Invalid(String),
    /// The server (Postgres) refused or could not be reached.
    #[error("postgres: {}", with_causes(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A row the server cannot take as it is in SQLite (a value that does not fit its
    /// column's type).
    #[error("{table} row {key}: column {column}: {why}")]
    Value { table: String, key: String, column: String, why: String },
    /// What the change log holds is not what this crate wrote there.
    #[error("the change log is corrupt: {0}")]
    Corrupt(String),
}

/// An error with what caused it, down the chain (tokio-postgres keeps a TLS
/// handshake's reason, an unknown certificate authority say, one level down).
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        cause = c.source();
    }
    text
}
