//! Who is in the hub: participants as the MidiHub status shows them, with the time each
//! joined, and who joined or left since the last look; apart from them, whom their room's
//! allow-list refuses, and since when. Pure: time is passed in.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use midihub_api::{Latency, Participant, RefusedParticipant};

use crate::rtpmidid::status::ParticipantStatus;

/// What identifies one participant across looks: its room and its SSRC (names need not be
/// unique, and a participant that re-joins gets a new SSRC).
pub type Key = (u16, u32);

/// The participants seen so far, each with the time it joined.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    joined: BTreeMap<Key, Participant>,
    /// Participants a previous sidecar published and that have not been seen again yet.
    inherited: Vec<Participant>,
    /// Refusals a previous sidecar published and that have not been seen again yet.
    inherited_refused: Vec<RefusedParticipant>,
    /// Connected participants their room's allow-list refuses, each since it was first.
    refused: BTreeMap<Key, RefusedParticipant>,
}

/// Who a sidecar published as there: what the next one takes over.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Published {
    pub participants: Vec<Participant>,
    pub refused: Vec<RefusedParticipant>,
}

/// What changed between two looks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    pub joined: Vec<Participant>,
    /// Includes a participant who played and whom a changed list now refuses.
    pub left: Vec<Participant>,
    /// Participants refused since the last look (who connected, or whom a changed list now
    /// refuses).
    pub refused: Vec<RefusedParticipant>,
}

impl Roster {
    /// A roster that takes over the participants and refusals a previous sidecar published:
    /// those still there keep their join (or refusal) time, matched by room, name and address,
    /// and are not announced again; participants gone by the first look are announced as
    /// having left (a refused one who went was never anyone's news).
    pub fn inherit(previous: Published) -> Self {
        Self {
            inherited: previous.participants,
            inherited_refused: previous.refused,
            ..Self::default()
        }
    }

    /// Takes the participants rtpmidid reports now (only connected ones count) and which of
    /// them their room's allow-list refuses (by room and SSRC); returns who joined, who left
    /// and who was refused since the last look.
    pub fn update(
        &mut self,
        reported: &[ParticipantStatus],
        refused: &BTreeSet<Key>,
        now: Timestamp,
    ) -> Changes {
        let mut changes = Changes::default();
        let mut current = BTreeMap::new();
        let mut current_refused = BTreeMap::new();
        for status in reported.iter().filter(|p| p.connected) {
            let key = (status.room_port, status.ssrc);
            if refused.contains(&key) {
                let known = self
                    .refused
                    .get(&key)
                    .map(|known| known.since.clone())
                    .or_else(|| self.take_inherited_refusal(status));
                let refusal = match known {
                    Some(since) => refusal(status, since),
                    None => {
                        let refusal = refusal(status, Time(now));
                        changes.refused.push(refusal.clone());
                        refusal
                    }
                };
                current_refused.insert(key, refusal);
                continue;
            }
            let joined_at = if let Some(known) = self.joined.get(&key) {
                known.joined_at.clone()
            } else if let Some(inherited) = self.take_inherited(status) {
                inherited.joined_at
            } else {
                changes.joined.push(published(status, Some(Time(now))));
                Some(Time(now))
            };
            current.insert(key, published(status, joined_at));
        }
        changes.left.extend(
            self.joined
                .iter()
                .filter(|(key, _)| !current.contains_key(*key))
                .map(|(_, participant)| participant.clone()),
        );
        changes.left.append(&mut self.inherited);
        self.inherited_refused.clear();
        self.joined = current;
        self.refused = current_refused;
        changes
    }

    /// The refused participants as published, ordered by room, then since when, then name.
    pub fn refused(&self) -> Vec<RefusedParticipant> {
        let mut refused: Vec<RefusedParticipant> = self.refused.values().cloned().collect();
        refused.sort_by(|a, b| (a.port, &a.since, &a.name).cmp(&(b.port, &b.since, &b.name)));
        refused
    }

    /// The participants as published, ordered by room, then join time, then name.
    pub fn participants(&self) -> Vec<Participant> {
        let mut participants: Vec<Participant> = self.joined.values().cloned().collect();
        participants
            .sort_by(|a, b| (a.port, &a.joined_at, &a.name).cmp(&(b.port, &b.joined_at, &b.name)));
        participants
    }

    fn take_inherited(&mut self, status: &ParticipantStatus) -> Option<Participant> {
        let position = self
            .inherited
            .iter()
            .position(|p| is_same(status, p.port, &p.name, &p.remote_address))?;
        Some(self.inherited.remove(position))
    }

    /// The time an inherited refusal of `status` began, taken out of the inherited ones.
    fn take_inherited_refusal(&mut self, status: &ParticipantStatus) -> Option<Time> {
        let position = self
            .inherited_refused
            .iter()
            .position(|p| is_same(status, p.port, &p.name, &p.remote_address))?;
        Some(self.inherited_refused.remove(position).since)
    }
}

/// Whether a published entry (room, name, address) is the participant rtpmidid reports in
/// `status`: across a sidecar restart the SSRC is not published, so these identify it.
fn is_same(status: &ParticipantStatus, port: i32, name: &str, address: &str) -> bool {
    port == i32::from(status.room_port)
        && name == status.name
        && address == status.remote_endpoint()
}

fn published(status: &ParticipantStatus, joined_at: Option<Time>) -> Participant {
    Participant {
        port: i32::from(status.room_port),
        room: status.room_name.clone(),
        name: status.name.clone(),
        remote_address: status.remote_endpoint(),
        joined_at,
        latency: status.latency.map(|latency| Latency {
            last_ms: latency.last,
            average_ms: latency.average,
            jitter_ms: latency.stddev,
        }),
    }
}

fn refusal(status: &ParticipantStatus, since: Time) -> RefusedParticipant {
    RefusedParticipant {
        port: i32::from(status.room_port),
        room: status.room_name.clone(),
        name: status.name.clone(),
        remote_address: status.remote_endpoint(),
        since,
    }
}

#[cfg(test)]
mod tests;
