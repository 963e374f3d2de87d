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
