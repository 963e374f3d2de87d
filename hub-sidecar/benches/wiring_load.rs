//! Benchmark: notes through a wired room under load. N test participants in one room of the
//! real rtpmidid, wired by the hub-sidecar (local `--attach` mode), each play R notes a second
//! for a while; every participant counts exactly which note of which other player reached it,
//! so a lost note is seen, and the kernel's own counters say where it was lost. Two sizes —
//! 8 × 20 notes/s, which must lose nothing, and 16 × 50 — each with the sidecar's note guard
//! and allow-lists off, then on, in one run on one daemon (started again only if it dies,
//! which the output says): on a shared, emulated machine only figures from one run compare.
//!
//! Where a message is lost: a gap in the RTP sequence numbers a player receives is a packet
//! rtpmidid sent and the player never read (its socket's drops say whether the test process
//! was too slow); a message missing without a gap is one rtpmidid never sent (its room
//! sockets' drops, its sequencer client's failed allocations, its log and its exit say why).
//!
//! It prints its figures and asserts nothing, but for one thing: when 8 × 20 loses a note (or
//! cannot even be set up, rtpmidid dying meanwhile) it says so on a `FAIL:` line of its own and
//! exits with status 1. A phase that cannot be set up in three attempts is reported, not
//! measured.
//!
//! Needs `RTPMIDID_BIN` and `/dev/snd/seq` (run inside shared/alsa-vm, as the real-ALSA tier
//! does); prints why and exits 0 otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use midihub_api::HubPort;
use midihub_api::rtpmidid_config::alsa_client_name;
use midihub_tests::applemidi::{JoinOptions, Participant, ReceivedMidi, wire};
use midihub_tests::bench::{
    self, Footprint, SeqClientPools, SequenceGaps, percentile, seq_client_pools, udp_drops_by_port,
};
use midihub_tests::real_alsa::{
    Rtpmidid, aconnect_view, loopback, room, rtpmidid_or_skip, scratch_dir, status_json, wait_until,
};
use midihub_tests::sidecar::SidecarProcess;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// The room under load, and a second room whose notes must never reach it.
const ROOM: u16 = 5404;
const OTHER_ROOM: u16 = 5406;
const OTHER_ROOM_PLAYERS: usize = 2;
/// Player ids of the other room start here (the room under load has at most 16 players); an
/// id is coded in the notes a player sends.
const OTHER_ROOM_FIRST_ID: u8 = 16;
const SIDECAR_LISTEN: &str = "127.0.0.1:9184";
/// How long each player plays.
const PLAY_FOR: Duration = Duration::from_secs(10);
/// After the last note is sent, the count ends when every message has arrived, or once
/// nothing has arrived for this long…
const QUIET_FOR: Duration = Duration::from_secs(3);
/// …or after this long at most.
const DRAIN_AT_MOST: Duration = Duration::from_secs(10);
/// How long the sidecar may take to wire every participant.
const WIRED_WITHIN: Duration = Duration::from_secs(30);
/// The load that must lose nothing, then the one reported.
const MUST_PASS: Load = Load {
    players: 8,
    notes_per_second: 20,
};
const REPORTED: Load = Load {
    players: 16,
    notes_per_second: 50,
};

fn main() {
    let Some(rtpmidid) = rtpmidid_or_skip("wiring_load") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let must_pass_failures = runtime.block_on(run(rtpmidid));
    if !must_pass_failures.is_empty() {
        for failure in must_pass_failures {
            println!(
                "FAIL: {} players x {} notes/s {failure}; it must lose none",
                MUST_PASS.players, MUST_PASS.notes_per_second,
            );
        }
        std::process::exit(1);
    }
}

/// Players in the room under load, and the notes a second each plays.
#[derive(Clone, Copy, Debug)]
struct Load {
    players: usize,
    notes_per_second: u32,
}

impl Load {
    fn notes_each(self) -> u32 {
        (f64::from(self.notes_per_second) * PLAY_FOR.as_secs_f64()).round() as u32
    }

    fn period(self) -> Duration {
        Duration::from_secs(1) / self.notes_per_second
    }
}

/// The sidecar's settings compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Config {
    /// `--note-guard off`, no allow-list: the wiring alone.
    Bare,
    /// `--note-guard on` and each room's allow-list admitting the test participants
    /// (127.0.0.0/8).
    Guarded,
}

impl Config {
    fn label(self) -> &'static str {
        match self {
            Config::Bare => "guard off, no allow-list",
            Config::Guarded => "guard on, allow-lists",
        }
    }

    /// The sidecar's arguments before its subcommand (global flags), and after `local --attach
    /// SOCKET`.
    fn sidecar_args(self, guard_flag: bool) -> (Vec<String>, Vec<String>) {
        let guard = |state: &str| {
            if guard_flag {
                vec!["--note-guard".to_string(), state.to_string()]
            } else {
                Vec::new()
            }
        };
        match self {
            Config::Bare => (guard("off"), Vec::new()),
            Config::Guarded => (
                guard("on"),
                [ROOM, OTHER_ROOM]
                    .iter()
                    .flat_map(|port| ["--allow".to_string(), format!("{port}=127.0.0.0/8")])
                    .collect(),
            ),
        }
    }
}

