//! What the operator knows of the cluster besides its hubs: caches (reflector stores) of the
//! hubs' children, of their pods and of the nodes, kept current by the controller's watches,
//! so that a reconcile reads memory instead of sending a GET or LIST for each child, pod and
//! node (the API requests per hub then no longer grow with the number of reconciles).
//!
//! The watches strip `managedFields` before an object is stored: the operator never reads
//! them, and they are often the larger part of an object. Pods and nodes keep only what the
//! operator reads of them ([`trim_pod`], [`trim_node`]); children are kept whole, as they are
//! compared with what the operator would apply, but a Deployment's spec is kept as the JSON
//! text it came as ([`CachedDeployment`]).
//!
//! A reconcile is put off until every store has been filled once ([`Stores::ready`]): an empty
//! store at start-up would look like missing children and pods, and the operator would apply
//! every child of every hub again and report hubs as starting that run.

use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::api::core::v1::{ConfigMap, Node, NodeStatus, Pod, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use midihub_api::contract;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::address::PUBLIC_ADDRESS_ANNOTATION;
use crate::children::{REGION_LABEL, SOUND_READY_LABEL};

/// The controller's caches, besides that of the hubs.
#[derive(Clone)]
pub struct Stores {
    pub deployments: Store<CachedDeployment>,
    pub config_maps: Store<ConfigMap>,
    pub service_accounts: Store<ServiceAccount>,
    pub roles: Store<Role>,
    pub role_bindings: Store<RoleBinding>,
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
}

/// A kind of child the operator applies, and where its cache is.
pub trait Cached:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + 'static
{
    /// What the cache keeps of a child of this kind; it reads and writes as the kind does.
    type Stored: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + 'static;

    fn store(stores: &Stores) -> &Store<Self::Stored>;
}

macro_rules! cached {
    ($($kind:ty => $field:ident),* $(,)?) => {$(
        impl Cached for $kind {
            type Stored = $kind;

            fn store(stores: &Stores) -> &Store<Self> {
                &stores.$field
            }
        }
    )*};
}

cached! {
    ConfigMap => config_maps,
    ServiceAccount => service_accounts,
    Role => roles,
    RoleBinding => role_bindings,
}

impl Cached for Deployment {
    type Stored = CachedDeployment;

    fn store(stores: &Stores) -> &Store<CachedDeployment> {
        &stores.deployments
    }
}

/// A hub's Deployment as the operator's cache keeps it: its metadata and status as they are,
/// its spec as compact JSON text. The spec is only ever compared with what the operator would
/// apply, and as text it takes a fifth of the memory of `k8s_openapi`'s structs, in which
/// every field of every container and volume takes room whether set or not (about 14 KiB per
/// hub, most of the operator's memory at a thousand hubs). It is read, watched and applied
/// as a Deployment: the API server sees no difference.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CachedDeployment {
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "spec_as_text")]
    pub spec: Box<str>,
    #[serde(default)]
    pub status: Option<DeploymentStatus>,
}

/// Written as the Deployment it is: with its `apiVersion` and `kind`, the spec as JSON.
impl Serialize for CachedDeployment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeStruct};
        let mut deployment = serializer.serialize_struct("Deployment", 5)?;
        deployment.serialize_field("apiVersion", <Self as k8s_openapi::Resource>::API_VERSION)?;
        deployment.serialize_field("kind", <Self as k8s_openapi::Resource>::KIND)?;
        deployment.serialize_field("metadata", &self.metadata)?;
        if !self.spec.is_empty() {
            let spec = serde_json::from_str::<Value>(&self.spec).map_err(S::Error::custom)?;
            deployment.serialize_field("spec", &spec)?;
        }
        if let Some(status) = &self.status {
            deployment.serialize_field("status", status)?;
        }
        deployment.end()
    }
}

