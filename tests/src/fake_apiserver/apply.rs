//! A small model of server-side apply: each field manager's last applied configuration is
//! remembered per object and subresource, so that a field a manager stops applying is removed
//! and a field another manager applied is a conflict unless forced.
//!
//! A field is owned by an apply manager while its current value is still the value that manager
//! applied; any other write that changes it ends that ownership. Lists and scalars are single
//! fields (as for atomic lists in Kubernetes); maps are merged key by key.

use serde_json::{Map, Value};

use super::error::FakeApiServerError;

/// The metadata fields a client may own through apply; the rest are server-managed.
const APPLIABLE_METADATA: [&str; 4] = ["labels", "annotations", "ownerReferences", "finalizers"];

pub(crate) type FieldPath = Vec<String>;

/// The part of an applied configuration that the main resource or the status subresource
/// takes ownership of.
pub(crate) fn owned_section(config: &Value, status_subresource: bool) -> Value {
    let mut section = Map::new();
    let Some(config) = config.as_object() else {
        return Value::Object(section);
    };
    if status_subresource {
        if let Some(status) = config.get("status") {
            section.insert("status".to_owned(), status.clone());
        }
        return Value::Object(section);
    }
    for (key, value) in config {
        match key.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                let metadata: Map<String, Value> = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(field, _)| APPLIABLE_METADATA.contains(&field.as_str()))
                    .map(|(field, value)| (field.clone(), value.clone()))
                    .collect();
                if !metadata.is_empty() {
                    section.insert("metadata".to_owned(), Value::Object(metadata));
                }
            }
            _ => {
                section.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(section)
}

/// Every field of a configuration with its value: maps are descended into, so an empty map
/// owns nothing, as for the granular maps of Kubernetes objects.
pub(crate) fn fields(config: &Value) -> Vec<(FieldPath, Value)> {
    fn walk(value: &Value, path: &mut FieldPath, found: &mut Vec<(FieldPath, Value)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    path.push(key.clone());
                    walk(child, path, found);
                    path.pop();
                }
            }
            leaf => found.push((path.clone(), leaf.clone())),
        }
    }
    let mut found = Vec::new();
    if let Some(map) = config.as_object() {
        for (key, child) in map {
            walk(child, &mut vec![key.clone()], &mut found);
        }
    }
    found
}

pub(crate) fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, key| value.get(key))
}

/// Removes the field at `path`, and the maps that it leaves empty.
pub(crate) fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(parent) = parents
        .iter()
        .try_fold(&mut *object, |value, key| value.get_mut(key))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    parent.remove(last);
    if parent.is_empty() && !parents.is_empty() {
        remove_at(object, parents);
    }
}

/// Fails when a field this manager applies with a new value is owned by another manager.
pub(crate) fn check_conflicts<'a>(
    stored: &Value,
    applied: &Value,
    other_managers: impl Iterator<Item = (&'a str, &'a Value)> + Clone,
) -> Result<(), FakeApiServerError> {
    for (path, value) in fields(applied) {
        let Some(current) = value_at(stored, &path) else {
            continue;
        };
        if *current == value {
            continue;
        }
        if let Some((manager, _)) = other_managers
            .clone()
            .find(|(_, config)| value_at(config, &path) == Some(current))
        {
            return Err(FakeApiServerError::ApplyConflict {
                manager: manager.to_owned(),
                fields: format!(".{}", path.join(".")),
            });
        }
    }
    Ok(())
}

/// The fields this manager applied before, omits now, still owns, and no other manager owns:
/// those an apply removes.
pub(crate) fn released_fields<'a>(
    stored: &Value,
    previously_applied: &Value,
    applied: &Value,
    other_managers: impl Iterator<Item = (&'a str, &'a Value)> + Clone,
) -> Vec<FieldPath> {
    fields(previously_applied)
        .into_iter()
        .filter(|(path, value)| {
            value_at(applied, path).is_none()
                && value_at(stored, path) == Some(value)
                && !other_managers
                    .clone()
                    .any(|(_, config)| value_at(config, path) == Some(value))
        })
        .map(|(path, _)| path)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_main_resource_owns_spec_and_client_metadata_but_not_status() {
        let config = json!({
            "apiVersion": "v1", "kind": "X",
            "metadata": { "name": "x", "labels": { "a": "1" }, "resourceVersion": "3" },
            "spec": { "replicas": 1 }, "status": { "phase": "Up" },
        });
        assert_eq!(
            owned_section(&config, false),
            json!({ "metadata": { "labels": { "a": "1" } }, "spec": { "replicas": 1 } })
        );
        assert_eq!(
            owned_section(&config, true),
            json!({ "status": { "phase": "Up" } })
        );
    }

    #[test]
    fn removing_the_last_field_of_a_map_removes_the_map() {
        let mut object = json!({ "spec": { "a": { "b": 1 }, "c": 2 } });
        remove_at(
            &mut object,
            &["spec".to_owned(), "a".to_owned(), "b".to_owned()],
        );
        assert_eq!(object, json!({ "spec": { "c": 2 } }));
    }

    #[test]
    fn a_field_changed_by_someone_else_is_no_longer_released() {
        let previously = json!({ "spec": { "a": 1, "b": 2 } });
        let stored = json!({ "spec": { "a": 1, "b": 5 } });
        let released = released_fields(&stored, &previously, &json!({}), std::iter::empty());
        assert_eq!(released, [vec!["spec".to_owned(), "a".to_owned()]]);
    }
}
