//! The hub's Deployment: one pod (or none while the hub sleeps) on the host network with
//! rtpmidid and the hub sidecar, placed on a sound-ready node of the hub's region.
//!
//! Why it looks the way it does:
//! - host network and `hostPort`s: RTP-MIDI is UDP on fixed ports that participants dial
//!   directly, which NAT and Services break; declaring every port as a `hostPort` makes the
//!   scheduler itself refuse two hubs with clashing ports on one node;
//! - Recreate: a rolling update would start the new pod while the old one still holds the ports;
//! - the config hash annotation: rtpmidid reads its INI only at start-up, so a new
//!   configuration must replace the pod.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec,
    PreferredSchedulingTerm, Probe, ResourceRequirements, SeccompProfile, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use midihub_api::contract::{HUB_LABEL, SIDECAR_KUBERNETES_MODE, env};
use midihub_api::rtpmidid_config::{CONTROL_SOCKET_DIR, CONTROL_SOCKET_PATH, Room};

use super::{
    CONFIG_FILE_KEY, CONFIG_MOUNT_DIR, ChildrenConfig, DeviceAccess, Parent, REGION_LABEL,
    SOUND_READY_LABEL, labels,
};

/// Pod-template annotation holding [`super::config_hash`] of the hub's ConfigMap.
pub const CONFIG_HASH_ANNOTATION: &str = "midihub.io/config-hash";
/// Name of the rtpmidid container.
pub const RTPMIDID_CONTAINER: &str = "rtpmidid";
/// Name of the hub-sidecar container.
pub const SIDECAR_CONTAINER: &str = "hub-sidecar";
/// Name of the sidecar's HTTP port (health, readiness, metrics).
pub const SIDECAR_HTTP_PORT_NAME: &str = "http";
/// User and group the containers run as with [`DeviceAccess::DevicePlugin`] (the conventional
/// "nonroot" id of distroless images).
pub const NON_ROOT_USER: i64 = 65532;
/// Units of the device plugin's resource one hub pod requests with
/// [`DeviceAccess::DevicePlugin`]: one for each of its two containers, as both open the ALSA
/// sequencer (rtpmidid for its ports, the sidecar for the wiring) and a device plugin hands a
/// device only to a container that requests it. A node takes as many hub pods as its plugin
/// grants units divided by this; most plugins grant one unit per device unless configured.
pub const DEVICE_UNITS_PER_HUB_POD: u32 = 2;
/// Units of the device resource each of the two containers requests.
const DEVICE_UNITS_PER_CONTAINER: u32 = DEVICE_UNITS_PER_HUB_POD / 2;

const CONFIG_VOLUME: &str = "config";
const CONTROL_VOLUME: &str = "control";
/// rtpmidid and the sidecar stop within a second or two; a long grace period would only keep
/// the ports (and the next pod) waiting when the hub goes to sleep or is reconfigured.
const TERMINATION_GRACE_PERIOD_SECONDS: i64 = 10;
/// Old ReplicaSets kept for `kubectl rollout undo`; every configuration change makes one.
const REVISION_HISTORY_LIMIT: i32 = 3;

/// The hub's Deployment with `replicas` pods (0 asleep, 1 awake) of `rooms`, its pod template
/// annotated with `config_hash` (see [`super::config_hash`]).
pub(super) fn deployment(
    parent: &Parent,
    rooms: &[Room],
    replicas: i32,
    preferred_node: Option<&str>,
    config: &ChildrenConfig,
    config_hash: &str,
) -> Deployment {
    Deployment {
        metadata: parent.metadata.clone(),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            revision_history_limit: Some(REVISION_HISTORY_LIMIT),
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".to_owned()),
                rolling_update: None,
            }),
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    HUB_LABEL.to_owned(),
                    parent.name.clone(),
                )])),
                match_expressions: None,
            },
            template: pod_template(parent, rooms, preferred_node, config, config_hash),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The hub's pod: labelled like the hub's children, annotated with the configuration's hash.
fn pod_template(
    parent: &Parent,
    rooms: &[Room],
    preferred_node: Option<&str>,
    config: &ChildrenConfig,
    config_hash: &str,
) -> PodTemplateSpec {
    let pod = &parent.hub.spec.pod;
    let access = &config.device_access;
    let containers = vec![
        with_settings(
            rtpmidid_container(rooms),
            pod.rtpmidid_image
                .as_deref()
                .unwrap_or(&config.rtpmidid_image),
            pod.rtpmidid_resources.as_ref(),
            access,
        ),
        with_settings(
            sidecar_container(&parent.name, sidecar_http_port(rooms)),
            pod.sidecar_image
                .as_deref()
                .unwrap_or(&config.sidecar_image),
            pod.sidecar_resources.as_ref(),
            access,
        ),
    ];
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(parent.hub)),
            annotations: Some(BTreeMap::from([(
                CONFIG_HASH_ANNOTATION.to_owned(),
                config_hash.to_owned(),
            )])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers,
            volumes: Some(volumes(parent)),
            security_context: pod_security(access),
            ..placement(parent, preferred_node)
        }),
    }
}

