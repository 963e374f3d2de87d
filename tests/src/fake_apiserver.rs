//! A fake API server for tests, not Kubernetes.
//!
//! It serves the Kubernetes REST API over plain HTTP on 127.0.0.1 from an in-memory store of
//! JSON objects, well enough that the real `kube::Client`, `kube::Api` and kube-runtime
//! watchers and controllers work against it unchanged. It knows no schemas and does no
//! discovery: any `/api/{version}/...` or `/apis/{group}/{version}/...` path is a resource.
//!
//! What it is for: fast tests of the controller loop (the operator's `tests/`), of the sidecar's
//! publishing, and of faults a real API server cannot be made to show on cue — injected error
//! answers ([`FailureRule`]), and with [`outage`](crate::outage) an API server that goes away,
//! starts without answering and comes back. Kubernetes' own behaviour (admission, RBAC,
//! list-map merges, the real scheduler and garbage collector) is proven on the control-plane
//! tier against a real API server; the fake models only what the tests above need.
//!
//! What it does like Kubernetes: server-managed metadata (uid, a global resourceVersion,
//! creationTimestamp, generation), list and watch with equality label selectors, watches that
//! resume from any resource version, create/patch/delete with `NotFound`, `AlreadyExists` and
//! `Conflict` as `Status` bodies, the `status` subresource, and garbage collection of
//! dependents through `ownerReferences`.
//!
//! Where it is simpler, knowingly:
//! - Every resource behaves as if it had a status subresource: `.status` sent to the main
//!   resource is ignored (and dropped on create); only `.../status` changes it.
//! - Server-side apply is modelled lightly (see `apply`): the applied object is merged in
//!   (maps recursively, lists and scalars replaced), fields a manager stops applying are
//!   removed, and applying over another apply manager's field is a conflict unless forced.
//!   Only apply managers own fields; `managedFields` is never returned. Strategic merge patches
//!   are treated as JSON merge patches.
//! - Deletion is immediate: finalizers and `deletionTimestamp` are not modelled.
//! - Lists return everything in one page; no admission, validation, defaulting or RBAC.
//! - Not modelled at all, and refused with a `Status` that says so rather than half-served:
//!   replace (PUT), JSON patches, delete-collection, label and field selector terms other than
//!   `key=value`, streaming lists (`sendInitialEvents`) and `generateName`.
//!
//! Besides HTTP, tests can read and write the store directly (to seed Nodes or to play the
//! kubelet by setting a Pod's status), see every request that was made, make requests fail,
//! and wait for a condition without sleeping blindly.

mod apply;
mod error;
mod path;
mod selector;
mod server;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::FakeApiServerError;
pub use hyper::Method;

use path::ResourcePath;
use store::{Scope, StatusOnCreate, Store, UpdateScope};

/// One HTTP request as the fake API server received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub method: Method,
    pub path: String,
    /// The raw query string, without the leading `?`.
    pub query: String,
    pub content_type: Option<String>,
    /// The body when it was JSON; `None` for an empty or malformed body.
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// The value of a query parameter, such as `fieldManager` or `labelSelector`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// Makes matching requests fail: the next `times` requests whose method matches (any method
/// when `None`; compared case-insensitively, so `Some("PATCH".into())` works) and whose path
/// contains `path_contains` are answered with `status` and a `Status` body, then normal
/// service resumes.
///
/// Note that the kube client retries 429, 503 and 504 answers on its own (up to three
/// times); use 500 or a 4xx code to see the failure in the caller at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureRule {
    pub method: Option<String>,
    pub path_contains: String,
    pub status: u16,
    pub times: usize,
}

impl FailureRule {
    fn matches(&self, method: &Method, path: &str) -> bool {
        self.times > 0
            && self
                .method
                .as_ref()
                .is_none_or(|wanted| wanted.eq_ignore_ascii_case(method.as_str()))
            && path.contains(&self.path_contains)
    }
}

/// How often `wait_for` re-checks its condition when nothing happens on the server.
const RECHECK_INTERVAL: Duration = Duration::from_millis(20);

/// State shared between the server task and the test's handle.
pub(crate) struct Shared {
    store: Mutex<Store>,
    requests: Mutex<Vec<RecordedRequest>>,
    failure_rules: Mutex<Vec<FailureRule>>,
    /// Bumped on every store operation and every request, to wake `wait_for`.
    activity: watch::Sender<u64>,
}

/// Locks a mutex even if a panicking test thread poisoned it: the data stays usable, and the
/// server task must not panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Runs an operation that may change the store, then wakes waiters.
    pub(crate) fn with_store<T>(&self, operation: impl FnOnce(&mut Store) -> T) -> T {
        let result = operation(&mut lock(&self.store));
        self.notify();
        result
    }

    /// Runs an operation that does not change any object; waiters are not woken, so that a
    /// `wait_for` condition may read the store without waking itself.
    pub(crate) fn read_store<T>(&self, operation: impl FnOnce(&mut Store) -> T) -> T {
        operation(&mut lock(&self.store))
    }

    fn notify(&self) {
        self.activity
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        lock(&self.requests).push(request);
        self.notify();
    }

    /// The status of the first failure rule that matches, using up one of its times.
    pub(crate) fn take_injected_failure(&self, method: &Method, path: &str) -> Option<u16> {
        let mut rules = lock(&self.failure_rules);
        let rule = rules.iter_mut().find(|rule| rule.matches(method, path))?;
        rule.times -= 1;
        let status = rule.status;
        rules.retain(|rule| rule.times > 0);
        Some(status)
    }
}

