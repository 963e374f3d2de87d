//! Helpers for tests against a real API server (the control-plane tier and the cluster e2e):
//! waiting for a condition with a bounded poll, test namespaces, and the hub facts a test reads.
//! They panic with what they last saw: they are for tests only.

#![allow(clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use midihub_api::contract::hub_selector;
use midihub_api::{MidiHub, MidiHubStatus};
use serde_json::{Value, json};

const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Polls `check` until it succeeds; after `limit`, fails the test with what the last check saw.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {limit:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// Creates namespace `name` with `labels` unless it exists; one still terminating from an
/// earlier run is waited for first.
pub async fn ensure_namespace(client: &Client, name: &str, labels: Value) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    eventually(
        &format!("the namespace {name} to be usable"),
        Duration::from_secs(120),
        || async {
            match namespaces
                .get_opt(name)
                .await
                .map_err(|error| error.to_string())?
            {
                Some(namespace) if namespace.metadata.deletion_timestamp.is_some() => {
                    Err(format!("{name} is still terminating"))
                }
                Some(_) => Ok(()),
                None => {
                    let namespace: Namespace = serde_json::from_value(json!({
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": { "name": name, "labels": labels },
                    }))
                    .expect("a Namespace");
                    namespaces
                        .create(&PostParams::default(), &namespace)
                        .await
                        .map(drop)
                        .map_err(|error| format!("creating {name}: {error}"))
                }
            }
        },
    )
    .await;
}

/// Deletes namespace `name` and everything in it (without waiting).
pub async fn delete_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.delete(name, &DeleteParams::default()).await {
        Ok(_) | Err(kube::Error::Api(_)) => {}
        Err(error) => panic!("delete namespace {name}: {error}"),
    }
}

/// A MidiHub from its name, namespace and spec (as JSON, the way users write it).
pub fn hub(namespace: &str, name: &str, spec: Value) -> MidiHub {
    serde_json::from_value(json!({
        "apiVersion": "midihub.io/v1alpha1",
        "kind": "MidiHub",
        "metadata": { "name": name, "namespace": namespace },
        "spec": spec,
    }))
    .expect("a MidiHub")
}

/// Sets `spec.suspend` with a merge patch, as `kubectl patch mh ... --type=merge` does.
pub async fn set_suspend(hubs: &Api<MidiHub>, name: &str, suspend: bool) {
    patch_spec(hubs, name, json!({ "suspend": suspend })).await;
}

/// Merges `spec` into the spec of hub `name` (a `null` removes a field), as `kubectl patch
/// --type=merge` does.
pub async fn patch_spec(hubs: &Api<MidiHub>, name: &str, spec: Value) {
    hubs.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": spec })),
    )
    .await
    .unwrap_or_else(|error| panic!("patch the spec of {name} with {spec}: {error}"));
}

/// The hub's status (empty when it has none yet).
pub async fn status_of(hubs: &Api<MidiHub>, name: &str) -> Result<MidiHubStatus, String> {
    let hub = hubs
        .get(name)
        .await
        .map_err(|error| format!("read MidiHub {name}: {error}"))?;
    Ok(hub.status.unwrap_or_default())
}

/// One line a test failure can show: phase, address, node and every condition.
pub fn describe(status: &MidiHubStatus) -> String {
    format!(
        "phase {:?}, address {:?}, node {:?}, conditions [{}]",
        status.phase,
        status.address,
        status.node,
        status
            .conditions
            .iter()
            .map(|condition| format!(
                "{}={} {}: {}",
                condition.type_, condition.status, condition.reason, condition.message
            ))
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// Waits until `accept` takes the hub's status; returns that status.
pub async fn wait_for_status(
    hubs: &Api<MidiHub>,
    name: &str,
    what: &str,
    limit: Duration,
    accept: impl Fn(&MidiHubStatus) -> bool,
) -> MidiHubStatus {
    eventually(&format!("hub {name}: {what}"), limit, || async {
        let status = status_of(hubs, name).await?;
        if accept(&status) {
            Ok(status)
        } else {
            Err(describe(&status))
        }
    })
    .await
}

/// Names and phases of the hub's pods (terminating ones included: they still hold the ports).
pub async fn hub_pods(client: &Client, namespace: &str, hub: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.list(&ListParams::default().labels(&hub_selector(hub)))
        .await
        .expect("list the hub's pods")
        .items
}
