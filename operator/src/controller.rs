//! The reconcile loop: for each MidiHub, decide → build its children → apply → observe → report.
//!
//! Each hub is reconciled on its own: a hub that fails (API error, bad spec) backs off and
//! retries without touching the others. The loop requeues a hub exactly when its schedule next
//! changes what it should do; it never polls.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DeploymentStatus;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PatchParams};
use kube::runtime::controller::{self, Action};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use midihub_api::{MidiHub, MidiHubStatus, Phase, contract};
use midihub_runtime::Chain;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::apply::{Applied, RecentWrites, WriteKey, apply_if_changed, clear_sidecar_status};
use crate::children::{Children, ChildrenConfig, children};
use crate::clock::Clock;
use crate::error::ReconcileError;
use crate::health::WatchHealth;
use crate::metrics::Metrics;
use crate::metrics::ReconcileResult;
use crate::status::{self, Intent, Observed};
use crate::stores::{Cached, Stores, keep, trim_node, trim_pod};
use crate::watches;
use crate::{address, announcement, overtime, schedule};

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
    /// The caches of children, pods and nodes that reconciles read.
    stores: Stores,
    /// What was written lately that the caches may not show yet.
    writes: RecentWrites,
}

impl Context {
    /// A context for reconciling hubs with `client`, reading time from `clock` and the cluster
    /// from `stores` (those of [`controller`]).
    pub fn new(
        client: Client,
        clock: Arc<dyn Clock>,
        children: ChildrenConfig,
        metrics: Arc<Metrics>,
        instance: Option<String>,
        backoff: Backoff,
        stores: Stores,
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
            stores,
            writes: RecentWrites::default(),
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

/// How soon a hub is tried again when it came up before the caches were filled.
const CACHES_FILLING_RETRY: Duration = Duration::from_millis(200);

/// How many hubs are reconciled at once unless the operator is told otherwise: enough to keep
/// the API server busy while hundreds of hubs are created at once, few enough that a burst of
/// reconciles does not make every one of them wait on the API server's limits.
pub const DEFAULT_CONCURRENCY: u16 = 16;

/// The controller for MidiHubs in all namespaces, and the caches it fills (see [`Stores`]): it
/// watches the hubs, their children, their pods and the nodes, each watch recovering on its own
/// from API errors and reporting to `health` (see [`watches`]), and reconciles at most
/// `concurrency` hubs at once. Exposed so the caller can read its cache of hubs (for metrics)
/// before running it.
///
/// A hub is reconciled when something the operator decides from changes: not when only its
/// sidecar's status fields (participants, latency) do ([`operator_inputs`]).
pub fn controller(
    client: &Client,
    health: &Arc<WatchHealth>,
    concurrency: u16,
) -> (Controller<MidiHub>, Stores) {
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
    .modify(|hub| hub.managed_fields_mut().clear())
    .reflect(writer)
    .applied_objects()
    .predicate_filter(operator_inputs, PredicateConfig::default());
    let (deployments, deployment_changes) = watches::cached(client, owned(), health, keep);
    let (config_maps, config_map_changes) = watches::cached(client, owned(), health, keep);
    let (service_accounts, service_account_changes) =
        watches::cached(client, owned(), health, keep);
    let (roles, role_changes) = watches::cached(client, owned(), health, keep);
    let (role_bindings, role_binding_changes) = watches::cached(client, owned(), health, keep);
    let (pods, pod_changes) = watches::cached(client, owned(), health, trim_pod);
    let (nodes, node_changes) =
        watches::cached(client, watcher::Config::default(), health, trim_node);
    let stores = Stores {
        deployments,
        config_maps,
        service_accounts,
        roles,
        role_bindings,
        pods,
        nodes,
    };
    let on_node = stores.clone();
    let controller = Controller::for_stream(hub_changes, hubs)
        .with_config(controller::Config::default().concurrency(concurrency))
        .owns_stream(deployment_changes)
        .owns_stream(config_map_changes)
        .owns_stream(service_account_changes)
        .owns_stream(role_changes)
        .owns_stream(role_binding_changes)
        .watches_stream(pod_changes, |pod| {
            let hub = pod.labels().get(contract::HUB_LABEL)?.clone();
            Some(ObjectRef::new(&hub).within(&pod.namespace()?))
        })
        // A node's address reaches the status of the hubs on it; its heartbeats do not matter.
        .watches_stream(
            node_changes.predicate_filter(address_inputs, PredicateConfig::default()),
            move |node| on_node.hubs_on(&node.name_any()),
        )
        .trigger_backoff(watches::NoSharedBackoff);
    (controller, stores)
}

/// What of a hub the operator decides from: its spec (by generation), its labels and
/// annotations (a touch by hand asks for a reconcile), whether it is being deleted, and its
/// status apart from what the sidecar writes there, except whether the sidecar
/// wrote anything at all (stale participants of a hub without a pod are cleared) and, while the
/// hub is in overtime, whether anyone plays. Otherwise a change of participants or latency does
/// not wake a reconcile.
pub fn operator_inputs(hub: &MidiHub) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    hub.metadata.generation.hash(&mut hasher);
    hub.labels().hash(&mut hasher);
    hub.annotations().hash(&mut hasher);
    hub.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    if let Some(status) = &hub.status {
        serde_json::to_string(&status::operator_view(status))
            .unwrap_or_default()
            .hash(&mut hasher);
        contract::has_sidecar_fields(status).hash(&mut hasher);
        // In overtime, whether anyone still plays decides when the hub sleeps.
        if status.overtime.is_some() {
            contract::occupied(status).hash(&mut hasher);
        }
    }
    Some(hasher.finish())
}

/// What of a node a hub's status is made from: its labels (region, sound-ready), the address
/// annotation and its addresses.
fn address_inputs(node: &Node) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    node.labels().hash(&mut hasher);
    node.annotations()
        .get(address::PUBLIC_ADDRESS_ANNOTATION)
        .hash(&mut hasher);
    if let Some(addresses) = node.status.as_ref().and_then(|s| s.addresses.as_ref()) {
        for address in addresses {
            (&address.type_, &address.address).hash(&mut hasher);
        }
    }
    Some(hasher.finish())
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
    // Until every cache has been filled once, nothing can be judged by it: try again shortly
    // (only while the operator starts; not counted as a reconcile).
    if !context.stores.ready()? {
        return Ok(Action::requeue(CACHES_FILLING_RETRY));
    }
    let timer = context.metrics.reconcile_started();
    let result = reconcile_hub(&hub, &context).await;
    if let Ok((_, wrote)) = &result {
        timer.finished(if *wrote {
            ReconcileResult::Changed
        } else {
            ReconcileResult::Unchanged
        });
        context.forget_failures(&ObjectRef::from(hub.as_ref()));
    }
    result.map(|(action, _)| action)
}

