//! The fake API server (a test double of Kubernetes, not Kubernetes) driven through the real
//! kube client and kube-runtime watcher, as the operator's tests will drive it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use midihub_tests::fake_apiserver::{FailureRule, FakeApiServer, Method};
use serde_json::{Value, json};

const SHORT: Duration = Duration::from_secs(2);

fn config_map(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "labels": labels },
        "data": { "hello": "world" },
    }))
    .unwrap()
}

fn deployment(name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "hub", "image": "rtpmidid:1" }] },
            },
        },
    })
}

/// Server-side applies the test Deployment "hub" with `replicas` under `params`.
async fn apply_hub(
    deployments: &Api<Deployment>,
    params: &PatchParams,
    replicas: i32,
) -> kube::Result<Deployment> {
    deployments
        .patch("hub", params, &Patch::Apply(deployment("hub", replicas)))
        .await
}

fn api_error_code(error: kube::Error) -> (u16, String) {
    match error {
        kube::Error::Api(status) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_get_and_list_with_label_and_field_selectors() {
    let fake = FakeApiServer::start().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());

    let created = config_maps
        .create(
            &PostParams::default(),
            &config_map("hub-a", json!({ "app": "midihub", "region": "eu" })),
        )
        .await
        .unwrap();
    config_maps
        .create(
            &PostParams::default(),
            &config_map("hub-b", json!({ "app": "midihub", "region": "us" })),
        )
        .await
        .unwrap();
    config_maps
        .create(
            &PostParams::default(),
            &config_map("other", json!({ "app": "other" })),
        )
        .await
        .unwrap();

    assert_eq!(created.namespace().as_deref(), Some("default"));
    assert!(created.uid().is_some());
    assert!(created.creation_timestamp().is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let fetched = config_maps.get("hub-a").await.unwrap();
    assert_eq!(fetched.data.unwrap()["hello"], "world");
    assert_eq!(
        fetched.metadata.resource_version,
        created.metadata.resource_version
    );

    let names = |list: kube::core::ObjectList<ConfigMap>| {
        list.items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>()
    };
    let midihubs = config_maps
        .list(&ListParams::default().labels("app=midihub"))
        .await
        .unwrap();
    assert_eq!(names(midihubs), ["hub-a", "hub-b"]);
    let in_us = config_maps
        .list(&ListParams::default().labels("app=midihub,region=us"))
        .await
        .unwrap();
    assert_eq!(names(in_us), ["hub-b"]);
    let by_name = config_maps
        .list(&ListParams::default().fields("metadata.name=hub-b"))
        .await
        .unwrap();
    assert_eq!(names(by_name), ["hub-b"]);
    // One page holds everything: no continue token, which is a valid answer to a limit.
    let one_page = config_maps
        .list(&ListParams::default().labels("app=midihub").limit(1))
        .await
        .unwrap();
    assert_eq!(one_page.metadata.continue_, None);
    assert_eq!(names(one_page), ["hub-a", "hub-b"]);
    let elsewhere: Api<ConfigMap> = Api::namespaced(fake.client(), "elsewhere");
    assert!(
        elsewhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let everywhere: Api<ConfigMap> = Api::all(fake.client());
    assert_eq!(
        everywhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );

    assert_eq!(
        api_error_code(config_maps.get("missing").await.unwrap_err()),
        (404, "NotFound".to_owned())
    );
    assert!(config_maps.get_opt("missing").await.unwrap().is_none());
    let duplicate = config_maps
        .create(&PostParams::default(), &config_map("hub-a", json!({})))
        .await
        .unwrap_err();
    assert_eq!(api_error_code(duplicate), (409, "AlreadyExists".to_owned()));
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let fake = FakeApiServer::start().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());
    let operator = PatchParams::apply("midihub-operator");
    let editor = PatchParams::apply("rooms-editor");
    let rooms = |labels: Value, annotations: Value, data: Value| {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "rooms", "labels": labels, "annotations": annotations },
            "data": data,
        })
    };
    let first = rooms(
        json!({ "app": "midihub" }),
        json!({}),
        json!({ "lobby": "open", "stage": "closed" }),
    );
    let from_editor = rooms(
        json!({}),
        json!({ "note": "x" }),
        json!({ "backstage": "open" }),
    );
    let changed = rooms(
        json!({ "app": "midihub" }),
        json!({}),
        json!({ "lobby": "open", "stage": "open" }),
    );

    let created = config_maps
        .patch("rooms", &operator, &Patch::Apply(&first))
        .await
        .unwrap();
    config_maps
        .patch("rooms", &editor, &Patch::Apply(&from_editor))
        .await
        .unwrap();
    let merged = config_maps
        .patch("rooms", &operator, &Patch::Apply(&changed))
        .await
        .unwrap();
    let reapplied = config_maps
        .patch("rooms", &operator, &Patch::Apply(&changed))
        .await
        .unwrap();

    assert_eq!(created.data.as_ref().unwrap()["stage"], "closed");
    let data = merged.data.clone().unwrap();
    assert_eq!(
        (
            data["lobby"].as_str(),
            data["stage"].as_str(),
            data["backstage"].as_str()
        ),
        ("open", "open", "open")
    );
    assert_eq!(merged.labels()["app"], "midihub");
    assert_eq!(merged.annotations()["note"], "x");
    assert_eq!(merged.uid(), created.uid());
    assert!(merged.metadata.managed_fields.is_none());
    // Applying the same thing again changes nothing, so the resource version stays.
    assert_eq!(reapplied.resource_version(), merged.resource_version());
    let writes = fake.writes();
    assert_eq!(writes.len(), 4);
    assert!(writes.iter().all(|request| request.method == Method::PATCH
        && request.content_type.as_deref() == Some("application/apply-patch+yaml")));
    assert_eq!(
        writes[1].query_param("fieldManager").as_deref(),
        Some("rooms-editor")
    );
    assert_eq!(writes[1].body.as_ref(), Some(&from_editor));
}

