//! Which Storage operation a method and path name, in Supabase's order of precedence
//! (`/object/sign/…` before `/object/{bucket}/…`), with the bucket and key decoded.

use axum::http::Method;

use super::error::StorageError;

/// Who may read an object on a download or info route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As the caller (row-level security).
    Authenticated,
    /// Anyone, if the bucket is public.
    Public,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    ListBuckets,
    GetBucket(String),
    CreateBucket,
    UpdateBucket(String),
    EmptyBucket(String),
    DeleteBucket(String),
    Upload { bucket: String, key: String, put: bool },
    Download { mode: Mode, bucket: String, key: String, head: bool },
    Info { mode: Mode, bucket: String, key: String },
    DeleteOne { bucket: String, key: String },
    DeleteMany(String),
    Move,
    Copy,
    List(String),
    ListV2(String),
    /// `GET /object/sign/{bucket}/{key}?token=`: the token decides, not the caller.
    SignedDownload { bucket: String, key: String, head: bool },
    SignOne { bucket: String, key: String },
    SignMany(String),
    SignUpload { bucket: String, key: String },
    UploadSigned { bucket: String, key: String },
    /// `/render/image/{authenticated|public}/…`; `sign` is `RenderSigned`.
    Render { mode: Mode, bucket: String, key: String },
    RenderSigned { bucket: String, key: String },
    TusOptions,
    TusCreate,
    TusHead(String),
    TusPatch(String),
    TusDelete(String),
}

fn decode(s: &str) -> Result<String, StorageError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| StorageError::invalid("the path is not valid UTF-8 once decoded"))
}

/// `bucket/key…` split at the first `/`.
fn bucket_key(rest: &str) -> Result<(String, String), StorageError> {
    let (b, k) = rest.split_once('/').ok_or_else(|| StorageError::invalid_key(""))?;
    Ok((decode(b)?, decode(k)?))
}

/// Parse a request under `/storage/v1/`.
pub fn parse(method: &Method, rest: &str) -> Result<Route, StorageError> {
    use Route as R;
    let m = method.as_str();
    let rest = rest.trim_end_matches('?');
    if rest == "bucket" || rest == "bucket/" {
        return match m {
            "GET" => Ok(R::ListBuckets),
            "POST" => Ok(R::CreateBucket),
            _ => Err(StorageError::not_found_route()),
        };
    }
    if let Some(b) = rest.strip_prefix("bucket/") {
        if let Some(id) = b.strip_suffix("/empty") {
            return if m == "POST" { Ok(R::EmptyBucket(decode(id)?)) } else { Err(StorageError::not_found_route()) };
        }
        let id = decode(b)?;
        return match m {
            "GET" => Ok(R::GetBucket(id)),
            "PUT" => Ok(R::UpdateBucket(id)),
            "DELETE" => Ok(R::DeleteBucket(id)),
            _ => Err(StorageError::not_found_route()),
        };
    }
    if rest == "upload/resumable" || rest == "upload/resumable/" {
        return match m {
            "POST" => Ok(R::TusCreate),
            "OPTIONS" => Ok(R::TusOptions),
            _ => Err(StorageError::not_found_route()),
        };
    }
    if let Some(id) = rest.strip_prefix("upload/resumable/") {
        let id = decode(id)?;
        return match m {
            "HEAD" => Ok(R::TusHead(id)),
            "PATCH" => Ok(R::TusPatch(id)),
            "DELETE" => Ok(R::TusDelete(id)),
            "OPTIONS" => Ok(R::TusOptions),
            _ => Err(StorageError::not_found_route()),
        };
    }
    if let Some(r) = rest.strip_prefix("render/image/") {
        if m != "GET" {
            return Err(StorageError::not_found_route());
        }
        for (prefix, mode) in [("public/", Some(Mode::Public)), ("authenticated/", Some(Mode::Authenticated)), ("sign/", None)] {
            if let Some(s) = r.strip_prefix(prefix) {
                let (bucket, key) = bucket_key(s)?;
                return Ok(match mode {
                    Some(mode) => R::Render { mode, bucket, key },
                    None => R::RenderSigned { bucket, key },
                });
            }
        }
        return Err(StorageError::not_found_route());
    }
    let Some(o) = rest.strip_prefix("object/") else { return Err(StorageError::not_found_route()) };
    match (m, o) {
        ("POST", "move") => return Ok(R::Move),
        ("POST", "copy") => return Ok(R::Copy),
        _ => {}
    }
    if let Some(b) = o.strip_prefix("list/") {
        return if m == "POST" { Ok(R::List(decode(b)?)) } else { Err(StorageError::not_found_route()) };
    }
    if let Some(b) = o.strip_prefix("list-v2/") {
        return if m == "POST" { Ok(R::ListV2(decode(b)?)) } else { Err(StorageError::not_found_route()) };
    }
    if let Some(s) = o.strip_prefix("upload/sign/") {
        let (bucket, key) = bucket_key(s)?;
        return match m {
            "POST" => Ok(R::SignUpload { bucket, key }),
            "PUT" => Ok(R::UploadSigned { bucket, key }),
            _ => Err(StorageError::not_found_route()),
        };
    }
    if let Some(s) = o.strip_prefix("sign/") {
        return match (m, s.split_once('/')) {
            ("POST", None) => Ok(R::SignMany(decode(s)?)),
            ("POST", Some(_)) => {
                let (bucket, key) = bucket_key(s)?;
                Ok(R::SignOne { bucket, key })
            }
            ("GET" | "HEAD", Some(_)) => {
                let (bucket, key) = bucket_key(s)?;
                Ok(R::SignedDownload { bucket, key, head: m == "HEAD" })
            }
            _ => Err(StorageError::not_found_route()),
        };
    }
    for (prefix, mode) in [("info/public/", Mode::Public), ("info/authenticated/", Mode::Authenticated), ("info/", Mode::Authenticated)] {
        if let Some(s) = o.strip_prefix(prefix) {
            let (bucket, key) = bucket_key(s)?;
            return if m == "GET" { Ok(R::Info { mode, bucket, key }) } else { Err(StorageError::not_found_route()) };
        }
    }
    for (prefix, mode) in [("public/", Mode::Public), ("authenticated/", Mode::Authenticated)] {
        if let Some(s) = o.strip_prefix(prefix) {
            let (bucket, key) = bucket_key(s)?;
            return match m {
                "GET" | "HEAD" => Ok(R::Download { mode, bucket, key, head: m == "HEAD" }),
                _ => Err(StorageError::not_found_route()),
            };
        }
    }
    match o.split_once('/') {
        None => match m {
            "DELETE" => Ok(R::DeleteMany(decode(o)?)),
            _ => Err(StorageError::not_found_route()),
        },
        Some(_) => {
            let (bucket, key) = bucket_key(o)?;
            match m {
                "POST" => Ok(R::Upload { bucket, key, put: false }),
                "PUT" => Ok(R::Upload { bucket, key, put: true }),
                "GET" | "HEAD" => Ok(R::Download { mode: Mode::Authenticated, bucket, key, head: m == "HEAD" }),
                "DELETE" => Ok(R::DeleteOne { bucket, key }),
                _ => Err(StorageError::not_found_route()),
            }
        }
    }
}
