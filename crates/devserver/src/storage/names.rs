//! What a bucket id and an object key may be, checked before anything is read or
//! written, so a bad name is a clear `InvalidBucketName` / `InvalidKey` and never a path
//! on disk (the bytes are stored under server-made version ids, not under names).
//!
//! Supabase's rules: keys of letters, digits and `_ / ! - . * ' ( ) space & $ @ = ; : + , ?`
//! (we also let other Unicode letters through, as Supabase does since 2024), bucket ids
//! the same without `/`. On top of that, no key has an empty, `.` or `..` segment, or
//! starts or ends with `/`.

use super::error::StorageError;

const MAX_KEY: usize = 1024;
const MAX_BUCKET: usize = 100;

fn allowed(c: char) -> bool {
    c.is_alphanumeric() || "_!-.*'() &$@=;:+,?".contains(c)
}

/// Check an object key (the path inside a bucket).
pub fn check_key(name: &str) -> Result<(), StorageError> {
    let bad = name.is_empty()
        || name.len() > MAX_KEY
        || !name.chars().all(|c| c == '/' || allowed(c))
        || name.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(StorageError::invalid_key(name));
    }
    Ok(())
}

/// Check a bucket id (also its name).
pub fn check_bucket(id: &str) -> Result<(), StorageError> {
    let bad = id.is_empty() || id.len() > MAX_BUCKET || id == "." || id == ".." || !id.chars().all(allowed);
    if bad {
        return Err(StorageError::invalid_bucket_name(id));
    }
    Ok(())
}

/// A size limit as the clients send it: a number of bytes, or a string with a decimal
/// unit (`"20mb"` is 20,000,000 bytes, as in Supabase).
pub fn parse_size(v: &serde_json::Value) -> Result<Option<i64>, StorageError> {
    use serde_json::Value;
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| StorageError::invalid(format!("file_size_limit must be a whole number of bytes, got {n}"))),
        Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let mult: f64 = match unit.trim() {
                "" | "b" => 1.0,
                "kb" => 1e3,
                "mb" => 1e6,
                "gb" => 1e9,
                _ => return Err(StorageError::invalid(format!("file_size_limit: unknown unit in {s:?} (b, kb, mb or gb)"))),
            };
            let n: f64 = num
                .parse()
                .map_err(|_| StorageError::invalid(format!("file_size_limit: {s:?} is not a size")))?;
            Ok(Some((n * mult).round() as i64))
        }
        other => Err(StorageError::invalid(format!("file_size_limit must be a number or a string, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys() {
        for ok in ["a.txt", "folder/sub/file (1).png", "ünïcode/ok", "a b/c&d=e"] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", "../etc/passwd", "a/../b", "./a", "a\\b", "a\nb", "a<b"] {
            let e = check_key(bad).unwrap_err();
            assert_eq!(e.code, "InvalidKey", "{bad}");
        }
    }

    #[test]
    fn buckets() {
        assert!(check_bucket("avatars-2").is_ok());
        for bad in ["", "a/b", "..", &"x".repeat(101)] {
            assert_eq!(check_bucket(bad).unwrap_err().code, "InvalidBucketName", "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&json!("20mb")).unwrap(), Some(20_000_000));
        assert_eq!(parse_size(&json!("1kb")).unwrap(), Some(1000));
        assert_eq!(parse_size(&json!(1024)).unwrap(), Some(1024));
        assert_eq!(parse_size(&json!(null)).unwrap(), None);
        assert!(parse_size(&json!("12 parsecs")).is_err());
        assert!(parse_size(&json!(-1)).is_err());
    }
}
