//! The shared definition of the `MidiHub` resource: the Rust types behind the CRD, the CRD
//! rendering, the rtpmidid configuration both the operator and the hub sidecar write, and the
//! contract between the two binaries.

pub mod contract;
pub mod crd;
pub mod hub;
pub mod rtpmidid_config;

pub use hub::*;
