//! The operator's HTTP endpoint: `/healthz` for probes and `/metrics` for Prometheus.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::time::Instant;

use crate::health::WatchHealth;
use crate::metrics::Metrics;

/// What the endpoint reports on.
#[derive(Clone)]
struct Endpoint {
    metrics: Arc<Metrics>,
    health: Arc<WatchHealth>,
}

/// The endpoint's routes.
pub fn router(metrics: Arc<Metrics>, health: Arc<WatchHealth>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(Endpoint { metrics, health })
}

/// OK unless a watch has failed for longer than the grace period: then the operator no longer
/// hears changes, and a restart is the way out.
async fn healthz(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    let deaf = endpoint.health.deaf_watches(Instant::now());
    if deaf.is_empty() {
        return (StatusCode::OK, "ok".to_string());
    }
    let mut body = format!(
        "watches failing for longer than {}s:",
        endpoint.health.grace().as_secs()
    );
    for (watch, failing_for) in deaf {
        let _ = write!(body, " {watch} ({}s)", failing_for.as_secs());
    }
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

async fn metrics_text(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    match endpoint.metrics.render() {
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
    health: Arc<WatchHealth>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(error) = axum::serve(listener, router(metrics, health))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "the health and metrics endpoint failed");
    }
}

#[cfg(test)]
mod tests;
