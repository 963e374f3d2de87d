//! The real-ALSA tier: the real rtpmidid (with the configuration the product renders, two
//! rooms) on a real kernel sequencer, RTP-MIDI participants joining and leaving over
//! loopback, and the hub-sidecar binary wiring them. After every join, leave, sidecar restart
//! and rtpmidid restart the test checks the subscriptions the kernel holds (read with
//! `aconnect -l`) and that a note from one participant reaches the others of its room, not
//! itself and nobody in the other room. Besides the wiring, the only links from a participant's
//! port are the stuck-note guard's (one each, to the input port of a `midihub-guard` client).
//!
//! Needs `RTPMIDID_BIN` and `/dev/snd/seq` (run inside shared/alsa-vm); prints `SKIP` and
//! returns otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hub_sidecar::guard;
use midihub_tests::applemidi::Participant;
use midihub_tests::real_alsa::{
    Rtpmidid, SeqAddr, aconnect_view, join, room, rtpmidid_or_skip, scratch_dir,
    sequencer_client_ids, wait_until,
};
use midihub_tests::sidecar::{SidecarProcess, local_copy};

const WIRED_WITHIN: Duration = Duration::from_secs(20);
const HEARD_WITHIN: Duration = Duration::from_secs(2);
const SILENT_FOR: Duration = Duration::from_millis(400);

/// The hub-sidecar binary, copied once into the scratch area (see [`local_copy`]).
fn sidecar_binary() -> &'static Path {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| local_copy(Path::new(env!("CARGO_BIN_EXE_hub-sidecar"))))
}

/// The sidecar in `local --attach` mode on the rtpmidid of `socket`.
fn attach(socket: &Path, log: PathBuf) -> SidecarProcess {
    SidecarProcess::attach(sidecar_binary(), socket, "127.0.0.1:9181", log).spawn()
}

