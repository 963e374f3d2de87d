//! rtpmidid's `status` reply, read into what a hub needs: its rooms (listening sessions) and,
//! for every participant, the room it joined, its ALSA port, its address and its latency.
//!
//! Pure: one reply line in, a model out; the socket lives in [`super::control`].
//!
//! How strict it is: a problem with the reply as a whole (not JSON, an error reply, the answer
//! to another request, no `result`, no `router` list, no `settings.alsa_name`) is a
//! [`StatusError`]. A problem with a single router entry (a participant without its SSRC, a
//! room without a control port, a participant whose room is not listed) skips that entry and
//! adds a sentence to [`RtpmididStatus::warnings`], so one odd entry never hides everybody
//! else. Unknown keys and unknown entry types (discovery, ALSA announce, rawmidi, ...) are
//! ignored, as a newer daemon may add them.

use std::collections::HashMap;
use std::net::IpAddr;

use midihub_api::contract::reasons::wiring as reasons;
use serde::Deserialize;
use serde_json::Value;

/// What rtpmidid reports about itself, its rooms and their participants.
#[derive(Clone, Debug, PartialEq)]
pub struct RtpmididStatus {
    /// Release tag such as `v26.01`; empty for a build from a source archive (or when absent).
    pub version: String,
    /// The ALSA sequencer client name; the client id is not reported, find it by this name.
    pub alsa_name: String,
    /// Listening sessions, sorted by control port.
    pub rooms: Vec<RoomStatus>,
    /// Participants of those rooms, sorted by room, then ALSA port (ports not yet created
    /// last), then SSRC.
    pub participants: Vec<ParticipantStatus>,
    /// One sentence per router entry that was skipped or only partly understood.
    pub warnings: Vec<String>,
}

/// A listening session (room).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomStatus {
    /// The session's control UDP port (MIDI data uses the next one).
    pub port: u16,
    /// The session name participants see.
    pub name: String,
    /// The ALSA sequencer client that holds the ports of this session's participants, when
    /// the daemon gives each session one of its own (midihub's patched rtpmidid does); `None`:
    /// they are on the daemon's own client, [`RtpmididStatus::alsa_name`].
    pub alsa_client: Option<i32>,
}

/// One participant of a room, as rtpmidid sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticipantStatus {
    /// Control port of the room it joined.
    pub room_port: u16,
    pub room_name: String,
    /// The participant's session name (not unique: two participants may share one).
    pub name: String,
    /// Host as a user reads it: `203.0.113.10` for `::ffff:203.0.113.10`, `[2001:db8::1]` for
    /// a real IPv6 address.
    pub remote_address: String,
    /// The host as an address, exactly as rtpmidid reports it (an IPv4 participant is usually
    /// `::ffff:a.b.c.d`; [`crate::allow`] judges that as IPv4); `None` when the host is not an
    /// address (a name, or a scoped link-local address such as `fe80::1%eth0`).
    pub address: Option<IpAddr>,
    /// The participant's control port.
    pub remote_port: u16,
    /// The participant's (remote) SSRC.
    pub ssrc: u32,
    /// Port of its ALSA side (`local_alsa_peer_t`) on its room's client
    /// ([`RoomStatus::alsa_client`]) or else rtpmidid's; `None` while that port does not exist
    /// (yet).
    pub alsa_port: Option<i32>,
    /// rtpmidid's status is "3" (connected), and the participant has not gone silent; any
    /// other status means not (or no longer) connected, and such a participant must not be
    /// wired.
    ///
    /// Gone silent: rtpmidid's latency statistics have emptied (average and deviation exactly
    /// 0 after a first sample), which they do 120 s after the last clock sync. rtpmidid drops
    /// a participant 60 s after its last clock sync itself, but loses that timeout when it
    /// moves the participant's entry (another participant joins, or one listed before it
    /// leaves): such a participant stays "3" for ever, port and all. Treating it as gone
    /// unwires it and lets the stuck-note guard release what it held; should it sync again,
    /// it is connected again.
    pub connected: bool,
    /// Clock-sync round trip; `None` while rtpmidid has no sample (it reports all zeros).
    pub latency: Option<LatencyMs>,
}

impl ParticipantStatus {
    /// `host:port` of the participant, e.g. `203.0.113.10:5004` or `[2001:db8::1]:5004`.
    pub fn remote_endpoint(&self) -> String {
        format!("{}:{}", self.remote_address, self.remote_port)
    }
}

/// Round-trip times in milliseconds, measured on the hub's clock (not one-way delay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyMs {
    /// The latest clock-sync round trip.
    pub last: f64,
    /// Over at most the last 20 samples younger than 120 s.
    pub average: f64,
    pub stddev: f64,
}

