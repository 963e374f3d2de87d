//! The sidecar's publishing to a MidiHub, against the FAKE API server (not Kubernetes): what
//! reaches the hub's status and Events, and what a restarted sidecar takes over.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hub_sidecar::publish::KubernetesSink;
use hub_sidecar::report::{Report, WiringState};
use hub_sidecar::roster::{Changes, Published};
use midihub_api::contract::{SIDECAR_FIELD_MANAGER, WIRING_CONDITION};
use midihub_api::{Latency, Participant, RefusedParticipant};
use midihub_tests::conditions::json_condition;
use midihub_tests::fake_apiserver::FakeApiServer;
use serde_json::json;

const HUB: &str = "/apis/midihub.io/v1alpha1/namespaces/default/midihubs/jam";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn participant(name: &str, average_ms: f64) -> Participant {
    Participant {
        port: 5004,
        room: "jam-a".into(),
        name: name.into(),
        remote_address: "203.0.113.10:7000".into(),
        joined_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-11-25T19:00:00Z".parse().unwrap(),
        )),
        latency: Some(Latency {
            last_ms: average_ms,
            average_ms,
            jitter_ms: 0.5,
        }),
    }
}

/// Connected from outside the room's allow-list.
fn stranger() -> RefusedParticipant {
    RefusedParticipant {
        port: 5004,
        room: "jam-a".into(),
        name: "Mallory".into(),
        remote_address: "198.51.100.7:7000".into(),
        since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-11-25T19:00:00Z".parse().unwrap(),
        ),
    }
}

/// The fake API server holding hub `jam` with `status`.
async fn fake_with_hub(status: Option<serde_json::Value>) -> FakeApiServer {
    let fake = FakeApiServer::start().await;
    let mut hub = json!({"apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
                         "metadata": {"name": "jam", "namespace": "default"},
                         "spec": {"ports": [{"port": 5004}]}});
    if let Some(status) = status {
        hub["status"] = status;
    }
    fake.insert("/apis/midihub.io/v1alpha1/namespaces/default/midihubs", hub);
    fake
}

#[tokio::test]
async fn participants_latency_and_wiring_reach_the_status_under_the_sidecars_field_manager() {
    let fake = fake_with_hub(Some(json!({"phase": "Ready"}))).await;
    let (mut sink, previous) =
        KubernetesSink::connect(fake.client(), "default", "jam", Some("pod-1".into()))
            .await
            .unwrap();
    assert_eq!(previous, Published::default());
    let report = Report {
        participants: vec![participant("Alice", 20.0), participant("Bob", 41.0)],
        refused: vec![stranger()],
        wiring: WiringState::wired(2, 2),
    };
    sink.publish(&report).await.unwrap();

    let hub = fake.get(HUB).unwrap();
    let status = &hub["status"];
    assert_eq!(status["participantCount"], 2, "the refused are not counted");
    assert_eq!(status["refused"][0]["name"], "Mallory");
    assert_eq!(status["refused"][0]["remoteAddress"], "198.51.100.7:7000");
    assert_eq!(status["latency"], "avg 30.5ms max 41.0ms");
    assert_eq!(status["participants"][1]["name"], "Bob");
    assert_eq!(
        status["phase"], "Ready",
        "the operator's fields are left alone"
    );
    let wiring = json_condition(&hub, WIRING_CONDITION);
    assert_eq!(
        (wiring["status"].as_str(), wiring["reason"].as_str()),
        (Some("True"), Some("Wired"))
    );
    let write = fake.writes().pop().unwrap();
    assert!(write.path.ends_with("/midihubs/jam/status"), "{write:?}");
    assert_eq!(
        write.query_param("fieldManager").as_deref(),
        Some(SIDECAR_FIELD_MANAGER)
    );

    // Nobody left: the summary goes away rather than going stale.
    let empty = Report {
        participants: vec![],
        refused: vec![],
        wiring: WiringState::wired(0, 0),
    };
    sink.publish(&empty).await.unwrap();
    let status = &fake.get(HUB).unwrap()["status"];
    assert_eq!(status["participantCount"], 0);
    assert!(status.get("latency").is_none(), "{status}");
}

