//! The wiring planner: which ALSA subscriptions make a hub a hub, and what to change to get
//! there. Pure: it sees ports and rooms, never the sequencer.
//!
//! Inside each room every participant's port is subscribed to every other participant's port
//! of the same room: never to itself (no echo), never across rooms, never to a port that is
//! not a participant's (rtpmidid's own ports, other clients).

use std::collections::{BTreeMap, BTreeSet};

/// An ALSA sequencer address: client and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortAddr {
    pub client: i32,
    pub port: i32,
}

impl std::fmt::Display for PortAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.client, self.port)
    }
}

/// A sequencer subscription: events from `from` are delivered to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subscription {
    pub from: PortAddr,
    pub to: PortAddr,
}

impl std::fmt::Display for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)
    }
}

/// A participant's ALSA port and the room (control port) it joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParticipantPort {
    pub port: PortAddr,
    pub room: u16,
    /// Whether the participant plays: fully connected, and admitted by its room's allow-list.
    /// The port of one that is joining, leaving or refused is managed (never left wired, so
    /// links to it are removed) but not wired.
    pub plays: bool,
}

/// Rooms by number (the control port the participants joined), each with its participants'
/// ports.
pub type Rooms = BTreeMap<u16, BTreeSet<PortAddr>>;

/// The ports of the participants who play, room by room (a room where nobody plays is left
/// out).
pub fn playing_rooms(participants: &[ParticipantPort]) -> Rooms {
    let mut rooms = Rooms::new();
    for participant in participants.iter().filter(|p| p.plays) {
        rooms
            .entry(participant.room)
            .or_default()
            .insert(participant.port);
    }
    rooms
}

/// Every subscription a hub wants: inside each room, each playing participant's port to
/// each other playing participant's port.
pub fn desired_subscriptions(participants: &[ParticipantPort]) -> BTreeSet<Subscription> {
    playing_rooms(participants)
        .values()
        .flat_map(|ports| {
            ports.iter().flat_map(move |&from| {
                ports
                    .iter()
                    .filter(move |&&to| to != from)
                    .map(move |&to| Subscription { from, to })
            })
        })
        .collect()
}

/// The changes that turn the current wiring into the desired one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WiringPlan {
    pub remove: Vec<Subscription>,
    pub add: Vec<Subscription>,
}

/// What to subscribe and unsubscribe. `current` is what the kernel holds between the daemon's
/// ports; only subscriptions whose both ends are participants' ports are ever removed, so
/// links that someone else made to other ports are left alone.
pub fn plan(participants: &[ParticipantPort], current: &BTreeSet<Subscription>) -> WiringPlan {
    let desired = desired_subscriptions(participants);
    let managed: BTreeSet<PortAddr> = participants.iter().map(|p| p.port).collect();
    WiringPlan {
        remove: current
            .iter()
            .filter(|s| managed.contains(&s.from) && managed.contains(&s.to))
            .filter(|s| !desired.contains(s))
            .copied()
            .collect(),
        add: desired.difference(current).copied().collect(),
    }
}

#[cfg(test)]
mod tests;
