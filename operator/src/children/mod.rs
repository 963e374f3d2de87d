//! A hub's children: every object the operator applies for one MidiHub (its sidecar's
//! ServiceAccount, Role and RoleBinding, the rtpmidid ConfigMap and the Deployment), built by
//! [`children`] in one pure function. No I/O.
//!
//! The hub is checked once (a name usable as a label value, a namespace, a uid, rooms rtpmidid
//! accepts); every child then carries the hub's namespace, the hub's labels and a controller
//! owner reference to the hub, so deleting the hub deletes its children and the controller is
//! woken by their changes. The objects are applied with server-side apply under
//! [`OPERATOR_FIELD_MANAGER`].

mod config_map;
mod deployment;
mod rbac;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use midihub_api::MidiHub;
use midihub_api::contract::{HUB_LABEL, MANAGED_BY_LABEL, OPERATOR_FIELD_MANAGER};
use midihub_api::rtpmidid_config::{ConfigError, RtpmididConfig};

pub use config_map::{CONFIG_FILE_KEY, CONFIG_MOUNT_DIR, config_hash};
pub use deployment::{
    CONFIG_HASH_ANNOTATION, DEVICE_UNITS_PER_HUB_POD, NON_ROOT_USER, RTPMIDID_CONTAINER,
    SIDECAR_CONTAINER,
};

/// Node label (value `"true"`) of nodes prepared for hubs: the dummy sound card and the ALSA
/// sequencer are loaded.
pub const SOUND_READY_LABEL: &str = "midihub.io/sound-ready";
/// Node label a hub's `region` is matched against.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";

/// Longest label value; the hub's name is one.
const MAX_LABEL_VALUE_CHARS: usize = 63;

/// How the hub's containers reach the host's ALSA sequencer (`/dev/snd/seq`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceAccess {
    /// The containers run privileged. Kubernetes has no field that hands one host device to a
    /// container, and a `hostPath` of `/dev/snd` alone is refused by the device cgroup, so
    /// privilege is the way that works on every cluster.
    Privileged,
    /// A device plugin on the node grants `/dev/snd` as the extended resource `resource`; the
    /// containers run as a non-root user in the supplementary group `audio_group` (the group
    /// that owns the device nodes, 29 on Debian) without any privilege.
    DevicePlugin { resource: String, audio_group: i64 },
}

/// Operator-wide settings of every hub's children.
#[derive(Clone, Debug)]
pub struct ChildrenConfig {
    /// rtpmidid image used when a hub does not name its own.
    pub rtpmidid_image: String,
    /// hub-sidecar image used when a hub does not name its own.
    pub sidecar_image: String,
    /// How the containers reach the ALSA sequencer.
    pub device_access: DeviceAccess,
}

/// A hub that cannot have children: the user's to fix (or, for a hub not read from the API,
/// the caller's).
#[derive(Debug, thiserror::Error)]
pub enum ChildrenError {
    #[error("the MidiHub has no name: children can only be built for a hub read from the API")]
    MissingName,
    #[error(
        "MidiHub {name} has no uid: children can only be built for a hub read from the API, because their owner reference needs it"
    )]
    MissingUid { name: String },
    #[error(
        "MidiHub {name} has no namespace: children can only be built for a hub read from the API"
    )]
    MissingNamespace { name: String },
    #[error(
        "MidiHub name {name:?} has {length} characters, but it is used as a label value, which holds at most 63: recreate the hub under a shorter name"
    )]
    NameTooLong { name: String, length: usize },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Every object a hub owns, as the operator wants it.
#[derive(Clone, Debug)]
pub struct Children {
    /// The identity the hub's pod runs as.
    pub service_account: ServiceAccount,
    /// The sidecar's rights on this hub.
    pub role: Role,
    /// Gives the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
    /// rtpmidid's configuration.
    pub config_map: ConfigMap,
    /// The hub's pod (none while it sleeps).
    pub deployment: Deployment,
}

/// The children of `hub`, its Deployment with one pod if `awake` and none otherwise, a pod that
/// prefers `preferred_node` where it can run there.
pub fn children(
    hub: &MidiHub,
    config: &ChildrenConfig,
    awake: bool,
    preferred_node: Option<&str>,
) -> Result<Children, ChildrenError> {
    let parent = Parent::of(hub)?;
    let rtpmidid = RtpmididConfig::for_hub(&parent.name, &hub.spec.ports)?;
    let config_map = config_map::config_map(&parent, &rtpmidid)?;
    let deployment = deployment::deployment(
        &parent,
        &rtpmidid.rooms,
        i32::from(awake),
        preferred_node,
        config,
        &config_hash(&config_map),
    );
    Ok(Children {
        service_account: rbac::service_account(&parent),
        role: rbac::role(&parent),
        role_binding: rbac::role_binding(&parent),
        config_map,
        deployment,
    })
}

