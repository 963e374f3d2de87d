//! Test support for midihub: [`fake_apiserver`], a fake API server for tests (not Kubernetes)
//! that the real kube client and kube-runtime controllers can run against.

pub mod applemidi;
pub mod cluster;
pub mod control_plane;
pub mod fake_apiserver;
pub mod real_alsa;

pub use fake_apiserver::{FailureRule, FakeApiServer, FakeApiServerError, Method, RecordedRequest};
