//! The hub-sidecar binary's logs: text logs written to a file or a pipe carry no colour codes.

use std::process::Command;

#[test]
fn text_logs_written_to_a_pipe_carry_no_colour_codes() {
    // Kubernetes mode without a cluster to reach: the sidecar logs why and stops.
    let output = Command::new(env!("CARGO_BIN_EXE_hub-sidecar"))
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .args(["--log-format", "text", "--listen", "127.0.0.1:0"])
        .args(["kubernetes", "--hub", "jam", "--namespace", "default"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "there is no API server to reach");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("hub-sidecar stopped"), "{logs}");
    assert!(!logs.contains('\x1b'), "{logs:?}");
}
