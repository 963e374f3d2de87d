//! Whether the operator still hears the API server, for `/healthz`.
//!
//! Each of the controller's watches reports here what its stream yields: progress (objects
//! listed, a change seen) or an error. A watch that has failed without progress for longer
//! than a grace period is *deaf*, and makes `/healthz` fail: a liveness probe then restarts an
//! operator that would otherwise hold its Lease and answer probes while ignoring every change.
//! The grace period lets an operator ride out a short outage, such as an API server restart,
//! without being restarted.
//!
//! Time is passed in, so that the rules are plain functions of what was reported and when.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How long a watch may fail before the operator reports itself unhealthy, unless configured.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// What a report changed about a watch: the moments worth a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing new: the watch still works, or still fails within the grace period.
    Unchanged,
    /// The watch failed after working (or on its first attempt).
    StartedFailing,
    /// The watch has now failed for longer than the grace period: `/healthz` fails.
    WentDeaf { failing_for: Duration },
    /// The watch made progress again after failing for this long.
    Recovered { failed_for: Duration },
}

/// The health of the controller's watches, shared between the watches and `/healthz`.
#[derive(Debug)]
pub struct WatchHealth {
    grace: Duration,
    /// The watches that are failing now, by name; a watch that works is not listed.
    failing: Mutex<BTreeMap<&'static str, Failing>>,
}

#[derive(Clone, Copy, Debug)]
struct Failing {
    since: Instant,
    /// Whether `WentDeaf` was already reported for this run of failures.
    deaf: bool,
}

impl WatchHealth {
    /// Health that turns bad when a watch fails for longer than `grace`.
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            failing: Mutex::default(),
        }
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The watch named `watch` made progress at `now`.
    pub fn progressed(&self, watch: &'static str, now: Instant) -> Change {
        match self.lock().remove(watch) {
            Some(failing) => Change::Recovered {
                failed_for: now.saturating_duration_since(failing.since),
            },
            None => Change::Unchanged,
        }
    }

    /// The watch named `watch` failed at `now`.
    pub fn failed(&self, watch: &'static str, now: Instant) -> Change {
        let mut failing = self.lock();
        let Some(state) = failing.get_mut(watch) else {
            failing.insert(
                watch,
                Failing {
                    since: now,
                    deaf: false,
                },
            );
            return Change::StartedFailing;
        };
        let failing_for = now.saturating_duration_since(state.since);
        if failing_for > self.grace && !state.deaf {
            state.deaf = true;
            Change::WentDeaf { failing_for }
        } else {
            Change::Unchanged
        }
    }

    /// The watches that, at `now`, have failed for longer than the grace period, with how long
    /// they have failed; empty when the operator is healthy.
    pub fn deaf_watches(&self, now: Instant) -> Vec<(&'static str, Duration)> {
        self.lock()
            .iter()
            .map(|(&watch, failing)| (watch, now.saturating_duration_since(failing.since)))
            .filter(|&(_, failing_for)| failing_for > self.grace)
            .collect()
    }

    /// Whether every watch works, or has failed for no longer than the grace period.
    #[cfg(test)]
    pub fn is_healthy(&self, now: Instant) -> bool {
        self.deaf_watches(now).is_empty()
    }

    /// The state stays usable even if a thread panicked while holding the lock: it is a set of
    /// timestamps, always consistent.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Failing>> {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for WatchHealth {
    fn default() -> Self {
        Self::new(DEFAULT_GRACE)
    }
}

#[cfg(test)]
mod tests;