/// The status patch, with the Wiring condition's lastTransitionTime taken out (it is the
/// time of the write) and returned on its own.
fn status_patch_of(
    write: &midihub_tests::fake_apiserver::RecordedRequest,
) -> (serde_json::Value, serde_json::Value) {
    let mut body = write.body.clone().unwrap();
    let time = body["status"]["conditions"][0]
        .as_object_mut()
        .unwrap()
        .remove("lastTransitionTime")
        .unwrap();
    (body, time)
}

#[tokio::test]
async fn the_status_patch_holds_the_sidecars_fields_and_nothing_else() {
    let fake = fake_with_hub(None).await;
    let (mut sink, _) = KubernetesSink::connect(fake.client(), "default", "jam", None)
        .await
        .unwrap();
    let report = Report {
        participants: vec![participant("Alice", 20.0)],
        refused: vec![],
        wiring: WiringState::wired(1, 0),
    };
    sink.publish(&report).await.unwrap();
    let (patch, _) = status_patch_of(&fake.writes().pop().unwrap());
    assert_eq!(
        patch,
        json!({
            "apiVersion": "midihub.io/v1alpha1",
            "kind": "MidiHub",
            "status": {
                "participants": [serde_json::to_value(participant("Alice", 20.0)).unwrap()],
                "refused": [],
                "participantCount": 1,
                "latency": "avg 20.0ms max 20.0ms",
                "conditions": [{
                    "type": "Wiring",
                    "status": "True",
                    "reason": "Wired",
                    "message": "1 participant(s) connected through 0 subscription(s)",
                }],
            },
        })
    );

    // Nobody there, nothing known: the list is written empty, the latency not at all.
    let nobody = Report {
        participants: vec![],
        refused: vec![],
        wiring: WiringState::unknown("ControlSocketTimeout", "no answer"),
    };
    sink.publish(&nobody).await.unwrap();
    let (patch, _) = status_patch_of(&fake.writes().pop().unwrap());
    assert_eq!(
        patch["status"],
        json!({
            "participants": [],
            "refused": [],
            "participantCount": 0,
            "conditions": [{
                "type": "Wiring",
                "status": "False",
                "reason": "ControlSocketTimeout",
                "message": "no answer",
            }],
        })
    );
}

#[tokio::test]
async fn joins_leaves_and_refusals_become_events_on_the_hub() {
    let fake = fake_with_hub(None).await;
    let (mut sink, _) = KubernetesSink::connect(fake.client(), "default", "jam", None)
        .await
        .unwrap();
    let changes = Changes {
        joined: vec![participant("Alice", 20.0)],
        left: vec![participant("Bob", 30.0)],
        refused: vec![stranger()],
    };
    sink.announce(&changes).await.unwrap();
    let events = fake.list(EVENTS);
    let mut reasons: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["reason"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            ("ParticipantJoined", "Normal"),
            ("ParticipantLeft", "Normal"),
            ("ParticipantRefused", "Warning")
        ]
    );
    let joined = events
        .iter()
        .find(|e| e["reason"] == "ParticipantJoined")
        .unwrap();
    assert_eq!(joined["regarding"]["name"], "jam");
    assert!(
        joined["note"]
            .as_str()
            .unwrap()
            .contains("Alice (203.0.113.10:7000) joined room jam-a")
    );
    let refused = events
        .iter()
        .find(|e| e["reason"] == "ParticipantRefused")
        .unwrap();
    assert_eq!(refused["regarding"]["name"], "jam");
    assert!(
        refused["note"]
            .as_str()
            .unwrap()
            .contains("Mallory (198.51.100.7:7000) is refused by the allow-list of room jam-a")
    );
}

