//! Prometheus metrics of the sidecar: participants per room, refusals by the rooms'
//! allow-lists, round trips, wiring changes, how fast joins are wired, and errors.

use std::time::Duration;

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
    /// The stuck-note guard (its input overran, or its thread stopped).
    Guard,
}

impl ErrorSource {
    fn label(self) -> &'static str {
        match self {
            ErrorSource::Control => "control",
            ErrorSource::Sequencer => "sequencer",
            ErrorSource::Publish => "publish",
            ErrorSource::Guard => "guard",
        }
    }
}

/// The sidecar's metrics and the registry they are served from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    participants: Family<RoomLabels, Gauge>,
    refusals: Family<RoomLabels, Counter>,
    round_trip: Histogram,
    wiring_changes: Family<ChangeLabels, Counter>,
    notes_released: Family<RoomLabels, Counter>,
    panics: Counter,
    wiring_reaction: Histogram,
    errors: Family<SourceLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("midihub_sidecar");
        let participants = Family::<RoomLabels, Gauge>::default();
        let refusals = Family::<RoomLabels, Counter>::default();
        // RTP-MIDI over the internet: from a LAN's milliseconds to a continent's quarter second.
        let round_trip =
            Histogram::new([0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.25, 0.5, 1.0]);
        let wiring_changes = Family::<ChangeLabels, Counter>::default();
        let notes_released = Family::<RoomLabels, Counter>::default();
        let panics = Counter::default();
        // Fine enough to tell 1, 2 and 5 ms apart: the sidecar's share of a join's wait.
        let wiring_reaction = Histogram::new([
            0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]);
        let errors = Family::<SourceLabels, Counter>::default();
        registry.register(
            "participants",
            "Participants playing (connected, and admitted by the room's allow-list), by room (control port)",
            participants.clone(),
        );
        registry.register(
            "refusals",
            "Participants refused by their room's allow-list (never wired), by room (control port); each refusal counts once",
            refusals.clone(),
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
            "notes_released",
            "Notes the stuck-note guard released for a room's remaining participants when one left holding them (one per press), by room (control port)",
            notes_released.clone(),
        );
        registry.register(
            "panics",
            "Hub-wide panics sent (all notes off, pedals up, controllers reset, to every participant)",
            panics.clone(),
        );
        registry.register(
            "wiring_reaction_seconds",
            "Time from the sequencer's announcement of a joining participant's port (as the sidecar read it) to the last subscription the join called for",
            wiring_reaction.clone(),
        );
        registry.register(
            "errors",
            "Errors, by source (control, sequencer, publish, guard)",
            errors.clone(),
        );
        Self {
            registry,
            participants,
            refusals,
            round_trip,
            wiring_changes,
            notes_released,
            panics,
            wiring_reaction,
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

    /// Counts a participant refused by the allow-list of a room (its control port, as
    /// published in `status.refused`).
    pub fn refused(&self, room: i32) {
        self.refusals
            .get_or_create(&RoomLabels {
                room: room.to_string(),
            })
            .inc();
    }

    /// Counts notes the stuck-note guard released in a room.
    pub fn notes_released(&self, room: u16, notes: usize) {
        self.notes_released
            .get_or_create(&RoomLabels {
                room: room.to_string(),
            })
            .inc_by(u64::try_from(notes).unwrap_or(u64::MAX));
    }

    /// Counts a hub-wide panic sent.
    pub fn panic_sent(&self) {
        self.panics.inc();
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

    /// Records how long a join took to wire, from the announcement of its port.
    pub fn observe_wiring_reaction(&self, reaction: Duration) {
        self.wiring_reaction.observe(reaction.as_secs_f64());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(metrics: &Metrics) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, metrics.registry()).unwrap();
        text
    }

    #[test]
    fn refusals_are_counted_by_room() {
        let metrics = Metrics::default();
        metrics.refused(5004);
        metrics.refused(5004);
        metrics.refused(5006);
        let text = exposition(&metrics);
        assert!(
            text.contains("midihub_sidecar_refusals_total{room=\"5004\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("midihub_sidecar_refusals_total{room=\"5006\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn wiring_reactions_fall_in_millisecond_buckets() {
        let metrics = Metrics::default();
        metrics.observe_wiring_reaction(Duration::from_micros(1_500));
        metrics.observe_wiring_reaction(Duration::from_millis(4));
        let text = exposition(&metrics);
        for (bound, count) in [("0.001", 0), ("0.002", 1), ("0.003", 1), ("0.005", 2)] {
            let line = format!(
                "midihub_sidecar_wiring_reaction_seconds_bucket{{le=\"{bound}\"}} {count}\n"
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
    }
}
