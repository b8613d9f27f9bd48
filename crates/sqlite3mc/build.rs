//! Compiles the SQLite3 Multiple Ciphers amalgamation (the `sqlite3mc-src` crate, the
//! release as published) into `libsqlite3.a` in this crate's build directory, and puts
//! that directory first on the linker's search path. `libsqlite3-sys`, built without
//! its `bundled` feature, asks the linker for `sqlite3`: it finds this library before
//! any system one, so rusqlite runs on SQLite3MC, plaintext and encrypted stores alike.
//!
//! The compile-time options are the ones `libsqlite3-sys` uses for its bundled SQLite
//! (foreign keys on by default, FTS5, JSON, URI file names, thread safe), so nothing
//! but the encryption changes; and temporary files stay in memory (`SQLITE_TEMP_STORE=2`)
//! so a sort of an encrypted store's rows never reaches the disk in the clear.

use std::env;
use std::path::PathBuf;

fn main() {
    let src = sqlite3mc_src::source_dir();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    let android = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "android");
    let mut build = cc::Build::new();
    build
        .file(src.join(sqlite3mc_src::SOURCE_FILE))
        .include(src)
        .define("SQLITE_CORE", None)
        .define("SQLITE_DEFAULT_FOREIGN_KEYS", "1")
        .define("SQLITE_ENABLE_API_ARMOR", None)
        .define("SQLITE_ENABLE_COLUMN_METADATA", None)
        .define("SQLITE_ENABLE_DBSTAT_VTAB", None)
        .define("SQLITE_ENABLE_FTS3", None)
        .define("SQLITE_ENABLE_FTS3_PARENTHESIS", None)
        .define("SQLITE_ENABLE_FTS5", None)
        .define("SQLITE_ENABLE_LOAD_EXTENSION", "1")
        .define("SQLITE_ENABLE_RTREE", None)
        .define("SQLITE_ENABLE_STAT4", None)
        .define("SQLITE_SOUNDEX", None)
        .define("SQLITE_THREADSAFE", "1")
        .define("SQLITE_USE_URI", None)
        // Android's SQLite keeps all temporary files in memory (3); elsewhere memory is the
        // default that a query may still override (2).
        .define("SQLITE_TEMP_STORE", if android { "3" } else { "2" })
        .define("HAVE_USLEEP", "1")
        .define("HAVE_ISNAN", None)
        // A keyed database with no cipher named is AEGIS-256 (the store names it anyway).
        .define("CODEC_TYPE", "CODEC_TYPE_AEGIS")
        .warnings(false)
        // No link directive of our own: libsqlite3-sys's `-l sqlite3` finds this file.
        .cargo_metadata(false);
    build.compile("sqlite3");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
}
