//! What crosses between the two midihub binaries, written once for both: how the operator
//! starts a hub's sidecar (its mode, its environment), how the operator's children are
//! labelled, and who writes which part of a MidiHub's status, under which condition types and
//! reasons, with one way to build a status patch and one way to carry a condition forward.
//!
//! The operator and each hub's sidecar write the same status with server-side apply, each under
//! its own field manager, so that neither removes or overwrites the other's fields:
//!
//! - the operator ([`OPERATOR_FIELD_MANAGER`]): phase, address, node, ports, replicas, the next
//!   transition, `observedGeneration` and the [`AWAKE_CONDITION`], [`READY_CONDITION`] and
//!   [`PUBLIC_ADDRESS_CONDITION`] conditions;
//! - the sidecar ([`SIDECAR_FIELD_MANAGER`]): `participants`, `participantCount`, `latency` and
//!   the [`WIRING_CONDITION`] condition.
//!
//! `conditions` is a list-type map keyed by `type` in the CRD, so each writer owns its own
//! entries of the one list.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Resource;
use kube::api::Patch;

use crate::{MidiHub, MidiHubStatus};

/// Field manager of everything the operator applies (children and status).
pub const OPERATOR_FIELD_MANAGER: &str = "midihub-operator";
/// Field manager of the status fields a hub's sidecar writes.
pub const SIDECAR_FIELD_MANAGER: &str = "midihub-sidecar";

/// The label every child of a hub carries, naming the operator ([`OPERATOR_FIELD_MANAGER`]).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The label selector of everything the operator manages.
pub fn managed_by_selector() -> String {
    format!("{MANAGED_BY_LABEL}={OPERATOR_FIELD_MANAGER}")
}

/// The label on every child of a hub and on the hub's pod; its value is the hub's name.
pub const HUB_LABEL: &str = "midihub.io/hub";

/// The annotation on a MidiHub whose every new value asks its sidecar, once, for the hub-wide
/// panic: on all 16 channels all notes off, pedals up and controllers reset, to every
/// participant of every room (e.g. `kubectl annotate mh berlin midihub.io/panic="$(date +%s)"
/// --overwrite`). The value the sidecar finds when it starts asks for nothing.
pub const PANIC_ANNOTATION: &str = "midihub.io/panic";

/// The label selector of the children and pods of the hub named `hub`.
pub fn hub_selector(hub: &str) -> String {
    format!("{HUB_LABEL}={hub}")
}

/// The sidecar's subcommand for running in a hub pod (the other, `local`, is for a plain host).
pub const SIDECAR_KUBERNETES_MODE: &str = "kubernetes";

/// The environment the operator gives a hub's sidecar.
pub mod env {
    /// The MidiHub the sidecar serves.
    pub const HUB_NAME: &str = "HUB_NAME";
    /// The namespace of the hub and its pod (from the downward API).
    pub const POD_NAMESPACE: &str = "POD_NAMESPACE";
    /// The pod's name (from the downward API): the instance in the sidecar's Events.
    pub const POD_NAME: &str = "POD_NAME";
    /// Path of rtpmidid's control socket, shared between the pod's containers.
    pub const RTPMIDID_CONTROL_SOCKET: &str = "RTPMIDID_CONTROL_SOCKET";
    /// Address of the sidecar's HTTP endpoint.
    pub const SIDECAR_LISTEN: &str = "MIDIHUB_SIDECAR_LISTEN";
}

/// Condition type (operator): whether the hub should run now, and why.
pub const AWAKE_CONDITION: &str = "Awake";
/// Condition type (operator): whether the hub runs and accepts participants, and why not.
pub const READY_CONDITION: &str = "Ready";
/// Condition type (operator): whether the hub's address is meant to be reached from outside the
/// cluster's network, and where it comes from.
pub const PUBLIC_ADDRESS_CONDITION: &str = "PublicAddress";
/// Condition type (sidecar): whether the participants' wiring is known to be right.
pub const WIRING_CONDITION: &str = "Wiring";

