//! What the operator reports in a hub's status: phase, conditions, address and the next
//! transition, derived from the schedule decision and the observed pod and node. Pure: the
//! observations are passed in, and nothing here talks to the API.

use k8s_openapi::api::apps::v1::DeploymentStatus;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use midihub_api::contract::{
    AWAKE_CONDITION, PUBLIC_ADDRESS_CONDITION, READY_CONDITION, condition, reasons,
};
use midihub_api::{MidiHub, MidiHubStatus, Phase};

use crate::address;
use crate::schedule::Decision;

/// The condition types the operator writes.
const OPERATOR_CONDITIONS: [&str; 3] = [AWAKE_CONDITION, READY_CONDITION, PUBLIC_ADDRESS_CONDITION];

/// What the operator wants for a hub.
#[derive(Clone, Debug)]
pub enum Intent {
    /// The spec could be evaluated: awake or asleep as decided.
    Decided(Decision),
    /// The spec cannot be acted on (unknown time zone, a configuration rtpmidid would refuse):
    /// the hub sleeps until the user fixes it.
    Invalid {
        reason: &'static str,
        message: String,
    },
}

impl Intent {
    /// Whether a hub pod should run.
    pub fn awake(&self) -> bool {
        matches!(self, Intent::Decided(decision) if decision.awake)
    }
}

/// What the operator saw of the hub's Deployment, pod and node.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The status of the hub's Deployment as the cluster holds it.
    pub deployment_status: Option<DeploymentStatus>,
    /// The hub's pod, if one exists and is not being deleted.
    pub pod: Option<Pod>,
    /// How many pods of the hub exist, those being deleted included; `None` when they were not
    /// looked at (a sleeping hub whose status lists no participants).
    pub hub_pods: Option<usize>,
    /// The node the pod is bound to.
    pub node: Option<Node>,
    /// How many nodes could take the hub (sound-ready, in its region); `None` when not checked.
    pub eligible_nodes: Option<usize>,
}

/// The state of a hub's pod, as far as the phase is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PodState {
    Absent,
    Unschedulable { message: String },
    Starting { message: String },
    Running,
    Failing { reason: String, message: String },
}

/// Waiting reasons that mean a container will not come up without help.
const FAILING_WAIT_REASONS: [&str; 6] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

fn pod_state(pod: Option<&Pod>) -> PodState {
    let Some(pod) = pod else {
        return PodState::Absent;
    };
    let Some(status) = pod.status.as_ref() else {
        return PodState::Starting {
            message: "the hub pod was created and waits for the scheduler".into(),
        };
    };
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let condition = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
    if let Some(scheduled) = condition("PodScheduled")
        && scheduled.status == "False"
        && scheduled.reason.as_deref() == Some("Unschedulable")
    {
        return PodState::Unschedulable {
            message: scheduled.message.clone().unwrap_or_default(),
        };
    }
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if phase == "Failed" || phase == "Succeeded" {
        return PodState::Failing {
            reason: reasons::ready::POD_TERMINATED.into(),
            message: format!(
                "the hub pod ended ({phase}): {}",
                status.message.as_deref().unwrap_or("no message")
            ),
        };
    }
    for container in status.container_statuses.as_deref().unwrap_or_default() {
        let waiting = container
            .state
            .as_ref()
            .and_then(|state| state.waiting.as_ref());
        if let Some(waiting) = waiting
            && let Some(reason) = waiting.reason.as_deref()
            && FAILING_WAIT_REASONS.contains(&reason)
        {
            return PodState::Failing {
                reason: reason.to_string(),
                message: format!(
                    "container {} is not running ({reason}): {}",
                    container.name,
                    waiting.message.as_deref().unwrap_or("no message")
                ),
            };
        }
    }
    match condition("Ready") {
        Some(ready) if ready.status == "True" => PodState::Running,
        _ if pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some() =>
        {
            PodState::Starting {
                message: "the hub pod is placed and its containers are starting".into(),
            }
        }
        _ => PodState::Starting {
            message: "the hub pod waits for the scheduler".into(),
        },
    }
}

/// Kubernetes' words when it failed to create the hub's pod: the ReplicaSet controller records
/// a refused pod creation (Pod Security, a quota, …) as a `FailedCreate` Event and as the
/// `ReplicaFailure` condition, which the Deployment carries on. Nothing else shows it: no pod
/// exists to look at.
fn pod_creation_failure(deployment: Option<&DeploymentStatus>) -> Option<&str> {
    deployment?
        .conditions
        .as_deref()?
        .iter()
        .find(|condition| {
            condition.type_ == "ReplicaFailure"
                && condition.status == "True"
                // Not FailedDelete: a pod the ReplicaSet cannot delete does not block the hub.
                && condition.reason.as_deref() == Some("FailedCreate")
        })
        .map(|condition| condition.message.as_deref().unwrap_or("no message"))
}

