//! Prometheus metrics of the operator: reconciles, their duration and errors, and hubs by phase.

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

/// The operator's metrics and the registry they are served from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    failures: Family<ErrorLabels, Counter>,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("midihub_operator");
        let reconciles = Counter::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]);
        registry.register("reconciles", "Reconciles of MidiHubs", reconciles.clone());
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

    /// Counts a reconcile; the returned guard records its duration when dropped.
    pub fn reconcile_started(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        ReconcileTimer {
            histogram: &self.duration,
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, error: &crate::ReconcileError) {
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
    histogram: &'a Histogram,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
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