#[tokio::test]
async fn server_side_apply_drops_fields_a_manager_stops_applying() {
    let fake = FakeApiServer::start().await;
    let deployments: Api<Deployment> = Api::default_namespaced(fake.client());
    let params = PatchParams::apply("midihub-operator");
    apply_hub(&deployments, &params, 1).await.unwrap();
    let status =
        |fields: Value| json!({ "apiVersion": "apps/v1", "kind": "Deployment", "status": fields });
    deployments
        .patch_status(
            "hub",
            &params,
            &Patch::Apply(status(json!({ "replicas": 1, "readyReplicas": 1 }))),
        )
        .await
        .unwrap();
    // Another writer's label is not this manager's to remove.
    deployments
        .patch(
            "hub",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "team": "sound" } } })),
        )
        .await
        .unwrap();

    let mut without_template_labels = deployment("hub", 1);
    without_template_labels["metadata"]["labels"] = json!({ "app": "hub" });
    let spec = deployments
        .patch("hub", &params, &Patch::Apply(&without_template_labels))
        .await
        .unwrap();
    let after_status = deployments
        .patch_status(
            "hub",
            &params,
            &Patch::Apply(status(json!({ "replicas": 1 }))),
        )
        .await
        .unwrap();
    let relabelled = apply_hub(&deployments, &params, 1).await.unwrap();

    assert_eq!(spec.labels().get("app").map(String::as_str), Some("hub"));
    let status = after_status.status.unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (Some(1), None));
    assert_eq!(
        relabelled.labels().get("app"),
        None,
        "the label this manager applied is gone"
    );
    assert_eq!(relabelled.labels()["team"], "sound");
    assert_eq!(
        relabelled.status.unwrap().replicas,
        Some(1),
        "a main-resource apply leaves status"
    );
}

