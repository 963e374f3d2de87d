//! The MidiHub operator: watches `MidiHub` resources and turns each into its children (the
//! rtpmidid configuration, the sidecar's RBAC and the hub Deployment), scales the hub to zero
//! outside its schedule, and reports phase, conditions and address in its status.

pub mod build;
pub mod schedule;
