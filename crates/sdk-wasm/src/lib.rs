//! supasync-wasm: supasync for the browser: the IndexedDB store and fetch/WebSocket
//! transports behind `supasync-core`'s traits, exported with wasm-bindgen as the npm
//! package `supasync`.
//!
//! The crate is empty off wasm (the one `cfg` of the crate, here): it is a workspace
//! member so `cargo test --workspace` sees it, but it only means something in a browser.
#![cfg(target_family = "wasm")]

mod answers;
mod any_store;
pub mod api;
pub mod http;
mod js;
mod open;
pub mod runtime;
pub mod store;
pub mod web_lock;
pub mod ws;

pub use store::IdbStore;
pub use supasync_core as core;