/// Runs every phase and prints the figures; returns how the must-pass load failed, if it did.
async fn run(rtpmidid: PathBuf) -> Vec<String> {
    let started = Instant::now();
    let sidecar_binary = Path::new(env!("CARGO_BIN_EXE_hub-sidecar"));
    let guard_flag = has_note_guard_flag(sidecar_binary);
    print_setup(guard_flag);

    let dir = scratch_dir("bench-wiring-load");
    let ports = vec![room(ROOM, "load"), room(OTHER_ROOM, "other")];
    let client = alsa_client_name(&ports);
    let daemon = Rtpmidid::start(&rtpmidid, &dir, "bench", &ports).await;
    let mut hub = Hub {
        daemon,
        rtpmidid,
        ports,
        client,
        sidecar_binary,
        guard_flag,
        dir: dir.clone(),
    };

    let mut results = Vec::new();
    let mut not_run = Vec::new();
    for load in [MUST_PASS, REPORTED] {
        for config in [Config::Bare, Config::Guarded] {
            eprintln!(
                "playing {} x {} notes/s, {}",
                load.players,
                load.notes_per_second,
                config.label()
            );
            match run_phase(&mut hub, load, config).await {
                Ok(result) => results.push(result),
                Err(failure) => not_run.push((load, config, failure)),
            }
        }
    }
    hub.daemon.stop().await;

    println!();
    print_results(&results, guard_flag);
    for (load, config, failure) in &not_run {
        println!(
            "NOT MEASURED: {} x {} notes/s, {}: {failure}",
            load.players,
            load.notes_per_second,
            config.label()
        );
    }
    println!("whole run: {:.0} s", started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
    let is_must_pass = |load: &Load| {
        load.players == MUST_PASS.players && load.notes_per_second == MUST_PASS.notes_per_second
    };
    let lost = results
        .iter()
        .filter(|result| is_must_pass(&result.load))
        .filter_map(|result| {
            let lost = result.room.lost_notes() + result.other_room.lost_notes();
            (lost > 0).then(|| format!("with {} lost {lost} notes", result.config.label()))
        });
    let not_measured = not_run
        .iter()
        .filter(|(load, _, _)| is_must_pass(load))
        .map(|(_, config, _)| format!("with {} could not be set up", config.label()));
    lost.chain(not_measured).collect()
}

/// Whether this build's sidecar has the global `--note-guard <on|off>` flag.
fn has_note_guard_flag(binary: &Path) -> bool {
    std::process::Command::new(binary)
        .arg("--help")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("--note-guard"))
}

fn print_setup(guard_flag: bool) {
    bench::print_host_facts("wiring_load");
    println!(
        "one real rtpmidid; room {ROOM} under load, room {OTHER_ROOM} with {OTHER_ROOM_PLAYERS} \
         players at the same rate (none of its notes may reach room {ROOM}); the hub-sidecar \
         wires both (local --attach)"
    );
    println!(
        "a note = note-on + note-off (2 MIDI messages: each packet a player sends carries the \
         previous note's off and the next note's on; rtpmidid forwards each message in a packet \
         of its own to every other player of the room); every note is unique per (player, \
         number), so each player counts exactly what reached it"
    );
    println!(
        "each player plays rate x {} s notes, paced by a tokio interval with \
         MissedTickBehavior::Delay (after a late tick the next comes a period later: a stall of \
         the test VM stretches the play instead of ending in a burst of every player's missed \
         notes at once, which would be the VM's doing, not a musician's), the players' ticks \
         spread evenly over one period",
        PLAY_FOR.as_secs()
    );
    if guard_flag {
        println!("guard: --note-guard off / on");
    } else {
        println!(
            "guard: not available in this build (hub-sidecar --help has no --note-guard); \
             \"guard on\" runs with the allow-lists alone"
        );
    }
}

/// What every phase runs against: one rtpmidid, restarted only if it died.
struct Hub {
    daemon: Rtpmidid,
    rtpmidid: PathBuf,
    ports: Vec<HubPort>,
    client: String,
    sidecar_binary: &'static Path,
    guard_flag: bool,
    dir: PathBuf,
}

impl Hub {
    /// How rtpmidid exited, if it has; a dead daemon is started again for the next phase.
    async fn check_daemon(&mut self) -> Option<String> {
        let status = self.daemon.exit_status()?;
        let log = self.daemon.log_text();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        eprintln!(
            "rtpmidid died ({status}); its log ended:\n{}\nstarting it again",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        self.daemon = Rtpmidid::start(&self.rtpmidid, &self.dir, "bench", &self.ports).await;
        Some(status.to_string())
    }
}

/// One test participant and the id coded in its notes.
struct Player {
    id: u8,
    room: u16,
    participant: Participant,
}

impl Player {
    fn in_room(id: u8) -> u16 {
        if id < OTHER_ROOM_FIRST_ID {
            ROOM
        } else {
            OTHER_ROOM
        }
    }
}

/// Starts the sidecar with `config`, joins every player and waits until the sidecar has wired
/// them; says what went wrong otherwise.
async fn set_up(
    hub: &Hub,
    load: Load,
    config: Config,
) -> Result<(SidecarProcess, Vec<Player>), String> {
    let (before_flag, after_attach) = config.sidecar_args(hub.guard_flag);
    let label = format!(
        "{}x{}-{}",
        load.players,
        load.notes_per_second,
        if config == Config::Bare {
            "bare"
        } else {
            "guarded"
        }
    );
    let sidecar = SidecarProcess::command(
        hub.sidecar_binary,
        hub.dir.join(format!("sidecar-{label}.log")),
    )
    .args(["--listen", SIDECAR_LISTEN])
    .args(before_flag)
    .args(["local", "--attach"])
    .arg(&hub.daemon.control_socket)
    .args(after_attach)
    .env("RUST_LOG", "info")
    .spawn();

    let mut players = Vec::new();
    let ids = (0..load.players as u8)
        .map(|id| (id, ROOM, format!("load-{id}")))
        .chain(
            (OTHER_ROOM_FIRST_ID..OTHER_ROOM_FIRST_ID + OTHER_ROOM_PLAYERS as u8)
                .map(|id| (id, OTHER_ROOM, format!("other-{id}"))),
        );
    for (id, room, name) in ids {
        match Participant::join(loopback(room), &name, JoinOptions::default()).await {
            Ok(participant) => players.push(Player {
                id,
                room,
                participant,
            }),
            Err(error) => {
                let (_, log) = sidecar.terminate().await;
                return Err(format!(
                    "{name} cannot join room {room}: {error}; the sidecar's warnings: {}",
                    notable(&log).join(" | ")
                ));
            }
        }
    }
    let links = load.players * (load.players - 1) + OTHER_ROOM_PLAYERS * (OTHER_ROOM_PLAYERS - 1);
    let wired = wait_until(WIRED_WITHIN, || {
        aconnect_view(&hub.client).is_some_and(|view| view.internal_links.len() == links)
    })
    .await;
    if !wired {
        let (_, log) = sidecar.terminate().await;
        for player in players {
            let _ = player.participant.leave().await;
        }
        return Err(format!(
            "the sidecar did not wire {links} links within {WIRED_WITHIN:?}; its warnings: {}",
            notable(&log).join(" | ")
        ));
    }
    Ok((sidecar, players))
}

/// The lines of a sidecar's log worth showing: warnings, errors, and the subscriptions it
/// removed itself (a link removed while the players play loses their packets until it is
/// made again).
fn notable(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains("ERROR") || line.contains("WARN") || line.contains(" unwired"))
        .map(str::to_string)
        .collect()
}

