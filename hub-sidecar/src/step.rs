//! The sidecar's pure step, in two halves around the sequencer's work: [`plan`] turns what
//! rtpmidid and the sequencer say now, and what the loop remembers, into the subscriptions to
//! change; [`conclude`] turns what came of those changes into who joined and left, the figures
//! for the metrics and the report to publish. No socket, no sequencer, no clock: the loop in
//! [`crate::sidecar`] does the I/O, the logs and the metrics, and passes the time in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use midihub_api::contract::reasons::wiring as reasons;

use crate::allow::RoomRules;
use crate::report::{Report, WiringState};
use crate::roster::{self, Changes, Roster};
use crate::rtpmidid::status::RtpmididStatus;
use crate::sequencer::{ClientSnapshot, OpenRoom, OpenRooms, SequencerEvent};
use crate::wiring::{self, ParticipantPort, PortAddr, Rooms, Subscription, WiringPlan};

/// What the loop carries from one pass to the next.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    /// Who is in the hub, and since when.
    roster: Roster,
    /// The last round-trip sample seen per participant (room, SSRC), to count each once.
    round_trips: BTreeMap<(u16, u32), f64>,
    /// Ports the sequencer announced that rtpmidid's status has not explained yet (a
    /// participant's port can show up in the sequencer a moment before it does in `status`,
    /// and a port that joins an open room of its own client is wired before any status names
    /// it), with when they were announced and whether they are wired.
    unexplained: BTreeMap<PortAddr, Announced>,
    /// Ports of joins whose wiring a pass could not complete (a subscription failed), with
    /// when they were announced: a later pass that completes it wires them.
    joining: BTreeMap<PortAddr, Instant>,
    /// The subscriptions the last pass made and removed: the kernel announces each, and those
    /// announcements call for no look of their own.
    echoes: BTreeSet<(bool, Subscription)>,
    /// What rtpmidid's last status could not explain, logged when it changes.
    status_warnings: Vec<String>,
}

/// A port the sequencer announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Announced {
    /// When the sequencer thread read the announcement.
    at: Instant,
    /// Whether it is wired, by a pass or by the sequencer thread (its join has been counted).
    wired: bool,
}

impl Memory {
    /// The memory of a loop that starts with `roster`.
    pub fn new(roster: Roster) -> Self {
        Self {
            roster,
            ..Self::default()
        }
    }

    /// Takes note of a sequencer announcement received at `now`; whether it calls for a look
    /// at rtpmidid and the sequencer (the announcement of a change the last pass made itself
    /// does not).
    pub fn note(&mut self, event: &SequencerEvent, now: Instant) -> bool {
        match event {
            SequencerEvent::PortStart(port) => {
                let announced = Announced {
                    at: now,
                    wired: false,
                };
                self.unexplained.insert(*port, announced);
            }
            SequencerEvent::PortExit(port) => {
                self.unexplained.remove(port);
                self.joining.remove(port);
            }
            SequencerEvent::ClientExit(client) => {
                self.unexplained.retain(|port, _| port.client != *client);
                self.joining.retain(|port, _| port.client != *client);
            }
            SequencerEvent::Subscribed(subscription) => {
                return !self.echoes.remove(&(true, *subscription));
            }
            SequencerEvent::Unsubscribed(subscription) => {
                return !self.echoes.remove(&(false, *subscription));
            }
            _ => {}
        }
        true
    }

    /// Whether announced ports wait for rtpmidid's status to explain them: the loop then looks
    /// again soon rather than at the next refresh.
    pub fn awaits_explanation(&self) -> bool {
        !self.unexplained.is_empty()
    }

    /// Takes note that the sequencer thread wired the announced `port` (a join of an open
    /// room) with `subscriptions`: its join is counted, and their announcements call for no
    /// look.
    pub fn wired_at_announcement(&mut self, port: PortAddr, subscriptions: &[Subscription]) {
        if let Some(announced) = self.unexplained.get_mut(&port) {
            announced.wired = true;
        }
        self.echoes.extend(
            subscriptions
                .iter()
                .map(|subscription| (true, *subscription)),
        );
    }

    /// Takes rtpmidid's warnings; true when they differ from the last ones (each set is logged
    /// once, not on every pass).
    pub fn warnings_changed(&mut self, warnings: &[String]) -> bool {
        if warnings == self.status_warnings {
            return false;
        }
        self.status_warnings = warnings.to_vec();
        true
    }

    /// The participants as last seen, with the wiring as it stands: the report of a pass that
    /// could not look (the last known participants, and why not), or of one that did.
    pub fn report(&self, wiring: WiringState) -> Report {
        Report {
            participants: self.roster.participants(),
            refused: self.roster.refused(),
            wiring,
        }
    }
}

/// What one look at rtpmidid and the sequencer calls for.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The subscriptions to remove and to add.
    pub wiring: WiringPlan,
    /// The participants whose ports exist in the sequencer.
    participants: Vec<ParticipantPort>,
    /// The connected participants their room's list refuses, whether or not their ports exist.
    refused: BTreeSet<roster::Key>,
    /// The announced ports still waiting for an explanation.
    unexplained: BTreeMap<PortAddr, Announced>,
    /// The announced ports this look explains as playing participants (joins), and the joins a
    /// failed pass left, with when they were announced: once the plan is carried out, they are
    /// wired.
    joins: Vec<(PortAddr, Instant)>,
}

