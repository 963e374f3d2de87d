//! The hub sidecar's identity and rights: a ServiceAccount, and a Role that lets it read its
//! own hub, patch that hub's status and record Events. Nothing else: the sidecar runs on a
//! host-network pod reachable from the internet, so a stolen token must be worth little.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use midihub_api::{GROUP, MidiHub};

use super::{BuildError, child_metadata, hub_name};

/// The ServiceAccount the hub's pod runs as.
pub fn service_account(hub: &MidiHub) -> Result<ServiceAccount, BuildError> {
    Ok(ServiceAccount {
        metadata: child_metadata(hub)?,
        ..ServiceAccount::default()
    })
}

/// The sidecar's rights: get and patch the status of this hub only, get this hub only, and
/// create and patch Events (both Event APIs, as clients differ in which they use).
pub fn role(hub: &MidiHub) -> Result<Role, BuildError> {
    let metadata = child_metadata(hub)?;
    let this_hub = vec![hub_name(hub)?];
    let strings = |items: &[&str]| items.iter().map(|&item| item.to_owned()).collect();
    Ok(Role {
        metadata,
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(strings(&[GROUP])),
                resources: Some(strings(&["midihubs/status"])),
                resource_names: Some(this_hub.clone()),
                verbs: strings(&["get", "patch"]),
                ..PolicyRule::default()
            },
            PolicyRule {
                api_groups: Some(strings(&[GROUP])),
                resources: Some(strings(&["midihubs"])),
                resource_names: Some(this_hub),
                verbs: strings(&["get"]),
                ..PolicyRule::default()
            },
            PolicyRule {
                api_groups: Some(strings(&["events.k8s.io", ""])),
                resources: Some(strings(&["events"])),
                verbs: strings(&["create", "patch"]),
                ..PolicyRule::default()
            },
        ]),
    })
}

/// Binds the hub's Role to the hub's ServiceAccount.
pub fn role_binding(hub: &MidiHub) -> Result<RoleBinding, BuildError> {
    let metadata = child_metadata(hub)?;
    let name = super::child_name(hub);
    Ok(RoleBinding {
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: name.clone(),
            namespace: metadata.namespace.clone(),
            api_group: None,
        }]),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name,
        },
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{examples, labels};
    use super::*;

    #[test]
    fn role_allows_exactly_the_sidecars_needs_on_this_hub() {
        let role = role(&examples::hub()).unwrap();

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
                    "verbs": ["get"]
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
            serde_json::to_value(service_account(&hub).unwrap()).unwrap(),
            serde_json::to_value(role(&hub).unwrap()).unwrap(),
            serde_json::to_value(role_binding(&hub).unwrap()).unwrap(),
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
        let binding = role_binding(&examples::hub()).unwrap();

        assert_eq!(
            serde_json::to_value(&binding.role_ref).unwrap(),
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "midihub-berlin"})
        );
        assert_eq!(
            serde_json::to_value(&binding.subjects).unwrap(),
            json!([{"kind": "ServiceAccount", "name": "midihub-berlin", "namespace": "music"}])
        );
    }

    #[test]
    fn a_hub_without_uid_has_no_rbac() {
        let mut hub = examples::hub();
        hub.metadata.uid = None;

        assert!(matches!(
            service_account(&hub),
            Err(BuildError::MissingUid { .. })
        ));
        assert!(matches!(role(&hub), Err(BuildError::MissingUid { .. })));
        assert!(matches!(
            role_binding(&hub),
            Err(BuildError::MissingUid { .. })
        ));
    }
}