/// A hub whose pod Kubernetes refuses to create. Pod Security is singled out because the fix
/// is always the same: hub pods use the host network and host ports (and, without a device
/// plugin, privileged containers), which only the `privileged` level allows.
fn blocked(hub: &MidiHub, failure: &str) -> Readiness {
    let namespace = hub.metadata.namespace.as_deref().unwrap_or("<namespace>");
    let deployment = crate::children::child_name(hub);
    let retry = format!(
        "Kubernetes retries with a growing back-off; `kubectl -n {namespace} rollout restart deployment {deployment}` retries at once"
    );
    if failure.contains("violates PodSecurity") {
        Readiness {
            phase: Phase::Blocked,
            ready: false,
            reason: reasons::ready::POD_SECURITY.into(),
            message: format!(
                "the Pod Security level of namespace {namespace} refuses the hub pod: hub pods need the host network, host ports and privileged containers (or a device plugin's /dev/snd), which only the privileged level allows. \
                 Label the namespace: `kubectl label namespace {namespace} --overwrite pod-security.kubernetes.io/enforce=privileged` ({retry}). \
                 Kubernetes said: {failure}"
            ),
        }
    } else {
        Readiness {
            phase: Phase::Blocked,
            ready: false,
            reason: reasons::ready::POD_CREATION_FAILED.into(),
            message: format!(
                "Kubernetes refuses to create the hub pod; once the cause is fixed, {retry}. Kubernetes said: {failure}"
            ),
        }
    }
}

