//! Who writes which part of a MidiHub's status. The operator and each hub's sidecar write the
//! same status with server-side apply, each under its own field manager, so that neither
//! removes or overwrites the other's fields:
//!
//! - the operator ([`OPERATOR_FIELD_MANAGER`]): phase, address, node, ports, replicas, the next
//!   transition, `observedGeneration` and the [`AWAKE_CONDITION`], [`READY_CONDITION`] and
//!   [`PUBLIC_ADDRESS_CONDITION`] conditions;
//! - the sidecar ([`SIDECAR_FIELD_MANAGER`]): `participants`, `participantCount`, `latency` and
//!   the [`WIRING_CONDITION`] condition.
//!
//! `conditions` is a list-type map keyed by `type` in the CRD, so each writer owns its own
//! entries of the one list.

use crate::MidiHubStatus;

/// Field manager of everything the operator applies (children and status).
pub const OPERATOR_FIELD_MANAGER: &str = "midihub-operator";
/// Field manager of the status fields a hub's sidecar writes.
pub const SIDECAR_FIELD_MANAGER: &str = "midihub-sidecar";

/// Condition type (operator): whether the hub should run now, and why.
pub const AWAKE_CONDITION: &str = "Awake";
/// Condition type (operator): whether the hub runs and accepts participants, and why not.
pub const READY_CONDITION: &str = "Ready";
/// Condition type (operator): whether the hub's address is meant to be reached from outside the
/// cluster's network, and where it comes from.
pub const PUBLIC_ADDRESS_CONDITION: &str = "PublicAddress";
/// Condition type (sidecar): whether the participants' wiring is known to be right.
pub const WIRING_CONDITION: &str = "Wiring";

/// Whether `status` holds any field the sidecar writes.
pub fn has_sidecar_fields(status: &MidiHubStatus) -> bool {
    status.participants.is_some()
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
}
