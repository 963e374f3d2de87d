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
        overtime: None,
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
        .find(|c| c.type_ == PUBLIC_ADDRESS_CONDITION)
        .unwrap();
    assert_eq!(
        (public.status.as_str(), public.reason.as_str()),
        ("True", reasons::public_address::EXTERNAL_IP)
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
        .find(|c| c.type_ == PUBLIC_ADDRESS_CONDITION)
        .unwrap();
    assert_eq!(
        (public.status.as_str(), public.reason.as_str()),
        ("False", reasons::public_address::INTERNAL_IP_ONLY)
    );
}

#[test]
fn a_hub_without_a_node_has_no_address_condition() {
    let status = operator_status(&hub(None), &awake(), &Observed::default(), now());
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.type_ != PUBLIC_ADDRESS_CONDITION),
        "{:?}",
        status.conditions
    );
}

#[test]
fn taken_host_ports_are_reported_as_such_with_the_schedulers_words() {
    let message =
        "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports.";
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
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == READY_CONDITION)
        .unwrap();
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
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == READY_CONDITION)
        .unwrap();
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
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == READY_CONDITION)
        .unwrap();
    assert_eq!(ready.reason, "CrashLoopBackOff");
    assert!(ready.message.contains("rtpmidid"));
}

/// The status of the hub's Deployment as the deployment controller reports a refused pod
/// creation.
fn status_with_replica_failure(message: &str) -> Option<DeploymentStatus> {
    Some(
        serde_json::from_value(json!({"conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
             "message": message}]}))
        .unwrap(),
    )
}

const POD_SECURITY_REFUSAL: &str = r#"pods "midihub-jam-6d4cf56db6-x7k2p" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), hostPort (container "rtpmidid" uses hostPorts 5004, 5005, 5006, 5007), privileged (containers "rtpmidid", "hub-sidecar" must not set securityContext.privileged=true)"#;

#[test]
fn a_namespace_that_enforces_baseline_blocks_the_hub_and_names_the_label_that_fixes_it() {
    let observed = Observed {
        deployment_status: status_with_replica_failure(POD_SECURITY_REFUSAL),
        ..Observed::default()
    };
    let status = operator_status(&hub(None), &awake(), &observed, now());
    assert_eq!(status.phase, Some(Phase::Blocked));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == READY_CONDITION)
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", reasons::ready::POD_SECURITY)
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
            deployment_status: status_with_replica_failure(refusal),
            ..Observed::default()
        };
        let status = operator_status(&hub(None), &awake(), &observed, now());
        assert_eq!(status.phase, Some(Phase::Blocked));
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == READY_CONDITION)
            .unwrap();
        assert_eq!(ready.reason, reasons::ready::POD_CREATION_FAILED);
        assert!(ready.message.contains(refusal), "{}", ready.message);
    }
}

#[test]
fn a_pod_that_exists_tells_more_than_an_earlier_replica_failure() {
    let observed = Observed {
        deployment_status: status_with_replica_failure(POD_SECURITY_REFUSAL),
        pod: pod(json!({"spec": {"containers": []}, "status": {"phase": "Pending"}})),
        ..Observed::default()
    };
    let status = operator_status(&hub(None), &awake(), &observed, now());
    assert_eq!(status.phase, Some(Phase::Starting));
}

#[test]
fn a_pod_the_replica_set_cannot_delete_does_not_block_the_hub() {
    let mut deployment_status = status_with_replica_failure("pods \"old\" is forbidden").unwrap();
    if let Some(conditions) = deployment_status.conditions.as_mut() {
        for condition in conditions {
            condition.reason = Some("FailedDelete".to_owned());
        }
    }
    let observed = Observed {
        deployment_status: Some(deployment_status),
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
        overtime: None,
    });
    let observed = Observed {
        deployment_status: status_with_replica_failure(POD_SECURITY_REFUSAL),
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
    let awake = status
        .conditions
        .iter()
        .find(|c| c.type_ == AWAKE_CONDITION)
        .unwrap();
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
        overtime: None,
    });
    let first = operator_status(&hub(None), &awake(), &Observed::default(), now());
    let existing = hub(Some(serde_json::to_value(&first).unwrap()));
    let later: jiff::Timestamp = "2026-11-25T13:00:00Z".parse().unwrap();
    let second = operator_status(&existing, &asleep, &Observed::default(), later);
    assert!(status_changed(existing.status.as_ref(), &second));
    assert_eq!(second.phase, Some(Phase::Sleeping));
    let awake_condition = second
        .conditions
        .iter()
        .find(|c| c.type_ == AWAKE_CONDITION)
        .unwrap();
    assert_eq!(awake_condition.last_transition_time, Time(later));
    let ready_condition = second
        .conditions
        .iter()
        .find(|c| c.type_ == READY_CONDITION)
        .unwrap();
    assert_eq!(
        ready_condition.last_transition_time,
        Time(now()),
        "Ready was False before too"
    );
}

#[test]
fn the_preferred_node_becomes_the_last_node_when_the_hub_sleeps_and_stays_while_it_runs() {
    // Running on node-b while it prefers node-a (node-a was full when it woke): kept, since a
    // new preference would restart the pod.
    let running = hub(Some(json!({"node": "node-b", "preferredNode": "node-a"})));
    assert_eq!(preferred_node(&running, true).as_deref(), Some("node-a"));
    // Going to sleep: the node it ran on is the one to come back to.
    assert_eq!(preferred_node(&running, false).as_deref(), Some("node-b"));
    // Asleep (no node any more): still preferred.
    let asleep = hub(Some(json!({"preferredNode": "node-b"})));
    assert_eq!(preferred_node(&asleep, false).as_deref(), Some("node-b"));
    assert_eq!(preferred_node(&asleep, true).as_deref(), Some("node-b"));
    // A new hub prefers nothing until its first sleep.
    assert_eq!(preferred_node(&hub(None), true), None);
    let first_session = hub(Some(json!({"node": "node-a"})));
    assert_eq!(preferred_node(&first_session, true), None);

    let written = operator_status(&running, &awake(), &Observed::default(), now());
    assert_eq!(written.preferred_node.as_deref(), Some("node-a"));
}