/// Name of the hub's Deployment, ConfigMap, ServiceAccount, Role and RoleBinding.
pub fn child_name(hub: &MidiHub) -> String {
    format!("midihub-{}", hub.name_any())
}

/// Labels of every child and of the hub's pod.
pub fn labels(hub: &MidiHub) -> BTreeMap<String, String> {
    let hub_name = hub.name_any();
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "midihub".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), hub_name.clone()),
        (
            MANAGED_BY_LABEL.to_owned(),
            OPERATOR_FIELD_MANAGER.to_owned(),
        ),
        (HUB_LABEL.to_owned(), hub_name),
    ])
}

/// A hub checked to be able to have children, with what every child takes from it.
struct Parent<'a> {
    hub: &'a MidiHub,
    /// The hub's name, usable as a label value.
    name: String,
    /// Metadata of every child: its name, the hub's namespace and labels, and the owner
    /// reference.
    metadata: ObjectMeta,
}

impl<'a> Parent<'a> {
    fn of(hub: &'a MidiHub) -> Result<Self, ChildrenError> {
        let name = hub.meta().name.clone().ok_or(ChildrenError::MissingName)?;
        if name.is_empty() {
            return Err(ChildrenError::MissingName);
        }
        let length = name.chars().count();
        if length > MAX_LABEL_VALUE_CHARS {
            return Err(ChildrenError::NameTooLong { name, length });
        }
        let namespace = hub
            .meta()
            .namespace
            .clone()
            .ok_or_else(|| ChildrenError::MissingNamespace { name: name.clone() })?;
        let owner = hub
            .controller_owner_ref(&())
            .ok_or_else(|| ChildrenError::MissingUid { name: name.clone() })?;
        let metadata = ObjectMeta {
            name: Some(child_name(hub)),
            namespace: Some(namespace),
            labels: Some(labels(hub)),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        };
        Ok(Parent {
            hub,
            name,
            metadata,
        })
    }

    /// The name every child of the hub has.
    fn child_name(&self) -> String {
        child_name(self.hub)
    }
}

/// Example hubs shared by the children's tests.
#[cfg(test)]
pub(crate) mod examples {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use midihub_api::{HubPodSettings, HubPort, MidiHub, MidiHubSpec};

    use super::{ChildrenConfig, DeviceAccess};

    pub const UID: &str = "6f1c2f9e-2d6c-4a55-9d38-2b7a5a0f1c11";

    /// Hub `berlin` in namespace `music`: rooms 5004 ("Main room") and 5006 (default name),
    /// region `eu-central`, a toleration, an extra node selector, a priority class and
    /// resources for both containers.
    pub fn hub() -> MidiHub {
        let mut hub = MidiHub::new(
            "berlin",
            MidiHubSpec {
                ports: vec![
                    HubPort {
                        port: 5004,
                        name: Some("Main room".to_owned()),
                        allow: Vec::new(),
                    },
                    HubPort {
                        port: 5006,
                        name: None,
                        allow: Vec::new(),
                    },
                ],
                region: Some("eu-central".to_owned()),
                schedule: None,
                suspend: false,
                wake_until: None,
                overtime: None,
                listed: false,
                pod: HubPodSettings {
                    rtpmidid_image: None,
                    sidecar_image: None,
                    rtpmidid_resources: Some(resources("100m", "64Mi")),
                    sidecar_resources: Some(resources("50m", "32Mi")),
                    tolerations: vec![Toleration {
                        key: Some("audio".to_owned()),
                        operator: Some("Exists".to_owned()),
                        effect: Some("NoSchedule".to_owned()),
                        ..Toleration::default()
                    }],
                    node_selector: BTreeMap::from([("disk".to_owned(), "ssd".to_owned())]),
                    priority_class_name: Some("midi-realtime".to_owned()),
                },
            },
        );
        hub.metadata.namespace = Some("music".to_owned());
        hub.metadata.uid = Some(UID.to_owned());
        hub
    }

    pub fn resources(cpu: &str, memory: &str) -> ResourceRequirements {
        let amounts = BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ]);
        ResourceRequirements {
            requests: Some(amounts.clone()),
            limits: Some(amounts),
            ..ResourceRequirements::default()
        }
    }

    pub fn privileged_config() -> ChildrenConfig {
        ChildrenConfig {
            rtpmidid_image: "registry.example/rtpmidid:26.01".to_owned(),
            sidecar_image: "registry.example/hub-sidecar:0.1.0".to_owned(),
            device_access: DeviceAccess::Privileged,
        }
    }

    pub fn device_plugin_config() -> ChildrenConfig {
        ChildrenConfig {
            device_access: DeviceAccess::DevicePlugin {
                resource: "squat.ai/snd".to_owned(),
                audio_group: 29,
            },
            ..privileged_config()
        }
    }
}

#[cfg(test)]
mod tests;
