//! The control-plane tier: the operator as a process, with exactly the Helm chart's RBAC, on a
//! real Kubernetes control plane built from source (`scripts/control-plane`): the real API
//! server judges and stores, the real controller-manager makes ReplicaSets and Pods, the real
//! scheduler places them; kwok plays the nodes (pods are marked Running, no container runs).
//!
//! The tier (`./scripts/test`) starts the plane and the operator and names the plane's folder in
//! `MIDIHUB_CONTROL_PLANE`; without it every test prints `SKIP` and returns. The tests share one
//! plane and must run one at a time (`--test-threads=1`): some restart the API server or the
//! operator, some read the API server's global counters. Each works in namespaces of its own.
//!
//! The default topology of the plane: nodes eu-1 (ExternalIP 203.0.113.10) and eu-2
//! (203.0.113.11) in eu-central-1, ap-1 (203.0.113.20) in ap-southeast-2, all sound-ready, and
//! plain-1 in eu-central-1 without the sound-ready label.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::{Api, Client, ResourceExt};
use midihub_api::{Latency, MidiHub, MidiHubStatus, Participant, Phase, contract};
use midihub_tests::browser::{Browser, output_folder};
use midihub_tests::cluster::{
    delete_namespace, describe, ensure_namespace, eventually, hub, hub_pods, patch_spec,
    set_suspend, wait_for_status,
};
use midihub_tests::conditions::{condition, has_condition};
use midihub_tests::control_plane::{OPERATOR_USER, Plane};
use midihub_tests::http::{HttpResponse, http_get};
use serde_json::json;

/// Creating a hub to Ready on the simulated nodes takes about a second; the margin is for a
/// busy 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=midihub-operator";

/// The plane, or `None` after printing why the test is skipped.
async fn plane(test: &str) -> Option<(Plane, Client)> {
    let Some(plane) = Plane::from_env() else {
        println!(
            "SKIP {test}: MIDIHUB_CONTROL_PLANE is not set (./scripts/test starts the control plane)"
        );
        return None;
    };
    let client = plane.admin().await.expect("an admin client for the plane");
    Some((plane, client))
}

/// A namespace of the test's own, fresh: one left by an earlier, failed run is deleted first.
async fn namespace(client: &Client, name: &str) -> Api<MidiHub> {
    fresh_namespace(client, name, json!({})).await;
    Api::namespaced(client.clone(), name)
}

async fn fresh_namespace(client: &Client, name: &str, labels: serde_json::Value) {
    delete_namespace(client, name).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    eventually(
        &format!("namespace {name} of an earlier run to be gone"),
        Duration::from_secs(120),
        || async {
            match namespaces.get_opt(name).await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(_) => Err("still there".to_string()),
            }
        },
    )
    .await;
    ensure_namespace(client, name, labels).await;
}

/// A fresh namespace `namespace_name` with one hub `name` of `spec`, once it is Ready.
async fn ready_hub(
    client: &Client,
    namespace_name: &str,
    name: &str,
    spec: serde_json::Value,
) -> (Api<MidiHub>, MidiHubStatus) {
    let hubs = namespace(client, namespace_name).await;
    create(&hubs, &hub(namespace_name, name, spec)).await;
    let status = wait_for_status(&hubs, name, "Ready", READY_TIMEOUT, is_ready).await;
    (hubs, status)
}

async fn create(hubs: &Api<MidiHub>, hub: &MidiHub) {
    hubs.create(&PostParams::default(), hub)
        .await
        .unwrap_or_else(|error| panic!("create MidiHub {}: {error}", hub.name_any()));
}

fn is_ready(status: &MidiHubStatus) -> bool {
    status.phase == Some(Phase::Ready) && status.address.is_some()
}

/// Waits until hub `name` of `namespace` has no pod left.
async fn until_no_hub_pod(client: &Client, namespace: &str, name: &str) {
    eventually("the hub's pod to go", READY_TIMEOUT, || async {
        match hub_pods(client, namespace, name).await.len() {
            0 => Ok(()),
            pods => Err(format!("{pods} pods")),
        }
    })
    .await;
}

/// A time of day `minutes` from now, in UTC, as a schedule window writes it.
fn utc_time_in(minutes: i64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(minutes);
    at.to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%H:%M")
        .to_string()
}

const EVERY_DAY: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

// ---------------------------------------------------------------------------------------------
// The chart and kubectl

#[tokio::test]
async fn the_operator_runs_with_exactly_the_charts_rbac_and_holds_the_lease() {
    let Some((plane, client)) = plane("control_plane: chart RBAC").await else {
        return;
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), "midihub-system");
    let lease = leases
        .get("midihub-operator")
        .await
        .expect("the operator's leader-election Lease");
    assert_eq!(
        lease.spec.and_then(|spec| spec.holder_identity).as_deref(),
        Some("midihub-operator-local"),
        "the operator process holds the Lease"
    );

    // The operator's credentials are the chart's ServiceAccount's: what the chart grants works,
    // anything else is refused.
    let token = plane
        .service_account_token("midihub-system", "midihub")
        .await
        .expect("a token of the chart's ServiceAccount");
    let operator = plane.client_with_token(&token).await.unwrap();
    Api::<MidiHub>::all(operator.clone())
        .list(&ListParams::default())
        .await
        .expect("the chart lets the operator list MidiHubs");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(operator.clone(), "midihub-system");
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("the operator's ServiceAccount must not read Secrets: {other:?}"),
    }
    let health = operator_health(&plane);
    assert_eq!(
        health.status, 200,
        "the operator is healthy: {}",
        health.body
    );
}

