//! The operator's HTTP endpoint: `/healthz` for probes and `/metrics` for Prometheus.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// The endpoint's routes.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .with_state(metrics)
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    match metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
    }
}

/// Serves the endpoint on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(error) = axum::serve(listener, router(metrics))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "the health and metrics endpoint failed");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use kube::runtime::{reflector, watcher};
    use midihub_api::MidiHub;
    use serde_json::json;
    use tower::ServiceExt;

    use super::router;
    use crate::metrics::Metrics;

    async fn get(metrics: Arc<Metrics>, path: &str) -> (StatusCode, String) {
        let response = router(metrics)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
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
        let (status, body) = get(Arc::new(Metrics::default()), "/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }

    #[tokio::test]
    async fn metrics_count_reconciles_and_hubs_by_phase() {
        let (hubs, mut writer) = reflector::store::<MidiHub>();
        for (name, phase) in [("a", "Ready"), ("b", "Ready"), ("c", "Sleeping")] {
            writer.apply_watcher_event(&watcher::Event::Apply(hub(name, phase)));
        }
        let metrics = Arc::new(Metrics::default().with_hubs(hubs));
        drop(metrics.reconcile_started());
        let (status, body) = get(metrics, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("midihub_operator_reconciles_total 1"),
            "{body}"
        );
        assert!(
            body.contains("midihub_operator_reconcile_duration_seconds_count 1"),
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
}
