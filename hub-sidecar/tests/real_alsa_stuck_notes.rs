//! The stuck-note guard and the rooms' allow-lists on the real rtpmidid and a real kernel
//! sequencer, with the hub-sidecar binary in `local --attach` mode and RTP-MIDI participants
//! over loopback (bound to 127.0.0.2 and so on to come from other addresses):
//!
//! - a participant holding a chord and the sustain pedal says BY: the rest of its room hears
//!   the note-offs and the pedal up within 100 ms (median of several leaves), the other room
//!   nothing;
//! - one who let go of everything leaves: nothing is sent;
//! - one goes silent without BY: the release comes once rtpmidid drops it, or, when rtpmidid
//!   has lost its timeout (it does when another participant joins after it), once the sidecar
//!   sees its latency statistics empty (about 120 s); the test prints how long it took;
//! - a guard that reads nothing for a while (the whole sidecar stopped with SIGSTOP) costs the
//!   others no note, as long as the events played meanwhile fit in its input (2,000 events, the
//!   kernel's maximum). Beyond that the kernel refuses deliveries to the guard and rtpmidid
//!   loses those events for every receiver (measured: 3,000 events played during a stop,
//!   1,000 lost); the README says so;
//! - `POST /panic` sends every participant of every room all notes off, pedals up and
//!   controllers reset on all 16 channels;
//! - a participant from an address outside its room's allow-list is never wired, an allowed one
//!   is.
//!
//! Needs `RTPMIDID_BIN` and `/dev/snd/seq` (run inside shared/alsa-vm); prints `SKIP` and
//! returns otherwise. The tests share the VM's sequencer and clock: they run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hub_sidecar::guard::CLIENT_NAME as GUARD_CLIENT;
use midihub_api::rtpmidid_config::alsa_client_name;
use midihub_tests::applemidi::{JoinOptions, Participant};
use midihub_tests::bench::{SequenceGaps, seq_client_pools, udp_drops_by_port};
use midihub_tests::http::{http_get, http_post};
use midihub_tests::real_alsa::{
    Rtpmidid, aconnect_view, join, loopback, room, rtpmidid_or_skip, scratch_dir, wait_until,
};
use midihub_tests::sidecar::{SidecarProcess, local_copy};

const WIRED_WITHIN: Duration = Duration::from_secs(20);
const HEARD_WITHIN: Duration = Duration::from_secs(2);
const SILENT_FOR: Duration = Duration::from_millis(500);
/// What the issue asks of a release: within 100 ms of the leave.
const RELEASE_WITHIN: Duration = Duration::from_millis(100);
/// Leaves measured for the median.
const LEAVES: usize = 5;

/// One test at a time: they share the sequencer, the CPU and the timing checks.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A channel voice message of three bytes.
type Message = [u8; 3];

const CHORD: [Message; 4] = [
    [0x90, 60, 100],
    [0x90, 64, 100],
    [0x90, 67, 100],
    [0xB0, 64, 127],
];

/// What the guard sends for [`CHORD`]: the notes off (release velocity 64), low to high,
/// then the sustain pedal up.
const CHORD_RELEASE: [Message; 4] = [
    [0x80, 60, 64],
    [0x80, 64, 64],
    [0x80, 67, 64],
    [0xB0, 64, 0],
];

/// rtpmidid with two rooms and the sidecar attached to it, with `args` added. Each test has
/// ports of its own, so that what one leaves behind when it fails cannot fail the next.
struct Hub {
    /// The rooms' control ports.
    a: u16,
    b: u16,
    listen: String,
    dir: PathBuf,
    daemon: Rtpmidid,
    sidecar: SidecarProcess,
    client: String,
}

impl Hub {
    /// Rooms on `a` and `a + 2`; the sidecar's endpoint on TCP port `a + 4000`.
    async fn start(rtpmidid: &Path, label: &str, a: u16, args: &[&str]) -> Hub {
        let dir = scratch_dir(label);
        let b = a + 2;
        let listen = format!("127.0.0.1:{}", a + 4000);
        let ports = [room(a, "room-a"), room(b, "room-b")];
        let daemon = Rtpmidid::start(rtpmidid, &dir, "hub", &ports).await;
        let sidecar = SidecarProcess::attach(
            sidecar_binary(),
            &daemon.control_socket,
            &listen,
            dir.join("sidecar.log"),
        )
        .args(args)
        .spawn();
        Hub {
            a,
            b,
            listen,
            dir,
            daemon,
            sidecar,
            client: alsa_client_name(&ports),
        }
    }

