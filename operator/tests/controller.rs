//! The real controller loop against the in-process FAKE API server (not Kubernetes): what the
//! operator writes for a hub, how it follows the schedule and overrides, and how it behaves
//! when the spec or the API is bad. Time comes from a manual clock the tests move.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::Role;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use midihub_api::{MidiHub, contract};
use midihub_operator::children::{ChildrenConfig, DeviceAccess};
use midihub_operator::clock::Clock;
use midihub_operator::controller::{self, Backoff, Context};
use midihub_operator::metrics::Metrics;
use midihub_runtime::endpoint;
use midihub_tests::conditions::json_condition;
use midihub_tests::fake_apiserver::{FailureRule, FakeApiServer};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A clock the test sets by hand (a test double of the system clock).
#[derive(Clone)]
struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    fn at(time: &str) -> Self {
        Self(Arc::new(Mutex::new(time.parse().unwrap())))
    }
    fn set(&self, time: &str) {
        *self.0.lock().unwrap() = time.parse().unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

const WAIT: Duration = Duration::from_secs(10);
const NODES: &str = "/api/v1/nodes";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const PODS: &str = "/api/v1/namespaces/default/pods";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

/// The operator running against a fake API server.
struct Harness {
    fake: FakeApiServer,
    clock: ManualClock,
    metrics: Arc<Metrics>,
    hubs: Api<MidiHub>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    async fn start(clock: ManualClock) -> Self {
        Self::start_with(clock, controller::DEFAULT_CONCURRENCY, &[], Vec::new()).await
    }

    /// A harness whose API server already holds the hubs `existing` (with [`evening_spec`]) and
    /// answers with `failures` from the start, and whose operator reconciles at most
    /// `concurrency` hubs at once.
    async fn start_with(
        clock: ManualClock,
        concurrency: u16,
        existing: &[&str],
        failures: Vec<FailureRule>,
    ) -> Self {
        let fake = FakeApiServer::start().await;
        for rule in failures {
            fake.fail_requests(rule);
        }
        for name in existing {
            fake.insert(
                "/apis/midihub.io/v1alpha1/namespaces/default/midihubs",
                json!({
                    "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": evening_spec(),
                }),
            );
        }
        fake.insert(
            NODES,
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-a", "labels": {
                    "midihub.io/sound-ready": "true",
                    "topology.kubernetes.io/region": "eu-central-1"}},
                "status": {"addresses": [
                    {"type": "InternalIP", "address": "10.0.0.7"},
                    {"type": "ExternalIP", "address": "203.0.113.7"}]}
            }),
        );
        let client = fake.client();
        let (controller, stores) = controller::controller(&client, &Arc::default(), concurrency);
        let metrics = Arc::new(Metrics::default().with_hubs(controller.store()));
        let context = Arc::new(Context::new(
            client.clone(),
            Arc::new(clock.clone()),
            ChildrenConfig {
                rtpmidid_image: "example.test/rtpmidid:26.01".into(),
                sidecar_image: "example.test/hub-sidecar:0.1.0".into(),
                device_access: DeviceAccess::Privileged,
            },
            metrics.clone(),
            Some("operator-test".into()),
            Backoff {
                first: Duration::from_millis(100),
                max: Duration::from_secs(1),
            },
            stores,
        ));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(controller::run(controller, context, async move {
            let _ = stopped.await;
        }));
        Self {
            fake,
            clock,
            metrics,
            hubs: Api::namespaced(client, "default"),
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn create(&self, name: &str, spec: Value) {
        let hub: MidiHub = serde_json::from_value(json!({
            "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }))
        .unwrap();
        self.hubs
            .create(&PostParams::default(), &hub)
            .await
            .unwrap();
    }

    async fn patch_spec(&self, name: &str, spec: Value) {
        self.hubs
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .unwrap();
    }

    fn object(&self, path: &str) -> Option<Value> {
        self.fake.get(path)
    }

    /// Waits until the object at `path` satisfies `check`, then returns it.
    async fn until(&self, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let found = self
            .fake
            .wait_for(WAIT, |fake| {
                fake.get(path).is_some_and(|object| check(&object))
            })
            .await;
        assert!(
            found,
            "timed out waiting for {what} at {path}; it is: {:#?}",
            self.object(path)
        );
        self.object(path).unwrap()
    }

    async fn until_replicas(&self, hub: &str, wanted: i64) -> Value {
        self.until(
            &format!("{DEPLOYMENTS}/midihub-{hub}"),
            &format!("replicas {wanted}"),
            |deployment| replicas(deployment) == wanted,
        )
        .await
    }

    async fn until_hub(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.until(
            &format!("/apis/midihub.io/v1alpha1/namespaces/default/midihubs/{name}"),
            what,
            check,
        )
        .await
    }

    fn events_with_reason(&self, reason: &str) -> Vec<Value> {
        self.fake
            .list(EVENTS)
            .into_iter()
            .filter(|event| event["reason"] == reason)
            .collect()
    }

    /// Waits for an Event with `reason` (published right after the status it announces).
    async fn until_event(&self, reason: &str) -> Vec<Value> {
        let published = self
            .fake
            .wait_for(WAIT, |_| !self.events_with_reason(reason).is_empty())
            .await;
        assert!(
            published,
            "no {reason} event; events: {:#?}",
            self.fake.list(EVENTS)
        );
        self.events_with_reason(reason)
    }

    /// Pokes hub `name` without changing its spec (an annotation), waits for the reconcile that
    /// follows, and asserts that it sent no write.
    async fn assert_idle_reconcile_writes_nothing(&self, name: &str) {
        self.fake.clear_requests();
        let before = self.reconciles();
        let path = format!("/apis/midihub.io/v1alpha1/namespaces/default/midihubs/{name}");
        let mut hub = self.object(&path).unwrap();
        hub["metadata"]["annotations"] = json!({"example.test/touched": "yes"});
        self.fake.upsert(&path, hub);
        let reconciled = self
            .fake
            .wait_for(WAIT, |_| self.reconciles() > before)
            .await;
        assert!(reconciled, "the annotation change triggers a reconcile");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let writes = self.fake.writes();
        assert!(writes.is_empty(), "an idle reconcile wrote: {writes:#?}");
    }

    fn reconciles(&self) -> u64 {
        metric(
            &endpoint::render(self.metrics.registry()).unwrap(),
            "midihub_operator_reconciles_total",
        )
    }

    /// The kubelet reports hub `name`'s pod ready on node-a; returns the hub once it is Ready.
    async fn pod_ready(&self, name: &str) -> Value {
        self.fake.insert(PODS, hub_pod(name, true));
        self.until_hub(name, "phase Ready", |hub| phase(hub) == "Ready")
            .await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("the controller stops on shutdown")
                .unwrap();
        }
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

fn replicas(deployment: &Value) -> i64 {
    deployment["spec"]["replicas"].as_i64().unwrap()
}

fn phase(hub: &Value) -> &str {
    hub["status"]["phase"].as_str().unwrap_or("")
}

/// Tuesday 2026-11-24 20:00 in Berlin (UTC+1): inside the Tue 19:00–23:00 window.
const TUESDAY_EVENING: &str = "2026-11-24T19:00:00Z";
/// Tuesday 2026-11-24 12:00 in Berlin: outside every window.
const TUESDAY_NOON: &str = "2026-11-24T11:00:00Z";

fn evening_spec() -> Value {
    json!({
        "ports": [{"port": 5004, "name": "jam-studio-a"}, {"port": 5006}],
        "region": "eu-central-1",
        "schedule": {"timeZone": "Europe/Berlin",
                     "windows": [{"days": ["Tue", "Fri"], "start": "19:00", "end": "23:00"}]},
    })
}

fn hub_pod(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("midihub-{name}-abc"), "namespace": "default",
                     "creationTimestamp": "2026-11-24T19:00:01Z",
                     "labels": {"midihub.io/hub": name,
                                "app.kubernetes.io/managed-by": "midihub-operator"}},
        "spec": {"nodeName": "node-a", "containers": []},
        "status": {"phase": "Running", "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

#[tokio::test]
async fn a_new_hub_gets_all_its_children_and_reports_its_address_once_running() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    harness.create("jam", evening_spec()).await;

    let deployment = harness
        .until(
            &format!("{DEPLOYMENTS}/midihub-jam"),
            "the hub Deployment",
            |_| true,
        )
        .await;
    assert_eq!(replicas(&deployment), 1, "inside the window the hub runs");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let host_ports: Vec<i64> = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["protocol"] == "UDP")
        .map(|p| p["hostPort"].as_i64().unwrap())
        .collect();
    assert_eq!(host_ports, vec![5004, 5005, 5006, 5007]);
    let owner = &deployment["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "MidiHub");
    assert_eq!(owner["name"], "jam");
    assert_eq!(owner["controller"], true);

    let config: ConfigMap = serde_json::from_value(
        harness
            .until(
                "/api/v1/namespaces/default/configmaps/midihub-jam",
                "the rtpmidid ConfigMap",
                |_| true,
            )
            .await,
    )
    .unwrap();
    let ini = &config.data.unwrap()["rtpmidid.ini"];
    assert!(ini.contains("name=jam-studio-a\nport=5004"), "{ini}");
    assert!(ini.contains("name=jam-5006\nport=5006"), "{ini}");

    let role: Role = serde_json::from_value(
        harness
            .until(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/midihub-jam",
                "the sidecar Role",
                |_| true,
            )
            .await,
    )
    .unwrap();
    let status_rule = role
        .rules
        .unwrap()
        .into_iter()
        .find(|rule| rule.resources.as_deref() == Some(&["midihubs/status".to_string()]))
        .expect("a rule for midihubs/status");
    assert_eq!(status_rule.resource_names, Some(vec!["jam".to_string()]));
    assert!(
        harness
            .object(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/midihub-jam"
            )
            .is_some()
    );
    assert!(
        harness
            .object("/api/v1/namespaces/default/serviceaccounts/midihub-jam")
            .is_some()
    );

    let hub = harness
        .until_hub("jam", "phase Starting", |hub| phase(hub) == "Starting")
        .await;
    assert_eq!(hub["status"]["ports"], "5004,5006");
    assert_eq!(
        hub["status"]["nextTransition"],
        "sleep Tue 23:00 Europe/Berlin"
    );
    assert_eq!(json_condition(&hub, "Awake")["reason"], "InWindow");
    assert_eq!(
        hub["status"]["observedGeneration"],
        hub["metadata"]["generation"]
    );

    // The kubelet reports the pod ready on node-a: the hub is Ready at the node's address.
    let hub = harness.pod_ready("jam").await;
    assert_eq!(hub["status"]["address"], "203.0.113.7");
    assert_eq!(
        json_condition(&hub, "PublicAddress")["reason"],
        "ExternalIP"
    );
    assert_eq!(hub["status"]["node"], "node-a");
    assert_eq!(json_condition(&hub, "Ready")["status"], "True");
    assert_eq!(harness.until_event("Waking").await.len(), 1);
    assert_eq!(harness.until_event("Ready").await.len(), 1);
    harness.stop().await;
}

#[tokio::test]
async fn at_the_end_of_a_window_the_hub_sleeps_and_says_when_it_wakes() {
    // Tuesday 22:59:58 in Berlin: two seconds before the window ends.
    let harness = Harness::start(ManualClock::at("2026-11-24T21:59:58Z")).await;
    harness.create("jam", evening_spec()).await;
    harness.until_replicas("jam", 1).await;
    harness
        .until_hub("jam", "phase Starting", |hub| phase(hub) == "Starting")
        .await;
    let reconciles_before = harness.reconciles();

    // Time passes the boundary; nothing else happens. The operator requeued itself for it.
    harness.clock.set("2026-11-24T22:00:01Z");
    harness.until_replicas("jam", 0).await;
    let hub = harness
        .until_hub("jam", "phase Sleeping", |hub| phase(hub) == "Sleeping")
        .await;
    assert_eq!(
        hub["status"]["nextTransition"],
        "wake Fri 19:00 Europe/Berlin"
    );
    assert_eq!(hub["status"]["nextTransitionTime"], "2026-11-27T18:00:00Z");
    assert_eq!(json_condition(&hub, "Awake")["reason"], "OutsideWindows");
    assert!(
        hub["status"].get("address").is_none(),
        "a sleeping hub has no address"
    );
    assert_eq!(harness.until_event("Sleeping").await.len(), 1);
    // A requeue at the boundary, not a polling loop: a handful of reconciles in all.
    let reconciles = harness.reconciles() - reconciles_before;
    assert!(
        reconciles <= 4,
        "{reconciles} reconciles for one transition"
    );
    harness.stop().await;
}

#[tokio::test]
async fn manual_wake_and_suspend_beat_the_schedule() {
    let harness = Harness::start(ManualClock::at(TUESDAY_NOON)).await;
    harness.create("jam", evening_spec()).await;
    harness.until_replicas("jam", 0).await;
    harness
        .until_hub("jam", "phase Sleeping", |hub| phase(hub) == "Sleeping")
        .await;

    harness
        .patch_spec("jam", json!({"wakeUntil": "2026-11-24T13:00:00Z"}))
        .await;
    harness.until_replicas("jam", 1).await;
    let hub = harness
        .until_hub("jam", "woken manually", |hub| {
            json_condition(hub, "Awake")["reason"] == "ManualWake"
        })
        .await;
    assert_eq!(phase(&hub), "Starting");
    assert_eq!(hub["status"]["nextTransitionTime"], "2026-11-24T13:00:00Z");

    harness
        .patch_spec("jam", json!({"wakeUntil": null, "suspend": true}))
        .await;
    harness.until_replicas("jam", 0).await;
    let hub = harness
        .until_hub("jam", "suspended", |hub| {
            json_condition(hub, "Awake")["reason"] == "Suspended"
        })
        .await;
    assert_eq!(phase(&hub), "Sleeping");
    assert!(hub["status"].get("nextTransition").is_none());

    // Suspend holds even inside a window.
    harness.clock.set(TUESDAY_EVENING);
    harness
        .patch_spec("jam", json!({"region": "eu-central-1"}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deployment = harness
        .object(&format!("{DEPLOYMENTS}/midihub-jam"))
        .unwrap();
    assert_eq!(replicas(&deployment), 0);
    harness.stop().await;
}

/// The evening hub with an overtime of `grace` and `limit`.
fn evening_spec_with_overtime(grace: &str, limit: &str) -> Value {
    let mut spec = evening_spec();
    spec["overtime"] = json!({"grace": grace, "limit": limit});
    spec
}

/// Hub `name`, created two seconds before its Tuesday window ends, Ready with Alice playing.
async fn playing_at_the_end_of_the_window(spec: Value) -> Harness {
    let harness = Harness::start(ManualClock::at("2026-11-24T21:59:58Z")).await;
    harness.create("jam", spec).await;
    harness.pod_ready("jam").await;
    publish_as_sidecar(&harness, "jam").await;
    harness
}

/// The sidecar reports that everyone left.
async fn publish_empty_rooms_as_sidecar(harness: &Harness, hub: &str) {
    apply_as_sidecar(
        harness,
        hub,
        json!({"participants": [], "participantCount": 0}),
    )
    .await;
}

fn in_overtime(hub: &Value) -> bool {
    hub["status"]["overtime"].is_object()
}

#[tokio::test]
async fn a_window_that_ends_while_someone_plays_keeps_the_hub_awake_until_its_rooms_are_empty_for_the_grace()
 {
    let harness = playing_at_the_end_of_the_window(evening_spec_with_overtime("3s", "1h")).await;

    // The window ends (23:00 in Berlin) with Alice still playing: the hub stays awake.
    harness.clock.set("2026-11-24T22:00:01Z");
    let hub = harness.until_hub("jam", "overtime", in_overtime).await;
    assert_eq!(
        hub["status"]["overtime"],
        json!({"windowEnded": "2026-11-24T22:00:00Z"})
    );
    assert_eq!(
        hub["status"]["nextTransition"],
        "sleeps when empty, window ended Tue 23:00 Europe/Berlin"
    );
    assert_eq!(hub["status"]["nextTransitionTime"], "2026-11-24T23:00:00Z");
    assert_eq!(json_condition(&hub, "Awake")["reason"], "Overtime");
    assert_eq!(phase(&hub), "Ready");
    assert_eq!(
        replicas(
            &harness
                .object(&format!("{DEPLOYMENTS}/midihub-jam"))
                .unwrap()
        ),
        1
    );
    let started = harness.until_event("OvertimeStarted").await;
    assert!(
        started[0]["note"]
            .as_str()
            .unwrap()
            .contains("sleeps when empty"),
        "{started:#?}"
    );

    // Alice leaves: her leaving alone (a change of the sidecar's fields) wakes the reconcile
    // that starts the grace period.
    publish_empty_rooms_as_sidecar(&harness, "jam").await;
    let hub = harness
        .until_hub("jam", "the rooms' emptiness recorded", |hub| {
            hub["status"]["overtime"]["emptySince"] == "2026-11-24T22:00:01Z"
        })
        .await;
    assert_eq!(
        hub["status"]["nextTransition"],
        "sleep Tue 23:00 Europe/Berlin unless someone joins"
    );
    assert_eq!(hub["status"]["nextTransitionTime"], "2026-11-24T22:00:04Z");
    assert_eq!(phase(&hub), "Ready");

    // The grace period passes; the operator had requeued itself for its end.
    harness.clock.set("2026-11-24T22:00:05Z");
    harness.until_replicas("jam", 0).await;
    let hub = harness
        .until_hub("jam", "phase Sleeping", |hub| phase(hub) == "Sleeping")
        .await;
    assert!(!in_overtime(&hub), "{hub:#?}");
    assert_eq!(
        hub["status"]["nextTransition"],
        "wake Fri 19:00 Europe/Berlin"
    );
    let ended = harness.until_event("OvertimeEnded").await;
    assert_eq!(
        ended[0]["note"],
        "the rooms have been empty since 22:00:01 UTC: the hub sleeps"
    );
    assert_eq!(harness.until_event("Sleeping").await.len(), 1);
    harness.stop().await;
}

#[tokio::test]
async fn a_hub_still_playing_at_the_overtime_limit_sleeps() {
    let harness = playing_at_the_end_of_the_window(evening_spec_with_overtime("10m", "3s")).await;
    harness.clock.set("2026-11-24T22:00:01Z");
    let hub = harness.until_hub("jam", "overtime", in_overtime).await;
    assert_eq!(hub["status"]["nextTransitionTime"], "2026-11-24T22:00:03Z");

    // Alice plays on past the limit.
    harness.clock.set("2026-11-24T22:00:04Z");
    harness.until_replicas("jam", 0).await;
    let ended = harness.until_event("OvertimeEnded").await;
    assert_eq!(
        ended[0]["note"],
        "the limit after the window's end (22:00:00 UTC) is reached with participants still connected: the hub sleeps"
    );
    harness.stop().await;
}

#[tokio::test]
async fn a_window_that_ends_with_empty_rooms_sleeps_at_once() {
    let harness = Harness::start(ManualClock::at("2026-11-24T21:59:58Z")).await;
    harness
        .create("jam", evening_spec_with_overtime("10m", "2h"))
        .await;
    harness.pod_ready("jam").await;
    publish_empty_rooms_as_sidecar(&harness, "jam").await;
    harness.clock.set("2026-11-24T22:00:01Z");
    harness.until_replicas("jam", 0).await;
    let hub = harness
        .until_hub("jam", "phase Sleeping", |hub| phase(hub) == "Sleeping")
        .await;
    assert!(!in_overtime(&hub));
    assert!(harness.events_with_reason("OvertimeStarted").is_empty());
    harness.stop().await;
}

#[tokio::test]
async fn more_hubs_than_reconcile_slots_at_start_up_all_converge() {
    // With one reconcile at a time, hubs found at start-up (and put off while the caches
    // fill) take turns, and each gets its children.
    let harness = Harness::start_with(
        ManualClock::at(TUESDAY_EVENING),
        1,
        &["one", "two", "three"],
        Vec::new(),
    )
    .await;
    for name in ["one", "two", "three"] {
        harness.until_replicas(name, 1).await;
    }
    harness.stop().await;
}

#[tokio::test]
async fn hubs_reconciled_while_a_cache_is_still_filling_all_converge() {
    // The hubs' cache is filled, the nodes' is not (its first lists fail): several reconciles
    // come before it is. Each must be tried again once it is filled. (kube's Store keeps one
    // waker for `wait_until_ready`: reconciles that all waited on it were never woken but the
    // last, and their hubs stayed Starting.)
    let hubs = ["one", "two", "three", "four"];
    let harness = Harness::start_with(
        ManualClock::at(TUESDAY_EVENING),
        controller::DEFAULT_CONCURRENCY,
        &hubs,
        vec![FailureRule {
            method: Some("GET".into()),
            path_contains: "/api/v1/nodes".into(),
            status: 500,
            times: 2,
        }],
    )
    .await;
    for name in hubs {
        harness.until_replicas(name, 1).await;
    }
    harness.stop().await;
}

#[tokio::test]
async fn reconciling_an_unchanged_hub_sends_no_write() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    harness.create("jam", evening_spec()).await;
    harness.pod_ready("jam").await;
    // Let the operator settle, then poke the hub without changing its spec.
    tokio::time::sleep(Duration::from_millis(500)).await;
    harness.assert_idle_reconcile_writes_nothing("jam").await;
    // Nor does it read: children, pods and nodes come from the operator's caches (watches
    // apart, which may reconnect at any time).
    let reads: Vec<_> = harness
        .fake
        .requests()
        .into_iter()
        .filter(|request| !request.query.contains("watch=true"))
        .map(|request| format!("{} {}?{}", request.method, request.path, request.query))
        .collect();
    assert!(reads.is_empty(), "an idle reconcile read: {reads:#?}");
    harness.stop().await;
}

#[tokio::test]
async fn an_unknown_time_zone_is_reported_and_does_not_affect_other_hubs() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    let mut broken = evening_spec();
    broken["schedule"]["timeZone"] = json!("Mars/Olympus");
    harness.create("broken", broken).await;
    harness.create("jam", evening_spec()).await;

    let hub = harness
        .until_hub("broken", "phase Invalid", |hub| phase(hub) == "Invalid")
        .await;
    let awake = json_condition(&hub, "Awake");
    assert_eq!(awake["status"], "False");
    assert_eq!(awake["reason"], "UnknownTimeZone");
    assert!(
        awake["message"].as_str().unwrap().contains("Mars/Olympus"),
        "{awake}"
    );
    let warnings = harness.until_event("UnknownTimeZone").await;
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["type"], "Warning");
    let deployment = harness
        .until(
            &format!("{DEPLOYMENTS}/midihub-broken"),
            "the broken hub's Deployment",
            |_| true,
        )
        .await;
    assert_eq!(
        replicas(&deployment),
        0,
        "a hub that cannot be evaluated sleeps"
    );

    harness.until_replicas("jam", 1).await;
    harness
        .until_hub("jam", "phase Starting", |hub| phase(hub) == "Starting")
        .await;

    // Fixing the zone heals the hub.
    harness
        .patch_spec(
            "broken",
            json!({"schedule": {"timeZone": "Europe/Berlin",
            "windows": [{"days": ["Tue"], "start": "19:00", "end": "23:00"}]}}),
        )
        .await;
    harness
        .until(
            &format!("{DEPLOYMENTS}/midihub-broken"),
            "replicas 1",
            |d| replicas(d) == 1,
        )
        .await;
    harness.stop().await;
}

#[tokio::test]
async fn api_errors_back_off_and_recover_without_panicking() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    harness.fake.fail_requests(FailureRule {
        method: Some("PATCH".into()),
        path_contains: "/deployments/midihub-jam".into(),
        status: 500,
        times: 3,
    });
    harness.create("jam", evening_spec()).await;
    harness
        .until(
            &format!("{DEPLOYMENTS}/midihub-jam"),
            "replicas 1 after retries",
            |d| replicas(d) == 1,
        )
        .await;
    let failed_patches = harness
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/deployments/midihub-jam"))
        .count();
    assert_eq!(
        failed_patches, 4,
        "three failures, then the write that worked"
    );
    let errors = metric(
        &endpoint::render(harness.metrics.registry()).unwrap(),
        "midihub_operator_reconcile_errors_total",
    );
    assert_eq!(errors, 3);
    harness
        .until_hub("jam", "phase Starting", |hub| phase(hub) == "Starting")
        .await;
    harness.stop().await;
}

#[tokio::test]
/// Kubernetes' garbage collector deletes owned objects; the fake simulates it by following the
/// owner references, so this checks that every child carries the right one.
async fn deleting_a_hub_deletes_its_children_through_owner_references() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    harness.create("jam", evening_spec()).await;
    harness
        .until(
            &format!("{DEPLOYMENTS}/midihub-jam"),
            "the Deployment",
            |_| true,
        )
        .await;
    harness
        .hubs
        .delete("jam", &Default::default())
        .await
        .unwrap();
    let gone = harness
        .fake
        .wait_for(WAIT, |fake| {
            fake.get(&format!("{DEPLOYMENTS}/midihub-jam")).is_none()
                && fake
                    .get("/api/v1/namespaces/default/configmaps/midihub-jam")
                    .is_none()
        })
        .await;
    assert!(gone, "owner references take the children with the hub");
    harness.stop().await;
}

#[tokio::test]
async fn a_region_without_sound_ready_nodes_is_unschedulable_with_a_warning() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    let mut spec = evening_spec();
    spec["region"] = json!("ap-southeast-2");
    harness.create("far", spec).await;
    let hub = harness
        .until_hub("far", "phase Unschedulable", |hub| {
            phase(hub) == "Unschedulable"
        })
        .await;
    let ready = json_condition(&hub, "Ready");
    assert_eq!(ready["reason"], "NoEligibleNode");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("ap-southeast-2"),
        "{ready}"
    );
    let warnings = harness.until_event("NoEligibleNode").await;
    assert_eq!(warnings[0]["type"], "Warning");
    // The Deployment still asks for the pod: it lands as soon as such a node appears.
    harness.until_replicas("far", 1).await;
    harness.stop().await;
}

