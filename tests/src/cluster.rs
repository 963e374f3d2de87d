//! Helpers for tests against a real API server (the control-plane tier and the cluster e2e):
//! waiting for a condition with a bounded poll, test namespaces, and the hub facts a test reads.
//! They panic with what they last saw: they are for tests only.

#![allow(clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use midihub_api::contract::hub_selector;
use midihub_api::{MidiHub, MidiHubStatus};
use serde_json::{Value, json};

const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Polls `check` until it succeeds; after `limit`, fails the test with what the last check saw.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    eventually_explained(what, limit, check, || async { String::new() }).await
}

/// [`eventually`], and on failure also what `explain` finds then (what stands behind the
/// last thing seen, read only once it is needed).
async fn eventually_explained<T, F, Fut, E, EFut>(
    what: &str,
    limit: Duration,
    mut check: F,
    explain: E,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
    E: FnOnce() -> EFut,
    EFut: Future<Output = String>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                let behind = explain().await;
                panic!("timed out after {limit:?} waiting for {what}; last seen: {seen}{behind}")
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
    eventually_explained(
        &format!("hub {name}: {what}"),
        limit,
        || async {
            let status = status_of(hubs, name).await?;
            if accept(&status) {
                Ok(status)
            } else {
                Err(describe(&status))
            }
        },
        || describe_pods(hubs, name),
    )
    .await
}

/// The hub's pods as the API server has them, and their nodes' readiness, for a failure to
/// show whether the operator or the cluster lags behind: a pod Kubernetes marked not ready
/// (its node missed heartbeats) looks to the operator like one still starting.
async fn describe_pods(hubs: &Api<MidiHub>, name: &str) -> String {
    let namespace = hubs.namespace().unwrap_or("default").to_string();
    let client = Client::from(hubs.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let listed = match list_hub_pods(&client, &namespace, name).await {
        Ok(pods) => pods,
        Err(error) => return format!("; its pods: cannot list them: {error}"),
    };
    if listed.is_empty() {
        return "; it has no pods".into();
    }
    let mut lines = Vec::new();
    for pod in listed {
        let status = pod.status.unwrap_or_default();
        let conditions = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .map(|c| condition_text(&c.type_, &c.status, c.reason, c.last_transition_time))
            .collect::<Vec<_>>()
            .join(", ");
        let node = match pod.spec.and_then(|spec| spec.node_name) {
            None => "on no node".to_string(),
            Some(node) => match nodes.get(&node).await {
                Err(error) => format!("on node {node}: {error}"),
                Ok(found) => found
                    .status
                    .and_then(|status| status.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "Ready")
                    .map_or_else(
                        || format!("on node {node}, which reports no Ready condition"),
                        |c| {
                            let ready = condition_text(
                                &c.type_,
                                &c.status,
                                c.reason,
                                c.last_transition_time,
                            );
                            format!("on node {node}, {ready}")
                        },
                    ),
            },
        };
        lines.push(format!(
            "pod {} phase {}{} [{conditions}] {node}",
            pod.metadata.name.unwrap_or_default(),
            status.phase.as_deref().unwrap_or("unknown"),
            if pod.metadata.deletion_timestamp.is_some() {
                " (being deleted)"
            } else {
                ""
            },
        ));
    }
    format!("; its pods: {}", lines.join(" | "))
}

/// `Ready=False SomeReason since 2026-…`.
fn condition_text(
    type_: &str,
    status: &str,
    reason: Option<String>,
    since: Option<Time>,
) -> String {
    let reason = reason
        .map(|reason| format!(" {reason}"))
        .unwrap_or_default();
    let since = since
        .map(|time| format!(" since {}", time.0))
        .unwrap_or_default();
    format!("{type_}={status}{reason}{since}")
}

/// Names and phases of the hub's pods (terminating ones included: they still hold the ports).
pub async fn hub_pods(client: &Client, namespace: &str, hub: &str) -> Vec<Pod> {
    list_hub_pods(client, namespace, hub)
        .await
        .expect("list the hub's pods")
}

/// [`hub_pods`], the error returned: a failure's explanation must not hide the failure.
async fn list_hub_pods(client: &Client, namespace: &str, hub: &str) -> kube::Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&hub_selector(hub)))
        .await?;
    Ok(list.items)
}
