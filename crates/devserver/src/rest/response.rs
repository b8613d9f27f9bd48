//! What a request asks the answer to be (`Accept`, the schema profile) and the
//! answers' common shapes (JSON bodies, headers, PGRST116).


use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::RestError;
use crate::state::AppState;

pub(super) fn not_single(n: i64) -> RestError {
    RestError::new(StatusCode::NOT_ACCEPTABLE, "PGRST116", "Cannot coerce the result to a single JSON object")
        .details(format!("The result contains {n} rows"))
}

/// What a read answers with, from `Accept` (the first type it can produce wins).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Media {
    /// JSON rows; `nulls=stripped` drops null fields.
    Json { strip_nulls: bool },
    /// `text/csv`: a header line, then each row as PostgreSQL writes a record.
    Csv,
    /// `application/geo+json`: a FeatureCollection (PostGIS's `ST_AsGeoJSON` per row).
    GeoJson,
    /// `application/vnd.pgrst.plan[+json|+text]`: the statement's execution plan, when
    /// `pgrst.db_plan_enabled` is on.
    Plan { text: bool, options: Vec<&'static str> },
}

pub(super) fn media(headers: &HeaderMap, config: &crate::schema::InDatabaseConfig) -> Result<Media, RestError> {
    let Some(accept) = headers.get("accept").and_then(|v| v.to_str().ok()) else { return Ok(Media::Json { strip_nulls: false }) };
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let ty = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<String> = parts.map(|p| p.replace(' ', "").to_ascii_lowercase()).collect();
        let strip_nulls = params.iter().any(|p| p == "nulls=stripped");
        match ty.as_str() {
            "" | "*/*" | "application/*" | "application/json" | "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object"
            | "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => return Ok(Media::Json { strip_nulls }),
            "text/csv" => return Ok(Media::Csv),
            "application/geo+json" => return Ok(Media::GeoJson),
            "application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+json" | "application/vnd.pgrst.plan+text" if config.plans => {
                let options = params
                    .iter()
                    .filter_map(|p| p.strip_prefix("options="))
                    .flat_map(|o| o.split('|'))
                    .filter_map(|o| match o {
                        "analyze" => Some("ANALYZE"),
                        "verbose" => Some("VERBOSE"),
                        "settings" => Some("SETTINGS"),
                        "buffers" => Some("BUFFERS"),
                        "wal" => Some("WAL"),
                        _ => None,
                    })
                    .collect();
                return Ok(Media::Plan { text: ty.ends_with("+text"), options });
            }
            _ => {}
        }
    }
    // PostgREST's status for an Accept it cannot meet: 406 (its own test suite pins it).
    Err(RestError::new(
        StatusCode::NOT_ACCEPTABLE,
        "PGRST107",
        format!("None of these media types are available: {accept}"),
    ))
}

/// Writes and RPC answer JSON only.
pub(super) fn json_only(headers: &HeaderMap) -> Result<bool, RestError> {
    match media(headers, &crate::schema::InDatabaseConfig::default())? {
        Media::Json { strip_nulls } => Ok(strip_nulls),
        _ => Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST107",
            format!(
                "None of these media types are available: {}",
                headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default()
            ),
        )),
    }
}

pub(super) fn wants_single(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/vnd.pgrst.object+json"))
}

/// The schema a request targets: `Accept-Profile` for reads, `Content-Profile` for writes.
pub(super) fn profile(st: &AppState, method: &Method, headers: &HeaderMap) -> Result<String, RestError> {
    let h = if matches!(*method, Method::GET | Method::HEAD) { "accept-profile" } else { "content-profile" };
    let schema = headers
        .get(h)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| st.settings.schemas[0].clone());
    if !st.settings.schemas.contains(&schema) {
        return Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST106",
            format!("The schema must be one of the following: {}", st.settings.schemas.join(", ")),
        ));
    }
    Ok(schema)
}

pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

pub(super) fn set_header(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}