#[tokio::test]
async fn a_namespace_that_refuses_hub_pods_blocks_the_hub_with_the_fix_and_a_warning() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    harness.create("jam", evening_spec()).await;
    let deployment = format!("{DEPLOYMENTS}/midihub-jam");
    harness.until_replicas("jam", 1).await;

    // The ReplicaSet controller cannot create the pod; the deployment controller says so.
    let refusal = r#"pods "midihub-jam-6d4cf56db6-x7k2p" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), hostPort (container "rtpmidid" uses hostPorts 5004, 5005, 5006, 5007), privileged (containers "rtpmidid", "hub-sidecar" must not set securityContext.privileged=true)"#;
    harness
        .fake
        .update(&deployment, |deployment| {
            deployment["status"] = json!({"conditions": [
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated"},
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                 "message": refusal}]});
        })
        .unwrap();

    let hub = harness
        .until_hub("jam", "phase Blocked", |hub| phase(hub) == "Blocked")
        .await;
    let ready = json_condition(&hub, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "PodSecurity");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains("pod-security.kubernetes.io/enforce=privileged"),
        "{message}"
    );
    assert!(message.contains(refusal), "{message}");
    let warnings = harness.until_event("PodSecurity").await;
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["type"], "Warning");
    assert!(
        warnings[0]["note"]
            .as_str()
            .unwrap()
            .contains("enforce=privileged")
    );

    // The namespace is relabelled: the pod is created and the hub becomes Ready.
    harness
        .fake
        .update(&deployment, |deployment| {
            deployment["status"] = json!({"conditions": []});
        })
        .unwrap();
    harness.pod_ready("jam").await;
    assert_eq!(harness.until_event("Ready").await.len(), 1);
    assert_eq!(
        harness.events_with_reason("Waking").len(),
        1,
        "the hub woke once; its pod was refused and then created"
    );
    harness.stop().await;
}

