//! The HTTP endpoint both binaries serve: `/healthz` for probes and `/metrics` for Prometheus.
//! A binary says what healthy means and which registry to encode by implementing [`Probe`],
//! adds its own routes to [`router`]'s, and runs the result with [`serve`] on a listener from
//! [`bind`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a binary's endpoint reports on.
pub trait Probe: Send + Sync + 'static {
    /// `Ok` while the process does its work; otherwise why not, and `/healthz` answers 503
    /// with that text so that the kubelet restarts it.
    fn health(&self) -> Result<(), String>;

    /// The metrics `/metrics` serves.
    fn registry(&self) -> &Registry;
}

/// `/healthz` and `/metrics` of `P`; add the binary's own routes, then give it the state with
/// `with_state`.
pub fn router<P: Probe>() -> Router<Arc<P>> {
    Router::new()
        .route("/healthz", get(healthz::<P>))
        .route("/metrics", get(metrics::<P>))
}

async fn healthz<P: Probe>(State(probe): State<Arc<P>>) -> Response {
    match probe.health() {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn metrics<P: Probe>(State(probe): State<Arc<P>>) -> Response {
    match render(probe.registry()) {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
    }
}

/// The registry's metrics in the OpenMetrics text format.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// The endpoint's address could not be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}")]
pub struct ListenError {
    pub address: SocketAddr,
    pub source: std::io::Error,
}

/// A listener for the endpoint on `address`.
pub async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, ListenError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ListenError { address, source })
}

/// Serves `routes` on `listener` until `shutdown` completes; a failure is logged as the failure
/// of `name`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Router,
    name: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(error) = axum::serve(listener, routes)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "the {name} failed");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

    use super::*;

    /// A probe whose health the test sets.
    struct Fixed {
        health: Mutex<Result<(), String>>,
        registry: Registry,
    }

    fn probe() -> Arc<Fixed> {
        let mut registry = Registry::with_prefix("test");
        let passes = Counter::<u64>::default();
        passes.inc();
        registry.register("passes", "Passes", passes);
        Arc::new(Fixed {
            health: Mutex::new(Ok(())),
            registry,
        })
    }

    impl Probe for Fixed {
        fn health(&self) -> Result<(), String> {
            self.health.lock().unwrap().clone()
        }
        fn registry(&self) -> &Registry {
            &self.registry
        }
    }

    async fn request(routes: Router, path: &str) -> (StatusCode, Option<String>, String) {
        let response = routes
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn healthz_answers_what_the_probe_says() {
        let probe = probe();
        let routes = router::<Fixed>().with_state(probe.clone());
        let (status, _, body) = request(routes.clone(), "/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

        *probe.health.lock().unwrap() = Err("the loop is stuck".to_owned());
        let (status, _, body) = request(routes, "/healthz").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "the loop is stuck")
        );
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_text_of_the_probes_registry() {
        let routes = router::<Fixed>().with_state(probe());
        let (status, content_type, body) = request(routes, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(OPENMETRICS));
        assert!(body.contains("test_passes_total 1"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
    }

    #[tokio::test]
    async fn a_binary_adds_its_own_routes() {
        let routes = router::<Fixed>()
            .route("/readyz", get(|| async { "ready" }))
            .with_state(probe());
        let (status, _, body) = request(routes, "/readyz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));
    }
}
