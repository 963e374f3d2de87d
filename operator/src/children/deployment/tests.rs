use serde_json::{Value, json};

use midihub_api::MidiHub;

use super::super::examples;
use super::*;
use crate::children::{ChildrenError, children, config_hash};

/// The Deployment among the hub's children.
fn deployment(
    hub: &MidiHub,
    awake: bool,
    config: &ChildrenConfig,
) -> Result<Deployment, ChildrenError> {
    Ok(children(hub, config, awake, None)?.deployment)
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

fn container<'a>(deployment: &'a Deployment, name: &str) -> &'a Container {
    pod_spec(deployment)
        .containers
        .iter()
        .find(|container| container.name == name)
        .unwrap()
}

fn to_json<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap()
}

#[test]
fn deployment_of_the_example_hub_is_exactly_as_designed() {
    let hub = examples::hub();

    let children = children(&hub, &examples::privileged_config(), true, None).unwrap();
    let (deployment, hash) = (children.deployment, config_hash(&children.config_map));

    // The whole object as JSON: any missing, changed or extra field fails the test.
    assert_eq!(
        to_json(&deployment),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "midihub-berlin",
                "namespace": "music",
                "labels": {
                    "app.kubernetes.io/instance": "berlin",
                    "app.kubernetes.io/managed-by": "midihub-operator",
                    "app.kubernetes.io/name": "midihub",
                    "midihub.io/hub": "berlin"
                },
                "ownerReferences": [{
                    "apiVersion": "midihub.io/v1alpha1",
                    "kind": "MidiHub",
                    "name": "berlin",
                    "uid": examples::UID,
                    "controller": true
                }]
            },
            "spec": {
                "replicas": 1,
                "revisionHistoryLimit": 3,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"midihub.io/hub": "berlin"}},
                "template": {
                    "metadata": {
                        "labels": {
                            "app.kubernetes.io/instance": "berlin",
                            "app.kubernetes.io/managed-by": "midihub-operator",
                            "app.kubernetes.io/name": "midihub",
                            "midihub.io/hub": "berlin"
                        },
                        "annotations": {"midihub.io/config-hash": hash}
                    },
                    "spec": {
                        "hostNetwork": true,
                        "dnsPolicy": "ClusterFirstWithHostNet",
                        "serviceAccountName": "midihub-berlin",
                        "nodeSelector": {"disk": "ssd", "midihub.io/sound-ready": "true"},
                        "affinity": {"nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [{"matchExpressions": [{
                                    "key": "topology.kubernetes.io/region",
                                    "operator": "In",
                                    "values": ["eu-central"]
                                }]}]
                            }
                        }},
                        "tolerations": [
                            {"key": "audio", "operator": "Exists", "effect": "NoSchedule"}
                        ],
                        "priorityClassName": "midi-realtime",
                        "terminationGracePeriodSeconds": 10,
                        "containers": [
                            {
                                "name": "rtpmidid",
                                "image": "registry.example/rtpmidid:26.01",
                                "args": ["--ini", "/etc/rtpmidid/rtpmidid.ini"],
                                "ports": [
                                    {"name": "ctl-5004", "containerPort": 5004, "hostPort": 5004, "protocol": "UDP"},
                                    {"name": "midi-5005", "containerPort": 5005, "hostPort": 5005, "protocol": "UDP"},
                                    {"name": "ctl-5006", "containerPort": 5006, "hostPort": 5006, "protocol": "UDP"},
                                    {"name": "midi-5007", "containerPort": 5007, "hostPort": 5007, "protocol": "UDP"}
                                ],
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/rtpmidid", "readOnly": true},
                                    {"name": "control", "mountPath": "/run/rtpmidid"}
                                ],
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "64Mi"},
                                    "limits": {"cpu": "100m", "memory": "64Mi"}
                                },
                                "securityContext": {"privileged": true}
                            },
                            {
                                "name": "hub-sidecar",
                                "image": "registry.example/hub-sidecar:0.1.0",
                                "args": ["kubernetes"],
                                "env": [
                                    {"name": "HUB_NAME", "value": "berlin"},
                                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                    {"name": "RTPMIDID_CONTROL_SOCKET", "value": "/run/rtpmidid/control.sock"},
                                    {"name": "MIDIHUB_SIDECAR_LISTEN", "value": "0.0.0.0:5004"}
                                ],
                                "ports": [
                                    {"name": "http", "containerPort": 5004, "hostPort": 5004, "protocol": "TCP"}
                                ],
                                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 30},
                                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
                                "volumeMounts": [
                                    {"name": "control", "mountPath": "/run/rtpmidid"}
                                ],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "32Mi"},
                                    "limits": {"cpu": "50m", "memory": "32Mi"}
                                },
                                "securityContext": {"privileged": true}
                            }
                        ],
                        "volumes": [
                            {"name": "config", "configMap": {"name": "midihub-berlin"}},
                            {"name": "control", "emptyDir": {}}
                        ]
                    }
                }
            }
        })
    );
}