/// Where and how the pod runs: on the host network of a sound-ready node of the hub's region,
/// preferably `preferred_node`, with the hub's own placement settings, as the hub's
/// ServiceAccount.
fn placement(parent: &Parent, preferred_node: Option<&str>) -> PodSpec {
    let spec = &parent.hub.spec;
    let mut node_selector = spec.pod.node_selector.clone();
    node_selector.insert(SOUND_READY_LABEL.to_owned(), "true".to_owned());
    PodSpec {
        host_network: Some(true),
        // Without it a host-network pod resolves with the node's DNS, not the cluster's.
        dns_policy: Some("ClusterFirstWithHostNet".to_owned()),
        service_account_name: Some(parent.child_name()),
        node_selector: Some(node_selector),
        affinity: affinity(spec.region.as_deref(), preferred_node),
        tolerations: (!spec.pod.tolerations.is_empty()).then(|| spec.pod.tolerations.clone()),
        priority_class_name: spec.pod.priority_class_name.clone(),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_PERIOD_SECONDS),
        ..PodSpec::default()
    }
}

/// On the host network every hub on a node needs its own TCP port for the sidecar's endpoint:
/// the first room's port number, over TCP, is free by construction (the room claims it over
/// UDP only, and two hubs cannot share a node with the same UDP port).
fn sidecar_http_port(rooms: &[Room]) -> i32 {
    rooms
        .first()
        .map_or(i32::from(midihub_api::rtpmidid_config::MIN_PORT), |room| {
            i32::from(room.port)
        })
}

/// `container` with its image, the user's `resources` and what `access` asks of both
/// containers.
fn with_settings(
    container: Container,
    image: &str,
    resources: Option<&ResourceRequirements>,
    access: &DeviceAccess,
) -> Container {
    Container {
        image: Some(image.to_owned()),
        resources: container_resources(resources, access),
        security_context: Some(container_security(access)),
        ..container
    }
}

/// rtpmidid, reading its configuration from the ConfigMap and claiming every room's ports;
/// without image, resources and security ([`with_settings`]).
fn rtpmidid_container(rooms: &[Room]) -> Container {
    Container {
        name: RTPMIDID_CONTAINER.to_owned(),
        args: Some(vec![
            "--ini".to_owned(),
            format!("{CONFIG_MOUNT_DIR}/{CONFIG_FILE_KEY}"),
        ]),
        ports: Some(udp_ports(rooms)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: CONFIG_VOLUME.to_owned(),
                mount_path: CONFIG_MOUNT_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            control_socket_mount(),
        ]),
        ..Container::default()
    }
}

/// The hub sidecar in its Kubernetes mode, told its hub, pod and endpoint through the
/// contract's environment; without image, resources and security ([`with_settings`]).
fn sidecar_container(hub_name: &str, http_port: i32) -> Container {
    Container {
        name: SIDECAR_CONTAINER.to_owned(),
        args: Some(vec![SIDECAR_KUBERNETES_MODE.to_owned()]),
        env: Some(vec![
            EnvVar {
                name: env::HUB_NAME.to_owned(),
                value: Some(hub_name.to_owned()),
                value_from: None,
            },
            field_env(env::POD_NAMESPACE, "metadata.namespace"),
            field_env(env::POD_NAME, "metadata.name"),
            EnvVar {
                name: env::RTPMIDID_CONTROL_SOCKET.to_owned(),
                value: Some(CONTROL_SOCKET_PATH.to_owned()),
                value_from: None,
            },
            EnvVar {
                name: env::SIDECAR_LISTEN.to_owned(),
                value: Some(format!("0.0.0.0:{http_port}")),
                value_from: None,
            },
        ]),
        ports: Some(vec![ContainerPort {
            name: Some(SIDECAR_HTTP_PORT_NAME.to_owned()),
            container_port: http_port,
            host_port: Some(http_port),
            protocol: Some("TCP".to_owned()),
            host_ip: None,
        }]),
        liveness_probe: Some(http_probe("/healthz", 30)),
        readiness_probe: Some(http_probe("/readyz", 5)),
        volume_mounts: Some(vec![control_socket_mount()]),
        ..Container::default()
    }
}

