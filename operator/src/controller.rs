//! The reconcile loop: for each MidiHub, decide → build its children → apply → observe → report.
//!
//! Each hub is reconciled on its own: a hub that fails (API error, bad spec) backs off and
//! retries without touching the others. The loop requeues a hub exactly when its schedule next
//! changes what it should do; it never polls.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use midihub_api::{MidiHub, MidiHubStatus, Phase, contract};
use midihub_runtime::Chain;

use crate::announcement;
use crate::apply::{apply_if_changed, clear_sidecar_status};
use crate::children::{Children, ChildrenConfig, REGION_LABEL, SOUND_READY_LABEL, children};
use crate::clock::Clock;
use crate::error::ReconcileError;
use crate::health::WatchHealth;
use crate::metrics::Metrics;
use crate::schedule;
use crate::status::{self, Intent, Observed};
use crate::watches;

/// How long a failing hub waits before its next try: doubling from `first` up to `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after `failures` consecutive failures (the first failure waits `first`).
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(16);
        self.first.saturating_mul(1 << exponent).min(self.max)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

/// What the reconciler needs, shared by all reconciles.
pub struct Context {
    client: Client,
    clock: Arc<dyn Clock>,
    children: ChildrenConfig,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    backoff: Backoff,
    /// Consecutive failures per hub, for the back-off; forgotten on success.
    failures: Mutex<HashMap<ObjectRef<MidiHub>, u32>>,
}

impl Context {
    /// A context for reconciling hubs with `client`, reading time from `clock`.
    pub fn new(
        client: Client,
        clock: Arc<dyn Clock>,
        children: ChildrenConfig,
        metrics: Arc<Metrics>,
        instance: Option<String>,
        backoff: Backoff,
    ) -> Self {
        let reporter = Reporter {
            controller: contract::OPERATOR_FIELD_MANAGER.to_string(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            clock,
            children,
            metrics,
            backoff,
            failures: Mutex::default(),
        }
    }

    fn record_failure(&self, hub: ObjectRef<MidiHub>) -> u32 {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(hub).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    fn forget_failures(&self, hub: &ObjectRef<MidiHub>) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(hub);
    }
}

/// The controller for MidiHubs in all namespaces, watching the hubs, their children and their
/// pods, each watch recovering on its own from API errors and reporting to `health` (see
/// [`watches`]). Exposed so the caller can read its cache of hubs (for metrics) before running
/// it.
pub fn controller(client: &Client, health: &Arc<WatchHealth>) -> Controller<MidiHub> {
    // Every child carries the managed-by label: the operator watches only its own objects.
    let managed = contract::managed_by_selector();
    let owned = || watcher::Config::default().labels(&managed);
    let (hubs, writer) = reflector::store();
    let hub_changes = watches::watch(
        "MidiHub",
        Api::<MidiHub>::all(client.clone()),
        watcher::Config::default(),
        health.clone(),
    )
    .reflect(writer)
    .applied_objects();
    Controller::for_stream(hub_changes, hubs)
        .owns_stream(watches::metadata::<Deployment>(client, owned(), health))
        .owns_stream(watches::metadata::<ConfigMap>(client, owned(), health))
        .owns_stream(watches::metadata::<ServiceAccount>(client, owned(), health))
        .owns_stream(watches::metadata::<Role>(client, owned(), health))
        .owns_stream(watches::metadata::<RoleBinding>(client, owned(), health))
        .watches_stream(watches::metadata::<Pod>(client, owned(), health), |pod| {
            let hub = pod.labels().get(contract::HUB_LABEL)?.clone();
            Some(ObjectRef::new(&hub).within(&pod.namespace()?))
        })
        .trigger_backoff(watches::NoSharedBackoff)
}

/// Runs `controller` until `shutdown` completes, then lets in-flight reconciles finish.
pub async fn run(
    controller: Controller<MidiHub>,
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((hub, _)) => tracing::debug!(hub = %hub, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile did not complete"),
            }
        })
        .await;
}

async fn reconcile(hub: Arc<MidiHub>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let _timer = context.metrics.reconcile_started();
    let result = reconcile_hub(&hub, &context).await;
    if result.is_ok() {
        context.forget_failures(&ObjectRef::from(hub.as_ref()));
    }
    result
}

