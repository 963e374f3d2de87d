//! The project's AppleMIDI test participant against the real rtpmidid on a real ALSA sequencer:
//! two participants join a room, rtpmidid gives each an ALSA port named after it, a note goes
//! from one to the other through a sequencer subscription (made with `aconnect`, standing in
//! for the sidecar's wiring), and the ports go away when they leave.
//!
//! Needs `RTPMIDID_BIN` (the path printed by `shared/rtpmidid/build`) and `/dev/snd/seq`, so it
//! runs inside the alsa-vm:
//!
//! ```text
//! RTPMIDID_BIN=$bin CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="/path/to/alsa-vm/run \
//!     --env RTPMIDID_BIN=$bin --" cargo test -p midihub-tests --test real_alsa_applemidi_peer
//! ```
//!
//! Without them it prints `SKIP: ...` to stderr and passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use midihub_tests::applemidi::{JoinOptions, Participant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

const ROOM_A_PORT: u16 = 5004;
const ROOM_B_PORT: u16 = 5006;
const ALSA_NAME: &str = "rtpmidid";
const NOTE_COUNT: u8 = 20;

/// rtpmidid running in a temporary directory with its log in a file; the log is printed when a
/// test fails, and the process is killed when this is dropped.
struct Daemon {
    child: Child,
    dir: PathBuf,
    control_socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    async fn start(binary: &Path) -> Daemon {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = PathBuf::from(format!(
            "/tmp/midihub-applemidi-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let control_socket = dir.join("control.sock");
        let ini = dir.join("rtpmidid.ini");
        // Only `#` starts a comment in rtpmidid's INI parser, so no comments on value lines.
        std::fs::write(
            &ini,
            format!(
                "[general]\n\
                 alsa_name={ALSA_NAME}\n\
                 control={}\n\
                 log_level=info\n\
                 \n\
                 [rtpmidi_announce]\n\
                 name=room-a\n\
                 port={ROOM_A_PORT}\n\
                 \n\
                 [rtpmidi_announce]\n\
                 name=room-b\n\
                 port={ROOM_B_PORT}\n\
                 \n\
                 [rtpmidi_discover]\n\
                 enabled=false\n",
                control_socket.display()
            ),
        )
        .unwrap();
        let log = dir.join("rtpmidid.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg("--ini")
            .arg(&ini)
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        Daemon {
            child,
            dir,
            control_socket,
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One request on the control socket, one JSON line back.
    async fn status(&self) -> serde_json::Value {
        let mut stream = UnixStream::connect(&self.control_socket).await.unwrap();
        stream
            .write_all(br#"{"method": "status", "params": {}, "id": 1}"#)
            .await
            .unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await.unwrap();
        let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
        reply["result"].clone()
    }

    /// Waits for the control socket and for both rooms to be listening.
    async fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rtpmidid exited early with {status}");
            }
            if self.control_socket.exists() {
                let status = self.status().await;
                let rooms = listening_rooms(&status);
                if rooms.contains(&("room-a".to_string(), ROOM_A_PORT))
                    && rooms.contains(&("room-b".to_string(), ROOM_B_PORT))
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "rtpmidid did not listen on both rooms within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- rtpmidid log ---\n{}--- end ---", self.log_text());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (name, control port) of every listening session in a `status` result.
fn listening_rooms(status: &serde_json::Value) -> Vec<(String, u16)> {
    status["router"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["type"] == "network_rtpmidi_multi_listener_t")
        .filter_map(|entry| {
            let port = entry["listening"]["control_port"].as_u64()?;
            Some((
                entry["name"].as_str()?.to_string(),
                u16::try_from(port).ok()?,
            ))
        })
        .collect()
}

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

/// The ports of the sequencer client named `client_name`, as `aconnect -l` lists them:
/// (client id, [(port id, port name)]).
fn alsa_ports(client_name: &str) -> Option<(u32, Vec<(u32, String)>)> {
    let output = std::process::Command::new("aconnect")
        .arg("-l")
        .output()
        .expect("aconnect runs (install alsa-utils)");
    assert!(output.status.success(), "aconnect -l failed: {output:?}");
    parse_aconnect_list(&String::from_utf8_lossy(&output.stdout), client_name)
}

fn parse_aconnect_list(listing: &str, client_name: &str) -> Option<(u32, Vec<(u32, String)>)> {
    let quoted = |line: &str| -> Option<String> {
        let start = line.find('\'')?;
        let end = line.rfind('\'')?;
        (end > start).then(|| line[start + 1..end].trim_end().to_string())
    };
    let mut found: Option<(u32, Vec<(u32, String)>)> = None;
    let mut in_client = false;
    for line in listing.lines() {
        if let Some(rest) = line.strip_prefix("client ") {
            in_client = quoted(line).as_deref() == Some(client_name);
            if in_client {
                let id = rest.split(':').next()?.trim().parse().ok()?;
                found = Some((id, Vec::new()));
            }
        } else if in_client && line.starts_with("    ") {
            let trimmed = line.trim_start();
            let port: Option<u32> = trimmed
                .split_whitespace()
                .next()
                .and_then(|number| number.parse().ok());
            if let (Some(port), Some(name), Some((_, ports))) = (port, quoted(trimmed), &mut found)
            {
                ports.push((port, name));
            }
        }
    }
    found
}

/// Polls `aconnect -l` until `check` accepts the rtpmidid client's ports; returns the client id
/// once listed. `aconnect -l` leaves out a client that has no subscribable port, which is what
/// rtpmidid is when nobody is connected, so a missing client counts as no ports.
async fn wait_for_ports(
    what: &str,
    mut check: impl FnMut(&[(u32, String)]) -> bool,
) -> (Option<u32>, Vec<(u32, String)>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (client, ports) = match alsa_ports(ALSA_NAME) {
            Some((client, ports)) => (Some(client), ports),
            None => (None, Vec::new()),
        };
        if check(&ports) {
            return (client, ports);
        }
        assert!(
            Instant::now() < deadline,
            "{what} within 10 s; rtpmidid's client {client:?} has ports {ports:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn port_named(ports: &[(u32, String)], name: &str) -> Option<u32> {
    ports
        .iter()
        .find(|(_, port_name)| port_name == name)
        .map(|(port, _)| *port)
}

fn prerequisites() -> Option<PathBuf> {
    let Some(binary) = std::env::var_os("RTPMIDID_BIN") else {
        eprintln!(
            "SKIP: RTPMIDID_BIN is not set (point it at the rtpmidid that \
             shared/rtpmidid/build prints, and run inside shared/alsa-vm/run)"
        );
        return None;
    };
    if !Path::new("/dev/snd/seq").exists() {
        eprintln!(
            "SKIP: /dev/snd/seq is missing: no ALSA sequencer here (run inside shared/alsa-vm/run)"
        );
        return None;
    }
    Some(PathBuf::from(binary))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_join_a_real_rtpmidid_room_get_alsa_ports_exchange_a_note_and_leave() {
    let Some(binary) = prerequisites() else {
        return;
    };
    let started = Instant::now();
    let mut daemon = Daemon::start(&binary).await;
    daemon.wait_until_listening().await;
    eprintln!("rtpmidid listening after {:?}", started.elapsed());

    let room_a: SocketAddr = ([127, 0, 0, 1], ROOM_A_PORT).into();
    let room_b: SocketAddr = ([127, 0, 0, 1], ROOM_B_PORT).into();
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

    let (client, ports) = wait_for_ports("ALSA ports named after both participants", |ports| {
        port_named(ports, "peer-alice").is_some() && port_named(ports, "peer-bob").is_some()
    })
    .await;
    let client = client.expect("the rtpmidid client is listed once it has ports");
    let alice_port = port_named(&ports, "peer-alice").unwrap();
    let bob_port = port_named(&ports, "peer-bob").unwrap();
    let mut peers = room_peers(&daemon.status().await, "room-a");
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
        room_peers(&daemon.status().await, "room-b"),
        [("peer-carol".to_string(), "3".to_string())]
    );

    let aconnect = std::process::Command::new("aconnect")
        .arg(format!("{client}:{alice_port}"))
        .arg(format!("{client}:{bob_port}"))
        .output()
        .unwrap();
    assert!(aconnect.status.success(), "aconnect failed: {aconnect:?}");

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
    wait_for_ports("room-a's participants' ports gone after BY", |ports| {
        port_named(ports, "peer-alice").is_none() && port_named(ports, "peer-bob").is_none()
    })
    .await;
    assert!(room_peers(&daemon.status().await, "room-a").is_empty());
    let (_, ports) = wait_for_ports("peer-carol's port still there", |ports| {
        port_named(ports, "peer-carol").is_some()
    })
    .await;
    assert_eq!(ports.len(), 1, "only peer-carol's port is left: {ports:?}");
    carol.leave().await.unwrap();
    wait_for_ports("no participant ports left", |ports| ports.is_empty()).await;

    daemon.child.start_kill().unwrap();
    daemon.child.wait().await.unwrap();
    eprintln!("whole test took {:?}", started.elapsed());
}

#[test]
fn aconnect_listing_is_read_into_client_and_port_names() {
    let listing = "client 0: 'System' [type=kernel]\n    0 'Timer           '\n    1 'Announce        '\nclient 128: 'rtpmidid' [type=user,pid=42]\n    1 'peer-alice      '\n\tConnecting To: 128:2\n    2 'peer bob, the 2nd'\n\tConnected From: 128:1\n";
    assert_eq!(
        parse_aconnect_list(listing, "rtpmidid"),
        Some((
            128,
            vec![
                (1, "peer-alice".to_string()),
                (2, "peer bob, the 2nd".to_string())
            ]
        ))
    );
    assert_eq!(parse_aconnect_list(listing, "nosuch"), None);
}
