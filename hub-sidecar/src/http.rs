//! The sidecar's HTTP endpoint: `/healthz` (the loop is alive), `/readyz` (the wiring is
//! known to be right), `/metrics` for Prometheus and, in local mode, `/status` (the last
//! report, as JSON). In a hub pod the endpoint is on the node's network, so it serves no
//! participant names or addresses: those are in the MidiHub's status, behind Kubernetes RBAC.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use crate::report::Report;

/// A loop that has not come round for this long is stuck.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// What the endpoint shows, updated by the sidecar's loop.
#[derive(Debug)]
pub struct Shared {
    pub metrics: Metrics,
    state: Mutex<(Instant, Option<Report>)>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            metrics: Metrics::default(),
            state: Mutex::new((Instant::now(), None)),
        }
    }
}

impl Shared {
    /// The loop came round and found `report`.
    pub fn update(&self, report: &Report) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) =
            (Instant::now(), Some(report.clone()));
    }

    fn snapshot(&self) -> (Instant, Option<Report>) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The endpoint's routes; `/status` only with `serve_status`.
pub fn router(shared: Arc<Shared>, serve_status: bool) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    let router = if serve_status {
        router.route("/status", get(status))
    } else {
        router
    };
    router.with_state(shared)
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let (heartbeat, _) = shared.snapshot();
    if heartbeat.elapsed() < STALE_AFTER {
        (StatusCode::OK, "ok").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the sidecar's loop is stuck",
        )
            .into_response()
    }
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.snapshot() {
        (_, Some(report)) if report.wiring.ok => (StatusCode::OK, "ok").into_response(),
        (_, Some(report)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}: {}", report.wiring.reason, report.wiring.message),
        )
            .into_response(),
        (_, None) => (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match shared.metrics.render() {
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

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    match shared.snapshot() {
        (_, Some(report)) => axum::Json(report).into_response(),
        (_, None) => (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response(),
    }
}

/// Serves the endpoint on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    serve_status: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(error) = axum::serve(listener, router(shared, serve_status))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "the sidecar's HTTP endpoint failed");
    }
}