#[tokio::test]
async fn kubectl_get_shows_every_column_of_the_example_hub_and_explain_documents_its_ports() {
    let Some((plane, client)) = plane("control_plane: kubectl get").await else {
        return;
    };
    let example = plane.repo().join("examples/midihub.yaml");
    plane
        .kubectl(&["apply", "-f", example.to_str().unwrap()])
        .expect("kubectl apply -f examples/midihub.yaml");
    // Woken for an hour, whatever the example's schedule says now.
    let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    plane
        .kubectl(&[
            "patch",
            "mh",
            "jam-session",
            "-n",
            "default",
            "--type=merge",
            "-p",
            &json!({ "spec": { "wakeUntil": until } }).to_string(),
        ])
        .expect("wake the example hub");
    let hubs: Api<MidiHub> = Api::namespaced(client.clone(), "default");
    let status = wait_for_status(&hubs, "jam-session", "Ready", READY_TIMEOUT, is_ready).await;

    let table = plane
        .kubectl(&["get", "midihubs", "-n", "default"])
        .expect("kubectl get midihubs");
    println!("{table}");
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "PHASE",
            "ADDRESS",
            "PORTS",
            "PARTICIPANTS",
            "LATENCY",
            "NEXT",
            "AGE"
        ],
        "the printer columns, as the server renders them"
    );
    let row = lines
        .find(|line| line.starts_with("jam-session "))
        .expect("a row for the example hub");
    let address = status.address.clone().unwrap();
    assert!(
        ["203.0.113.10", "203.0.113.11"].contains(&address.as_str()),
        "the address of an eu-central-1 node: {address}"
    );
    for cell in ["Ready", address.as_str(), "5004,5006"] {
        assert!(row.contains(cell), "the row shows {cell:?}: {row}");
    }

    let explained = plane
        .kubectl(&["explain", "midihub.spec.ports"])
        .expect("kubectl explain midihub.spec.ports");
    for fragment in ["FIELD: ports", "port", "name", "room"] {
        assert!(
            explained.contains(fragment),
            "kubectl explain documents the rooms ({fragment:?}): {explained}"
        );
    }
    plane
        .kubectl(&["delete", "-f", example.to_str().unwrap(), "--wait=false"])
        .expect("delete the example hub");
}

// ---------------------------------------------------------------------------------------------
// Schedule, overrides and placement by the real controllers and scheduler

#[tokio::test]
async fn an_awake_hub_runs_one_pod_on_a_node_of_its_region_with_that_nodes_external_ip() {
    let Some((_plane, client)) = plane("control_plane: placement").await else {
        return;
    };
    let (_, status) = ready_hub(
        &client,
        "cp-placement",
        "sydney",
        json!({ "ports": [{ "port": 6004 }], "region": "ap-southeast-2" }),
    )
    .await;
    assert_eq!(
        status.node.as_deref(),
        Some("ap-1"),
        "{}",
        describe(&status)
    );
    assert_eq!(
        status.address.as_deref(),
        Some("203.0.113.20"),
        "the node's ExternalIP"
    );
    let pods = hub_pods(&client, "cp-placement", "sydney").await;
    assert_eq!(
        pods.len(),
        1,
        "one pod, made by the real ReplicaSet controller"
    );
    let pod = &pods[0];
    assert_eq!(
        pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref()),
        Some("ap-1"),
        "placed by the real scheduler on the region's only node"
    );
    assert!(
        pod.owner_references()
            .iter()
            .any(|owner| owner.kind == "ReplicaSet"),
        "the pod belongs to a ReplicaSet"
    );
    delete_namespace(&client, "cp-placement").await;
}

#[tokio::test]
async fn suspend_sleeps_the_hub_and_wake_until_wakes_it_again() {
    let Some((_plane, client)) = plane("control_plane: overrides").await else {
        return;
    };
    let hubs = namespace(&client, "cp-overrides").await;
    // A window that starts in two hours: asleep by the schedule.
    let spec = json!({
        "ports": [{ "port": 6104 }],
        "region": "eu-central-1",
        "schedule": { "timeZone": "UTC", "windows": [
            { "days": EVERY_DAY, "start": utc_time_in(120), "end": utc_time_in(180) } ] },
    });
    create(&hubs, &hub("cp-overrides", "later", spec)).await;
    let asleep = wait_for_status(
        &hubs,
        "later",
        "Sleeping by its schedule",
        READY_TIMEOUT,
        |s| s.phase == Some(Phase::Sleeping),
    )
    .await;
    assert!(
        asleep
            .next_transition
            .as_deref()
            .is_some_and(|next| next.starts_with("wake")),
        "Next says when it wakes: {:?}",
        asleep.next_transition
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "cp-overrides");
    let replicas = |deployment: Deployment| deployment.spec.and_then(|spec| spec.replicas);
    assert_eq!(
        replicas(deployments.get("midihub-later").await.unwrap()),
        Some(0)
    );

    let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30)).to_string();
    patch_spec(&hubs, "later", json!({ "wakeUntil": until })).await;
    wait_for_status(
        &hubs,
        "later",
        "Ready after wakeUntil",
        READY_TIMEOUT,
        is_ready,
    )
    .await;
    assert_eq!(
        replicas(deployments.get("midihub-later").await.unwrap()),
        Some(1)
    );
    assert_eq!(hub_pods(&client, "cp-overrides", "later").await.len(), 1);

    patch_spec(
        &hubs,
        "later",
        json!({ "wakeUntil": null, "suspend": true }),
    )
    .await;
    wait_for_status(&hubs, "later", "Sleeping on suspend", READY_TIMEOUT, |s| {
        s.phase == Some(Phase::Sleeping)
    })
    .await;
    until_no_hub_pod(&client, "cp-overrides", "later").await;
    delete_namespace(&client, "cp-overrides").await;
}

#[tokio::test]
async fn a_schedule_window_around_now_wakes_the_hub() {
    let Some((_plane, client)) = plane("control_plane: schedule").await else {
        return;
    };
    let hubs = namespace(&client, "cp-schedule").await;
    let spec = json!({
        "ports": [{ "port": 6204 }],
        "schedule": { "timeZone": "UTC", "windows": [
            { "days": EVERY_DAY, "start": utc_time_in(-60), "end": utc_time_in(60) } ] },
    });
    create(&hubs, &hub("cp-schedule", "now", spec)).await;
    let status = wait_for_status(
        &hubs,
        "now",
        "Ready inside its window",
        READY_TIMEOUT,
        is_ready,
    )
    .await;
    assert!(
        status
            .next_transition
            .as_deref()
            .is_some_and(|next| next.starts_with("sleep")),
        "Next says when it sleeps: {:?}",
        status.next_transition
    );
    delete_namespace(&client, "cp-schedule").await;
}

