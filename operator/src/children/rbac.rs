//! The hub sidecar's identity and rights: a ServiceAccount, and a Role that lets it read and
//! watch its own hub, patch that hub's status and record Events. Nothing else: the sidecar runs on a
//! host-network pod reachable from the internet, so a stolen token must be worth little.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use midihub_api::GROUP;

use super::Parent;

/// The ServiceAccount the hub's pod runs as.
pub(super) fn service_account(parent: &Parent) -> ServiceAccount {
    ServiceAccount {
        metadata: parent.metadata.clone(),
        ..ServiceAccount::default()
    }
}

/// The sidecar's rights: get and patch the status of this hub only; get, list and watch this
/// hub only (it follows its rooms' allow-lists; a list or watch is allowed only when its field
/// selector names the hub, `metadata.name=<hub>`); and create and patch Events (both Event
/// APIs, as clients differ in which they use).
pub(super) fn role(parent: &Parent) -> Role {
    let this_hub = vec![parent.name.clone()];
    let strings = |items: &[&str]| items.iter().map(|&item| item.to_owned()).collect();
    Role {
        metadata: parent.metadata.clone(),
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
                verbs: strings(&["get", "list", "watch"]),
                ..PolicyRule::default()
            },
            PolicyRule {
                api_groups: Some(strings(&["events.k8s.io", ""])),
                resources: Some(strings(&["events"])),
                verbs: strings(&["create", "patch"]),
                ..PolicyRule::default()
            },
        ]),
    }
}

/// Binds the hub's Role to the hub's ServiceAccount.
pub(super) fn role_binding(parent: &Parent) -> RoleBinding {
    let metadata = parent.metadata.clone();
    let name = parent.child_name();
    RoleBinding {
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
    }
}

#[cfg(test)]
mod tests;