/// A fake API server for tests, not Kubernetes: see the [module documentation](self).
///
/// Dropping it stops the server and closes every open connection, watches included.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    client: kube::Client,
    task: JoinHandle<()>,
}

impl FakeApiServer {
    /// Starts a server on 127.0.0.1 with a free port.
    ///
    /// # Panics
    ///
    /// When no port can be bound: a test cannot go on without its API server.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("cannot bind the fake API server: {error}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("the fake API server has no address: {error}"));
        let url = format!("http://{address}")
            .parse::<hyper::Uri>()
            .unwrap_or_else(|error| panic!("the fake API server's URL is invalid: {error}"));
        // The same construction as in production, minus TLS and authentication.
        let client = kube::Client::try_from(kube::Config::new(url))
            .unwrap_or_else(|error| panic!("no kube client for the fake API server: {error}"));
        let (activity, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            requests: Mutex::new(Vec::new()),
            failure_rules: Mutex::new(Vec::new()),
            activity,
        });
        let task = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        Self {
            shared,
            address,
            client,
            task,
        }
    }

    /// The address the server listens on, 127.0.0.1 and a port.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kube client for this server, with "default" as its default namespace.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Every request received so far that was not a GET.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|request| request.method != Method::GET)
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Makes matching requests fail; see [`FailureRule`].
    pub fn fail_requests(&self, rule: FailureRule) {
        lock(&self.shared.failure_rules).push(rule);
    }

    /// Creates an object without HTTP, keeping any `.status` it has (to seed Nodes, Pods and
    /// the like), and returns it as stored. `path` is the collection (`/api/v1/nodes`) or the
    /// object path. Watches see it as ADDED.
    ///
    /// # Panics
    ///
    /// When the path is not a resource path or the object cannot be created (it exists, or has
    /// no name): a mistake in the test.
    pub fn insert(&self, path: &str, object: Value) -> Value {
        ResourcePath::parse(path)
            .and_then(|parsed| {
                self.shared
                    .with_store(|store| store.create(&parsed, object, StatusOnCreate::Keep))
            })
            .unwrap_or_else(|error| panic!("could not insert into {path}: {error}"))
    }

    /// Creates the object, or replaces all of it (status included) when it exists, keeping
    /// the server-managed metadata; returns it as stored. Watches see ADDED or MODIFIED.
    ///
    /// # Panics
    ///
    /// When the path is not a resource path or the object is not a JSON object with a name:
    /// a mistake in the test.
    pub fn upsert(&self, path: &str, object: Value) -> Value {
        self.try_upsert(path, object)
            .unwrap_or_else(|error| panic!("could not upsert at {path}: {error}"))
    }

    fn try_upsert(&self, path: &str, object: Value) -> Result<Value, FakeApiServerError> {
        let mut path = ResourcePath::parse(path)?;
        if path.name.is_none() {
            path.name = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        if path.namespace.is_none() {
            path.namespace = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        self.shared.with_store(|store| match path.object_key() {
            Some(key) if store.get(&key).is_some() => {
                store.update(&key, UpdateScope::Everything, |_| Ok(object))
            }
            _ => store.create(&path, object, StatusOnCreate::Keep),
        })
    }

    /// Changes an existing object in place, status included, as a kubelet or scheduler would
    /// (`|pod| pod["status"]["phase"] = json!("Running")`). Watches see MODIFIED.
    pub fn update(
        &self,
        path: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<Value, FakeApiServerError> {
        let path = ResourcePath::parse(path)?;
        let key = path
            .object_key()
            .ok_or_else(|| FakeApiServerError::PathNotServed {
                path: format!("{}: an update needs an object path", path.resource.plural),
            })?;
        self.shared.with_store(|store| {
            store.update(&key, UpdateScope::Everything, |stored| {
                let mut object = stored.clone();
                edit(&mut object);
                Ok(object)
            })
        })
    }

    /// The object at `path`, if it exists.
    pub fn get(&self, path: &str) -> Option<Value> {
        let key = ResourcePath::parse(path).ok()?.object_key()?;
        self.shared.read_store(|store| store.get(&key).cloned())
    }

    /// The objects of a collection path (all namespaces when the path has none), sorted by
    /// namespace and name; empty for a path that is not a collection.
    pub fn list(&self, collection_path: &str) -> Vec<Value> {
        let Ok(path) = ResourcePath::parse(collection_path) else {
            return Vec::new();
        };
        let scope = Scope {
            resource: path.resource,
            namespace: path.namespace,
            name: path.name,
            selectors: selector::Selectors::default(),
        };
        self.shared.read_store(|store| store.list(&scope))
    }

    /// Deletes the object at `path` and, as the garbage collector would, its dependents.
    /// Watches see DELETED.
    pub fn remove(&self, path: &str) -> Option<Value> {
        let key = ResourcePath::parse(path).ok()?.object_key()?;
        self.shared
            .with_store(|store| store.delete(&key, true).ok())
    }

    /// Waits until `condition` holds, re-checking after every change and every request (and
    /// every few milliseconds, for conditions on state outside the server); returns whether it
    /// held before `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> bool {
        let mut activity = self.shared.activity.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            activity.mark_unchanged();
            if condition(self) {
                return true;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return false;
            }
            let recheck_at = deadline.min(now + RECHECK_INTERVAL);
            // Woken by a change or by the recheck interval, the condition is checked again.
            let _woken = tokio::time::timeout_at(recheck_at, activity.changed()).await;
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
