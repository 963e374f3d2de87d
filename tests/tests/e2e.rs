//! Cluster end-to-end: one MidiHub on a REAL cluster where the chart is installed (e.g. the kind
//! cluster of `./scripts/run`, with its sound-ready worker), driven the way a user drives it:
//! it becomes Ready with an address, sleeps on `suspend: true` (its pod goes), wakes on
//! `suspend: false`, and deleting it deletes everything the operator made for it.
//!
//! Runs only when `KUBECONFIG` is set (the cluster is its current context); otherwise it prints
//! `SKIP e2e: ...` and passes without touching anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, Resource};
use midihub_api::{MidiHub, Phase};
use midihub_tests::cluster::{self, ensure_namespace, eventually, set_suspend, wait_for_status};
use serde_json::json;

/// Namespace the test's hub lives in; created when missing and deleted at the end.
const NAMESPACE: &str = "midihub-e2e";
/// The hub under test.
const HUB: &str = "e2e-hub";
/// Its rooms: clear of the example hub's 5004–5007, so both fit on one node.
const PORTS: [u16; 2] = [5104, 5106];

/// Pull (if not loaded), schedule and start the hub pod, and see the sidecar's readiness.
const READY_TIMEOUT: Duration = Duration::from_secs(240);
/// Scale to zero: the pod's grace period is 10 s.
const SLEEP_TIMEOUT: Duration = Duration::from_secs(120);
/// Garbage collection of the hub's children after the hub is deleted.
const GONE_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_hub_on_a_real_cluster_wakes_sleeps_wakes_again_and_leaves_nothing_when_deleted() {
    if std::env::var_os("KUBECONFIG").is_none() {
        println!("SKIP e2e: KUBECONFIG is not set");
        return;
    }
    let client = Client::try_default()
        .await
        .expect("a client for the cluster of KUBECONFIG's current context");
    ensure_namespace(&client, NAMESPACE, json!({})).await;
    let hubs: Api<MidiHub> = Api::namespaced(client.clone(), NAMESPACE);
    delete_leftover_hub(&hubs).await;

    let hub: MidiHub = serde_json::from_value(json!({
        "apiVersion": "midihub.io/v1alpha1",
        "kind": "MidiHub",
        "metadata": { "name": HUB, "namespace": NAMESPACE },
        // No schedule and no region: always awake, on any sound-ready node.
        "spec": { "ports": [ { "port": PORTS[0], "name": "e2e-room-a" }, { "port": PORTS[1] } ] },
    }))
    .expect("the test's MidiHub");
    hubs.create(&PostParams::default(), &hub)
        .await
        .expect("the cluster accepts the MidiHub (is the chart, with its CRD, installed?)");

    let ready = wait_until_ready(&hubs, "after creation").await;
    println!(
        "hub Ready at {} on node {}",
        ready.address,
        ready.node.as_deref().unwrap_or("?")
    );
    assert_eq!(
        hub_pods(&client).await.len(),
        1,
        "a Ready hub runs exactly one pod"
    );

    set_suspend(&hubs, HUB, true).await;
    eventually(
        "the hub to sleep: phase Sleeping and no pod",
        SLEEP_TIMEOUT,
        || async {
            let phase = phase_of(&hubs).await;
            let pods = hub_pods(&client).await;
            if phase == Some(Phase::Sleeping) && pods.is_empty() {
                Ok(())
            } else {
                Err(format!("phase {phase:?}, pods {pods:?}"))
            }
        },
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let asleep = deployments
        .get(&child_name())
        .await
        .expect("the hub's Deployment stays while it sleeps");
    assert_eq!(
        asleep.spec.and_then(|spec| spec.replicas),
        Some(0),
        "a sleeping hub's Deployment is scaled to zero"
    );

    set_suspend(&hubs, HUB, false).await;
    wait_until_ready(&hubs, "after waking").await;
    assert_eq!(
        hub_pods(&client).await.len(),
        1,
        "a woken hub runs one pod again"
    );

    hubs.delete(HUB, &DeleteParams::default())
        .await
        .expect("delete the MidiHub");
    eventually("the MidiHub to be gone", GONE_TIMEOUT, || async {
        match hubs.get_opt(HUB).await.expect("read the MidiHub") {
            None => Ok(()),
            Some(hub) => Err(format!(
                "still there, deletionTimestamp {:?}",
                hub.metadata.deletion_timestamp
            )),
        }
    })
    .await;
    // Owner references make the garbage collector delete every child with the hub.
    wait_gone::<Deployment>(&client).await;
    wait_gone::<ConfigMap>(&client).await;
    wait_gone::<ServiceAccount>(&client).await;
    wait_gone::<Role>(&client).await;
    wait_gone::<RoleBinding>(&client).await;
    eventually("the hub's pods to be gone", GONE_TIMEOUT, || async {
        let pods = hub_pods(&client).await;
        if pods.is_empty() {
            Ok(())
        } else {
            Err(format!("pods {pods:?}"))
        }
    })
    .await;

    let namespaces: Api<Namespace> = Api::all(client);
    namespaces
        .delete(NAMESPACE, &DeleteParams::default())
        .await
        .expect("delete the test namespace");
}

/// What a Ready hub reports.
struct ReadyHub {
    address: String,
    node: Option<String>,
}

/// Waits until the hub's phase is Ready and it reports an address.
async fn wait_until_ready(hubs: &Api<MidiHub>, when: &str) -> ReadyHub {
    let status = wait_for_status(
        hubs,
        HUB,
        &format!("Ready with an address {when}"),
        READY_TIMEOUT,
        |status| {
            status.phase == Some(Phase::Ready)
                && status.address.as_deref().is_some_and(|a| !a.is_empty())
        },
    )
    .await;
    ReadyHub {
        address: status.address.unwrap_or_default(),
        node: status.node,
    }
}

/// Name of each child the operator makes for the hub (`midihub-<hub>`).
fn child_name() -> String {
    format!("midihub-{HUB}")
}

async fn phase_of(hubs: &Api<MidiHub>) -> Option<Phase> {
    let hub = hubs.get(HUB).await.expect("read the MidiHub");
    hub.status.and_then(|status| status.phase)
}

/// Names and phases of the hub's pods (terminating ones included: they still hold the ports).
async fn hub_pods(client: &Client) -> Vec<String> {
    cluster::hub_pods(client, NAMESPACE, HUB)
        .await
        .into_iter()
        .map(|pod| {
            let phase = pod.status.and_then(|status| status.phase);
            format!(
                "{} ({})",
                pod.metadata.name.unwrap_or_default(),
                phase.unwrap_or_default()
            )
        })
        .collect()
}

/// Waits until the hub's child of kind `K` is gone.
async fn wait_gone<K>(client: &Client)
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), NAMESPACE);
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let name = child_name();
    eventually(
        &format!("the {kind} {name} to be deleted with its hub"),
        GONE_TIMEOUT,
        || async {
            match api.get_opt(&name).await.expect("read the hub's child") {
                None => Ok(()),
                Some(_) => Err(format!("{kind} {name} still exists")),
            }
        },
    )
    .await;
}

/// Deletes a hub an earlier, failed run left behind, and waits until it is gone.
async fn delete_leftover_hub(hubs: &Api<MidiHub>) {
    if hubs.get_opt(HUB).await.expect("read the MidiHub").is_none() {
        return;
    }
    println!("deleting the MidiHub {NAMESPACE}/{HUB} left by an earlier run");
    hubs.delete(HUB, &DeleteParams::default())
        .await
        .expect("delete the leftover MidiHub");
    eventually("the leftover MidiHub to be gone", GONE_TIMEOUT, || async {
        match hubs.get_opt(HUB).await.expect("read the MidiHub") {
            None => Ok(()),
            Some(_) => Err("still there".to_owned()),
        }
    })
    .await;
}