/// The logs at `paths`, for a failure message.
fn read_logs(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| {
            format!(
                "--- {}:\n{}",
                path.display(),
                std::fs::read_to_string(path).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The links the kernel should hold: every ordered pair of distinct rtpmidid ports whose
/// participants share a room. `rooms` maps participant names to rooms (names may repeat
/// inside a room).
fn expected_links(
    ports: &BTreeMap<SeqAddr, String>,
    rooms: &BTreeMap<&str, u16>,
) -> BTreeSet<(SeqAddr, SeqAddr)> {
    let room_of = |port: &SeqAddr| rooms.get(ports[port].as_str()).copied();
    ports
        .keys()
        .flat_map(|from| ports.keys().map(move |to| (*from, *to)))
        .filter(|(from, to)| from != to)
        .filter(|(from, to)| room_of(from).is_some() && room_of(from) == room_of(to))
        .collect()
}

/// Waits until rtpmidid has one port per participant in `rooms` (by name, with multiplicity
/// `counts`) and the kernel holds exactly the links of those rooms.
async fn assert_wired(
    client: &str,
    rooms: &BTreeMap<&str, u16>,
    counts: &BTreeMap<&str, usize>,
    context: &str,
    logs: &dyn Fn() -> String,
) {
    let mut last = None;
    let started = std::time::Instant::now();
    let wired = wait_until(WIRED_WITHIN, || {
        let Some(view) = aconnect_view(client) else {
            return false;
        };
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for name in view.ports.values() {
            if let Some((known, _)) = counts.get_key_value(name.as_str()) {
                *seen.entry(known).or_default() += 1;
            }
        }
        let guards = sequencer_client_ids(guard::CLIENT_NAME);
        let guard_links: BTreeSet<(SeqAddr, SeqAddr)> = view
            .external_links
            .iter()
            .filter(|(_, (client, port))| guards.contains(client) && *port == 0)
            .copied()
            .collect();
        let ok = seen == *counts
            && view.ports.len() == counts.values().sum::<usize>()
            && view.internal_links == expected_links(&view.ports, rooms)
            && guard_links == view.external_links
            && guard_links
                .iter()
                .map(|(from, _)| *from)
                .collect::<BTreeSet<_>>()
                == view.ports.keys().copied().collect()
            && guard_links.len() == view.ports.len();
        last = Some(view);
        ok
    })
    .await;
    assert!(
        wired,
        "{context}: the kernel does not hold the hub's wiring; aconnect sees {last:#?}\n{}",
        logs()
    );
    eprintln!("{context}: wired within {:?}", started.elapsed());
}

/// A note from `from` (pressed and released, so that nobody holds anything the stuck-note
/// guard would release later) reaches every participant in `hear` and none in `silent`.
async fn assert_note(
    from: &Participant,
    note: u8,
    hear: &[&Participant],
    silent: &[&Participant],
    context: &str,
) {
    for participant in hear.iter().chain(silent) {
        while participant
            .recv_midi(Duration::from_millis(1))
            .await
            .unwrap()
            .is_some()
        {}
    }
    let played = [[0x90, note, 100], [0x80, note, 0]];
    for midi in &played {
        from.send_midi(midi).await.unwrap();
    }
    for participant in hear {
        for midi in &played {
            let received = participant.recv_midi(HEARD_WITHIN).await.unwrap();
            assert_eq!(
                received.as_deref(),
                Some(&midi[..]),
                "{context}: {} should hear {}'s note",
                participant.name(),
                from.name()
            );
        }
    }
    for participant in silent {
        let received = participant.recv_midi(SILENT_FOR).await.unwrap();
        assert_eq!(
            received,
            None,
            "{context}: {} must not hear {}'s note",
            participant.name(),
            from.name()
        );
    }
}

#[tokio::test]
async fn the_sidecar_wires_each_room_through_joins_leaves_and_restarts() {
    let Some(rtpmidid) =
        rtpmidid_or_skip("the_sidecar_wires_each_room_through_joins_leaves_and_restarts")
    else {
        return;
    };
    let (room_a, room_b) = (5104, 5106);
    const CLIENT: &str = "rtpmidid-5104";
    let dir = scratch_dir("real-alsa-wiring");
    let ports = [room(room_a, "room-a"), room(room_b, "room-b")];
    let daemon = Rtpmidid::start(&rtpmidid, &dir, "hub", &ports).await;
    let sidecar = attach(&daemon.control_socket, dir.join("sidecar-1.log"));
    let daemon_log = daemon.log.clone();
    let logs = || read_logs(&[dir.join("sidecar-1.log"), daemon_log.clone()]);

    // Three participants in room a, one in room b.
    let alice = join(room_a, "alice").await;
    let bob = join(room_a, "bob").await;
    let carol = join(room_a, "carol").await;
    let dave = join(room_b, "dave").await;
    let mut rooms = BTreeMap::from([
        ("alice", room_a),
        ("bob", room_a),
        ("carol", room_a),
        ("dave", room_b),
    ]);
    let mut counts = BTreeMap::from([("alice", 1), ("bob", 1), ("carol", 1), ("dave", 1)]);
    assert_wired(CLIENT, &rooms, &counts, "after four joins", &logs).await;
    assert_note(
        &alice,
        60,
        &[&bob, &carol],
        &[&alice, &dave],
        "after four joins",
    )
    .await;
    assert_note(
        &dave,
        61,
        &[],
        &[&alice, &bob, &carol],
        "a lone participant",
    )
    .await;

    // A second "bob": same name, another port, wired by port.
    let bob_two = join(room_a, "bob").await;
    counts.insert("bob", 2);
    assert_wired(CLIENT, &rooms, &counts, "after a second bob joined", &logs).await;
    assert_note(
        &bob_two,
        62,
        &[&alice, &bob, &carol],
        &[&bob_two, &dave],
        "same names",
    )
    .await;

    // Carol leaves.
    carol.leave().await.unwrap();
    rooms.remove("carol");
    counts.remove("carol");
    assert_wired(CLIENT, &rooms, &counts, "after carol left", &logs).await;
    assert_note(&alice, 63, &[&bob, &bob_two], &[&dave], "after carol left").await;

    // Alice leaves and re-joins under the same name.
    alice.leave().await.unwrap();
    let alice = join(room_a, "alice").await;
    assert_wired(CLIENT, &rooms, &counts, "after alice re-joined", &logs).await;
    assert_note(
        &alice,
        64,
        &[&bob, &bob_two],
        &[&dave],
        "after alice re-joined",
    )
    .await;

    // The sidecar restarts; meanwhile bob_two leaves and erin joins room b.
    sidecar.stop().await;
    bob_two.leave().await.unwrap();
    let erin = join(room_b, "erin").await;
    counts.insert("bob", 1);
    rooms.insert("erin", room_b);
    counts.insert("erin", 1);
    let sidecar = attach(&daemon.control_socket, dir.join("sidecar-2.log"));
    let logs = || read_logs(&[dir.join("sidecar-2.log"), daemon_log.clone()]);
    assert_wired(
        CLIENT,
        &rooms,
        &counts,
        "after the sidecar restarted",
        &logs,
    )
    .await;
    assert_note(
        &erin,
        65,
        &[&dave],
        &[&alice, &bob, &erin],
        "after the sidecar restarted",
    )
    .await;
    assert_note(
        &bob,
        66,
        &[&alice],
        &[&dave, &erin],
        "after the sidecar restarted",
    )
    .await;

    // rtpmidid restarts: every participant must join again, and the new daemon is wired.
    let socket = daemon.control_socket.clone();
    daemon.stop().await;
    let daemon = Rtpmidid::start(&rtpmidid, &dir, "hub", &ports).await;
    assert_eq!(daemon.control_socket, socket);
    for participant in [alice, bob, dave, erin] {
        drop(participant);
    }
    let alice = join(room_a, "alice").await;
    let bob = join(room_a, "bob").await;
    let dave = join(room_b, "dave").await;
    let erin = join(room_b, "erin").await;
    assert_wired(CLIENT, &rooms, &counts, "after rtpmidid restarted", &logs).await;
    assert_note(
        &alice,
        67,
        &[&bob],
        &[&alice, &dave, &erin],
        "after rtpmidid restarted",
    )
    .await;
    assert_note(
        &erin,
        68,
        &[&dave],
        &[&alice, &bob, &erin],
        "after rtpmidid restarted",
    )
    .await;

    sidecar.stop().await;
    daemon.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn local_mode_runs_rtpmidid_wires_it_and_reports_json_lines() {
    let Some(rtpmidid) =
        rtpmidid_or_skip("local_mode_runs_rtpmidid_wires_it_and_reports_json_lines")
    else {
        return;
    };
    let room_a = 5204;
    const CLIENT: &str = "rtpmidid-5204";
    let dir = scratch_dir("real-alsa-local");
    let work_dir = dir.join("work");
    let mut sidecar = SidecarProcess::command(sidecar_binary(), dir.join("sidecar.log"))
        .args([
            "--listen",
            "127.0.0.1:9182",
            "local",
            "--room",
            &format!("{room_a}=local-a"),
            "--room",
            "5206",
            "--name",
            "studio",
            "--rtpmidid",
            rtpmidid.to_str().unwrap(),
            "--work-dir",
            work_dir.to_str().unwrap(),
        ])
        .json_lines()
        .spawn();
    let socket = work_dir.join("control.sock");
    let started = wait_until(Duration::from_secs(10), || socket.exists()).await;
    assert!(
        started,
        "local mode started rtpmidid: {}",
        sidecar.log_text()
    );
    let ini = std::fs::read_to_string(work_dir.join("rtpmidid.ini")).unwrap();
    assert!(ini.contains("name=local-a\nport=5204\n"), "{ini}");
    assert!(ini.contains("name=studio-5206\nport=5206\n"), "{ini}");

    let ann = join(room_a, "ann").await;
    let ben = join(room_a, "ben").await;
    let rooms = BTreeMap::from([("ann", room_a), ("ben", room_a)]);
    let counts = BTreeMap::from([("ann", 1), ("ben", 1)]);
    let logs = || sidecar.log_text();
    assert_wired(CLIENT, &rooms, &counts, "local mode", &logs).await;
    assert_note(&ann, 70, &[&ben], &[&ann], "local mode").await;

    // The JSON lines say who joined and, at last, a status with both.
    let mut joined = BTreeSet::new();
    let reported = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(value) = sidecar.next_json_line().await {
            match value["type"].as_str() {
                Some("joined") => {
                    joined.insert(value["participant"]["name"].as_str().unwrap().to_string());
                }
                Some("status") if value["participantCount"] == 2 => return value,
                _ => {}
            }
        }
        panic!("stdout ended");
    })
    .await
    .expect("a status line with both participants");
    assert_eq!(
        joined,
        BTreeSet::from(["ann".to_string(), "ben".to_string()])
    );
    assert_eq!(reported["participants"][0]["room"], "local-a");
    assert_eq!(reported["wiring"]["ok"], true);

    sidecar.stop().await;
    let gone = wait_until(Duration::from_secs(5), || {
        !socket.exists() || aconnect_view(CLIENT).is_none()
    })
    .await;
    assert!(gone, "stopping local mode stops its rtpmidid");
    let _ = std::fs::remove_dir_all(&dir);
}
