//! Encryption at rest for the SQLite store: SQLite3 Multiple Ciphers (the
//! `supasync-sqlite3mc` crate, which rusqlite links in place of plain SQLite) with its
//! AEGIS-256 cipher, so every page of the file and of its WAL is encrypted and
//! authenticated before it reaches the disk, and a copied file or phone backup gives
//! away nothing but its size.
//!
//! Why AEGIS-256: it encrypts and authenticates a page in one pass on the CPU's AES
//! instructions (x86-64 and ARMv8 alike, chosen at run time), where SQLCipher's
//! AES-256-CBC plus an HMAC made a small write about twice as slow as plaintext (the
//! format of supasync's first encrypted replicas, which are converted when they open:
//! [`Format::SqlCipher`]). The key is 32 random bytes the app keeps in its platform's
//! keychain, handed over raw (`x'…'`): a passphrase would run a key derivation at every
//! open, a cold start of its own.
//!
//! One device's replica directory holds a file per user. Each file gets a key of its
//! own, derived from the app's key and the user id with HKDF-SHA256
//! ([`EncryptionKey::for_user`]): one user's store key does not open another's.
//!
//! A plaintext file opened with a key is encrypted first, and a key change (or the
//! older format) re-encrypts every file: both copy the whole database (every table,
//! the outbox included, so pending writes stay pending, and `sqlite_sequence`, so no
//! outbox number is given twice) into a new file beside it, then swap it in with a
//! rename. A crash before the rename leaves the old file whole; after it, the new one.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use rusqlite::{params, Connection};
use sha2::Sha256;
use supasync_core::store::StoreError;
use zeroize::Zeroizing;

/// The first 16 bytes of every plaintext SQLite file.
const PLAIN_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The name the old file is attached under while it is copied into the new one.
const SOURCE: &str = "supasync_source";

/// How an encrypted store's pages are sealed. SQLite3MC keeps none of this in the file:
/// every open names the same settings before it gives the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// AEGIS-256 (SQLite3MC's `aegis` cipher with its default algorithm): what every
    /// encrypted store is written in now.
    Aegis,
    /// SQLCipher 4 with 4 KiB pages and HMAC-SHA256, the format supasync wrote through
    /// 2026-12-06 (SQLCipher itself, then): read only to be converted to [`Format::Aegis`].
    SqlCipher,
}

impl Format {
    /// The pragmas that select this format on a connection, before the key.
    const fn pragmas(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Format::Aegis => &[("cipher", "aegis")],
            // `legacy` first: it resets the other settings to SQLCipher 4's defaults.
            Format::SqlCipher => &[("cipher", "sqlcipher"), ("legacy", "4"), ("legacy_page_size", "4096"), ("hmac_algorithm", "1")],
        }
    }

    /// The same settings as `file:` URI parameters (for a file attached to a connection
    /// keyed otherwise).
    fn uri_params(self) -> String {
        self.pragmas().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
    }
}

/// SQLite's page cache for an encrypted store, in KiB (as SQLite takes it, negative):
/// 32 MiB, where plaintext stores keep SQLite's 2 MiB. A page read from the file is
/// decrypted and checked each time it comes in, so pages a restore inserts among again
/// and again are worth keeping. It grows only as pages are read.
const CACHE_KIB: i64 = -32 * 1024;

/// A 256-bit key for a replica. Its bytes are wiped from memory when it is dropped and
/// never printed (`Debug` shows only that it is a key).
#[derive(Clone)]
pub struct EncryptionKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(…)")
    }
}

impl EncryptionKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<EncryptionKey, StoreError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Key(format!("an encryption key is 32 bytes; this one is {}", bytes.len())))?;
        Ok(EncryptionKey(Zeroizing::new(arr)))
    }

    /// A key from 64 hex digits (how the CLI reads it from an environment variable or
    /// a file; surrounding whitespace is ignored).
    pub fn from_hex(text: &str) -> Result<EncryptionKey, StoreError> {
        let text = text.trim();
        let bad = || StoreError::Key(format!("an encryption key is 64 hex digits (32 bytes); this one is {} characters{}", text.len(), if text.len() == 64 { " with a non-hex digit" } else { "" }));
        if text.len() != 64 {
            return Err(bad());
        }
        let mut out = Zeroizing::new([0u8; 32]);
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(EncryptionKey(out))
    }

    /// The key of `user_id`'s store: HKDF-SHA256 of this key, salted with the format's
    /// name and bound to the user id, so no user's store key opens another's.
    pub fn for_user(&self, user_id: &str) -> EncryptionKey {
        let hk = Hkdf::<Sha256>::new(Some(b"supasync replica store v1"), self.0.as_slice());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit (8,160): expand cannot fail here.
        if hk.expand(user_id.as_bytes(), out.as_mut_slice()).is_err() {
            unreachable!("HKDF-SHA256 gives 32 bytes");
        }
        EncryptionKey(out)
    }

    /// The raw-key form SQLite3MC shares with SQLCipher, `x'<64 hex digits>'` (no
    /// passphrase derivation).
    fn sql_form(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(67));
        s.push_str("x'");
        for b in self.0.iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\'');
        s
    }
}