impl Plan {
    /// The participants who play, room by room: whom the stuck-note guard watches.
    pub fn playing(&self) -> Rooms {
        wiring::playing_rooms(&self.participants)
    }

    /// The rooms in `status` with a sequencer client of their own, there in `snapshot`, that
    /// admit everyone under `rules`, with the ports there that do not play: whose joins the
    /// sequencer thread may wire as it reads their announcements (every port of such a client
    /// is a participant of the room, created once the participant connected).
    pub fn open_rooms(
        &self,
        status: &RtpmididStatus,
        snapshot: &ClientSnapshot,
        rules: &RoomRules,
    ) -> OpenRooms {
        (status.rooms.iter())
            .filter(|room| rules.admits_everyone(room.port))
            .filter_map(|room| {
                let client = room.alsa_client?;
                let client_name = snapshot.more_client_names.get(&client)?.clone();
                let not_playing = (self.participants.iter())
                    .filter(|p| p.port.client == client && !p.plays)
                    .map(|p| p.port)
                    .collect();
                let room = OpenRoom {
                    room: room.port,
                    client_name,
                    not_playing,
                };
                Some((client, room))
            })
            .collect()
    }
}

/// The subscriptions that make the wiring match what rtpmidid reports in `status` (asked for
/// at `status_asked`), given the daemon's ports and subscriptions in `snapshot` and the rooms'
/// allow-lists in `rules` (a participant a list refuses is never wired, and links to it are
/// removed). A status names only the ports announced before it was asked for: one announced
/// since may be a new participant's on a number the status gave another. Every port of a
/// room's own client is a participant of that room, so in a room that admits everyone it plays
/// before any status names it (one whose entry the status parser skipped plays too). An
/// announced port stays unexplained until a status names it, it goes away, or it is
/// `retry_for` old (then it is something else, rtpmidid's own port say). The wiring state to
/// report instead when the daemon has no client in the sequencer.
pub fn plan(
    memory: &Memory,
    status: &RtpmididStatus,
    status_asked: Instant,
    snapshot: &ClientSnapshot,
    rules: &RoomRules,
    now: Instant,
    retry_for: Duration,
) -> Result<Plan, WiringState> {
    let Some(client) = snapshot.client else {
        return Err(WiringState::unknown(
            reasons::DAEMON_NOT_IN_SEQUENCER,
            format!(
                "rtpmidid answers, but its ALSA client {:?} is not in the sequencer",
                status.alsa_name
            ),
        ));
    };
    let announced_since = |port: &PortAddr| {
        memory
            .unexplained
            .get(port)
            .is_some_and(|announced| announced.at > status_asked)
    };
    let (named, refused) = participant_ports(status, client, rules, announced_since);
    let known: BTreeSet<PortAddr> = named.iter().map(|p| p.port).collect();
    let unnamed = unnamed_room_ports(status, snapshot, rules, &known);
    let existing: BTreeSet<PortAddr> = snapshot.ports.iter().map(|p| p.addr).collect();
    let unexplained = memory
        .unexplained
        .iter()
        .filter(|(port, announced)| {
            !known.contains(port)
                && existing.contains(port)
                && now.saturating_duration_since(announced.at) < retry_for
        })
        .map(|(port, announced)| (*port, *announced))
        .collect();
    let participants: Vec<ParticipantPort> = named
        .into_iter()
        .chain(unnamed)
        .filter(|p| existing.contains(&p.port))
        .collect();
    let joins = participants
        .iter()
        .filter(|p| p.plays)
        .filter_map(|p| {
            let announced = memory.unexplained.get(&p.port);
            let announced = announced.filter(|a| !a.wired).map(|a| a.at);
            Some((
                p.port,
                announced.or_else(|| memory.joining.get(&p.port).copied())?,
            ))
        })
        .collect();
    Ok(Plan {
        wiring: wiring::plan(&participants, &snapshot.subscriptions),
        participants,
        refused,
        unexplained,
        joins,
    })
}

/// What a pass found, once its plan was carried out.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Who joined and who left since the last pass.
    pub changes: Changes,
    /// What the metrics should show.
    pub figures: Figures,
    /// What to publish.
    pub report: Report,
}

/// A pass's contribution to the metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Connected participants of each room rtpmidid lists (the refused not counted), by
    /// control port.
    pub participants: Vec<(u16, usize)>,
    /// Round-trip samples, in milliseconds, that earlier passes have not seen.
    pub new_round_trips: Vec<f64>,
    /// Subscriptions the plan added and removed.
    pub added: usize,
    pub removed: usize,
    /// The ports of the joins this pass wired, with when the sequencer announced them (none
    /// when a subscription failed: those joins count as wired at the next pass that completes).
    pub wired_joins: Vec<(PortAddr, Instant)>,
}

