//! The project's AppleMIDI test participant against the real rtpmidid on a real ALSA sequencer:
//! two participants join a room, rtpmidid gives each an ALSA port named after it, a note goes
//! from one to the other through a sequencer subscription (made with `aconnect`, standing in
//! for the sidecar's wiring), and the ports go away when they leave.
//!
//! Needs `RTPMIDID_BIN` (the path printed by `scripts/build-rtpmidid`) and `/dev/snd/seq`, so it
//! runs inside the alsa-vm:
//!
//! ```text
//! RTPMIDID_BIN=$bin CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="/path/to/alsa-vm/run \
//!     --env RTPMIDID_BIN=$bin --" cargo test -p midihub-tests --test real_alsa_applemidi_peer
//! ```
//!
//! Without them it prints `SKIP: ...` to stderr and passes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use midihub_tests::applemidi::{JoinOptions, Participant, wire};
use midihub_tests::real_alsa::{
    HubView, Rtpmidid, aconnect, aconnect_view, loopback, mount_namespace_or_skip, room,
    rtpmidid_or_skip, scratch_dir, sequencer_client_ids, status_json, wait_until,
};

const ROOM_A_PORT: u16 = 5004;
const ROOM_B_PORT: u16 = 5006;
/// rtpmidid's client name as the product renders it for these rooms.
const ALSA_NAME: &str = "rtpmidid-5004";
const NOTE_COUNT: u8 = 20;

