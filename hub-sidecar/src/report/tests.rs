use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use midihub_api::Latency;

use super::*;

fn participant(name: &str, average_ms: f64) -> Participant {
    Participant {
        port: 5004,
        room: "room".into(),
        name: name.into(),
        remote_address: "203.0.113.10:7000".into(),
        joined_at: None,
        latency: Some(Latency {
            last_ms: average_ms,
            average_ms,
            jitter_ms: 0.5,
        }),
    }
}

fn report(participants: Vec<Participant>) -> Report {
    let count = participants.len();
    Report {
        participants,
        refused: vec![],
        wiring: WiringState::wired(count, 0),
    }
}

fn throttle_after(first: Report, at: Instant) -> Throttle {
    let mut throttle = Throttle::new(Duration::from_secs(1), Duration::from_secs(10));
    throttle.published(first, at);
    throttle
}

#[test]
fn the_first_report_is_published_at_once() {
    let throttle = Throttle::new(Duration::from_secs(1), Duration::from_secs(10));
    assert_eq!(throttle.due(&report(vec![]), Instant::now()), Due::Now);
}

#[test]
fn an_unchanged_report_is_never_published_again() {
    let start = Instant::now();
    let throttle = throttle_after(report(vec![participant("a", 20.0)]), start);
    let later = start + Duration::from_secs(3600);
    assert_eq!(
        throttle.due(&report(vec![participant("a", 20.0)]), later),
        Due::Never
    );
    // Sub-millisecond wobble is no change either.
    assert_eq!(
        throttle.due(&report(vec![participant("a", 20.3)]), later),
        Due::Never
    );
}

#[test]
fn a_join_is_published_at_most_once_a_second() {
    let start = Instant::now();
    let throttle = throttle_after(report(vec![participant("a", 20.0)]), start);
    let two = report(vec![participant("a", 20.0), participant("b", 30.0)]);
    let soon = start + Duration::from_millis(200);
    assert_eq!(
        throttle.due(&two, soon),
        Due::At(start + Duration::from_secs(1))
    );
    assert_eq!(throttle.due(&two, start + Duration::from_secs(1)), Due::Now);
}

#[test]
fn latency_moves_are_published_at_most_every_latency_interval() {
    let start = Instant::now();
    let throttle = throttle_after(report(vec![participant("a", 20.0)]), start);
    let slower = report(vec![participant("a", 35.0)]);
    assert_eq!(
        throttle.due(&slower, start + Duration::from_secs(2)),
        Due::At(start + Duration::from_secs(10))
    );
    assert_eq!(
        throttle.due(&slower, start + Duration::from_secs(10)),
        Due::Now
    );
}

#[test]
fn a_change_of_wiring_state_is_membership_news() {
    let start = Instant::now();
    let throttle = throttle_after(report(vec![]), start);
    let broken = Report {
        participants: vec![],
        refused: Vec::new(),
        wiring: WiringState::unknown("ControlSocketUnreachable", "no socket"),
    };
    assert_eq!(
        throttle.due(&broken, start + Duration::from_secs(1)),
        Due::Now
    );
}

#[test]
fn the_latency_summary_averages_over_measured_participants() {
    let mut unmeasured = participant("c", 0.0);
    unmeasured.latency = None;
    let summary = report(vec![
        participant("a", 20.0),
        participant("b", 41.0),
        unmeasured,
    ]);
    assert_eq!(
        summary.latency_summary().as_deref(),
        Some("avg 30.5ms max 41.0ms")
    );
    assert_eq!(summary.participant_count(), 3);
    assert_eq!(report(vec![]).latency_summary(), None);
}

#[test]
fn the_hub_status_lists_participants_even_when_none_and_latency_only_when_known() {
    let now = jiff::Timestamp::from_second(1_000).unwrap();
    let empty = report(vec![]).hub_status(&[], now);
    assert_eq!(empty.participants, Some(vec![]));
    assert_eq!(empty.participant_count, Some(0));
    assert_eq!(empty.latency, None);

    let status = report(vec![participant("Alice", 20.0)]).hub_status(&[], now);
    assert_eq!(status.participant_count, Some(1));
    assert_eq!(status.latency.as_deref(), Some("avg 20.0ms max 20.0ms"));
    assert_eq!(
        status.phase, None,
        "the operator's fields are not the sidecar's"
    );
}

#[test]
fn the_wiring_condition_keeps_its_transition_time_until_its_status_changes() {
    let earlier = jiff::Timestamp::from_second(1_000).unwrap();
    let now = jiff::Timestamp::from_second(2_000).unwrap();
    let first = report(vec![]).hub_status(&[], earlier);
    let [wiring] = first.conditions.as_slice() else {
        panic!("one condition: {:?}", first.conditions);
    };
    assert_eq!(
        (
            wiring.type_.as_str(),
            wiring.status.as_str(),
            wiring.reason.as_str()
        ),
        ("Wiring", "True", "Wired")
    );

    let still = report(vec![participant("Alice", 20.0)]).hub_status(&first.conditions, now);
    assert_eq!(still.conditions[0].last_transition_time.0, earlier);

    let broken = Report {
        participants: vec![],
        refused: Vec::new(),
        wiring: WiringState::unknown("ControlSocketTimeout", "no answer"),
    }
    .hub_status(&first.conditions, now);
    assert_eq!(broken.conditions[0].status, "False");
    assert_eq!(broken.conditions[0].last_transition_time.0, now);
}

fn stranger() -> RefusedParticipant {
    RefusedParticipant {
        port: 5004,
        room: "room".into(),
        name: "Mallory".into(),
        remote_address: "198.51.100.7:7000".into(),
        since: Time(jiff::Timestamp::from_second(1_000).unwrap()),
    }
}

#[test]
fn a_refusal_is_membership_news_but_not_a_participant() {
    let start = Instant::now();
    let throttle = throttle_after(report(vec![participant("a", 20.0)]), start);
    let with_stranger = Report {
        refused: vec![stranger()],
        ..report(vec![participant("a", 20.0)])
    };
    assert_eq!(
        throttle.due(&with_stranger, start + Duration::from_secs(1)),
        Due::Now
    );
    assert_eq!(with_stranger.participant_count(), 1);
}

#[test]
fn the_hub_status_lists_the_refused_apart_even_when_none() {
    let now = jiff::Timestamp::from_second(2_000).unwrap();
    assert_eq!(report(vec![]).hub_status(&[], now).refused, Some(vec![]));

    let status = Report {
        refused: vec![stranger()],
        ..report(vec![participant("Alice", 20.0)])
    }
    .hub_status(&[], now);
    assert_eq!(status.refused, Some(vec![stranger()]));
    assert_eq!(status.participant_count, Some(1));
    assert!(
        midihub_api::contract::occupied(&status),
        "Alice plays; Mallory alone would not"
    );
}
