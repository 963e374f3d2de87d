//! The operator's errors.

use crate::build::BuildError;

/// Everything that can make a reconcile of one hub fail. A failed reconcile is retried with
/// back-off; it never stops the operator or affects another hub.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),

    /// The hub's children could not be built from its spec.
    #[error("cannot build the hub's objects: {0}")]
    Build(#[from] BuildError),

    /// An object came back from the API without a field the operator relies on.
    #[error("the API returned a {kind} without {field}")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },

    /// An object could not be converted to JSON for comparison.
    #[error("cannot serialize {kind} to JSON: {source}")]
    Serialize {
        kind: &'static str,
        source: serde_json::Error,
    },

    /// The health and metrics endpoint could not listen.
    #[error("cannot listen on {address} for /healthz and /metrics: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },

    /// Another replica took the leadership: this one stops so that it restarts as a follower.
    #[error("lost the leader-election lease to another replica")]
    LeadershipLost,

    /// Leader election failed.
    #[error("leader election failed: {0}")]
    LeaderElection(#[from] kube_lease_manager::LeaseManagerError),
}

impl Error {
    /// A short label for the error, used in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Build(_) => "build",
            Error::MissingField { .. } => "missing_field",
            Error::Serialize { .. } => "serialize",
            Error::Listen { .. } => "listen",
            Error::LeadershipLost | Error::LeaderElection(_) => "leader_election",
        }
    }
}

/// The result type of the operator.
pub type Result<T, E = Error> = std::result::Result<T, E>;