#[test]
fn replicas_are_one_awake_and_zero_asleep() {
    let config = examples::privileged_config();
    for (awake, replicas) in [(false, 0), (true, 1)] {
        let deployment = deployment(&examples::hub(), awake, &config).unwrap();
        assert_eq!(deployment.spec.unwrap().replicas, Some(replicas));
    }
}

#[test]
fn device_plugin_access_drops_privilege_and_requests_the_device() {
    let deployment = deployment(&examples::hub(), true, &examples::device_plugin_config()).unwrap();

    assert_eq!(
        to_json(&pod_spec(&deployment).security_context),
        json!({"supplementalGroups": [29], "seccompProfile": {"type": "RuntimeDefault"}})
    );
    let expected_resources = [
        (RTPMIDID_CONTAINER, "100m", "64Mi"),
        (SIDECAR_CONTAINER, "50m", "32Mi"),
    ];
    for (name, cpu, memory) in expected_resources {
        let container = container(&deployment, name);
        assert_eq!(
            to_json(&container.security_context),
            json!({
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": true,
                "runAsUser": 65532,
                "runAsGroup": 65532
            }),
            "{name}"
        );
        let amounts = json!({"cpu": cpu, "memory": memory, "squat.ai/snd": "1"});
        assert_eq!(
            to_json(&container.resources),
            json!({"requests": amounts, "limits": amounts}),
            "{name}"
        );
    }
}

#[test]
fn a_hub_pod_requests_device_units_per_hub_pod_in_all() {
    let deployment = deployment(&examples::hub(), true, &examples::device_plugin_config()).unwrap();

    let requested: u32 = pod_spec(&deployment)
        .containers
        .iter()
        .filter_map(|container| container.resources.as_ref()?.requests.as_ref())
        .filter_map(|requests| requests.get("squat.ai/snd"))
        .map(|units| units.0.parse::<u32>().unwrap())
        .sum();

    assert_eq!(requested, DEVICE_UNITS_PER_HUB_POD);
    assert_eq!(DEVICE_UNITS_PER_HUB_POD, 2, "README and values.yaml say 2");
}

#[test]
fn device_plugin_access_requests_the_device_even_without_user_resources() {
    let mut hub = examples::hub();
    hub.spec.pod.rtpmidid_resources = None;
    hub.spec.pod.sidecar_resources = None;

    let deployment = deployment(&hub, true, &examples::device_plugin_config()).unwrap();

    for name in [RTPMIDID_CONTAINER, SIDECAR_CONTAINER] {
        assert_eq!(
            to_json(&container(&deployment, name).resources),
            json!({"requests": {"squat.ai/snd": "1"}, "limits": {"squat.ai/snd": "1"}}),
            "{name}"
        );
    }
}

#[test]
fn privileged_access_sets_no_pod_security_context_and_keeps_user_resources() {
    let mut hub = examples::hub();
    hub.spec.pod.sidecar_resources = None;

    let deployment = deployment(&hub, true, &examples::privileged_config()).unwrap();

    assert_eq!(pod_spec(&deployment).security_context, None);
    assert_eq!(container(&deployment, SIDECAR_CONTAINER).resources, None);
    for name in [RTPMIDID_CONTAINER, SIDECAR_CONTAINER] {
        assert_eq!(
            to_json(&container(&deployment, name).security_context),
            json!({"privileged": true}),
            "{name}"
        );
    }
}

