//! The operator's HTTP endpoint: `/healthz` fails while a watch has been deaf beyond its grace
//! period, `/metrics` serves the operator's [`Metrics`]. The serving itself is
//! [`midihub_runtime::endpoint`]'s, shared with the hub sidecar.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use midihub_runtime::endpoint::{self, Probe};
use prometheus_client::registry::Registry;
use tokio::time::Instant;

use crate::health::WatchHealth;
use crate::metrics::Metrics;

/// What the operator's endpoint reports on.
pub struct OperatorProbe {
    metrics: Arc<Metrics>,
    health: Arc<WatchHealth>,
}

impl Probe for OperatorProbe {
    /// OK unless a watch has failed for longer than the grace period: then the operator no
    /// longer hears changes, and a restart is the way out.
    fn health(&self) -> Result<(), String> {
        let deaf = self.health.deaf_watches(Instant::now());
        if deaf.is_empty() {
            return Ok(());
        }
        let mut why = format!(
            "watches failing for longer than {}s:",
            self.health.grace().as_secs()
        );
        for (watch, failing_for) in deaf {
            let _ = write!(why, " {watch} ({}s)", failing_for.as_secs());
        }
        Err(why)
    }

    fn registry(&self) -> &Registry {
        self.metrics.registry()
    }
}

/// The endpoint's routes: `/healthz` and `/metrics`, nothing of the operator's own.
pub fn router(metrics: Arc<Metrics>, health: Arc<WatchHealth>) -> Router {
    endpoint::router::<OperatorProbe>().with_state(Arc::new(OperatorProbe { metrics, health }))
}

#[cfg(test)]
mod tests;
