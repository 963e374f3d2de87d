use std::sync::Arc;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kube::runtime::{reflector, watcher};
use midihub_api::MidiHub;
use serde_json::json;
use tokio::time::Instant;
use tower::ServiceExt;

use super::router;
use crate::health::WatchHealth;
use crate::metrics::{Metrics, ReconcileResult};

async fn get(router: Router, path: &str) -> (StatusCode, String) {
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn seconds_ago(seconds: u64) -> Instant {
    Instant::now()
        .checked_sub(Duration::from_secs(seconds))
        .unwrap()
}

fn hub(name: &str, phase: &str) -> MidiHub {
    serde_json::from_value(json!({
        "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"port": 5004}]},
        "status": {"phase": phase},
    }))
    .unwrap()
}

#[tokio::test]
async fn healthz_answers_ok() {
    let router = router(Arc::default(), Arc::default());
    let (status, body) = get(router, "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn healthz_stays_ok_while_a_watch_fails_within_the_grace_period() {
    let health = Arc::new(WatchHealth::new(Duration::from_secs(60)));
    health.failed("MidiHub", seconds_ago(30));
    let (status, _) = get(router(Arc::default(), health), "/healthz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn healthz_fails_naming_the_watches_that_failed_for_longer_than_the_grace_period() {
    let health = Arc::new(WatchHealth::new(Duration::from_secs(60)));
    health.failed("MidiHub", seconds_ago(90));
    health.failed("Pod", seconds_ago(10));
    let (status, body) = get(router(Arc::default(), health.clone()), "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.starts_with("watches failing for longer than 60s: MidiHub (9"),
        "{body}"
    );
    assert!(!body.contains("Pod"), "{body}");

    health.progressed("MidiHub", Instant::now());
    let (status, _) = get(router(Arc::default(), health), "/healthz").await;
    assert_eq!(status, StatusCode::OK, "healthy again once the watch works");
}

#[tokio::test]
async fn metrics_count_reconciles_and_hubs_by_phase() {
    let (hubs, mut writer) = reflector::store::<MidiHub>();
    for (name, phase) in [("a", "Ready"), ("b", "Ready"), ("c", "Sleeping")] {
        writer.apply_watcher_event(&watcher::Event::Apply(hub(name, phase)));
    }
    let metrics = Arc::new(Metrics::default().with_hubs(hubs));
    metrics
        .reconcile_started()
        .finished(ReconcileResult::Unchanged);
    metrics
        .reconcile_started()
        .finished(ReconcileResult::Changed);
    metrics
        .reconcile_started()
        .finished(ReconcileResult::Unchanged);
    let (status, body) = get(router(metrics, Arc::default()), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(r#"midihub_operator_reconciles_total{result="unchanged"} 2"#),
        "{body}"
    );
    assert!(
        body.contains(r#"midihub_operator_reconciles_total{result="changed"} 1"#),
        "{body}"
    );
    assert!(
        body.contains(r#"midihub_operator_reconcile_duration_seconds_bucket{le="0.0005"}"#),
        "fine buckets: {body}"
    );
    assert!(
        body.contains("midihub_operator_reconcile_duration_seconds_count 3"),
        "{body}"
    );
    assert!(
        body.contains(r#"midihub_operator_hubs{phase="Ready"} 2"#),
        "{body}"
    );
    assert!(
        body.contains(r#"midihub_operator_hubs{phase="Sleeping"} 1"#),
        "{body}"
    );
    assert!(
        body.contains(r#"midihub_operator_hubs{phase="Invalid"} 0"#),
        "{body}"
    );
}