/// Carries `plan` into `memory` and says what came of the pass: `failures` are why some of
/// the plan's subscriptions could not be made or removed (empty when all were), `now` is when
/// new participants are said to have joined.
pub fn conclude(
    memory: &mut Memory,
    status: &RtpmididStatus,
    plan: Plan,
    failures: &[String],
    now: jiff::Timestamp,
) -> Outcome {
    memory.unexplained = plan.unexplained;
    memory.echoes = (plan.wiring.add.iter().map(|s| (true, *s)))
        .chain(plan.wiring.remove.iter().map(|s| (false, *s)))
        .collect();
    let changes = memory
        .roster
        .update(&status.participants, &plan.refused, now);
    let figures = Figures {
        participants: status
            .rooms
            .iter()
            .map(|room| {
                let count = status
                    .participants
                    .iter()
                    .filter(|p| p.connected && p.room_port == room.port)
                    .filter(|p| !plan.refused.contains(&(p.room_port, p.ssrc)))
                    .count();
                (room.port, count)
            })
            .collect(),
        new_round_trips: new_round_trips(&mut memory.round_trips, status, &plan.refused),
        added: plan.wiring.add.len(),
        removed: plan.wiring.remove.len(),
        wired_joins: if failures.is_empty() {
            memory.joining.clear();
            for (port, _) in &plan.joins {
                if let Some(announced) = memory.unexplained.get_mut(port) {
                    announced.wired = true;
                }
            }
            plan.joins
        } else {
            memory.joining = plan.joins.into_iter().collect();
            Vec::new()
        },
    };
    let wiring = if failures.is_empty() {
        let playing = plan.participants.iter().filter(|p| p.plays).count();
        let subscriptions = wiring::desired_subscriptions(&plan.participants).len();
        WiringState::wired(playing, subscriptions)
    } else {
        WiringState::unknown(reasons::SUBSCRIPTION_FAILED, failures.join("; "))
    };
    Outcome {
        changes,
        figures,
        report: memory.report(wiring),
    }
}

/// The latest round trip of each connected participant (not the `refused`: they play nowhere)
/// that differs from the one seen last, remembering the latest ones in `seen`.
fn new_round_trips(
    seen: &mut BTreeMap<(u16, u32), f64>,
    status: &RtpmididStatus,
    refused: &BTreeSet<roster::Key>,
) -> Vec<f64> {
    let mut latest = BTreeMap::new();
    let mut new = Vec::new();
    for participant in status
        .participants
        .iter()
        .filter(|p| p.connected && !refused.contains(&(p.room_port, p.ssrc)))
    {
        if let Some(latency) = participant.latency {
            let key = (participant.room_port, participant.ssrc);
            if seen.get(&key) != Some(&latency.last) {
                new.push(latency.last);
            }
            latest.insert(key, latency.last);
        }
    }
    *seen = latest;
    new
}

/// The ALSA ports of the participants rtpmidid reports, on their room's client or else the
/// daemon's `client`, but not those `announced_since` the status was asked for (those who play
/// are the connected ones their room's list admits), and the connected participants their
/// room's list refuses, whether or not their ports exist.
fn participant_ports(
    status: &RtpmididStatus,
    client: i32,
    rules: &RoomRules,
    announced_since: impl Fn(&PortAddr) -> bool,
) -> (Vec<ParticipantPort>, BTreeSet<roster::Key>) {
    let room_clients: BTreeMap<u16, i32> = status
        .rooms
        .iter()
        .filter_map(|room| Some((room.port, room.alsa_client?)))
        .collect();
    let mut ports = Vec::new();
    let mut refused = BTreeSet::new();
    for participant in &status.participants {
        let admitted = rules.admits(participant.room_port, participant.address);
        if participant.connected && !admitted {
            refused.insert((participant.room_port, participant.ssrc));
        }
        let client = room_clients
            .get(&participant.room_port)
            .copied()
            .unwrap_or(client);
        if let Some(port) = participant.alsa_port.map(|port| PortAddr { client, port })
            && !announced_since(&port)
        {
            ports.push(ParticipantPort {
                port,
                room: participant.room_port,
                plays: participant.connected && admitted,
            });
        }
    }
    (ports, refused)
}

/// The ports on rooms' own clients that the status does not name (not among `named`): each is
/// a participant of its room who connected (rtpmidid creates a port once its participant
/// did), who plays if the room admits everyone; a room with a list waits for the status to
/// give the address.
fn unnamed_room_ports<'a>(
    status: &'a RtpmididStatus,
    snapshot: &'a ClientSnapshot,
    rules: &'a RoomRules,
    named: &'a BTreeSet<PortAddr>,
) -> impl Iterator<Item = ParticipantPort> + 'a {
    status.rooms.iter().flat_map(move |room| {
        snapshot
            .ports
            .iter()
            .filter(move |port| Some(port.addr.client) == room.alsa_client)
            .filter(|port| !named.contains(&port.addr))
            .map(move |port| ParticipantPort {
                port: port.addr,
                room: room.port,
                plays: rules.admits_everyone(room.port),
            })
    })
}

#[cfg(test)]
mod tests;
