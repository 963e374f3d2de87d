//! What the sidecar's loop tells the world about itself: a heartbeat each time it comes round
//! (a loop silent for a minute is stuck, and the kubelet should restart the container), the
//! last report it made (whether the wiring is known to be right, and local mode's `/status`)
//! and its metrics.
//!
//! The loop writes here and the HTTP endpoint reads; neither knows the other.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::report::Report;

/// A loop that has not come round for this long is stuck.
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// The loop's heartbeat, last report and metrics, shared between the loop and the endpoint.
#[derive(Debug)]
pub struct Health {
    pub metrics: Metrics,
    last_pass: Mutex<LastPass>,
}

/// When the loop last came round, and what it found.
#[derive(Clone, Debug)]
struct LastPass {
    at: Instant,
    report: Option<Report>,
}

impl Health {
    /// Health of a loop that starts now and has not reported yet.
    pub fn new(now: Instant) -> Self {
        Self {
            metrics: Metrics::default(),
            last_pass: Mutex::new(LastPass {
                at: now,
                report: None,
            }),
        }
    }

    /// The loop came round at `now` and found `report`.
    pub fn beat(&self, report: &Report, now: Instant) {
        *self.lock() = LastPass {
            at: now,
            report: Some(report.clone()),
        };
    }

    /// The loop's last report; `None` before its first pass.
    pub fn last_report(&self) -> Option<Report> {
        self.lock().report.clone()
    }

    /// `Ok` while the loop has come round within [`STUCK_AFTER`] of `now`.
    pub fn check(&self, now: Instant) -> Result<(), String> {
        let at = self.lock().at;
        if now.saturating_duration_since(at) < STUCK_AFTER {
            Ok(())
        } else {
            Err("the sidecar's loop is stuck".to_owned())
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LastPass> {
        // A panic elsewhere while holding the lock leaves a whole value behind: use it.
        self.last_pass
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::WiringState;

    #[test]
    fn a_loop_is_healthy_until_it_has_been_silent_for_a_minute() {
        let start = Instant::now();
        let health = Health::new(start);
        assert_eq!(health.check(start + Duration::from_secs(59)), Ok(()));
        assert_eq!(
            health.check(start + STUCK_AFTER),
            Err("the sidecar's loop is stuck".to_owned())
        );

        let report = Report {
            participants: vec![],
            refused: Vec::new(),
            wiring: WiringState::wired(0, 0),
        };
        health.beat(&report, start + Duration::from_secs(50));
        assert_eq!(health.check(start + Duration::from_secs(100)), Ok(()));
    }

    #[test]
    fn the_last_report_is_the_one_of_the_last_pass() {
        let start = Instant::now();
        let health = Health::new(start);
        assert_eq!(health.last_report(), None);
        let report = Report {
            participants: vec![],
            refused: Vec::new(),
            wiring: WiringState::unknown("ControlSocketUnreachable", "no socket"),
        };
        health.beat(&report, start);
        assert_eq!(health.last_report(), Some(report));
    }
}
