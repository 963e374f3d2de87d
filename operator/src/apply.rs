//! Server-side apply of a hub's children, skipped when the cluster already holds what would be
//! applied: reconciling an unchanged hub sends no write. Also the one write the operator makes
//! in the sidecar's name: clearing what a sidecar that is gone left in the status.
//!
//! "What the cluster holds" is the operator's cache ([`crate::stores`]), which sees the
//! operator's own writes a moment after they are made. [`RecentWrites`] keeps a reconcile that
//! runs in that moment from writing the same thing again.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use midihub_api::contract::{OPERATOR_FIELD_MANAGER, SIDECAR_FIELD_MANAGER, status_patch};
use midihub_api::{MidiHub, MidiHubStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ReconcileError;

/// Where `observed` first fails to hold what `desired` sets, as a path such as
/// `.spec.template.spec.containers[1].image`; `None` when every field set in `desired` holds
/// the same value in `observed`. Fields only the server or others set (defaults, managed
/// fields, status) are ignored; lists must have the same length, element by element. `None`
/// is what server-side apply would leave unchanged.
pub fn first_difference(desired: &Value, observed: &Value) -> Option<String> {
    match (desired, observed) {
        (Value::Object(desired), Value::Object(observed)) => {
            desired.iter().find_map(|(key, value)| {
                let Some(observed) = observed.get(key) else {
                    return Some(format!(".{key} (absent)"));
                };
                first_difference(value, observed).map(|path| format!(".{key}{path}"))
            })
        }
        (Value::Array(desired), Value::Array(observed)) => {
            if desired.len() != observed.len() {
                return Some(format!(
                    " ({} items, not {})",
                    observed.len(),
                    desired.len()
                ));
            }
            desired
                .iter()
                .zip(observed)
                .enumerate()
                .find_map(|(index, (desired, observed))| {
                    first_difference(desired, observed).map(|path| format!("[{index}]{path}"))
                })
        }
        (Value::Number(desired), Value::Number(observed))
            if desired.as_f64() == observed.as_f64() =>
        {
            None
        }
        _ if desired == observed => None,
        _ => Some(format!(" ({observed}, not {desired})")),
    }
}

/// How long a write is remembered: far longer than a watch takes to deliver it, so that after
/// this the cache holds the write or something newer.
const CATCH_UP: Duration = Duration::from_secs(30);

/// What the operator wrote lately and over which version of the object in its cache: while the
/// cache still shows that version, the same write is not sent again.
///
/// Resource versions are compared for equality only, as Kubernetes asks.
#[derive(Debug, Default)]
pub struct RecentWrites {
    writes: Mutex<HashMap<WriteKey, Recent>>,
}

/// An object, or a part of one (`kind` "MidiHub/status"), by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WriteKey {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug)]
struct Recent {
    digest: u64,
    /// The cached object's resource version when the write was sent.
    over: Option<String>,
    at: Instant,
}

impl RecentWrites {
    /// Whether `value` was written over the version `cached` of the object less than
    /// [`CATCH_UP`] ago: then the cache has not yet seen that write, and sending it again would
    /// change nothing.
    pub fn awaiting_cache(&self, key: &WriteKey, value: &Value, cached: Option<&str>) -> bool {
        let mut writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(recent) = writes.get(key) else {
            return false;
        };
        if recent.over.as_deref() == cached && recent.at.elapsed() < CATCH_UP {
            return recent.digest == digest(value);
        }
        // The cache moved on (or the write is old): judge by the cache from now on.
        writes.remove(key);
        false
    }

    /// `value` was written over the version `cached` of the object.
    pub fn wrote(&self, key: WriteKey, value: &Value, cached: Option<String>) {
        self.writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                key,
                Recent {
                    digest: digest(value),
                    over: cached,
                    at: Instant::now(),
                },
            );
    }
}