fn error_policy(hub: Arc<MidiHub>, error: &ReconcileError, context: Arc<Context>) -> Action {
    context.metrics.reconcile_failed(error);
    let failures = context.record_failure(ObjectRef::from(hub.as_ref()));
    let delay = context.backoff.delay(failures);
    tracing::warn!(hub = %ObjectRef::from(hub.as_ref()), error = %Chain(error), failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile_hub(hub: &MidiHub, context: &Context) -> Result<Action, ReconcileError> {
    let namespace = hub.namespace().ok_or(ReconcileError::MissingField {
        kind: "MidiHub",
        field: "metadata.namespace",
    })?;
    let name = hub.name_any();
    let now = context.clock.now();
    // A hub being deleted takes its children with it (owner references): applying them again
    // would only race the garbage collector (and, in a namespace being deleted, be refused).
    if hub.metadata.deletion_timestamp.is_some() {
        tracing::debug!(hub = %ObjectRef::from(hub), "being deleted; nothing to do");
        return Ok(Action::await_change());
    }

    // Decide: awake or asleep, and when that changes.
    let (intent, recheck_at) = match schedule::decide(&hub.spec, now) {
        Ok(decision) => {
            let recheck_at = decision.recheck_at;
            (Intent::Decided(decision), recheck_at)
        }
        Err(error) => (
            Intent::Invalid {
                reason: error.reason(),
                message: error.to_string(),
            },
            None,
        ),
    };

    // Build and apply the children; a hub that cannot have them is the user's to fix.
    let (intent, deployment) = match children(hub, &context.children, intent.awake()) {
        Ok(children) => {
            let deployment =
                apply_children(hub, &namespace, children, intent.awake(), context).await?;
            (intent, Some(deployment))
        }
        Err(error) => (
            Intent::Invalid {
                reason: contract::reasons::awake::INVALID_CONFIGURATION,
                message: error.to_string(),
            },
            None,
        ),
    };

    // Observe the pod and its node, and report.
    let observed = observe(hub, &namespace, &intent, deployment, context).await?;
    let desired = status::operator_status(hub, &intent, &observed, now);
    if status::status_changed(hub.status.as_ref(), &desired) {
        let api = Api::<MidiHub>::namespaced(context.client.clone(), &namespace);
        api.patch_status(
            &name,
            &PatchParams::apply(contract::OPERATOR_FIELD_MANAGER).force(),
            &contract::status_patch(&desired),
        )
        .await?;
        announce(hub, hub.status.as_ref(), &desired, context).await;
    }
    if status::sidecar_status_is_stale(hub, &observed) {
        let api = Api::<MidiHub>::namespaced(context.client.clone(), &namespace);
        clear_sidecar_status(&api, &name).await?;
        tracing::info!(hub = %ObjectRef::from(hub), "no hub pod runs: cleared the participants its sidecar had published");
    }

    Ok(match recheck_at {
        Some(at) => {
            let wait = at.duration_since(now);
            Action::requeue(
                Duration::try_from(wait)
                    .unwrap_or_default()
                    .max(Duration::from_millis(100)),
            )
        }
        None => Action::await_change(),
    })
}

/// Applies the hub's children; returns its Deployment as the cluster holds it (with the
/// status Kubernetes reports, such as a pod it failed to create).
async fn apply_children(
    hub: &MidiHub,
    namespace: &str,
    children: Children,
    awake: bool,
    context: &Context,
) -> Result<Deployment, ReconcileError> {
    let client = &context.client;
    let Children {
        service_account,
        role,
        role_binding,
        config_map,
        deployment,
    } = children;
    // In this order: the pod needs its ServiceAccount and ConfigMap when it is created.
    let written = [
        apply_if_changed(
            &Api::namespaced(client.clone(), namespace),
            &service_account,
        )
        .await?
        .written,
        apply_if_changed(&Api::namespaced(client.clone(), namespace), &role)
            .await?
            .written,
        apply_if_changed(&Api::namespaced(client.clone(), namespace), &role_binding)
            .await?
            .written,
        apply_if_changed(&Api::namespaced(client.clone(), namespace), &config_map)
            .await?
            .written,
    ]
    .into_iter()
    .filter(|&written| written)
    .count();
    let deployment =
        apply_if_changed(&Api::namespaced(client.clone(), namespace), &deployment).await?;
    let written = written + usize::from(deployment.written);
    if written > 0 {
        tracing::info!(hub = %ObjectRef::from(hub), written, awake, "applied hub objects");
    }
    Ok(deployment.object)
}

async fn observe(
    hub: &MidiHub,
    namespace: &str,
    intent: &Intent,
    deployment: Option<Deployment>,
    context: &Context,
) -> Result<Observed, ReconcileError> {
    // A sleeping hub's pods matter only while its status may still list participants.
    let sidecar_fields = hub
        .status
        .as_ref()
        .is_some_and(contract::has_sidecar_fields);
    if !intent.awake() && !sidecar_fields {
        return Ok(Observed {
            deployment,
            ..Observed::default()
        });
    }
    let client = &context.client;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&contract::hub_selector(&hub.name_any())))
        .await?;
    let hub_pods = Some(pods.items.len());
    if !intent.awake() {
        return Ok(Observed {
            deployment,
            hub_pods,
            ..Observed::default()
        });
    }
    // With the Recreate strategy an old pod may still be terminating: the live one counts.
    let pod = pods
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .max_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
    let node_name = pod
        .as_ref()
        .and_then(|pod| pod.spec.as_ref())
        .and_then(|spec| spec.node_name.clone());
    let nodes = Api::<Node>::all(client.clone());
    let (node, eligible_nodes) = match node_name {
        Some(node_name) => (nodes.get_opt(&node_name).await?, None),
        None => {
            let mut selector = format!("{SOUND_READY_LABEL}=true");
            if let Some(region) = &hub.spec.region {
                selector.push_str(&format!(",{REGION_LABEL}={region}"));
            }
            let eligible = nodes
                .list_metadata(&ListParams::default().labels(&selector))
                .await?;
            (None, Some(eligible.items.len()))
        }
    };
    Ok(Observed {
        deployment,
        pod,
        hub_pods,
        node,
        eligible_nodes,
    })
}

/// Publishes the Event that the change from `previous` to `current` deserves, if any (see
/// [`announcement::event_for`]). An Event that cannot be published is logged; it does not fail the
/// reconcile.
async fn announce(
    hub: &MidiHub,
    previous: Option<&MidiHubStatus>,
    current: &MidiHubStatus,
    context: &Context,
) {
    let Some(event) = announcement::event_for(previous, current) else {
        return;
    };
    tracing::info!(
        hub = %ObjectRef::from(hub),
        phase = current.phase.map_or("", Phase::as_str),
        reason = %event.reason,
        "hub phase changed"
    );
    if let Err(error) = context.recorder.publish(&event, &hub.object_ref(&())).await {
        tracing::warn!(hub = %ObjectRef::from(hub), %error, "cannot publish event");
    }
}