#[tokio::test]
async fn a_second_hub_on_the_same_ports_in_a_one_node_region_is_unschedulable_with_the_reason() {
    let Some((_plane, client)) = plane("control_plane: port clash").await else {
        return;
    };
    let hubs = namespace(&client, "cp-clash").await;
    let spec = json!({ "ports": [{ "port": 6304 }], "region": "ap-southeast-2" });
    create(&hubs, &hub("cp-clash", "first", spec.clone())).await;
    wait_for_status(&hubs, "first", "Ready", READY_TIMEOUT, is_ready).await;
    create(&hubs, &hub("cp-clash", "second", spec)).await;
    let status = wait_for_status(&hubs, "second", "Unschedulable", READY_TIMEOUT, |s| {
        s.phase == Some(Phase::Unschedulable)
    })
    .await;
    let ready = condition(&status, "Ready").expect("a Ready condition");
    assert_eq!(ready.reason, "PortsInUse", "{}", describe(&status));
    assert!(
        ready.message.contains("free ports"),
        "the scheduler's own words: {}",
        ready.message
    );
    delete_namespace(&client, "cp-clash").await;
}

#[tokio::test]
async fn a_hub_in_a_region_without_nodes_is_unschedulable_with_the_reason() {
    let Some((_plane, client)) = plane("control_plane: empty region").await else {
        return;
    };
    let hubs = namespace(&client, "cp-empty-region").await;
    create(
        &hubs,
        &hub(
            "cp-empty-region",
            "sao-paulo",
            json!({ "ports": [{ "port": 6404 }], "region": "sa-east-1" }),
        ),
    )
    .await;
    let status = wait_for_status(&hubs, "sao-paulo", "Unschedulable", READY_TIMEOUT, |s| {
        s.phase == Some(Phase::Unschedulable)
    })
    .await;
    let ready = condition(&status, "Ready").expect("a Ready condition");
    assert_eq!(ready.reason, "NoEligibleNode", "{}", describe(&status));
    assert!(ready.message.contains("sa-east-1"), "{}", ready.message);
    delete_namespace(&client, "cp-empty-region").await;
}

// ---------------------------------------------------------------------------------------------
// The sidecar's least privilege, and two field managers on one status

#[tokio::test]
async fn a_hubs_service_account_writes_its_own_hubs_status_and_events_and_nothing_else() {
    let Some((plane, client)) = plane("control_plane: hub RBAC").await else {
        return;
    };
    let hubs = namespace(&client, "cp-rbac").await;
    for name in ["mine", "theirs"] {
        let port = if name == "mine" { 6504 } else { 6506 };
        create(
            &hubs,
            &hub("cp-rbac", name, json!({ "ports": [{ "port": port }] })),
        )
        .await;
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "cp-rbac");
    eventually("the hub's ServiceAccount", READY_TIMEOUT, || async {
        accounts
            .get_opt("midihub-mine")
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    let token = eventually("a token of midihub-mine", READY_TIMEOUT, || async {
        plane
            .service_account_token("cp-rbac", "midihub-mine")
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    let sidecar = plane.client_with_token(&token).await.unwrap();
    let as_sidecar: Api<MidiHub> = Api::namespaced(sidecar.clone(), "cp-rbac");
    let status_patch = json!({
        "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
        "status": { "participantCount": 0 },
    });
    let apply = PatchParams::apply("midihub-sidecar").force();
    // The Role's rules take a moment to reach the authorizer's cache.
    eventually(
        "the sidecar's status patch to be allowed",
        READY_TIMEOUT,
        || async {
            as_sidecar
                .patch_status("mine", &apply, &Patch::Apply(&status_patch))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        },
    )
    .await;
    as_sidecar
        .get("mine")
        .await
        .expect("the sidecar may read its own hub");
    // It follows its rooms' allow-lists: a list and a watch that name its hub.
    let own_hub = ListParams::default().fields("metadata.name=mine");
    let listed = as_sidecar
        .list(&own_hub)
        .await
        .expect("the sidecar may list its own hub by name");
    assert_eq!(
        listed
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>(),
        ["mine"]
    );
    as_sidecar
        .watch(&WatchParams::default().fields("metadata.name=mine"), "0")
        .await
        .map(drop)
        .expect("the sidecar may watch its own hub by name");

    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(sidecar.clone(), "cp-rbac");
    let event: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
        "metadata": { "generateName": "mine-" },
        "eventTime": jiff::Timestamp::now().to_string(),
        "reportingController": "midihub-sidecar", "reportingInstance": "test",
        "action": "Wire", "reason": "ParticipantJoined", "type": "Normal",
        "regarding": { "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
                       "namespace": "cp-rbac", "name": "mine" },
        "note": "a test event",
    }))
    .unwrap();
    events
        .create(&PostParams::default(), &event)
        .await
        .expect("the sidecar may create Events");

    fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) {
        match result {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{what}: {status:?}"),
            other => panic!("{what} must be refused: {other:?}"),
        }
    }
    refused(
        as_sidecar
            .patch_status("theirs", &apply, &Patch::Apply(&status_patch))
            .await,
        "patching another hub's status",
    );
    refused(as_sidecar.get("theirs").await, "reading another hub");
    refused(
        as_sidecar.list(&ListParams::default()).await,
        "listing every hub of the namespace",
    );
    refused(
        as_sidecar
            .list(&ListParams::default().fields("metadata.name=theirs"))
            .await,
        "listing another hub",
    );
    refused(
        as_sidecar
            .watch(&WatchParams::default().fields("metadata.name=theirs"), "0")
            .await
            .map(drop),
        "watching another hub",
    );
    refused(
        as_sidecar
            .watch(&WatchParams::default(), "0")
            .await
            .map(drop),
        "watching every hub of the namespace",
    );
    refused(
        as_sidecar
            .patch(
                "mine",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "suspend": true } })),
            )
            .await,
        "changing its own hub's spec",
    );
    delete_namespace(&client, "cp-rbac").await;
}

