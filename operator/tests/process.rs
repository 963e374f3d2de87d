//! The operator binary as a process, against the FAKE API server (not Kubernetes): it finds
//! the API through a kubeconfig, takes the leader-election lease, reconciles a hub, serves
//! `/healthz`, `/metrics` and the public page, and on SIGTERM stops cleanly (a page's live
//! stream still open) and hands the lease back; `/healthz`
//! fails while the API has been gone for longer than `--watch-grace-seconds`; text logs carry
//! no colour codes into a pipe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use midihub_tests::fake_apiserver::FakeApiServer;
use midihub_tests::http::{HttpResponse, http_get};
use midihub_tests::outage::OutageProxy;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/midihub-system/leases/midihub-operator";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The operator's endpoint `path` on `port`.
fn endpoint(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// Writes a kubeconfig for the API server at `server` into a fresh directory named after
/// `test`; returns the directory (to remove at the end) and the file.
fn kubeconfig(test: &str, server: &str) -> (PathBuf, PathBuf) {
    let directory =
        std::env::temp_dir().join(format!("midihub-process-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let kubeconfig = directory.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters: [{{name: fake, cluster: {{server: \"{server}\"}}}}]\n\
             users: [{{name: fake, user: {{}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: default}}}}]\n"
        ),
    )
    .unwrap();
    (directory, kubeconfig)
}

/// Kills the operator if the test fails before stopping it.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test]
async fn the_operator_process_reconciles_serves_metrics_and_stops_cleanly_on_sigterm() {
    let fake = FakeApiServer::start().await;
    let (directory, kubeconfig) = kubeconfig("reconcile", &fake.url());
    let port = free_port();
    let page_port = free_port();
    let mut operator = Running(
        Command::new(env!("CARGO_BIN_EXE_midihub-operator"))
            .env("KUBECONFIG", &kubeconfig)
            .env("POD_NAMESPACE", "midihub-system")
            .env("POD_NAME", "midihub-operator-0")
            .env("RUST_LOG", "warn")
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--page-listen",
                &format!("127.0.0.1:{page_port}"),
                "--log-format",
                "text",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    fake.insert(
        "/apis/midihub.io/v1alpha1/namespaces/default/midihubs",
        json!({"apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
               "metadata": {"name": "jam", "namespace": "default"},
               "spec": {"listed": true, "ports": [{"port": 5004}]}}),
    );
    let reconciled = fake
        .wait_for(WAIT, |fake| {
            fake.get("/apis/apps/v1/namespaces/default/deployments/midihub-jam")
                .is_some()
        })
        .await;
    assert!(reconciled, "the operator reconciles the hub");
    let reported = fake
        .wait_for(WAIT, |fake| {
            fake.get("/apis/midihub.io/v1alpha1/namespaces/default/midihubs/jam")
                .is_some_and(|hub| hub["status"]["phase"] == "Unschedulable")
        })
        .await;
    // The fake cluster has no sound-ready node, so the hub cannot be placed.
    assert!(reported, "the operator reports the hub's phase");
    let lease = fake.get(LEASE).expect("the operator holds a lease");
    assert_eq!(lease["spec"]["holderIdentity"], "midihub-operator-0");

    let health = http_get(&endpoint(port, "/healthz")).unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    // The phase gauge reads the operator's cache of hubs, which sees the status a moment after
    // the API does; a reconcile is counted when it ends, after its Event.
    let counted = fake
        .wait_for(WAIT, |_| {
            let metrics = http_get(&endpoint(port, "/metrics")).unwrap().body;
            metrics.contains("midihub_operator_hubs{phase=\"Unschedulable\"} 1")
                && metrics.contains("midihub_operator_reconciles_total{result=\"changed\"}")
        })
        .await;
    let metrics = http_get(&endpoint(port, "/metrics")).unwrap().body;
    assert!(counted, "{metrics}");

    // The page shows the listed hub (from a watch of its own, which sees the status a moment
    // after the API does); a viewer keeps its live stream open through the stop.
    let shown = fake
        .wait_for(WAIT, |_| {
            let page = http_get(&endpoint(page_port, "/api/hubs/default/jam")).unwrap();
            page.status == 200 && page.body.contains(r#""phase":"Unschedulable""#)
        })
        .await;
    let page = http_get(&endpoint(page_port, "/api/hubs/default/jam")).unwrap();
    assert!(shown, "the page shows the hub Unschedulable: {page:?}");
    let mut viewer = TcpStream::connect(("127.0.0.1", page_port)).unwrap();
    viewer.set_read_timeout(Some(WAIT)).unwrap();
    viewer
        .write_all(b"GET /events HTTP/1.1\r\nHost: page\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0; 4096];
    while !String::from_utf8_lossy(&seen).contains("event: hubs") {
        let read = viewer.read(&mut buffer).unwrap();
        assert!(read > 0, "the live stream ended at once: {seen:?}");
        seen.extend_from_slice(&buffer[..read]);
    }

    let terminated = Command::new("kill")
        .args(["-TERM", &operator.0.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let mut exit = None;
    for _ in 0..100 {
        if let Some(status) = operator.0.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(exit) = exit else {
        panic!("the operator did not stop within 10 s of SIGTERM");
    };
    assert!(exit.success(), "a requested stop exits 0, got {exit}");
    let lease = fake.get(LEASE).unwrap();
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "the lease is handed back: {lease:#}"
    );
    std::fs::remove_dir_all(&directory).unwrap();
}

#[tokio::test]
async fn healthz_fails_while_the_api_is_gone_for_longer_than_the_watch_grace_period() {
    let fake = FakeApiServer::start().await;
    let proxy = OutageProxy::start(fake.address()).await.unwrap();
    let (directory, kubeconfig) = kubeconfig("health", &proxy.url());
    let port = free_port();
    let _operator = Running(
        Command::new(env!("CARGO_BIN_EXE_midihub-operator"))
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "warn")
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--page-listen",
                "off",
                "--leader-election",
                "false",
                "--watch-grace-seconds",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Nothing listens until the operator has started: no answer yet, status 0.
    let healthz = || {
        http_get(&endpoint(port, "/healthz")).unwrap_or(HttpResponse {
            status: 0,
            body: String::new(),
        })
    };
    fake.insert(
        "/apis/midihub.io/v1alpha1/namespaces/default/midihubs",
        json!({"apiVersion": "midihub.io/v1alpha1", "kind": "MidiHub",
               "metadata": {"name": "jam", "namespace": "default"},
               "spec": {"listed": true, "ports": [{"port": 5004}]}}),
    );
    let working = fake
        .wait_for(WAIT, |fake| {
            fake.get("/apis/apps/v1/namespaces/default/deployments/midihub-jam")
                .is_some()
        })
        .await;
    assert!(working, "the operator reconciles the hub");
    assert_eq!(healthz().status, 200, "{:?}", healthz());

    proxy.stop();
    // Every watch fails within moments of the API going; the first past the grace period
    // turns /healthz, the others follow.
    let hub_watch_reported = fake
        .wait_for(WAIT, |_| {
            let answer = healthz();
            answer.status == 503 && answer.body.contains("MidiHub (")
        })
        .await;
    let answer = healthz();
    assert!(hub_watch_reported, "{answer:?}");
    assert!(
        answer.body.contains("watches failing for longer than 2s: "),
        "{answer:?}"
    );

    proxy.serve();
    let recovered = fake.wait_for(WAIT, |_| healthz().status == 200).await;
    assert!(recovered, "{:?}", healthz());
    std::fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn text_logs_written_to_a_pipe_carry_no_colour_codes() {
    let output = Command::new(env!("CARGO_BIN_EXE_midihub-operator"))
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .args(["--log-format", "text", "--listen", "127.0.0.1:0"])
        .args(["--page-listen", "off"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "there is no API server to reach");
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(logs.contains("operator stopped"), "{logs}");
    assert!(!logs.contains('\x1b'), "{logs:?}");
}
