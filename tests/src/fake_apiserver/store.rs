//! The in-memory object store: server-managed metadata, the global resource version, the change
//! history that watches resume from, and the live watch subscribers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{Timestamp, Unit};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::apply;
use super::error::FakeApiServerError;
use super::path::{ObjectKey, ResourcePath, ResourceType};
use super::selector::Selectors;

/// Which part of an existing object an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpdateScope {
    /// The main resource of a type with a status subresource: everything except `.status`.
    Main,
    /// The `status` subresource: only `.status`.
    Status,
    /// Direct store access from a test: everything, including `.status`.
    Everything,
}

/// Whether a create keeps the `.status` it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusOnCreate {
    /// As Kubernetes does for resources with a status subresource.
    Drop,
    /// For tests seeding objects such as Nodes with a status.
    Keep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One committed change, kept so that a watch can resume from any resource version.
#[derive(Clone, Debug)]
struct Change {
    resource_version: u64,
    change_type: ChangeType,
    key: ObjectKey,
    previous: Option<Value>,
    object: Value,
}

/// What a list or watch request selects.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    pub(crate) resource: ResourceType,
    /// `None` selects all namespaces (and cluster-scoped objects).
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) selectors: Selectors,
}

impl Scope {
    fn contains_key(&self, key: &ObjectKey) -> bool {
        key.resource == self.resource
            && (self.namespace.is_none() || self.namespace == key.namespace)
            && self.name.as_ref().is_none_or(|name| *name == key.name)
    }

    fn matches(&self, key: &ObjectKey, object: &Value) -> bool {
        self.contains_key(key) && self.selectors.matches(object)
    }