#[tokio::test]
async fn the_operators_and_the_sidecars_conditions_stand_together_in_one_list() {
    let Some((plane, client)) = plane("control_plane: list-map").await else {
        return;
    };
    let (hubs, _) = ready_hub(
        &client,
        "cp-listmap",
        "shared",
        json!({ "ports": [{ "port": 6604 }] }),
    )
    .await;
    let token = plane
        .service_account_token("cp-listmap", "midihub-shared")
        .await
        .unwrap();
    let as_sidecar: Api<MidiHub> =
        Api::namespaced(plane.client_with_token(&token).await.unwrap(), "cp-listmap");
    let wiring = |message: &str| {
        json!({
            "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
            "status": { "participantCount": 0, "conditions": [{
                "type": "Wiring", "status": "True", "reason": "Wired", "message": message,
                "lastTransitionTime": jiff::Timestamp::now().to_string(),
            }] },
        })
    };
    // Writes by each side, interleaved: the sidecar's Wiring, then the operator's Awake and
    // Ready rewritten for a new wakeUntil (a new generation to observe).
    for round in 1..=3 {
        let message = format!("round {round}");
        eventually("the sidecar's apply", READY_TIMEOUT, || async {
            as_sidecar
                .patch_status(
                    "shared",
                    &PatchParams::apply("midihub-sidecar").force(),
                    &Patch::Apply(wiring(&message)),
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await;
        let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(round)).to_string();
        let generation = hubs
            .patch(
                "shared",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "wakeUntil": until } })),
            )
            .await
            .unwrap()
            .metadata
            .generation;
        let status = wait_for_status(
            &hubs,
            "shared",
            "the operator to observe the new generation",
            READY_TIMEOUT,
            |s| s.observed_generation == generation && is_ready(s),
        )
        .await;
        let wiring = condition(&status, "Wiring");
        assert_eq!(
            wiring.map(|c| c.message.as_str()),
            Some(message.as_str()),
            "the sidecar's Wiring survives the operator's apply: {}",
            describe(&status)
        );
        for wanted in ["Awake", "Ready"] {
            assert!(
                has_condition(&status, wanted),
                "the operator's {wanted} survives the sidecar's apply: {}",
                describe(&status)
            );
        }
    }
    let hub = hubs.get("shared").await.unwrap();
    let managers: Vec<String> = hub
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| entry.subresource.as_deref() == Some("status"))
        .filter_map(|entry| entry.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m == "midihub-operator")
            && managers.iter().any(|m| m == "midihub-sidecar"),
        "two field managers on the status: {managers:?}"
    );
    delete_namespace(&client, "cp-listmap").await;
}

// ---------------------------------------------------------------------------------------------
// What a real cluster showed: refused pods, stale participants, addresses

#[tokio::test]
async fn a_hub_in_a_namespace_enforcing_baseline_pod_security_is_blocked_with_the_fix() {
    let Some((plane, client)) = plane("control_plane: Pod Security").await else {
        return;
    };
    let name = "cp-baseline";
    fresh_namespace(
        &client,
        name,
        json!({ "pod-security.kubernetes.io/enforce": "baseline" }),
    )
    .await;
    let hubs: Api<MidiHub> = Api::namespaced(client.clone(), name);
    create(
        &hubs,
        &hub(name, "guarded", json!({ "ports": [{ "port": 6804 }] })),
    )
    .await;
    let status = wait_for_status(&hubs, "guarded", "Blocked", READY_TIMEOUT, |s| {
        s.phase == Some(Phase::Blocked)
    })
    .await;
    let ready = condition(&status, "Ready").expect("a Ready condition");
    assert_eq!(ready.reason, "PodSecurity", "{}", describe(&status));
    assert!(
        ready
            .message
            .contains("pod-security.kubernetes.io/enforce=privileged"),
        "the message names the fix: {}",
        ready.message
    );
    let events = plane
        .kubectl(&["get", "events", "-n", name, "-o", "json"])
        .unwrap();
    assert!(
        events.contains("\"PodSecurity\""),
        "a Warning Event with the reason"
    );

    // The fix the message names works.
    plane
        .kubectl(&[
            "label",
            "namespace",
            name,
            "--overwrite",
            "pod-security.kubernetes.io/enforce=privileged",
        ])
        .unwrap();
    plane
        .kubectl(&[
            "-n",
            name,
            "rollout",
            "restart",
            "deployment",
            "midihub-guarded",
        ])
        .unwrap();
    wait_for_status(
        &hubs,
        "guarded",
        "Ready once privileged",
        READY_TIMEOUT,
        is_ready,
    )
    .await;
    delete_namespace(&client, name).await;
}

#[tokio::test]
async fn a_hub_whose_pod_cannot_be_created_says_why() {
    let Some((_plane, client)) = plane("control_plane: pod creation refused").await else {
        return;
    };
    let name = "cp-refused";
    let hubs = namespace(&client, name).await;
    // A PriorityClass that does not exist: the Deployment is accepted, its pods are not.
    create(
        &hubs,
        &hub(
            name,
            "unprioritised",
            json!({ "ports": [{ "port": 6904 }], "pod": { "priorityClassName": "no-such-class" } }),
        ),
    )
    .await;
    let status = wait_for_status(&hubs, "unprioritised", "Blocked", READY_TIMEOUT, |s| {
        s.phase == Some(Phase::Blocked)
    })
    .await;
    let ready = condition(&status, "Ready").expect("a Ready condition");
    assert_eq!(ready.reason, "PodCreationFailed", "{}", describe(&status));
    assert!(
        ready.message.contains("no-such-class"),
        "Kubernetes' own words: {}",
        ready.message
    );
    delete_namespace(&client, name).await;
}

