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
    /// Whether the participant is fully connected; a port of one that is joining or leaving
    /// is managed (never left wired) but not wired.
    pub connected: bool,
}

/// Every subscription a hub wants: inside each room, each connected participant's port to
/// each other connected participant's port.
pub fn desired_subscriptions(participants: &[ParticipantPort]) -> BTreeSet<Subscription> {
    let mut rooms: BTreeMap<u16, BTreeSet<PortAddr>> = BTreeMap::new();
    for participant in participants.iter().filter(|p| p.connected) {
        rooms
            .entry(participant.room)
            .or_default()
            .insert(participant.port);
    }
    rooms
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

impl WiringPlan {
    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }
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
mod tests {
    use super::*;

    const DAEMON: i32 = 128;

    fn port(port: i32) -> PortAddr {
        PortAddr {
            client: DAEMON,
            port,
        }
    }

    fn participant(alsa_port: i32, room: u16) -> ParticipantPort {
        ParticipantPort {
            port: port(alsa_port),
            room,
            connected: true,
        }
    }

    fn link(from: i32, to: i32) -> Subscription {
        Subscription {
            from: port(from),
            to: port(to),
        }
    }

    #[test]
    fn everyone_in_a_room_hears_everyone_else_in_it_and_nobody_elsewhere() {
        let participants = [
            participant(1, 5004),
            participant(2, 5004),
            participant(3, 5004),
            participant(4, 5006),
        ];
        let desired = desired_subscriptions(&participants);
        let expected: BTreeSet<Subscription> = [
            link(1, 2),
            link(1, 3),
            link(2, 1),
            link(2, 3),
            link(3, 1),
            link(3, 2),
        ]
        .into();
        assert_eq!(desired, expected);
    }

    #[test]
    fn a_lone_participant_is_wired_to_nobody() {
        assert!(desired_subscriptions(&[participant(1, 5004)]).is_empty());
        assert!(desired_subscriptions(&[participant(1, 5004), participant(2, 5006)]).is_empty());
    }

    #[test]
    fn a_participant_that_is_not_connected_is_not_wired() {
        let mut leaving = participant(2, 5004);
        leaving.connected = false;
        let desired = desired_subscriptions(&[participant(1, 5004), leaving, participant(3, 5004)]);
        assert_eq!(desired, [link(1, 3), link(3, 1)].into());
    }

    #[test]
    fn same_named_participants_are_wired_by_port_not_by_name() {
        // Two participants called the same get two ports; the planner never sees names.
        let desired = desired_subscriptions(&[participant(5, 5004), participant(6, 5004)]);
        assert_eq!(desired, [link(5, 6), link(6, 5)].into());
    }

    #[test]
    fn the_plan_adds_what_is_missing_and_removes_only_stale_links_between_participants() {
        let participants = [
            participant(1, 5004),
            participant(2, 5004),
            participant(3, 5006),
        ];
        let other_client = Subscription {
            from: port(1),
            to: PortAddr {
                client: 14,
                port: 0,
            },
        };
        let current: BTreeSet<Subscription> = [
            link(1, 2),   // wanted: kept
            link(1, 3),   // across rooms: removed
            link(9, 1),   // port 9 is not a participant's: left alone
            other_client, // another client's port: left alone
        ]
        .into();
        let plan = plan(&participants, &current);
        assert_eq!(plan.add, vec![link(2, 1)]);
        assert_eq!(plan.remove, vec![link(1, 3)]);
    }

    #[test]
    fn applying_the_plan_reaches_a_fixed_point() {
        let participants = [
            participant(1, 5004),
            participant(2, 5004),
            participant(3, 5004),
        ];
        let mut current: BTreeSet<Subscription> = [link(3, 3)].into();
        let first = plan(&participants, &current);
        for removed in &first.remove {
            current.remove(removed);
        }
        current.extend(first.add.iter().copied());
        assert!(
            plan(&participants, &current).is_empty(),
            "a second pass changes nothing"
        );
        assert!(!current.contains(&link(3, 3)), "no echo to itself");
    }

    #[test]
    fn when_a_participant_leaves_its_links_go_with_its_port_and_nothing_else_changes() {
        let before = [
            participant(1, 5004),
            participant(2, 5004),
            participant(3, 5004),
        ];
        let current = desired_subscriptions(&before);
        // The kernel drops a deleted port's subscriptions by itself.
        let after_kernel: BTreeSet<Subscription> = current
            .into_iter()
            .filter(|s| s.from != port(3) && s.to != port(3))
            .collect();
        let plan = plan(&before[..2], &after_kernel);
        assert!(plan.is_empty(), "{plan:?}");
    }
}
