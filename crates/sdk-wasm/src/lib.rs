//! supasync-wasm: supasync for the browser: the IndexedDB store and fetch/WebSocket
//! transports behind `supasync-core`'s traits, exported with wasm-bindgen as the npm
//! package `supasync`. Filled in by the browser issue.

pub use supasync_core as core;