    /// The watch event a subscriber of this scope sees for a change, if any: an object that
    /// stops matching a selector is DELETED for it, one that starts matching is ADDED.
    fn event_for(&self, change: &Change) -> Option<Value> {
        if !self.contains_key(&change.key) {
            return None;
        }
        let now = self.selectors.matches(&change.object);
        let before = change
            .previous
            .as_ref()
            .is_some_and(|previous| self.selectors.matches(previous));
        let event_type = match (change.change_type, before, now) {
            (ChangeType::Added, _, true) => "ADDED",
            (ChangeType::Deleted, _, true) => "DELETED",
            (ChangeType::Modified, true, true) => "MODIFIED",
            (ChangeType::Modified, false, true) => "ADDED",
            (ChangeType::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some(watch_event(event_type, change.object.clone()))
    }
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WatchStart {
    /// ADDED events for the current objects first (resourceVersion unset or "0").
    CurrentState,
    /// Every stored change after this resource version.
    After(u64),
}

struct Subscriber {
    scope: Scope,
    sender: mpsc::UnboundedSender<Value>,
}

/// A live watch: the events due so far and the channel of later ones.
pub(crate) struct Subscription {
    pub(crate) backlog: Vec<Value>,
    pub(crate) live: mpsc::UnboundedReceiver<Value>,
}

#[derive(Default)]
pub(crate) struct Store {
    objects: BTreeMap<ObjectKey, Value>,
    history: Vec<Change>,
    subscribers: Vec<Subscriber>,
    resource_version: u64,
    /// Kinds seen per resource type, for the type field of lists.
    kinds: HashMap<ResourceType, String>,
    /// The last configuration each field manager applied, per object and per subresource
    /// (`true` for status).
    applied: HashMap<(ObjectKey, bool), BTreeMap<String, Value>>,
}

pub(crate) fn watch_event(event_type: &str, object: Value) -> Value {
    json!({ "type": event_type, "object": object })
}

impl Store {
    pub(crate) fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub(crate) fn get(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects.get(key)
    }

    pub(crate) fn list(&self, scope: &Scope) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(key, object)| scope.matches(key, object))
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// The kind of a resource type's objects, when any has been stored.
    pub(crate) fn kind_of(&self, resource: &ResourceType) -> Option<&str> {
        self.kinds.get(resource).map(String::as_str)
    }

    /// Creates an object in the collection `path` names, or at the object path it names.
    pub(crate) fn create(
        &mut self,
        path: &ResourcePath,
        body: Value,
        status_on_create: StatusOnCreate,
    ) -> Result<Value, FakeApiServerError> {
        let Value::Object(mut object) = body else {
            return Err(FakeApiServerError::BadRequest(
                "the request body must be a JSON object".to_owned(),
            ));
        };
        let metadata = metadata_mut(&mut object)?;
        let namespace = match (
            &path.namespace,
            metadata.get("namespace").and_then(Value::as_str),
        ) {
            (Some(from_path), Some(from_body)) if from_path != from_body => {
                return Err(FakeApiServerError::BadRequest(format!(
                    "the namespace of the object ({from_body}) does not match the namespace of the request ({from_path})"
                )));
            }
            (Some(from_path), _) => Some(from_path.clone()),
            (None, from_body) => from_body.map(str::to_owned),
        };
        let body_name = metadata
            .get("name")
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .map(str::to_owned);
        let name = match (&path.name, body_name) {
            (Some(from_path), Some(from_body)) if *from_path != from_body => {
                return Err(FakeApiServerError::BadRequest(format!(
                    "the name of the object ({from_body}) does not match the name of the request ({from_path})"
                )));
            }
            (Some(from_path), _) => from_path.clone(),
            (None, Some(from_body)) => from_body,
            (None, None) => {
                return Err(FakeApiServerError::BadRequest(
                    "metadata.name is required (the fake API server generates no names)".to_owned(),
                ));
            }
        };
        let key = ObjectKey {
            resource: path.resource.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        };
        if self.objects.contains_key(&key) {
            return Err(FakeApiServerError::AlreadyExists {
                plural: path.resource.plural.clone(),
                name,
            });
        }
        let resource_version = self.next_resource_version();
        metadata.insert("name".to_owned(), Value::String(name));
        match namespace {
            Some(namespace) => metadata.insert("namespace".to_owned(), Value::String(namespace)),
            None => metadata.remove("namespace"),
        };
        metadata.insert("uid".to_owned(), Value::String(uid_for(resource_version)));
        metadata.insert(
            "creationTimestamp".to_owned(),
            Value::String(
                Timestamp::now()
                    .round(Unit::Second)
                    .unwrap_or(Timestamp::UNIX_EPOCH)
                    .to_string(),
            ),
        );
        metadata.insert("generation".to_owned(), json!(1));
        metadata.insert(
            "resourceVersion".to_owned(),
            Value::String(resource_version.to_string()),
        );
        metadata.remove("managedFields");
        object
            .entry("apiVersion")
            .or_insert_with(|| Value::String(path.api_version.clone()));
        if status_on_create == StatusOnCreate::Drop {
            object.remove("status");
        }
        let object = Value::Object(object);
        self.commit(
            resource_version,
            ChangeType::Added,
            key,
            None,
            object.clone(),
        );
        Ok(object)
    }

    /// Replaces an existing object with what `edit` makes of it, keeping server-managed
    /// metadata. A change that leaves the object as it was is a no-op, as in Kubernetes: no new
    /// resource version and no watch event.
    pub(crate) fn update(
        &mut self,
        key: &ObjectKey,
        scope: UpdateScope,
        edit: impl FnOnce(&Value) -> Result<Value, FakeApiServerError>,
    ) -> Result<Value, FakeApiServerError> {
        let stored = self.objects.get(key).ok_or_else(|| not_found(key))?;
        let candidate = edit(stored)?;
        let Value::Object(candidate) = candidate else {
            return Err(FakeApiServerError::BadRequest(
                "the updated object must be a JSON object".to_owned(),
            ));
        };
        if scope != UpdateScope::Everything {
            check_client_metadata(key, stored, &candidate)?;
        }
        let mut next = match scope {
            UpdateScope::Main => {
                let mut next = candidate;
                restore_field(&mut next, stored, "status");
                next
            }
            UpdateScope::Status => {
                let mut next = as_map(stored);
                match candidate.get("status") {
                    Some(status) => next.insert("status".to_owned(), status.clone()),
                    None => next.remove("status"),
                };
                next
            }
            UpdateScope::Everything => candidate,
        };
        // The type of an object cannot change; a client may leave it out of a patch.
        for type_field in ["apiVersion", "kind"] {
            if let Some(value) = stored.get(type_field) {
                next.insert(type_field.to_owned(), value.clone());
            }
        }
        let stored_metadata = stored.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let spec_changed =
            without_metadata_and_status(&next) != without_metadata_and_status(&as_map(stored));
        let generation = stored_metadata
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            + i64::from(spec_changed);
        {
            let metadata = metadata_mut(&mut next)?;
            for server_managed in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "resourceVersion",
            ] {
                match stored_metadata.get(server_managed) {
                    Some(value) => metadata.insert(server_managed.to_owned(), value.clone()),
                    None => metadata.remove(server_managed),
                };
            }
            metadata.insert("generation".to_owned(), json!(generation));
            metadata.remove("managedFields");
        }
        let next = Value::Object(next);
        if next == *stored {
            return Ok(next);
        }
        let previous = stored.clone();
        let resource_version = self.next_resource_version();
        let mut next = next;
        next["metadata"]["resourceVersion"] = Value::String(resource_version.to_string());
        self.commit(
            resource_version,
            ChangeType::Modified,
            key.clone(),
            Some(previous),
            next.clone(),
        );
        Ok(next)
    }

    /// Server-side apply by `manager` to the main resource or the status subresource: creates
    /// the object when absent (main resource only), otherwise removes the fields the manager
    /// no longer applies and merges in the rest. Returns the object and whether it was created.
    pub(crate) fn apply(
        &mut self,
        path: &ResourcePath,
        key: &ObjectKey,
        scope: UpdateScope,
        manager: &str,
        force: bool,
        config: &Value,
    ) -> Result<(Value, bool), FakeApiServerError> {
        let status_subresource = scope == UpdateScope::Status;
        let owned = apply::owned_section(config, status_subresource);
        let Some(stored) = self.objects.get(key) else {
            if status_subresource {
                return Err(not_found(key));
            }
            let created = self.create(path, config.clone(), StatusOnCreate::Drop)?;
            self.remember_applied(key, status_subresource, manager, owned);
            return Ok((created, true));
        };
        let managers = self.applied.get(&(key.clone(), status_subresource));
        let others = managers
            .into_iter()
            .flatten()
            .filter(|(other, _)| other.as_str() != manager)
            .map(|(other, config)| (other.as_str(), config));
        if !force {
            apply::check_conflicts(stored, &owned, others.clone())?;
        }
        let mut next = stored.clone();
        if let Some(previously_applied) = managers.and_then(|managers| managers.get(manager)) {
            for released in apply::released_fields(stored, previously_applied, &owned, others) {
                apply::remove_at(&mut next, &released);
            }
        }
        json_patch::merge(&mut next, config);
        let updated = self.update(key, scope, |_| Ok(next))?;
        self.remember_applied(key, status_subresource, manager, owned);
        Ok((updated, false))
    }

    fn remember_applied(
        &mut self,
        key: &ObjectKey,
        status_subresource: bool,
        manager: &str,
        owned: Value,
    ) {
        self.applied
            .entry((key.clone(), status_subresource))
            .or_default()
            .insert(manager.to_owned(), owned);
    }

    /// Deletes an object and, unless `cascade` is off, every object that the Kubernetes garbage
    /// collector would delete with it: dependents whose owners are all gone, recursively.
    pub(crate) fn delete(
        &mut self,
        key: &ObjectKey,
        cascade: bool,
    ) -> Result<Value, FakeApiServerError> {
        let deleted = self.delete_one(key).ok_or_else(|| not_found(key))?;
        if cascade {
            let mut deleted_uids = vec![uid_of(&deleted)];
            while let Some(owner_uid) = deleted_uids.pop() {
                let existing_uids: BTreeSet<String> = self.objects.values().map(uid_of).collect();
                let dependents: Vec<ObjectKey> = self
                    .objects
                    .iter()
                    .filter(|(_, object)| {
                        let owners = owner_uids(object);
                        owners.contains(&owner_uid)
                            && owners.iter().all(|uid| !existing_uids.contains(uid))
                    })
                    .map(|(key, _)| key.clone())
                    .collect();
                for dependent in dependents {
                    if let Some(object) = self.delete_one(&dependent) {
                        deleted_uids.push(uid_of(&object));
                    }
                }
            }
        }
        Ok(deleted)
    }

    fn delete_one(&mut self, key: &ObjectKey) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        self.applied.remove(&(key.clone(), false));
        self.applied.remove(&(key.clone(), true));
        let resource_version = self.next_resource_version();
        // Kubernetes reports a deletion with the resource version at which it happened.
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert(
                "resourceVersion".to_owned(),
                Value::String(resource_version.to_string()),
            );
        }
        let previous = object.clone();
        self.commit(
            resource_version,
            ChangeType::Deleted,
            key.clone(),
            Some(previous),
            object.clone(),
        );
        Some(object)
    }

    /// Registers a watch; the backlog and the subscription are taken under the same lock as
    /// commits, so no change is missed or sent twice.
    pub(crate) fn subscribe(&mut self, scope: Scope, start: WatchStart) -> Subscription {
        let backlog = match start {
            WatchStart::CurrentState => self
                .list(&scope)
                .into_iter()
                .map(|object| watch_event("ADDED", object))
                .collect(),
            WatchStart::After(resource_version) => {
                let first = self
                    .history
                    .partition_point(|change| change.resource_version <= resource_version);
                self.history[first..]
                    .iter()
                    .filter_map(|change| scope.event_for(change))
                    .collect()
            }
        };
        let (sender, live) = mpsc::unbounded_channel();
        self.subscribers.push(Subscriber { scope, sender });
        Subscription { backlog, live }
    }

    fn next_resource_version(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    fn commit(
        &mut self,
        resource_version: u64,
        change_type: ChangeType,
        key: ObjectKey,
        previous: Option<Value>,
        object: Value,
    ) {
        if let Some(kind) = object.get("kind").and_then(Value::as_str) {
            self.kinds.insert(key.resource.clone(), kind.to_owned());
        }
        match change_type {
            ChangeType::Deleted => self.objects.remove(&key),
            ChangeType::Added | ChangeType::Modified => {
                self.objects.insert(key.clone(), object.clone())
            }
        };
        let change = Change {
            resource_version,
            change_type,
            key,
            previous,
            object,
        };
        // Subscribers whose response has been dropped are forgotten here.
        self.subscribers
            .retain(|subscriber| match subscriber.scope.event_for(&change) {
                Some(event) => subscriber.sender.send(event).is_ok(),
                None => !subscriber.sender.is_closed(),
            });
        self.history.push(change);
    }
}

