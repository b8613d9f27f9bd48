//! What every layer builds on and each platform decides: whether futures must be
//! `Send` (natively yes, in the browser no) and how time passes (a timer the platform
//! implements), and how a task lets others go first. Nothing here knows about rows, the network or sync.

pub mod maybe_send;
pub mod timer;
pub mod yield_now;
