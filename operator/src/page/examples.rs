//! Hubs for the page's tests: a listed hub with participants in two rooms, as the API server
//! would return it.

use jiff::Timestamp;
use midihub_api::{Latency, MidiHub, Participant};
use serde_json::json;

/// When the examples happen: Wednesday 2 December 2026, 18:00 UTC.
pub fn now() -> Timestamp {
    "2026-12-02T18:00:00Z".parse().unwrap()
}

/// A participant of room `port` named `name`, with a last round trip of `last_ms`.
pub fn participant(port: i32, name: &str, remote_address: &str, last_ms: f64) -> Participant {
    Participant {
        port,
        room: format!("room-{port}"),
        name: name.to_owned(),
        remote_address: remote_address.to_owned(),
        joined_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-12-02T17:30:00Z".parse().unwrap(),
        )),
        latency: Some(Latency {
            last_ms,
            average_ms: last_ms + 1.0,
            jitter_ms: 0.5,
        }),
    }
}

/// Hub `berlin` in namespace `music`, listed unless told otherwise, Ready at 203.0.113.10 with
/// rooms 5004 ("Main room") and 5006 (default name), scheduled in Europe/Berlin, with
/// `participants`.
pub fn hub(listed: bool, participants: &[Participant]) -> MidiHub {
    serde_json::from_value(json!({
        "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
        "metadata": {"name": "berlin", "namespace": "music"},
        "spec": {
            "listed": listed,
            "ports": [{"port": 5004, "name": "Main room"}, {"port": 5006}],
            "schedule": {"timeZone": "Europe/Berlin",
                         "windows": [{"days": ["Wed"], "start": "18:00", "end": "23:00"}]},
        },
        "status": {
            "phase": "Ready",
            "address": "203.0.113.10",
            "nextTransition": "sleep Wed 23:00 Europe/Berlin",
            "nextTransitionTime": "2026-12-02T22:00:00Z",
            "participants": participants,
        },
    }))
    .unwrap()
}

/// The example hub renamed `name`.
pub fn named(mut hub: MidiHub, name: &str) -> MidiHub {
    hub.metadata.name = Some(name.to_owned());
    hub
}
