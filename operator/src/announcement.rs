//! Which Event a change of a hub's status deserves. Pure: the controller publishes what this
//! returns.
//!
//! An Event is published when the hub's phase, or the reason it is not ready, changed: once per
//! change, not once per reconcile. kube's `Recorder` folds an Event into an earlier one with the
//! same type, reason, action and hub (a series with a count, keeping the first note) while the
//! earlier one is less than six minutes old. Every reason here names one situation, so such a
//! series is a repeat of that situation (a crash-looping container, a hub that keeps moving
//! between Starting and Degraded), which is worth a count rather than a new Event each time;
//! different reasons are always separate Events. The price: a repeat within six minutes whose
//! details differ (a Ready hub that moved to another node's address) shows the first note with
//! the count; the status always has the current details.

use kube::runtime::events::{Event, EventType};
use midihub_api::{MidiHubStatus, Phase};

use crate::status::{self, AWAKE, PUBLIC_ADDRESS, READY};

/// Event reasons the operator uses besides the `Ready` and `Awake` conditions' own reasons.
pub mod reasons {
    /// The hub went to sleep.
    pub const SLEEPING: &str = "Sleeping";
    /// The hub woke up: its pod is being created.
    pub const WAKING: &str = "Waking";
    /// The hub, already awake, is starting again (its pod was replaced or is recovering).
    pub const STARTING: &str = "Starting";
    /// The hub runs and accepts participants.
    pub const READY: &str = "Ready";
}

/// The action of every Event the operator publishes.
const ACTION: &str = "Reconcile";

/// The Event announcing the change from `previous` to `current`, if there is one to announce.
pub fn announcement(previous: Option<&MidiHubStatus>, current: &MidiHubStatus) -> Option<Event> {
    let phase_before = previous.and_then(|status| status.phase);
    let before = (phase_before, status::condition_reason(previous, READY));
    let after = (
        current.phase,
        status::condition_reason(Some(current), READY),
    );
    if before == after {
        return None;
    }
    let phase = current.phase?;
    let ready = current.conditions.iter().find(|c| c.type_ == READY);
    let awake = current.conditions.iter().find(|c| c.type_ == AWAKE);
    let was_awake =
        phase_before.is_some_and(|phase| !matches!(phase, Phase::Sleeping | Phase::Invalid));
    let (type_, reason, note) = match phase {
        Phase::Sleeping => (
            EventType::Normal,
            reasons::SLEEPING.to_string(),
            awake.map(|c| c.message.clone()),
        ),
        // A pod that is replaced (a lost node, a changed configuration) or recovering is not
        // a hub waking up.
        Phase::Starting if was_awake => (
            EventType::Normal,
            reasons::STARTING.to_string(),
            ready.map(|c| c.message.clone()),
        ),
        Phase::Starting => (
            EventType::Normal,
            reasons::WAKING.to_string(),
            awake.map(|c| c.message.clone()),
        ),
        Phase::Ready => {
            let mut note = format!(
                "the hub listens on {} ports {}",
                current.address.as_deref().unwrap_or("(unknown address)"),
                current.ports.as_deref().unwrap_or_default()
            );
            if let Some(address) = current
                .conditions
                .iter()
                .find(|c| c.type_ == PUBLIC_ADDRESS && c.status != "True")
            {
                note.push_str(&format!("; but {}", address.message));
            }
            (EventType::Normal, reasons::READY.to_string(), Some(note))
        }
        Phase::Invalid => (
            EventType::Warning,
            awake.map_or_else(|| phase.as_str().to_string(), |c| c.reason.clone()),
            awake.map(|c| c.message.clone()),
        ),
        Phase::Degraded | Phase::Unschedulable | Phase::Blocked => (
            EventType::Warning,
            ready.map_or_else(|| phase.as_str().to_string(), |c| c.reason.clone()),
            ready.map(|c| c.message.clone()),
        ),
    };
    Some(Event {
        type_,
        reason,
        note,
        action: ACTION.to_string(),
        secondary: None,
    })
}

#[cfg(test)]
mod tests {
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
                condition(AWAKE, "AlwaysOn", "awake: no schedule"),
                condition(READY, ready_reason, ready_message),
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
        assert!(announcement(Some(&starting), &later).is_none());
    }

    #[test]
    fn a_hub_that_wakes_announces_waking_with_the_reason_it_is_awake() {
        let sleeping = status(Phase::Sleeping, "Sleeping", "the hub sleeps");
        let starting = status(Phase::Starting, "Starting", "the hub pod is being created");
        let event = announcement(Some(&sleeping), &starting).unwrap();
        assert_eq!(
            (event.type_, event.reason.as_str()),
            (EventType::Normal, "Waking")
        );
        assert_eq!(event.note.as_deref(), Some("awake: no schedule"));
        assert_eq!(announcement(None, &starting).unwrap().reason, "Waking");
    }

    #[test]
    fn a_hub_that_was_awake_announces_starting_not_waking() {
        let blocked = status(Phase::Blocked, "PodSecurity", "label the namespace");
        let starting = status(
            Phase::Starting,
            "Starting",
            "the hub pod waits for the scheduler",
        );
        let event = announcement(Some(&blocked), &starting).unwrap();
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
            PUBLIC_ADDRESS,
            "InternalIPOnly",
            "node node-a has no ExternalIP: the hub's address 203.0.113.7 is its InternalIP",
        ));
        let note = announcement(Some(&starting), &ready).unwrap().note.unwrap();
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
        let event = announcement(Some(&starting), &blocked).unwrap();
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
            .map(|pair| announcement(Some(&pair[0]), &pair[1]).unwrap())
            .collect();
        let keys: Vec<_> = events.iter().map(series_key).collect();
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
    }
}
