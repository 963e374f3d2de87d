//! Server-side apply of a hub's children, skipped when the cluster already holds what would be
//! applied: reconciling an unchanged hub sends no write. Also the one write the operator makes
//! in the sidecar's name: clearing what a sidecar that is gone left in the status.

use std::fmt::Debug;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use midihub_api::contract::{OPERATOR_FIELD_MANAGER, SIDECAR_FIELD_MANAGER, status_patch};
use midihub_api::{MidiHub, MidiHubStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ReconcileError;

/// Whether every field set in `desired` holds the same value in `observed`. Fields only the
/// server or others set (defaults, managed fields, status) are ignored; lists must have the
/// same length, element by element. This is what server-side apply would leave unchanged.
pub fn is_subset(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(desired), Value::Object(observed)) => desired.iter().all(|(key, value)| {
            observed
                .get(key)
                .is_some_and(|observed| is_subset(value, observed))
        }),
        (Value::Array(desired), Value::Array(observed)) => {
            desired.len() == observed.len()
                && desired
                    .iter()
                    .zip(observed)
                    .all(|(desired, observed)| is_subset(desired, observed))
        }
        (Value::Number(desired), Value::Number(observed)) => desired.as_f64() == observed.as_f64(),
        _ => desired == observed,
    }
}

/// A child as the cluster holds it after [`apply_if_changed`].
#[derive(Clone, Debug)]
pub struct Applied<K> {
    /// Whether a write was sent.
    pub written: bool,
    /// The object as read, or as the apply returned it; its status is the cluster's, so the
    /// caller can report on it without reading it again.
    pub object: K,
}

/// Applies `desired` with server-side apply under the operator's field manager unless the
/// cluster already holds it.
pub async fn apply_if_changed<K>(api: &Api<K>, desired: &K) -> Result<Applied<K>, ReconcileError>
where
    K: Resource + k8s_openapi::Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    let kind = K::KIND;
    let desired_json = serde_json::to_value(desired)
        .map_err(|source| ReconcileError::Serialize { kind, source })?;
    if let Some(observed) = api.get_opt(&name).await? {
        let observed_json = serde_json::to_value(&observed)
            .map_err(|source| ReconcileError::Serialize { kind, source })?;
        if is_subset(&desired_json, &observed_json) {
            return Ok(Applied {
                written: false,
                object: observed,
            });
        }
    }
    tracing::debug!(kind, name, "applying");
    let object = api
        .patch(
            &name,
            &PatchParams::apply(OPERATOR_FIELD_MANAGER).force(),
            &Patch::Apply(&desired_json),
        )
        .await?;
    Ok(Applied {
        written: true,
        object,
    })
}

/// Removes the status fields a hub's sidecar wrote (participants, participantCount, latency
/// and its `Wiring` condition), for a hub whose sidecar is gone without saying so
/// ([`crate::status::sidecar_status_is_stale`]).
///
/// How: a server-side apply *under the sidecar's field manager* of a status that holds none of
/// those fields. Server-side apply removes every field a manager applied before and omits now,
/// unless another manager owns it too. `conditions` is a list-type map keyed by `type`, so only
/// the `Wiring` entry goes; the operator's `Awake`, `Ready` and `PublicAddress` entries belong
/// to `midihub-operator` and stay. The next sidecar takes the fields back with its first apply.
///
/// Why not otherwise: a JSON merge patch can null the scalar fields but can only replace the
/// whole `conditions` list, clobbering the operator's entries (or racing a sidecar); a JSON
/// patch that removes one list element by index races every other writer; and the operator
/// must never apply the sidecar's fields under its own manager, or its next status apply,
/// which omits them, would remove what a live sidecar wrote.
///
/// When: only when no pod of the hub exists and one of those fields is present, so a sleeping
/// hub whose status is clean costs neither this write nor the pod list that precedes it. A
/// sidecar cannot publish between that list and this write: it needs a pod. If the fields
/// were written by another manager than the sidecar's (an edit by hand), this apply removes
/// nothing and is repeated on the hub's next reconcile, without changing the object.
pub async fn clear_sidecar_status(api: &Api<MidiHub>, name: &str) -> Result<(), ReconcileError> {
    api.patch_status(
        name,
        &PatchParams::apply(SIDECAR_FIELD_MANAGER),
        &status_patch(&MidiHubStatus::default()),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::is_subset;

    #[test]
    fn fields_the_server_adds_do_not_count_as_a_change() {
        let desired =
            json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a"}]}}}});
        let observed = json!({
            "metadata": {"resourceVersion": "7", "managedFields": []},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 600,
                     "template": {"spec": {"containers": [{"name": "a", "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"replicas": 1}
        });
        assert!(is_subset(&desired, &observed));
    }

    #[test]
    fn a_different_or_missing_field_is_a_change() {
        let desired = json!({"spec": {"replicas": 1}});
        assert!(!is_subset(&desired, &json!({"spec": {"replicas": 0}})));
        assert!(!is_subset(&desired, &json!({"spec": {}})));
        assert!(!is_subset(&desired, &json!({})));
    }

    #[test]
    fn lists_must_match_in_length_and_order() {
        let desired = json!({"ports": [5004, 5006]});
        assert!(!is_subset(&desired, &json!({"ports": [5004]})));
        assert!(!is_subset(&desired, &json!({"ports": [5004, 5006, 5008]})));
        assert!(!is_subset(&desired, &json!({"ports": [5006, 5004]})));
        assert!(is_subset(&desired, &json!({"ports": [5004, 5006]})));
    }
}
