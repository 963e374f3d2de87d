//! The occupied-room rule, reconcile by reconcile: each step feeds the status the previous one
//! would have written (replicas, next transition, overtime) plus what the sidecar reports.
//! 2026-01-05 is a Monday; Berlin is on CET (+01:00): the 19:00–23:00 window ends 22:00 UTC.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use midihub_api::Weekday::*;
use midihub_api::{HubPort, MidiHubSpec, MidiHubStatus, Overtime, Schedule, Window};

use super::*;
use crate::schedule::{AwakeReason, decide};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Weekday evenings 19:00–23:00 in Berlin.
fn evening() -> MidiHubSpec {
    MidiHubSpec {
        ports: vec![HubPort {
            port: 5004,
            name: None,
            allow: Vec::new(),
        }],
        region: None,
        schedule: Some(Schedule {
            time_zone: "Europe/Berlin".to_owned(),
            windows: vec![Window {
                days: vec![Mon, Tue, Wed, Thu, Fri],
                start: "19:00".to_owned(),
                end: "23:00".to_owned(),
            }],
        }),
        suspend: false,
        wake_until: None,
        overtime: None,
        listed: false,
        pod: Default::default(),
    }
}

fn with_overtime(mut spec: MidiHubSpec, grace: &str, limit: &str) -> MidiHubSpec {
    spec.overtime = Some(Overtime {
        grace: Some(grace.to_owned()),
        limit: Some(limit.to_owned()),
    });
    spec
}

/// A hub seen reconcile after reconcile.
struct Hub {
    spec: MidiHubSpec,
    status: MidiHubStatus,
}

impl Hub {
    /// Awake inside its window, as the operator last wrote it at `now`, with `players` in it.
    fn awake_at(spec: MidiHubSpec, now: &str, players: i32) -> Self {
        let mut hub = Self {
            spec,
            status: MidiHubStatus::default(),
        };
        let decision = hub.reconcile(now);
        assert!(decision.awake, "inside the window: {decision:?}");
        hub.players(players);
        hub
    }

    /// What the sidecar reports.
    fn players(&mut self, count: i32) {
        self.status.participant_count = Some(count);
    }

    /// The decision at `now`; the status keeps what the operator would write of it.
    fn reconcile(&mut self, now: &str) -> Decision {
        let now = at(now);
        let decision = decide(&self.spec, now).unwrap();
        let decision = apply(decision, &self.spec, Some(&self.status), now).unwrap();
        self.status.replicas = Some(i32::from(decision.awake));
        self.status.next_transition = decision.next.as_ref().map(|next| next.summary.clone());
        self.status.next_transition_time = decision.next.as_ref().map(|next| Time(next.at));
        self.status.overtime = decision.overtime.clone();
        decision
    }
}

fn assert_overtime(decision: &Decision, sleeps_at: &str, next: &str) {
    assert!(decision.awake, "{decision:?}");
    assert_eq!(decision.reason, AwakeReason::Overtime);
    let transition = decision.next.as_ref().expect("a next transition");
    assert_eq!((transition.at, transition.wakes), (at(sleeps_at), false));
    assert_eq!(transition.summary, next);
    assert_eq!(decision.recheck_at, Some(at(sleeps_at)));
}

fn assert_asleep(decision: &Decision) {
    assert!(!decision.awake, "{decision:?}");
    assert_eq!(decision.overtime, None);
}

#[test]
fn a_window_that_ends_while_someone_plays_keeps_the_hub_awake_until_the_limit() {
    let mut hub = Hub::awake_at(evening(), "2026-01-05T21:00:00Z", 3);
    let decision = hub.reconcile("2026-01-05T22:00:00Z");
    assert_overtime(
        &decision,
        "2026-01-06T00:00:00Z",
        "sleeps when empty, window ended Mon 23:00 Europe/Berlin",
    );
    assert_eq!(
        decision.overtime,
        Some(OvertimeStatus {
            window_ended: Time(at("2026-01-05T22:00:00Z")),
            empty_since: None,
        })
    );
    assert!(
        decision
            .message()
            .contains("at the latest 2026-01-06 00:00 UTC")
    );
    // Still playing an hour later: nothing changes.
    assert_eq!(hub.reconcile("2026-01-05T23:00:00Z"), decision);
    // Still playing at the limit: the hub sleeps.
    assert_asleep(&hub.reconcile("2026-01-06T00:00:00Z"));
}

