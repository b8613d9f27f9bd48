//! What a failed request means for a write (DESIGN §2.4, reference §4.7): retry later,
//! refresh the token, treat as already applied, wait for a parent, or reject for good.
//! One function, so push, pull and auth agree, and one table of tests.

use serde_json::Value;

/// The server's error, as PostgREST (or GoTrue) reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}

impl ServerError {
    /// Parse an error body; anything unparseable keeps the status and the raw text.
    pub fn parse(status: u16, body: &[u8]) -> ServerError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        ServerError {
            status,
            code: s("code").or_else(|| s("error_code")).unwrap_or_default(),
            message: s("message")
                .or_else(|| s("msg"))
                .or_else(|| s("error_description"))
                .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect()),
            details: s("details"),
            hint: s("hint"),
        }
    }

    /// One line for the app: what the server said, and why.
    pub fn reason(&self) -> String {
        let mut r = format!("{} ({} {})", self.message, self.status, self.code);
        if let Some(d) = &self.details {
            r.push_str(&format!(": {d}"));
        }
        r
    }
}

/// What to do about a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Network trouble, 5xx, 429, a timeout: back off and retry; never drop.
    Transient,
    /// The token expired or was refused: refresh, then retry.
    Unauthorized,
    /// A unique violation (the write is already there, or clashes with another row).
    Duplicate,
    /// A foreign key points at a row the server does not have (yet).
    MissingParent,
    /// RLS, checks, bad input, unknown columns…: retrying cannot help.
    Permanent,
}

/// Classify an HTTP error answer.
pub fn classify(e: &ServerError) -> Failure {
    match (e.status, e.code.as_str()) {
        (401, _) | (_, "PGRST301" | "PGRST302" | "PGRST303") => Failure::Unauthorized,
        (_, "23505") => Failure::Duplicate,
        (_, "23503") => Failure::MissingParent,
        (408 | 425 | 429, _) => Failure::Transient,
        (s, _) if s >= 500 => Failure::Transient,
        (_, c) if c.starts_with("08") || c.starts_with("53") || c == "40001" || c == "40P01" || c == "57014" => {
            Failure::Transient
        }
        _ => Failure::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(status: u16, code: &str) -> ServerError {
        ServerError {
            status,
            code: code.into(),
            message: String::new(),
            details: None,
            hint: None,
        }
    }

    #[test]
    fn the_failure_table() {
        assert_eq!(classify(&e(401, "PGRST303")), Failure::Unauthorized);
        assert_eq!(classify(&e(401, "42501")), Failure::Unauthorized, "anon RLS refusal: sign in first");
        assert_eq!(classify(&e(403, "42501")), Failure::Permanent);
        assert_eq!(classify(&e(409, "23505")), Failure::Duplicate);
        assert_eq!(classify(&e(409, "23503")), Failure::MissingParent);
        assert_eq!(classify(&e(400, "23514")), Failure::Permanent);
        assert_eq!(classify(&e(400, "23502")), Failure::Permanent);
        assert_eq!(classify(&e(400, "22P02")), Failure::Permanent);
        assert_eq!(classify(&e(400, "PGRST204")), Failure::Permanent);
        assert_eq!(classify(&e(503, "PGRST000")), Failure::Transient);
        assert_eq!(classify(&e(500, "")), Failure::Transient);
        assert_eq!(classify(&e(429, "")), Failure::Transient);
        assert_eq!(classify(&e(409, "40001")), Failure::Transient);
    }

    #[test]
    fn parses_postgrest_gotrue_and_garbage() {
        let p = ServerError::parse(403, br#"{"code":"42501","message":"new row violates row-level security policy for table \"m\"","details":null,"hint":null}"#);
        assert_eq!(p.code, "42501");
        assert!(p.reason().contains("row-level security"));
        let g = ServerError::parse(400, br#"{"code":400,"error_code":"invalid_credentials","msg":"Invalid login credentials"}"#);
        assert_eq!((g.code.as_str(), g.message.as_str()), ("invalid_credentials", "Invalid login credentials"));
        let x = ServerError::parse(502, b"<html>bad gateway</html>");
        assert_eq!(x.message, "<html>bad gateway</html>");
    }
}