/// Remote names and status strings of the peers connected to one room.
fn room_peers(status: &serde_json::Value, room: &str) -> Vec<(String, String)> {
    status["router"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| {
            entry["type"] == "network_rtpmidi_multi_listener_t" && entry["name"] == room
        })
        .flat_map(|entry| entry["peers"].as_array().cloned().unwrap_or_default())
        .map(|peer| {
            (
                peer["remote"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                peer["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Polls `aconnect -l` until `check` accepts the hub's ports (rtpmidid's and its rooms'
/// clients'); returns the view. `aconnect -l` leaves out a client that has no subscribable
/// port, which is what a room's client is while nobody is in it, so a missing client counts as
/// no ports.
async fn wait_for_ports(what: &str, check: impl Fn(&HubView) -> bool) -> HubView {
    let mut view = HubView::default();
    let found = wait_until(Duration::from_secs(10), || {
        view = aconnect_view(ALSA_NAME).unwrap_or_default();
        check(&view)
    })
    .await;
    assert!(found, "{what} within 10 s; the hub's clients have {view:?}");
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_join_a_real_rtpmidid_room_get_alsa_ports_exchange_a_note_and_leave() {
    let Some(binary) = rtpmidid_or_skip(
        "participants_join_a_real_rtpmidid_room_get_alsa_ports_exchange_a_note_and_leave",
    ) else {
        return;
    };
    let started = Instant::now();
    let dir = scratch_dir("applemidi-peer");
    let rooms = [room(ROOM_A_PORT, "room-a"), room(ROOM_B_PORT, "room-b")];
    let daemon = Rtpmidid::start(&binary, &dir, "hub", &rooms).await;
    eprintln!("rtpmidid listening after {:?}", started.elapsed());

    let room_a = loopback(ROOM_A_PORT);
    let room_b = loopback(ROOM_B_PORT);
    let options = JoinOptions {
        ck_interval: Duration::from_millis(300),
        ..JoinOptions::default()
    };
    let mut join_times = Vec::new();
    let mut join = async |room: SocketAddr, name: &str| {
        let join_started = Instant::now();
        let participant = Participant::join(room, name, options.clone())
            .await
            .unwrap();
        join_times.push((name.to_string(), join_started.elapsed()));
        participant
    };
    let alice = join(room_a, "peer-alice").await;
    let bob = join(room_a, "peer-bob").await;
    let carol = join(room_b, "peer-carol").await;
    eprintln!("join times (IN/OK on both ports and the first CK exchange): {join_times:?}");
    assert_eq!(alice.hub_session_name(), "room-a");
    assert_eq!(bob.hub_session_name(), "room-a");
    assert_eq!(carol.hub_session_name(), "room-b");
    assert_ne!(alice.ssrc(), bob.ssrc());
    assert!(alice.last_round_trip().is_some() && bob.last_round_trip().is_some());

    let view = wait_for_ports("ALSA ports named after both participants", |view| {
        view.port_named("peer-alice").is_some() && view.port_named("peer-bob").is_some()
    })
    .await;
    let alice_port = view.port_named("peer-alice").unwrap();
    let bob_port = view.port_named("peer-bob").unwrap();
    let mut peers = room_peers(
        &status_json(&daemon.control_socket).await.unwrap(),
        "room-a",
    );
    peers.sort();
    assert_eq!(
        peers,
        [
            ("peer-alice".to_string(), "3".to_string()),
            ("peer-bob".to_string(), "3".to_string())
        ],
        "both participants are connected (status 3) in room-a"
    );
    assert_eq!(
        room_peers(
            &status_json(&daemon.control_socket).await.unwrap(),
            "room-b"
        ),
        [("peer-carol".to_string(), "3".to_string())]
    );

    let connected = aconnect(alice_port, bob_port).unwrap();
    assert!(connected.status.success(), "aconnect: {connected:?}");

    let mut delivery_times = Vec::new();
    for note in 0..NOTE_COUNT {
        let note_on = [0x90, 0x3C + note, 0x64];
        let sent_at = Instant::now();
        alice.send_midi(&note_on).await.unwrap();
        let received = bob.recv_midi(Duration::from_secs(2)).await.unwrap();
        delivery_times.push(sent_at.elapsed());
        assert_eq!(
            received.as_deref(),
            Some(&note_on[..]),
            "note {note} from peer-alice reaches peer-bob through the subscription"
        );
    }
    delivery_times.sort();
    eprintln!(
        "note delivery A→B over {NOTE_COUNT} notes: min {:?}, median {:?}, max {:?}",
        delivery_times[0],
        delivery_times[delivery_times.len() / 2],
        delivery_times[delivery_times.len() - 1]
    );

    // Only alice → bob is subscribed: bob's note must not come back to alice.
    bob.send_midi(&[0x90, 0x30, 0x40]).await.unwrap();
    assert_eq!(
        alice.recv_midi(Duration::from_millis(500)).await.unwrap(),
        None,
        "nothing reaches peer-alice without a subscription bob → alice"
    );
    assert_eq!(
        carol.recv_midi(Duration::from_millis(100)).await.unwrap(),
        None,
        "nothing reaches peer-carol in room-b"
    );

    // Let a few background clock syncs run; rtpmidid logs each CK2 it measures.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let log = daemon.log_text();
    for name in ["peer-alice", "peer-bob", "peer-carol"] {
        assert!(
            log.contains(&format!("Latency {name}:")) && log.contains("(server / 3)"),
            "rtpmidid measured a round trip from {name}'s CK2"
        );
    }
    eprintln!(
        "participant round trips: alice {:?}, bob {:?}",
        alice.last_round_trip().unwrap(),
        bob.last_round_trip().unwrap()
    );

    alice.leave().await.unwrap();
    bob.leave().await.unwrap();
    wait_for_ports("room-a's participants' ports gone after BY", |view| {
        view.port_named("peer-alice").is_none() && view.port_named("peer-bob").is_none()
    })
    .await;
    assert!(
        room_peers(
            &status_json(&daemon.control_socket).await.unwrap(),
            "room-a"
        )
        .is_empty()
    );
    let view = wait_for_ports("peer-carol's port still there", |view| {
        view.port_named("peer-carol").is_some()
    })
    .await;
    assert_eq!(
        view.ports.len(),
        1,
        "only peer-carol's port is left: {view:?}"
    );
    carol.leave().await.unwrap();
    wait_for_ports("no participant ports left", |view| view.ports.is_empty()).await;

    daemon.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("whole test took {:?}", started.elapsed());
}

/// rtpmidid 26.01 reads bytes 2–3 of every packet as an AppleMIDI command code without first
/// checking bytes 0–1 (0xFFFF on a command; `rtpserver_t::find_peer_by_packet`). In an
/// RTP-MIDI packet those bytes are the RTP sequence number, so a packet numbered 0x494E "IN",
/// 0x4F4B "OK", 0x4E4F "NO", 0x4259 "BY", 0x434B "CK" or 0x5253 "RS" looked for its session by
/// the wrong field, found none and was dropped without a word: 6 numbers of 65,536, about one
/// packet in 10,900 of every participant (a lost note-off is a stuck note). The hub's rtpmidid
/// carries a patch (images/rtpmidid-patches/); the release without it fails this test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtpmidid_delivers_a_midi_packet_whose_sequence_number_spells_a_command() {
    let Some(binary) = rtpmidid_or_skip("rtpmidid_delivers_a_midi_packet_whose_sequence_number")
    else {
        return;
    };
    const PORT: u16 = 5104;
    let dir = scratch_dir("applemidi-sequence-numbers");
    let rooms = [room(PORT, "room")];
    let daemon = Rtpmidid::start(&binary, &dir, "hub", &rooms).await;
    let client_name = midihub_api::rtpmidid_config::alsa_client_name(&rooms);
    let hub = loopback(PORT);
    let listener = Participant::join(hub, "listener", JoinOptions::default())
        .await
        .unwrap();
    for (index, code) in wire::COMMAND_CODES.into_iter().enumerate() {
        let number = u16::from_be_bytes(code);
        assert!(wire::spells_a_command(number) && !wire::spells_a_command(number + 1));
        let code = String::from_utf8_lossy(&code);
        let name = format!("sender-{code}");
        let sender = Participant::join(
            hub,
            &name,
            JoinOptions {
                first_sequence: Some(number - 1),
                ..JoinOptions::default()
            },
        )
        .await
        .unwrap();
        let mut view = HubView::default();
        let ports_there = wait_until(Duration::from_secs(10), || {
            view = aconnect_view(&client_name).unwrap_or_default();
            view.port_named(&name).is_some() && view.port_named("listener").is_some()
        })
        .await;
        assert!(ports_there, "ports of {name} and listener: {view:?}");
        let connected = aconnect(
            view.port_named(&name).unwrap(),
            view.port_named("listener").unwrap(),
        )
        .unwrap();
        assert!(connected.status.success(), "aconnect: {connected:?}");

        let note = 0x20 + 3 * u8::try_from(index).unwrap();
        let mut heard = Vec::new();
        for (offset, sequence) in [number - 1, number, number + 1].into_iter().enumerate() {
            assert_eq!(sender.next_sequence(), sequence);
            let note_on = [0x90, note + u8::try_from(offset).unwrap(), 0x64];
            sender.send_midi(&note_on).await.unwrap();
            let received = listener
                .recv_midi(Duration::from_millis(700))
                .await
                .unwrap();
            heard.push((sequence, received.is_some_and(|bytes| bytes == note_on)));
        }
        assert_eq!(
            heard,
            [(number - 1, true), (number, true), (number + 1, true)],
            "packets {:#06x}, {number:#06x} ({code:?}) and {:#06x}: heard or not (the packet \
             spelling {code:?} lost: this rtpmidid lacks images/rtpmidid-patches/0001)",
            number - 1,
            number + 1
        );
        sender.leave().await.unwrap();
    }
    daemon.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// rtpmidid's `status` gives each participant's address as text, never a name: 26.01 asked
/// `getnameinfo` for host names (four lookups per participant on every `status`, on the thread
/// that forwards MIDI), so a participant whose address the daemon's host lookup names came out
/// by that name, which no room allow-list can match. The hub's rtpmidid carries a patch
/// (images/rtpmidid-patches/0003); the release without it fails this test. rtpmidid runs with
/// an /etc/hosts of its own that names the participant's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtpmidid_reports_a_participants_address_though_its_hosts_file_names_it() {
    const TEST: &str = "rtpmidid_reports_a_participants_address";
    let Some(binary) = rtpmidid_or_skip(TEST) else {
        return;
    };
    if !mount_namespace_or_skip(TEST) {
        return;
    }
    const PORT: u16 = 5108;
    let dir = scratch_dir("applemidi-addresses");
    let rooms = [room(PORT, "room")];
    let hosts =
        "127.0.0.1 localhost\n127.0.0.2 pianist-at-home\n::ffff:127.0.0.2 pianist-at-home\n";
    let daemon = Rtpmidid::start_with_hosts_file(&binary, &dir, "hub", &rooms, hosts).await;
    let pianist = Participant::join(
        loopback(PORT),
        "pianist",
        JoinOptions {
            local_address: Some([127, 0, 0, 2].into()),
            ..JoinOptions::default()
        },
    )
    .await
    .unwrap();
    let status = status_json(&daemon.control_socket)
        .await
        .expect("rtpmidid answers status");
    // A room lists its participants under `peers`; a participant's own entry has its `peer`.
    let addresses: Vec<&str> = status["router"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|entry| {
            let peers = entry["peers"].as_array().into_iter().flatten();
            peers.chain(entry.get("peer"))
        })
        .map(|peer| peer["remote"]["hostname"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        addresses,
        ["::ffff:127.0.0.2", "::ffff:127.0.0.2"],
        "the pianist's address in the room's list and in its own entry (a name: this rtpmidid \
         lacks images/rtpmidid-patches/0003)"
    );
    pianist.leave().await.unwrap();
    daemon.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// rtpmidid gives each room (listening session) a sequencer client of its own, named
/// `<alsa_name> <room name>`, holds each participant's port on its room's client, and names
/// the client in the room's `status` entry (`alsa_client`): the sidecar learns a new port's
/// room from its announcement alone. rtpmidid 26.01 puts every room's ports on its one client;
/// the hub's rtpmidid carries a patch (images/rtpmidid-patches/0004); the release without it
/// fails this test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtpmidid_gives_each_room_its_own_sequencer_client() {
    let Some(binary) = rtpmidid_or_skip("rtpmidid_gives_each_room_its_own_sequencer_client") else {
        return;
    };
    const ROOM_A: u16 = 5110;
    const ROOM_B: u16 = 5112;
    let dir = scratch_dir("applemidi-room-clients");
    let rooms = [room(ROOM_A, "room a"), room(ROOM_B, "room b")];
    let daemon = Rtpmidid::start(&binary, &dir, "hub", &rooms).await;
    let alsa_name = midihub_api::rtpmidid_config::alsa_client_name(&rooms);
    let alice = Participant::join(loopback(ROOM_A), "alice", JoinOptions::default())
        .await
        .unwrap();
    let carol = Participant::join(loopback(ROOM_B), "carol", JoinOptions::default())
        .await
        .unwrap();
    let mut view = HubView::default();
    let ports_there = wait_until(Duration::from_secs(10), || {
        view = aconnect_view(&alsa_name).unwrap_or_default();
        view.port_named("alice").is_some() && view.port_named("carol").is_some()
    })
    .await;
    assert!(ports_there, "ports of alice and carol: {view:?}");

    let status = status_json(&daemon.control_socket).await.unwrap();
    let client_of = |room: &str| {
        status["router"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|entry| {
                entry["type"] == "network_rtpmidi_multi_listener_t" && entry["name"] == room
            })
            .and_then(|entry| entry["alsa_client"].as_i64())
            .and_then(|client| i32::try_from(client).ok())
    };
    let (Some(client_a), Some(client_b)) = (client_of("room a"), client_of("room b")) else {
        panic!(
            "the rooms' status entries name no sequencer client of their own (this rtpmidid lacks \
             images/rtpmidid-patches/0004): {status}"
        );
    };
    let daemons = sequencer_client_ids(&alsa_name);
    assert!(
        client_a != client_b && !daemons.contains(&client_a) && !daemons.contains(&client_b),
        "rooms' clients {client_a} and {client_b}, rtpmidid's own {daemons:?}"
    );
    assert_eq!(
        sequencer_client_ids(&format!("{alsa_name} room a")),
        [client_a].into()
    );
    assert_eq!(
        sequencer_client_ids(&format!("{alsa_name} room b")),
        [client_b].into()
    );
    assert_eq!(
        view.port_named("alice").map(|(client, _)| client),
        Some(client_a)
    );
    assert_eq!(
        view.port_named("carol").map(|(client, _)| client),
        Some(client_b)
    );

    alice.leave().await.unwrap();
    carol.leave().await.unwrap();
    daemon.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