    /// The sidecar's endpoint at `path`.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }

    fn logs(&self) -> String {
        format!(
            "--- sidecar:\n{}\n--- rtpmidid:\n{}",
            self.sidecar.log_text(),
            self.daemon.log_text()
        )
    }

    /// Waits until the kernel holds `links` subscriptions between rtpmidid's ports.
    async fn wait_for_links(&self, links: usize, context: &str) {
        let mut last = None;
        let wired = wait_until(WIRED_WITHIN, || {
            last = aconnect_view(&self.client);
            last.as_ref()
                .is_some_and(|view| view.internal_links.len() == links)
        })
        .await;
        assert!(
            wired,
            "{context}: expected {links} links, aconnect sees {last:#?}\n{}",
            self.logs()
        );
    }

    async fn stop(self) {
        self.sidecar.stop().await;
        self.daemon.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sidecar_binary() -> &'static Path {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| local_copy(Path::new(env!("CARGO_BIN_EXE_hub-sidecar"))))
}

/// A participant that joins room `port` from the loopback address `from` (127.0.0.x).
async fn join_from(port: u16, name: &str, from: Ipv4Addr) -> Participant {
    let options = JoinOptions {
        local_address: Some(IpAddr::V4(from)),
        ..JoinOptions::default()
    };
    Participant::join(loopback(port), name, options)
        .await
        .unwrap_or_else(|error| panic!("{name} cannot join room {port} from {from}: {error}"))
}

/// The three-byte messages of a received command list.
fn messages(bytes: &[u8]) -> Vec<Message> {
    assert_eq!(
        bytes.len() % 3,
        0,
        "only three-byte messages expected: {bytes:02x?}"
    );
    bytes
        .chunks(3)
        .map(|message| [message[0], message[1], message[2]])
        .collect()
}

/// Receives until `count` messages have come, or `within` passes; returns them and when the
/// last came.
async fn receive(
    participant: &Participant,
    count: usize,
    within: Duration,
) -> (Vec<Message>, Instant) {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut last = Instant::now();
    while received.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(bytes) = participant.recv_midi(left).await.unwrap() else {
            break;
        };
        last = Instant::now();
        received.extend(messages(&bytes));
    }
    (received, last)
}

/// How many messages `participant` receives (up to `count`, within `within`), and the packets
/// missing between the RTP sequence numbers of those it read.
async fn receive_counting_gaps(
    participant: &Participant,
    count: usize,
    within: Duration,
) -> (usize, SequenceGaps) {
    let deadline = Instant::now() + within;
    let mut received = 0;
    let mut gaps = SequenceGaps::default();
    while received < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(packet) = participant.recv_midi_packet(left).await.unwrap() else {
            break;
        };
        gaps.observe(packet.packet.sequence);
        received += messages(&packet.packet.commands).len();
    }
    (received, gaps)
}

/// The kernel's loss counters where a message from room a's participants to `listener` can be
/// lost: rtpmidid's room data socket (input drops), the listener's socket, rtpmidid's and the
/// guard's sequencer event pools (a full guard makes the kernel refuse rtpmidid's deliveries).
#[derive(Clone, Copy, Default)]
struct Losses {
    room_socket_drops: u64,
    listener_socket_drops: u64,
    rtpmidid_pool_failures: u64,
    guard_pool_failures: u64,
}

impl Losses {
    fn read(hub: &Hub, listener: &Participant) -> Losses {
        let drops = udp_drops_by_port();
        let pools = seq_client_pools();
        let failures = |name: &str| {
            pools.get(name).map_or(0, |pools| {
                pools.input.alloc_failures + pools.output.alloc_failures
            })
        };
        Losses {
            room_socket_drops: drops.get(&(hub.a + 1)).copied().unwrap_or_default(),
            listener_socket_drops: drops
                .get(&listener.local_data_port())
                .copied()
                .unwrap_or_default(),
            rtpmidid_pool_failures: failures(&hub.client),
            guard_pool_failures: failures(GUARD_CLIENT),
        }
    }