fn error_policy(hub: Arc<MidiHub>, error: &ReconcileError, context: Arc<Context>) -> Action {
    context.metrics.reconcile_failed(error);
    let failures = context.record_failure(ObjectRef::from(hub.as_ref()));
    let delay = context.backoff.delay(failures);
    tracing::warn!(hub = %ObjectRef::from(hub.as_ref()), error = %Chain(error), failures, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Reconciles one hub; with the action, whether it wrote anything.
async fn reconcile_hub(hub: &MidiHub, context: &Context) -> Result<(Action, bool), ReconcileError> {
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
        return Ok((Action::await_change(), false));
    }

    // Decide: awake or asleep, and when that changes; the schedule first, then whether a room
    // still playing keeps the hub awake past its window.
    let decided = schedule::decide(&hub.spec, now)
        .map_err(|error| (error.reason(), error.to_string()))
        .and_then(|decision| {
            overtime::apply(decision, &hub.spec, hub.status.as_ref(), now)
                .map_err(|error| (error.reason(), error.to_string()))
        });
    let (intent, recheck_at) = match decided {
        Ok(decision) => {
            let recheck_at = decision.recheck_at;
            (Intent::Decided(decision), recheck_at)
        }
        Err((reason, message)) => (Intent::Invalid { reason, message }, None),
    };

    // Build and apply the children; a hub that cannot have them is the user's to fix.
    let mut wrote = false;
    let preferred_node = status::preferred_node(hub, intent.awake());
    let (intent, deployment) = match children(
        hub,
        &context.children,
        intent.awake(),
        preferred_node.as_deref(),
    ) {
        Ok(children) => {
            let (deployment, written) =
                apply_children(hub, &namespace, children, intent.awake(), context).await?;
            wrote |= written > 0;
            (intent, deployment)
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
    let observed = observe(hub, &namespace, &intent, deployment, &context.stores);
    let desired = status::operator_status(hub, &intent, &observed, now);
    if status::status_changed(hub.status.as_ref(), &desired) {
        let key = WriteKey {
            kind: "MidiHub/status",
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let view = serde_json::to_value(status::operator_view(&desired)).map_err(|source| {
            ReconcileError::Serialize {
                kind: "MidiHub",
                source,
            }
        })?;
        let version = hub.resource_version();
        if !context
            .writes
            .awaiting_cache(&key, &view, version.as_deref())
        {
            let api = Api::<MidiHub>::namespaced(context.client.clone(), &namespace);
            api.patch_status(
                &name,
                &PatchParams::apply(contract::OPERATOR_FIELD_MANAGER).force(),
                &contract::status_patch(&desired),
            )
            .await?;
            context.writes.wrote(key, &view, version);
            wrote = true;
            announce(hub, hub.status.as_ref(), &desired, context).await;
        }
    }
    if status::sidecar_status_is_stale(hub, &observed) {
        let api = Api::<MidiHub>::namespaced(context.client.clone(), &namespace);
        clear_sidecar_status(&api, &name).await?;
        wrote = true;
        tracing::info!(hub = %ObjectRef::from(hub), "no hub pod runs: cleared the participants its sidecar had published");
    }

    let action = match recheck_at {
        Some(at) => {
            let wait = at.duration_since(now);
            Action::requeue(
                Duration::try_from(wait)
                    .unwrap_or_default()
                    .max(Duration::from_millis(100)),
            )
        }
        None => Action::await_change(),
    };
    Ok((action, wrote))
}

/// Applies the hub's children that the cache shows differently; returns the status of its
/// Deployment as the cluster holds it (Kubernetes reports there, for instance, a pod it failed
/// to create) and how many children were written.
async fn apply_children(
    hub: &MidiHub,
    namespace: &str,
    children: Children,
    awake: bool,
    context: &Context,
) -> Result<(Option<DeploymentStatus>, usize), ReconcileError> {
    let Children {
        service_account,
        role,
        role_binding,
        config_map,
        deployment,
    } = children;
    // In this order: the pod needs its ServiceAccount and ConfigMap when it is created.
    let written = [
        apply_child(namespace, &service_account, context)
            .await?
            .written,
        apply_child(namespace, &role, context).await?.written,
        apply_child(namespace, &role_binding, context)
            .await?
            .written,
        apply_child(namespace, &config_map, context).await?.written,
    ]
    .into_iter()
    .filter(|&written| written)
    .count();
    let deployment = apply_child(namespace, &deployment, context).await?;
    let written = written + usize::from(deployment.written);
    if written > 0 {
        tracing::info!(hub = %ObjectRef::from(hub), written, awake, "applied hub objects");
    }
    Ok((deployment.object.status, written))
}

async fn apply_child<K>(
    namespace: &str,
    desired: &K,
    context: &Context,
) -> Result<Applied<K::Stored>, ReconcileError>
where
    K: Cached + k8s_openapi::Resource + Serialize,
    K::Stored: Serialize + DeserializeOwned + Debug,
{
    let cached = context.stores.child::<K>(namespace, &desired.name_any());
    apply_if_changed(
        &Api::namespaced(context.client.clone(), namespace),
        cached,
        desired,
        &context.writes,
    )
    .await
}

/// What the operator sees of the hub's pod and node, from its caches.
fn observe(
    hub: &MidiHub,
    namespace: &str,
    intent: &Intent,
    deployment_status: Option<DeploymentStatus>,
    stores: &Stores,
) -> Observed {
    let pods = stores.hub_pods(namespace, &hub.name_any());
    let hub_pods = Some(pods.len());
    if !intent.awake() {
        return Observed {
            deployment_status,
            hub_pods,
            ..Observed::default()
        };
    }
    // With the Recreate strategy an old pod may still be terminating: the live one counts.
    let pod = pods
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
    let (node, eligible_nodes) = match node_name {
        Some(node_name) => (
            stores.node(&node_name).map(|node| node.as_ref().clone()),
            None,
        ),
        None => (
            None,
            Some(stores.eligible_nodes(hub.spec.region.as_deref())),
        ),
    };
    Observed {
        deployment_status,
        pod: pod.map(|pod| pod.as_ref().clone()),
        hub_pods,
        node,
        eligible_nodes,
    }
}

/// Publishes the Events that the change from `previous` to `current` deserves, if any (see
/// [`announcement`]). An Event that cannot be published is logged; it does not fail the
/// reconcile.
async fn announce(
    hub: &MidiHub,
    previous: Option<&MidiHubStatus>,
    current: &MidiHubStatus,
    context: &Context,
) {
    let phase = announcement::event_for(previous, current);
    if let Some(event) = &phase {
        tracing::info!(
            hub = %ObjectRef::from(hub),
            phase = current.phase.map_or("", Phase::as_str),
            reason = %event.reason,
            "hub phase changed"
        );
    }
    let overtime = announcement::overtime_event(previous, current);
    if let Some(event) = &overtime {
        tracing::info!(hub = %ObjectRef::from(hub), reason = %event.reason, note = event.note.as_deref().unwrap_or_default(), "hub overtime");
    }
    // The overtime's end before the phase it leads to.
    for event in overtime.iter().chain(&phase) {
        if let Err(error) = context.recorder.publish(event, &hub.object_ref(&())).await {
            tracing::warn!(hub = %ObjectRef::from(hub), %error, "cannot publish event");
        }
    }
}
