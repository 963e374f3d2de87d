//! What the operator reports in a hub's status: phase, conditions, address and the next
//! transition, derived from the schedule decision and the observed pod and node. Pure: the
//! observations are passed in, and nothing here talks to the API.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use midihub_api::{MidiHub, MidiHubStatus, Phase};

use crate::address;
use crate::schedule::Decision;

pub use midihub_api::ownership::{
    AWAKE_CONDITION as AWAKE, PUBLIC_ADDRESS_CONDITION as PUBLIC_ADDRESS, READY_CONDITION as READY,
};

/// The condition types the operator writes.
const OPERATOR_CONDITIONS: [&str; 3] = [AWAKE, READY, PUBLIC_ADDRESS];

/// Reasons of the `Ready` condition the operator sets itself (a failing container's own waiting
/// reason, such as `CrashLoopBackOff`, is passed through as it is).
pub mod reasons {
    /// The hub's pod runs and is ready.
    pub const HUB_RUNNING: &str = "HubRunning";
    /// The hub sleeps (outside its schedule, or suspended).
    pub const SLEEPING: &str = "Sleeping";
    /// The hub's spec cannot be acted on.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The hub's pod is being created, scheduled or started.
    pub const STARTING: &str = "Starting";
    /// No node is sound-ready in the hub's region.
    pub const NO_ELIGIBLE_NODE: &str = "NoEligibleNode";
    /// Every node that could take the hub has its ports taken.
    pub const PORTS_IN_USE: &str = "PortsInUse";
    /// The scheduler cannot place the hub's pod for another reason.
    pub const UNSCHEDULABLE: &str = "Unschedulable";
    /// The hub's pod ended.
    pub const POD_TERMINATED: &str = "PodTerminated";
    /// The namespace's Pod Security level refuses the hub's pod.
    pub const POD_SECURITY: &str = "PodSecurity";
    /// Kubernetes refuses to create the hub's pod for another reason (a quota, a missing
    /// PriorityClass, an admission webhook, …).
    pub const POD_CREATION_FAILED: &str = "PodCreationFailed";
}

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
    /// The hub's Deployment as the cluster holds it, status included.
    pub deployment: Option<Deployment>,
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
            reason: reasons::POD_TERMINATED.into(),
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
fn pod_creation_failure(deployment: Option<&Deployment>) -> Option<&str> {
    deployment?
        .status
        .as_ref()?
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
fn blocked(hub: &MidiHub, deployment: Option<&Deployment>, failure: &str) -> Readiness {
    let namespace = hub.metadata.namespace.as_deref().unwrap_or("<namespace>");
    let deployment = deployment
        .and_then(|deployment| deployment.metadata.name.clone())
        .unwrap_or_else(|| crate::build::child_name(hub));
    let retry = format!(
        "Kubernetes retries with a growing back-off; `kubectl -n {namespace} rollout restart deployment {deployment}` retries at once"
    );
    if failure.contains("violates PodSecurity") {
        Readiness {
            phase: Phase::Blocked,
            ready: false,
            reason: reasons::POD_SECURITY.into(),
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
            reason: reasons::POD_CREATION_FAILED.into(),
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
            reason: reasons::INVALID_SPEC.into(),
            message: format!("the hub cannot run until its spec is fixed: {message}"),
        },
        Intent::Decided(decision) if !decision.awake => Readiness {
            phase: Phase::Sleeping,
            ready: false,
            reason: reasons::SLEEPING.into(),
            message: format!("the hub sleeps: {}", decision.message()),
        },
        Intent::Decided(_) => {
            let pod = pod_state(observed.pod.as_ref());
            if pod == PodState::Absent
                && let Some(failure) = pod_creation_failure(observed.deployment.as_ref())
            {
                return blocked(hub, observed.deployment.as_ref(), failure);
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
            reason: reasons::HUB_RUNNING.into(),
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
            reason: reasons::NO_ELIGIBLE_NODE.into(),
            message: match region {
                Some(region) => format!(
                    "no node is labelled {}=true in region {region} ({}={region}): prepare a node with the sound modules, or change spec.region",
                    crate::build::SOUND_READY_LABEL,
                    crate::build::REGION_LABEL
                ),
                None => format!(
                    "no node is labelled {}=true: load snd-dummy and snd-seq on a node and label it",
                    crate::build::SOUND_READY_LABEL
                ),
            },
        },
        PodState::Unschedulable { message } => Readiness {
            phase: Phase::Unschedulable,
            ready: false,
            // The scheduler's own words name the cause; taken host ports are the one a
            // user of this product meets most (another hub or program on the same ports).
            reason: if message.contains("free ports") {
                reasons::PORTS_IN_USE.into()
            } else {
                reasons::UNSCHEDULABLE.into()
            },
            message: format!("no node can take the hub pod: {message}"),
        },
        PodState::Starting { message } => Readiness {
            phase: Phase::Starting,
            ready: false,
            reason: reasons::STARTING.into(),
            message,
        },
        PodState::Absent => Readiness {
            phase: Phase::Starting,
            ready: false,
            reason: reasons::STARTING.into(),
            message: "the hub pod is being created".into(),
        },
    }
}

fn condition(
    type_: &str,
    ready: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
    now: &Time,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    // The transition time moves only when the condition's status does.
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time,
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
            .is_some_and(midihub_api::ownership::has_sidecar_fields)
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
    let now = Time(now);
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
            AWAKE,
            awake,
            awake_reason,
            awake_message,
            generation,
            previous,
            &now,
        ),
        condition(
            READY,
            readiness.ready,
            &readiness.reason,
            readiness.message,
            generation,
            previous,
            &now,
        ),
    ];
    // Only while the hub has a node: a hub without one has no address to speak of.
    if let Some(hub_address) = &hub_address {
        conditions.push(condition(
            PUBLIC_ADDRESS,
            hub_address.public,
            hub_address.reason,
            hub_address.message.clone(),
            generation,
            previous,
            &now,
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
        ..MidiHubStatus::default()
    }
}

/// The operator's fields of a status with the transition times blanked, for comparing two
/// statuses by what they say rather than when they were written.
fn operator_view(status: &MidiHubStatus) -> MidiHubStatus {
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
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schedule::{AwakeReason, Decision};

    fn hub(status: Option<serde_json::Value>) -> MidiHub {
        serde_json::from_value(json!({
            "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
            "metadata": {"name": "jam", "namespace": "default", "generation": 3},
            "spec": {"ports": [{"port": 5004}, {"port": 5006}], "region": "eu-central-1"},
            "status": status,
        }))
        .unwrap()
    }

    fn awake() -> Intent {
        Intent::Decided(Decision {
            awake: true,
            reason: AwakeReason::AlwaysOn,
            next: None,
            recheck_at: None,
        })
    }

    fn pod(value: serde_json::Value) -> Option<Pod> {
        Some(serde_json::from_value(value).unwrap())
    }

    fn node() -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "node-a"},
            "status": {"addresses": [
                {"type": "Hostname", "address": "node-a"},
                {"type": "InternalIP", "address": "10.0.0.7"},
                {"type": "ExternalIP", "address": "203.0.113.7"}]}
        }))
        .unwrap()
    }

    fn now() -> jiff::Timestamp {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_ready_pod_makes_the_hub_ready_at_its_nodes_external_address() {
        let observed = Observed {
            pod: pod(json!({
                "spec": {"nodeName": "node-a", "containers": []},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
            })),
            node: Some(node()),
            eligible_nodes: None,
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &awake(), &observed, now());
        assert_eq!(status.phase, Some(Phase::Ready));
        assert_eq!(status.address.as_deref(), Some("203.0.113.7"));
        let public = status
            .conditions
            .iter()
            .find(|c| c.type_ == PUBLIC_ADDRESS)
            .unwrap();
        assert_eq!(
            (public.status.as_str(), public.reason.as_str()),
            ("True", address::reasons::EXTERNAL_IP)
        );
        assert_eq!(status.node.as_deref(), Some("node-a"));
        assert_eq!(status.ports.as_deref(), Some("5004,5006"));
        assert_eq!(status.replicas, Some(1));
        assert_eq!(status.observed_generation, Some(3));
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
    }

    #[test]
    fn a_hub_on_a_node_with_only_an_internal_ip_says_it_may_not_be_reachable() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "node-a"},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.7"}]}
        }))
        .unwrap();
        let observed = Observed {
            pod: pod(json!({
                "spec": {"nodeName": "node-a", "containers": []},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
            })),
            node: Some(node),
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &awake(), &observed, now());
        assert_eq!(
            status.phase,
            Some(Phase::Ready),
            "reachability is not readiness"
        );
        assert_eq!(status.address.as_deref(), Some("10.0.0.7"));
        let public = status
            .conditions
            .iter()
            .find(|c| c.type_ == PUBLIC_ADDRESS)
            .unwrap();
        assert_eq!(
            (public.status.as_str(), public.reason.as_str()),
            ("False", address::reasons::INTERNAL_IP_ONLY)
        );
    }

    #[test]
    fn a_hub_without_a_node_has_no_address_condition() {
        let status = operator_status(&hub(None), &awake(), &Observed::default(), now());
        assert!(
            status.conditions.iter().all(|c| c.type_ != PUBLIC_ADDRESS),
            "{:?}",
            status.conditions
        );
    }

    #[test]
    fn taken_host_ports_are_reported_as_such_with_the_schedulers_words() {
        let message = "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports.";
        let observed = Observed {
            pod: pod(json!({
                "spec": {"containers": []},
                "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
                    "status": "False", "reason": "Unschedulable", "message": message}]}
            })),
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &awake(), &observed, now());
        assert_eq!(status.phase, Some(Phase::Unschedulable));
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.reason, "PortsInUse");
        assert!(ready.message.contains(message));
        assert_eq!(status.address, None);
    }

    #[test]
    fn no_sound_ready_node_in_the_region_is_unschedulable_and_names_the_region() {
        let observed = Observed {
            eligible_nodes: Some(0),
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &awake(), &observed, now());
        assert_eq!(status.phase, Some(Phase::Unschedulable));
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.reason, "NoEligibleNode");
        assert!(ready.message.contains("eu-central-1"), "{}", ready.message);
    }

    #[test]
    fn a_crash_looping_container_degrades_the_hub() {
        let observed = Observed {
            pod: pod(json!({
                "spec": {"nodeName": "node-a", "containers": []},
                "status": {"phase": "Running", "containerStatuses": [{
                    "name": "rtpmidid", "image": "i", "imageID": "", "ready": false,
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]}
            })),
            node: Some(node()),
            eligible_nodes: None,
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &awake(), &observed, now());
        assert_eq!(status.phase, Some(Phase::Degraded));
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.reason, "CrashLoopBackOff");
        assert!(ready.message.contains("rtpmidid"));
    }

    /// The hub's Deployment as the deployment controller reports a refused pod creation.
    fn deployment_with_replica_failure(message: &str) -> Option<Deployment> {
        Some(
            serde_json::from_value(json!({
                "metadata": {"name": "midihub-jam", "namespace": "default"},
                "status": {"conditions": [
                    {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                    {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                     "message": message}]}
            }))
            .unwrap(),
        )
    }

    const POD_SECURITY_REFUSAL: &str = r#"pods "midihub-jam-6d4cf56db6-x7k2p" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), hostPort (container "rtpmidid" uses hostPorts 5004, 5005, 5006, 5007), privileged (containers "rtpmidid", "hub-sidecar" must not set securityContext.privileged=true)"#;

    #[test]
    fn a_namespace_that_enforces_baseline_blocks_the_hub_and_names_the_label_that_fixes_it() {
        let observed = Observed {
            deployment: deployment_with_replica_failure(POD_SECURITY_REFUSAL),
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &awake(), &observed, now());
        assert_eq!(status.phase, Some(Phase::Blocked));
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", reasons::POD_SECURITY)
        );
        for words in [
            "kubectl label namespace default --overwrite pod-security.kubernetes.io/enforce=privileged",
            "host network, host ports and privileged containers",
            "kubectl -n default rollout restart deployment midihub-jam",
            POD_SECURITY_REFUSAL,
        ] {
            assert!(
                ready.message.contains(words),
                "{words:?} in {}",
                ready.message
            );
        }
    }

    #[test]
    fn any_other_refused_pod_creation_blocks_the_hub_in_kubernetes_words() {
        for refusal in [
            r#"pods "midihub-jam-6d4cf56db6-x7k2p" is forbidden: exceeded quota: hubs, requested: pods=1, used: pods=4, limited: pods=4"#,
            r#"pods "midihub-jam-6d4cf56db6-x7k2p" is forbidden: no PriorityClass with name midi-realtime was found"#,
        ] {
            let observed = Observed {
                deployment: deployment_with_replica_failure(refusal),
                ..Observed::default()
            };
            let status = operator_status(&hub(None), &awake(), &observed, now());
            assert_eq!(status.phase, Some(Phase::Blocked));
            let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
            assert_eq!(ready.reason, reasons::POD_CREATION_FAILED);
            assert!(ready.message.contains(refusal), "{}", ready.message);
        }
    }

    #[test]
    fn a_pod_that_exists_tells_more_than_an_earlier_replica_failure() {
        let observed = Observed {
            deployment: deployment_with_replica_failure(POD_SECURITY_REFUSAL),
            pod: pod(json!({"spec": {"containers": []}, "status": {"phase": "Pending"}})),
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &awake(), &observed, now());
        assert_eq!(status.phase, Some(Phase::Starting));
    }

    #[test]
    fn a_pod_the_replica_set_cannot_delete_does_not_block_the_hub() {
        let mut deployment = deployment_with_replica_failure("pods \"old\" is forbidden").unwrap();
        if let Some(conditions) = deployment
            .status
            .as_mut()
            .and_then(|status| status.conditions.as_mut())
        {
            for condition in conditions {
                condition.reason = Some("FailedDelete".to_owned());
            }
        }
        let observed = Observed {
            deployment: Some(deployment),
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &awake(), &observed, now());
        assert_eq!(status.phase, Some(Phase::Starting));
    }

    #[test]
    fn a_sleeping_hub_is_not_blocked() {
        let asleep = Intent::Decided(Decision {
            awake: false,
            reason: AwakeReason::Suspended,
            next: None,
            recheck_at: None,
        });
        let observed = Observed {
            deployment: deployment_with_replica_failure(POD_SECURITY_REFUSAL),
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &asleep, &observed, now());
        assert_eq!(status.phase, Some(Phase::Sleeping));
    }

    #[test]
    fn participants_published_by_a_sidecar_whose_pod_is_gone_are_stale() {
        let left_behind = hub(Some(json!({
            "phase": "Sleeping",
            "participants": [{"port": 5004, "room": "jam-5004", "name": "Alice",
                              "remoteAddress": "203.0.113.10:5004"}],
            "participantCount": 1,
            "latency": "avg 4.4ms max 4.4ms",
        })));
        let no_pod = Observed {
            hub_pods: Some(0),
            ..Observed::default()
        };
        assert!(sidecar_status_is_stale(&left_behind, &no_pod));

        let stopping_pod = Observed {
            hub_pods: Some(1),
            ..Observed::default()
        };
        assert!(
            !sidecar_status_is_stale(&left_behind, &stopping_pod),
            "a pod being deleted may still publish its sidecar's last word"
        );
        let pods_not_looked_at = Observed::default();
        assert!(!sidecar_status_is_stale(&left_behind, &pods_not_looked_at));
    }

    #[test]
    fn a_status_without_the_sidecars_fields_needs_no_clearing() {
        let clean = hub(Some(json!({"phase": "Sleeping"})));
        let no_pod = Observed {
            hub_pods: Some(0),
            ..Observed::default()
        };
        assert!(!sidecar_status_is_stale(&clean, &no_pod));
        assert!(!sidecar_status_is_stale(&hub(None), &no_pod));
    }

    #[test]
    fn an_invalid_spec_sleeps_and_says_why() {
        let intent = Intent::Invalid {
            reason: "UnknownTimeZone",
            message: "unknown time zone \"Mars/Olympus\"".into(),
        };
        let status = operator_status(&hub(None), &intent, &Observed::default(), now());
        assert_eq!(status.phase, Some(Phase::Invalid));
        assert_eq!(status.replicas, Some(0));
        let awake = status.conditions.iter().find(|c| c.type_ == AWAKE).unwrap();
        assert_eq!(
            (awake.status.as_str(), awake.reason.as_str()),
            ("False", "UnknownTimeZone")
        );
    }

    #[test]
    fn the_same_status_written_later_is_no_change_and_keeps_its_transition_times() {
        let first = operator_status(&hub(None), &awake(), &Observed::default(), now());
        let existing = hub(Some(serde_json::to_value(&first).unwrap()));
        let later: jiff::Timestamp = "2026-11-25T13:00:00Z".parse().unwrap();
        let second = operator_status(&existing, &awake(), &Observed::default(), later);
        assert!(!status_changed(existing.status.as_ref(), &second));
        assert_eq!(first.conditions, second.conditions, "transition times stay");
    }

    #[test]
    fn the_sidecars_fields_do_not_make_a_change() {
        let mine = operator_status(&hub(None), &awake(), &Observed::default(), now());
        let mut current = mine.clone();
        current.participant_count = Some(2);
        current.latency = Some("avg 12.0ms".into());
        assert!(!status_changed(Some(&current), &mine));
    }

    #[test]
    fn a_new_phase_is_a_change_and_moves_the_transition_time_of_the_flipped_condition() {
        let asleep = Intent::Decided(Decision {
            awake: false,
            reason: AwakeReason::Suspended,
            next: None,
            recheck_at: None,
        });
        let first = operator_status(&hub(None), &awake(), &Observed::default(), now());
        let existing = hub(Some(serde_json::to_value(&first).unwrap()));
        let later: jiff::Timestamp = "2026-11-25T13:00:00Z".parse().unwrap();
        let second = operator_status(&existing, &asleep, &Observed::default(), later);
        assert!(status_changed(existing.status.as_ref(), &second));
        assert_eq!(second.phase, Some(Phase::Sleeping));
        let awake_condition = second.conditions.iter().find(|c| c.type_ == AWAKE).unwrap();
        assert_eq!(awake_condition.last_transition_time, Time(later));
        let ready_condition = second.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            ready_condition.last_transition_time,
            Time(now()),
            "Ready was False before too"
        );
    }
}
