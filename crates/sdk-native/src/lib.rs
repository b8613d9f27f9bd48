//! supasync-native: supasync for native apps (Tauri, Rust, and through uniffi Swift,
//! Kotlin and Python): the SQLite store and tokio transports behind `supasync-core`'s
//! traits. Filled in by the core issue.

pub use supasync_core as core;