/// How often a phase's set-up (sidecar, joins, wiring) is tried before the benchmark gives up.
const SETUP_ATTEMPTS: usize = 3;

async fn run_phase(hub: &mut Hub, load: Load, config: Config) -> Result<PhaseResult, String> {
    let mut setup_failures = Vec::new();
    let mut attempts = 0;
    let (sidecar, players) = loop {
        attempts += 1;
        // A daemon that died since (after the last phase, or in a failed set-up) starts again.
        if let Some(status) = hub.check_daemon().await {
            setup_failures.push(format!("rtpmidid had died ({status})"));
        }
        match set_up(hub, load, config).await {
            Ok(ready) => break ready,
            Err(failure) if attempts < SETUP_ATTEMPTS => {
                eprintln!("set-up failed, trying again: {failure}");
                setup_failures.push(failure);
            }
            Err(failure) => {
                return Err(format!(
                    "set-up failed {SETUP_ATTEMPTS} times, the last: {failure}"
                ));
            }
        }
    };

    let log_before = hub.daemon.log_text().len();
    let udp_before = udp_drops_by_port();
    let pools_before = seq_client_pools();
    let players: Vec<Arc<Player>> = players.into_iter().map(Arc::new).collect();
    let rtpmidid_pid = hub.daemon.pid().expect("rtpmidid runs");
    let ((((heard, footprint), rtpmidid_footprint), bench_footprint), rtpmidid_pause) =
        Pause::measure(
            rtpmidid_pid,
            Footprint::measure(
                std::process::id(),
                Footprint::measure(
                    rtpmidid_pid,
                    Footprint::measure(sidecar.pid(), play(&players, load)),
                ),
            ),
        )
        .await;
    let rtpmidid_died = hub.check_daemon().await;
    let room_ssrcs: BTreeSet<u64> = players
        .iter()
        .filter(|player| player.room == ROOM)
        .map(|player| u64::from(player.participant.ssrc()))
        .collect();
    let router = status_json(&hub.daemon.control_socket)
        .await
        .map(|status| RouterCounts::of(&status, &room_ssrcs));
    let udp_after = udp_drops_by_port();
    let pools_after = seq_client_pools();
    let rtpmidid_log = hub.daemon.log_text();
    let new_log = rtpmidid_log.get(log_before..).unwrap_or_default();

    let room_ports = [ROOM, ROOM + 1, OTHER_ROOM, OTHER_ROOM + 1];
    let hub_socket_drops = room_ports
        .iter()
        .map(|port| {
            udp_after
                .get(port)
                .copied()
                .unwrap_or(0)
                .saturating_sub(udp_before.get(port).copied().unwrap_or(0))
        })
        .sum();
    // The players' sockets are new in this phase: what they dropped, they dropped now.
    let player_socket_drops = players
        .iter()
        .flat_map(|player| {
            let control = player.participant.local_control_port();
            [control, control + 1]
        })
        .map(|port| udp_after.get(&port).copied().unwrap_or(0))
        .sum();
    let pool_failures = |name_matches: &dyn Fn(&str) -> bool| -> (u64, u64) {
        let failures = |pools: &BTreeMap<String, SeqClientPools>| -> u64 {
            pools
                .iter()
                .filter(|(name, _)| name_matches(name))
                .map(|(_, pools)| pools.input.alloc_failures + pools.output.alloc_failures)
                .sum()
        };
        let peak = pools_after
            .iter()
            .filter(|(name, _)| name_matches(name))
            .map(|(_, pools)| pools.input.peak_in_use)
            .max()
            .unwrap_or(0);
        (
            failures(&pools_after).saturating_sub(failures(&pools_before)),
            peak,
        )
    };
    let (rtpmidid_alsa_lost, rtpmidid_input_peak) = pool_failures(&|name| name == hub.client);
    let (sidecar_alsa_lost, _) = pool_failures(&|name| name.starts_with("midihub"));
    let rtpmidid_input_size = pools_after
        .get(&hub.client)
        .map_or(0, |pools| pools.input.size);
    // Without Avahi in the VM, rtpmidid retries it every 30 s with an error: not ours.
    let log_problems: Vec<String> = new_log
        .lines()
        .filter(|line| line.contains("[ERROR]") || line.contains("[WARN"))
        .filter(|line| !line.contains("mdns_rtpmidi"))
        .map(str::to_string)
        .collect();

    for player in players {
        let player = Arc::try_unwrap(player)
            .ok()
            .expect("the phase's tasks are done");
        let _ = player.participant.leave().await;
    }
    let (_, sidecar_log) = sidecar.terminate().await;
    // `aconnect -l` leaves out a client without ports: rtpmidid, once every player has left.
    let unwired = wait_until(Duration::from_secs(15), || {
        aconnect_view(&hub.client).is_none_or(|view| view.internal_links.is_empty())
    })
    .await;
    assert!(
        unwired,
        "rtpmidid kept the players' links after they left: {:?}",
        aconnect_view(&hub.client)
    );
    let sidecar_problems = notable(&sidecar_log);

    Ok(PhaseResult {
        load,
        config,
        room: heard.in_room(ROOM),
        other_room: heard.in_room(OTHER_ROOM),
        crossed: heard.receivers.iter().map(|heard| heard.crossed).sum(),
        rtp_gaps: heard
            .receivers
            .iter()
            .map(|heard| heard.rtp_gaps.missing)
            .sum(),
        player_socket_drops,
        hub_socket_drops,
        router,
        rtpmidid_alsa_lost,
        rtpmidid_input_peak,
        rtpmidid_input_size,
        sidecar_alsa_lost,
        log_problems,
        sidecar_problems,
        send_lateness: heard.send_lateness,
        read_lags: heard
            .receivers
            .iter()
            .flat_map(|heard| heard.read_lags.iter().copied())
            .collect(),
        send_errors: heard.send_errors,
        footprint,
        rtpmidid_footprint,
        bench_footprint,
        rtpmidid_pause,
        rtpmidid_died,
        setup_failures,
    })
}

