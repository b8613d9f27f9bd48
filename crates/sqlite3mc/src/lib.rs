//! SQLite for the native store: SQLite3 Multiple Ciphers, compiled by `build.rs` and
//! found by `libsqlite3-sys` (rusqlite without its `bundled` feature) when it links
//! `sqlite3`. Depending on this crate is what puts the library on the link line; its
//! only Rust API is [`version`]. Why SQLite3MC and not SQLCipher: its AEGIS-256 cipher encrypts and
//! authenticates a page in one pass with the CPU's AES instructions, where SQLCipher's
//! AES-256-CBC plus an HMAC made every write about twice as slow as plaintext (see
//! `store::cipher` in `supasync-native` and the README's encryption table).
//!
//! A build that linked another SQLite by mistake (a system one found first) would
//! ignore `PRAGMA key` and leave an "encrypted" store in the clear. [`version`] calls a
//! function only SQLite3MC has, and the store calls it before it keys a file: such a
//! build does not link at all.

use std::ffi::{c_char, CStr};

extern "C" {
    fn sqlite3mc_version() -> *const c_char;
}

/// The SQLite3MC release linked in, e.g. `SQLite3 Multiple Ciphers 2.6.1`.
pub fn version() -> String {
    // SAFETY: `sqlite3mc_version` takes nothing and returns a pointer to a static,
    // NUL-terminated string that lives as long as the library.
    let text = unsafe { CStr::from_ptr(sqlite3mc_version()) };
    text.to_string_lossy().into_owned()
}