#[tokio::test]
async fn applying_over_another_managers_field_conflicts_unless_forced() {
    let fake = FakeApiServer::start().await;
    let deployments: Api<Deployment> = Api::default_namespaced(fake.client());
    apply_hub(&deployments, &PatchParams::apply("midihub-operator"), 1)
        .await
        .unwrap();

    let conflict = apply_hub(&deployments, &PatchParams::apply("kubectl"), 3)
        .await
        .unwrap_err();
    let same_value = apply_hub(&deployments, &PatchParams::apply("kubectl"), 1).await;
    let forced = apply_hub(&deployments, &PatchParams::apply("kubectl").force(), 3)
        .await
        .unwrap();

    assert_eq!(api_error_code(conflict), (409, "Conflict".to_owned()));
    assert!(
        same_value.is_ok(),
        "applying the value already there is no conflict"
    );
    assert_eq!(forced.spec.unwrap().replicas, Some(3));
}

#[tokio::test]
async fn status_writes_leave_spec_and_generation_alone_and_spec_changes_bump_generation() {
    let fake = FakeApiServer::start().await;
    let deployments: Api<Deployment> = Api::default_namespaced(fake.client());
    let params = PatchParams::apply("midihub-operator");
    let mut with_status = deployment("hub", 1);
    with_status["status"] = json!({ "replicas": 7 });
    let created = deployments
        .patch("hub", &params, &Patch::Apply(&with_status))
        .await
        .unwrap();
    assert!(
        created.status.is_none(),
        "status sent to the main resource is ignored"
    );

    let status_patch =
        json!({ "status": { "readyReplicas": 1, "replicas": 1 }, "spec": { "replicas": 9 } });
    let after_status = deployments
        .patch_status("hub", &PatchParams::default(), &Patch::Merge(&status_patch))
        .await
        .unwrap();
    assert_eq!(
        after_status.status.as_ref().unwrap().ready_replicas,
        Some(1)
    );
    assert_eq!(after_status.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(after_status.metadata.generation, Some(1));
    assert_ne!(after_status.resource_version(), created.resource_version());

    let mut scaled = deployment("hub", 0);
    scaled["status"] = json!({ "readyReplicas": 5 });
    let after_spec = deployments
        .patch("hub", &params, &Patch::Apply(&scaled))
        .await
        .unwrap();
    assert_eq!(after_spec.spec.as_ref().unwrap().replicas, Some(0));
    assert_eq!(after_spec.status.as_ref().unwrap().ready_replicas, Some(1));
    assert_eq!(after_spec.metadata.generation, Some(2));

    let labelled = deployments
        .patch(
            "hub",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "tier": "edge" } } })),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(2),
        "metadata changes do not bump generation"
    );

    let missing = deployments
        .patch_status(
            "absent",
            &PatchParams::default(),
            &Patch::Merge(&status_patch),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error_code(missing).0, 404);
}

#[tokio::test]
async fn a_write_with_a_stale_resource_version_conflicts() {
    let fake = FakeApiServer::start().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());
    let original = config_maps
        .create(&PostParams::default(), &config_map("rooms", json!({})))
        .await
        .unwrap();
    let write = |hello: &str| {
        Patch::Merge(json!({
            "metadata": { "resourceVersion": original.resource_version() },
            "data": { "hello": hello },
        }))
    };
    let patched = config_maps
        .patch("rooms", &PatchParams::default(), &write("again"))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["hello"], "again");

    let stale = config_maps
        .patch("rooms", &PatchParams::default(), &write("once more"))
        .await
        .unwrap_err();
    assert_eq!(api_error_code(stale), (409, "Conflict".to_owned()));
}

