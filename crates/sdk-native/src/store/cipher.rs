//! Encryption at rest for the SQLite store: SQLCipher (rusqlite's `bundled-sqlcipher`),
//! so every page of the file and of its WAL is AES-256 encrypted and authenticated
//! (HMAC-SHA512) before it reaches the disk, and a copied file or phone backup gives
//! away nothing but its size.
//!
//! Why SQLCipher and a raw key: it is the format PowerSync and most mobile apps use, it
//! encrypts the WAL as well, and a store that was never keyed opens as plain SQLite
//! through the same library. The key is 32 random bytes the app keeps in its platform's
//! keychain; SQLCipher's passphrase mode would run PBKDF2 (256,000 rounds) at every open,
//! which is a cold start of its own, so the key is handed over raw (`x'…'`).
//!
//! One device's replica directory holds a file per user. Each file gets a key of its
//! own, derived from the app's key and the user id with HKDF-SHA256
//! ([`EncryptionKey::for_user`]): one user's store key does not open another's.
//!
//! A plaintext file opened with a key is encrypted first, and a key change re-encrypts
//! every file: both copy the whole database (`sqlcipher_export`, the outbox included, so
//! pending writes stay pending) into a new file beside it, then swap it in with a
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

/// The name the new file is attached under while it is written.
const DEST: &str = "supasync_reencrypted";

/// Encrypted pages are 4 KiB, not the plaintext store's 8 KiB: each page a commit
/// writes is encrypted and authenticated whole, so a small write pays for the pages it
/// touches, and smaller pages halve that (`supasync-bench-encryption`).
pub const CIPHER_PAGE_SIZE: u32 = 4096;

/// Pages are authenticated with HMAC-SHA256 rather than SQLCipher 4's default
/// HMAC-SHA512: the same strength for this use, and x86-64's SHA extensions make it
/// about twice as fast (OpenSSL: 1.7 against 0.8 GB/s here).
const HMAC: &str = "HMAC_SHA256";

/// This format's cipher settings on `schema` (`main`, or an attached database). Every
/// open sets the same ones: SQLCipher keeps none of them in the file.
fn settings(conn: &Connection, schema: Option<&str>) -> rusqlite::Result<()> {
    conn.pragma_update(schema, "cipher_page_size", CIPHER_PAGE_SIZE)?;
    conn.pragma_update(schema, "cipher_hmac_algorithm", HMAC)
}

/// SQLite's page cache for an encrypted store, in KiB (as SQLite takes it, negative):
/// 32 MiB, where plaintext stores keep SQLite's 2 MiB. A page read from the file is
/// decrypted and checked each time it comes in, so pages a restore inserts among again
/// and again are worth keeping (a 10k-row restore: 1.87x plaintext with the default
/// cache, 1.59x with this one). It grows only as pages are read.
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

    /// SQLCipher's raw-key form, `x'<64 hex digits>'` (no passphrase derivation).
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

/// Key a connection just opened, before its first read.
pub fn apply_key(conn: &Connection, key: &EncryptionKey) -> Result<(), StoreError> {
    quiet(conn);
    conn.pragma_update(None, "key", &*key.sql_form())
        .and_then(|()| settings(conn, None))
        .map_err(|e| StoreError::Key(format!("cannot key the store: {e}")))?;
    check_key(conn)?;
    conn.pragma_update(None, "cache_size", CACHE_KIB).map_err(|e| StoreError::Io(e.to_string()))
}

/// SQLCipher writes its own errors to stderr (a wrong key is logged as pages it could
/// not decrypt); the store says them as [`StoreError::Key`] instead.
fn quiet(conn: &Connection) {
    // Not every SQLCipher build knows the setting: without it, its default stays.
    let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
}

/// Whether `key` opens the store at `path` (read-only: nothing is written).
pub fn opens_with(path: &Path, key: &EncryptionKey) -> bool {
    Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).is_ok_and(|conn| apply_key(&conn, key).is_ok())
}

/// Read the schema once: with a key that does not open the file SQLCipher answers
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

/// Copy the store at `path` (opened with `from`, or plaintext) into a file encrypted
/// with `to`, then put it in `path`'s place. The store must not be open elsewhere. The
/// format version (`user_version`) goes along; everything else is in the tables.
pub fn reencrypt(path: &Path, from: Option<&EncryptionKey>, to: &EncryptionKey) -> Result<(), StoreError> {
    let tmp = beside(path, "-reencrypting");
    // A file left by a run that stopped before its rename: the store itself is whole.
    remove_if_there(&tmp)?;
    {
        let conn = Connection::open(path).map_err(|e| StoreError::Io(e.to_string()))?;
        quiet(&conn);
        if let Some(k) = from {
            apply_key(&conn, k)?;
        }
        // Everything into the main file first, so the copy reads one file and the WAL
        // left behind is empty. `busy` means another connection holds the store.
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        if busy != 0 {
            return Err(StoreError::Io(format!("{}: the replica is open elsewhere; close it first", path.display())));
        }
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| StoreError::Io(e.to_string()))?;
        let tmp_text = tmp.to_str().ok_or_else(|| StoreError::Io(format!("{}: not a UTF-8 path", tmp.display())))?;
        conn.execute(&format!("ATTACH DATABASE ?1 AS {DEST} KEY ?2"), params![tmp_text, &*to.sql_form()])
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let copied = (|| {
            settings(&conn, Some(DEST))?;
            conn.query_row(&format!("SELECT sqlcipher_export('{DEST}')"), [], |_| Ok(()))?;
            conn.pragma_update(Some(DEST), "user_version", version)?;
            conn.execute_batch(&format!("DETACH DATABASE {DEST}"))
        })();
        if let Err(e) = copied {
            drop(conn);
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
    fn each_user_gets_a_key_of_their_own_and_no_key_is_printed() {
        let k = EncryptionKey::from_bytes(&[7; 32]).unwrap();
        let (a, b) = (k.for_user("alice"), k.for_user("bob"));
        assert_ne!(a.0.as_slice(), b.0.as_slice());
        assert_ne!(a.0.as_slice(), k.0.as_slice());
        assert_eq!(a.0.as_slice(), k.for_user("alice").0.as_slice(), "the same user's key every time");
        assert_eq!(format!("{k:?}"), "EncryptionKey(…)");
    }
}
