//! Who is in the hub: participants as the MidiHub status shows them, with the time each
//! joined, and who joined or left since the last look. Pure: time is passed in.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use midihub_api::{Latency, Participant};

use crate::rtpmidid::status::ParticipantStatus;

/// What identifies one participant across looks: its room and its SSRC (names need not be
/// unique, and a participant that re-joins gets a new SSRC).
type Key = (u16, u32);

/// The participants seen so far, each with the time it joined.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    joined: BTreeMap<Key, Participant>,
    /// Participants a previous sidecar published and that have not been seen again yet.
    inherited: Vec<Participant>,
}

/// What changed between two looks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    pub joined: Vec<Participant>,
    pub left: Vec<Participant>,
}

impl Roster {
    /// A roster that takes over the participants a previous sidecar published: those still
    /// there keep their join time (matched by room, name and address) and are not announced
    /// again; those gone by the first look are announced as having left.
    pub fn inherit(previous: Vec<Participant>) -> Self {
        Self {
            joined: BTreeMap::new(),
            inherited: previous,
        }
    }

    /// Takes the participants rtpmidid reports now (only connected ones count); returns who
    /// joined and who left since the last look.
    pub fn update(&mut self, reported: &[ParticipantStatus], now: Timestamp) -> Changes {
        let mut changes = Changes::default();
        let mut current = BTreeMap::new();
        for status in reported.iter().filter(|p| p.connected) {
            let key = (status.room_port, status.ssrc);
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
        self.joined = current;
        changes
    }

    /// The participants as published, ordered by room, then join time, then name.
    pub fn participants(&self) -> Vec<Participant> {
        let mut participants: Vec<Participant> = self.joined.values().cloned().collect();
        participants
            .sort_by(|a, b| (a.port, &a.joined_at, &a.name).cmp(&(b.port, &b.joined_at, &b.name)));
        participants
    }

    fn take_inherited(&mut self, status: &ParticipantStatus) -> Option<Participant> {
        let address = status.remote_endpoint();
        let position = self.inherited.iter().position(|p| {
            p.port == i32::from(status.room_port)
                && p.name == status.name
                && p.remote_address == address
        })?;
        Some(self.inherited.remove(position))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtpmidid::status::LatencyMs;

    fn status(name: &str, room_port: u16, ssrc: u32, remote_port: u16) -> ParticipantStatus {
        ParticipantStatus {
            room_port,
            room_name: format!("room-{room_port}"),
            name: name.to_string(),
            remote_address: "203.0.113.10".to_string(),
            remote_port,
            ssrc,
            alsa_port: Some(1),
            connected: true,
            latency: Some(LatencyMs {
                last: 20.0,
                average: 21.5,
                stddev: 1.25,
            }),
        }
    }

    fn at(time: &str) -> Timestamp {
        time.parse().unwrap()
    }

    fn names(participants: &[Participant]) -> Vec<&str> {
        participants.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn a_new_participant_joins_once_and_keeps_its_join_time() {
        let mut roster = Roster::default();
        let alice = status("Alice", 5004, 11, 7000);
        let first = roster.update(std::slice::from_ref(&alice), at("2026-11-25T19:00:00Z"));
        assert_eq!(names(&first.joined), ["Alice"]);
        let second = roster.update(&[alice], at("2026-11-25T19:05:00Z"));
        assert_eq!(second, Changes::default());
        let published = roster.participants();
        assert_eq!(
            published[0].joined_at,
            Some(Time(at("2026-11-25T19:00:00Z")))
        );
        assert_eq!(published[0].remote_address, "203.0.113.10:7000");
        assert_eq!(published[0].latency.as_ref().unwrap().jitter_ms, 1.25);
    }

    #[test]
    fn a_participant_that_disappears_or_stops_being_connected_has_left() {
        let mut roster = Roster::default();
        let alice = status("Alice", 5004, 11, 7000);
        let bob = status("Bob", 5004, 12, 7002);
        roster.update(&[alice.clone(), bob.clone()], at("2026-11-25T19:00:00Z"));
        let mut bob_leaving = bob;
        bob_leaving.connected = false;
        let changes = roster.update(&[alice, bob_leaving], at("2026-11-25T19:01:00Z"));
        assert_eq!(names(&changes.left), ["Bob"]);
        assert_eq!(names(&roster.participants()), ["Alice"]);
    }

    #[test]
    fn same_names_are_two_participants_and_a_rejoin_is_a_leave_and_a_join() {
        let mut roster = Roster::default();
        let first = status("iPad", 5004, 11, 7000);
        let second = status("iPad", 5004, 12, 7002);
        let changes = roster.update(&[first.clone(), second], at("2026-11-25T19:00:00Z"));
        assert_eq!(changes.joined.len(), 2);
        // The first one re-joins: a new SSRC.
        let rejoined = status("iPad", 5004, 13, 7000);
        let changes = roster.update(&[rejoined], at("2026-11-25T19:02:00Z"));
        assert_eq!(changes.joined.len(), 1);
        assert_eq!(changes.left.len(), 2);
    }

    #[test]
    fn after_a_restart_known_participants_keep_their_join_time_and_are_not_announced_again() {
        let mut before = Roster::default();
        before.update(
            &[
                status("Alice", 5004, 11, 7000),
                status("Bob", 5006, 12, 7002),
            ],
            at("2026-11-25T19:00:00Z"),
        );
        let mut after = Roster::inherit(before.participants());
        // Alice is still there; Bob left while the sidecar was down.
        let changes = after.update(
            &[status("Alice", 5004, 11, 7000)],
            at("2026-11-25T19:30:00Z"),
        );
        assert!(changes.joined.is_empty());
        assert_eq!(names(&changes.left), ["Bob"]);
        assert_eq!(
            after.participants()[0].joined_at,
            Some(Time(at("2026-11-25T19:00:00Z")))
        );
    }

    #[test]
    fn participants_are_listed_by_room_then_join_time() {
        let mut roster = Roster::default();
        roster.update(&[status("Zed", 5006, 1, 7000)], at("2026-11-25T19:00:00Z"));
        roster.update(
            &[
                status("Zed", 5006, 1, 7000),
                status("Bea", 5004, 2, 7002),
                status("Abe", 5004, 3, 7004),
            ],
            at("2026-11-25T19:01:00Z"),
        );
        assert_eq!(names(&roster.participants()), ["Abe", "Bea", "Zed"]);
    }
}