#[tokio::test]
async fn a_watcher_sees_added_modified_and_deleted() {
    let fake = FakeApiServer::start().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());
    config_maps
        .create(&PostParams::default(), &config_map("before", json!({})))
        .await
        .unwrap();
    let mut events = watcher(config_maps.clone(), watcher::Config::default()).boxed();
    let mut next = async || {
        tokio::time::timeout(SHORT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };

    assert!(matches!(next().await, watcher::Event::Init));
    assert!(matches!(next().await, watcher::Event::InitApply(cm) if cm.name_any() == "before"));
    assert!(matches!(next().await, watcher::Event::InitDone));

    config_maps
        .create(&PostParams::default(), &config_map("during", json!({})))
        .await
        .unwrap();
    assert!(matches!(next().await, watcher::Event::Apply(cm) if cm.name_any() == "during"));
    config_maps
        .patch(
            "during",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "hello": "there" } })),
        )
        .await
        .unwrap();
    assert!(
        matches!(next().await, watcher::Event::Apply(cm) if cm.data.as_ref().unwrap()["hello"] == "there")
    );
    config_maps
        .delete("during", &DeleteParams::default())
        .await
        .unwrap();
    assert!(matches!(next().await, watcher::Event::Delete(cm) if cm.name_any() == "during"));

    // The watcher listed, then watched from the list's resource version; "during" was created
    // before that watch started and still arrived, from the change history.
    let requests = fake.requests();
    let list = requests
        .iter()
        .find(|request| request.query_param("limit").is_some())
        .unwrap();
    let watch = requests
        .iter()
        .find(|request| request.query_param("watch").is_some())
        .unwrap();
    assert_eq!(list.query_param("limit").as_deref(), Some("500"));
    assert_eq!(watch.query_param("resourceVersion").as_deref(), Some("1"));
    assert_eq!(
        watch.query_param("allowWatchBookmarks").as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn a_watcher_sees_direct_store_changes() {
    let fake = FakeApiServer::start().await;
    fake.insert(
        "/api/v1/nodes",
        json!({ "metadata": { "name": "worker-1" }, "status": { "phase": "Running" } }),
    );
    let pods: Api<Pod> = Api::default_namespaced(fake.client());
    let mut events = watcher(pods, watcher::Config::default()).boxed();
    let mut next = async || {
        tokio::time::timeout(SHORT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert!(matches!(next().await, watcher::Event::Init));
    assert!(matches!(next().await, watcher::Event::InitDone));

    let pod = json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "hub-0", "namespace": "default" } });
    fake.insert("/api/v1/namespaces/default/pods", pod);
    assert!(matches!(next().await, watcher::Event::Apply(pod) if pod.status.is_none()));
    fake.update("/api/v1/namespaces/default/pods/hub-0", |pod| {
        pod["status"] = json!({ "phase": "Running", "podIP": "10.0.0.7" });
    })
    .unwrap();
    assert!(matches!(next().await, watcher::Event::Apply(pod)
        if pod.status.as_ref().unwrap().phase.as_deref() == Some("Running")));
    assert!(
        fake.remove("/api/v1/namespaces/default/pods/hub-0")
            .is_some()
    );
    assert!(matches!(next().await, watcher::Event::Delete(_)));

    let nodes: Api<Node> = Api::all(fake.client());
    let node = nodes.get("worker-1").await.unwrap();
    assert_eq!(node.status.unwrap().phase.as_deref(), Some("Running"));
}