#[tokio::test]
async fn participants_of_a_hub_whose_pod_died_without_a_farewell_are_cleared() {
    let Some((plane, client)) = plane("control_plane: stale participants").await else {
        return;
    };
    let name = "cp-stale";
    let (hubs, _) = ready_hub(
        &client,
        name,
        "abandoned",
        json!({ "ports": [{ "port": 7504 }] }),
    )
    .await;
    // A sidecar's last publication, as the sidecar writes it; then the pod goes without the
    // sidecar's farewell (a simulated pod runs no sidecar to say goodbye).
    let participant = midihub_api::Participant {
        port: 7504,
        room: "abandoned-7504".into(),
        name: "alice".into(),
        remote_address: "::ffff:198.51.100.7".into(),
        joined_at: None,
        latency: Some(midihub_api::Latency {
            last_ms: 20.0,
            average_ms: 21.0,
            jitter_ms: 1.0,
        }),
    };
    let sidecar_status = MidiHubStatus {
        participants: Some(vec![participant]),
        participant_count: Some(1),
        latency: Some("avg 21.0ms".into()),
        conditions: vec![Condition {
            type_: "Wiring".into(),
            status: "True".into(),
            reason: "Wired".into(),
            message: "1 participant wired".into(),
            observed_generation: None,
            last_transition_time: Time(jiff::Timestamp::now()),
        }],
        ..MidiHubStatus::default()
    };
    publish_as_sidecar(&plane, name, "abandoned", &sidecar_status).await;
    set_suspend(&hubs, "abandoned", true).await;
    let status = wait_for_status(
        &hubs,
        "abandoned",
        "Sleeping, claiming no participants",
        READY_TIMEOUT,
        |s| {
            s.phase == Some(Phase::Sleeping)
                && s.participants.is_none()
                && s.participant_count.is_none()
                && s.latency.is_none()
                && !has_condition(s, "Wiring")
        },
    )
    .await;
    for wanted in ["Awake", "Ready"] {
        assert!(
            has_condition(&status, wanted),
            "the operator's {wanted} stays: {}",
            describe(&status)
        );
    }
    assert!(hub_pods(&client, name, "abandoned").await.is_empty());
    delete_namespace(&client, name).await;
}

/// A simulated node of its own region, removed again on drop.
struct TestNode {
    plane: Plane,
    name: &'static str,
}

impl TestNode {
    fn create(
        plane: &Plane,
        name: &'static str,
        annotations: serde_json::Value,
        addresses: serde_json::Value,
    ) -> TestNode {
        let mut all_annotations = json!({ "kwok.x-k8s.io/node": "fake" });
        all_annotations
            .as_object_mut()
            .unwrap()
            .extend(annotations.as_object().cloned().unwrap_or_default());
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": { "name": name, "annotations": all_annotations, "labels": {
                "kubernetes.io/hostname": name,
                "topology.kubernetes.io/region": format!("test-{name}"),
                "midihub.io/sound-ready": "true",
            } },
            "status": { "addresses": addresses },
        });
        let file = plane.file(&format!("{name}.json"));
        std::fs::write(&file, node.to_string()).unwrap();
        plane
            .kubectl(&["apply", "-f", file.to_str().unwrap()])
            .expect("create the test node");
        plane
            .kubectl(&[
                "wait",
                "--for=condition=Ready",
                &format!("node/{name}"),
                "--timeout=60s",
            ])
            .expect("the test node Ready");
        TestNode {
            plane: plane.clone(),
            name,
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self
            .plane
            .kubectl(&["delete", "node", self.name, "--wait=false"]);
    }
}

/// The hub's Awake condition's reason.
fn awake_reason(status: &MidiHubStatus) -> &str {
    condition(status, "Awake").map_or("", |c| c.reason.as_str())
}