    fn since(self, before: Losses) -> Losses {
        Losses {
            room_socket_drops: self.room_socket_drops - before.room_socket_drops,
            listener_socket_drops: self.listener_socket_drops - before.listener_socket_drops,
            rtpmidid_pool_failures: self.rtpmidid_pool_failures - before.rtpmidid_pool_failures,
            guard_pool_failures: self.guard_pool_failures - before.guard_pool_failures,
        }
    }
}

impl std::fmt::Display for Losses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rtpmidid's room socket dropped {} packets on input, the listener's socket {}; \
             failed event allocations: rtpmidid {}, the guard {}",
            self.room_socket_drops,
            self.listener_socket_drops,
            self.rtpmidid_pool_failures,
            self.guard_pool_failures
        )
    }
}

/// Asserts that `participant` receives nothing for [`SILENT_FOR`].
async fn assert_silent(participant: &Participant, context: &str) {
    let received = participant.recv_midi(SILENT_FOR).await.unwrap();
    assert_eq!(
        received.as_deref().map(messages),
        None,
        "{context}: {} must receive nothing",
        participant.name()
    );
}

/// `player` sends `played`, one packet each, and each of `hear` receives them.
async fn play(player: &Participant, played: &[Message], hear: &[&Participant]) {
    for message in played {
        player.send_midi(message).await.unwrap();
    }
    for participant in hear {
        let (received, _) = receive(participant, played.len(), HEARD_WITHIN).await;
        assert_eq!(
            received,
            played,
            "{} hears {}",
            participant.name(),
            player.name()
        );
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn a_participant_who_leaves_holding_a_chord_and_the_pedal_is_released_for_its_room_only() {
    let Some(rtpmidid) = rtpmidid_or_skip("a_participant_who_leaves_holding_a_chord") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let hub = Hub::start(&rtpmidid, "stuck-notes-by", 5404, &[]).await;
    let bob = join(hub.a, "bob").await;
    let carol = join(hub.a, "carol").await;
    let dave = join(hub.b, "dave").await;
    hub.wait_for_links(2, "bob and carol").await;

    let mut delays = Vec::new();
    for round in 0..LEAVES {
        let alice = join(hub.a, "alice").await;
        hub.wait_for_links(6, "alice joined").await;
        play(&alice, &CHORD, &[&bob, &carol]).await;
        let left_at = Instant::now();
        alice.leave().await.unwrap();
        for listener in [&bob, &carol] {
            let (received, at) = receive(listener, CHORD_RELEASE.len(), HEARD_WITHIN).await;
            assert_eq!(
                received,
                CHORD_RELEASE,
                "round {round}: {} must hear alice's chord and pedal released\n{}",
                listener.name(),
                hub.logs()
            );
            let delay = at - left_at;
            eprintln!(
                "round {round}: {} had the release {delay:?} after alice's BY",
                listener.name()
            );
            delays.push(delay);
        }
        hub.wait_for_links(2, "alice gone").await;
    }
    assert_silent(&dave, "the other room").await;
    assert_silent(&bob, "after the releases").await;
    let median = median(delays.clone());
    eprintln!(
        "release after BY: median {median:?} of {} ({:?})",
        delays.len(),
        delays
    );
    assert!(
        median < RELEASE_WITHIN,
        "the release must come within {RELEASE_WITHIN:?} of the leave (median of {}): {delays:?}",
        delays.len()
    );
    let metrics = http_get(&hub.url("/metrics")).unwrap().body;
    assert!(
        metrics.contains(&format!(
            "midihub_sidecar_notes_released_total{{room=\"{}\"}} {}",
            hub.a,
            3 * LEAVES
        )),
        "{metrics}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_participant_who_let_go_of_everything_leaves_without_a_release() {
    let Some(rtpmidid) = rtpmidid_or_skip("a_participant_who_let_go_of_everything") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let hub = Hub::start(&rtpmidid, "stuck-notes-let-go", 5414, &[]).await;
    let alice = join(hub.a, "alice").await;
    let bob = join(hub.a, "bob").await;
    hub.wait_for_links(2, "alice and bob").await;
    let mut played = CHORD.to_vec();
    // Released every way a player does: note-off, note-on with velocity 0, pedal up.
    played.extend([[0x80, 60, 0], [0x90, 64, 0], [0x80, 67, 30], [0xB0, 64, 0]]);
    play(&alice, &played, &[&bob]).await;
    alice.leave().await.unwrap();
    hub.wait_for_links(0, "alice gone").await;
    assert_silent(&bob, "alice held nothing when she left").await;
    hub.stop().await;
}

#[tokio::test]
async fn a_guard_that_reads_nothing_costs_the_others_no_note() {
    let Some(rtpmidid) = rtpmidid_or_skip("a_guard_that_reads_nothing") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let hub = Hub::start(&rtpmidid, "stuck-notes-slow-guard", 5424, &[]).await;
    let alice = join(hub.a, "alice").await;
    let bob = join(hub.a, "bob").await;
    hub.wait_for_links(2, "alice and bob").await;
    // Let the guard watch alice before it is stopped.
    play(&alice, &[[0x90, 1, 1], [0x80, 1, 0]], &[&bob]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The whole sidecar stops: its guard reads nothing while alice plays 1,800 events, nearly
    // what its input holds (2,000).
    let pid = nix::unistd::Pid::from_raw(i32::try_from(hub.sidecar.pid()).unwrap());
    let losses_before = Losses::read(&hub, &bob);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    const PAIRS: usize = 900;
    let sender = async {
        for index in 0..PAIRS {
            let note = u8::try_from(index % 128).unwrap();
            // One message a packet: the test participant writes no delta times, which a
            // second command of a packet would need.
            alice.send_midi(&[0x90, note, 100]).await.unwrap();
            alice.send_midi(&[0x80, note, 0]).await.unwrap();
            // About 800 events a second: what is measured is the guard's input, not how
            // fast rtpmidid's room socket can take packets (the load benchmark's subject).
            if index % 2 == 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let receiver = receive_counting_gaps(&bob, 2 * PAIRS, Duration::from_secs(60));
    let ((), (received, gaps)) = tokio::join!(sender, receiver);
    let losses = Losses::read(&hub, &bob).since(losses_before);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(
        received,
        2 * PAIRS,
        "bob must hear every event alice played while the guard read nothing; where they were \
         lost: {losses}, {} packets rtpmidid sent never reached bob (RTP sequence gaps)\n{}",
        gaps.missing,
        hub.logs()
    );
    // The guard goes on: alice's next note still reaches bob.
    play(&alice, &[[0x90, 2, 1]], &[&bob]).await;
    hub.stop().await;
}

#[tokio::test]
async fn a_participant_from_outside_the_rooms_allow_list_is_never_wired() {
    let Some(rtpmidid) = rtpmidid_or_skip("a_participant_from_outside_the_allow_list") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let allow = "5434=127.0.0.1/32,127.0.0.3/32";
    let hub = Hub::start(&rtpmidid, "allow-list", 5434, &["--allow", allow]).await;
    let alice = join_from(hub.a, "alice", Ipv4Addr::new(127, 0, 0, 1)).await;
    let mallory = join_from(hub.a, "mallory", Ipv4Addr::new(127, 0, 0, 2)).await;
    let bob = join_from(hub.a, "bob", Ipv4Addr::new(127, 0, 0, 3)).await;
    hub.wait_for_links(2, "alice and bob (not mallory)").await;
    let status_says_refused = wait_until(WIRED_WITHIN, || {
        http_get(&hub.url("/status")).is_ok_and(|response| {
            let status: serde_json::Value =
                serde_json::from_str(&response.body).unwrap_or_default();
            status["refused"][0]["name"] == "mallory"
                && status["participants"]
                    .as_array()
                    .is_some_and(|p| p.len() == 2)
        })
    })
    .await;
    assert!(status_says_refused, "{}", hub.logs());
    // Settled: still two links, none of them mallory's.
    tokio::time::sleep(Duration::from_millis(500)).await;
    hub.wait_for_links(2, "mallory still unwired").await;

    play(&alice, &[[0x90, 60, 100]], &[&bob]).await;
    assert_silent(&mallory, "mallory hears nobody").await;
    mallory.send_midi(&[0x90, 61, 100]).await.unwrap();
    assert_silent(&alice, "nobody hears mallory").await;
    assert_silent(&bob, "nobody hears mallory").await;
    let metrics = http_get(&hub.url("/metrics")).unwrap().body;
    assert!(
        metrics.contains(&format!(
            "midihub_sidecar_refusals_total{{room=\"{}\"}} 1",
            hub.a
        )),
        "{metrics}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_panic_reaches_every_participant_of_every_room() {
    let Some(rtpmidid) = rtpmidid_or_skip("a_panic_reaches_every_participant") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let hub = Hub::start(&rtpmidid, "panic", 5444, &[]).await;
    let alice = join(hub.a, "alice").await;
    let bob = join(hub.a, "bob").await;
    let dave = join(hub.b, "dave").await;
    hub.wait_for_links(2, "alice and bob").await;
    play(&alice, &CHORD, &[&bob]).await;
    // The guard watches everyone once the sidecar has passed over them.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let answer = http_post(&hub.url("/panic")).unwrap();
    assert_eq!(answer.status, 202, "{answer:?}");
    // Per channel: sustain, sostenuto and soft pedal up, all notes off, reset controllers.
    let expected: Vec<Message> = (0..16u8)
        .flat_map(|channel| {
            [64, 66, 67, 123, 121].map(|controller| [0xB0 | channel, controller, 0])
        })
        .collect();
    for participant in [&alice, &bob, &dave] {
        let (received, _) = receive(participant, expected.len(), Duration::from_secs(5)).await;
        assert_eq!(
            received,
            expected,
            "{} must receive the panic\n{}",
            participant.name(),
            hub.logs()
        );
    }
    // Nothing is held after a panic: alice leaving sends nothing more.
    alice.leave().await.unwrap();
    hub.wait_for_links(0, "alice gone").await;
    assert_silent(&bob, "alice left after the panic").await;
    let metrics = http_get(&hub.url("/metrics")).unwrap().body;
    assert!(
        metrics.contains("midihub_sidecar_panics_total 1"),
        "{metrics}"
    );
    hub.stop().await;
}

/// rtpmidid's 60 s clock-sync timeout, the participant's last clock-sync interval (2 s) and the
/// VM's slowness.
const SILENT_DROPPED_WITHIN: Duration = Duration::from_secs(90);

#[tokio::test]
async fn a_participant_gone_silent_is_released_once_it_counts_as_gone() {
    let Some(rtpmidid) = rtpmidid_or_skip("a_participant_gone_silent") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let hub = Hub::start(&rtpmidid, "stuck-notes-silent", 5454, &[]).await;
    let alice = join(hub.a, "alice").await;
    let bob = join(hub.a, "bob").await;
    hub.wait_for_links(2, "alice and bob").await;
    play(&alice, &CHORD, &[&bob]).await;
    // No BY: its clock sync stops, as when a laptop closes.
    let silent_since = Instant::now();
    drop(alice);
    // bob keeps its own clock sync going meanwhile (its background task).
    let (received, at) = receive(&bob, CHORD_RELEASE.len(), Duration::from_secs(180)).await;
    assert_eq!(received, CHORD_RELEASE, "{}", hub.logs());
    // rtpmidid drops it 60 s after its last clock sync or the last move of its entry — bob's
    // join moved it, as here; rtpmidid 26.01 without images/rtpmidid-patches/0002 never does
    // then, and the sidecar's own rule (latency statistics emptied) takes about 120 s.
    let released_after = at - silent_since;
    eprintln!("a silent participant's notes were released {released_after:?} after it went silent");
    assert!(
        released_after < SILENT_DROPPED_WITHIN,
        "released {released_after:?} after alice went silent, not within \
         {SILENT_DROPPED_WITHIN:?}: does this rtpmidid lack images/rtpmidid-patches/0002?\n{}",
        hub.logs()
    );
    hub.stop().await;
}