impl k8s_openapi::Resource for CachedDeployment {
    const API_VERSION: &'static str = <Deployment as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <Deployment as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <Deployment as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <Deployment as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <Deployment as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for CachedDeployment {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Reads any JSON value (through a [`Value`], so that it works wherever the object is
/// buffered first, as in a watch event) and keeps it as compact text.
fn spec_as_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Box<str>, D::Error> {
    Ok(Value::deserialize(deserializer)?
        .to_string()
        .into_boxed_str())
}

/// A store's writer was dropped: its watch is gone and the operator is stopping.
#[derive(Debug, thiserror::Error)]
#[error("the operator's cache of {kind} is gone: the operator is stopping")]
pub struct StoreGone {
    pub kind: &'static str,
}

impl Stores {
    /// Whether every store has been filled by its first list. It does not wait, and nothing in
    /// the operator may wait on these stores: kube's `Store::wait_until_ready` keeps the waker
    /// of only the last future that polled it, so of several reconciles waiting for a store all
    /// but one were never woken (their hubs stayed as they were, and the operator could not
    /// stop, as a stopping controller lets reconciles in flight finish).
    pub fn ready(&self) -> Result<bool, StoreGone> {
        fn filled<K: kube::Resource + Clone>(
            store: &Store<K>,
            kind: &'static str,
        ) -> Result<bool, StoreGone>
        where
            K::DynamicType: std::hash::Hash + Eq + Clone,
        {
            match store.wait_until_ready().now_or_never() {
                None => Ok(false),
                Some(Ok(())) => Ok(true),
                Some(Err(_)) => Err(StoreGone { kind }),
            }
        }
        Ok(filled(&self.deployments, "Deployments")?
            && filled(&self.config_maps, "ConfigMaps")?
            && filled(&self.service_accounts, "ServiceAccounts")?
            && filled(&self.roles, "Roles")?
            && filled(&self.role_bindings, "RoleBindings")?
            && filled(&self.pods, "Pods")?
            && filled(&self.nodes, "Nodes")?)
    }

    /// The child `K` named `name` in `namespace`, as last seen.
    pub fn child<K: Cached>(&self, namespace: &str, name: &str) -> Option<Arc<K::Stored>> {
        K::store(self).get(&ObjectRef::new(name).within(namespace))
    }

    /// The pods of hub `hub` in `namespace` (terminating ones included).
    pub fn hub_pods(&self, namespace: &str, hub: &str) -> Vec<Arc<Pod>> {
        self.pods.state_filter(|pod| {
            pod.metadata.namespace.as_deref() == Some(namespace)
                && pod.labels().get(contract::HUB_LABEL).map(String::as_str) == Some(hub)
        })
    }

    /// The node named `name`, as last seen.
    pub fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.get(&ObjectRef::new(name))
    }

    /// How many nodes could take a hub in `region` (any region: `None`): sound-ready ones.
    pub fn eligible_nodes(&self, region: Option<&str>) -> usize {
        self.nodes
            .state_filter(|node| {
                let labels = node.labels();
                labels.get(SOUND_READY_LABEL).map(String::as_str) == Some("true")
                    && region.is_none_or(|region| {
                        labels.get(REGION_LABEL).map(String::as_str) == Some(region)
                    })
            })
            .len()
    }

    /// The hubs with a pod on `node`, for a change of the node (its address) to reach them.
    pub fn hubs_on(&self, node: &str) -> Vec<ObjectRef<midihub_api::MidiHub>> {
        self.pods
            .state_filter(|pod| {
                pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref()) == Some(node)
            })
            .iter()
            .filter_map(|pod| {
                let hub = pod.labels().get(contract::HUB_LABEL)?;
                Some(ObjectRef::new(hub).within(pod.metadata.namespace.as_deref()?))
            })
            .collect()
    }
}

/// Keeps a child whole (its `managedFields` apart).
pub fn keep<K>(_: &mut K) {}

/// Keeps of a pod what the hub's status is made from: its metadata (labels, times), its node,
/// and its status (phase, conditions, containers' states).
pub fn trim_pod(pod: &mut Pod) {
    pod.metadata.annotations = None;
    pod.metadata.owner_references = None;
    let node_name = pod.spec.as_mut().and_then(|spec| spec.node_name.take());
    pod.spec = Some(PodSpec {
        node_name,
        ..PodSpec::default()
    });
}

