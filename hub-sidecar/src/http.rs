//! The sidecar's HTTP endpoint: the shared `/healthz` (the loop is not stuck) and `/metrics`,
//! plus `/readyz` (the wiring is known to be right) and, in local mode, `/status` (the last
//! report, as JSON). In a hub pod the endpoint is on the node's network, so it serves no
//! participant names or addresses: those are in the MidiHub's status, behind Kubernetes RBAC.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use midihub_runtime::endpoint::{self, Probe};
use prometheus_client::registry::Registry;

use crate::health::Health;

impl Probe for Health {
    fn health(&self) -> Result<(), String> {
        self.check(Instant::now())
    }

    fn registry(&self) -> &Registry {
        self.metrics.registry()
    }
}

/// The endpoint's routes; `/status` only with `serve_status`.
pub fn router(health: Arc<Health>, serve_status: bool) -> Router {
    let router = endpoint::router::<Health>().route("/readyz", get(readyz));
    let router = if serve_status {
        router.route("/status", get(status))
    } else {
        router
    };
    router.with_state(health)
}

async fn readyz(State(health): State<Arc<Health>>) -> Response {
    match health.last_report() {
        Some(report) if report.wiring.ok => (StatusCode::OK, "ok").into_response(),
        Some(report) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}: {}", report.wiring.reason, report.wiring.message),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response(),
    }
}

async fn status(State(health): State<Arc<Health>>) -> Response {
    match health.last_report() {
        Some(report) => axum::Json(report).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::report::{Report, WiringState};

    /// The status and body of the answer to `GET path`.
    async fn get(routes: Router, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let (parts, body) = routes.oneshot(request).await.unwrap().into_parts();
        let body = to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, String::from_utf8_lossy(&body).into_owned())
    }

    fn report(wiring: WiringState) -> Report {
        Report {
            participants: vec![],
            refused: Vec::new(),
            wiring,
        }
    }

    #[tokio::test]
    async fn ready_once_the_wiring_is_known_to_be_right_and_not_while_it_is_not() {
        let health = Arc::new(Health::new(Instant::now()));
        let routes = router(health.clone(), false);
        assert_eq!(
            get(routes.clone(), "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "starting".to_owned())
        );
        health.beat(&report(WiringState::wired(0, 0)), Instant::now());
        assert_eq!(
            get(routes.clone(), "/readyz").await,
            (StatusCode::OK, "ok".to_owned())
        );
        health.beat(
            &report(WiringState::unknown("ControlSocketTimeout", "no answer")),
            Instant::now(),
        );
        assert_eq!(
            get(routes, "/readyz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "ControlSocketTimeout: no answer".to_owned()
            )
        );
    }

    #[tokio::test]
    async fn the_shared_healthz_and_metrics_are_served() {
        let health = Arc::new(Health::new(Instant::now()));
        health.metrics.set_participants(5004, 2);
        let routes = router(health, false);
        assert_eq!(
            get(routes.clone(), "/healthz").await,
            (StatusCode::OK, "ok".to_owned())
        );
        let (status, metrics) = get(routes, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            metrics.contains("midihub_sidecar_participants{room=\"5004\"} 2"),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn the_last_report_is_served_as_status_in_local_mode_only() {
        let health = Arc::new(Health::new(Instant::now()));
        health.beat(&report(WiringState::wired(0, 0)), Instant::now());
        let (status, body) = get(router(health.clone(), true), "/status").await;
        assert_eq!(status, StatusCode::OK);
        let served: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(served["wiring"]["reason"], "Wired");
        assert_eq!(
            get(router(health, false), "/status").await.0,
            StatusCode::NOT_FOUND,
            "a hub pod's endpoint names no participants"
        );
    }
}
