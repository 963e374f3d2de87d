//! The MidiHub operator: watches `MidiHub` resources and turns each into its children (the
//! rtpmidid configuration, the sidecar's RBAC and the hub Deployment), scales the hub to zero
//! outside its schedule, and reports phase, conditions and address in its status.
//!
//! Reconcile is a pipeline: [`schedule`] decides (and [`overtime`] keeps a playing hub awake),
//! [`children`] makes the objects, [`apply`] writes what changed, [`status`] says what the hub
//! is doing; [`controller`] strings them together.
//! Its [`watches`] recover on their own from an API server restart and report to [`health`],
//! which `/healthz` ([`http`]) reads; [`client`] makes sure no request waits forever.
//!
//! Every replica, leader or not, also serves the public [`page`] of the hubs whose owners list
//! them (and the same as JSON), from a watch of its own.

pub mod address;
pub mod announcement;
pub mod apply;
pub mod children;
pub mod client;
pub mod clock;
pub mod controller;
pub mod error;
pub mod health;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod overtime;
pub mod page;
pub mod schedule;
pub mod status;
pub mod stores;
pub mod watches;

pub use error::{OperatorError, ReconcileError};
