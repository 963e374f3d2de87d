use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::*;

fn condition(type_: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: "False".to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: None,
        last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
    }
}

fn status(phase: Phase, ready_reason: &str, ready_message: &str) -> MidiHubStatus {
    MidiHubStatus {
        phase: Some(phase),
        conditions: vec![
            condition(AWAKE_CONDITION, "AlwaysOn", "awake: no schedule"),
            condition(READY_CONDITION, ready_reason, ready_message),
        ],
        address: Some("203.0.113.7".to_owned()),
        ports: Some("5004".to_owned()),
        ..MidiHubStatus::default()
    }
}

/// What kube's Recorder folds Events by (besides the hub and the reporter, which are the
/// same for all Events of one hub): the note is not part of it.
fn series_key(event: &Event) -> (EventType, String, String) {
    (event.type_, event.reason.clone(), event.action.clone())
}

#[test]
fn nothing_is_announced_when_phase_and_reason_stay() {
    let starting = status(Phase::Starting, "Starting", "the hub pod is being created");
    let later = status(
        Phase::Starting,
        "Starting",
        "the hub pod waits for the scheduler",
    );
    assert!(event_for(Some(&starting), &later).is_none());
}

#[test]
fn a_hub_that_wakes_announces_waking_with_the_reason_it_is_awake() {
    let sleeping = status(Phase::Sleeping, "Sleeping", "the hub sleeps");
    let starting = status(Phase::Starting, "Starting", "the hub pod is being created");
    let event = event_for(Some(&sleeping), &starting).unwrap();
    assert_eq!(
        (event.type_, event.reason.as_str()),
        (EventType::Normal, "Waking")
    );
    assert_eq!(event.note.as_deref(), Some("awake: no schedule"));
    assert_eq!(event_for(None, &starting).unwrap().reason, "Waking");
}

#[test]
fn a_hub_that_was_awake_announces_starting_not_waking() {
    let blocked = status(Phase::Blocked, "PodSecurity", "label the namespace");
    let starting = status(
        Phase::Starting,
        "Starting",
        "the hub pod waits for the scheduler",
    );
    let event = event_for(Some(&blocked), &starting).unwrap();
    assert_eq!(event.reason, "Starting");
    assert_eq!(
        event.note.as_deref(),
        Some("the hub pod waits for the scheduler")
    );
}

#[test]
fn a_ready_hub_at_an_address_outside_participants_may_not_reach_says_so() {
    let starting = status(Phase::Starting, "Starting", "the hub pod is being created");
    let mut ready = status(Phase::Ready, "HubRunning", "running");
    ready.conditions.push(condition(
        PUBLIC_ADDRESS_CONDITION,
        "InternalIPOnly",
        "node node-a has no ExternalIP: the hub's address 203.0.113.7 is its InternalIP",
    ));
    let note = event_for(Some(&starting), &ready).unwrap().note.unwrap();
    assert!(
        note.starts_with(
            "the hub listens on 203.0.113.7 ports 5004; but node node-a has no ExternalIP"
        ),
        "{note}"
    );
}

#[test]
fn a_refused_pod_is_a_warning_that_says_what_to_do() {
    let starting = status(Phase::Starting, "Starting", "the hub pod is being created");
    let blocked = status(
        Phase::Blocked,
        "PodSecurity",
        "label the namespace pod-security.kubernetes.io/enforce=privileged",
    );
    let event = event_for(Some(&starting), &blocked).unwrap();
    assert_eq!(
        (event.type_, event.reason.as_str()),
        (EventType::Warning, "PodSecurity")
    );
    assert!(event.note.unwrap().contains("enforce=privileged"));
}

#[test]
fn different_situations_are_never_folded_into_one_series() {
    let sequence = [
        status(Phase::Sleeping, "Sleeping", "the hub sleeps"),
        status(Phase::Starting, "Starting", "the hub pod is being created"),
        status(Phase::Blocked, "PodSecurity", "label the namespace"),
        status(Phase::Blocked, "PodCreationFailed", "exceeded quota"),
        status(
            Phase::Starting,
            "Starting",
            "the hub pod waits for the scheduler",
        ),
        status(Phase::Unschedulable, "PortsInUse", "no free ports"),
        status(Phase::Ready, "HubRunning", "running"),
        status(Phase::Degraded, "CrashLoopBackOff", "rtpmidid restarts"),
    ];
    let events: Vec<Event> = sequence
        .windows(2)
        .map(|pair| event_for(Some(&pair[0]), &pair[1]).unwrap())
        .collect();
    let keys: Vec<_> = events.iter().map(series_key).collect();
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "{keys:?}");
}

fn in_overtime(empty_since: Option<&str>) -> MidiHubStatus {
    let mut awake = condition(
        AWAKE_CONDITION,
        "Overtime",
        "awake past the end of its window",
    );
    awake.status = "True".to_owned();
    MidiHubStatus {
        overtime: Some(midihub_api::OvertimeStatus {
            window_ended: Time("2026-01-05T22:00:00Z".parse().unwrap()),
            empty_since: empty_since.map(|at| Time(at.parse().unwrap())),
        }),
        conditions: vec![awake],
        ..status(Phase::Ready, "HubRunning", "running")
    }
}

fn asleep_because(reason: &str) -> MidiHubStatus {
    MidiHubStatus {
        conditions: vec![condition(AWAKE_CONDITION, reason, "outside the schedule")],
        ..status(Phase::Sleeping, "Sleeping", "the hub sleeps")
    }
}

#[test]
fn overtime_is_announced_when_it_starts_with_the_awake_message() {
    let ready = status(Phase::Ready, "HubRunning", "running");
    let event = overtime_event(Some(&ready), &in_overtime(None)).unwrap();
    assert_eq!(
        (event.type_, event.reason.as_str(), event.note.as_deref()),
        (
            EventType::Normal,
            "OvertimeStarted",
            Some("awake past the end of its window")
        )
    );
    assert!(overtime_event(Some(&in_overtime(None)), &in_overtime(None)).is_none());
    assert!(overtime_event(Some(&ready), &ready).is_none());
}

#[test]
fn the_end_of_overtime_says_why() {
    let ended = |previous: &MidiHubStatus, current: &MidiHubStatus| {
        let event = overtime_event(Some(previous), current).unwrap();
        assert_eq!(event.reason, "OvertimeEnded");
        event.note.unwrap()
    };
    assert_eq!(
        ended(
            &in_overtime(Some("2026-01-05T22:20:00Z")),
            &asleep_because("OutsideWindows")
        ),
        "the rooms have been empty since 22:20:00 UTC: the hub sleeps"
    );
    assert_eq!(
        ended(&in_overtime(None), &asleep_because("OutsideWindows")),
        "the limit after the window's end (22:00:00 UTC) is reached with participants still connected: the hub sleeps"
    );
    assert_eq!(
        ended(&in_overtime(None), &asleep_because("Suspended")),
        "suspended by spec.suspend: the hub sleeps at once"
    );
    let mut in_window = status(Phase::Ready, "HubRunning", "running");
    in_window.conditions[0] = Condition {
        status: "True".to_owned(),
        ..condition(AWAKE_CONDITION, "InWindow", "inside the schedule")
    };
    assert_eq!(
        ended(&in_overtime(None), &in_window),
        "the hub stays awake: inside the schedule"
    );
}