/// The reasons written in the status's conditions and in Events, by condition.
pub mod reasons {
    /// Reasons of the [`AWAKE_CONDITION`](super::AWAKE_CONDITION).
    pub mod awake {
        /// No schedule: the hub always runs.
        pub const ALWAYS_ON: &str = "AlwaysOn";
        /// Inside one of the schedule's windows.
        pub const IN_WINDOW: &str = "InWindow";
        /// Outside all of the schedule's windows.
        pub const OUTSIDE_WINDOWS: &str = "OutsideWindows";
        /// `spec.suspend` is set.
        pub const SUSPENDED: &str = "Suspended";
        /// `spec.wakeUntil` is in the future.
        pub const MANUAL_WAKE: &str = "ManualWake";
        /// Past the end of its window, kept awake because a room is occupied (`spec.overtime`).
        pub const OVERTIME: &str = "Overtime";
        /// The schedule names a time zone that does not exist.
        pub const UNKNOWN_TIME_ZONE: &str = "UnknownTimeZone";
        /// A window's start or end is not a 24-hour HH:MM time.
        pub const INVALID_TIME: &str = "InvalidTime";
        /// A window starts and ends at the same time.
        pub const EMPTY_WINDOW: &str = "EmptyWindow";
        /// The schedule cannot be evaluated at this date.
        pub const TIME_OUT_OF_RANGE: &str = "TimeOutOfRange";
        /// `spec.overtime` holds a duration that cannot be read.
        pub const INVALID_OVERTIME: &str = "InvalidOvertime";
        /// The rooms make a configuration rtpmidid would refuse.
        pub const INVALID_CONFIGURATION: &str = "InvalidConfiguration";
    }

    /// Reasons of the [`READY_CONDITION`](super::READY_CONDITION) the operator sets itself (a
    /// failing container's own waiting reason, such as `CrashLoopBackOff`, is passed through as
    /// it is).
    pub mod ready {
        /// The hub's pod runs and is ready.
        pub const HUB_RUNNING: &str = "HubRunning";
        /// The hub sleeps (outside its schedule, or suspended).
        pub const SLEEPING: &str = "Sleeping";
        /// The hub's spec cannot be acted on.
        pub const INVALID_SPEC: &str = "InvalidSpec";
        /// The hub's pod is being created, scheduled or started.
        pub const STARTING: &str = "Starting";
        /// No node is sound-ready in the hub's region.
        pub const NO_ELIGIBLE_NODE: &str = "NoEligibleNode";
        /// Every node that could take the hub has its ports taken.
        pub const PORTS_IN_USE: &str = "PortsInUse";
        /// The scheduler cannot place the hub's pod for another reason.
        pub const UNSCHEDULABLE: &str = "Unschedulable";
        /// The hub's pod ended.
        pub const POD_TERMINATED: &str = "PodTerminated";
        /// The namespace's Pod Security level refuses the hub's pod.
        pub const POD_SECURITY: &str = "PodSecurity";
        /// Kubernetes refuses to create the hub's pod for another reason (a quota, a missing
        /// PriorityClass, an admission webhook, …).
        pub const POD_CREATION_FAILED: &str = "PodCreationFailed";
    }

    /// Reasons of the [`PUBLIC_ADDRESS_CONDITION`](super::PUBLIC_ADDRESS_CONDITION).
    pub mod public_address {
        /// The address is the one the node's annotation names.
        pub const ANNOTATED: &str = "Annotated";
        /// The address is the node's ExternalIP.
        pub const EXTERNAL_IP: &str = "ExternalIP";
        /// The node has neither annotation nor ExternalIP: the address is its InternalIP.
        pub const INTERNAL_IP_ONLY: &str = "InternalIPOnly";
        /// The node's annotation is neither an IP address nor a DNS name.
        pub const INVALID_ANNOTATION: &str = "InvalidAnnotation";
        /// The node reports no usable address at all.
        pub const NO_ADDRESS: &str = "NoAddress";
    }

