//! Sync until settled: push and pull in rounds until no write waits (only rejected
//! ones may remain), backing off with jitter ([`crate::net::backoff`]) while the server
//! cannot be reached or asks to slow down, and giving up at a deadline with what is
//! still pending and why. This is what `supasync sync` runs, and what the live
//! scheduler runs after every reconnect.
//!
//! A round that confirmed writes is progress: the next round starts at once. A round
//! that confirmed nothing (the network is down, the server answers 5xx/429, a parent
//! is still missing) counts as a failure and waits longer each time. Errors that
//! waiting cannot cure (not signed in, a broken store, a refused session) end the loop.

use serde::Serialize;

use crate::net::backoff::Backoff;
use crate::net::classify::Failure;
use crate::app::engine::{Engine, EngineError, Status};
use crate::sync::pull::PullReport;
use crate::sync::push::PushReport;
use crate::local::store::Store;
use crate::platform::timer::Timer;
use crate::net::transport::Http;

/// One push-then-pull round.
#[derive(Debug, Clone, Serialize)]
pub struct SyncRound {
    pub push: Option<PushReport>,
    pub pull: Option<PullReport>,
    /// Why the round failed, if it did.
    pub error: Option<String>,
    /// How long the loop waited after this round.
    pub waited_ms: u64,
}

/// A settled replica: no write waits.
#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    pub rounds: Vec<SyncRound>,
    pub status: Status,
}

impl<S: Store, H: Http> Engine<S, H> {
    /// Push and pull until no write waits, or until `timeout_ms` has passed
    /// ([`EngineError::NotSettled`]).
    pub async fn sync_until_settled(&self, timer: &impl Timer, backoff: Backoff, timeout_ms: u64) -> Result<Settled, EngineError> {
        let deadline = self.now_ms().saturating_add(timeout_ms as i64);
        let mut rounds: Vec<SyncRound> = vec![];
        let mut failures = 0u32;
        loop {
            let mut round = SyncRound {
                push: None,
                pull: None,
                error: None,
                waited_ms: 0,
            };
            match self.sync().await {
                Ok((push, pull)) => {
                    if push.pushed > 0 || push.rejected > 0 {
                        failures = 0;
                    } else {
                        failures += 1;
                    }
                    round.error = push.stopped.clone();
                    round.push = Some(push);
                    round.pull = Some(pull);
                }
                Err(EngineError::Request(e)) if matches!(e.failure(), Failure::Transient) => {
                    failures += 1;
                    round.error = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
            let status = self.status().await?;
            if status.pending == 0 {
                rounds.push(round);
                return Ok(Settled { rounds, status });
            }
            let now = self.now_ms();
            let wait = if failures == 0 { 0 } else { backoff.delay_ms(failures) };
            if now.saturating_add(wait as i64) >= deadline {
                let last_error = round.error.clone();
                rounds.push(round);
                return Err(EngineError::NotSettled {
                    pending: status.pending,
                    rounds: rounds.len(),
                    last_error,
                });
            }
            round.waited_ms = wait;
            rounds.push(round);
            if wait > 0 {
                timer.sleep_ms(wait).await;
            }
        }
    }
}
