//! Two operator replicas against the FAKE API server (not Kubernetes; it models server-side
//! apply conflicts on the Lease): only one does the work, the leader keeps the lease by
//! renewing it, and when the leader stops the other replica takes over.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use midihub_operator::leader::{LeaderElection, run_as_leader};
use midihub_tests::fake_apiserver::FakeApiServer;
use tokio::sync::watch;

fn election(identity: &str) -> LeaderElection {
    LeaderElection {
        lease_name: "midihub-operator".into(),
        namespace: "default".into(),
        identity: Some(identity.into()),
        lease_seconds: 3,
        renew_before_seconds: 1,
    }
}

/// A replica whose "work" counts how many replicas work at once.
fn replica(
    fake: &FakeApiServer,
    identity: &'static str,
    working: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
) -> (
    watch::Sender<bool>,
    tokio::task::JoinHandle<Result<(), midihub_operator::OperatorError>>,
) {
    let (stop, stopped) = watch::channel(false);
    let client = fake.client();
    let task = tokio::spawn(async move {
        run_as_leader(client, &election(identity), stopped, |until| async move {
            started.fetch_add(1, Ordering::SeqCst);
            let now = working.fetch_add(1, Ordering::SeqCst) + 1;
            most_at_once.fetch_max(now, Ordering::SeqCst);
            until.await;
            working.fetch_sub(1, Ordering::SeqCst);
        })
        .await
    });
    (stop, task)
}

#[tokio::test]
async fn only_one_replica_reconciles_and_the_other_takes_over_when_it_stops() {
    let fake = FakeApiServer::start().await;
    let working = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let started_a = Arc::new(AtomicUsize::new(0));
    let started_b = Arc::new(AtomicUsize::new(0));
    let (stop_a, task_a) = replica(
        &fake,
        "replica-a",
        working.clone(),
        most_at_once.clone(),
        started_a.clone(),
    );
    let became_leader = fake
        .wait_for(Duration::from_secs(10), |_| {
            started_a.load(Ordering::SeqCst) == 1
        })
        .await;
    assert!(became_leader, "the first replica takes the free lease");

    let (stop_b, task_b) = replica(
        &fake,
        "replica-b",
        working.clone(),
        most_at_once.clone(),
        started_b.clone(),
    );
    // Longer than a lease: the leader renews it, so the second replica keeps waiting.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        started_b.load(Ordering::SeqCst),
        0,
        "the second replica waits"
    );

    stop_a.send(true).unwrap();
    task_a
        .await
        .unwrap()
        .expect("a replica that is asked to stop ends cleanly");
    let took_over = fake
        .wait_for(Duration::from_secs(10), |_| {
            started_b.load(Ordering::SeqCst) == 1
        })
        .await;
    assert!(
        took_over,
        "the second replica takes over once the first released the lease"
    );
    assert_eq!(
        most_at_once.load(Ordering::SeqCst),
        1,
        "never two leaders at once"
    );

    stop_b.send(true).unwrap();
    task_b.await.unwrap().unwrap();
}
