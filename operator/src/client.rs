//! The operator's Kubernetes client: kube's standard client, with a limit on how long the API
//! server may take to start answering a request.
//!
//! kube sets no read timeout by default (one would also cut off quiet watches), so a request
//! that the server accepts but never answers waits forever. A restarting kube-apiserver does
//! that: a watch sent while it was starting never got an answer, and the controller never saw
//! another change to a MidiHub. Bounding the wait for the response's status and headers fixes
//! that without touching the long life of a watch: the server answers a watch at once and
//! streams its events in the body afterwards, which this limit does not cover.

use std::time::Duration;

use kube::client::ClientBuilder;
use kube::{Client, Config};
use tower::timeout::TimeoutLayer;

/// How long the API server may take to start answering any request (including the retries
/// kube makes on its own for 429, 503 and 504 answers). The operator's requests are small
/// (label-selected lists, single objects, server-side apply) and a watch is answered as soon
/// as it is registered, so a healthy server answers in well under a second; a request cut off
/// is retried (a watch by its watcher, a reconcile by its back-off). Kept short so that,
/// together with the watches' retry delay, a hung request costs less than 10 seconds.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A client configured from the environment (in-cluster, or `KUBECONFIG`), whose requests
/// fail when the server does not start answering within [`RESPONSE_TIMEOUT`].
pub async fn infer() -> Result<Client, kube::Error> {
    let config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    with_response_timeout(config, RESPONSE_TIMEOUT)
}

/// A client for `config` whose requests fail when the server does not start answering within
/// `timeout`.
pub fn with_response_timeout(config: Config, timeout: Duration) -> Result<Client, kube::Error> {
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&TimeoutLayer::new(timeout))
        .build())
}
