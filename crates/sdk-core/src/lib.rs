//! supasync-core: the platform-free sync engine.
//!
//! This crate will hold the outbox, local-id mapping, rollback, merge and the sync state
//! machine (see docs/ARCHITECTURE.md). It has no I/O of its own: storage, HTTP, Realtime
//! transport and the clock are traits implemented per platform by `supasync-native`
//! and `supasync-wasm`. The dev-server issue lays the workspace; the core issue fills it.
