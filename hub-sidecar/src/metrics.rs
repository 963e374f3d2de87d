//! Prometheus metrics of the sidecar: participants per room, round trips, wiring changes and
//! errors.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoomLabels {
    room: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    change: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// Where an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSource {
    /// rtpmidid's control socket.
    Control,
    /// The ALSA sequencer.
    Sequencer,
    /// Publishing (the Kubernetes API, or stdout).
    Publish,
}

impl ErrorSource {
    fn label(self) -> &'static str {
        match self {
            ErrorSource::Control => "control",
            ErrorSource::Sequencer => "sequencer",
            ErrorSource::Publish => "publish",
        }
    }
}

/// The sidecar's metrics and the registry they are served from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    participants: Family<RoomLabels, Gauge>,
    round_trip: Histogram,
    wiring_changes: Family<ChangeLabels, Counter>,
    errors: Family<SourceLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("midihub_sidecar");
        let participants = Family::<RoomLabels, Gauge>::default();
        // RTP-MIDI over the internet: from a LAN's milliseconds to a continent's quarter second.
        let round_trip =
            Histogram::new([0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.25, 0.5, 1.0]);
        let wiring_changes = Family::<ChangeLabels, Counter>::default();
        let errors = Family::<SourceLabels, Counter>::default();
        registry.register(
            "participants",
            "Connected participants, by room (control port)",
            participants.clone(),
        );
        registry.register(
            "round_trip_seconds",
            "Round-trip times of participants' clock synchronisation, as rtpmidid measures them",
            round_trip.clone(),
        );
        registry.register(
            "wiring_changes",
            "ALSA subscriptions made (add) and removed (remove) by the sidecar",
            wiring_changes.clone(),
        );
        registry.register(
            "errors",
            "Errors, by source (control, sequencer, publish)",
            errors.clone(),
        );
        Self {
            registry,
            participants,
            round_trip,
            wiring_changes,
            errors,
        }
    }
}

impl Metrics {
    /// Sets the number of participants of a room.
    pub fn set_participants(&self, room: u16, count: usize) {
        self.participants
            .get_or_create(&RoomLabels {
                room: room.to_string(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Records a new round-trip sample, in milliseconds.
    pub fn observe_round_trip(&self, milliseconds: f64) {
        self.round_trip.observe(milliseconds / 1000.0);
    }

    /// Counts subscriptions added and removed.
    pub fn wiring_changed(&self, added: usize, removed: usize) {
        let count = |change, n: usize| {
            self.wiring_changes
                .get_or_create(&ChangeLabels { change })
                .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        };
        count("add", added);
        count("remove", removed);
    }

    /// Counts an error.
    pub fn error(&self, source: ErrorSource) {
        self.errors
            .get_or_create(&SourceLabels {
                source: source.label(),
            })
            .inc();
    }

    /// The registry the metrics are served from.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