#[test]
fn without_a_region_there_is_no_affinity() {
    let mut hub = examples::hub();
    hub.spec.region = None;

    let deployment = deployment(&hub, true, &examples::privileged_config()).unwrap();

    assert_eq!(pod_spec(&deployment).affinity, None);
}

#[test]
fn the_pod_prefers_the_node_it_last_ran_on_and_still_requires_its_region() {
    let hub = examples::hub();
    let config = examples::privileged_config();
    let deployment = children(&hub, &config, true, Some("eu-1"))
        .unwrap()
        .deployment;
    assert_eq!(
        serde_json::to_value(&pod_spec(&deployment).affinity).unwrap(),
        json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [
                    {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["eu-central"]}
                ]}
            ]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100,
                "preference": {"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["eu-1"]}
                ]},
            }],
        }})
    );

    let mut anywhere = hub.clone();
    anywhere.spec.region = None;
    let deployment = children(&anywhere, &config, true, Some("eu-1"))
        .unwrap()
        .deployment;
    let affinity = pod_spec(&deployment).affinity.clone().unwrap();
    let node_affinity = affinity.node_affinity.unwrap();
    assert_eq!(
        node_affinity.required_during_scheduling_ignored_during_execution,
        None
    );
    assert_eq!(
        node_affinity
            .preferred_during_scheduling_ignored_during_execution
            .map(|terms| terms.len()),
        Some(1)
    );
}

#[test]
fn without_pod_settings_only_the_sound_ready_selector_remains() {
    let mut hub = examples::hub();
    hub.spec.pod = Default::default();

    let deployment = deployment(&hub, true, &examples::privileged_config()).unwrap();

    let pod = pod_spec(&deployment);
    assert_eq!(
        pod.node_selector,
        Some(BTreeMap::from([(
            "midihub.io/sound-ready".to_owned(),
            "true".to_owned()
        )]))
    );
    assert_eq!(pod.tolerations, None);
    assert_eq!(pod.priority_class_name, None);
    assert_eq!(container(&deployment, RTPMIDID_CONTAINER).resources, None);
}

#[test]
fn the_sound_ready_selector_cannot_be_overridden_by_the_hub() {
    let mut hub = examples::hub();
    hub.spec
        .pod
        .node_selector
        .insert(SOUND_READY_LABEL.to_owned(), "false".to_owned());

    let deployment = deployment(&hub, true, &examples::privileged_config()).unwrap();

    let selector = pod_spec(&deployment).node_selector.as_ref().unwrap();
    assert_eq!(selector[SOUND_READY_LABEL], "true");
}

#[test]
fn images_default_to_the_operators_and_follow_the_hub_when_set() {
    let config = examples::privileged_config();
    let images = |deployment: &Deployment| {
        [RTPMIDID_CONTAINER, SIDECAR_CONTAINER]
            .map(|name| container(deployment, name).image.clone().unwrap())
    };
    let defaulted = deployment(&examples::hub(), true, &config).unwrap();
    assert_eq!(
        images(&defaulted),
        [
            "registry.example/rtpmidid:26.01",
            "registry.example/hub-sidecar:0.1.0"
        ]
    );

    let mut hub = examples::hub();
    hub.spec.pod.rtpmidid_image = Some("mirror.example/rtpmidid:custom".to_owned());
    hub.spec.pod.sidecar_image = Some("mirror.example/hub-sidecar:custom".to_owned());
    let explicit = deployment(&hub, true, &config).unwrap();
    assert_eq!(
        images(&explicit),
        [
            "mirror.example/rtpmidid:custom",
            "mirror.example/hub-sidecar:custom"
        ]
    );
}

#[test]
fn port_names_fit_fifteen_characters_even_for_the_highest_port() {
    let mut hub = examples::hub();
    hub.spec.ports[1].port = 65534;

    let deployment = deployment(&hub, true, &examples::privileged_config()).unwrap();

    let ports = container(&deployment, RTPMIDID_CONTAINER)
        .ports
        .as_ref()
        .unwrap();
    let names = ports
        .iter()
        .map(|port| port.name.clone().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(names, ["ctl-5004", "midi-5005", "ctl-65534", "midi-65535"]);
    assert!(names.iter().all(|name| name.len() <= 15));
    assert_eq!(ports[3].container_port, 65535);
    assert_eq!(ports[3].host_port, Some(65535));
}