/// rtpmidid's configuration from the hub's ConfigMap, and the directory of its control
/// socket, shared by both containers.
fn volumes(parent: &Parent) -> Vec<Volume> {
    vec![
        Volume {
            name: CONFIG_VOLUME.to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: parent.child_name(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: CONTROL_VOLUME.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ]
}

/// Control port N (`ctl-N`) and data port N+1 (`midi-N+1`) of every room, each also claimed on
/// the host. Port names hold at most 15 characters: `midi-65535` is the longest.
fn udp_ports(rooms: &[Room]) -> Vec<ContainerPort> {
    let udp_port = |name: String, port: i32| ContainerPort {
        name: Some(name),
        container_port: port,
        host_port: Some(port),
        protocol: Some("UDP".to_owned()),
        host_ip: None,
    };
    rooms
        .iter()
        .flat_map(|room| {
            let control = i32::from(room.port);
            let data = control + 1;
            [
                udp_port(format!("ctl-{control}"), control),
                udp_port(format!("midi-{data}"), data),
            ]
        })
        .collect()
}

/// A probe of the sidecar's HTTP endpoint.
fn http_probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(SIDECAR_HTTP_PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        ..Probe::default()
    }
}

fn control_socket_mount() -> VolumeMount {
    VolumeMount {
        name: CONTROL_VOLUME.to_owned(),
        mount_path: CONTROL_SOCKET_DIR.to_owned(),
        ..VolumeMount::default()
    }
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// Only nodes of `region`, where the hub has one; `preferred_node` first, where it can take the
/// pod. A preference, never a requirement: a hub whose node is full or gone runs elsewhere.
fn affinity(region: Option<&str>, preferred_node: Option<&str>) -> Option<Affinity> {
    if region.is_none() && preferred_node.is_none() {
        return None;
    }
    let required = region.map(|region| NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: REGION_LABEL.to_owned(),
                operator: "In".to_owned(),
                values: Some(vec![region.to_owned()]),
            }]),
            match_fields: None,
        }],
    });
    let preferred = preferred_node.map(|node| {
        vec![PreferredSchedulingTerm {
            weight: 100,
            preference: NodeSelectorTerm {
                match_expressions: None,
                // A node's name is a field, not a label.
                match_fields: Some(vec![NodeSelectorRequirement {
                    key: "metadata.name".to_owned(),
                    operator: "In".to_owned(),
                    values: Some(vec![node.to_owned()]),
                }]),
            },
        }]
    });
    Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: required,
            preferred_during_scheduling_ignored_during_execution: preferred,
        }),
        ..Affinity::default()
    })
}

// Both containers open the ALSA sequencer (rtpmidid for its ports, the sidecar for the wiring).
// Kubernetes cannot hand one host device to a container, and a hostPath of /dev/snd alone is
// refused by the device cgroup, so without a device plugin the containers must be privileged.
// With a device plugin the device arrives through the extended resource, and the containers
// need nothing but membership of the group owning /dev/snd/*: they run as a non-root user with
// every capability dropped and the runtime's default seccomp profile.

fn container_security(access: &DeviceAccess) -> SecurityContext {
    match access {
        DeviceAccess::Privileged => SecurityContext {
            privileged: Some(true),
            ..SecurityContext::default()
        },
        DeviceAccess::DevicePlugin { .. } => SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            run_as_non_root: Some(true),
            run_as_user: Some(NON_ROOT_USER),
            run_as_group: Some(NON_ROOT_USER),
            ..SecurityContext::default()
        },
    }
}

fn pod_security(access: &DeviceAccess) -> Option<PodSecurityContext> {
    match access {
        DeviceAccess::Privileged => None,
        DeviceAccess::DevicePlugin { audio_group, .. } => Some(PodSecurityContext {
            supplemental_groups: Some(vec![*audio_group]),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
    }
}

/// The user's resources, plus [`DEVICE_UNITS_PER_CONTAINER`] of the device resource when a
/// device plugin grants it (extended resources are requested and limited alike).
fn container_resources(
    user: Option<&ResourceRequirements>,
    access: &DeviceAccess,
) -> Option<ResourceRequirements> {
    match access {
        DeviceAccess::Privileged => user.cloned(),
        DeviceAccess::DevicePlugin { resource, .. } => {
            let mut resources = user.cloned().unwrap_or_default();
            let units = Quantity(DEVICE_UNITS_PER_CONTAINER.to_string());
            resources
                .requests
                .get_or_insert_with(BTreeMap::new)
                .insert(resource.clone(), units.clone());
            resources
                .limits
                .get_or_insert_with(BTreeMap::new)
                .insert(resource.clone(), units);
            Some(resources)
        }
    }
}

#[cfg(test)]
mod tests;
