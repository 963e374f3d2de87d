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
    /// The participant's control port.
    pub remote_port: u16,
    /// The participant's (remote) SSRC.
    pub ssrc: u32,
    /// Port of its ALSA side (`local_alsa_peer_t`) on rtpmidid's client; `None` while that
    /// port does not exist (yet).
    pub alsa_port: Option<i32>,
    /// rtpmidid's status is "3" (connected); any other status means not (or no longer)
    /// connected, and such a participant must not be wired.
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
        "rtpmidid status: the reply is not (complete) JSON: {source}; is the program behind the control socket rtpmidid?"
    )]
    NotJson { source: serde_json::Error },
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
            StatusError::DaemonError { .. } => "StatusRequestRefused",
            StatusError::NotJson { .. }
            | StatusError::WrongId { .. }
            | StatusError::Malformed { .. } => "MalformedStatus",
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
        serde_json::from_str(line).map_err(|source| StatusError::NotJson { source })?;
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
            read_participant(*id, peer, &rooms, &alsa_ports)
                .map_err(|warning| warnings.push(warning))
                .ok()
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
            room: RoomStatus { port, name },
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

/// One participant from its `network_rtpmidi_peer_t` entry, or the warning that says why not.
fn read_participant(
    id: u64,
    entry: &RawNetworkPeer,
    rooms: &[IndexedRoom],
    alsa_ports: &HashMap<u64, i32>,
) -> Result<ParticipantStatus, String> {
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
    Ok(ParticipantStatus {
        room_port: room.port,
        room_name: room.name.clone(),
        name,
        remote_address: readable_host(hostname),
        remote_port,
        ssrc,
        alsa_port,
        connected,
        latency: peer.latency_ms.as_ref().and_then(latency_sample),
    })
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
mod tests {
    use super::*;

    /// Captured from rtpmidid v26.01: rooms jam-studio-a (5004) and jam-studio-b (5006),
    /// "Alice MacBook" and "bob-linux" in a, "Carol iPad" in b; request id 7.
    const CAPTURED_STATUS: &str = include_str!("../../tests/fixtures/rtpmidid-status.json");
    const CAPTURED_NO_PARTICIPANTS: &str =
        include_str!("../../tests/fixtures/rtpmidid-status-no-participants.json");
    const CAPTURED_HELP: &str = include_str!("../../tests/fixtures/rtpmidid-help.json");
    const TRUNCATED_STATUS: &str =
        include_str!("../../tests/fixtures/rtpmidid-status-truncated.json");
    const UNKNOWN_METHOD_ERROR: &str =
        include_str!("../../tests/fixtures/rtpmidid-error-unknown-method.json");
    const PARSE_ERROR: &str = include_str!("../../tests/fixtures/rtpmidid-error-parse.json");
    const NEWER_DAEMON_STATUS: &str =
        include_str!("../../tests/fixtures/rtpmidid-status-newer-daemon.json");

    const CAPTURED_ID: u64 = 7;
    // Router ids in the capture.
    const ALICE_NETWORK: u64 = 4;
    const ALICE_ALSA: u64 = 3;
    const BOB_NETWORK: u64 = 6;
    const CAROL_NETWORK: u64 = 8;
    const ROOM_B_LISTENER: u64 = 2;

    fn captured_participants() -> Vec<ParticipantStatus> {
        let loopback_latency = Some(LatencyMs {
            last: 0.4,
            average: 0.4,
            stddev: 0.0,
        });
        vec![
            ParticipantStatus {
                room_port: 5004,
                room_name: "jam-studio-a".into(),
                name: "Alice MacBook".into(),
                remote_address: "127.0.0.1".into(),
                remote_port: 7000,
                ssrc: 3_435_137_940,
                alsa_port: Some(1),
                connected: true,
                latency: Some(LatencyMs {
                    last: 1.4,
                    average: 1.4,
                    stddev: 0.0,
                }),
            },
            ParticipantStatus {
                room_port: 5004,
                room_name: "jam-studio-a".into(),
                name: "bob-linux".into(),
                remote_address: "127.0.0.1".into(),
                remote_port: 7002,
                ssrc: 4_271_493_077,
                alsa_port: Some(2),
                connected: true,
                latency: loopback_latency,
            },
            ParticipantStatus {
                room_port: 5006,
                room_name: "jam-studio-b".into(),
                name: "Carol iPad".into(),
                remote_address: "127.0.0.1".into(),
                remote_port: 7004,
                ssrc: 3_280_022_554,
                alsa_port: Some(3),
                connected: true,
                latency: loopback_latency,
            },
        ]
    }

    fn captured_rooms() -> Vec<RoomStatus> {
        vec![
            RoomStatus {
                port: 5004,
                name: "jam-studio-a".into(),
            },
            RoomStatus {
                port: 5006,
                name: "jam-studio-b".into(),
            },
        ]
    }

    /// The captured reply after `change`, as one line.
    fn captured_with(change: impl FnOnce(&mut Value)) -> String {
        let mut reply: Value = serde_json::from_str(CAPTURED_STATUS).unwrap();
        change(&mut reply);
        serde_json::to_string(&reply).unwrap()
    }

    fn router(reply: &mut Value) -> &mut Vec<Value> {
        reply["result"]["router"].as_array_mut().unwrap()
    }

    fn entry(reply: &mut Value, id: u64) -> &mut Value {
        router(reply)
            .iter_mut()
            .find(|entry| entry["id"] == id)
            .unwrap()
    }

    fn remove_entry(reply: &mut Value, id: u64) {
        router(reply).retain(|entry| entry["id"] != id);
    }

    /// Applies `change` to a participant's own peer status and to its copy in its room's list.
    fn change_peer_status(reply: &mut Value, ssrc: u64, change: impl Fn(&mut Value)) {
        for entry in router(reply) {
            if entry["peer"]["remote"]["ssrc"] == ssrc {
                change(&mut entry["peer"]);
            }
            if let Some(peers) = entry["peers"].as_array_mut() {
                for peer in peers
                    .iter_mut()
                    .filter(|peer| peer["remote"]["ssrc"] == ssrc)
                {
                    change(peer);
                }
            }
        }
    }

    fn parse_captured_with(change: impl FnOnce(&mut Value)) -> RtpmididStatus {
        parse_status_reply(&captured_with(change), CAPTURED_ID).unwrap()
    }

    fn named<'a>(status: &'a RtpmididStatus, name: &str) -> Vec<&'a ParticipantStatus> {
        status
            .participants
            .iter()
            .filter(|participant| participant.name == name)
            .collect()
    }

    fn names(status: &RtpmididStatus) -> Vec<&str> {
        status
            .participants
            .iter()
            .map(|participant| participant.name.as_str())
            .collect()
    }

    #[test]
    fn captured_status_gives_both_rooms_and_all_three_participants() {
        let status = parse_status_reply(CAPTURED_STATUS, CAPTURED_ID).unwrap();

        assert_eq!(status.version, "");
        assert_eq!(status.alsa_name, "rtpmidid");
        assert_eq!(status.rooms, captured_rooms());
        assert_eq!(status.participants, captured_participants());
        assert_eq!(status.warnings, Vec::<String>::new());
        assert_eq!(status.participants[0].remote_endpoint(), "127.0.0.1:7000");
    }

    #[test]
    fn captured_status_without_participants_gives_one_empty_room() {
        let status = parse_status_reply(CAPTURED_NO_PARTICIPANTS, 1).unwrap();

        assert_eq!(
            status.rooms,
            vec![RoomStatus {
                port: 5004,
                name: "jam-studio-a".into()
            }]
        );
        assert!(status.participants.is_empty());
        assert!(status.warnings.is_empty());
    }

    #[test]
    fn order_of_router_entries_does_not_matter() {
        let reversed = parse_captured_with(|reply| router(reply).reverse());

        assert_eq!(reversed.rooms, captured_rooms());
        assert_eq!(reversed.participants, captured_participants());
    }

    #[test]
    fn reply_to_help_is_not_taken_for_a_status() {
        let error = parse_status_reply(CAPTURED_HELP, 1).unwrap_err();

        assert!(matches!(error, StatusError::Malformed { .. }), "{error:?}");
        assert!(
            error.to_string().contains("a list, not the status object"),
            "{error}"
        );
        assert_eq!(error.reason(), "MalformedStatus");
    }

    #[test]
    fn garbage_is_not_json() {
        let error = parse_status_reply("HTTP/1.1 400 Bad Request", 1).unwrap_err();

        assert!(matches!(error, StatusError::NotJson { .. }), "{error:?}");
        assert_eq!(error.reason(), "MalformedStatus");
    }

    #[test]
    fn truncated_reply_is_not_json() {
        let error = parse_status_reply(TRUNCATED_STATUS, CAPTURED_ID).unwrap_err();

        assert!(matches!(error, StatusError::NotJson { .. }), "{error:?}");
        assert!(error.to_string().contains("EOF"), "{error}");
    }

    #[test]
    fn error_reply_carries_the_daemons_message() {
        let error = parse_status_reply(UNKNOWN_METHOD_ERROR, 1).unwrap_err();

        match &error {
            StatusError::DaemonError { message } => {
                assert_eq!(message, "Unknown method 'nosuch'")
            }
            other => panic!("expected DaemonError, got {other:?}"),
        }
        assert_eq!(error.reason(), "StatusRequestRefused");
    }

    #[test]
    fn parse_error_reply_without_id_is_a_daemon_error() {
        let error = parse_status_reply(PARSE_ERROR, 1).unwrap_err();

        assert!(
            matches!(&error, StatusError::DaemonError { message } if message.starts_with("[json.exception.parse_error.101]")),
            "{error:?}"
        );
    }

    #[test]
    fn reply_to_another_request_is_refused() {
        let error = parse_status_reply(CAPTURED_STATUS, 8).unwrap_err();

        assert!(
            matches!(
                error,
                StatusError::WrongId {
                    expected: 8,
                    got: 7
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn reply_without_id_is_malformed() {
        let line = captured_with(|reply| {
            reply.as_object_mut().unwrap().remove("id");
        });

        let error = parse_status_reply(&line, CAPTURED_ID).unwrap_err();

        assert!(error.to_string().contains("no id"), "{error}");
    }

    #[test]
    fn reply_without_result_is_malformed() {
        let error = parse_status_reply(r#"{"id":1}"#, 1).unwrap_err();

        assert!(matches!(error, StatusError::Malformed { .. }), "{error:?}");
        assert!(
            error.to_string().contains("neither result nor error"),
            "{error}"
        );
    }

    #[test]
    fn router_that_is_not_a_list_is_malformed() {
        let line = captured_with(|reply| reply["result"]["router"] = serde_json::json!({"1": {}}));

        let error = parse_status_reply(&line, CAPTURED_ID).unwrap_err();

        assert_eq!(
            error.to_string(),
            "rtpmidid status: result.router is an object, not a list of router entries"
        );
    }

    #[test]
    fn status_without_alsa_name_is_malformed() {
        let line = captured_with(|reply| reply["result"]["settings"] = serde_json::json!({}));

        let error = parse_status_reply(&line, CAPTURED_ID).unwrap_err();

        assert!(error.to_string().contains("settings.alsa_name"), "{error}");
    }

    #[test]
    fn participant_without_alsa_side_has_no_alsa_port() {
        let status = parse_captured_with(|reply| remove_entry(reply, ALICE_ALSA));

        let alice = named(&status, "Alice MacBook");
        assert_eq!(alice.len(), 1);
        assert_eq!(alice[0].alsa_port, None);
        assert!(alice[0].connected);
        // The others keep their ports; Alice, without one, sorts last in her room.
        assert_eq!(names(&status), ["bob-linux", "Alice MacBook", "Carol iPad"]);
        assert_eq!(named(&status, "bob-linux")[0].alsa_port, Some(2));
    }

    #[test]
    fn participant_not_in_status_3_is_kept_as_not_connected() {
        let status = parse_captured_with(|reply| {
            change_peer_status(reply, 3_435_137_940, |peer| peer["status"] = "2".into())
        });

        let alice = named(&status, "Alice MacBook");
        assert_eq!(alice.len(), 1);
        assert!(!alice[0].connected);
        assert_eq!(alice[0].alsa_port, Some(1));
        assert!(named(&status, "bob-linux")[0].connected);
    }

    #[test]
    fn participant_whose_room_is_missing_is_skipped_with_a_warning() {
        let status = parse_captured_with(|reply| remove_entry(reply, ROOM_B_LISTENER));

        assert_eq!(status.rooms, captured_rooms()[..1]);
        assert_eq!(names(&status), ["Alice MacBook", "bob-linux"]);
        assert_eq!(status.warnings.len(), 1, "{:?}", status.warnings);
        assert!(
            status.warnings[0].contains("\"Carol iPad\" is in no listed room"),
            "{:?}",
            status.warnings
        );
    }

    #[test]
    fn participant_missing_from_its_rooms_list_is_placed_by_its_local_port() {
        let status = parse_captured_with(|reply| {
            entry(reply, ROOM_B_LISTENER)["peers"] = serde_json::json!([]);
        });

        assert_eq!(status.participants, captured_participants());
    }

    #[test]
    fn same_ssrc_in_two_rooms_is_told_apart_by_local_port() {
        let status = parse_captured_with(|reply| {
            change_peer_status(reply, 3_280_022_554, |peer| {
                peer["remote"]["ssrc"] = 3_435_137_940_u64.into()
            })
        });

        assert_eq!(named(&status, "Carol iPad")[0].room_name, "jam-studio-b");
        assert_eq!(named(&status, "Alice MacBook")[0].room_name, "jam-studio-a");
    }

    #[test]
    fn participant_without_ssrc_is_skipped_and_the_others_kept() {
        let status = parse_captured_with(|reply| {
            entry(reply, ALICE_NETWORK)["peer"]["remote"]
                .as_object_mut()
                .unwrap()
                .remove("ssrc");
        });

        assert_eq!(names(&status), ["bob-linux", "Carol iPad"]);
        assert_eq!(
            status.warnings,
            [
                "rtpmidid status: router entry 4 (network_rtpmidi_peer_t) has no peer.remote.ssrc; skipped"
            ]
        );
    }

    #[test]
    fn participant_entry_of_the_wrong_shape_is_skipped_and_the_others_kept() {
        let status = parse_captured_with(|reply| {
            entry(reply, BOB_NETWORK)["send_to"] = "five".into();
        });

        assert_eq!(names(&status), ["Alice MacBook", "Carol iPad"]);
        assert_eq!(status.warnings.len(), 1);
        assert!(
            status.warnings[0].starts_with(
                "rtpmidid status: router entry 6 (network_rtpmidi_peer_t) is not understood"
            ),
            "{:?}",
            status.warnings
        );
    }

    #[test]
    fn room_without_control_port_is_skipped() {
        let status = parse_captured_with(|reply| {
            entry(reply, ROOM_B_LISTENER)["listening"]["control_port"] = 0.into();
        });

        assert_eq!(status.rooms, captured_rooms()[..1]);
        assert_eq!(names(&status), ["Alice MacBook", "bob-linux"]);
        assert!(
            status.warnings[0].contains("\"jam-studio-b\" has no listening.control_port"),
            "{:?}",
            status.warnings
        );
    }

    #[test]
    fn non_ascii_and_duplicate_names_are_kept_apart() {
        let status = parse_captured_with(|reply| {
            entry(reply, BOB_NETWORK)["name"] = "Alice MacBook".into();
            entry(reply, CAROL_NETWORK)["name"] = "Zoë's iPad 🎹 \"live\"".into();
        });

        let alices = named(&status, "Alice MacBook");
        assert_eq!(alices.len(), 2);
        assert_eq!(
            alices
                .iter()
                .map(|alice| (alice.alsa_port, alice.ssrc))
                .collect::<Vec<_>>(),
            [(Some(1), 3_435_137_940), (Some(2), 4_271_493_077)]
        );
        let zoe = named(&status, "Zoë's iPad 🎹 \"live\"");
        assert_eq!(zoe.len(), 1);
        assert_eq!(zoe[0].alsa_port, Some(3));
    }

    #[test]
    fn ipv6_remote_is_bracketed_and_mapped_ipv4_is_plain() {
        let status = parse_captured_with(|reply| {
            change_peer_status(reply, 3_435_137_940, |peer| {
                peer["remote"]["hostname"] = "2001:db8::1".into()
            });
            change_peer_status(reply, 4_271_493_077, |peer| {
                peer["remote"]["hostname"] = "::ffff:203.0.113.10".into()
            });
        });

        let alice = named(&status, "Alice MacBook")[0];
        assert_eq!(alice.remote_address, "[2001:db8::1]");
        assert_eq!(alice.remote_endpoint(), "[2001:db8::1]:7000");
        assert_eq!(
            named(&status, "bob-linux")[0].remote_address,
            "203.0.113.10"
        );
    }

    #[test]
    fn readable_host_keeps_plain_ipv4_and_names() {
        assert_eq!(readable_host("203.0.113.10"), "203.0.113.10");
        assert_eq!(readable_host("fe80::1%eth0"), "[fe80::1%eth0]");
        assert_eq!(readable_host("laptop.local"), "laptop.local");
    }

    #[test]
    fn latency_without_samples_is_none() {
        let status = parse_captured_with(|reply| {
            change_peer_status(reply, 3_435_137_940, |peer| {
                peer["latency_ms"] = serde_json::json!({"last": 0.0, "average": 0.0, "stddev": 0.0})
            })
        });

        assert_eq!(named(&status, "Alice MacBook")[0].latency, None);
        assert!(named(&status, "bob-linux")[0].latency.is_some());
    }

    #[test]
    fn newer_daemon_with_extra_keys_and_entry_types_gives_the_same_hub() {
        let status = parse_status_reply(NEWER_DAEMON_STATUS, CAPTURED_ID).unwrap();

        assert_eq!(status.version, "v27.03");
        assert_eq!(status.rooms, captured_rooms());
        assert_eq!(status.participants, captured_participants());
        assert!(status.warnings.is_empty(), "{:?}", status.warnings);
    }
}