/// Why a `status` reply could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(
        "rtpmidid status: the reply is not (complete) JSON: {error}; is the program behind the control socket rtpmidid?"
    )]
    NotJson { error: serde_json::Error },
    #[error("rtpmidid status: rtpmidid answered with an error: {message}")]
    DaemonError { message: String },
    #[error(
        "rtpmidid status: the reply answers request {got}, not request {expected}; is another client sharing the connection?"
    )]
    WrongId { expected: u64, got: u64 },
    #[error("rtpmidid status: {what}")]
    Malformed { what: String },
}

impl StatusError {
    /// A CamelCase reason for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            StatusError::DaemonError { .. } => reasons::STATUS_REQUEST_REFUSED,
            StatusError::NotJson { .. }
            | StatusError::WrongId { .. }
            | StatusError::Malformed { .. } => reasons::MALFORMED_STATUS,
        }
    }
}

fn malformed(what: impl Into<String>) -> StatusError {
    StatusError::Malformed { what: what.into() }
}

/// rtpmidid's peer status value for "connected".
const CONNECTED: &str = "3";

const LISTENER_TYPE: &str = "network_rtpmidi_multi_listener_t";
const NETWORK_PEER_TYPE: &str = "network_rtpmidi_peer_t";
const ALSA_PEER_TYPE: &str = "local_alsa_peer_t";