/// When each note-on was sent, per player id and note number, in nanoseconds since `origin`
/// (0: not sent). Shared by the senders and receivers without a lock.
struct SendTimes {
    origin: Instant,
    by_player: Vec<Vec<AtomicU64>>,
}

impl SendTimes {
    fn new(notes_each: u32) -> SendTimes {
        let players = usize::from(OTHER_ROOM_FIRST_ID) + OTHER_ROOM_PLAYERS;
        SendTimes {
            origin: Instant::now(),
            by_player: (0..players)
                .map(|_| (0..notes_each).map(|_| AtomicU64::new(0)).collect())
                .collect(),
        }
    }

    fn record(&self, note: Note) {
        let nanos = self.origin.elapsed().as_nanos() as u64 + 1;
        if let Some(slot) = self.slot(note) {
            slot.store(nanos, Ordering::Relaxed);
        }
    }

    fn sent_at(&self, note: Note) -> Option<Instant> {
        match self.slot(note)?.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(self.origin + Duration::from_nanos(nanos - 1)),
        }
    }

    fn slot(&self, note: Note) -> Option<&AtomicU64> {
        self.by_player
            .get(usize::from(note.player))?
            .get(usize::from(note.number))
    }
}

/// One note of one player: `number` counts its notes from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Note {
    player: u8,
    number: u16,
}

impl Note {
    /// The highest note number [`Note::on`] can code: 64 × 127 codes per player.
    const MAX_NUMBER: u16 = 64 * 127 - 1;

    /// The note-on of this note: the player's id in the channel (low 4 bits) and in bit 6 of
    /// the key, the number in the rest of the key and in the velocity (1..=127, never the 0
    /// that would make it a note-off).
    fn on(self) -> [u8; 3] {
        self.message(0x90)
    }

    /// The note-off, coded as the note-on.
    fn off(self) -> [u8; 3] {
        self.message(0x80)
    }

    fn message(self, status: u8) -> [u8; 3] {
        debug_assert!(self.number <= Note::MAX_NUMBER && self.player < 32);
        [
            status | (self.player & 0x0F),
            ((self.player >> 4) << 6) | (self.number / 127) as u8,
            (self.number % 127 + 1) as u8,
        ]
    }

    /// The note and whether it is its note-on, from a message [`Note::on`] or [`Note::off`]
    /// made.
    fn decode(message: &[u8]) -> Option<(Note, bool)> {
        let [status, key, velocity] = *message else {
            return None;
        };
        let on = match status & 0xF0 {
            0x90 => true,
            0x80 => false,
            _ => return None,
        };
        if velocity == 0 || key >= 0x80 || velocity >= 0x80 {
            return None;
        }
        let player = (status & 0x0F) | ((key >> 6) << 4);
        let number = u16::from(key & 0x3F) * 127 + u16::from(velocity) - 1;
        Some((Note { player, number }, on))
    }
}

/// What one player heard.
#[derive(Default)]
struct Heard {
    id: u8,
    room: u16,
    /// Each (note, is note-on) heard, once.
    messages: HashSet<(Note, bool)>,
    duplicates: u64,
    /// Messages from outside its room (or its own): the wiring crossed rooms.
    crossed: u64,
    /// Messages that are none of the players' notes.
    unreadable: u64,
    /// Packets missing between the RTP sequence numbers of those that arrived: the hub sent
    /// them and they were lost on the way (the player's socket, or rtpmidid's send).
    rtp_gaps: SequenceGaps,
    /// From the send of a note-on to its arrival at the player's socket.
    latencies: Vec<Duration>,
    /// From a packet's arrival at the player's socket to its count here: the test process's
    /// own lag.
    read_lags: Vec<Duration>,
}