    /// Reasons of the sidecar's [`WIRING_CONDITION`](super::WIRING_CONDITION).
    pub mod wiring {
        /// Every participant of each room hears every other one.
        pub const WIRED: &str = "Wired";
        /// rtpmidid's control socket does not accept a connection.
        pub const CONTROL_SOCKET_UNREACHABLE: &str = "ControlSocketUnreachable";
        /// rtpmidid did not answer on its control socket in time.
        pub const CONTROL_SOCKET_TIMEOUT: &str = "ControlSocketTimeout";
        /// rtpmidid closed the control socket before answering.
        pub const CONTROL_SOCKET_CLOSED: &str = "ControlSocketClosed";
        /// Reading or writing the control socket failed otherwise.
        pub const CONTROL_SOCKET_ERROR: &str = "ControlSocketError";
        /// rtpmidid's answer is longer than the sidecar reads.
        pub const STATUS_REPLY_TOO_LONG: &str = "StatusReplyTooLong";
        /// rtpmidid answered the status request with an error.
        pub const STATUS_REQUEST_REFUSED: &str = "StatusRequestRefused";
        /// rtpmidid's status is not what the sidecar understands.
        pub const MALFORMED_STATUS: &str = "MalformedStatus";
        /// The ALSA sequencer failed.
        pub const SEQUENCER_ERROR: &str = "SequencerError";
        /// rtpmidid has no client in the ALSA sequencer.
        pub const DAEMON_NOT_IN_SEQUENCER: &str = "DaemonNotInSequencer";
        /// A subscription between participants could not be made or removed.
        pub const SUBSCRIPTION_FAILED: &str = "SubscriptionFailed";
        /// The sidecar stopped (its pod is going away): nobody is wired any more.
        pub const STOPPED: &str = "Stopped";
    }

    /// Reasons of the Events recorded on a hub: the sidecar's when a participant comes or
    /// goes, the operator's when the hub's phase changes (the operator's Warnings take the
    /// reason of the condition that explains them instead).
    pub mod event {
        /// A participant joined a room (sidecar).
        pub const PARTICIPANT_JOINED: &str = "ParticipantJoined";
        /// A participant left a room (sidecar).
        pub const PARTICIPANT_LEFT: &str = "ParticipantLeft";
        /// A participant connected to a room whose allow-list refuses them, or a changed list
        /// now refuses them: they are never wired (sidecar).
        pub const PARTICIPANT_REFUSED: &str = "ParticipantRefused";
        /// The hub went to sleep (operator).
        pub const SLEEPING: &str = "Sleeping";
        /// The hub woke up: its pod is being created (operator).
        pub const WAKING: &str = "Waking";
        /// The hub, already awake, is starting again: its pod was replaced or is recovering
        /// (operator).
        pub const STARTING: &str = "Starting";
        /// The hub runs and accepts participants (operator).
        pub const READY: &str = "Ready";
        /// A window ended while a room was occupied: the hub stays awake (operator).
        pub const OVERTIME_STARTED: &str = "OvertimeStarted";
        /// The hub's overtime is over (operator).
        pub const OVERTIME_ENDED: &str = "OvertimeEnded";
        /// The hub-wide panic (all notes off, pedals up, controllers reset) was sent to every
        /// participant, as a new value of [`super::super::PANIC_ANNOTATION`] asked (sidecar).
        pub const PANIC_SENT: &str = "PanicSent";
    }
}

/// The server-side apply patch that sets a hub's status to `status`: the fields present in it
/// are the writer's, under the field manager of the patch's parameters; fields of that manager
/// absent from it are removed.
pub fn status_patch(status: &MidiHubStatus) -> Patch<serde_json::Value> {
    Patch::Apply(serde_json::json!({
        "apiVersion": MidiHub::api_version(&()),
        "kind": MidiHub::kind(&()),
        "status": status,
    }))
}

/// A condition as it stands `now`, carried forward from `previous` (the status's conditions
/// before this write): its `lastTransitionTime` moves only when its status does.
pub fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    previous: &[Condition],
    now: jiff::Timestamp,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation,
        last_transition_time,
    }
}

/// Whether someone plays in one of the hub's rooms, as its sidecar last reported: a wired
/// participant in any room. Refused participants (`status.refused`) play nowhere: they do
/// not keep a hub awake.
pub fn occupied(status: &MidiHubStatus) -> bool {
    status.participant_count.unwrap_or_default() > 0
        || status
            .participants
            .as_ref()
            .is_some_and(|list| !list.is_empty())
}

