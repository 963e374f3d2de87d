//! The sidecar's HTTP endpoint: the shared `/healthz` (the loop is not stuck) and `/metrics`,
//! plus `/readyz` (the wiring is known to be right) and, in local mode, `/status` (the last
//! report, as JSON) and `POST /panic` (the hub-wide panic). In a hub pod the endpoint is on the
//! node's network, so it serves no participant names or addresses (those are in the MidiHub's
//! status, behind Kubernetes RBAC) and takes no requests (a panic is asked for on the MidiHub).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use midihub_runtime::endpoint::{self, Probe};
use prometheus_client::registry::Registry;

use tokio::sync::mpsc::UnboundedSender;

use crate::guard::PanicRequest;
use crate::health::Health;

impl Probe for Health {
    fn health(&self) -> Result<(), String> {
        self.check(Instant::now())
    }

    fn registry(&self) -> &Registry {
        self.metrics.registry()
    }
}

/// The endpoint's routes; `/status` and `POST /panic` (sent on `local`) only in local mode.
pub fn router(health: Arc<Health>, local: Option<UnboundedSender<PanicRequest>>) -> Router {
    let router = endpoint::router::<Health>().route("/readyz", get(readyz));
    match local {
        Some(panics) => router
            .route("/status", get(status))
            .with_state(health)
            .merge(
                Router::new()
                    .route("/panic", post(panic))
                    .with_state(panics),
            ),
        None => router.with_state(health),
    }
}

/// Asks the loop for the hub-wide panic; 202: it is asked for (the loop's log and stdout say
/// when it is sent, and to whom).
async fn panic(State(panics): State<UnboundedSender<PanicRequest>>) -> Response {
    let request = PanicRequest {
        why: "POST /panic".to_owned(),
    };
    match panics.send(request) {
        Ok(()) => (StatusCode::ACCEPTED, "panic asked for\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the sidecar is stopping\n").into_response(),
    }
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
        send(routes, Request::get(path).body(Body::empty()).unwrap()).await
    }

    async fn send(routes: Router, request: Request<Body>) -> (StatusCode, String) {
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
        let routes = router(health.clone(), None);
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
        let routes = router(health, None);
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
        let (status, body) = get(
            router(
                health.clone(),
                Some(tokio::sync::mpsc::unbounded_channel().0),
            ),
            "/status",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let served: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(served["wiring"]["reason"], "Wired");
        assert_eq!(
            get(router(health, None), "/status").await.0,
            StatusCode::NOT_FOUND,
            "a hub pod's endpoint names no participants"
        );
    }

    #[tokio::test]
    async fn a_post_to_panic_asks_the_loop_for_one_in_local_mode_only() {
        let health = Arc::new(Health::new(Instant::now()));
        let (sender, mut requests) = tokio::sync::mpsc::unbounded_channel();
        let post = || Request::post("/panic").body(Body::empty()).unwrap();
        let (status, _) = send(router(health.clone(), Some(sender)), post()).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(requests.try_recv().unwrap().why, "POST /panic");
        assert_eq!(
            get(
                router(
                    health.clone(),
                    Some(tokio::sync::mpsc::unbounded_channel().0)
                ),
                "/panic"
            )
            .await
            .0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            send(router(health, None), post()).await.0,
            StatusCode::NOT_FOUND,
            "a hub pod's endpoint takes no requests"
        );
    }
}