fn not_found(key: &ObjectKey) -> FakeApiServerError {
    FakeApiServerError::NotFound {
        plural: key.resource.plural.clone(),
        name: key.name.clone(),
    }
}

/// A stale `metadata.resourceVersion` in a client's object is a failed precondition, and the
/// name cannot be changed by an update.
fn check_client_metadata(
    key: &ObjectKey,
    stored: &Value,
    candidate: &Map<String, Value>,
) -> Result<(), FakeApiServerError> {
    let metadata = candidate.get("metadata");
    if let Some(name) = metadata.and_then(|m| m.get("name")).and_then(Value::as_str)
        && name != key.name
    {
        return Err(FakeApiServerError::BadRequest(format!(
            "the name of the object ({name}) does not match the name of the request ({})",
            key.name
        )));
    }
    let requested = metadata
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str)
        .filter(|version| !version.is_empty());
    let current = stored
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    if let Some(requested) = requested
        && Some(requested) != current
    {
        return Err(FakeApiServerError::Conflict {
            plural: key.resource.plural.clone(),
            name: key.name.clone(),
        });
    }
    Ok(())
}

fn metadata_mut(
    object: &mut Map<String, Value>,
) -> Result<&mut Map<String, Value>, FakeApiServerError> {
    object
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| FakeApiServerError::BadRequest("metadata must be a JSON object".to_owned()))
}

fn as_map(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Sets `field` of `next` to what `stored` has, or removes it when `stored` has none.
fn restore_field(next: &mut Map<String, Value>, stored: &Value, field: &str) {
    match stored.get(field) {
        Some(value) => next.insert(field.to_owned(), value.clone()),
        None => next.remove(field),
    };
}

fn without_metadata_and_status(object: &Map<String, Value>) -> Map<String, Value> {
    let mut rest = object.clone();
    rest.remove("metadata");
    rest.remove("status");
    rest
}

fn uid_of(object: &Value) -> String {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn owner_uids(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|owners| {
            owners
                .iter()
                .filter_map(|owner| owner.get("uid").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// UIDs shaped like Kubernetes' (UUIDs), unique per object and stable between runs.
fn uid_for(resource_version: u64) -> String {
    format!("00000000-0000-4000-8000-{resource_version:012x}")
}