/// Whether `status` holds any field the sidecar writes.
pub fn has_sidecar_fields(status: &MidiHubStatus) -> bool {
    status.participants.is_some()
        || status.refused.is_some()
        || status.participant_count.is_some()
        || status.latency.is_some()
        || status
            .conditions
            .iter()
            .any(|condition| condition.type_ == WIRING_CONDITION)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;

    fn condition(type_: &str) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status: "True".to_owned(),
            reason: "Because".to_owned(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn a_conditions_transition_time_moves_only_when_its_status_does() {
        let earlier = jiff::Timestamp::from_second(1_000).unwrap();
        let now = jiff::Timestamp::from_second(2_000).unwrap();
        let previous = [Condition {
            last_transition_time: Time(earlier),
            ..condition(WIRING_CONDITION)
        }];
        let same = super::condition(WIRING_CONDITION, true, "Wired", "", None, &previous, now);
        assert_eq!(same.last_transition_time, Time(earlier));
        assert_eq!(
            (same.status.as_str(), same.reason.as_str()),
            ("True", "Wired")
        );
        let flipped = super::condition(WIRING_CONDITION, false, "Down", "", None, &previous, now);
        assert_eq!(flipped.last_transition_time, Time(now));
        let other = super::condition(READY_CONDITION, true, "Up", "", Some(3), &previous, now);
        assert_eq!(
            other.last_transition_time,
            Time(now),
            "another type starts now"
        );
        assert_eq!(other.observed_generation, Some(3));
    }

    #[test]
    fn a_status_patch_applies_the_status_of_a_midihub() {
        let status = MidiHubStatus {
            participant_count: Some(2),
            ..MidiHubStatus::default()
        };
        let Patch::Apply(patch) = status_patch(&status) else {
            panic!("not an apply patch");
        };
        assert_eq!(
            patch,
            serde_json::json!({
                "apiVersion": "midihub.io/v1alpha1",
                "kind": "MidiHub",
                "status": {"participantCount": 2},
            })
        );
    }

    #[test]
    fn the_managed_by_selector_selects_the_operators_label() {
        assert_eq!(
            managed_by_selector(),
            "app.kubernetes.io/managed-by=midihub-operator"
        );
    }

    #[test]
    fn the_hub_selector_selects_the_hub_label() {
        assert_eq!(hub_selector("berlin"), "midihub.io/hub=berlin");
    }

    #[test]
    fn the_operators_fields_alone_are_no_sidecar_fields() {
        let status = MidiHubStatus {
            address: Some("203.0.113.7".to_owned()),
            conditions: vec![condition(AWAKE_CONDITION), condition(READY_CONDITION)],
            ..MidiHubStatus::default()
        };
        assert!(!has_sidecar_fields(&status));
    }

    #[test]
    fn any_one_sidecar_field_counts() {
        let with = [
            MidiHubStatus {
                participants: Some(vec![]),
                ..MidiHubStatus::default()
            },
            MidiHubStatus {
                refused: Some(vec![]),
                ..MidiHubStatus::default()
            },
            MidiHubStatus {
                participant_count: Some(0),
                ..MidiHubStatus::default()
            },
            MidiHubStatus {
                latency: Some("avg 4.4ms max 6.0ms".to_owned()),
                ..MidiHubStatus::default()
            },
            MidiHubStatus {
                conditions: vec![condition(READY_CONDITION), condition(WIRING_CONDITION)],
                ..MidiHubStatus::default()
            },
        ];
        for status in with {
            assert!(has_sidecar_fields(&status), "{status:?}");
        }
    }

    #[test]
    fn refused_participants_do_not_occupy_a_room() {
        let stranger = crate::RefusedParticipant {
            port: 5004,
            room: "jam".to_owned(),
            name: "Mallory".to_owned(),
            remote_address: "198.51.100.7:5004".to_owned(),
            since: Time(jiff::Timestamp::UNIX_EPOCH),
        };
        let only_refused = MidiHubStatus {
            participants: Some(vec![]),
            participant_count: Some(0),
            refused: Some(vec![stranger]),
            ..MidiHubStatus::default()
        };
        assert!(!occupied(&only_refused));

        let playing = crate::Participant {
            port: 5004,
            room: "jam".to_owned(),
            name: "Alice".to_owned(),
            remote_address: "203.0.113.10:5004".to_owned(),
            joined_at: None,
            latency: None,
        };
        let with_a_player = MidiHubStatus {
            participants: Some(vec![playing]),
            participant_count: Some(1),
            ..only_refused
        };
        assert!(occupied(&with_a_player));
    }
}