/// On a real API server three joins within minutes once became one `ParticipantJoined` Event
/// (a series of 3) naming the first participant only.
#[tokio::test]
async fn each_join_and_leave_is_an_event_of_its_own_naming_its_participant() {
    let fake = fake_with_hub(None).await;
    let (mut sink, _) = KubernetesSink::connect(fake.client(), "default", "jam", None)
        .await
        .unwrap();
    let joined = |name: &str| Changes {
        joined: vec![participant(name, 20.0)],
        left: vec![],
        refused: vec![],
    };
    // One look after another, as the sidecar announces them.
    for changes in [
        joined("Alice"),
        joined("Bob"),
        joined("Carol"),
        Changes {
            joined: vec![],
            left: vec![participant("Alice", 20.0)],
            refused: vec![],
        },
        joined("Alice"),
    ] {
        sink.announce(&changes).await.unwrap();
    }

    let events = fake.list(EVENTS);
    let mut notes: Vec<(&str, &str)> = events
        .iter()
        .map(|event| {
            (
                event["reason"].as_str().unwrap(),
                event["note"].as_str().unwrap(),
            )
        })
        .collect();
    notes.sort_unstable();
    assert_eq!(
        notes,
        [
            (
                "ParticipantJoined",
                "Alice (203.0.113.10:7000) joined room jam-a (port 5004)"
            ),
            (
                "ParticipantJoined",
                "Alice (203.0.113.10:7000) joined room jam-a (port 5004)"
            ),
            (
                "ParticipantJoined",
                "Bob (203.0.113.10:7000) joined room jam-a (port 5004)"
            ),
            (
                "ParticipantJoined",
                "Carol (203.0.113.10:7000) joined room jam-a (port 5004)"
            ),
            (
                "ParticipantLeft",
                "Alice (203.0.113.10:7000) left room jam-a (port 5004)"
            ),
        ]
    );
    assert!(
        events.iter().all(|event| event.get("series").is_none()),
        "no join or leave is folded into a series: {events:#?}"
    );
}

#[tokio::test]
async fn a_restarted_sidecar_takes_over_the_published_participants_and_refusals() {
    let mallory = stranger();
    let fake = fake_with_hub(Some(json!({
        "participants": [serde_json::to_value(participant("Alice", 20.0)).unwrap()],
        "participantCount": 1,
        "refused": [serde_json::to_value(&mallory).unwrap()],
    })))
    .await;
    let (_, previous) = KubernetesSink::connect(fake.client(), "default", "jam", None)
        .await
        .unwrap();
    assert_eq!(
        previous,
        Published {
            participants: vec![participant("Alice", 20.0)],
            refused: vec![mallory],
        }
    );
}

#[tokio::test]
async fn a_restarted_sidecar_keeps_the_wiring_conditions_transition_time() {
    let since = "2026-11-25T18:00:00Z";
    let fake = fake_with_hub(Some(json!({
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "HubRunning", "message": "",
             "lastTransitionTime": "2026-11-25T17:00:00Z"},
            {"type": WIRING_CONDITION, "status": "True", "reason": "Wired",
             "message": "2 participant(s) connected through 2 subscription(s)",
             "lastTransitionTime": since},
        ],
    })))
    .await;
    let (mut sink, _) = KubernetesSink::connect(fake.client(), "default", "jam", None)
        .await
        .unwrap();
    let wired = Report {
        participants: vec![participant("Alice", 20.0)],
        refused: vec![],
        wiring: WiringState::wired(1, 0),
    };
    sink.publish(&wired).await.unwrap();
    let (_, time) = status_patch_of(&fake.writes().pop().unwrap());
    assert_eq!(time, since, "still wired: the condition has not changed");

    let broken = Report {
        participants: vec![],
        refused: vec![],
        wiring: WiringState::unknown("ControlSocketTimeout", "no answer"),
    };
    sink.publish(&broken).await.unwrap();
    let (_, time) = status_patch_of(&fake.writes().pop().unwrap());
    assert_ne!(time, since, "the wiring's status changed");
}

#[tokio::test]
async fn a_missing_hub_is_a_clear_error() {
    let fake = FakeApiServer::start().await;
    let Err(error) = KubernetesSink::connect(fake.client(), "default", "nosuch", None).await else {
        panic!("connecting to a hub that does not exist must fail");
    };
    assert!(
        matches!(error, kube::Error::Api(ref status) if status.code == 404),
        "{error}"
    );
}
