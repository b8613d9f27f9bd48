//! The one way parsing fails: PostgREST's `PGRST100` ("a query parameter could not be
//! parsed"), with PostgREST's message and details so callers can answer exactly as
//! PostgREST would.

/// A query string PostgREST would refuse with `PGRST100`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// PostgREST's message, e.g. `"failed to parse filter (eq)" (line 1, column 1)`.
    pub message: String,
    /// What was expected instead.
    pub details: String,
}

impl SyntaxError {
    /// PostgREST's error code for every parse failure.
    pub const CODE: &'static str = "PGRST100";

    pub(crate) fn new(message: impl Into<String>, details: impl Into<String>) -> SyntaxError {
        SyntaxError { message: message.into(), details: details.into() }
    }
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.message, self.details)
    }
}

impl std::error::Error for SyntaxError {}