impl Heard {
    /// Counts a packet; returns how many of its messages were new.
    fn count(&mut self, received: ReceivedMidi, send_times: &SendTimes) -> u64 {
        let mut new = 0;
        let counted_at = Instant::now();
        self.read_lags.push(counted_at - received.at);
        self.rtp_gaps.observe(received.packet.sequence);
        for message in wire::messages(&received.packet.commands) {
            let Some((note, on)) = Note::decode(message) else {
                self.unreadable += 1;
                continue;
            };
            if Player::in_room(note.player) != self.room || note.player == self.id {
                self.crossed += 1;
                continue;
            }
            if !self.messages.insert((note, on)) {
                self.duplicates += 1;
                continue;
            }
            new += 1;
            if on && let Some(sent) = send_times.sent_at(note) {
                self.latencies
                    .push(received.at.saturating_duration_since(sent));
            }
        }
        new
    }
}

/// What one phase's playing gave.
struct Played {
    receivers: Vec<Heard>,
    /// Notes each player id sent (note-on and note-off both sent).
    sent: BTreeMap<u8, u64>,
    /// The messages sent in packets whose RTP sequence number spells an AppleMIDI command code
    /// (`wire::spells_a_command`), which rtpmidid 26.01 without midihub's patch drops.
    numbered_like_a_command: HashSet<(Note, bool)>,
    send_errors: u64,
    /// How late each tick's send was, after the tick's due time.
    send_lateness: Vec<Duration>,
}

impl Played {
    fn in_room(&self, room: u16) -> RoomTally {
        let mut tally = RoomTally::default();
        let senders: Vec<u8> = self
            .sent
            .keys()
            .copied()
            .filter(|id| Player::in_room(*id) == room)
            .collect();
        tally.players = senders.len();
        tally.sent = senders.iter().map(|id| self.sent[id]).sum();
        for heard in self.receivers.iter().filter(|heard| heard.room == room) {
            let expected: u64 = senders
                .iter()
                .filter(|id| **id != heard.id)
                .map(|id| self.sent[id])
                .sum();
            let complete = heard
                .messages
                .iter()
                .filter(|(note, on)| *on && heard.messages.contains(&(*note, false)))
                .count() as u64;
            tally.expected += expected;
            tally.received += complete;
            tally.missing_messages += 2 * expected - heard.messages.len() as u64;
            tally.missing_numbered_like_a_command += self
                .numbered_like_a_command
                .iter()
                .filter(|(note, _)| note.player != heard.id && senders.contains(&note.player))
                .filter(|message| !heard.messages.contains(message))
                .count() as u64;
            tally.duplicates += heard.duplicates + heard.unreadable;
            let mut missing = senders
                .iter()
                .filter(|id| **id != heard.id)
                .flat_map(|id| {
                    (0..self.sent[id] as u16).map(|number| Note {
                        player: *id,
                        number,
                    })
                })
                .filter(|note| {
                    !heard.messages.contains(&(*note, true))
                        || !heard.messages.contains(&(*note, false))
                })
                .peekable();
            if missing.peek().is_some() {
                tally.receivers_missing += 1;
            }
            for note in missing {
                tally.missing_span = Some(match tally.missing_span {
                    None => (note.number, note.number),
                    Some((first, last)) => (first.min(note.number), last.max(note.number)),
                });
            }
            tally.latencies.extend(heard.latencies.iter().copied());
        }
        tally
    }
}

/// Notes of one room: sent by its players, expected and received over all its receivers.
#[derive(Default)]
struct RoomTally {
    players: usize,
    sent: u64,
    expected: u64,
    /// Notes whose note-on and note-off both arrived.
    received: u64,
    missing_messages: u64,
    /// Of those, the messages of packets numbered like a command (see `Played`).
    missing_numbered_like_a_command: u64,
    /// The lowest and highest number of a note missing somewhere, and at how many receivers
    /// something is missing: losses at the very end would mean the count stopped too early.
    missing_span: Option<(u16, u16)>,
    receivers_missing: usize,
    duplicates: u64,
    latencies: Vec<Duration>,
}

impl RoomTally {
    fn lost_notes(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }
}

/// rtpmidid's own counters (the `stats` of its `status` router entries) summed over the players
/// of room [`ROOM`] at the end of a phase (their entries are new in each phase): which of its
/// steps a message that never left it did not pass.
#[derive(Clone, Copy, Debug, Default)]
struct RouterCounts {
    /// Messages parsed from the players' packets (their network entries' `sent`).
    parsed: u64,
    /// Their ALSA entries' `recv`: messages given to be written to the sequencer. rtpmidid
    /// 26.01 counts each twice here (the router and `local_alsa_peer_t::send_midi` both add one).
    to_sequencer: u64,
    /// Their ALSA entries' `sent`: messages read back from the sequencer at the players' ports.
    from_sequencer: u64,
    /// Their network entries' `recv`: messages given to be sent to the players.
    to_network: u64,
}

impl RouterCounts {
    /// The counters of the participants whose SSRC is in `ssrcs`, from a raw `status` result.
    fn of(status: &serde_json::Value, ssrcs: &BTreeSet<u64>) -> RouterCounts {
        let entries = status["router"].as_array().cloned().unwrap_or_default();
        let by_id = |id: &serde_json::Value| entries.iter().find(|entry| entry["id"] == *id);
        let count =
            |entry: &serde_json::Value, key: &str| entry["stats"][key].as_u64().unwrap_or(0);
        let mut counts = RouterCounts::default();
        for network in entries.iter().filter(|entry| {
            entry["type"] == "network_rtpmidi_peer_t"
                && entry["peer"]["remote"]["ssrc"]
                    .as_u64()
                    .is_some_and(|ssrc| ssrcs.contains(&ssrc))
        }) {
            counts.parsed += count(network, "sent");
            counts.to_network += count(network, "recv");
            let alsa = network["send_to"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(by_id)
                .find(|entry| entry["type"] == "local_alsa_peer_t");
            if let Some(alsa) = alsa {
                counts.to_sequencer += count(alsa, "recv");
                counts.from_sequencer += count(alsa, "sent");
            }
        }
        counts
    }

    fn print(&self, room: &RoomTally) {
        // Each note is two messages; each is written once and read back at every other player.
        let played = 2 * room.sent;
        let fanned_out = 2 * room.expected;
        println!(
            "  rtpmidid's router counters, room {ROOM}: parsed {} of {played} messages played, \
             gave {} to the sequencer (counted twice: {} expected), read back {} of {fanned_out}, \
             gave {} of {fanned_out} to the network",
            self.parsed,
            self.to_sequencer,
            2 * played,
            self.from_sequencer,
            self.to_network
        );
    }
}

/// Every player plays and listens; returns once the senders are done and the receivers have
/// heard nothing for [`QUIET_FOR`] (or [`DRAIN_AT_MOST`] passed).
async fn play(players: &[Arc<Player>], load: Load) -> Played {
    let notes_each = load.notes_each();
    assert!(notes_each <= u32::from(Note::MAX_NUMBER) + 1);
    let send_times = Arc::new(SendTimes::new(notes_each));
    let packets_heard = Arc::new(AtomicU64::new(0));
    let messages_heard = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);