/// How many reconciles the operator process has finished since it started.
fn operator_reconciles(plane: &Plane) -> u64 {
    let metrics = http_get(&format!("{}/metrics", plane.operator_endpoint()))
        .map(|response| response.body)
        .unwrap_or_default();
    metrics
        .lines()
        .filter(|line| line.starts_with("midihub_operator_reconciles_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn a_hub_whose_wake_until_passes_while_someone_plays_sleeps_once_its_rooms_are_empty() {
    let Some((plane, client)) = plane("control_plane: overtime").await else {
        return;
    };
    let name = "cp-overtime";
    let hubs = namespace(&client, name).await;
    // Asleep by its schedule (a window hours away), woken for half a minute, with a grace of
    // seconds.
    // Whole seconds: the API stores times to the second.
    let until = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 30).unwrap();
    let spec = json!({
        "ports": [{ "port": 6204 }],
        "region": "eu-central-1",
        "schedule": { "timeZone": "UTC", "windows": [
            { "days": EVERY_DAY, "start": utc_time_in(180), "end": utc_time_in(240) } ] },
        "wakeUntil": until.to_string(),
        "overtime": { "grace": "5s", "limit": "10m" },
    });
    create(&hubs, &hub(name, "encore", spec)).await;
    let ready = wait_for_status(&hubs, "encore", "Ready", READY_TIMEOUT, is_ready).await;
    let first_node = ready.node.clone().expect("a Ready hub has a node");
    let alice = Participant {
        port: 6204,
        room: "encore-6204".into(),
        name: "alice".into(),
        remote_address: "198.51.100.7:5004".into(),
        joined_at: Some(Time(jiff::Timestamp::now())),
        latency: None,
    };
    publish_participants(&plane, name, "encore", vec![alice]).await;

    // wakeUntil passes while Alice plays: the hub stays awake.
    let overtime = wait_for_status(
        &hubs,
        "encore",
        "in overtime once wakeUntil passed",
        Duration::from_secs(90),
        |s| s.overtime.is_some(),
    )
    .await;
    assert_eq!(
        awake_reason(&overtime),
        "Overtime",
        "{}",
        describe(&overtime)
    );
    assert_eq!(overtime.phase, Some(Phase::Ready));
    assert!(
        overtime
            .next_transition
            .as_deref()
            .is_some_and(|next| next.starts_with("sleeps when empty, window ended")),
        "{}",
        describe(&overtime)
    );
    assert_eq!(
        overtime.overtime.as_ref().unwrap().window_ended,
        Time(until)
    );
    assert_eq!(hub_pods(&client, name, "encore").await.len(), 1);

    // An operator restart in the middle changes nothing: the overtime lives in the status.
    let before = hubs.get("encore").await.unwrap();
    plane.kill_operator().expect("kill the operator");
    plane.start_operator(&[]).expect("start the operator again");
    eventually(
        "the restarted operator to reconcile (after the old lease expires)",
        Duration::from_secs(60),
        || async {
            match operator_reconciles(&plane) {
                0 => Err("no reconcile yet".to_owned()),
                _ => Ok(()),
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = hubs.get("encore").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "the restarted operator rewrote the hub: {}",
        describe(after.status.as_ref().unwrap())
    );

    // Everyone leaves: after the grace the hub sleeps and its pod goes.
    publish_participants(&plane, name, "encore", vec![]).await;
    let asleep = wait_for_status(
        &hubs,
        "encore",
        "Sleeping after the grace",
        READY_TIMEOUT,
        |s| s.phase == Some(Phase::Sleeping),
    )
    .await;
    assert!(asleep.overtime.is_none(), "{}", describe(&asleep));
    let events = plane
        .kubectl(&["get", "events", "-n", name, "-o", "json"])
        .unwrap();
    for reason in ["OvertimeStarted", "OvertimeEnded"] {
        assert!(
            events.contains(&format!("\"{reason}\"")),
            "an Event {reason}"
        );
    }
    until_no_hub_pod(&client, name, "encore").await;

    // It comes back where it was, with the address participants saved: the pod prefers the
    // node it last ran on (two nodes of the region could take it; three wakes in a row).
    assert_eq!(asleep.preferred_node.as_deref(), Some(first_node.as_str()));
    for _ in 0..3 {
        let until = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10);
        patch_spec(
            &hubs,
            "encore",
            json!({ "suspend": false, "wakeUntil": until.to_string() }),
        )
        .await;
        let awake = wait_for_status(&hubs, "encore", "Ready again", READY_TIMEOUT, is_ready).await;
        assert_eq!(awake.node.as_deref(), Some(first_node.as_str()));
        assert_eq!(awake.address, ready.address);
        patch_spec(
            &hubs,
            "encore",
            json!({ "wakeUntil": null, "suspend": true }),
        )
        .await;
        until_no_hub_pod(&client, name, "encore").await;
    }
    delete_namespace(&client, name).await;
}

#[tokio::test]
async fn a_hub_on_a_node_without_an_external_address_says_outsiders_may_not_reach_it() {
    let Some((plane, client)) = plane("control_plane: internal address").await else {
        return;
    };
    let _node = TestNode::create(
        &plane,
        "internal-1",
        json!({}),
        json!([
            { "type": "InternalIP", "address": "192.0.2.40" },
            { "type": "InternalIP", "address": "2001:db8::40" },
            { "type": "Hostname", "address": "internal-1" },
        ]),
    );
    let name = "cp-internal";
    let (_, status) = ready_hub(
        &client,
        name,
        "inside",
        json!({ "ports": [{ "port": 7604 }], "region": "test-internal-1" }),
    )
    .await;
    assert_eq!(
        status.address.as_deref(),
        Some("192.0.2.40"),
        "the InternalIP, IPv4 before IPv6"
    );
    let public = condition(&status, "PublicAddress").expect("a PublicAddress condition");
    assert_eq!(
        (public.status.as_str(), public.reason.as_str()),
        ("False", "InternalIPOnly"),
        "{}",
        describe(&status)
    );
    delete_namespace(&client, name).await;
}

#[tokio::test]
async fn a_hub_on_a_node_annotated_with_a_public_address_reports_that_address() {
    let Some((plane, client)) = plane("control_plane: annotated address").await else {
        return;
    };
    let _node = TestNode::create(
        &plane,
        "annotated-1",
        json!({ "midihub.io/public-address": "198.51.100.50" }),
        json!([
            { "type": "InternalIP", "address": "192.0.2.50" },
            { "type": "Hostname", "address": "annotated-1" },
        ]),
    );
    let name = "cp-annotated";
    let (_, status) = ready_hub(
        &client,
        name,
        "named",
        json!({ "ports": [{ "port": 7704 }], "region": "test-annotated-1" }),
    )
    .await;
    assert_eq!(status.address.as_deref(), Some("198.51.100.50"));
    let public = condition(&status, "PublicAddress").expect("a PublicAddress condition");
    assert_eq!(
        (public.status.as_str(), public.reason.as_str()),
        ("True", "Annotated"),
        "{}",
        describe(&status)
    );
    delete_namespace(&client, name).await;
}

// ---------------------------------------------------------------------------------------------
// Restarts

/// The sorted names of the operator's children of kind `K` in `namespace`.
async fn child_names<K>(client: &Client, namespace: &str) -> Vec<String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let mut names: Vec<String> = api
        .list(&ListParams::default().labels(MANAGED_BY))
        .await
        .expect("list the operator's children")
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_operator_killed_while_reconciling_twenty_hubs_converges_and_then_writes_nothing() {
    let Some((plane, client)) = plane("control_plane: operator restart").await else {
        return;
    };
    let namespace_name = "cp-restart";
    let hubs = namespace(&client, namespace_name).await;
    for index in 0..20u16 {
        let port = 7000 + 2 * index;
        create(
            &hubs,
            &hub(
                namespace_name,
                &format!("hub-{index:02}"),
                json!({ "ports": [{ "port": port }] }),
            ),
        )
        .await;
    }
    // Killed mid-way, without a graceful shutdown.
    tokio::time::sleep(Duration::from_millis(700)).await;
    plane.kill_operator().expect("kill the operator");
    plane.start_operator(&[]).expect("start the operator again");

    for index in 0..20 {
        wait_for_status(
            &hubs,
            &format!("hub-{index:02}"),
            "Ready after the operator's restart",
            Duration::from_secs(120),
            is_ready,
        )
        .await;
    }
    // Exactly one of each child per hub: none missing, none twice.
    let lists = [
        (
            "Deployment",
            child_names::<Deployment>(&client, namespace_name).await,
        ),
        (
            "ConfigMap",
            child_names::<ConfigMap>(&client, namespace_name).await,
        ),
        (
            "ServiceAccount",
            child_names::<ServiceAccount>(&client, namespace_name).await,
        ),
        ("Role", child_names::<Role>(&client, namespace_name).await),
        (
            "RoleBinding",
            child_names::<RoleBinding>(&client, namespace_name).await,
        ),
    ];
    for (kind, mut names) in lists {
        assert_eq!(names.len(), 20, "one {kind} per hub: {names:?}");
        names.dedup();
        assert_eq!(names.len(), 20, "no {kind} twice");
    }
    for index in 0..20 {
        let pods = hub_pods(&client, namespace_name, &format!("hub-{index:02}")).await;
        let live = pods
            .iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .count();
        assert_eq!(live, 1, "one pod for hub-{index:02}");
    }

    // Converged: the operator writes nothing to these hubs while nothing changes (its own
    // requests in this namespace, from the audit log; other tests' namespaces may still be
    // going away; Leases and Events are its leadership and announcements, not reconciles).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mark = plane.audit_mark();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let writes: BTreeMap<String, u64> = plane
        .writes_since(mark, OPERATOR_USER, namespace_name)
        .expect("the audit log")
        .into_iter()
        .filter(|(resource, _)| resource != "leases" && resource != "events")
        .collect();
    assert!(
        writes.is_empty(),
        "the operator's writes in 20 idle seconds after converging: {writes:?}"
    );
    delete_namespace(&client, namespace_name).await;
}

#[tokio::test]
async fn after_an_api_server_restart_the_operator_acts_on_a_change_within_ten_seconds() {
    let Some((plane, client)) = plane("control_plane: API server restart").await else {
        return;
    };
    let (hubs, _) = ready_hub(
        &client,
        "cp-apiserver",
        "steady",
        json!({ "ports": [{ "port": 6704 }] }),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "cp-apiserver");

    // It depends on timing (which watch is where when the server goes): try several times.
    for (round, suspend) in [true, false, true].into_iter().enumerate() {
        plane
            .restart("kube-apiserver", Duration::from_secs(5))
            .expect("restart the API server");
        let ready_at = Instant::now();
        set_suspend(&hubs, "steady", suspend).await;
        let wanted = i32::from(!suspend);
        eventually(
            &format!("round {round}: the operator scaling the Deployment to {wanted}"),
            Duration::from_secs(10),
            || async {
                let deployment = deployments
                    .get("midihub-steady")
                    .await
                    .map_err(|e| e.to_string())?;
                let replicas = deployment.spec.and_then(|spec| spec.replicas);
                if replicas == Some(wanted) {
                    Ok(())
                } else {
                    Err(format!("replicas {replicas:?}"))
                }
            },
        )
        .await;
        println!(
            "round {round}: acted {:?} after the API server was ready",
            ready_at.elapsed()
        );
        assert_eq!(
            operator_health(&plane).status,
            200,
            "a short blip is no reason to restart the operator"
        );
    }
    delete_namespace(&client, "cp-apiserver").await;
    refresh_scheduling(&plane);
}

/// The scheduler and the controller-manager back off after losing the API server too (once the
/// scheduler took over a minute to place the next pod): fresh ones for the tests that follow.
fn refresh_scheduling(plane: &Plane) {
    for component in ["kube-controller-manager", "kube-scheduler"] {
        plane
            .restart(component, Duration::ZERO)
            .expect("restart the component");
    }
}

#[tokio::test]
async fn an_operator_whose_watches_stay_dead_past_the_grace_reports_unhealthy_until_they_recover() {
    let Some((plane, client)) = plane("control_plane: watch health").await else {
        return;
    };
    // Without leader election, so that the test sees the watches themselves: a leader that
    // cannot renew its Lease steps down, and a follower has no watches to be deaf with.
    plane
        .start_operator(&["--watch-grace-seconds", "4", "--leader-election", "false"])
        .expect("an operator with a grace of 4 s");
    // Watching: it reconciles a new hub.
    ready_hub(
        &client,
        "cp-health",
        "watched",
        json!({ "ports": [{ "port": 7804 }] }),
    )
    .await;
    assert_eq!(operator_health(&plane).status, 200);

    // The API server away for 15 s: longer than the grace.
    let restarting = {
        let plane = plane.clone();
        std::thread::spawn(move || plane.restart("kube-apiserver", Duration::from_secs(15)))
    };
    let unhealthy = eventually(
        "/healthz to report the dead watches",
        Duration::from_secs(30),
        || async {
            let HttpResponse { status, body } = operator_health(&plane);
            if status == 503 {
                Ok(body)
            } else {
                Err(format!("{status} {body}"))
            }
        },
    )
    .await;
    assert!(
        unhealthy.contains("MidiHub"),
        "it names the dead watches: {unhealthy}"
    );
    restarting
        .join()
        .expect("the restart thread")
        .expect("restart the API server");
    eventually("/healthz to recover", Duration::from_secs(20), || async {
        let HttpResponse { status, body } = operator_health(&plane);
        if status == 200 {
            Ok(())
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await;
    plane
        .start_operator(&[])
        .expect("the operator with its defaults");
    delete_namespace(&client, "cp-health").await;
    refresh_scheduling(&plane);
}

// ---------------------------------------------------------------------------------------------
// The public page, in a real browser

/// A participant of room `port`, as a hub's sidecar publishes it.
fn participant(port: i32, name: &str, remote_address: &str, last_ms: f64) -> Participant {
    Participant {
        port,
        room: format!("room-{port}"),
        name: name.to_owned(),
        remote_address: remote_address.to_owned(),
        joined_at: Some(Time(jiff::Timestamp::now())),
        latency: Some(Latency {
            last_ms,
            average_ms: last_ms + 1.5,
            jitter_ms: 0.8,
        }),
    }
}

/// Publishes `participants` to hub `name`'s status as its sidecar does.
async fn publish_participants(
    plane: &Plane,
    namespace: &str,
    name: &str,
    participants: Vec<Participant>,
) {
    let status = MidiHubStatus {
        participant_count: Some(participants.len() as i32),
        participants: Some(participants),
        ..MidiHubStatus::default()
    };
    publish_as_sidecar(plane, namespace, name, &status).await;
}

/// Applies `status` to hub `name` as its sidecar does: with the hub's own ServiceAccount, under
/// the sidecar's field manager, the typed status.
async fn publish_as_sidecar(plane: &Plane, namespace: &str, name: &str, status: &MidiHubStatus) {
    let token = eventually(
        "a token of the hub's ServiceAccount",
        READY_TIMEOUT,
        || async {
            plane
                .service_account_token(namespace, &format!("midihub-{name}"))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;
    let as_sidecar: Api<MidiHub> =
        Api::namespaced(plane.client_with_token(&token).await.unwrap(), namespace);
    eventually("the sidecar's apply", READY_TIMEOUT, || async {
        as_sidecar
            .patch_status(
                name,
                &PatchParams::apply(contract::SIDECAR_FIELD_MANAGER).force(),
                &contract::status_patch(status),
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;
}

/// A participant's name that would run a script if the page took it for markup.
const MARKUP_NAME: &str = "<script>document.title='taken over'</script>";

#[tokio::test]
async fn the_page_shows_listed_hubs_live_in_a_browser_and_never_the_unlisted_or_addresses() {
    let Some((plane, client)) = plane("control_plane: the page in a browser").await else {
        return;
    };
    let browser = match Browser::find() {
        Ok(browser) => browser,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the browser test must run in CI: {why}")
        }
        Err(why) => {
            println!("SKIP control_plane: the page in a browser: {why}");
            return;
        }
    };
    let namespace = "cp-page";
    let (hubs, _) = ready_hub(
        &client,
        namespace,
        "stage",
        json!({
            "listed": true,
            "ports": [{ "port": 8204, "name": "Main stage" }, { "port": 8206 }],
            // Awake for two hours, whatever the schedule says: a next transition to show in
            // the hub's own zone.
            "schedule": { "timeZone": "Europe/Berlin",
                          "windows": [{ "days": EVERY_DAY, "start": "19:00", "end": "23:00" }] },
            "wakeUntil": (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2)).to_string(),
        }),
    )
    .await;
    create(
        &hubs,
        &hub(
            namespace,
            "backroom",
            json!({ "ports": [{ "port": 8304 }] }),
        ),
    )
    .await;
    wait_for_status(&hubs, "backroom", "Ready", READY_TIMEOUT, is_ready).await;
    let alice = participant(8204, "alice", "198.51.100.7:5004", 20.0);
    // A name is whatever a participant's session is called: text, never markup.
    let prankster = participant(8204, MARKUP_NAME, "198.51.100.10:5004", 25.0);
    publish_participants(
        &plane,
        namespace,
        "stage",
        vec![alice.clone(), prankster.clone()],
    )
    .await;
    publish_participants(
        &plane,
        namespace,
        "backroom",
        vec![participant(8304, "mallory", "198.51.100.9:5004", 50.0)],
    )
    .await;
    let api = format!("{}/api/hubs/{namespace}/stage", plane.page_endpoint());
    eventually("alice on the page's API", READY_TIMEOUT, || async {
        let answer = http_get(&api).map_err(|e| e.to_string())?;
        if answer.status == 200 && answer.body.contains("alice") {
            Ok(())
        } else {
            Err(format!("{} {}", answer.status, answer.body))
        }
    })
    .await;
    let unlisted = http_get(&format!(
        "{}/api/hubs/{namespace}/backroom",
        plane.page_endpoint()
    ))
    .expect("the page answers");
    assert_eq!(
        unlisted.status, 404,
        "an unlisted hub is not found: {}",
        unlisted.body
    );

    let output = output_folder("page");
    let expectations = json!({
        "hub": "stage", "participant": "alice", "latency": "20.0 ms", "zone": "Europe/Berlin",
        "markup": MARKUP_NAME,
        "unlisted": "backroom",
        "absent": ["198.51.100.", "mallory"],
    });
    let mut run = browser
        .start(
            "page.mjs",
            &[
                &format!("{}/", plane.page_endpoint()),
                output.to_str().unwrap(),
                &expectations.to_string(),
            ],
        )
        .expect("start node tests/browser/page.mjs");
    if let Err(why) = run.wait_for("ready", Duration::from_secs(90)).await {
        let outcome = run.finish(Duration::from_secs(10)).await;
        panic!(
            "the browser test failed before the join (its FAIL line is above): {why}; {outcome:?}"
        );
    }
    // Bob joins: the browser starts its two seconds once the status holds him.
    let bob = participant(8206, "bob", "198.51.100.8:5006", 35.0);
    publish_participants(&plane, namespace, "stage", vec![alice, prankster, bob]).await;
    run.say("joined bob").await.expect("tell the browser test");
    let (status, said) = run
        .finish(Duration::from_secs(90))
        .await
        .expect("the browser test ends");
    assert!(
        status.success() && said.iter().any(|line| line == "ok done"),
        "the browser test failed ({status}; its FAIL line is above): {said:?}"
    );
    println!("screenshots in {}", output.display());

    // Its owner unlists it: it leaves the page (the page watches only listed hubs).
    patch_spec(&hubs, "stage", json!({ "listed": false })).await;
    eventually(
        "the unlisted hub to leave the page",
        READY_TIMEOUT,
        || async {
            let answer = http_get(&api).map_err(|e| e.to_string())?;
            match answer.status {
                404 => Ok(()),
                status => Err(format!("{status} {}", answer.body)),
            }
        },
    )
    .await;
    delete_namespace(&client, namespace).await;
}

// ---------------------------------------------------------------------------------------------

/// The operator's `/healthz` answer.
fn operator_health(plane: &Plane) -> HttpResponse {
    http_get(&format!("{}/healthz", plane.operator_endpoint()))
        .expect("the operator's endpoint answers")
}

#[tokio::test]
async fn the_simulated_nodes_carry_the_default_topology() {
    let Some((_plane, client)) = plane("control_plane: topology").await else {
        return;
    };
    let nodes: Api<Node> = Api::all(client);
    let sound_ready = nodes
        .list(&ListParams::default().labels("midihub.io/sound-ready=true"))
        .await
        .unwrap();
    let mut names: Vec<String> = sound_ready.items.iter().map(|n| n.name_any()).collect();
    names.sort();
    assert!(
        ["ap-1", "eu-1", "eu-2"]
            .iter()
            .all(|name| names.contains(&name.to_string())),
        "{names:?}"
    );
}
