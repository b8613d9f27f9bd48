//! The app-facing surface, what every platform wraps: the [`engine`] (one user's
//! replica: local reads and writes, auth, status, rejected writes, and push and pull
//! run through the sync layer), [`query`] (local queries and the rows they return),
//! [`live`] sync over Realtime (joining with the [`listeners`] a replica needs), [`live_query`], [`settle`] (sync until nothing waits),
//! files in Storage ([`files`]), the one-call facade [`replica`], and [`device`] (whoever is signed in on the
//! device, one object for the app's life).
//!
//! It is the top layer: it uses every layer below and nothing imports it.

pub mod device;
pub mod engine;
pub mod files;
pub mod listeners;
pub mod live;
pub mod live_query;
pub mod query;
pub mod replica;
pub mod settle;