    let receivers: Vec<_> = players
        .iter()
        .map(|player| {
            let player = player.clone();
            let send_times = send_times.clone();
            let packets_heard = packets_heard.clone();
            let messages_heard = messages_heard.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let mut heard = Heard {
                    id: player.id,
                    room: player.room,
                    ..Heard::default()
                };
                loop {
                    tokio::select! {
                        received = player.participant.recv_midi_packet(Duration::from_secs(3600)) => {
                            match received {
                                Ok(Some(received)) => {
                                    let new = heard.count(received, &send_times);
                                    packets_heard.fetch_add(1, Ordering::Relaxed);
                                    messages_heard.fetch_add(new, Ordering::Relaxed);
                                }
                                Ok(None) => {}
                                Err(error) => {
                                    eprintln!("player {} stopped hearing: {error}", player.id);
                                    return heard;
                                }
                            }
                        }
                        _ = stopped.changed() => return heard,
                    }
                }
            })
        })
        .collect();

    // Start a moment from now, each player's ticks shifted by its share of one period.
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let period = load.period();
    let senders: Vec<_> = players
        .iter()
        .enumerate()
        .map(|(index, player)| {
            let player = player.clone();
            let send_times = send_times.clone();
            let phase = period * index as u32 / players.len() as u32;
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval_at(start + phase, period);
                ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let mut lateness = Vec::with_capacity(notes_each as usize);
                let mut sent = 0;
                let mut errors = 0;
                let mut numbered_like_a_command = Vec::new();
                let mut previous: Option<Note> = None;
                for number in 0..notes_each as u16 {
                    let due = ticker.tick().await;
                    lateness.push(due.elapsed());
                    let note = Note {
                        player: player.id,
                        number,
                    };
                    let mut packet = Vec::with_capacity(7);
                    if let Some(previous) = previous {
                        // The previous note's off, a zero delta time, this note's on.
                        packet.extend_from_slice(&previous.off());
                        packet.push(0x00);
                    }
                    packet.extend_from_slice(&note.on());
                    send_times.record(note);
                    if wire::spells_a_command(player.participant.next_sequence()) {
                        numbered_like_a_command.extend(previous.map(|previous| (previous, false)));
                        numbered_like_a_command.push((note, true));
                    }
                    match player.participant.send_midi(&packet).await {
                        Ok(()) if previous.is_some() => sent += 1,
                        Ok(()) => {}
                        Err(_) => errors += 1,
                    }
                    previous = Some(note);
                }
                ticker.tick().await;
                if let Some(last) = previous {
                    if wire::spells_a_command(player.participant.next_sequence()) {
                        numbered_like_a_command.push((last, false));
                    }
                    match player.participant.send_midi(&last.off()).await {
                        Ok(()) => sent += 1,
                        Err(_) => errors += 1,
                    }
                }
                (player.id, sent, errors, lateness, numbered_like_a_command)
            })
        })
        .collect();

    let mut played = Played {
        receivers: Vec::new(),
        sent: BTreeMap::new(),
        numbered_like_a_command: HashSet::new(),
        send_errors: 0,
        send_lateness: Vec::new(),
    };
    for sender in senders {
        let (id, sent, errors, lateness, numbered_like_a_command) = sender.await.unwrap();
        played.sent.insert(id, sent);
        played
            .numbered_like_a_command
            .extend(numbered_like_a_command);
        played.send_errors += errors;
        played.send_lateness.extend(lateness);
    }

    let expected_messages: u64 = players
        .iter()
        .map(|receiver| {
            played
                .sent
                .iter()
                .filter(|(id, _)| **id != receiver.id && Player::in_room(**id) == receiver.room)
                .map(|(_, notes)| 2 * notes)
                .sum::<u64>()
        })
        .sum();
    let drain_until = Instant::now() + DRAIN_AT_MOST;
    let mut last_count = packets_heard.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while Instant::now() < drain_until
        && quiet_since.elapsed() < QUIET_FOR
        && messages_heard.load(Ordering::Relaxed) < expected_messages
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let count = packets_heard.load(Ordering::Relaxed);
        if count != last_count {
            last_count = count;
            quiet_since = Instant::now();
        }
    }
    let _ = stop.send(true);
    for receiver in receivers {
        played.receivers.push(receiver.await.unwrap());
    }
    played
}

/// rtpmidid's longest pause while the players play: the longest time its CPU time did not
/// grow, sampled every 50 ms, and whether it was waiting for a CPU (runnable) or for something
/// else (asleep, and where in the kernel; or dead), and how busy the machine's CPUs were
/// meanwhile: a whole VM that stalls shows as a pause of everything on an idle machine.
#[derive(Clone, Debug, Default)]
struct Pause {
    longest: Duration,
    runnable_samples: usize,
    sleeping_samples: usize,
    /// The kernel function it slept in most often during the pause.
    wchan: String,
    /// The machine's CPUs' busy share during the pause, in percent.
    machine_busy_percent: f64,
}

