//! supasync-wasm: supasync for the browser: the IndexedDB store and fetch/WebSocket
//! transports behind `supasync-core`'s traits, exported with wasm-bindgen as the npm
//! package `supasync`.

pub mod store;

pub use store::IdbStore;
pub use supasync_core as core;