/// What is at a store's path, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// No file, or an empty one: a new store.
    New,
    /// A plaintext SQLite file.
    Plain,
    /// Anything else: an encrypted store (or not a database at all).
    Opaque,
}

/// What is at `path`.
pub fn file_kind(path: &Path) -> Result<FileKind, StoreError> {
    use std::io::Read;
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileKind::New),
        Err(e) => return Err(io(path, e)),
    };
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match f.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(io(path, e)),
        }
    }
    Ok(match got {
        0 => FileKind::New,
        16 if &head == PLAIN_HEADER => FileKind::Plain,
        _ => FileKind::Opaque,
    })
}

/// Key a connection just opened, before its first read, in the current format.
pub fn apply_key(conn: &Connection, key: &EncryptionKey) -> Result<(), StoreError> {
    key_as(conn, key, Format::Aegis)
}

fn key_as(conn: &Connection, key: &EncryptionKey, format: Format) -> Result<(), StoreError> {
    log_library();
    format
        .pragmas()
        .iter()
        .try_for_each(|(name, value)| conn.pragma_update(None, name, value))
        .and_then(|()| conn.pragma_update(None, "key", &*key.sql_form()))
        .map_err(|e| StoreError::Key(format!("cannot key the store: {e}")))?;
    check_key(conn)?;
    conn.pragma_update(None, "cache_size", CACHE_KIB).map_err(|e| StoreError::Io(e.to_string()))
}

/// Say which SQLite3MC keys the file (a debug line). Calling SQLite3MC's own function
/// here is also what makes a build linked to another SQLite (whose `PRAGMA key` does
/// nothing and would leave the "encrypted" store in the clear) fail to link.
fn log_library() {
    tracing::debug!(sqlite = %supasync_sqlite3mc::version(), "keying an encrypted store");
}

/// Whether `key` opens the store at `path` in the current format (read-only: nothing
/// is written).
pub fn opens_with(path: &Path, key: &EncryptionKey) -> bool {
    format_opened_by(path, key) == Some(Format::Aegis)
}

/// The format in which `key` opens the store at `path`, if it does (read-only).
fn format_opened_by(path: &Path, key: &EncryptionKey) -> Option<Format> {
    [Format::Aegis, Format::SqlCipher].into_iter().find(|&format| {
        Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).is_ok_and(|conn| key_as(&conn, key, format).is_ok())
    })
}

/// Convert a store `key` opens only in an older format ([`Format::SqlCipher`]) to the
/// current one, keeping everything in it; whether it did. Nothing to do if it opens as
/// it is, or not at all (the caller's open says that clearly).
pub fn upgrade_format(path: &Path, key: &EncryptionKey) -> Result<bool, StoreError> {
    if format_opened_by(path, key) != Some(Format::SqlCipher) {
        return Ok(false);
    }
    copy_and_swap(path, Some((key, Format::SqlCipher)), key)?;
    Ok(true)
}

/// Read the schema once: with a key that does not open the file SQLite3MC answers
/// "file is not a database" here, which is said as what it is.
fn check_key(conn: &Connection) -> Result<(), StoreError> {
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => Err(StoreError::Key(
            "this key does not open the replica (a wrong key, or the file is not a supasync replica); nothing was changed".into(),
        )),
        Err(e) => Err(StoreError::Io(e.to_string())),
    }
}

/// The new file written beside `path` while it is re-encrypted.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Copy the store at `path` (opened with `from`, in whichever format it opens, or
/// plaintext) into a file encrypted with `to` in the current format, then put it in
/// `path`'s place. The store must not be open elsewhere. The format version
/// (`user_version`) goes along; everything else is in the tables.
pub fn reencrypt(path: &Path, from: Option<&EncryptionKey>, to: &EncryptionKey) -> Result<(), StoreError> {
    let from = match from {
        None => None,
        Some(k) => Some((k, format_opened_by(path, k).ok_or_else(|| {
            StoreError::Key("this key does not open the replica (a wrong key, or the file is not a supasync replica); nothing was changed".into())
        })?)),
    };
    copy_and_swap(path, from, to)
}