#[derive(Deserialize)]
struct RawReply {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawResult {
    version: Option<String>,
    settings: Option<RawSettings>,
    router: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSettings {
    alsa_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawListener {
    name: Option<String>,
    alsa_client: Option<i32>,
    listening: Option<RawListening>,
    /// Kept as raw values: only each one's `remote.ssrc` matters, and one odd peer status
    /// must not make the whole room unreadable.
    peers: Vec<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawListening {
    name: Option<String>,
    control_port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawNetworkPeer {
    name: Option<String>,
    peer: Option<RawPeerStatus>,
    send_to: Vec<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAlsaPeer {
    port: Option<i32>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPeerStatus {
    latency_ms: Option<RawLatency>,
    /// A string holding a number ("3"); a number is accepted too.
    status: Option<Value>,
    local: Option<RawEndpoint>,
    remote: Option<RawEndpoint>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawEndpoint {
    name: Option<String>,
    port: Option<u16>,
    hostname: Option<String>,
    ssrc: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawLatency {
    last: Option<f64>,
    average: Option<f64>,
    stddev: Option<f64>,
}

/// A room with the SSRCs of the peers rtpmidid lists in it.
struct IndexedRoom {
    room: RoomStatus,
    member_ssrcs: Vec<u64>,
}

/// Parses one reply line to `{"method":"status",...,"id":expected_id}`.
pub fn parse_status_reply(line: &str, expected_id: u64) -> Result<RtpmididStatus, StatusError> {
    let reply: RawReply =
        serde_json::from_str(line).map_err(|error| StatusError::NotJson { error })?;
    if let Some(error) = reply.error {
        let message = match error {
            Value::String(message) => message,
            other => other.to_string(),
        };
        return Err(StatusError::DaemonError { message });
    }
    let got = match reply.id {
        None => return Err(malformed("the reply has no id")),
        Some(id) => id
            .as_u64()
            .ok_or_else(|| malformed(format!("the reply's id {id} is not a request number")))?,
    };
    if got != expected_id {
        return Err(StatusError::WrongId {
            expected: expected_id,
            got,
        });
    }
    let result = reply
        .result
        .ok_or_else(|| malformed("the reply has neither result nor error"))?;
    if !result.is_object() {
        return Err(malformed(format!(
            "the result is {}, not the status object: does the reply answer another method?",
            json_kind(&result)
        )));
    }
    let result: RawResult = serde_json::from_value(result)
        .map_err(|error| malformed(format!("the result is not understood: {error}")))?;
    let alsa_name = result
        .settings
        .and_then(|settings| settings.alsa_name)
        .ok_or_else(|| malformed("the result has no settings.alsa_name"))?;
    let router = match result.router {
        Some(Value::Array(router)) => router,
        Some(other) => {
            return Err(malformed(format!(
                "result.router is {}, not a list of router entries",
                json_kind(&other)
            )));
        }
        None => return Err(malformed("the result has no router")),
    };

    let mut warnings = Vec::new();
    let sorted = sort_router_entries(router, &mut warnings);
    let rooms = index_rooms(&sorted.listeners, &mut warnings);
    let alsa_ports = alsa_ports_by_id(&sorted.alsa_peers, &mut warnings);
    let mut participants: Vec<ParticipantStatus> = sorted
        .network_peers
        .iter()
        .filter_map(|(id, peer)| {
            let (participant, silence) = read_participant(*id, peer, &rooms, &alsa_ports)
                .map_err(|warning| warnings.push(warning))
                .ok()?;
            warnings.extend(silence);
            Some(participant)
        })
        .collect();
    participants.sort_by_key(|p| (p.room_port, p.alsa_port.is_none(), p.alsa_port, p.ssrc));

    let mut rooms: Vec<RoomStatus> = rooms.into_iter().map(|indexed| indexed.room).collect();
    rooms.sort_by_key(|room| room.port);

    Ok(RtpmididStatus {
        version: result.version.unwrap_or_default(),
        alsa_name,
        rooms,
        participants,
        warnings,
    })
}

/// The router entries a hub reads, by type, each with its router id.
#[derive(Default)]
struct SortedRouterEntries {
    listeners: Vec<(u64, RawListener)>,
    network_peers: Vec<(u64, RawNetworkPeer)>,
    alsa_peers: Vec<(u64, RawAlsaPeer)>,
}

fn sort_router_entries(router: Vec<Value>, warnings: &mut Vec<String>) -> SortedRouterEntries {
    let mut sorted = SortedRouterEntries::default();
    for (index, entry) in router.into_iter().enumerate() {
        let Some(kind) = entry.get("type").and_then(Value::as_str).map(str::to_owned) else {
            warnings.push(format!(
                "rtpmidid status: router item #{index} has no type; skipped"
            ));
            continue;
        };
        if ![LISTENER_TYPE, NETWORK_PEER_TYPE, ALSA_PEER_TYPE].contains(&kind.as_str()) {
            continue;
        }
        let Some(id) = entry.get("id").and_then(Value::as_u64) else {
            warnings.push(format!(
                "rtpmidid status: router item #{index} ({kind}) has no id; skipped"
            ));
            continue;
        };
        let not_understood = |error: serde_json::Error| {
            format!(
                "rtpmidid status: router entry {id} ({kind}) is not understood: {error}; skipped"
            )
        };
        let outcome = match kind.as_str() {
            LISTENER_TYPE => serde_json::from_value(entry)
                .map(|listener| sorted.listeners.push((id, listener)))
                .map_err(not_understood),
            NETWORK_PEER_TYPE => serde_json::from_value(entry)
                .map(|peer| sorted.network_peers.push((id, peer)))
                .map_err(not_understood),
            _ => serde_json::from_value(entry)
                .map(|peer| sorted.alsa_peers.push((id, peer)))
                .map_err(not_understood),
        };
        if let Err(warning) = outcome {
            warnings.push(warning);
        }
    }
    sorted
}

fn index_rooms(listeners: &[(u64, RawListener)], warnings: &mut Vec<String>) -> Vec<IndexedRoom> {
    let mut rooms: Vec<IndexedRoom> = Vec::new();
    for (id, listener) in listeners {
        let listening = listener.listening.as_ref();
        let name = listening
            .and_then(|listening| listening.name.clone())
            .or_else(|| listener.name.clone())
            .unwrap_or_default();
        let port = match listening.and_then(|listening| listening.control_port) {
            // A session whose UDP port could not be bound is not listening: it is no room.
            None | Some(0) => {
                warnings.push(format!(
                    "rtpmidid status: router entry {id} ({LISTENER_TYPE}) \"{name}\" has no listening.control_port (is its UDP port taken?); skipped"
                ));
                continue;
            }
            Some(port) => port,
        };
        if rooms.iter().any(|indexed| indexed.room.port == port) {
            warnings.push(format!(
                "rtpmidid status: router entry {id} ({LISTENER_TYPE}) \"{name}\" lists control port {port} a second time; skipped"
            ));
            continue;
        }
        let member_ssrcs = listener
            .peers
            .iter()
            .filter_map(|peer| peer.pointer("/remote/ssrc").and_then(Value::as_u64))
            .collect();
        rooms.push(IndexedRoom {
            room: RoomStatus {
                port,
                name,
                alsa_client: listener.alsa_client,
            },
            member_ssrcs,
        });
    }
    rooms
}

fn alsa_ports_by_id(
    alsa_peers: &[(u64, RawAlsaPeer)],
    warnings: &mut Vec<String>,
) -> HashMap<u64, i32> {
    let mut ports = HashMap::new();
    for (id, alsa_peer) in alsa_peers {
        match alsa_peer.port {
            Some(port) => {
                ports.insert(*id, port);
            }
            None => warnings.push(format!(
                "rtpmidid status: router entry {id} ({ALSA_PEER_TYPE}) has no port"
            )),
        }
    }
    ports
}

/// One participant from its `network_rtpmidi_peer_t` entry, with a warning when it has gone
/// silent; or the warning that says why not.
fn read_participant(
    id: u64,
    entry: &RawNetworkPeer,
    rooms: &[IndexedRoom],
    alsa_ports: &HashMap<u64, i32>,
) -> Result<(ParticipantStatus, Option<String>), String> {
    let missing = |what: &str| {
        format!("rtpmidid status: router entry {id} ({NETWORK_PEER_TYPE}) has no {what}; skipped")
    };
    let peer = entry.peer.as_ref().ok_or_else(|| missing("peer"))?;
    let remote = peer.remote.as_ref().ok_or_else(|| missing("peer.remote"))?;
    let ssrc = remote.ssrc.ok_or_else(|| missing("peer.remote.ssrc"))?;
    let name = entry
        .name
        .clone()
        .or_else(|| remote.name.clone())
        .ok_or_else(|| missing("name"))?;
    let hostname = remote
        .hostname
        .as_deref()
        .ok_or_else(|| missing("peer.remote.hostname"))?;
    let remote_port = remote.port.ok_or_else(|| missing("peer.remote.port"))?;
    let connected = match &peer.status {
        Some(Value::String(status)) => status == CONNECTED,
        Some(Value::Number(status)) => status.to_string() == CONNECTED,
        _ => return Err(missing("peer.status")),
    };
    let local_port = peer.local.as_ref().and_then(|local| local.port);
    let room = find_room(rooms, ssrc, local_port).ok_or_else(|| {
        let local_port = local_port.map_or_else(|| "unknown".to_owned(), |port| port.to_string());
        format!(
            "rtpmidid status: router entry {id} ({NETWORK_PEER_TYPE}) \"{name}\" is in no listed room (no room lists SSRC {ssrc}, and its local port {local_port} is no room's control port); skipped"
        )
    })?;
    let alsa_port = entry
        .send_to
        .iter()
        .find_map(|target| alsa_ports.get(target).copied());
    let latency = peer.latency_ms.as_ref().and_then(latency_sample);
    let silent = connected && latency.is_some_and(|l| l.average == 0.0 && l.stddev == 0.0);
    let silence = silent.then(|| {
        format!(
            "rtpmidid status: \"{name}\" (SSRC {ssrc}) in room {} has sent no clock sync for 2 minutes: treated as gone (rtpmidid still lists it)",
            room.port
        )
    });
    let participant = ParticipantStatus {
        room_port: room.port,
        room_name: room.name.clone(),
        name,
        remote_address: readable_host(hostname),
        address: hostname.parse().ok(),
        remote_port,
        ssrc,
        alsa_port,
        connected: connected && !silent,
        latency,
    };
    Ok((participant, silence))
}

/// The room whose peers list the participant's SSRC; when that is ambiguous or finds none,
/// the room listening on the participant's local port.
fn find_room(rooms: &[IndexedRoom], ssrc: u32, local_port: Option<u16>) -> Option<&RoomStatus> {
    let by_ssrc: Vec<&RoomStatus> = rooms
        .iter()
        .filter(|indexed| indexed.member_ssrcs.contains(&u64::from(ssrc)))
        .map(|indexed| &indexed.room)
        .collect();
    let by_local_port = || {
        rooms
            .iter()
            .map(|indexed| &indexed.room)
            .find(|room| Some(room.port) == local_port)
    };
    match by_ssrc.as_slice() {
        [only] => Some(only),
        [] => by_local_port(),
        several => by_local_port()
            .filter(|room| several.contains(room))
            .or(several.first().copied()),
    }
}

fn latency_sample(latency: &RawLatency) -> Option<LatencyMs> {
    let sample = LatencyMs {
        last: latency.last?,
        average: latency.average?,
        stddev: latency.stddev?,
    };
    let no_sample_yet = sample.last == 0.0 && sample.average == 0.0 && sample.stddev == 0.0;
    (!no_sample_yet).then_some(sample)
}

/// `::ffff:a.b.c.d` → `a.b.c.d`; other IPv6 → `[...]`, so that `host:port` stays readable.
fn readable_host(hostname: &str) -> String {
    match hostname.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{v6}]"),
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        // e.g. a scoped link-local address ("fe80::1%eth0") or a name
        Err(_) if hostname.contains(':') => format!("[{hostname}]"),
        Err(_) => hostname.to_owned(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
