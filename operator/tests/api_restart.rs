//! The real controller loop against the in-process FAKE API server (not Kubernetes), reached
//! through a proxy that plays an API server restart: gone (every connection closed), starting
//! (connections accepted and never answered), back. The operator acts on a change soon after
//! the server is back, and reports itself unhealthy only while its watches stay dead for
//! longer than the grace period.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use midihub_api::MidiHub;
use midihub_operator::children::{ChildrenConfig, DeviceAccess};
use midihub_operator::clock::SystemClock;
use midihub_operator::controller::{self, Backoff, Context};
use midihub_operator::health::WatchHealth;
use midihub_operator::metrics::Metrics;
use midihub_tests::fake_apiserver::FakeApiServer;
use midihub_tests::outage::OutageProxy;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::time::Instant;

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/default/deployments/midihub-jam";

/// The operator running against a fake API server behind an [`OutageProxy`].
struct Harness {
    fake: FakeApiServer,
    proxy: OutageProxy,
    health: Arc<WatchHealth>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    async fn start(grace: Duration) -> Self {
        let fake = FakeApiServer::start().await;
        fake.insert(
            "/api/v1/nodes",
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-a", "labels": {"midihub.io/sound-ready": "true"}},
                "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.7"}]}
            }),
        );
        let proxy = OutageProxy::start(fake.address()).await.unwrap();
        // The operator's own client, with its bound on unanswered requests.
        let client = midihub_operator::client::with_response_timeout(
            kube::Config::new(proxy.url().parse().unwrap()),
            midihub_operator::client::RESPONSE_TIMEOUT,
        )
        .unwrap();
        let health = Arc::new(WatchHealth::new(grace));
        let (controller, stores) =
            controller::controller(&client, &health, controller::DEFAULT_CONCURRENCY);
        let context = Arc::new(Context::new(
            client,
            Arc::new(SystemClock),
            ChildrenConfig {
                rtpmidid_image: "example.test/rtpmidid:26.01".into(),
                sidecar_image: "example.test/hub-sidecar:0.1.0".into(),
                device_access: DeviceAccess::Privileged,
            },
            Arc::new(Metrics::default()),
            Some("operator-test".into()),
            Backoff::default(),
            stores,
        ));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(controller::run(controller, context, async move {
            let _ = stopped.await;
        }));
        Self {
            fake,
            proxy,
            health,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The hubs, reached directly (not through the proxy), as a user would.
    fn hubs(&self) -> Api<MidiHub> {
        Api::namespaced(self.fake.client(), "default")
    }

    async fn create_hub(&self) {
        let hub: MidiHub = serde_json::from_value(json!({
            "apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
            "metadata": {"name": "jam", "namespace": "default"},
            "spec": {"ports": [{"port": 5004}]},
        }))
        .unwrap();
        self.hubs()
            .create(&PostParams::default(), &hub)
            .await
            .unwrap();
    }

    async fn suspend_hub(&self) {
        self.hubs()
            .patch(
                "jam",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"suspend": true}})),
            )
            .await
            .unwrap();
    }

    /// Waits up to `timeout` for the hub's Deployment to ask for `replicas`; returns whether it
    /// did.
    async fn replicas_within(&self, replicas: i64, timeout: Duration) -> bool {
        self.fake
            .wait_for(timeout, |fake| {
                fake.get(DEPLOYMENT)
                    .is_some_and(|deployment| deployment["spec"]["replicas"] == replicas)
            })
            .await
    }

    /// Waits up to `timeout` for `condition` to hold of the operator's watch health; returns
    /// whether it did.
    async fn health_within(
        &self,
        timeout: Duration,
        condition: impl Fn(&WatchHealth, Instant) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(&self.health, Instant::now()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the controller stops on shutdown")
                .unwrap();
        }
    }
}

/// Whether no watch has failed for longer than the grace period (what `/healthz` answers).
fn healthy(health: &WatchHealth, now: Instant) -> bool {
    health.deaf_watches(now).is_empty()
}

#[tokio::test]
async fn after_an_api_server_restart_a_suspend_is_acted_on_within_ten_seconds() {
    let harness = Harness::start(Duration::from_secs(60)).await;
    harness.create_hub().await;
    assert!(
        harness.replicas_within(1, Duration::from_secs(10)).await,
        "the hub wakes before the restart"
    );

    // The server goes away, then starts and for a while accepts requests without answering
    // them: watches sent then would wait forever without a bound on the response.
    harness.proxy.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    harness.proxy.start_without_answering();
    tokio::time::sleep(Duration::from_secs(3)).await;
    harness.proxy.serve();
    let ready = Instant::now();
    harness.suspend_hub().await;

    assert!(
        harness.replicas_within(0, Duration::from_secs(10)).await,
        "the suspend was not acted on within 10 s of the server being back"
    );
    eprintln!(
        "suspend acted on {:?} after the server was back",
        ready.elapsed()
    );
    assert!(healthy(&harness.health, Instant::now()));
    harness.stop().await;
}

#[tokio::test]
async fn watches_dead_past_the_grace_period_make_the_operator_unhealthy_until_they_recover() {
    let grace = Duration::from_secs(2);
    let harness = Harness::start(grace).await;
    harness.create_hub().await;
    assert!(harness.replicas_within(1, Duration::from_secs(10)).await);
    assert!(healthy(&harness.health, Instant::now()));

    let stopped = Instant::now();
    harness.proxy.stop();
    let every_watch_deaf = |health: &WatchHealth, now| {
        let deaf: Vec<_> = health
            .deaf_watches(now)
            .into_iter()
            .map(|(watch, _)| watch)
            .collect();
        [
            "MidiHub",
            "Deployment",
            "ConfigMap",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Pod",
        ]
        .iter()
        .all(|watch| deaf.contains(watch))
    };
    assert!(
        harness
            .health_within(Duration::from_secs(10), every_watch_deaf)
            .await,
        "watches not reported after 10 s without the API server: {:?}",
        harness.health.deaf_watches(Instant::now())
    );
    assert!(!healthy(&harness.health, Instant::now()));
    assert!(
        stopped.elapsed() > grace,
        "reported before the grace period was over"
    );

    harness.proxy.serve();
    assert!(
        harness
            .health_within(Duration::from_secs(10), healthy)
            .await,
        "still unhealthy 10 s after the API server came back: {:?}",
        harness.health.deaf_watches(Instant::now())
    );
    // And it hears changes again.
    harness.suspend_hub().await;
    assert!(harness.replicas_within(0, Duration::from_secs(10)).await);
    harness.stop().await;
}