#[tokio::test]
async fn a_watch_resumes_from_a_resource_version_and_follows_its_selector() {
    let fake = FakeApiServer::start().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());
    let earlier = config_maps
        .create(
            &PostParams::default(),
            &config_map("earlier", json!({ "app": "midihub" })),
        )
        .await
        .unwrap();
    let start = earlier.resource_version().unwrap();
    config_maps
        .create(
            &PostParams::default(),
            &config_map("hub", json!({ "app": "midihub" })),
        )
        .await
        .unwrap();
    config_maps
        .create(&PostParams::default(), &config_map("unrelated", json!({})))
        .await
        .unwrap();
    config_maps
        .patch(
            "hub",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "app": null } } })),
        )
        .await
        .unwrap();

    let params = WatchParams::default().labels("app=midihub").timeout(1);
    let events: Vec<WatchEvent<ConfigMap>> = config_maps
        .watch(&params, &start)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();

    let seen: Vec<(&str, String)> = events
        .iter()
        .map(|event| match event {
            WatchEvent::Added(cm) => ("ADDED", cm.name_any()),
            WatchEvent::Modified(cm) => ("MODIFIED", cm.name_any()),
            WatchEvent::Deleted(cm) => ("DELETED", cm.name_any()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // The label removal takes the object out of the selection, which a watch reports as a deletion.
    assert_eq!(
        seen,
        [("ADDED", "hub".to_owned()), ("DELETED", "hub".to_owned())]
    );
}

#[tokio::test]
async fn deleting_an_owner_deletes_its_dependents_recursively() {
    let fake = FakeApiServer::start().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());
    let owner_reference = |owner: &ConfigMap| json!([{ "apiVersion": "v1", "kind": "ConfigMap", "name": owner.name_any(), "uid": owner.uid().unwrap() }]);
    let owner = config_maps
        .create(&PostParams::default(), &config_map("owner", json!({})))
        .await
        .unwrap();
    let mut child = config_map("child", json!({}));
    child.metadata.owner_references = serde_json::from_value(owner_reference(&owner)).unwrap();
    let child = config_maps
        .create(&PostParams::default(), &child)
        .await
        .unwrap();
    let mut grandchild = config_map("grandchild", json!({}));
    grandchild.metadata.owner_references = serde_json::from_value(owner_reference(&child)).unwrap();
    config_maps
        .create(&PostParams::default(), &grandchild)
        .await
        .unwrap();
    let unrelated = config_maps
        .create(&PostParams::default(), &config_map("unrelated", json!({})))
        .await
        .unwrap();
    let before_delete = unrelated.resource_version().unwrap();

    config_maps
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();

    let remaining: Vec<String> = fake
        .list("/api/v1/namespaces/default/configmaps")
        .iter()
        .map(|cm| cm["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(remaining, ["unrelated"]);
    let deletions: Vec<WatchEvent<ConfigMap>> = config_maps
        .watch(&WatchParams::default().timeout(1), &before_delete)
        .await
        .unwrap()
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert!(
        deletions
            .iter()
            .all(|event| matches!(event, WatchEvent::Deleted(_)))
    );
    let missing = config_maps
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(api_error_code(missing).0, 404);
}

#[tokio::test]
async fn injected_failures_reach_the_caller_then_service_resumes() {
    let fake = FakeApiServer::start().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());
    fake.fail_requests(FailureRule {
        method: Some("POST".into()),
        path_contains: "/configmaps".into(),
        status: 500,
        times: 2,
    });

    for _ in 0..2 {
        let error = config_maps
            .create(&PostParams::default(), &config_map("rooms", json!({})))
            .await
            .unwrap_err();
        assert_eq!(api_error_code(error), (500, "InternalError".to_owned()));
    }
    // Reads do not match the rule and are served normally meanwhile.
    assert!(config_maps.get_opt("rooms").await.unwrap().is_none());
    config_maps
        .create(&PostParams::default(), &config_map("rooms", json!({})))
        .await
        .unwrap();

    assert_eq!(
        fake.writes().len(),
        3,
        "two failed creates, then the one that worked"
    );
}

#[tokio::test]
async fn malformed_bodies_and_unknown_paths_get_status_answers() {
    let fake = FakeApiServer::start().await;
    let client = fake.client();
    let bad_json = hyper::Request::post("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/json")
        .body(b"{not json".to_vec())
        .unwrap();
    let error = client.request::<ConfigMap>(bad_json).await.unwrap_err();
    assert_eq!(api_error_code(error), (400, "BadRequest".to_owned()));
    let unknown = hyper::Request::get("/healthz").body(Vec::new()).unwrap();
    let error = client.request::<Value>(unknown).await.unwrap_err();
    assert_eq!(api_error_code(error), (404, "NotFound".to_owned()));
    let yaml_patch = hyper::Request::patch("/api/v1/namespaces/default/configmaps/x")
        .header("content-type", "text/plain")
        .body(b"{}".to_vec())
        .unwrap();
    let error = client.request::<Value>(yaml_patch).await.unwrap_err();
    assert_eq!(api_error_code(error).0, 415);
    // The server is still serving after all of that.
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());
    assert!(
        config_maps
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn wait_for_wakes_on_changes_and_gives_up_after_its_timeout() {
    let fake = FakeApiServer::start().await;
    let client = fake.client();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let deployments: Api<Deployment> = Api::default_namespaced(client);
        apply_hub(&deployments, &PatchParams::apply("midihub-operator"), 1)
            .await
            .unwrap();
    });

    let exists = fake
        .wait_for(SHORT, |fake| {
            fake.get("/apis/apps/v1/namespaces/default/deployments/hub")
                .is_some()
        })
        .await;
    let never = fake
        .wait_for(Duration::from_millis(100), |fake| {
            fake.get("/api/v1/nodes/none").is_some()
        })
        .await;

    assert!(exists);
    assert!(!never);
}

#[tokio::test]
async fn dropping_the_fake_stops_serving() {
    let fake = FakeApiServer::start().await;
    let client = fake.client();
    drop(fake);
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client);
    assert!(config_maps.list(&ListParams::default()).await.is_err());
}

