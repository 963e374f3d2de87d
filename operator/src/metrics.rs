//! Prometheus metrics of the operator: reconciles by result, their duration and errors, and hubs
//! by phase.

use std::fmt;
use std::time::Instant;

use kube::runtime::reflector::Store;
use midihub_api::{MidiHub, Phase};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// How a reconcile ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    /// It wrote to the cluster (a child, the status, an Event's hub).
    Changed,
    /// The cluster already was as it should be: nothing written.
    Unchanged,
    /// It failed and will be retried.
    Error,
}

impl ReconcileResult {
    fn label(self) -> &'static str {
        match self {
            ReconcileResult::Changed => "changed",
            ReconcileResult::Unchanged => "unchanged",
            ReconcileResult::Error => "error",
        }
    }
}

/// Upper bounds of the reconcile-duration buckets, in seconds: fine below 10 ms, where a
/// reconcile that reads its caches and writes nothing ends, so that a p99 can be read off.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The operator's metrics and the registry they are served from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    failures: Family<ErrorLabels, Counter>,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("midihub_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(DURATION_BUCKETS);
        registry.register(
            "reconciles",
            "Reconciles of MidiHubs, by result: changed (something was written), unchanged, error",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles of MidiHubs, by kind of error",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of MidiHub reconciles",
            duration.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
        }
    }
}

impl Metrics {
    /// Also reports the number of hubs in each phase, read from the controller's cache of hubs
    /// at every scrape (so deleted hubs disappear without bookkeeping).
    pub fn with_hubs(mut self, hubs: Store<MidiHub>) -> Self {
        self.registry
            .register_collector(Box::new(HubsByPhase(hubs)));
        self
    }

    /// Starts timing a reconcile; the returned guard records its duration when dropped.
    pub fn reconcile_started(&self) -> ReconcileTimer<'_> {
        ReconcileTimer {
            metrics: self,
            start: Instant::now(),
        }
    }

    fn count(&self, result: ReconcileResult) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.label(),
            })
            .inc();
    }

    /// Counts a failed reconcile, by kind of error.
    pub fn reconcile_failed(&self, error: &crate::ReconcileError) {
        self.count(ReconcileResult::Error);
        self.failures
            .get_or_create(&ErrorLabels {
                error: error.metric_label(),
            })
            .inc();
    }

    /// The registry the metrics are served from.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Records a reconcile's duration when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    start: Instant,
}

impl ReconcileTimer<'_> {
    /// The reconcile succeeded with `result` (a failure is counted by
    /// [`Metrics::reconcile_failed`]).
    pub fn finished(&self, result: ReconcileResult) {
        self.metrics.count(result);
    }
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

struct HubsByPhase(Store<MidiHub>);

impl fmt::Debug for HubsByPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HubsByPhase")
    }
}

impl Collector for HubsByPhase {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let hubs = self.0.state();
        let mut family = encoder.encode_descriptor(
            "hubs",
            "MidiHubs by phase (hubs not yet reconciled have no phase and are not counted)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for phase in Phase::ALL {
            let count = hubs
                .iter()
                .filter(|hub| hub.status.as_ref().and_then(|s| s.phase) == Some(phase))
                .count();
            let gauge = ConstGauge::new(i64::try_from(count).unwrap_or(i64::MAX));
            let labels = PhaseLabels {
                phase: phase.as_str(),
            };
            gauge.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
