//! The recent round trips of each participant of the listed hubs, for the page's latency charts.
//!
//! A hub's status holds only the latest round trip of each participant, so the history is
//! kept here, in memory, as status updates arrive (a restart starts it afresh). It stays small:
//! only listed hubs are tracked, samples older than [`WINDOW`] go, each participant keeps at
//! most [`MAX_SAMPLES`], and participants and hubs that left are forgotten.
//!
//! A participant is known by its room, name and joining time, never by its address, so that
//! the operator keeps no more personal data than the page shows.

use std::collections::{BTreeMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use midihub_api::{MidiHub, Participant};
use serde::Serialize;

/// How far back the latency charts look.
pub const WINDOW: SignedDuration = SignedDuration::from_mins(10);

/// The most samples kept per participant: one a second over the whole window, more than the
/// sidecar publishes.
pub const MAX_SAMPLES: usize = 600;

/// One round trip of a participant, as a status update reported it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// When the operator saw it.
    pub at: Timestamp,
    /// The round trip, in milliseconds.
    pub round_trip_ms: f64,
}

/// A hub, by namespace and name.
pub type HubKey = (String, String);

/// A participant of a hub, by room (control port), name and joining time.
type ParticipantKey = (i32, String, Option<Timestamp>);

/// The recent samples of every participant of every listed hub.
#[derive(Debug, Default)]
pub struct History {
    hubs: BTreeMap<HubKey, BTreeMap<ParticipantKey, VecDeque<Sample>>>,
}

/// The key of a hub in the history.
pub fn hub_key(hub: &MidiHub) -> HubKey {
    (hub.namespace().unwrap_or_default(), hub.name_any())
}

fn participant_key(participant: &Participant) -> ParticipantKey {
    (
        participant.port,
        participant.name.clone(),
        participant.joined_at.as_ref().map(|time| time.0),
    )
}

impl History {
    /// Takes in `hub` as seen at `now`: a new sample for each participant whose last round
    /// trip changed, participants that left forgotten, and the whole hub forgotten when it is
    /// not listed. Returns whether the hub is (or was until now) one the page shows.
    pub fn record(&mut self, hub: &MidiHub, now: Timestamp) -> bool {
        let key = hub_key(hub);
        if !hub.spec.listed {
            return self.hubs.remove(&key).is_some();
        }
        let participants = hub
            .status
            .as_ref()
            .and_then(|status| status.participants.as_deref())
            .unwrap_or_default();
        let known = self.hubs.entry(key).or_default();
        known.retain(|participant, _| {
            participants
                .iter()
                .any(|p| participant_key(p) == *participant)
        });
        for participant in participants {
            let Some(latency) = &participant.latency else {
                continue;
            };
            let samples = known.entry(participant_key(participant)).or_default();
            if samples.back().map(|last| last.round_trip_ms) != Some(latency.last_ms) {
                samples.push_back(Sample {
                    at: now,
                    round_trip_ms: latency.last_ms,
                });
            }
            prune(samples, now);
        }
        true
    }

    /// Forgets the hub `key` (it was deleted); whether the page showed it.
    pub fn forget(&mut self, key: &HubKey) -> bool {
        self.hubs.remove(key).is_some()
    }

    /// Forgets every hub but those `keep` names (after a fresh list of the hubs).
    pub fn retain(&mut self, keep: impl Fn(&HubKey) -> bool) {
        self.hubs.retain(|key, _| keep(key));
    }

    /// The samples of `participant` of the hub `hub` for a chart of the window before `now`,
    /// oldest first: those within the window, after the last one before it (the round trip
    /// as the window begins).
    pub fn samples(&self, hub: &HubKey, participant: &Participant, now: Timestamp) -> Vec<Sample> {
        let Some(samples) = self
            .hubs
            .get(hub)
            .and_then(|participants| participants.get(&participant_key(participant)))
        else {
            return Vec::new();
        };
        let since = now - WINDOW;
        let first_within = samples.partition_point(|sample| sample.at < since);
        samples
            .range(first_within.saturating_sub(1)..)
            .copied()
            .collect()
    }

    /// How many samples are kept in all (for tests of the bounds).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.hubs
            .values()
            .flat_map(BTreeMap::values)
            .map(VecDeque::len)
            .sum()
    }
}

/// Drops the samples beyond the count, and those before the window but the last of them (the
/// round trip as the window begins, which still holds while it does not change).
fn prune(samples: &mut VecDeque<Sample>, now: Timestamp) {
    let since = now - WINDOW;
    while samples.len() > MAX_SAMPLES || samples.get(1).is_some_and(|next| next.at <= since) {
        samples.pop_front();
    }
}

#[cfg(test)]
mod tests;
