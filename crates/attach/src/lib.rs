//! An existing app's SQLite database, synced as it is (issue 24, seed 001).
//!
//! The rest of supasync syncs rows it writes itself, through its API, under local ids.
//! An app like Open WebUI writes its own tables with its own SQL (SQLAlchemy), keyed by
//! its own primary keys, and must not change to be synced. So this crate works beside
//! the app instead of under it:
//!
//! - [`inspect`] reads the app's tables and decides how each row is keyed;
//! - [`capture`] installs triggers that log the key of every row the app inserts,
//!   updates or deletes into a change log inside the same file (same transaction as
//!   the app's write, so a write and its log entry commit or roll back together), and
//!   hands the log to a sync in batches;
//! - [`tenant`] makes the tenant's schema on Supabase from the app's tables (and the
//!   seed's `sync_metadata`), over a Postgres connection;
//! - [`deployment`] keeps each deployment's config (database, tenant schema,
//!   interval) as a JSON file in a directory;
//! - [`push`] sends what the log says changed (and tables not yet copied whole),
//!   one Postgres transaction per batch, then forgets the batch; a row the server
//!   edited too is a conflict, settled by the later write ([`history`] keeps the
//!   other);
//! - [`server_log`] logs edits made on the server, and [`pull`] writes them into the
//!   app's file; [`sync`] does both, push first;
//! - [`restore`] builds a new file from the tenant schema and checks it;
//! - [`schedule`] runs deployments on their intervals (the daemon).
//!
//! Why not the core's engine: its replica has an outbox of writes made through its API
//! and rows keyed by local ids; here the writes are the app's and the keys are the
//! app's, so what the two share is the idea (log what changed, send it once, confirm
//! it, then forget it), not the code.

pub mod capture;
pub mod connect;
pub mod deployment;
pub mod error;
pub mod history;
pub mod inspect;
pub mod progress;
pub mod pull;
pub mod push;
pub mod restore;
mod rows;
pub mod schedule;
pub mod server_log;
pub mod setup;
pub mod sync;
mod sync_log;
pub mod tenant;
pub mod values;

pub use capture::{Change, ChangeBatch, Op};
pub use error::AttachError;
pub use inspect::{AppTable, Column, KeyRule};
