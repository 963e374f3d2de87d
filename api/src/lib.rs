//! The shared definition of the `MidiHub` resource: the Rust types behind the CRD, the CRD
//! rendering, and the rtpmidid configuration both the operator and the hub sidecar write.

pub mod crd;
pub mod hub;
pub mod ownership;
pub mod rtpmidid_config;

pub use hub::*;