/// [`reencrypt`] from a store `from` opens (its key and format), or a plaintext one.
fn copy_and_swap(path: &Path, from: Option<(&EncryptionKey, Format)>, to: &EncryptionKey) -> Result<(), StoreError> {
    let tmp = beside(path, "-reencrypting");
    // A file left by a run that stopped before its rename: the store itself is whole.
    remove_if_there(&tmp)?;
    {
        // Everything into the main file first, so the copy reads one file and the WAL
        // left behind is empty. `busy` means another connection holds the store.
        let old = Connection::open(path).map_err(|e| StoreError::Io(e.to_string()))?;
        if let Some((k, format)) = from {
            key_as(&old, k, format)?;
        }
        let busy: i64 = old
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        if busy != 0 {
            return Err(StoreError::Io(format!("{}: the replica is open elsewhere; close it first", path.display())));
        }
        drop(old);
        let new = Connection::open(&tmp).map_err(|e| StoreError::Io(e.to_string()))?;
        apply_key(&new, to)?;
        if let Err(e) = copy_into(&new, path, from) {
            drop(new);
            let _ = std::fs::remove_file(&tmp);
            return Err(StoreError::Io(format!("{}: cannot re-encrypt: {e}", path.display())));
        }
    }
    File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| io(&tmp, e))?;
    for suffix in ["-wal", "-shm"] {
        remove_if_there(&beside(path, suffix))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    if let Some(dir) = path.parent() {
        // The rename itself made durable (best effort: not every platform can open a
        // directory).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Copy every table of the store at `path` into `new` (keyed, empty), in one
/// transaction: the tables, their rows, `sqlite_sequence` as it was (so the outbox
/// goes on numbering where it stopped), then the indexes, triggers and views, and the
/// format version.
fn copy_into(new: &Connection, path: &Path, from: Option<(&EncryptionKey, Format)>) -> rusqlite::Result<()> {
    // `%` starts an escape in a URI's path, and `?` and `#` end it.
    let mut uri = format!("file:{}", path.to_string_lossy().replace('%', "%25").replace('?', "%3f").replace('#', "%23"));
    if let Some((_, format)) = from {
        uri.push('?');
        uri.push_str(&format.uri_params());
    }
    // An empty key attaches a plaintext file (no key would reuse the new file's).
    let key = from.map(|(k, _)| k.sql_form()).unwrap_or_default();
    new.pragma_update(None, "page_size", super::PAGE_SIZE)?;
    new.execute(&format!("ATTACH DATABASE ?1 AS {SOURCE} KEY ?2"), params![uri, &*key])?;
    let copied = (|| {
        new.execute_batch("BEGIN")?;
        let objects: Vec<(String, String, String)> = {
            let mut st = new.prepare(&format!(
                "SELECT type, name, sql FROM {SOURCE}.sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' \
                 ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid"
            ))?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (kind, name, sql) in &objects {
            new.execute_batch(sql)?;
            if kind == "table" {
                let q = name.replace('"', "\"\"");
                new.execute_batch(&format!("INSERT INTO main.\"{q}\" SELECT * FROM {SOURCE}.\"{q}\""))?;
            }
        }
        let has_sequence: bool = new.query_row(
            &format!("SELECT count(*) > 0 FROM {SOURCE}.sqlite_master WHERE name = 'sqlite_sequence'"),
            [],
            |r| r.get(0),
        )?;
        if has_sequence {
            new.execute_batch(&format!("DELETE FROM main.sqlite_sequence; INSERT INTO main.sqlite_sequence SELECT * FROM {SOURCE}.sqlite_sequence"))?;
        }
        let version: i64 = new.pragma_query_value(Some(SOURCE), "user_version", |r| r.get(0))?;
        new.pragma_update(None, "user_version", version)?;
        new.execute_batch("COMMIT")
    })();
    if copied.is_err() {
        let _ = new.execute_batch("ROLLBACK");
    }
    let detached = new.execute_batch(&format!("DETACH DATABASE {SOURCE}"));
    copied.and(detached)
}

fn remove_if_there(p: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(p, e)),
    }
}

fn io(p: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_hex_and_refused_clearly() {
        let k = EncryptionKey::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(k.0.as_slice(), &[0xab; 32]);
        assert!(matches!(EncryptionKey::from_hex("abc"), Err(StoreError::Key(m)) if m.contains("64 hex digits") && m.contains("3 characters")));
        assert!(matches!(EncryptionKey::from_hex(&"zz".repeat(32)), Err(StoreError::Key(m)) if m.contains("non-hex")));
        assert!(matches!(EncryptionKey::from_bytes(&[1; 16]), Err(StoreError::Key(m)) if m.contains("this one is 16")));
    }

    #[test]
    fn rusqlite_runs_on_sqlite3mc() {
        assert!(supasync_sqlite3mc::version().starts_with("SQLite3 Multiple Ciphers"), "{}", supasync_sqlite3mc::version());
        let conn = Connection::open_in_memory().unwrap();
        let through_sql: String = conn.query_row("SELECT sqlite3mc_version()", [], |r| r.get(0)).unwrap();
        assert_eq!(through_sql, supasync_sqlite3mc::version(), "the SQLite rusqlite runs on is the one linked");
    }

    #[test]
    fn each_user_gets_a_key_of_their_own_and_no_key_is_printed() {
        let k = EncryptionKey::from_bytes(&[7; 32]).unwrap();
        let (a, b) = (k.for_user("alice"), k.for_user("bob"));
        assert_ne!(a.0.as_slice(), b.0.as_slice());
        assert_ne!(a.0.as_slice(), k.0.as_slice());
        assert_eq!(a.0.as_slice(), k.for_user("alice").0.as_slice(), "the same user's key every time");
        assert_eq!(format!("{k:?}"), "EncryptionKey(…)");
    }
}
