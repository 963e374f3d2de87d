use midihub_api::MidiHub;
use serde_json::json;

use super::super::{examples, labels};
use crate::children::{Children, children};

fn children_of(hub: &MidiHub) -> Children {
    children(hub, &examples::privileged_config(), true, None).unwrap()
}

#[test]
fn role_allows_exactly_the_sidecars_needs_on_this_hub() {
    let role = children_of(&examples::hub()).role;

    // Compared as JSON so that any extra field or rule fails the test.
    assert_eq!(
        serde_json::to_value(&role.rules).unwrap(),
        json!([
            {
                "apiGroups": ["midihub.io"],
                "resources": ["midihubs/status"],
                "resourceNames": ["berlin"],
                "verbs": ["get", "patch"]
            },
            {
                "apiGroups": ["midihub.io"],
                "resources": ["midihubs"],
                "resourceNames": ["berlin"],
                "verbs": ["get", "list", "watch"]
            },
            {
                "apiGroups": ["events.k8s.io", ""],
                "resources": ["events"],
                "verbs": ["create", "patch"]
            }
        ])
    );
}

#[test]
fn rbac_objects_carry_name_namespace_labels_and_owner() {
    let hub = examples::hub();
    let metadatas = [
        serde_json::to_value(children_of(&hub).service_account).unwrap(),
        serde_json::to_value(children_of(&hub).role).unwrap(),
        serde_json::to_value(children_of(&hub).role_binding).unwrap(),
    ];
    let kinds = [
        ("v1", "ServiceAccount"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ];

    for (object, (api_version, kind)) in metadatas.iter().zip(kinds) {
        assert_eq!(object["apiVersion"], api_version);
        assert_eq!(object["kind"], kind);
        let metadata = &object["metadata"];
        assert_eq!(metadata["name"], "midihub-berlin", "{kind}");
        assert_eq!(metadata["namespace"], "music", "{kind}");
        assert_eq!(metadata["labels"], json!(labels(&hub)), "{kind}");
        assert_eq!(
            metadata["ownerReferences"],
            json!([{
                "apiVersion": "midihub.io/v1alpha1",
                "kind": "MidiHub",
                "name": "berlin",
                "uid": examples::UID,
                "controller": true
            }]),
            "{kind}"
        );
    }
}

#[test]
fn role_binding_binds_the_hubs_role_to_the_hubs_service_account() {
    let binding = children_of(&examples::hub()).role_binding;

    assert_eq!(
        serde_json::to_value(&binding.role_ref).unwrap(),
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "midihub-berlin"})
    );
    assert_eq!(
        serde_json::to_value(&binding.subjects).unwrap(),
        json!([{"kind": "ServiceAccount", "name": "midihub-berlin", "namespace": "music"}])
    );
}
