//! The `Prefer` header (reference §4.5): return, count, resolution, missing, tx,
//! handling. Several values may share one header or come in repeated headers; the ones
//! applied are echoed in `Preference-Applied`.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::error::RestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    HeadersOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Merge,
    Ignore,
}

/// The parsed preferences of one request.
#[derive(Debug, Clone)]
pub struct Prefer {
    pub ret: Return,
    pub count: Option<String>,
    pub resolution: Option<Resolution>,
    pub missing_default: bool,
    pub tx_rollback: bool,
    /// `max-affected=N`: with `handling=strict`, a write (or RPC) touching more rows than
    /// this fails with PGRST124 and is rolled back.
    pub max_affected: Option<i64>,
    applied: Vec<String>,
}

impl Prefer {
    pub fn parse(headers: &HeaderMap) -> Result<Prefer, RestError> {
        let mut p = Prefer {
            ret: Return::Minimal,
            count: None,
            resolution: None,
            missing_default: false,
            tx_rollback: false,
            max_affected: None,
            applied: vec![],
        };
        let mut max_affected = None;
        let mut strict = false;
        let mut unknown = vec![];
        for v in headers.get_all("prefer") {
            let Ok(v) = v.to_str() else { continue };
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let known = match item {
                    "return=minimal" => {
                        p.ret = Return::Minimal;
                        true
                    }
                    "return=representation" => {
                        p.ret = Return::Representation;
                        true
                    }
                    "return=headers-only" => {
                        p.ret = Return::HeadersOnly;
                        true
                    }
                    "count=exact" | "count=planned" | "count=estimated" => {
                        p.count = Some(item[6..].to_string());
                        true
                    }
                    "resolution=merge-duplicates" => {
                        p.resolution = Some(Resolution::Merge);
                        true
                    }
                    "resolution=ignore-duplicates" => {
                        p.resolution = Some(Resolution::Ignore);
                        true
                    }
                    "missing=default" => {
                        p.missing_default = true;
                        true
                    }
                    "missing=null" | "tx=commit" | "handling=lenient" => true,
                    "tx=rollback" => {
                        p.tx_rollback = true;
                        true
                    }
                    "handling=strict" => {
                        strict = true;
                        true
                    }
                    _ => match item.strip_prefix("max-affected=").map(str::parse::<i64>) {
                        Some(Ok(n)) if n >= 0 => {
                            max_affected = Some(n);
                            true
                        }
                        _ => false,
                    },
                };
                if known {
                    p.applied.push(item.to_string());
                } else {
                    unknown.push(item.to_string());
                }
            }
        }
        if strict {
            p.max_affected = max_affected;
        }
        if strict && !unknown.is_empty() {
            return Err(RestError::new(StatusCode::BAD_REQUEST, "PGRST122", "Invalid preferences given with handling=strict")
                .details(format!("Invalid preferences: {}", unknown.join(", "))));
        }
        Ok(p)
    }

    /// Echo the applied preferences.
    pub fn applied(&self, r: &mut Response) {
        if self.applied.is_empty() {
            return;
        }
        if let Ok(v) = HeaderValue::from_str(&self.applied.join(", ")) {
            r.headers_mut().insert("preference-applied", v);
        }
    }
}
