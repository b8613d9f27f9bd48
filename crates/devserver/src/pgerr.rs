//! Turning `tokio_postgres` errors into the pieces the wire formats need: SQLSTATE,
//! message, detail and hint. Kept in one place so REST, Auth and Realtime agree.

/// The parts of a database error, as PostgREST reports them.
#[derive(Debug, Clone)]
pub struct DbErrorParts {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}

/// Split an error into its parts; connection-level failures get SQLSTATE `08006`.
pub fn parts(e: &tokio_postgres::Error) -> DbErrorParts {
    match e.as_db_error() {
        Some(db) => DbErrorParts {
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            details: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
        },
        None => DbErrorParts {
            code: "08006".into(),
            message: e.to_string(),
            details: None,
            hint: None,
        },
    }
}

/// One line for logs and start-up errors.
pub fn describe(e: &tokio_postgres::Error) -> String {
    let p = parts(e);
    match p.details {
        Some(d) => format!("{} ({}): {}", p.message, p.code, d),
        None => format!("{} ({})", p.message, p.code),
    }
}
