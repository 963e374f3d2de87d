//! Leader election through a coordination.k8s.io Lease, so that several operator replicas are
//! safe: only the holder of the lease reconciles, it renews the lease while it works, and it
//! hands the lease back when it stops.

use std::future::Future;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use midihub_api::contract::OPERATOR_FIELD_MANAGER;
use midihub_runtime::wait_for;
use tokio::sync::watch;

use crate::error::OperatorError;

/// Where and how long the lease is held.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub lease_name: String,
    pub namespace: String,
    /// This replica's identity in the lease (its pod name); random when `None`.
    pub identity: Option<String>,
    /// How long a lease stays valid after its holder last renewed it.
    pub lease_seconds: u64,
    /// How long before expiry the holder renews.
    pub renew_before_seconds: u64,
}

/// Runs `work` once this replica holds the lease, until `stop` becomes true or the lease is
/// lost; `work` receives a future that completes at that moment and must return soon after.
/// Losing the lease is an error, so that the process restarts as a follower.
pub async fn run_as_leader<Work, Done>(
    client: Client,
    election: &LeaderElection,
    stop: watch::Receiver<bool>,
    work: Work,
) -> Result<(), OperatorError>
where
    Work: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>>) -> Done,
    Done: Future<Output = ()>,
{
    let mut builder = LeaseManagerBuilder::new(client, &election.lease_name)
        .with_namespace(&election.namespace)
        .with_duration(election.lease_seconds)
        .with_grace(election.renew_before_seconds);
    if let Some(identity) = &election.identity {
        builder = builder
            .with_identity(identity)
            .with_field_manager(format!("{OPERATOR_FIELD_MANAGER}-lease-{identity}"));
    }
    let (leader, lease) = builder.build().await?.watch().await;
    tracing::info!(lease = %election.lease_name, "waiting to become the leader");
    tokio::select! {
        () = wait_for(leader.clone(), true) => {}
        () = wait_for(stop.clone(), true) => return Ok(()),
    }
    tracing::info!(lease = %election.lease_name, "became the leader");
    let lost = wait_for(leader.clone(), false);
    let stop_requested = wait_for(stop.clone(), true);
    work(Box::pin(async move {
        tokio::select! {
            () = lost => tracing::error!("lost the leader-election lease: stopping"),
            () = stop_requested => {}
        }
    }))
    .await;
    let kept_the_lease = *leader.borrow();
    // Closing the channel makes the lease task release the lease: the next replica to look
    // finds it free.
    drop(leader);
    if let Ok(Err(error)) = lease.await {
        tracing::warn!(%error, "could not release the leader-election lease");
    }
    if kept_the_lease || *stop.borrow() {
        Ok(())
    } else {
        Err(OperatorError::LeadershipLost)
    }
}