#[test]
fn once_the_rooms_are_empty_the_hub_sleeps_after_the_grace_period() {
    let mut hub = Hub::awake_at(evening(), "2026-01-05T21:00:00Z", 2);
    hub.reconcile("2026-01-05T22:00:00Z");
    hub.players(0);
    let decision = hub.reconcile("2026-01-05T22:20:00Z");
    assert_overtime(
        &decision,
        "2026-01-05T22:30:00Z",
        "sleep Mon 23:30 Europe/Berlin unless someone joins",
    );
    // The grace period counts from when the rooms emptied, not from each reconcile.
    assert_eq!(hub.reconcile("2026-01-05T22:25:00Z"), decision);
    assert_asleep(&hub.reconcile("2026-01-05T22:30:00Z"));
    // And it stays asleep: nobody is in a hub without a pod.
    assert_asleep(&hub.reconcile("2026-01-05T22:31:00Z"));
}

#[test]
fn someone_joining_during_the_grace_period_keeps_the_hub_awake() {
    let mut hub = Hub::awake_at(evening(), "2026-01-05T21:00:00Z", 1);
    hub.reconcile("2026-01-05T22:00:00Z");
    hub.players(0);
    hub.reconcile("2026-01-05T22:20:00Z");
    hub.players(1);
    let decision = hub.reconcile("2026-01-05T22:29:00Z");
    assert_overtime(
        &decision,
        "2026-01-06T00:00:00Z",
        "sleeps when empty, window ended Mon 23:00 Europe/Berlin",
    );
    assert_eq!(decision.overtime.as_ref().unwrap().empty_since, None);
    // Emptied again: a new grace period from then.
    hub.players(0);
    assert_overtime(
        &hub.reconcile("2026-01-05T23:00:00Z"),
        "2026-01-05T23:10:00Z",
        "sleep Tue 00:10 Europe/Berlin unless someone joins",
    );
}

#[test]
fn the_grace_period_never_reaches_past_the_limit() {
    let mut hub = Hub::awake_at(evening(), "2026-01-05T21:00:00Z", 1);
    hub.reconcile("2026-01-05T22:00:00Z");
    hub.players(0);
    assert_overtime(
        &hub.reconcile("2026-01-05T23:55:00Z"),
        "2026-01-06T00:00:00Z",
        "sleep Tue 01:00 Europe/Berlin unless someone joins",
    );
}

#[test]
fn a_window_that_ends_with_nobody_playing_sleeps_at_once() {
    let mut hub = Hub::awake_at(evening(), "2026-01-05T21:00:00Z", 0);
    assert_asleep(&hub.reconcile("2026-01-05T22:00:00Z"));
}

#[test]
fn suspend_sleeps_at_once_even_in_overtime() {
    let mut hub = Hub::awake_at(evening(), "2026-01-05T21:00:00Z", 4);
    hub.reconcile("2026-01-05T22:00:00Z");
    hub.spec.suspend = true;
    let decision = hub.reconcile("2026-01-05T22:05:00Z");
    assert_asleep(&decision);
    assert_eq!(decision.reason, AwakeReason::Suspended);
}

