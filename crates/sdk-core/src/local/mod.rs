//! The local replica: what a device holds and how the app writes to it, with no
//! network in sight. Table declarations ([`schema`]), one row as the device keeps it
//! ([`local_row`]: the server's mirror under local changes), the outbox of waiting
//! writes ([`outbox`]), the storage trait every platform implements ([`store`]), the
//! optimistic write path ([`writer`]), declared indexes and their keys ([`index`]), timestamps as instants ([`time`]), files as rows of pseudo-tables ([`files`]), the one-writer rule ([`write_lock`]) and the
//! change notifications that leave the replica ([`events`]).
//!
//! It depends only on [`crate::platform`]; the sync layer above reads and writes
//! through it.

pub mod events;
pub mod file_writes;
pub mod files;
pub mod index;
pub mod local_row;
pub mod new_row;
pub mod outbox;
pub mod row_doc;
pub mod schema;
pub mod store;
pub mod time;
pub mod write_lock;
pub mod writer;