impl Pause {
    /// Samples process `pid` while `work` runs.
    async fn measure<T>(pid: u32, work: impl std::future::Future<Output = T>) -> (T, Pause) {
        let (stop, mut stopped) = watch::channel(false);
        let sampler = tokio::spawn(async move {
            let mut longest = Pause::default();
            let mut ticks = bench::process_cpu_ticks(pid);
            let mut since = Instant::now();
            let mut machine_since = machine_ticks();
            let mut states: Vec<(char, String)> = Vec::new();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stopped.changed() => return longest,
                }
                let now_ticks = bench::process_cpu_ticks(pid);
                if now_ticks != ticks {
                    ticks = now_ticks;
                    since = Instant::now();
                    machine_since = machine_ticks();
                    states.clear();
                    continue;
                }
                let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|stat| {
                        stat.rsplit_once(") ")
                            .and_then(|(_, rest)| rest.chars().next())
                    })
                    .unwrap_or('?');
                let wchan =
                    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
                states.push((state, wchan));
                if since.elapsed() > longest.longest {
                    let (busy, total) = machine_ticks();
                    let busy = busy.saturating_sub(machine_since.0) as f64;
                    let total = total.saturating_sub(machine_since.1).max(1) as f64;
                    let mut wchans: BTreeMap<&str, usize> = BTreeMap::new();
                    for (_, wchan) in states.iter().filter(|(state, _)| *state != 'R') {
                        *wchans.entry(wchan.as_str()).or_default() += 1;
                    }
                    longest = Pause {
                        longest: since.elapsed(),
                        runnable_samples: states.iter().filter(|(state, _)| *state == 'R').count(),
                        sleeping_samples: states.iter().filter(|(state, _)| *state != 'R').count(),
                        wchan: wchans
                            .into_iter()
                            .max_by_key(|(_, count)| *count)
                            .map_or(String::new(), |(wchan, _)| wchan.to_string()),
                        machine_busy_percent: busy * 100.0 / total,
                    };
                }
            }
        });
        let output = work.await;
        let _ = stop.send(true);
        (output, sampler.await.unwrap_or_default())
    }
}

/// The machine's busy and total CPU ticks so far, from the first line of /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait are the 4th and 5th.
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// One phase's figures.
struct PhaseResult {
    load: Load,
    config: Config,
    room: RoomTally,
    other_room: RoomTally,
    crossed: u64,
    rtp_gaps: u64,
    player_socket_drops: u64,
    hub_socket_drops: u64,
    /// rtpmidid's own counters for the room's players (`None`: it did not answer).
    router: Option<RouterCounts>,
    rtpmidid_alsa_lost: u64,
    rtpmidid_input_peak: u64,
    rtpmidid_input_size: u64,
    sidecar_alsa_lost: u64,
    log_problems: Vec<String>,
    sidecar_problems: Vec<String>,
    send_lateness: Vec<Duration>,
    read_lags: Vec<Duration>,
    send_errors: u64,
    footprint: Footprint,
    rtpmidid_footprint: Footprint,
    /// This benchmark's own process: the players.
    bench_footprint: Footprint,
    rtpmidid_pause: Pause,
    /// How rtpmidid exited, if it died while the players played.
    rtpmidid_died: Option<String>,
    /// Set-ups that failed before this phase's (and why).
    setup_failures: Vec<String>,
}

impl PhaseResult {
    fn title(&self) -> String {
        format!(
            "{} x {} notes/s, {}",
            self.load.players,
            self.load.notes_per_second,
            self.config.label()
        )
    }

    /// Messages the hub never sent: missing at the players without a gap in the RTP sequence
    /// numbers of what it sent them.
    fn never_sent(&self) -> u64 {
        self.missing_messages().saturating_sub(self.rtp_gaps)
    }

    fn missing_messages(&self) -> u64 {
        self.room.missing_messages + self.other_room.missing_messages
    }

    /// Missing messages that were in packets numbered like a command (see `Played`).
    fn missing_numbered_like_a_command(&self) -> u64 {
        self.room.missing_numbered_like_a_command + self.other_room.missing_numbered_like_a_command
    }
}

fn ms(value: Option<Duration>) -> String {
    value.map_or("-".to_string(), |value| {
        format!("{:.1}", value.as_secs_f64() * 1000.0)
    })
}

