//! The whole chain, from RTP-MIDI participants to `kubectl get midihubs`: a MidiHub on the
//! local control plane (the real API server, with the operator running as a process on the
//! host), and inside shared/alsa-vm (a real kernel sequencer) the real rtpmidid with the
//! configuration the operator put in the hub's ConfigMap and the real hub-sidecar in
//! `kubernetes` mode with the container's args and env from the hub's Deployment and a token of
//! the hub's ServiceAccount, talking to the host's API server through the VM's `--host-port`.
//! Test participants join two rooms; the hub's status, its Events and `kubectl get midihubs`
//! show them, and show them gone after they leave.
//!
//! Run by the control-plane tier (`./scripts/test`) inside the VM with `MIDIHUB_CONTROL_PLANE`
//! and `RTPMIDID_BIN`; prints `SKIP` and returns without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use midihub_api::{MidiHub, MidiHubStatus};
use midihub_tests::cluster::{delete_namespace, describe, ensure_namespace, hub, wait_for_status};
use midihub_tests::conditions::has_condition;
use midihub_tests::control_plane::Plane;
use midihub_tests::real_alsa::{Rtpmidid, join, rtpmidid_or_skip, scratch_dir};
use midihub_tests::sidecar::SidecarProcess;
use serde_json::json;

const NAMESPACE: &str = "chain";
const HUB: &str = "chain";
const ROOMS: [u16; 2] = [5304, 5306];
const SEEN_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn participants_of_two_rooms_show_in_kubectl_get_midihubs_and_leave_it_empty() {
    let Some(plane) = Plane::from_env() else {
        println!(
            "SKIP full_chain: MIDIHUB_CONTROL_PLANE is not set (the control-plane tier sets it)"
        );
        return;
    };
    let Some(rtpmidid_binary) = rtpmidid_or_skip("full_chain") else {
        return;
    };
    let admin = plane.admin().await.expect("an admin client");
    ensure_namespace(&admin, NAMESPACE, json!({})).await;
    let hubs: Api<MidiHub> = Api::namespaced(admin.clone(), NAMESPACE);
    let spec =
        json!({ "ports": [ { "port": ROOMS[0], "name": "chain-a" }, { "port": ROOMS[1] } ] });
    hubs.create(&PostParams::default(), &hub(NAMESPACE, HUB, spec))
        .await
        .expect("create the MidiHub");
    // The operator on the host makes the children; the simulated pod makes the hub Ready.
    let ready = wait_for_status(&hubs, HUB, "Ready", SEEN_WITHIN, |s| {
        s.phase == Some(midihub_api::Phase::Ready)
    })
    .await;
    let node = ready.node.clone().expect("a Ready hub names its node");

    let dir = scratch_dir("full-chain");
    // rtpmidid with the configuration from the hub's ConfigMap, as the pod mounts it.
    let config_maps: Api<ConfigMap> = Api::namespaced(admin.clone(), NAMESPACE);
    let config_map = config_maps.get(&format!("midihub-{HUB}")).await.unwrap();
    let ini_text = config_map
        .data
        .as_ref()
        .and_then(|data| data.get("rtpmidid.ini"))
        .expect("the ConfigMap holds rtpmidid.ini")
        .clone();
    let control_socket = ini_text
        .lines()
        .find_map(|line| line.trim().strip_prefix("control").map(str::trim))
        .and_then(|rest| rest.strip_prefix('='))
        .map(|path| Path::new(path.trim()).to_path_buf())
        .expect("the configuration names its control socket");
    std::fs::create_dir_all(control_socket.parent().unwrap()).unwrap();
    let ini = dir.join("rtpmidid.ini");
    std::fs::write(&ini, &ini_text).unwrap();
    let daemon = Rtpmidid::start_with_ini(&rtpmidid_binary, &ini, control_socket.clone()).await;

    // The sidecar with the container's args and env from the Deployment, field references
    // filled in as the kubelet would, and the hub's ServiceAccount's token.
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NAMESPACE);
    let deployment = deployments.get(&format!("midihub-{HUB}")).await.unwrap();
    let pod_spec = deployment.spec.unwrap().template.spec.unwrap();
    let container = pod_spec
        .containers
        .iter()
        .find(|container| container.name == "hub-sidecar")
        .expect("a hub-sidecar container");
    let token = plane
        .service_account_token(NAMESPACE, &format!("midihub-{HUB}"))
        .await
        .unwrap();
    let kubeconfig = dir.join("sidecar.kubeconfig");
    plane.kubeconfig_with_token(&token, &kubeconfig).unwrap();
    let mut sidecar = SidecarProcess::command(
        Path::new(env!("CARGO_BIN_EXE_hub-sidecar")),
        dir.join("sidecar.log"),
    )
    .args(container.args.clone().unwrap_or_default())
    .env("KUBECONFIG", &kubeconfig);
    for variable in container.env.clone().unwrap_or_default() {
        let value = match (&variable.value, &variable.value_from) {
            (Some(value), _) => value.clone(),
            (None, Some(source)) => {
                match source.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                    Some("metadata.namespace") => NAMESPACE.to_string(),
                    Some("metadata.name") => format!("midihub-{HUB}-in-the-alsa-vm"),
                    Some("spec.nodeName") => node.clone(),
                    other => panic!("the test does not know the field reference {other:?}"),
                }
            }
            (None, None) => String::new(),
        };
        sidecar = sidecar.env(&variable.name, value);
    }
    let sidecar = sidecar.spawn();

    // Three participants, two rooms.
    let alice = join(ROOMS[0], "alice").await;
    let bob = join(ROOMS[0], "bob").await;
    let carol = join(ROOMS[1], "carol").await;
    let with_participants = |status: &MidiHubStatus| {
        status.participant_count == Some(3)
            && status.latency.is_some()
            && status.participants.as_ref().is_some_and(|participants| {
                participants
                    .iter()
                    .all(|participant| participant.latency.is_some())
            })
    };
    let status = tokio::time::timeout(
        SEEN_WITHIN + Duration::from_secs(15),
        wait_for_status(
            &hubs,
            HUB,
            "3 participants with latency",
            SEEN_WITHIN,
            with_participants,
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("no status; the sidecar's log:\n{}", sidecar.log_text()));
    let participants = status.participants.clone().unwrap();
    let mut rooms: Vec<(String, i32)> = participants
        .iter()
        .map(|participant| (participant.name.clone(), participant.port))
        .collect();
    rooms.sort();
    assert_eq!(
        rooms,
        [
            ("alice".to_string(), i32::from(ROOMS[0])),
            ("bob".to_string(), i32::from(ROOMS[0])),
            ("carol".to_string(), i32::from(ROOMS[1])),
        ],
        "each participant in its room: {}",
        describe(&status)
    );
    assert!(
        ["Awake", "Ready", "Wiring"]
            .iter()
            .all(|wanted| has_condition(&status, wanted)),
        "the operator's and the sidecar's conditions in one list: {}",
        describe(&status)
    );
    let table = plane
        .kubectl(&["get", "midihubs", "-n", NAMESPACE])
        .expect("kubectl get midihubs");
    println!("kubectl get midihubs -n {NAMESPACE}, with three participants:\n{table}");
    let row = table
        .lines()
        .find(|line| line.starts_with(HUB))
        .expect("a row for the hub");
    assert!(
        row.split_whitespace().any(|cell| cell == "3"),
        "the PARTICIPANTS column shows 3: {row}"
    );
    assert!(
        row.contains("ms"),
        "the LATENCY column shows a latency: {row}"
    );

    // One ParticipantJoined Event per participant, each naming its participant.
    let events: Api<Event> = Api::namespaced(admin.clone(), NAMESPACE);
    let joined = |events: Vec<Event>| -> Vec<String> {
        events
            .into_iter()
            .filter(|event| event.reason.as_deref() == Some("ParticipantJoined"))
            .filter_map(|event| event.note)
            .collect()
    };
    let notes = joined(events.list(&ListParams::default()).await.unwrap().items);
    for name in ["alice", "bob", "carol"] {
        assert_eq!(
            notes.iter().filter(|note| note.contains(name)).count(),
            1,
            "one ParticipantJoined Event naming {name}: {notes:?}"
        );
    }

    // The API server restarted under the sidecar (by the tier on the host: the VM cannot):
    // a participant joining afterwards is published all the same.
    let dave = match restart_api_server_from_the_host(&plane).await {
        Some(()) => {
            let dave = join(ROOMS[1], "dave").await;
            wait_for_status(
                &hubs,
                HUB,
                "4 participants after the API server's restart",
                SEEN_WITHIN,
                |s| s.participant_count == Some(4),
            )
            .await;
            Some(dave)
        }
        None => None,
    };

    alice.leave().await.unwrap();
    bob.leave().await.unwrap();
    carol.leave().await.unwrap();
    if let Some(dave) = dave {
        dave.leave().await.unwrap();
    }
    let empty = wait_for_status(
        &hubs,
        HUB,
        "no participants after they left",
        SEEN_WITHIN,
        |s| s.participant_count == Some(0),
    )
    .await;
    assert!(
        empty.participants.clone().unwrap_or_default().is_empty(),
        "{:?}",
        empty.participants
    );
    let table = plane
        .kubectl(&["get", "midihubs", "-n", NAMESPACE])
        .unwrap();
    println!("kubectl get midihubs -n {NAMESPACE}, after they left:\n{table}");

    sidecar.kill().await;
    daemon.stop().await;
    let hub_object = hubs.get(HUB).await.unwrap();
    println!("{} done", hub_object.name_any());
    delete_namespace(&admin, NAMESPACE).await;
}

/// Asks the tier on the host to restart the API server (stopped for 5 s), through the plane's
/// folder, which the tier shares with the VM read-write, and waits until it is back. `None`, with
/// a `SKIP` line, when nothing on the host answers such requests (`MIDIHUB_PLANE_REQUESTS`
/// unset: the test was not started by the tier).
async fn restart_api_server_from_the_host(plane: &Plane) -> Option<()> {
    let Some(requests) = std::env::var_os("MIDIHUB_PLANE_REQUESTS") else {
        println!("SKIP full_chain: API server restart: MIDIHUB_PLANE_REQUESTS is not set");
        return None;
    };
    let requests = Path::new(&requests);
    let done = requests.join("restarted-kube-apiserver");
    let _ = std::fs::remove_file(&done);
    std::fs::write(requests.join("restart-kube-apiserver"), b"").expect("write the request");
    let started = std::time::Instant::now();
    while !done.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the host did not restart the API server within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "the API server was restarted by the host ({:?}); the plane is {:?}",
        started.elapsed(),
        plane.port()
    );
    Some(())
}