/// The rooms' control ports as one string, for the Ports column.
pub fn ports_summary(hub: &MidiHub) -> String {
    hub.spec
        .ports
        .iter()
        .map(|port| port.port.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

struct Readiness {
    phase: Phase,
    ready: bool,
    reason: String,
    message: String,
}

fn readiness(hub: &MidiHub, intent: &Intent, observed: &Observed) -> Readiness {
    let region = hub.spec.region.as_deref();
    match intent {
        Intent::Invalid { message, .. } => Readiness {
            phase: Phase::Invalid,
            ready: false,
            reason: reasons::ready::INVALID_SPEC.into(),
            message: format!("the hub cannot run until its spec is fixed: {message}"),
        },
        Intent::Decided(decision) if !decision.awake => Readiness {
            phase: Phase::Sleeping,
            ready: false,
            reason: reasons::ready::SLEEPING.into(),
            message: format!("the hub sleeps: {}", decision.message()),
        },
        Intent::Decided(_) => {
            let pod = pod_state(observed.pod.as_ref());
            if pod == PodState::Absent
                && let Some(failure) = pod_creation_failure(observed.deployment_status.as_ref())
            {
                return blocked(hub, failure);
            }
            readiness_of_pod(pod, observed, region)
        }
    }
}

/// Readiness of an awake hub whose pod was created (or is about to be).
fn readiness_of_pod(pod: PodState, observed: &Observed, region: Option<&str>) -> Readiness {
    match pod {
        PodState::Running => Readiness {
            phase: Phase::Ready,
            ready: true,
            reason: reasons::ready::HUB_RUNNING.into(),
            message: "rtpmidid and the hub sidecar are running".into(),
        },
        PodState::Failing { reason, message } => Readiness {
            phase: Phase::Degraded,
            ready: false,
            reason,
            message,
        },
        _ if observed.eligible_nodes == Some(0) => Readiness {
            phase: Phase::Unschedulable,
            ready: false,
            reason: reasons::ready::NO_ELIGIBLE_NODE.into(),
            message: match region {
                Some(region) => format!(
                    "no node is labelled {}=true in region {region} ({}={region}): prepare a node with the sound modules, or change spec.region",
                    crate::children::SOUND_READY_LABEL,
                    crate::children::REGION_LABEL
                ),
                None => format!(
                    "no node is labelled {}=true: load snd-dummy and snd-seq on a node and label it",
                    crate::children::SOUND_READY_LABEL
                ),
            },
        },
        PodState::Unschedulable { message } => Readiness {
            phase: Phase::Unschedulable,
            ready: false,
            // The scheduler's own words name the cause; taken host ports are the one a
            // user of this product meets most (another hub or program on the same ports).
            reason: if message.contains("free ports") {
                reasons::ready::PORTS_IN_USE.into()
            } else {
                reasons::ready::UNSCHEDULABLE.into()
            },
            message: format!("no node can take the hub pod: {message}"),
        },
        PodState::Starting { message } => Readiness {
            phase: Phase::Starting,
            ready: false,
            reason: reasons::ready::STARTING.into(),
            message,
        },
        PodState::Absent => Readiness {
            phase: Phase::Starting,
            ready: false,
            reason: reasons::ready::STARTING.into(),
            message: "the hub pod is being created".into(),
        },
    }
}

/// Whether the hub's status still shows what its sidecar published (participants, their count,
/// latency, the `Wiring` condition) although no pod of the hub exists: after a hard kill or a
/// lost node the sidecar never said goodbye, and the status must not claim anyone is
/// connected. A pod being deleted still counts, so that a stopping sidecar's own last word is
/// not raced. See [`crate::apply::clear_sidecar_status`] for how the fields are cleared.
pub fn sidecar_status_is_stale(hub: &MidiHub, observed: &Observed) -> bool {
    observed.hub_pods == Some(0)
        && hub
            .status
            .as_ref()
            .is_some_and(midihub_api::contract::has_sidecar_fields)
}

/// The status fields the operator owns, for a hub given the operator's intent and what it saw.
/// Fields written by the hub sidecar (participants, latency) are left out.
pub fn operator_status(
    hub: &MidiHub,
    intent: &Intent,
    observed: &Observed,
    now: jiff::Timestamp,
) -> MidiHubStatus {
    let generation = hub.metadata.generation;
    let previous = hub
        .status
        .as_ref()
        .map(|status| status.conditions.as_slice())
        .unwrap_or_default();
    let readiness = readiness(hub, intent, observed);
    let (awake, awake_reason, awake_message) = match intent {
        Intent::Decided(decision) => (decision.awake, decision.reason.as_str(), decision.message()),
        Intent::Invalid { reason, message } => (false, *reason, message.clone()),
    };
    let next = match intent {
        Intent::Decided(decision) => decision.next.as_ref(),
        Intent::Invalid { .. } => None,
    };
    let placed = intent.awake() && readiness.phase != Phase::Unschedulable;
    let node_name = observed
        .pod
        .as_ref()
        .and_then(|pod| pod.spec.as_ref())
        .and_then(|spec| spec.node_name.clone())
        .filter(|_| placed);
    let hub_address = node_name
        .as_ref()
        .and(observed.node.as_ref())
        .map(address::hub_address);
    let mut conditions = vec![
        condition(
            AWAKE_CONDITION,
            awake,
            awake_reason,
            awake_message,
            generation,
            previous,
            now,
        ),
        condition(
            READY_CONDITION,
            readiness.ready,
            &readiness.reason,
            readiness.message,
            generation,
            previous,
            now,
        ),
    ];
    // Only while the hub has a node: a hub without one has no address to speak of.
    if let Some(hub_address) = &hub_address {
        conditions.push(condition(
            PUBLIC_ADDRESS_CONDITION,
            hub_address.public,
            hub_address.reason,
            hub_address.message.clone(),
            generation,
            previous,
            now,
        ));
    }
    MidiHubStatus {
        phase: Some(readiness.phase),
        conditions,
        observed_generation: generation,
        address: hub_address.and_then(|hub_address| hub_address.address),
        node: node_name,
        ports: Some(ports_summary(hub)),
        replicas: Some(i32::from(intent.awake())),
        next_transition: next.map(|transition| transition.summary.clone()),
        next_transition_time: next.map(|transition| Time(transition.at)),
        overtime: match intent {
            Intent::Decided(decision) => decision.overtime.clone(),
            Intent::Invalid { .. } => None,
        },
        preferred_node: preferred_node(hub, intent.awake()),
        ..MidiHubStatus::default()
    }
}

/// The node the hub's pod should prefer: the one it last ran on, so that its address stays
/// the same from one session to the next. It is taken over when the hub goes to sleep and
/// kept while it is awake: changing it changes the pod's template, which would restart a
/// running hub (and drop everyone) for nothing but a preference.
pub fn preferred_node(hub: &MidiHub, awake: bool) -> Option<String> {
    let status = hub.status.as_ref()?;
    if awake {
        status.preferred_node.clone()
    } else {
        status
            .node
            .clone()
            .or_else(|| status.preferred_node.clone())
    }
}

/// The operator's fields of a status with the transition times blanked, for comparing two
/// statuses by what they say rather than when they were written.
pub fn operator_view(status: &MidiHubStatus) -> MidiHubStatus {
    let epoch = Time(jiff::Timestamp::UNIX_EPOCH);
    MidiHubStatus {
        phase: status.phase,
        conditions: {
            // By type: the API server may order the list-map's entries of two writers as it likes.
            let mut conditions: Vec<Condition> = status
                .conditions
                .iter()
                .filter(|c| OPERATOR_CONDITIONS.contains(&c.type_.as_str()))
                .map(|c| Condition {
                    last_transition_time: epoch.clone(),
                    ..c.clone()
                })
                .collect();
            conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
            conditions
        },
        observed_generation: status.observed_generation,
        address: status.address.clone(),
        node: status.node.clone(),
        ports: status.ports.clone(),
        replicas: status.replicas,
        next_transition: status.next_transition.clone(),
        next_transition_time: status.next_transition_time.clone(),
        overtime: status.overtime.clone(),
        preferred_node: status.preferred_node.clone(),
        ..MidiHubStatus::default()
    }
}

/// Whether writing `desired` would change what the hub's status says.
pub fn status_changed(current: Option<&MidiHubStatus>, desired: &MidiHubStatus) -> bool {
    let current = current.map(operator_view).unwrap_or_default();
    current != operator_view(desired)
}

/// The reason of a condition in a status, if present.
pub fn condition_reason<'a>(status: Option<&'a MidiHubStatus>, type_: &str) -> Option<&'a str> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.as_str())
}

#[cfg(test)]
mod tests;
