//! The network clients: the transport traits a platform implements (HTTP and
//! WebSocket, [`transport`]), a small PostgREST and GoTrue client on them ([`client`],
//! [`auth`]) and its Storage requests ([`storage`]), what a failed request means ([`classify`]), retry pacing ([`backoff`]),
//! and the Phoenix channel client for Supabase Realtime ([`realtime`]).
//!
//! It speaks the wire and knows nothing of the local replica or of sync; it depends
//! only on [`crate::platform`].

pub mod auth;
pub mod backoff;
pub mod classify;
pub mod client;
pub mod realtime;
pub mod storage;
pub mod transport;
