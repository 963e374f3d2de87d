//! The operator's errors: what one reconcile can fail with ([`ReconcileError`]), and what stops
//! the operator ([`OperatorError`]).
//!
//! A message says what failed at its own level; the error that caused it is its `source`, never
//! repeated in the message. Where an error meets a person (a log line),
//! [`midihub_runtime::Chain`] shows it with all its causes.

/// Everything that can make a reconcile of one hub fail. A failed reconcile is retried with
/// back-off; it never stops the operator or affects another hub. A spec the operator cannot act
/// on is not among them: it is reported in the hub's status.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API request failed")]
    Kube(#[from] kube::Error),

    /// An object came back from the API without a field the operator relies on.
    #[error("the API returned a {kind} without {field}")]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },

    /// An object could not be converted to JSON for comparison.
    #[error("cannot serialize {kind} to JSON")]
    Serialize {
        kind: &'static str,
        source: serde_json::Error,
    },

    /// A cache the reconcile reads is gone: the operator is stopping.
    #[error(transparent)]
    StoreGone(#[from] crate::stores::StoreGone),
}

impl ReconcileError {
    /// A short label for the error, used in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "kube",
            ReconcileError::MissingField { .. } => "missing_field",
            ReconcileError::Serialize { .. } => "serialize",
            ReconcileError::StoreGone(_) => "store_gone",
        }
    }
}

/// What stops the operator: it exits, and its Deployment starts it again.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No Kubernetes client could be configured from the environment.
    #[error("cannot configure a Kubernetes client (in-cluster, or from KUBECONFIG)")]
    Client(#[source] kube::Error),

    /// The health and metrics endpoint could not listen.
    #[error("cannot serve /healthz and /metrics")]
    Listen(#[from] midihub_runtime::endpoint::ListenError),

    /// Another replica took the leadership: this one stops so that it restarts as a follower.
    #[error("lost the leader-election lease to another replica")]
    LeadershipLost,

    /// Leader election failed.
    #[error("leader election failed")]
    LeaderElection(#[from] kube_lease_manager::LeaseManagerError),
}

#[cfg(test)]
mod tests {
    use midihub_runtime::Chain;
    use midihub_runtime::endpoint::ListenError;

    use super::*;

    #[test]
    fn a_listen_error_names_its_cause_once() {
        let error = OperatorError::Listen(ListenError {
            address: "127.0.0.1:8080".parse().unwrap(),
            source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use"),
        });
        assert_eq!(
            Chain(&error).to_string(),
            "cannot serve /healthz and /metrics: cannot listen on 127.0.0.1:8080: address in use"
        );
    }
}