#[test]
fn a_window_that_starts_during_overtime_ends_it() {
    let spec = MidiHubSpec {
        schedule: Some(Schedule {
            time_zone: "UTC".to_owned(),
            windows: vec![
                Window {
                    days: vec![Mon],
                    start: "18:00".to_owned(),
                    end: "20:00".to_owned(),
                },
                Window {
                    days: vec![Mon],
                    start: "21:00".to_owned(),
                    end: "22:00".to_owned(),
                },
            ],
        }),
        ..evening()
    };
    let mut hub = Hub::awake_at(spec, "2026-01-05T19:00:00Z", 2);
    let decision = hub.reconcile("2026-01-05T20:00:00Z");
    assert_eq!(decision.reason, AwakeReason::Overtime);
    // The next window's start comes before the limit: the hub looks again then.
    assert_eq!(decision.recheck_at, Some(at("2026-01-05T21:00:00Z")));
    let decision = hub.reconcile("2026-01-05T21:00:00Z");
    assert_eq!(
        (decision.awake, decision.reason, decision.overtime),
        (true, AwakeReason::InWindow, None)
    );
}

#[test]
fn a_wake_until_that_passes_while_someone_plays_starts_overtime_from_that_time() {
    // Woken on a Monday evening outside its only window, on Sundays.
    let spec = MidiHubSpec {
        schedule: Some(Schedule {
            time_zone: "UTC".to_owned(),
            windows: vec![Window {
                days: vec![Sun],
                start: "10:00".to_owned(),
                end: "11:00".to_owned(),
            }],
        }),
        wake_until: Some(Time(at("2026-01-05T22:00:00Z"))),
        ..with_overtime(evening(), "30s", "1m")
    };
    let mut hub = Hub::awake_at(spec, "2026-01-05T21:59:00Z", 1);
    // The operator was busy: it looks 10 s after wakeUntil passed.
    assert_overtime(
        &hub.reconcile("2026-01-05T22:00:10Z"),
        "2026-01-05T22:01:00Z",
        "sleeps when empty, window ended Mon 22:00 UTC",
    );
}

#[test]
fn an_operator_back_after_the_windows_end_counts_the_limit_from_the_end() {
    let mut hub = Hub::awake_at(evening(), "2026-01-05T21:00:00Z", 2);
    // The status still announces the sleep at 22:00 UTC; nobody looked until 23:30.
    let decision = hub.reconcile("2026-01-05T23:30:00Z");
    assert_overtime(
        &decision,
        "2026-01-06T00:00:00Z",
        "sleeps when empty, window ended Mon 23:00 Europe/Berlin",
    );
    let mut late = Hub::awake_at(evening(), "2026-01-05T21:00:00Z", 2);
    assert_asleep(&late.reconcile("2026-01-06T00:30:00Z"));
}

#[test]
fn participants_left_in_the_status_of_a_sleeping_hub_start_no_overtime() {
    let mut hub = Hub::awake_at(evening(), "2026-01-05T21:00:00Z", 0);
    hub.reconcile("2026-01-05T22:00:00Z");
    hub.players(3);
    assert_asleep(&hub.reconcile("2026-01-05T22:01:00Z"));
}

#[test]
fn a_limit_of_zero_turns_the_rule_off() {
    let mut hub = Hub::awake_at(
        with_overtime(evening(), "10m", "0s"),
        "2026-01-05T21:00:00Z",
        5,
    );
    assert_asleep(&hub.reconcile("2026-01-05T22:00:00Z"));
}

#[test]
fn durations_are_read_like_kubernetes_durations() {
    let rule = |grace: &str, limit: &str| Rule::of(&with_overtime(evening(), grace, limit));
    assert_eq!(
        rule("90s", "1h30m").unwrap(),
        Rule {
            grace: SignedDuration::from_secs(90),
            limit: SignedDuration::from_mins(90),
        }
    );
    assert_eq!(
        Rule::of(&evening()).unwrap(),
        Rule {
            grace: DEFAULT_GRACE,
            limit: DEFAULT_LIMIT,
        }
    );
    let error = rule("10m", "two hours").unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"spec.overtime.limit is "two hours", not a duration: write it like 90s, 10m or 1h30m"#
    );
    assert_eq!(error.reason(), "InvalidOvertime");
}