#[tokio::test]
async fn an_event_recorder_creates_then_patches_its_events() {
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let fake = FakeApiServer::start().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());
    let rooms = config_maps
        .create(&PostParams::default(), &config_map("rooms", json!({})))
        .await
        .unwrap();
    let recorder = Recorder::new(fake.client(), Reporter::from("midihub-operator"));
    let event = Event {
        type_: EventType::Normal,
        reason: "Waking".into(),
        note: Some("the schedule opened".into()),
        action: "Scale".into(),
        secondary: None,
    };

    recorder
        .publish(&event, &rooms.object_ref(&()))
        .await
        .unwrap();
    recorder
        .publish(&event, &rooms.object_ref(&()))
        .await
        .unwrap();

    let events = fake.list("/apis/events.k8s.io/v1/namespaces/default/events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], "Waking");
    assert_eq!(events[0]["series"]["count"], 2);
}

#[tokio::test]
async fn what_the_fake_does_not_model_is_refused_not_half_served() {
    let fake = FakeApiServer::start().await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(fake.client());
    let rooms = config_maps
        .create(
            &PostParams::default(),
            &config_map("rooms", json!({ "app": "midihub" })),
        )
        .await
        .unwrap();

    let by_field = config_maps
        .list(&ListParams::default().fields("metadata.name!=rooms"))
        .await
        .unwrap_err();
    let by_set = config_maps
        .list(&ListParams::default().labels("app in (midihub)"))
        .await
        .unwrap_err();
    let streaming = config_maps
        .watch(&WatchParams::streaming_lists(), "0")
        .await
        .map(drop)
        .unwrap_err();
    let replace = config_maps
        .replace("rooms", &PostParams::default(), &rooms)
        .await
        .unwrap_err();
    let json_patch: json_patch::Patch =
        serde_json::from_value(json!([{ "op": "add", "path": "/data/extra", "value": "1" }]))
            .unwrap();
    let json_patched = config_maps
        .patch(
            "rooms",
            &PatchParams::default(),
            &Patch::Json::<()>(json_patch),
        )
        .await
        .unwrap_err();
    let unnamed: Pod =
        serde_json::from_value(json!({ "metadata": { "generateName": "hub-" } })).unwrap();
    let generated = Api::<Pod>::default_namespaced(fake.client())
        .create(&PostParams::default(), &unnamed)
        .await
        .unwrap_err();

    for (what, error, code) in [
        ("a field selector other than key=value", by_field, 400),
        ("a set-based label selector", by_set, 400),
        ("a streaming list", streaming, 400),
        ("a replace", replace, 405),
        ("a JSON patch", json_patched, 400),
        ("a generated name", generated, 400),
    ] {
        match error {
            kube::Error::Api(status) => {
                assert_eq!(status.code, code, "{what}: {status:?}");
                assert!(
                    status.message.contains("fake API server"),
                    "{what}: the answer says the fake does not serve it: {status:?}"
                );
            }
            other => panic!("{what}: expected an API error, got {other:?}"),
        }
    }
}