fn digest(value: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

/// A child as the cluster holds it after [`apply_if_changed`], in the form its cache keeps.
#[derive(Clone, Debug)]
pub struct Applied<S> {
    /// Whether a write was sent.
    pub written: bool,
    /// The object as cached, or as the apply returned it; its status is the cluster's, so the
    /// caller can report on it without reading it again.
    pub object: S,
}

/// Applies `desired` with server-side apply under the operator's field manager unless the
/// cluster already holds it: `cached` (the operator's cache of the object, in the form `S` the
/// cache keeps and `api` reads) holds it, or the same apply was sent a moment ago and the
/// cache has not caught up yet.
pub async fn apply_if_changed<K, S>(
    api: &Api<S>,
    cached: Option<Arc<S>>,
    desired: &K,
    writes: &RecentWrites,
) -> Result<Applied<S>, ReconcileError>
where
    K: Resource + k8s_openapi::Resource + Serialize,
    S: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    let kind = K::KIND;
    let desired_json = serde_json::to_value(desired)
        .map_err(|source| ReconcileError::Serialize { kind, source })?;
    let key = WriteKey {
        kind,
        namespace: desired.namespace().unwrap_or_default(),
        name: name.clone(),
    };
    let version = cached.as_ref().and_then(|cached| cached.resource_version());
    if let Some(observed) = &cached {
        let observed_json = serde_json::to_value(observed.as_ref())
            .map_err(|source| ReconcileError::Serialize { kind, source })?;
        match first_difference(&desired_json, &observed_json) {
            None => {
                return Ok(Applied {
                    written: false,
                    object: observed.as_ref().clone(),
                });
            }
            Some(difference) => tracing::debug!(kind, name, difference, "the cache differs"),
        }
    }
    if writes.awaiting_cache(&key, &desired_json, version.as_deref()) {
        tracing::debug!(
            kind,
            name,
            "applied a moment ago; the cache has not seen it yet"
        );
        let object = match cached {
            Some(cached) => cached.as_ref().clone(),
            None => serde_json::from_value(desired_json)
                .map_err(|source| ReconcileError::Serialize { kind, source })?,
        };
        return Ok(Applied {
            written: false,
            object,
        });
    }
    tracing::debug!(kind, name, "applying");
    let object = api
        .patch(
            &name,
            &PatchParams::apply(OPERATOR_FIELD_MANAGER).force(),
            &Patch::Apply(&desired_json),
        )
        .await?;
    writes.wrote(key, &desired_json, version);
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

    use super::*;

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
        assert!(first_difference(&desired, &observed).is_none());
    }

    #[test]
    fn a_different_or_missing_field_is_a_change() {
        let desired = json!({"spec": {"replicas": 1}});
        assert!(first_difference(&desired, &json!({"spec": {"replicas": 0}})).is_some());
        assert!(first_difference(&desired, &json!({"spec": {}})).is_some());
        assert!(first_difference(&desired, &json!({})).is_some());
    }

    #[test]
    fn lists_must_match_in_length_and_order() {
        let desired = json!({"ports": [5004, 5006]});
        assert!(first_difference(&desired, &json!({"ports": [5004]})).is_some());
        assert!(first_difference(&desired, &json!({"ports": [5004, 5006, 5008]})).is_some());
        assert!(first_difference(&desired, &json!({"ports": [5006, 5004]})).is_some());
        assert!(first_difference(&desired, &json!({"ports": [5004, 5006]})).is_none());
    }

    #[test]
    fn the_first_difference_names_its_path() {
        let desired =
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "image": "x:2"}]}});
        let observed =
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "image": "x:1"}]}});
        assert_eq!(
            first_difference(&desired, &observed).as_deref(),
            Some(r#".spec.containers[1].image ("x:1", not "x:2")"#)
        );
        assert_eq!(
            first_difference(&json!({"kind": "Deployment"}), &json!({})).as_deref(),
            Some(".kind (absent)")
        );
        assert_eq!(
            first_difference(&json!({"ports": [1, 2]}), &json!({"ports": [1]})).as_deref(),
            Some(".ports (1 items, not 2)")
        );
    }

    fn key() -> WriteKey {
        WriteKey {
            kind: "ConfigMap",
            namespace: "hubs".to_owned(),
            name: "midihub-berlin".to_owned(),
        }
    }

    #[test]
    fn a_write_the_cache_has_not_seen_is_not_sent_again() {
        let writes = RecentWrites::default();
        let value = json!({"data": {"a": "1"}});
        writes.wrote(key(), &value, Some("7".to_owned()));
        assert!(writes.awaiting_cache(&key(), &value, Some("7")));
        assert!(
            !writes.awaiting_cache(&key(), &json!({"data": {"a": "2"}}), Some("7")),
            "another value is another write"
        );
    }

    #[test]
    fn once_the_cache_moves_on_it_is_the_judge_again() {
        let writes = RecentWrites::default();
        let value = json!({"data": {"a": "1"}});
        writes.wrote(key(), &value, None);
        assert!(
            writes.awaiting_cache(&key(), &value, None),
            "created, not yet seen"
        );
        assert!(!writes.awaiting_cache(&key(), &value, Some("8")));
        assert!(
            !writes.awaiting_cache(&key(), &value, None),
            "seen, then deleted: write it again"
        );
    }
}
