//! How long to wait before trying again after a failure that waiting can cure (network
//! down, 5xx, 429). Exponential with a cap, and jittered so that many devices knocked
//! off by one outage do not come back in lock-step and knock the server over again.
//!
//! "Equal jitter": the n-th consecutive failure waits between half and all of
//! `initial · 2ⁿ` (capped), never zero, so a flapping network cannot turn into a busy
//! loop. Randomness comes from the OS through `uuid`'s v4 generator, which the core
//! already depends on (and which works in the browser through `crypto.getRandomValues`).

/// A backoff policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling after the first failure.
    pub initial_ms: u64,
    /// The largest ceiling.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_ms: 250,
            max_ms: 30_000,
        }
    }
}

impl Backoff {
    /// The longest wait after `failures` consecutive failures (1 = the first).
    pub fn ceiling_ms(&self, failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1).min(32);
        self.initial_ms.saturating_mul(1u64 << doublings).min(self.max_ms)
    }

    /// The wait after `failures` consecutive failures, for a `unit` drawn uniformly from
    /// `[0, 1)`: between half the ceiling and the ceiling.
    pub fn delay_ms_with(&self, failures: u32, unit: f64) -> u64 {
        let ceiling = self.ceiling_ms(failures);
        let half = ceiling / 2;
        half + ((ceiling - half) as f64 * unit.clamp(0.0, 1.0)) as u64
    }

    /// The wait after `failures` consecutive failures, jittered from the OS's randomness.
    pub fn delay_ms(&self, failures: u32) -> u64 {
        self.delay_ms_with(failures, random_unit())
    }
}

/// A uniform draw from `[0, 1)`.
pub fn random_unit() -> f64 {
    // 53 random bits: exactly what an f64 mantissa holds.
    let bits = (uuid::Uuid::new_v4().as_u128() >> 75) as u64;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff { initial_ms: 100, max_ms: 1_000 };
        let c: Vec<u64> = (1..=6).map(|n| b.ceiling_ms(n)).collect();
        assert_eq!(c, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(b.ceiling_ms(u32::MAX), 1_000, "no overflow");
    }

    #[test]
    fn delays_stay_between_half_and_the_ceiling() {
        let b = Backoff { initial_ms: 100, max_ms: 1_000 };
        assert_eq!(b.delay_ms_with(3, 0.0), 200);
        assert_eq!(b.delay_ms_with(3, 0.999_999), 399);
        for n in 1..10 {
            for _ in 0..50 {
                let d = b.delay_ms(n);
                assert!(d >= b.ceiling_ms(n) / 2 && d <= b.ceiling_ms(n), "{d} for {n}");
            }
        }
    }

    #[test]
    fn jitter_spreads_devices_apart() {
        let b = Backoff::default();
        let draws: std::collections::BTreeSet<u64> = (0..64).map(|_| b.delay_ms(6)).collect();
        // 64 devices after the same outage: nearly all pick different moments.
        assert!(draws.len() > 48, "only {} distinct delays", draws.len());
        let unit = random_unit();
        assert!((0.0..1.0).contains(&unit));
    }
}
