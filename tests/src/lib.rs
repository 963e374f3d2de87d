//! The test library of midihub: [`fake_apiserver`], a fake API server for tests (not
//! Kubernetes) that the real kube client and kube-runtime controllers can run against, and
//! [`outage`], a proxy in front of it that plays an API server restart; [`control_plane`] and
//! [`cluster`] for tests on a real API server; [`applemidi`], an RTP-MIDI test participant;
//! [`real_alsa`] and [`sidecar`] for tests on a real sequencer with the real rtpmidid and the
//! hub-sidecar binary; [`browser`], the page in headless Chromium; [`conditions`] and [`http`],
//! small helpers the tests share; [`bench`], what the
//! benchmarks share (host facts, a process's footprint, the kernel's loss counters).

pub mod applemidi;
pub mod bench;
pub mod browser;
pub mod cluster;
pub mod conditions;
pub mod control_plane;
pub mod fake_apiserver;
pub mod http;
pub mod outage;
pub mod real_alsa;
pub mod sidecar;

pub use fake_apiserver::{FailureRule, FakeApiServer, FakeApiServerError, Method, RecordedRequest};
