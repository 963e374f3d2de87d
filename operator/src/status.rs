//! What the operator reports in a hub's status: phase, conditions, address and the next
//! transition, derived from the schedule decision and the observed pod and node. Pure: the
//! observations are passed in, and nothing here talks to the API.

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use midihub_api::{MidiHub, MidiHubStatus, Phase};

use crate::schedule::Decision;

/// Condition type: whether the hub should run now, and why.
pub const AWAKE: &str = "Awake";
/// Condition type: whether the hub runs and accepts participants, and why not.
pub const READY: &str = "Ready";

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

/// What the operator saw of the hub's pod and node.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The hub's pod, if one exists and is not being deleted.
    pub pod: Option<Pod>,
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
            reason: "PodTerminated".into(),
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

/// The address participants connect to: the node's external IP, else its internal IP.
pub fn node_address(node: &Node) -> Option<String> {
    let addresses = node.status.as_ref()?.addresses.as_deref()?;
    ["ExternalIP", "InternalIP"].iter().find_map(|wanted| {
        addresses
            .iter()
            .find(|address| address.type_ == *wanted)
            .map(|address| address.address.clone())
    })
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
            reason: "InvalidSpec".into(),
            message: format!("the hub cannot run until its spec is fixed: {message}"),
        },
        Intent::Decided(decision) if !decision.awake => Readiness {
            phase: Phase::Sleeping,
            ready: false,
            reason: "Sleeping".into(),
            message: format!("the hub sleeps: {}", decision.message()),
        },
        Intent::Decided(_) => match pod_state(observed.pod.as_ref()) {
            PodState::Running => Readiness {
                phase: Phase::Ready,
                ready: true,
                reason: "HubRunning".into(),
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
                reason: "NoEligibleNode".into(),
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
                    "PortsInUse".into()
                } else {
                    "Unschedulable".into()
                },
                message: format!("no node can take the hub pod: {message}"),
            },
            PodState::Starting { message } => Readiness {
                phase: Phase::Starting,
                ready: false,
                reason: "Starting".into(),
                message,
            },
            PodState::Absent => Readiness {
                phase: Phase::Starting,
                ready: false,
                reason: "Starting".into(),
                message: "the hub pod is being created".into(),
            },
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
    MidiHubStatus {
        phase: Some(readiness.phase),
        conditions: vec![
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
        ],
        observed_generation: generation,
        address: node_name
            .as_ref()
            .and(observed.node.as_ref())
            .and_then(node_address),
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
        conditions: status
            .conditions
            .iter()
            .filter(|c| c.type_ == AWAKE || c.type_ == READY)
            .map(|c| Condition {
                last_transition_time: epoch.clone(),
                ..c.clone()
            })
            .collect(),
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