fn print_results(results: &[PhaseResult], guard_flag: bool) {
    println!(
        "room {ROOM}: notes sent by its players, expected and received over all its players \
         (each hears every other), latency from a note-on's send to its reading by the \
         player's socket task"
    );
    println!(
        "{:<26} {:>7} {:>7} {:>6} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>13} {:>11}",
        "config",
        "players",
        "notes/s",
        "sent",
        "expected",
        "received",
        "lost",
        "lost %",
        "p50 ms",
        "p99 ms",
        "sidecar CPU %",
        "sidecar MiB"
    );
    for result in results {
        let room = &result.room;
        let label = if guard_flag || result.config == Config::Bare {
            result.config.label().to_string()
        } else {
            "guard n/a, allow-lists".to_string()
        };
        println!(
            "{:<26} {:>7} {:>7} {:>6} {:>8} {:>8} {:>6} {:>7.2} {:>7} {:>7} {:>13.1} {:>11.1}",
            label,
            room.players,
            result.load.notes_per_second,
            room.sent,
            room.expected,
            room.received,
            room.lost_notes(),
            room.lost_notes() as f64 * 100.0 / room.expected.max(1) as f64,
            ms(percentile(&room.latencies, 0.50)),
            ms(percentile(&room.latencies, 0.99)),
            result.footprint.cpu_percent(),
            result.footprint.rss_max_kib as f64 / 1024.0,
        );
    }
    println!();
    println!("where messages were lost (a note is 2 messages; counts over all receivers)");
    for result in results {
        println!("{}:", result.title());
        println!(
            "  missing at the players: {} messages, {} of them in packets whose RTP sequence \
             number spells an AppleMIDI command (rtpmidid 26.01 without midihub's patch drops \
             those); duplicates or unreadable: {}",
            result.missing_messages(),
            result.missing_numbered_like_a_command(),
            result.room.duplicates + result.other_room.duplicates
        );
        if let Some((first, last)) = result.room.missing_span {
            println!(
                "  room {ROOM}: notes missing at {} of {} players, their numbers between {first} \
                 and {last} (each player plays 0..{})",
                result.room.receivers_missing,
                result.room.players,
                result.load.notes_each() - 1
            );
        }
        println!(
            "  the hub never sent: {} (no RTP sequence gap for them); rtpmidid's room sockets \
             dropped {} packets on input (each lost for every other player), its sequencer \
             client lost {} events (input queue peak {} of {} since it started), its log has {} \
             errors or warnings",
            result.never_sent(),
            result.hub_socket_drops,
            result.rtpmidid_alsa_lost,
            result.rtpmidid_input_peak,
            result.rtpmidid_input_size,
            result.log_problems.len()
        );
        match result.router {
            Some(router) => router.print(&result.room),
            None => println!("  rtpmidid's router counters: it did not answer `status`"),
        }
        for line in result.log_problems.iter().take(3) {
            println!("    rtpmidid: {}", line.trim());
        }
        println!(
            "  rtpmidid: {:.1} % of one core, RSS {:.1} MiB{}",
            result.rtpmidid_footprint.cpu_percent(),
            result.rtpmidid_footprint.rss_max_kib as f64 / 1024.0,
            result
                .rtpmidid_died
                .as_ref()
                .map_or(String::new(), |status| format!(
                    "; DIED while the players played ({status}), started again"
                ))
        );
        let pause = &result.rtpmidid_pause;
        println!(
            "  rtpmidid's longest pause (no CPU time, 50 ms samples): {} ms, runnable in {} \
             samples (waiting for a CPU), not in {} (asleep, or dead; most in {:?}); the \
             machine's CPUs {:.0} % busy meanwhile",
            pause.longest.as_millis(),
            pause.runnable_samples,
            pause.sleeping_samples,
            pause.wchan,
            pause.machine_busy_percent
        );
        println!(
            "  sent by the hub, never read by a player: {} (RTP sequence gaps); the players' \
             sockets dropped {}",
            result.rtp_gaps, result.player_socket_drops
        );
        println!(
            "  test process (all players): {:.1} % of one core",
            result.bench_footprint.cpu_percent()
        );
        println!(
            "  test process: sends late p50 {} / p99 {} / max {} ms after their tick, {} send \
             errors; packets waited p99 {} / max {} ms between a player's socket and its count",
            ms(percentile(&result.send_lateness, 0.50)),
            ms(percentile(&result.send_lateness, 0.99)),
            ms(result.send_lateness.iter().max().copied()),
            result.send_errors,
            ms(percentile(&result.read_lags, 0.99)),
            ms(result.read_lags.iter().max().copied()),
        );
        println!(
            "  room {OTHER_ROOM}: {} players, {} of {} notes lost; messages that crossed rooms \
             (or came back to their sender): {}",
            result.other_room.players,
            result.other_room.lost_notes(),
            result.other_room.expected,
            result.crossed
        );
        println!(
            "  sidecar: {:.1} % of one core, RSS {:.1} MiB (max {:.1}); its sequencer clients \
             lost {} events; {} warnings, errors or removed links in its log",
            result.footprint.cpu_percent(),
            result.footprint.rss_end_kib as f64 / 1024.0,
            result.footprint.rss_max_kib as f64 / 1024.0,
            result.sidecar_alsa_lost,
            result.sidecar_problems.len()
        );
        for line in result.sidecar_problems.iter().take(3) {
            println!("    sidecar: {}", line.trim());
        }
        for failure in &result.setup_failures {
            println!("  set-up tried again: {failure}");
        }
        println!("  verdict: {}", verdict(result));
    }
}

/// Where this phase lost its messages, in a few words.
fn verdict(result: &PhaseResult) -> String {
    if result.missing_messages() == 0 && result.crossed == 0 {
        return "nothing lost, nothing crossed rooms".to_string();
    }
    let mut places = Vec::new();
    if result.missing_numbered_like_a_command() > 0 {
        places.push(format!(
            "{} in packets numbered like a command (an rtpmidid without midihub's patch?)",
            result.missing_numbered_like_a_command()
        ));
    }
    if let Some(status) = &result.rtpmidid_died {
        places.push(format!("rtpmidid died ({status})"));
    }
    let otherwise_never_sent = result
        .never_sent()
        .saturating_sub(result.missing_numbered_like_a_command());
    if otherwise_never_sent > 0 {
        places.push(format!(
            "{otherwise_never_sent} (more) in the hub (never sent)"
        ));
    }
    if result.rtp_gaps > 0 {
        let whose = if result.player_socket_drops > 0 {
            "at the test players' sockets (the test process read too slowly)"
        } else {
            "between the hub's send and the players (no socket drops counted)"
        };
        places.push(format!("{} {whose}", result.rtp_gaps));
    }
    if result.crossed > 0 {
        places.push(format!("{} crossed rooms", result.crossed));
    }
    places.join("; ")
}
