//! The public view of a hub: what the page and its JSON API show of a listed MidiHub, built by
//! plain functions from the hub and the latency [`History`].
//!
//! These types are all that leaves the operator: a MidiHub is never served as it is, so that
//! nothing the page should not show (participants' addresses, the spec's pod settings) can
//! slip out when the resource gains a field.

use std::sync::Arc;

use jiff::Timestamp;
use midihub_api::rtpmidid_config::rooms;
use midihub_api::{Latency, MidiHub, Participant};
use serde::Serialize;

use super::history::{History, HubKey, Sample, hub_key};
use crate::schedule;

/// A listed hub, as the public sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubView {
    pub namespace: String,
    pub name: String,
    /// The hub's phase (`Ready`, `Sleeping`, …), once the operator has written one.
    pub phase: Option<&'static str>,
    /// The IANA time zone of the hub's schedule (`UTC` without one).
    pub time_zone: String,
    /// What happens next and when, e.g. `wake Fri 19:00 Europe/Berlin`.
    pub next_transition: Option<Transition>,
    pub rooms: Vec<RoomView>,
}

/// The hub's next transition.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// What happens, in the operator's words.
    pub what: String,
    /// When it happens, if known.
    pub at: Option<Timestamp>,
}

/// One room of a hub: an RTP-MIDI session.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    /// The session name participants see.
    pub session: String,
    /// The control port participants dial.
    pub port: i32,
    /// `address:port` to dial, while the hub has an address.
    pub endpoint: Option<String>,
    pub participants: Vec<ParticipantView>,
}

/// A participant of a room: no address, only what they chose to be called.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantView {
    /// The participant's own session name.
    pub name: String,
    pub joined_at: Option<Timestamp>,
    /// Round-trip time statistics, in milliseconds.
    pub latency: Option<Latency>,
    /// The recent round trips, oldest first (see [`History::samples`]).
    pub history: Vec<Sample>,
}

/// The listed hubs among `hubs`, by namespace and name.
pub fn listed_hubs(hubs: &[Arc<MidiHub>], history: &History, now: Timestamp) -> Vec<HubView> {
    let mut views: Vec<HubView> = hubs
        .iter()
        .filter_map(|hub| hub_view(hub, history, now))
        .collect();
    views.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    views
}

/// The public view of `hub` at `now`; `None` unless it is listed.
pub fn hub_view(hub: &MidiHub, history: &History, now: Timestamp) -> Option<HubView> {
    if !hub.spec.listed {
        return None;
    }
    let key = hub_key(hub);
    let status = hub.status.as_ref();
    let participants = status
        .and_then(|status| status.participants.as_deref())
        .unwrap_or_default();
    let address = status.and_then(|status| status.address.as_deref());
    // A spec the API server admitted always makes rooms; one that does not shows none (its
    // phase says Invalid).
    let rooms = rooms(&key.1, &hub.spec.ports)
        .unwrap_or_default()
        .into_iter()
        .map(|room| {
            let port = i32::from(room.port);
            RoomView {
                session: room.name,
                port,
                endpoint: address.map(|address| endpoint(address, port)),
                participants: participants
                    .iter()
                    .filter(|participant| participant.port == port)
                    .map(|participant| participant_view(participant, &key, history, now))
                    .collect(),
            }
        })
        .collect();
    let next_transition = status.and_then(|status| {
        Some(Transition {
            what: status.next_transition.clone()?,
            at: status.next_transition_time.as_ref().map(|time| time.0),
        })
    });
    Some(HubView {
        namespace: key.0.clone(),
        name: key.1.clone(),
        phase: status
            .and_then(|status| status.phase)
            .map(|phase| phase.as_str()),
        time_zone: schedule::hub_zone(&hub.spec).1.to_owned(),
        next_transition,
        rooms,
    })
}

fn participant_view(
    participant: &Participant,
    hub: &HubKey,
    history: &History,
    now: Timestamp,
) -> ParticipantView {
    ParticipantView {
        name: participant.name.clone(),
        joined_at: participant.joined_at.as_ref().map(|time| time.0),
        latency: participant.latency.clone(),
        history: history.samples(hub, participant, now),
    }
}

/// What a participant dials: `address:port`, an IPv6 address in brackets.
pub fn endpoint(address: &str, port: i32) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

#[cfg(test)]
mod tests;
