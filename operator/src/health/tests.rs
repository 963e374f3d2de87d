use std::time::Duration;

use tokio::time::Instant;

use super::{Change, WatchHealth};

const GRACE: Duration = Duration::from_secs(60);

fn seconds(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

#[test]
fn a_watch_failing_within_the_grace_period_is_healthy_and_past_it_is_not_until_it_recovers() {
    let health = WatchHealth::new(GRACE);
    let start = Instant::now();
    assert!(health.is_healthy(start), "no reports yet");

    assert_eq!(health.progressed("MidiHub", start), Change::Unchanged);
    assert_eq!(
        health.failed("MidiHub", start + seconds(10)),
        Change::StartedFailing
    );
    assert_eq!(
        health.failed("MidiHub", start + seconds(30)),
        Change::Unchanged
    );
    assert!(
        health.is_healthy(start + seconds(70)),
        "failing for exactly the grace period is still within it"
    );

    assert!(!health.is_healthy(start + seconds(71)));
    assert_eq!(
        health.deaf_watches(start + seconds(71)),
        [("MidiHub", seconds(61))]
    );
    assert_eq!(
        health.failed("MidiHub", start + seconds(75)),
        Change::WentDeaf {
            failing_for: seconds(65)
        }
    );
    assert_eq!(
        health.failed("MidiHub", start + seconds(80)),
        Change::Unchanged,
        "going deaf is reported once"
    );

    assert_eq!(
        health.progressed("MidiHub", start + seconds(90)),
        Change::Recovered {
            failed_for: seconds(80)
        }
    );
    assert!(health.is_healthy(start + seconds(90)));
    assert!(health.is_healthy(start + seconds(1000)));
}

#[test]
fn progress_resets_the_grace_period() {
    let health = WatchHealth::new(GRACE);
    let start = Instant::now();
    health.failed("Pod", start);
    health.progressed("Pod", start + seconds(50));
    assert_eq!(
        health.failed("Pod", start + seconds(55)),
        Change::StartedFailing
    );
    assert!(
        health.is_healthy(start + seconds(100)),
        "failing for 45 s since the last progress"
    );
    assert!(!health.is_healthy(start + seconds(116)));
}

#[test]
fn one_deaf_watch_makes_the_operator_unhealthy_while_the_others_work() {
    let health = WatchHealth::new(GRACE);
    let start = Instant::now();
    health.progressed("MidiHub", start);
    health.failed("Deployment", start);
    health.failed("Pod", start + seconds(30));
    health.progressed("MidiHub", start + seconds(61));
    assert_eq!(
        health.deaf_watches(start + seconds(61)),
        [("Deployment", seconds(61))]
    );
}