/// The fields a hub's sidecar publishes, applied as the sidecar does (server-side apply under
/// its own field manager). The fake treats lists atomically, so the `Wiring` condition is left
/// out here: on the fake it would replace the operator's conditions instead of joining them;
/// that its entry alone is removed needs a real API server's list-map merge.
async fn publish_as_sidecar(harness: &Harness, hub: &str) {
    publish_latency_as_sidecar(harness, hub, 4.4).await;
}

/// [`publish_as_sidecar`] with a round trip of `ms`.
async fn publish_latency_as_sidecar(harness: &Harness, hub: &str, ms: f64) {
    let status = json!({
        "participants": [{"port": 5004, "room": "jam-studio-a", "name": "Alice",
                          "remoteAddress": "203.0.113.10:5004",
                          "latency": {"lastMs": ms, "averageMs": ms, "jitterMs": 0.1}}],
        "participantCount": 1,
        "latency": format!("avg {ms}ms max {ms}ms"),
    });
    apply_as_sidecar(harness, hub, status).await;
}

/// Applies `status` to hub `hub` as its sidecar does: server-side apply under its own field
/// manager.
async fn apply_as_sidecar(harness: &Harness, hub: &str, status: Value) {
    let patch = json!({
        "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub", "status": status,
    });
    harness
        .hubs
        .patch_status(
            hub,
            &PatchParams::apply(contract::SIDECAR_FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_sidecars_latency_updates_wake_no_reconcile() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    harness.create("jam", evening_spec()).await;
    harness.pod_ready("jam").await;
    // The first publication counts: whether a sidecar wrote at all is the operator's business
    // (it clears what a vanished sidecar left).
    publish_as_sidecar(&harness, "jam").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = harness.reconciles();
    for ms in [5.1, 6.2, 4.9] {
        publish_latency_as_sidecar(&harness, "jam", ms).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        harness.reconciles(),
        before,
        "latency updates woke a reconcile"
    );
    // A touch of the hub itself still does.
    harness.assert_idle_reconcile_writes_nothing("jam").await;
    harness.stop().await;
}

fn lists_participants(hub: &Value) -> bool {
    ["participants", "participantCount", "latency"]
        .iter()
        .any(|field| hub["status"].get(field).is_some())
}

#[tokio::test]
async fn participants_of_a_hard_killed_hub_pod_are_cleared_once_no_pod_remains() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    harness.create("jam", evening_spec()).await;
    let pod = format!("{PODS}/midihub-jam-abc");
    harness.pod_ready("jam").await;
    publish_as_sidecar(&harness, "jam").await;

    // The hub is suspended; its pod is still there (terminating): the sidecar may yet publish
    // its farewell, so the operator leaves its fields alone.
    harness.patch_spec("jam", json!({"suspend": true})).await;
    harness.until_replicas("jam", 0).await;
    harness
        .until_hub("jam", "phase Sleeping", |hub| phase(hub) == "Sleeping")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hub = harness
        .object("/apis/midihub.io/v1alpha1/namespaces/default/midihubs/jam")
        .unwrap();
    assert_eq!(hub["status"]["participantCount"], 1, "{hub:#}");

    // The pod is killed hard (or its node is lost): no farewell ever comes.
    harness.fake.remove(&pod);
    let hub = harness
        .until_hub("jam", "no participants listed", |hub| {
            !lists_participants(hub)
        })
        .await;
    assert_eq!(phase(&hub), "Sleeping");
    assert_eq!(json_condition(&hub, "Awake")["reason"], "Suspended");
    assert_eq!(json_condition(&hub, "Ready")["reason"], "Sleeping");
    let clearing = harness
        .fake
        .writes()
        .into_iter()
        .filter(|write| {
            write.path.ends_with("/midihubs/jam/status")
                && write.query_param("fieldManager").as_deref()
                    == Some(contract::SIDECAR_FIELD_MANAGER)
        })
        .count();
    assert_eq!(
        clearing, 2,
        "the test's publication, then one clearing apply in the sidecar's name"
    );

    // Idle again: a reconcile of the clean, sleeping hub writes nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    harness.assert_idle_reconcile_writes_nothing("jam").await;
    harness.stop().await;
}

#[tokio::test]
async fn participants_are_cleared_when_an_awake_hubs_pod_is_lost() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    harness.create("jam", evening_spec()).await;
    harness.pod_ready("jam").await;
    publish_as_sidecar(&harness, "jam").await;

    harness.fake.remove(&format!("{PODS}/midihub-jam-abc"));
    let hub = harness
        .until_hub("jam", "no participants listed", |hub| {
            !lists_participants(hub)
        })
        .await;
    assert_eq!(
        phase(&hub),
        "Starting",
        "the Deployment will make a new pod"
    );
    harness.stop().await;
}

#[tokio::test]
async fn an_address_named_on_the_node_is_the_hubs_address() {
    let harness = Harness::start(ManualClock::at(TUESDAY_EVENING)).await;
    harness
        .fake
        .update("/api/v1/nodes/node-a", |node| {
            node["metadata"]["annotations"] =
                json!({"midihub.io/public-address": "hub.example.org"});
        })
        .unwrap();
    harness.create("jam", evening_spec()).await;
    let hub = harness.pod_ready("jam").await;
    assert_eq!(hub["status"]["address"], "hub.example.org");
    let public = json_condition(&hub, "PublicAddress");
    assert_eq!(public["status"], "True");
    assert_eq!(public["reason"], "Annotated");
    harness.stop().await;
}