/// Keeps of a node its labels (region, sound-ready), the address annotation and its
/// addresses: not the images, conditions and capacity a real node reports.
pub fn trim_node(node: &mut Node) {
    if let Some(annotations) = node.metadata.annotations.as_mut() {
        annotations.retain(|key, _| key == PUBLIC_ADDRESS_ANNOTATION);
    }
    node.spec = None;
    let addresses = node.status.take().and_then(|status| status.addresses);
    node.status = Some(NodeStatus {
        addresses,
        ..NodeStatus::default()
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_pod_keeps_its_labels_times_node_and_status() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "hubs", "labels": {"midihub.io/hub": "jam"},
                         "annotations": {"a": "b"}, "creationTimestamp": "2026-12-02T10:00:00Z"},
            "spec": {"nodeName": "eu-1", "containers": [{"name": "rtpmidid", "image": "x"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        let status = pod.status.clone();
        trim_pod(&mut pod);
        assert_eq!(
            pod.labels().get("midihub.io/hub").map(String::as_str),
            Some("jam")
        );
        assert!(pod.metadata.creation_timestamp.is_some());
        assert_eq!(pod.metadata.annotations, None);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("eu-1"));
        assert!(spec.containers.is_empty());
        assert_eq!(pod.status, status);
    }

    #[test]
    fn a_deployment_keeps_its_spec_as_text_and_writes_it_back_as_it_came() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "midihub-jam", "namespace": "hubs", "resourceVersion": "7"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "rtpmidid", "image": "example.test/rtpmidid:26.01"}]}}},
            "status": {"conditions": [{"type": "Available", "status": "True"}]},
        });
        let cached: CachedDeployment = serde_json::from_value(deployment.clone()).unwrap();
        assert_eq!(
            &*cached.spec,
            r#"{"replicas":1,"template":{"spec":{"containers":[{"image":"example.test/rtpmidid:26.01","name":"rtpmidid"}]}}}"#
        );
        assert_eq!(cached.resource_version().as_deref(), Some("7"));
        assert_eq!(serde_json::to_value(&cached).unwrap(), deployment);
        // As a watch event whose object comes before its type, which serde buffers first.
        let event: kube::core::WatchEvent<CachedDeployment> = serde_json::from_value(json!({
            "object": deployment, "type": "MODIFIED",
        }))
        .unwrap();
        let kube::core::WatchEvent::Modified(watched) = event else {
            panic!("not a MODIFIED event: {event:?}");
        };
        assert_eq!(watched.spec, cached.spec);
    }

    #[test]
    fn a_cached_deployment_holds_the_deployment_the_operator_applied() {
        // As the API server returns it: what was applied, with a resource version and status.
        for awake in [true, false] {
            let desired = crate::children::children(
                &crate::children::examples::hub(),
                &crate::children::examples::privileged_config(),
                awake,
                Some("eu-1"),
            )
            .unwrap()
            .deployment;
            let mut returned = serde_json::to_value(&desired).unwrap();
            returned["metadata"]["resourceVersion"] = json!("42");
            returned["status"] = json!({"replicas": 1});
            let cached: CachedDeployment = serde_json::from_value(returned).unwrap();
            let desired = serde_json::to_value(&desired).unwrap();
            let cached = serde_json::to_value(&cached).unwrap();
            assert_eq!(crate::apply::first_difference(&desired, &cached), None);
        }
    }

    #[test]
    fn a_node_keeps_its_labels_address_annotation_and_addresses() {
        let mut node: Node = serde_json::from_value(json!({
            "metadata": {"name": "eu-1", "labels": {"midihub.io/sound-ready": "true"},
                         "annotations": {"midihub.io/public-address": "hub.example.org",
                                         "node.alpha.kubernetes.io/ttl": "0"}},
            "status": {"addresses": [{"type": "ExternalIP", "address": "203.0.113.10"}],
                       "images": [{"names": ["registry.example/big:1"], "sizeBytes": 1}]},
        }))
        .unwrap();
        trim_node(&mut node);
        assert_eq!(node.labels().len(), 1);
        assert_eq!(
            node.annotations().keys().collect::<Vec<_>>(),
            ["midihub.io/public-address"]
        );
        let status = node.status.unwrap();
        assert_eq!(status.addresses.unwrap()[0].address, "203.0.113.10");
        assert_eq!(status.images, None);
    }
}
