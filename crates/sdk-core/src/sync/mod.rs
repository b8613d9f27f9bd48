//! The sync algorithms: how the replica and the server converge. [`push`] drains the
//! outbox exactly once; [`pull`] brings back what changed under the SQL kit's snapshot;
//! [`remote_change`] applies one Realtime change (a new row shown at once when
//! [`forecast`] is sure of it). They share the paths every one of
//! them ends in: server rows into the replica ([`server_rows`], with references mapped
//! back by [`references`]), the server's deletes ([`tombstones`], [`server_delete`],
//! [`graveyard`]), refusals rolled back ([`reject`]), where a pull resumes
//! ([`cursor`]), and what a change of the user's memberships brings or takes away for
//! shared tables ([`scopes`]).
//!
//! None of them knows the engine: each step reads and writes through a
//! [`context::SyncContext`] the engine lends it (schema, store, client, session,
//! writer lock, notifier), and fails with [`error::SyncError`]. So the layer depends
//! only on [`crate::local`] and [`crate::net`].

pub mod context;
pub mod cursor;
pub mod error;
pub mod forecast;
pub mod graveyard;
pub mod pull;
pub mod push;
pub mod references;
pub mod reject;
pub mod remote_change;
pub mod scopes;
pub mod server_delete;
pub mod server_rows;
pub mod session;
pub mod tombstones;
